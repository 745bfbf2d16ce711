"""Two engines side by side: this checkout's and a git ref's, each in a process of its own,
asked in turn to analyse the same files. What `bench_engine --baseline` times and
`bench.no_loss` compares.

Each engine process loads the models once (the weight files it is given: the same for both,
so that only the code differs, unless `bench_engine --own-weights` gives each its own
checkout's) and answers one JSON line per request on stdin/stdout:

    {"kind": "video", "path": "...", "frames": 20}  ->  {"seconds": 1.4, "timings": {...},
        "fake_probability": 0.7, "verdict": "uncertain", "faces_per_frame": [1, 1, ...]}
"""

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.serving import ROOT

# Runs inside the engine's own checkout (its `ml` package), with the old API every ref has.
ENGINE = r"""
import json, sys, time
import torch
from ml.inference import Detector

threads, video_model, photo_model = int(sys.argv[1]), sys.argv[2], sys.argv[3]
device = sys.argv[4] if len(sys.argv) > 4 else "cpu"
float32 = len(sys.argv) > 5 and sys.argv[5] == "float32"
if threads:
    torch.set_num_threads(threads)
detectors = {"video": Detector.load(video_model, device=device), "image": Detector.load(photo_model, device=device)}
for detector in detectors.values():
    if float32 and getattr(detector, "bf16", False):
        detector.bf16 = False  # refs before 2026-11-29 chose bfloat16 by themselves on some CPUs
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    detector = detectors[request["kind"]]
    started = time.perf_counter()
    if request["kind"] == "video":
        result = detector.analyze_video(request["path"], request["frames"], emotions=request.get("emotions", True))
    else:
        result = detector.analyze_image(request["path"], emotions=request.get("emotions", True))
    seconds = time.perf_counter() - started
    print(json.dumps({
        "seconds": seconds,
        "timings": result.timings,
        "fake_probability": result.fake_probability,
        "verdict": result.verdict,
        "faces_per_frame": [len(frame.faces) for frame in result.frames],
    }), flush=True)
"""


@dataclass
class Engine:
    """One engine process, answering requests in order."""

    name: str
    root: Path
    process: subprocess.Popen = field(init=False)

    def start(
        self, threads: int, video_model: Path, photo_model: Path, device: str = "cpu", float32: bool = False
    ) -> "Engine":
        """Starts the engine's process and waits until its models are loaded. With `float32`, its
        CNN computes in float32 even where the ref would choose bfloat16 by itself (refs before
        2026-11-29 did on CPUs with AVX512-BF16 or AMX)."""
        precision = "float32" if float32 else "auto"
        self.process = subprocess.Popen(
            [sys.executable, "-c", ENGINE, str(threads), str(video_model), str(photo_model), device, precision],
            cwd=self.root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        ready = self.process.stdout.readline()
        if not ready:
            raise RuntimeError(f"the {self.name} engine did not start (run it by hand in {self.root} to see why)")
        return self

    def ask(self, kind: str, path: Path, frames: int = 0, emotions: bool = True) -> dict:
        request = {"kind": kind, "path": str(path), "frames": frames, "emotions": emotions}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the {self.name} engine stopped on {path.name}")
        return json.loads(answer)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Worktree:
    """A git ref checked out in a temporary worktree, removed on exit."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.path = Path(tempfile.mkdtemp(prefix="engine-baseline-")) / "checkout"

    def __enter__(self) -> Path:
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(self.path), self.ref],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        return self.path

    def __exit__(self, *exc) -> None:
        subprocess.run(["git", "worktree", "remove", "--force", str(self.path)], cwd=ROOT, capture_output=True)


@contextmanager
def baseline(ref: str) -> Iterator[tuple[str, Path]]:
    """The baseline engine's name and checkout: a git ref, checked out in a temporary worktree,
    or a folder that already holds one (where there is no history, as on a lent GPU machine,
    which gets the working tree and what it carries: `bench_engine --for-device` makes it)."""
    if Path(ref).is_dir():
        yield f"baseline {Path(ref).name}", Path(ref).resolve()
        return
    with Worktree(ref) as checkout:
        yield f"baseline {commit_of(ref)}", checkout


def commit_of(ref: str) -> str:
    done = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()
