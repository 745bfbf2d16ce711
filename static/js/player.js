// The result page's player: clicking a scored frame (a dot above the player, or a frame of the
// strip) shows that moment in the video; the dot of the frame being shown is highlighted.
(function () {
  const player = document.getElementById("player");
  if (!player) return;
  const marks = Array.from(document.querySelectorAll("#frame-marks .mark"));
  function seek(seconds) {
    player.currentTime = seconds;
    player.pause();
    player.scrollIntoView({ behavior: "smooth", block: "center" });
  }
  document.addEventListener("click", (event) => {
    const target = event.target.closest("[data-time]");
    if (target) seek(parseFloat(target.dataset.time));
  });
  document.addEventListener("keydown", (event) => {
    const target = event.target.closest && event.target.closest("figure[data-time]");
    if (target && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); seek(parseFloat(target.dataset.time)); }
  });
  player.addEventListener("timeupdate", () => {
    let nearest = null;
    for (const mark of marks) {
      const distance = Math.abs(parseFloat(mark.dataset.time) - player.currentTime);
      if (!nearest || distance < nearest.distance) nearest = { mark, distance };
    }
    marks.forEach((mark) => mark.classList.toggle("current", nearest && mark === nearest.mark));
  });
})();
