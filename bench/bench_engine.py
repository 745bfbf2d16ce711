"""Engine speed and memory on this machine: seconds per stage and end to end.

    .venv/bin/python -m bench.bench_engine [--video PATH] [--photo PATH] [--threads N]
    .venv/bin/python -m bench.bench_engine --baseline GIT_REF [--repeats 5] [--own-weights]
    .venv/bin/python -m bench.bench_engine --baseline GIT_REF --for-device .bench   # what a GPU machine needs
    python3 -m bench.bench_engine --device cuda --baseline .bench/base --video .bench/720p.mp4 \
        --clip-1080p .bench/1080p.mp4 --photo .bench/photo.jpg          # there (carry .bench)

With --baseline, the ref's engine (checked out in a temporary worktree) and this checkout's
run in two processes, asked in turn on the same files with the same weights (or, with
--own-weights, each its own checkout's shipped models: a new model against the old): the issue's
cases (720p and 1080p, 10 s, at 20/32/100 frames, and a 1080p multi-face photo), the median
of each, and their ratio. Only figures from one such run compare: these machines are noisy.
Where there is no git history and no ../shared (a lent GPU machine gets the working tree and
what it carries), `--for-device DIR` puts the ref's engine (its `ml/`, without weights: both
engines load this checkout's) and the three files into DIR; README "Speed" has the recipe.

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

from bench.serving import ROOT
from ml.calibration import Calibration
from ml.checkpoint import save_checkpoint
from ml.inference import DEFAULT_MODEL_DIR, Detector
from ml.models import create_model

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


def clip_1080p(source: Path, folder: Path) -> Path:
    """`source` scaled up to 1080 lines (x264 crf 18; 1920x1080 from a 16:9 video, its aspect
    kept otherwise), made once into `folder`."""
    import av

    target = folder / f"{source.stem}_1080p.mp4"
    if target.is_file():
        return target
    partial = target.with_suffix(".part.mp4")
    with av.open(str(source)) as src, av.open(str(partial), "w") as dst:
        stream_in = src.streams.video[0]
        width = round(stream_in.codec_context.width * 1080 / stream_in.codec_context.height / 2) * 2
        out = dst.add_stream("libx264", rate=stream_in.average_rate or 25, options={"crf": "18", "preset": "veryfast"})
        out.width, out.height, out.pix_fmt = width, 1080, "yuv420p"
        for frame in src.decode(stream_in):
            for packet in out.encode(frame.reformat(width=width, height=1080, format="yuv420p")):
                dst.mux(packet)
        for packet in out.encode():
            dst.mux(packet)
    partial.replace(target)
    return target


def made_1080p(source: Path) -> Path:
    """`clip_1080p` of the video, kept between runs."""
    cache = Path.home() / ".cache" / "deepfake-forensics" / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    return clip_1080p(source, cache)


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"{device} ({torch.get_num_threads()} cores)" if device == "cpu" else device


def photo_1080p(source: Path, folder: Path) -> Path:
    photo = folder / "photo_1080p.jpg"
    image = cv2.imread(str(source))
    scale = 1920 / image.shape[1]
    cv2.imwrite(str(photo), cv2.resize(image, (1920, round(image.shape[0] * scale))), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return photo


# (label, kind, which file, frames, the 2-core target in seconds or None)
CASES = [
    ("720p 10 s, 20 frames", "video", "720p", 20, 0.8),
    ("720p 10 s, 100 frames", "video", "720p", 100, 2.5),
    ("1080p 10 s, 32 frames", "video", "1080p", 32, 1.5),
    ("1080p 10 s, 100 frames", "video", "1080p", 100, 4.0),
    ("photo (multi-face, 1080p)", "image", "photo", 0, 0.15),
]


def for_device(args, folder: Path) -> int:
    """Fill `folder` with what `--baseline` needs where there is neither git history nor
    ../shared: the ref's `ml/` (without weights) and the 720p, 1080p and photo files."""
    import shutil
    import subprocess

    base = folder / "base"
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", args.baseline, "ml", ":(exclude)ml/weights/*.pt"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
    shutil.copy(args.video, folder / "720p.mp4")
    shutil.copy(args.clip_1080p or made_1080p(args.video), folder / "1080p.mp4")
    photo_1080p(args.photo, folder).replace(folder / "photo.jpg")
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    print(f"{folder}: the engine of {args.baseline} and three files, {size:.1f} MiB to carry")
    return 0


def side_by_side(args, scratch: Path) -> int:
    """The ref's engine and this one, interleaved on the same files; medians and ratios."""
    from bench.engines import Engine, baseline

    files = {
        "720p": args.video,
        "1080p": args.clip_1080p or made_1080p(args.video),
        "photo": photo_1080p(args.photo, scratch),
    }
    files = {which: path.resolve() for which, path in files.items()}  # the engines run in their own folders
    models = (model_path("efficientnet_lstm", scratch), model_path("efficientnet", scratch))
    with baseline(args.baseline) as (name, checkout):
        engines = [Engine(name, checkout), Engine("current", ROOT)]
        for engine in engines:
            weights = engine.root / "ml" / "weights"
            own = (weights / "efficientnet_lstm.pt", weights / "efficientnet.pt")
            engine.start(args.threads, *(own if args.own_weights else models), device=args.device)
        try:
            for _label, kind, which, frames, _ in CASES:  # warm-up: first calls are not per analysis
                for engine in engines:
                    engine.ask(kind, files[which], frames)
            times: dict[str, dict[str, list[float]]] = {label: {e.name: [] for e in engines} for label, *_ in CASES}
            for repeat in range(args.repeats):
                order = engines if repeat % 2 == 0 else engines[::-1]
                for label, kind, which, frames, _ in CASES:
                    for engine in order:
                        times[label][engine.name].append(engine.ask(kind, files[which], frames)["seconds"])
        finally:
            for engine in engines:
                engine.stop()
    base, current = (engine.name for engine in engines)
    threads = args.threads or "one per core"
    print(f"median of {args.repeats} interleaved runs, seconds, on {device_name(args.device)}, torch threads {threads}")
    print(f"{'case':28} {base:>18} {current:>10} {'ratio':>7} {'target':>7}")
    for label, _, _, _, target in CASES:
        b, c = statistics.median(times[label][base]), statistics.median(times[label][current])
        goal = f"{target:.2f}" if target else ""
        print(f"{label:28} {b:18.2f} {c:10.2f} {c / b:7.2f} {goal:>7}")
    return 0


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
    parser.add_argument(
        "--baseline", metavar="GIT_REF", help="time this ref's engine (or a folder holding a checkout) beside this one"
    )
    parser.add_argument("--device", default="cpu", help="where the engines run: cpu, or cuda on a GPU machine")
    parser.add_argument(
        "--clip-1080p", type=Path, help="with --baseline: the 1080p clip (default: made from --video with PyAV)"
    )
    parser.add_argument(
        "--own-weights",
        action="store_true",
        help="with --baseline: each engine loads its own checkout's shipped models (a new model against the old)",
    )
    parser.add_argument("--for-device", type=Path, metavar="DIR", help="with --baseline: prepare DIR for a GPU machine")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp())
    if args.for_device:
        if not args.baseline:
            parser.error("--for-device needs --baseline GIT_REF")
        return for_device(args, args.for_device)
    if args.own_weights and args.baseline and Path(args.baseline).is_dir():
        parser.error("--own-weights needs a git ref: a prepared folder holds no weights")
    if args.baseline:
        return side_by_side(args, scratch)
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    video_detector = Detector.load(model_path("efficientnet_lstm", scratch), device=args.device)
    image_detector = Detector.load(model_path("efficientnet", scratch), device=args.device)
    loaded = time.perf_counter() - t0
    threads = torch.get_num_threads()
    print(
        f"models loaded in {loaded:.1f} s on {device_name(args.device)}; torch threads {threads}; "
        f"bf16 {video_detector.bf16}"
    )

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
    photo = photo_1080p(args.photo, scratch)
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
