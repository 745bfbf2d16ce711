// Live camera page: grab a frame every INTERVAL_MS, POST it as a JPEG, draw the face boxes
// and a rolling P(fake) chart. One request in flight at a time: a slow answer delays the next
// frame instead of queueing frames behind it. "Record" keeps a MediaRecorder clip and uploads
// it as an ordinary analysis when stopped.
(function () {
  const root = document.getElementById("live");
  if (!root) return;
  const INTERVAL_MS = 300;
  const WINDOW = 8;
  const HISTORY = 60;
  const MAX_WIDTH = 640;
  const video = document.getElementById("live-video");
  const overlay = document.getElementById("live-overlay");
  const chart = document.getElementById("live-chart");
  const probability = document.getElementById("live-probability");
  const verdict = document.getElementById("live-verdict");
  const emotion = document.getElementById("live-emotion");
  const latency = document.getElementById("live-latency");
  const statusLine = document.getElementById("live-status");
  const startButton = document.getElementById("live-start");
  const stopButton = document.getElementById("live-stop");
  const recordButton = document.getElementById("live-record");
  const grab = document.createElement("canvas");
  let stream = null, timer = null, busy = false, recorder = null, chunks = [];
  const recent = [];   // P(fake) of the last WINDOW frames with a face
  const history = [];  // rolling values for the chart
  let threshold = 0.5, band = [0.5, 0.5];

  function say(text) { statusLine.textContent = text; }

  async function start() {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 } }, audio: false });
    } catch (error) {
      say(`The camera is not available: ${error.message}`);
      return;
    }
    video.srcObject = stream;
    await video.play();
    startButton.disabled = true;
    stopButton.disabled = false;
    recordButton.disabled = typeof MediaRecorder === "undefined";
    say("Scoring…");
    timer = setInterval(tick, INTERVAL_MS);
  }

  function stop() {
    clearInterval(timer);
    if (recorder && recorder.state === "recording") recorder.stop();
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    startButton.disabled = false;
    stopButton.disabled = true;
    recordButton.disabled = true;
    say("Stopped.");
  }

  async function tick() {
    if (busy || !video.videoWidth) return;
    busy = true;
    const scale = Math.min(1, MAX_WIDTH / video.videoWidth);  // the server scores at most 640 px wide
    grab.width = Math.round(video.videoWidth * scale);
    grab.height = Math.round(video.videoHeight * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    const sent = performance.now();
    try {
      const blob = await new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", 0.85));
      const response = await fetch(root.dataset.frameUrl, {
        method: "POST",
        body: blob,
        headers: { "Content-Type": "image/jpeg", "X-CSRFToken": root.dataset.csrf },
        credentials: "same-origin",
      });
      const body = await response.json();
      if (!response.ok) { say(body.detail || `Error ${response.status}`); return; }
      show(body, performance.now() - sent);
    } catch (error) {
      say(`No answer: ${error.message}`);
    } finally {
      busy = false;
    }
  }

  function show(frame, elapsed) {
    threshold = frame.threshold;
    band = frame.uncertain_band;
    const face = frame.faces[0];
    if (face) {
      recent.push(face.fake_probability);
      if (recent.length > WINDOW) recent.shift();
    }
    const rolling = recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : null;
    history.push(face ? rolling : null);
    if (history.length > HISTORY) history.shift();
    probability.textContent = rolling === null ? "–" : rolling.toFixed(2);
    // The same three outcomes as an analysis: outside the model's uncertain band it leans one way.
    const kind = !face ? "no_face" : rolling >= band[1] ? "fake" : rolling < band[0] ? "real" : "uncertain";
    verdict.textContent = { no_face: "no face", fake: "LOOKS FAKE", real: "LOOKS REAL", uncertain: "UNCERTAIN" }[kind];
    verdict.className = "badge " + kind;
    emotion.textContent = face && face.emotion ? `expression: ${face.emotion}` : "";
    latency.textContent = `${frame.faces.length} face(s) · answered in ${Math.round(elapsed)} ms (model ${Math.round(frame.milliseconds)} ms)`;
    root.dataset.frames = String(Number(root.dataset.frames || 0) + 1);
    drawBoxes(frame);
    drawChart();
    say(recorder && recorder.state === "recording" ? "Recording…" : "Scoring…");
  }

  function drawBoxes(frame) {
    overlay.width = video.clientWidth;
    overlay.height = video.clientHeight;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    const k = overlay.width / frame.width;  // sent-frame pixels -> displayed pixels
    ctx.lineWidth = 3;
    ctx.font = "14px sans-serif";
    for (const face of frame.faces) {
      const [x1, y1, x2, y2] = face.box.map((v) => v * k);
      const colour = face.fake_probability >= threshold ? "#d9534f" : "#3c9d5d";
      ctx.strokeStyle = colour;
      ctx.fillStyle = colour;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const label = `${face.fake_probability.toFixed(2)}${face.emotion ? " · " + face.emotion : ""}`;
      const top = Math.max(0, y1 - 20);
      ctx.fillRect(x1 - 1.5, top, ctx.measureText(label).width + 8, 18);
      ctx.fillStyle = "#fff";
      ctx.fillText(label, x1 + 3, top + 14);
    }
  }

  function drawChart() {
    const ctx = chart.getContext("2d");
    const w = chart.width, h = chart.height;
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = "#8a93a0";
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(0, h - threshold * h);
    ctx.lineTo(w, h - threshold * h);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.strokeStyle = "#4a7bd0";
    ctx.lineWidth = 2;
    ctx.beginPath();
    let drawing = false;
    const offset = HISTORY - history.length;  // the newest value at the right edge
    history.forEach((value, i) => {
      const x = ((i + offset) / (HISTORY - 1)) * w;
      if (value === null) { drawing = false; return; }
      const y = h - value * h;
      if (drawing) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      drawing = true;
    });
    ctx.stroke();
  }

  function record() {
    if (recorder && recorder.state === "recording") {
      recorder.stop();
      return;
    }
    chunks = [];
    recorder = new MediaRecorder(stream, { mimeType: MediaRecorder.isTypeSupported("video/webm") ? "video/webm" : "" });
    recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
    recorder.onstop = upload;
    recorder.start(1000);
    recordButton.textContent = "Stop and analyse";
    say("Recording…");
  }

  async function upload() {
    recordButton.textContent = "Record";
    const clip = new Blob(chunks, { type: "video/webm" });
    const form = new FormData();
    form.append("file", clip, `live-${new Date().toISOString().replace(/[:.]/g, "-")}.webm`);
    say("Uploading the recording…");
    const response = await fetch(root.dataset.uploadUrl, {
      method: "POST",
      body: form,
      headers: { "X-CSRFToken": root.dataset.csrf },
      credentials: "same-origin",
    });
    const body = await response.json();
    if (!response.ok) { say(`The recording was refused: ${JSON.stringify(body)}`); return; }
    say("Recording queued for analysis.");
    window.location.href = `/analyses/${body.id}/`;
  }

  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", stop);
  recordButton.addEventListener("click", record);
  document.getElementById("live-window").textContent = WINDOW;
})();
