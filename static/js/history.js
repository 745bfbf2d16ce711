// History: rows still queued or running update by themselves; the page reloads when one ends.
(function () {
  const rows = Array.from(document.querySelectorAll("li[data-status-url]"));
  if (!rows.length) return;
  async function poll() {
    for (const row of rows) {
      try {
        const response = await fetch(row.dataset.statusUrl, { headers: { Accept: "application/json" } });
        if (!response.ok) continue;
        const status = await response.json();
        if (status.finished) { window.location.reload(); return; }
        let note = row.querySelector(".live-status");
        if (!note) {
          note = document.createElement("div");
          note.className = "live-status small muted";
          row.querySelector(".meta").appendChild(note);
        }
        note.textContent = status.status === "queued"
          ? `queued${status.queue_position ? `, place ${status.queue_position}` : ""}` +
            (status.estimate_s ? `, about ${status.estimate_s} s` : "")
          : `running: ${status.stage || ""} ${status.progress}%`;
      } catch (_) { /* the server may be restarting: try again next round */ }
    }
    setTimeout(poll, 2000);
  }
  poll();
})();
