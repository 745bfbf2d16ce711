"""`manage.py analyze` as an analyst runs it: a real process, real files, no worker, an empty database."""

import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, shared_path


def analyze(*args: str, model_dir, tmp_path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DEEPFAKE_MODEL_DIR": str(model_dir),
        # A database file that does not even exist yet: analysing must not need one.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "analyze", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.engine
def test_videos_a_photo_and_a_missing_file_give_a_json_line_each(model_dir, tmp_path):
    """One process for every case (each start loads the models): two videos, a photo asked of
    the video model, a file that is not there."""
    files = [
        shared_path("data", "videos", "ffpp", "real", "035.mp4"),
        shared_path("data", "videos", "ffpp", "fake", "Deepfakes_035_036.mp4"),
        shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg"),
        tmp_path / "missing.mp4",
    ]
    done = analyze(
        *map(str, files),
        "--model",
        "efficientnet_lstm",
        "--frames",
        "10",
        "--format",
        "json",
        "--report",
        str(tmp_path / "reports"),
        model_dir=model_dir,
        tmp_path=tmp_path,
    )
    assert done.returncode == 1, done.stderr[-2000:]  # one file failed, and said so
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    assert [line["media_type"] for line in lines[:3]] == ["video", "video", "image"]
    for line in lines[:3]:
        for key in (
            "verdict",
            "fake_probability",
            "confidence",
            "model_name",
            "frames_analyzed",
            "faces_detected",
            "frames",
            "timings",
        ):
            assert line[key] is not None, key
        assert line["error"] is None
        report = tmp_path / "reports" / f"{Path(line['file']).stem}.pdf"
        assert report.read_bytes().startswith(b"%PDF")
    assert lines[0]["frames_analyzed"] == 10 and len(lines[0]["frames"]) == 10
    assert lines[0]["model_name"] == "efficientnet_lstm"
    # The photo is analysed by the photo model, and the user is told why.
    assert lines[2]["model_name"] == "efficientnet" and lines[2]["faces_detected"] >= 4
    assert "efficientnet_lstm is a video model" in lines[2]["note"]
    assert "efficientnet_lstm is a video model" in done.stderr
    assert lines[3]["error"]["reason"] == "unreadable_media" and "no such file" in lines[3]["error"]["message"]
    assert not (tmp_path / "reports" / "missing.pdf").exists()
    assert not (tmp_path / "empty.sqlite3").exists() or (tmp_path / "empty.sqlite3").stat().st_size == 0


@pytest.mark.engine
def test_text_lines_say_what_failed_and_why(models, tmp_path):
    from django.core.management import call_command

    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    photo = shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_status:
        call_command("analyze", str(tmp_path / "missing.mp4"), str(corrupt), str(photo), "--no-progress", stdout=out)
    assert exit_status.value.code == 1
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 3
    assert "missing.mp4: FAILED (unreadable_media)" in lines[0] and "no such file" in lines[0]
    assert "broken.mp4: FAILED (unreadable_media)" in lines[1]
    assert "multiface.jpg:" in lines[2] and "P(fake)=" in lines[2]


@pytest.mark.engine
def test_frames_out_of_range_is_a_usage_error(model_dir, tmp_path):
    done = analyze("x.mp4", "--frames", "5", model_dir=model_dir, tmp_path=tmp_path)
    assert done.returncode != 0 and "between 10 and 100" in done.stderr


@pytest.mark.django_db
def test_save_stores_the_analysis_for_a_user(alice, models, settings):
    from django.core.management import call_command

    from detector.models import Analysis

    photo = shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg")
    call_command("analyze", str(photo), "--save", "--user", "alice", "--format", "json", "--no-progress")
    analysis = Analysis.objects.get(owner=alice)
    assert analysis.status == "done" and analysis.faces.count() >= 4
    assert analysis.upload.original_name == "multiface.jpg"


@pytest.mark.engine
def test_live_plays_a_video_in_real_time_and_prints_rolling_scores(model_dir, tmp_path):
    video = shared_path("data", "videos", "ffpp", "fake", "Deepfakes_035_036.mp4")
    done = analyze("--live", str(video), "--duration", "3", "--format", "json", model_dir=model_dir, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    times = [line["time_s"] for line in lines]
    # Real time: a busy machine scores fewer moments (it skips what it cannot keep up with, by
    # design), so the count is a floor that holds under load; the spacing and the span do not bend.
    assert len(lines) >= 3 and times == sorted(times) and times[-1] >= 3.0
    assert all(b - a >= 0.29 for a, b in itertools.pairwise(times))  # one score per --interval
    scored = [line for line in lines if line["fake_probability"] is not None]
    assert len(scored) >= 3
    for line in scored:
        assert 0 <= line["rolling"] <= 1 and line["verdict"] in ("fake", "real", "uncertain")
        assert line["emotion"] in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert "frames with a face, mean P(fake)" in done.stderr


@pytest.mark.engine
def test_live_needs_one_readable_source(model_dir, tmp_path):
    two = analyze("--live", "a.mp4", "b.mp4", model_dir=model_dir, tmp_path=tmp_path)
    assert two.returncode != 0 and "one video file or camera index" in two.stderr
    missing = analyze("--live", str(tmp_path / "nothing.mp4"), model_dir=model_dir, tmp_path=tmp_path)
    assert missing.returncode != 0 and "no such file" in missing.stderr
