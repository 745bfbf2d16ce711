"""Engine speed and memory on this machine: seconds per stage and end to end.

    .venv/bin/python -m bench.bench_engine [--video PATH] [--photo PATH] [--threads N]

A 10 s 720p FaceForensics++ video at 10..100 frames, a 1080p photo, live camera frames
through the live scoring service (HTTP, as the web app sends them), and the process's peak RSS.
It uses the shipped models when present (speed does not depend on the weights, so an
untrained head on the ImageNet trunk stands in otherwise). Run it on a quiet machine:
detection slows down a lot when another process competes for the cores.
"""

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import torch

from ml.calibration import Calibration
from ml.checkpoint import save_checkpoint
from ml.inference import DEFAULT_MODEL_DIR, Detector
from ml.models import create_model

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def model_path(name: str, scratch: Path) -> Path:
    shipped = DEFAULT_MODEL_DIR / f"{name}.pt"
    if shipped.is_file():
        return shipped
    path = scratch / f"{name}.pt"
    save_checkpoint(create_model(name, pretrained=True), path, Calibration(), {"version": "bench"})
    return path


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def live_latency(detector: Detector, video: Path, frames: int = 40) -> None:
    """Milliseconds per frame through `python -m ml.live`'s HTTP service: 640-px JPEGs, as the
    live page sends them, one request at a time."""
    import urllib.request

    from ml.live import LiveScorer, serve

    scorer = LiveScorer(detector)
    scorer.warm_up()
    server = serve("127.0.0.1", 0, scorer)
    url = f"http://127.0.0.1:{server.server_address[1]}/score"
    capture = cv2.VideoCapture(str(video))
    times = []
    for i in range(frames):
        ok, frame = capture.read()
        if not ok:
            break
        if i % 5:
            continue
        frame = cv2.resize(frame, (640, round(frame.shape[0] * 640 / frame.shape[1])), interpolation=cv2.INTER_AREA)
        body = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
        started = time.perf_counter()
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "image/jpeg"})
        with urllib.request.urlopen(request) as response:
            response.read()
        times.append(1000 * (time.perf_counter() - started))
    capture.release()
    server.shutdown()
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    median = statistics.median(times)
    print(f"\nlive frame (640 px JPEG over HTTP), {len(times)} frames: median {median:.0f} ms, p95 {p95:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, default=SHARED / "data/videos/ffpp/fake/Deepfakes_044_945.mp4")
    parser.add_argument(
        "--photo",
        type=Path,
        default=SHARED / "data/images/real_faces/face_recognition/multi_face/obama_and_biden.jpg",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    scratch = Path(tempfile.mkdtemp())

    t0 = time.perf_counter()
    video_detector = Detector.load(model_path("efficientnet_lstm", scratch), device="cpu")
    image_detector = Detector.load(model_path("efficientnet", scratch), device="cpu")
    loaded = time.perf_counter() - t0
    threads = torch.get_num_threads()
    print(f"models loaded in {loaded:.1f} s; torch threads {threads}; bf16 {video_detector.bf16}")

    capture = cv2.VideoCapture(str(args.video))
    size = f"{int(capture.get(3))}x{int(capture.get(4))}"
    capture.release()
    print(f"\nvideo {args.video.name} ({size}), median of {args.repeats} runs, seconds")
    stages = ["decode", "detect", "classify", "explain", "emotion", "total"]
    print("frames " + " ".join(f"{s:>9}" for s in stages) + "   faces")
    video_detector.analyze_video(args.video, 10)  # warm-up: first-call costs are not per analysis
    for frames in (10, 20, 40, 60, 80, 100):
        runs = [video_detector.analyze_video(args.video, frames) for _ in range(args.repeats)]
        medians = [statistics.median(r.timings[s] for r in runs) for s in stages]
        print(f"{frames:>6} " + " ".join(f"{m:9.2f}" for m in medians) + f"   {runs[0].faces_detected}")

    # A 1080p photo: the given photo scaled to 1920 px wide.
    photo = scratch / "photo_1080p.jpg"
    image = cv2.imread(str(args.photo))
    scale = 1920 / image.shape[1]
    cv2.imwrite(str(photo), cv2.resize(image, (1920, round(image.shape[0] * scale))), [cv2.IMWRITE_JPEG_QUALITY, 92])
    image_detector.analyze_image(photo)
    runs = [image_detector.analyze_image(photo) for _ in range(max(3, args.repeats))]
    medians = [statistics.median(r.timings[s] for r in runs) for s in stages]
    print(f"\nphoto {args.photo.name} at 1920 px wide, seconds")
    print("       " + " ".join(f"{s:>9}" for s in stages) + "   faces")
    print("       " + " ".join(f"{m:9.2f}" for m in medians) + f"   {runs[0].faces_detected}")
    live_latency(image_detector, args.video)
    print(f"\npeak RSS {peak_rss_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
