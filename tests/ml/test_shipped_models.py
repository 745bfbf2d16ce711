"""The models the repository ships: they load, carry their provenance, and get clear cases right."""

import json

import pytest

from ml.checkpoint import load_checkpoint
from ml.inference import DEFAULT_MODEL_DIR, Detector
from tests.conftest import shared_path

SHIPPED = {"efficientnet_lstm": "video", "efficientnet": "image"}


@pytest.mark.parametrize(("name", "kind"), SHIPPED.items())
def test_a_shipped_checkpoint_loads_with_its_provenance(name, kind):
    path = DEFAULT_MODEL_DIR / f"{name}.pt"
    if not path.is_file():
        pytest.skip(f"{name} is not shipped yet")
    assert path.stat().st_size < 25 * 1024 * 1024
    checkpoint = load_checkpoint(path, expected_name=name)
    provenance = checkpoint.provenance
    assert checkpoint.config.kind == kind
    for key in (
        "version",
        "trained_at",
        "data",
        "data_note",
        "splits",
        "train_config",
        "validation",
        "training_minutes",
    ):
        assert provenance.get(key), key
    assert "research" in provenance["data_note"]
    calibration = checkpoint.calibration
    assert 0 < calibration.uncertain_low <= calibration.threshold <= calibration.uncertain_high < 1
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["sha256"] == checkpoint.sha256 and card["config"]["name"] == name
    # Its measured accuracy travels with it (ml.training.evaluate --record; ml.training.crossval --record for video),
    # recorded under the hash of these very weights, with an interval.
    measured = [card["evaluation"]["test"]] + ([card["evaluation"]["crossval"]] if kind == "video" else [])
    for result in measured:
        low, high = result["roc_auc_interval"]
        assert 0.5 < low <= result["roc_auc"] <= high <= 1 and result["files"] >= 20
    assert card["evaluation"]["test"]["split"] == "test"


def test_a_measurement_is_recorded_only_for_the_weights_it_measured(tmp_path):
    from ml.calibration import Calibration
    from ml.checkpoint import record_evaluation, save_checkpoint
    from ml.models import create_model

    path = save_checkpoint(create_model("efficientnet"), tmp_path / "m.pt", Calibration(), {"version": "t"})
    record_evaluation(path, "test", {"roc_auc": 0.9})
    assert json.loads(path.with_suffix(".json").read_text())["evaluation"] == {"test": {"roc_auc": 0.9}}
    path.write_bytes(path.read_bytes() + b"changed")
    with pytest.raises(ValueError, match="does not describe the weights"):
        record_evaluation(path, "test", {"roc_auc": 0.99})


# The first real and the first fake (by name) of the test split each model was evaluated on.
CASES = {
    "efficientnet": (
        ("data", "images", "lfw_faceswap", "test", "real", "real_0.jpg"),
        ("data", "images", "lfw_faceswap", "test", "fake", "fake_0.jpg"),
    ),
    "efficientnet_lstm": (
        ("data", "videos", "ffpp", "real", "210.mp4"),
        ("data", "videos", "ffpp", "fake", "Deepfakes_210_241.mp4"),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_a_shipped_model_never_commits_wrongly_on_known_files_and_ranks_them(name):
    """Its verdict on the first real and the first fake test file is the right one or
    UNCERTAIN (never the wrong definite verdict), and the fake scores above the real."""
    path = DEFAULT_MODEL_DIR / f"{name}.pt"
    if not path.is_file():
        pytest.skip(f"{name} is not shipped yet")
    detector = Detector.load(path, device="cpu")
    scores = {}
    for truth, parts in zip(("real", "fake"), CASES[name], strict=True):
        media = shared_path(*parts)
        if SHIPPED[name] == "video":
            result = detector.analyze_video(media, 32, explain=False)
        else:
            result = detector.analyze_image(media, explain=False)
        assert result.verdict in (truth, "uncertain"), (
            f"{parts[-1]}: {result.verdict}, P(fake) {result.fake_probability:.3f}"
        )
        scores[truth] = result.fake_probability
    assert scores["fake"] > scores["real"]
