"""The whole pipeline on real media, with a real (untrained-head) model from a checkpoint."""

import json

import numpy as np
import pytest
import torch

from ml.calibration import Calibration
from ml.checkpoint import save_checkpoint
from ml.errors import ModelUnavailableError, UnreadableMediaError
from ml.inference import Detector, analyze_file, get_detector
from ml.models import create_model
from ml.results import VERDICTS
from tests.conftest import shared_path
from tests.media_factory import blank_photo


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    for name in ("efficientnet_lstm", "efficientnet"):
        save_checkpoint(create_model(name), folder / f"{name}.pt", Calibration(), {"version": f"test-{name}"})
    return folder


@pytest.fixture(scope="module")
def video_detector(model_dir):
    return get_detector(media_type="video", model_dir=model_dir, device="cpu")


def test_a_video_analysis_has_every_part(video_detector):
    stages = []
    result = video_detector.analyze_video(
        shared_path("data", "videos", "ffpp", "fake", "Deepfakes_033_097.mp4"),
        frames=10,
        progress=lambda stage, fraction: stages.append((stage, fraction)),
    )
    assert result.media_type == "video"
    assert result.verdict in VERDICTS and result.verdict != "no_face"
    assert 0 <= result.fake_probability <= 1 and 0 <= result.confidence <= 1
    assert result.model_name == "efficientnet_lstm" and result.model_version == "test-efficientnet_lstm"
    assert result.frames_analyzed == 10
    assert [f.index for f in result.frames] == sorted(f.index for f in result.frames)
    assert result.frames[-1].timestamp_s > 9
    assert result.faces_detected >= 10
    assert result.aggregates.used == "sequence"
    counted = [t for t in result.tracks if t.counted]
    assert counted and result.fake_probability == max(t.fake_probability for t in counted)
    for face in result.faces():
        assert face.crop.shape == (224, 224, 3)
        assert face.heatmap.shape == (224, 224)
        assert face.heatmap.min() >= 0 and face.heatmap.max() <= 1
        assert face.overlay.shape == (224, 224, 3)
    assert result.frames[0].thumbnail.shape[1] == 320
    assert set(result.timings) >= {"decode", "detect", "classify", "explain", "total"}
    assert stages[0] == ("decoding", 0.0) and stages[-1] == ("done", 1.0)
    json.dumps(result.to_dict())  # the summary is JSON-able


def test_scores_do_not_depend_on_batching(video_detector):
    path = shared_path("data", "videos", "ffpp", "real", "033.mp4")
    a = video_detector.analyze_video(path, frames=10, explain=False)
    b = video_detector.analyze_video(path, frames=10, explain=True)
    pa = [f.fake_probability for f in a.faces()]
    pb = [f.fake_probability for f in b.faces()]
    assert np.allclose(pa, pb, atol=1e-5)
    assert a.faces()[0].heatmap is None


def test_a_photo_with_several_faces_scores_each(model_dir):
    detector = get_detector(media_type="image", model_dir=model_dir, device="cpu")
    result = detector.analyze_image(shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg"))
    assert result.media_type == "image"
    assert result.frames_analyzed == 1
    assert result.faces_detected >= 4
    assert len(result.tracks) == result.faces_detected
    assert result.aggregates.used == "mean"


def test_a_photo_without_a_face_is_a_no_face_result(model_dir, tmp_path):
    detector = get_detector(media_type="image", model_dir=model_dir, device="cpu")
    result = detector.analyze_image(blank_photo(tmp_path / "wall.jpg"))
    assert result.verdict == "no_face"
    assert result.fake_probability is None and result.faces_detected == 0
    assert result.to_dict()["tracks"] == []


def test_models_are_loaded_once_per_process(model_dir):
    first = get_detector(media_type="video", model_dir=model_dir, device="cpu")
    assert get_detector(media_type="video", model_dir=model_dir, device="cpu") is first


def test_a_missing_model_is_model_unavailable(tmp_path):
    with pytest.raises(ModelUnavailableError, match="not found"):
        get_detector(media_type="video", model_dir=tmp_path, device="cpu")


def test_analyze_file_tells_photos_from_videos_and_rejects_junk(model_dir, tmp_path):
    photo = next(shared_path("data", "images", "lfw_faceswap", "test", "fake").glob("*.jpg"))
    result = analyze_file(photo, model=model_dir / "efficientnet.pt")
    assert result.media_type == "image" and result.faces_detected >= 1
    junk = tmp_path / "notes.mp4"
    junk.write_text("not a video")
    with pytest.raises(UnreadableMediaError):
        analyze_file(junk, model=model_dir / "efficientnet.pt")


def test_an_image_model_can_analyse_a_video(model_dir):
    detector = Detector.load(model_dir / "efficientnet.pt", device="cpu")
    result = detector.analyze_video(shared_path("data", "videos", "ffpp", "real", "035.mp4"), frames=10)
    assert result.aggregates.used == "mean" and result.aggregates.sequence is None
    assert result.frames_analyzed == 10


def test_the_engine_scores_in_float32_on_every_machine(video_detector, model_dir):
    """bfloat16 moves P(fake) enough to change verdicts: it is used only when asked for."""
    assert video_detector.bf16 is False
    checkpoint = video_detector.checkpoint
    assert Detector(checkpoint, device="cpu", precision="bf16").bf16 is True
    with pytest.raises(ValueError, match="precision"):
        Detector(checkpoint, device="cpu", precision="auto")
