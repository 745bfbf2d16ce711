"""Nothing lost for speed: a git ref's engine and this checkout's on every FF++ video in
../shared, at the same frame count, with the same weights.

    .venv/bin/python -m bench.no_loss --baseline GIT_REF [--frames 32] [--limit N] [--at-1080p]

Prints, over all videos: the faces found per sampled frame (the share of frames whose count
differs, and the total against the baseline's, which must be within 1 %), the largest
difference in P(fake) per file (must be within 0.02) and the files whose verdict changed
(must be none), then exits 1 if any of the three fails.

With --at-1080p, each video is first scaled up to 1080 lines (x264, made once and kept in
~/.cache): a change that treats large frames differently is measured on faces as FF++ has them.

Both engines run their CNN in float32. Refs before 2026-11-29 chose bfloat16 by themselves on
CPUs with AVX512-BF16 or AMX, which moves P(fake) by up to 0.11 (README, "Speed"): a choice of
precision, since reverted, that would hide what the speed work itself changed.
"""

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.bench_engine import SHARED, made_1080p, model_path
from bench.engines import Engine, baseline
from bench.serving import ROOT


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--baseline", metavar="GIT_REF", required=True, help="a git ref, or a folder holding a checkout"
    )
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--limit", type=int, default=0, help="N videos spread over the list, fake and real (0: all)")
    parser.add_argument("--at-1080p", action="store_true", help="each video scaled up to 1080 lines first")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    videos = sorted((SHARED / "data/videos/ffpp").glob("*/*.mp4"))
    if args.limit and args.limit < len(videos):
        videos = [videos[i * len(videos) // args.limit] for i in range(args.limit)]
    if args.at_1080p:
        videos = [made_1080p(video) for video in videos]
    scratch = Path(tempfile.mkdtemp())
    models = (model_path("efficientnet_lstm", scratch), model_path("efficientnet", scratch))
    with baseline(args.baseline) as (name, checkout):
        base = Engine(name, checkout).start(args.threads, *models, float32=True)
        current = Engine("current", ROOT).start(args.threads, *models, float32=True)
        try:
            pairs = [(v, base.ask("video", v, args.frames), current.ask("video", v, args.frames)) for v in videos]
        finally:
            base.stop()
            current.stop()

    frames = faces_base = faces_current = frames_differing = 0
    worst = (0.0, "")
    gaps = []
    verdicts_changed = []
    for video, b, c in pairs:
        frames += len(b["faces_per_frame"])
        faces_base += sum(b["faces_per_frame"])
        faces_current += sum(c["faces_per_frame"])
        if len(b["faces_per_frame"]) != len(c["faces_per_frame"]):
            frames_differing += len(b["faces_per_frame"])
        else:
            frames_differing += sum(x != y for x, y in zip(b["faces_per_frame"], c["faces_per_frame"], strict=True))
        if b["fake_probability"] is not None and c["fake_probability"] is not None:
            gap = abs(b["fake_probability"] - c["fake_probability"])
            gaps.append(gap)
            worst = max(worst, (gap, video.name))
        if b["verdict"] != c["verdict"]:
            verdicts_changed.append(f"{video.name}: {b['verdict']} -> {c['verdict']}")
    faces_ok = abs(faces_current - faces_base) <= 0.01 * max(1, faces_base)
    scaled = ", scaled up to 1080 lines" if args.at_1080p else ""
    print(f"{len(pairs)} FF++ videos{scaled} at {args.frames} frames, {base.name} against the current engine")
    print(
        f"faces found: {faces_current} against {faces_base} ({faces_current / max(1, faces_base) - 1:+.2%}); "
        f"{frames_differing} of {frames} sampled frames with another count  {'ok' if faces_ok else 'FAILS (> 1 %)'}"
    )
    print(f"largest P(fake) difference: {worst[0]:.4f} ({worst[1]})  {'ok' if worst[0] <= 0.02 else 'FAILS (> 0.02)'}")
    if gaps:
        median, p95 = statistics.median(gaps), statistics.quantiles(gaps, n=20)[-1] if len(gaps) > 1 else gaps[0]
        over = sum(gap > 0.02 for gap in gaps)
        print(f"  P(fake) difference per file: median {median:.4f}, p95 {p95:.4f}; {over} of {len(gaps)} over 0.02")
    print(f"verdicts changed: {len(verdicts_changed)}  {'ok' if not verdicts_changed else 'FAILS'}")
    for line in verdicts_changed:
        print(f"  {line}")
    return 0 if faces_ok and worst[0] <= 0.02 and not verdicts_changed else 1


if __name__ == "__main__":
    raise SystemExit(main())
