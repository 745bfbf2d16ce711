"""Live scoring: one camera frame in, the faces in it with P(fake) and expression out.

    python -m ml.live --port 8765          # the scoring service the web app forwards to
    python manage.py analyze --live clip.mp4   # a video played in real time (`play`), or a camera index

The web process never loads torch, so the live page's frames go (through Django, which checks
the user) to this small HTTP service, which keeps the image model, MTCNN and the expression
model loaded and scores each frame as a photo. Plain HTTP POSTs, one per frame, keep it
simple: a 640-pixel JPEG is ~50 kB and scoring it takes ~0.1-0.3 s on two cores, so a
WebSocket would save little. Frames are scored in memory and never written anywhere.

    POST /score   body: a JPEG or PNG   -> 200 {"faces": [...], "fake_probability": ..., ...}
                                           400 {"error": ...} when the body is not a picture
    GET  /health                        -> 200 {"status": "ok", "model": ...}
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ml.formats import MAX_FRAME_BYTES
from ml.inference import Detector, get_detector, shared_emotion_recognizer

log = logging.getLogger(__name__)

# Frames are scored at most this wide: enough for MTCNN to find a face across a room, and the
# box is mapped back to the frame's own size.
MAX_WIDTH = 1280


@dataclass
class LiveFace:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the frame's pixels
    fake_probability: float
    verdict: str
    emotion: str | None
    detector_confidence: float

    def to_dict(self) -> dict:
        return {
            "box": [round(v, 1) for v in self.box],
            "fake_probability": round(self.fake_probability, 4),
            "verdict": self.verdict,
            "emotion": self.emotion,
            "detector_confidence": round(self.detector_confidence, 4),
        }


@dataclass
class LiveFrame:
    """The score of one frame: its faces, largest first, and the largest face's score."""

    width: int
    height: int
    faces: list[LiveFace] = field(default_factory=list)
    milliseconds: float = 0.0
    model: str = ""
    threshold: float = 0.5
    uncertain_band: tuple[float, float] = (0.5, 0.5)

    @property
    def fake_probability(self) -> float | None:
        return self.faces[0].fake_probability if self.faces else None

    def to_dict(self) -> dict:
        p = self.fake_probability
        return {
            "width": self.width,
            "height": self.height,
            "fake_probability": None if p is None else round(p, 4),
            "faces": [face.to_dict() for face in self.faces],
            "milliseconds": round(self.milliseconds, 1),
            "model": self.model,
            "threshold": self.threshold,
            "uncertain_band": list(self.uncertain_band),
        }


# A live frame is a camera picture (the page sends <= 640 px wide); 4K is plenty.
MAX_LIVE_PIXELS = 3840 * 2160


def picture_size(data: bytes) -> tuple[int, int]:
    """(width, height) from an encoded picture's header, without decoding its pixels."""
    try:
        with Image.open(io.BytesIO(data)) as image:  # lazy: reads the header only
            return image.size
    except Image.DecompressionBombError as exc:  # Pillow's own limit, from the header too
        raise ValueError(f"a frame is at most {MAX_LIVE_PIXELS // 1_000_000} megapixels ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValueError("the body is not a JPEG or PNG picture") from None


def decode_picture(data: bytes) -> np.ndarray:
    """RGB pixels of an encoded picture; ValueError when it is not one."""
    if not data:
        raise ValueError("the request has no picture")
    if len(data) > MAX_FRAME_BYTES:
        raise ValueError(f"a frame is at most {MAX_FRAME_BYTES // 1024 // 1024} MB")
    # The size is read from the header, before anything is decoded: a 1 MB PNG can claim
    # 30000x30000 pixels (2.7 GB decoded).
    width, height = picture_size(data)
    if width * height > MAX_LIVE_PIXELS:
        raise ValueError(f"a frame is at most {MAX_LIVE_PIXELS // 1_000_000} megapixels, not {width}x{height}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("the body is not a JPEG or PNG picture")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class LiveScorer:
    """The image model and its face detector, loaded once; thread-safe (one frame at a time)."""

    def __init__(self, detector: Detector, emotions: bool = True) -> None:
        self.detector = detector
        self.emotions = emotions
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load everything now rather than on the first frames (the first calls allocate)."""
        if self.emotions:
            shared_emotion_recognizer(str(self.detector.device))
        self.score(np.zeros((240, 320, 3), np.uint8))

    def score(self, image: np.ndarray) -> LiveFrame:
        started = time.perf_counter()
        height, width = image.shape[:2]
        scale = min(1.0, MAX_WIDTH / width)
        if scale < 1.0:
            image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        with self._lock:
            result = self.detector.analyze_picture(image, explain=False, emotions=self.emotions)
        faces = [
            LiveFace(
                box=tuple(v / scale for v in face.box),
                fake_probability=face.fake_probability,
                verdict=self.detector.calibration.verdict(face.fake_probability),
                emotion=face.emotion,
                detector_confidence=face.detector_confidence,
            )
            for face in result.faces()
        ]
        faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        return LiveFrame(
            width=width,
            height=height,
            faces=faces,
            milliseconds=1000 * (time.perf_counter() - started),
            model=self.detector.name,
            threshold=self.detector.calibration.threshold,
            uncertain_band=(self.detector.calibration.uncertain_low, self.detector.calibration.uncertain_high),
        )

    def score_bytes(self, data: bytes) -> LiveFrame:
        return self.score(decode_picture(data))


class RollingScore:
    """The mean P(fake) of the last `size` frames with a face (what the live chart shows)."""

    def __init__(self, size: int = 8) -> None:
        self.values: deque[float] = deque(maxlen=size)

    def add(self, value: float | None) -> float | None:
        if value is not None:
            self.values.append(value)
        return float(np.mean(self.values)) if self.values else None


def play(
    source: str | int, scorer: LiveScorer, interval_s: float = 0.3, realtime: bool = True
) -> Iterator[tuple[float, LiveFrame]]:
    """Score a video file as it plays in real time, or a camera (an index), every `interval_s`.

    Yields (time in the video in seconds, the frame's score). In real time, a frame is scored
    only when playback reaches it, and frames that went by while the previous one was being
    scored are skipped, as a live viewer would miss them. `realtime=False` scores every
    `interval_s` of the video as fast as possible (for tests and batch use).
    """
    camera = isinstance(source, int)
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise ValueError(f"cannot open {'camera ' if camera else ''}{source}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    started = time.monotonic()
    next_due, index = 0.0, -1
    try:
        while capture.grab():
            index += 1
            now = time.monotonic() - started
            position = now if camera else index / fps
            if position < next_due:
                continue
            if realtime and not camera:
                if position < now - interval_s:
                    continue  # played while we were busy: a live viewer never saw it
                time.sleep(max(0.0, position - now))
            ok, bgr = capture.retrieve()
            if not ok:
                break
            yield position, scorer.score(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            next_due = position + interval_s
    finally:
        capture.release()


# -- the HTTP service ---------------------------------------------------------------------------


def make_handler(scorer: LiveScorer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the web app reuses the connection

        def _reply(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # the name http.server calls
            if self.path == "/health":
                self._reply(200, {"status": "ok", "model": scorer.detector.name})
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path != "/score":
                self._reply(404, {"error": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_FRAME_BYTES:
                self._reply(413, {"error": f"a frame is at most {MAX_FRAME_BYTES // 1024 // 1024} MB"})
                self.close_connection = True
                return
            data = self.rfile.read(length)
            try:
                frame = scorer.score_bytes(data)
            except ValueError as error:
                self._reply(400, {"error": str(error)})
                return
            self._reply(200, frame.to_dict())

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return Handler


def serve(host: str, port: int, scorer: LiveScorer) -> ThreadingHTTPServer:
    """A started server (in a background thread); `shutdown()` stops it."""
    server = ThreadingHTTPServer((host, port), make_handler(scorer))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="live-server", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.live", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--model", default=None, help="image model name or .pt path (default: the shipped one)")
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    parser.add_argument("--no-emotions", action="store_true", help="skip the expression model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s live %(levelname)s %(message)s")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    detector = get_detector(args.model, "image", Path(args.model_dir) if args.model_dir else None, args.device)
    scorer = LiveScorer(detector, emotions=not args.no_emotions)
    scorer.warm_up()
    server = serve(args.host, args.port, scorer)
    log.info("scoring camera frames with %s on http://%s:%d/score", detector.name, args.host, args.port)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
