"""Nothing lost for speed: the engine's shortcut against the slower way, on real videos, in
the same run (no recorded figures). `python -m bench.no_loss --baseline GIT_REF` compares two
engines over every FaceForensics++ video.

At dense sampling (frames <= 0.15 s apart) faces are detected on every other frame and boxes
interpolated between (half the detection time at 100 frames); the reference detects on every
frame. The faces that decide the verdict must be found in the same frames, P(fake) move by at
most 0.02 and the verdict stay.
"""

import functools

import pytest

import ml.inference
from ml.faces import detect_sparse
from ml.inference import Detector
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def detector(model_dir):
    return Detector.load(None, "video", model_dir)


def counted_faces_per_frame(result) -> list[int]:
    counted = {track.track_id for track in result.tracks if track.counted}
    return [sum(face.track_id in counted for face in frame.faces) for frame in result.frames]


@pytest.mark.parametrize("video", ["real/033.mp4", "fake/Face2Face_469_481.mp4"])
def test_detecting_every_other_frame_at_dense_sampling_loses_nothing(detector, monkeypatch, video):
    path = shared_path("data", "videos", "ffpp", video)
    sparse = detector.analyze_video(path, 100, explain=False, emotions=False)
    assert any(face.interpolated for frame in sparse.frames for face in frame.faces)
    monkeypatch.setattr(ml.inference, "detect_sparse", functools.partial(detect_sparse, max_gap_s=0.0))
    dense = detector.analyze_video(path, 100, explain=False, emotions=False)
    assert not any(face.interpolated for frame in dense.frames for face in frame.faces)

    assert counted_faces_per_frame(sparse) == counted_faces_per_frame(dense)
    assert sparse.fake_probability == pytest.approx(dense.fake_probability, abs=0.02)
    assert sparse.verdict == dense.verdict
