"""The engine benchmark where there is no git history and no ../shared (a lent GPU machine):
`--for-device` prepares a folder that `--baseline` then takes in place of a git ref."""

import argparse
import subprocess

import pytest

from bench import bench_engine
from bench.engines import Engine, baseline
from tests.conftest import ROOT, shared_path

pytestmark = pytest.mark.engine


def test_a_prepared_folder_holds_the_refs_engine_and_the_files_and_runs_as_the_baseline(tmp_path, model_dir):
    video = shared_path("data", "videos", "ffpp", "real", "033.mp4")
    photo = shared_path("data", "images", "real_faces", "face_recognition", "multi_face", "obama_and_biden.jpg")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if not head:
        pytest.skip("not a git checkout")
    folder = tmp_path / "bench"
    args = argparse.Namespace(baseline=head, video=video, clip_1080p=video, photo=photo)
    assert bench_engine.for_device(args, folder) == 0

    assert sorted(p.name for p in folder.iterdir()) == ["1080p.mp4", "720p.mp4", "base", "photo.jpg"]
    engine_files = {p.relative_to(folder / "base").as_posix() for p in (folder / "base").rglob("*") if p.is_file()}
    assert "ml/inference.py" in engine_files and "ml/mtcnn.py" in engine_files
    assert not [f for f in engine_files if f.endswith(".pt")]  # both engines load the same models
    assert not [f for f in engine_files if not f.startswith("ml/")]

    with baseline(str(folder / "base")) as (name, checkout):
        assert (name, checkout) == ("baseline base", (folder / "base").resolve())
        engine = Engine(name, checkout).start(1, model_dir / "efficientnet_lstm.pt", model_dir / "efficientnet.pt")
        try:
            answer = engine.ask("image", (folder / "photo.jpg").resolve(), emotions=False)
        finally:
            engine.stop()
    assert answer["seconds"] > 0
    assert answer["faces_per_frame"][0] >= 2  # the photo's two people
