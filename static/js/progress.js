// Result page while queued or running: poll the status endpoint, move the bar, reload when done.
(function () {
  const card = document.getElementById("progress-card");
  if (!card) return;
  const bar = document.getElementById("progress-bar");
  const stage = document.getElementById("progress-stage");
  const title = document.getElementById("progress-title");
  let delay = 700;

  async function poll() {
    try {
      const response = await fetch(card.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const status = await response.json();
        if (status.finished) { window.location.reload(); return; }
        bar.style.width = `${status.progress}%`;
        bar.parentElement.setAttribute("aria-valuenow", status.progress);
        stage.textContent = status.stage || status.status;
        title.textContent = status.status === "queued" ? "Waiting for a worker…" : "Analysing…";
        const place = document.getElementById("queue-place");
        if (place) {
          place.textContent = status.queue_position
            ? `Place ${status.queue_position} in the queue` +
              (status.estimate_s ? ` · result in about ${status.estimate_s} s (from the times of recent analyses).` : ".")
            : "";
        }
      }
    } catch (_) {
      // The server may be restarting: keep trying, a little slower.
      delay = Math.min(delay * 1.5, 5000);
    }
    setTimeout(poll, delay);
  }
  setTimeout(poll, delay);
})();
