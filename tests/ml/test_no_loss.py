"""Nothing lost for speed: the engine's shortcut against the slower way, on real videos, in
the same run (no recorded figures). `python -m bench.no_loss --baseline GIT_REF` compares two
engines over every FaceForensics++ video.

At dense sampling (frames <= 0.15 s apart) faces are detected on every other frame and boxes
interpolated between (half the detection time at 100 frames); when frames are <= 0.6 s apart,
three of every four frames detected on are searched only around the faces of the frame
before. The reference searches every frame whole. The faces that decide the verdict must be
found in the same frames, P(fake) move by at most 0.02 and the verdict stay. The CNN's trunk
runs under ONNX Runtime on the CPU: against PyTorch, every face's P(fake) within 1e-4. Faces
are detected and scored while later frames are decoded: against decoding first, the same
faces, crops and scores.
"""

import functools

import numpy as np
import pytest
import torch

import ml.inference
from ml.faces import FaceDetector, detect_sparse
from ml.inference import Detector
from ml.media import FrameReader
from ml.runtime import OnnxFunction
from tests.conftest import shared_path
from tests.media_factory import write_frames_from


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
    every_frame_whole = functools.partial(detect_sparse, max_gap_s=0.0, follow_gap_s=0.0)
    monkeypatch.setattr(ml.inference, "detect_sparse", every_frame_whole)
    dense = detector.analyze_video(path, 100, explain=False, emotions=False)
    assert not any(face.interpolated for frame in dense.frames for face in frame.faces)

    assert counted_faces_per_frame(sparse) == counted_faces_per_frame(dense)
    assert sparse.fake_probability == pytest.approx(dense.fake_probability, abs=0.02)
    assert sparse.verdict == dense.verdict


def test_following_faces_between_whole_searches_loses_nothing(detector, monkeypatch):
    path = shared_path("data", "videos", "ffpp", "fake", "Deepfakes_044_945.mp4")
    near = []
    detect = FaceDetector.detect

    def spy(self, images, near_faces=None):
        near.append(near_faces is not None)
        return detect(self, images, near_faces)

    monkeypatch.setattr(FaceDetector, "detect", spy)
    following = detector.analyze_video(path, 32, explain=False, emotions=False)
    assert any(near)
    near.clear()
    monkeypatch.setattr(ml.inference, "detect_sparse", functools.partial(detect_sparse, follow_gap_s=0.0))
    searching = detector.analyze_video(path, 32, explain=False, emotions=False)
    assert not any(near)

    assert counted_faces_per_frame(following) == counted_faces_per_frame(searching)
    assert following.fake_probability == pytest.approx(searching.fake_probability, abs=0.02)
    assert following.verdict == searching.verdict


def test_the_trunk_under_onnx_runtime_loses_nothing(detector):
    assert isinstance(detector.trunk, OnnxFunction)
    in_torch = Detector(detector.checkpoint, device="cpu", runtime="torch")
    path = shared_path("data", "videos", "ffpp", "fake", "Face2Face_469_481.mp4")
    onnx = detector.analyze_video(path, 20, emotions=False)
    torch_ = in_torch.analyze_video(path, 20, emotions=False)

    assert [len(frame.faces) for frame in onnx.frames] == [len(frame.faces) for frame in torch_.frames]
    for a, b in zip(onnx.faces(), torch_.faces(), strict=True):
        assert a.fake_probability == pytest.approx(b.fake_probability, abs=1e-4)
        assert abs(a.heatmap - b.heatmap).max() < 1e-3
    assert onnx.fake_probability == pytest.approx(torch_.fake_probability, abs=1e-4)
    assert onnx.verdict == torch_.verdict


@pytest.fixture
def two_threads():
    """Decoding runs beside the analysis where torch has two threads or more; `make test` gives
    each test process one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def sequentially(monkeypatch):
    """Decode every frame first, then detect: the path a one-thread worker and a damaged file take."""
    monkeypatch.setattr(Detector, "_decode_beside_detection", lambda self, path, n, explain, progress: None)


def assert_same_analysis(ours, theirs):
    assert [frame.index for frame in ours.frames] == [frame.index for frame in theirs.frames]
    assert [len(frame.faces) for frame in ours.frames] == [len(frame.faces) for frame in theirs.frames]
    for a, b in zip(ours.faces(), theirs.faces(), strict=True):
        # MTCNN's batches hold other frames (sums in another order): boxes ~1e-5 px apart.
        assert a.box == pytest.approx(b.box, abs=1e-3)
        assert a.track_id == b.track_id and a.interpolated == b.interpolated
        assert a.fake_probability == pytest.approx(b.fake_probability, abs=1e-4)
        assert a.heatmap is None or abs(a.heatmap - b.heatmap).max() < 1e-3
    assert ours.fake_probability == pytest.approx(theirs.fake_probability, abs=1e-4)
    assert ours.verdict == theirs.verdict


@pytest.mark.parametrize("frames", [20, 100])
def test_detecting_and_scoring_while_decoding_loses_nothing(detector, monkeypatch, two_threads, frames):
    path = shared_path("data", "videos", "ffpp", "fake", "Face2Face_469_481.mp4")
    scored_early = []
    score_faces = Detector._score_faces

    def spy(self, frames_, faces, explain, timings):
        scored_early.append(len(faces))
        return score_faces(self, frames_, faces, explain, timings)

    monkeypatch.setattr(Detector, "_score_faces", spy)
    beside = detector.analyze_video(path, frames, emotions=False)
    assert len(scored_early) > 1  # some faces were scored before the last frame was decoded
    sequentially(monkeypatch)
    after = detector.analyze_video(path, frames, emotions=False)
    assert_same_analysis(beside, after)


def test_a_damaged_video_is_read_as_without_decoding_beside(detector, monkeypatch, two_threads, tmp_path):
    # Its second half is noise: frames there do not decode, and `read_frames` samples again
    # over the part that does.
    path = write_frames_from(shared_path("data", "videos", "ffpp", "real", "033.mp4"), tmp_path / "clip.mp4", 120, 2)
    data = bytearray(path.read_bytes())
    start, end = len(data) * 6 // 10, len(data) * 95 // 100
    data[start:end] = np.random.default_rng(0).integers(0, 256, end - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    assert len(list(FrameReader(path, 20).frames())) < 20
    gave_up = []
    beside = Detector._decode_beside_detection

    def spy(self, *args):
        result = beside(self, *args)
        gave_up.append(result is None)
        return result

    monkeypatch.setattr(Detector, "_decode_beside_detection", spy)
    damaged = detector.analyze_video(path, 20, emotions=False)
    assert gave_up == [True]
    sequentially(monkeypatch)
    assert_same_analysis(damaged, detector.analyze_video(path, 20, emotions=False))
