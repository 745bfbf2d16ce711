"""An independent forward pass of a Keras 2 functional model in numpy, driven by the h5 file's
own layer graph (NHWC, TensorFlow padding rules). It shares no code with the PyTorch port,
so agreement between the two checks the port's layer mapping, layouts and padding."""

from __future__ import annotations

import json

import h5py
import numpy as np


def _same_pads(length: int, size: int, stride: int) -> tuple[int, int]:
    out = -(-length // stride)
    total = max((out - 1) * stride + size - length, 0)
    return total // 2, total - total // 2


def _pad(x: np.ndarray, size: int, stride: int, padding: str, value: float = 0.0) -> np.ndarray:
    if padding == "valid":
        return x
    (top, bottom), (left, right) = _same_pads(x.shape[1], size, stride), _same_pads(x.shape[2], size, stride)
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def _windows(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(N, H', W', size, size, C) sliding windows."""
    n, h, w, c = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, oh, ow, size, size, c), (s[0], s[1] * stride, s[2] * stride, s[1], s[2], s[3])
    )


def conv2d(x, kernel, stride, padding, bias=None):
    size = kernel.shape[0]
    patches = _windows(np.ascontiguousarray(_pad(x, size, stride, padding)), size, stride)
    y = np.einsum("nhwijc,ijco->nhwo", patches, kernel, optimize=True)
    return y + bias if bias is not None else y


def depthwise(x, kernel, stride, padding):
    size = kernel.shape[0]
    patches = _windows(np.ascontiguousarray(_pad(x, size, stride, padding)), size, stride)
    return np.einsum("nhwijc,ijc->nhwc", patches, kernel[..., 0], optimize=True)


def forward(path: str, x: np.ndarray) -> np.ndarray:
    """Run the model in `path` on NHWC float64 input `x`; returns the last layer's output."""
    with h5py.File(path, "r") as handle:
        layers = json.loads(handle.attrs["model_config"])["config"]["layers"]
        weights = {}
        for name in handle["model_weights"]:
            found: dict[str, np.ndarray] = {}

            def collect(key: str, obj: object, found: dict = found) -> None:
                if isinstance(obj, h5py.Dataset):
                    found[key.rsplit("/", 1)[-1].split(":")[0]] = obj[()].astype(np.float64)

            handle["model_weights"][name].visititems(collect)
            weights[name] = found
    outputs: dict[str, np.ndarray] = {}
    for layer in layers:
        kind, name, config = layer["class_name"], layer["name"], layer["config"]
        inputs = [outputs[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else [x]
        w = weights.get(name, {})
        a = inputs[0]
        if kind == "InputLayer":
            y = a
        elif kind == "Conv2D":
            y = conv2d(a, w["kernel"], config["strides"][0], config["padding"], w.get("bias"))
        elif kind == "SeparableConv2D":
            y = depthwise(a, w["depthwise_kernel"], config["strides"][0], config["padding"])
            y = conv2d(y, w["pointwise_kernel"], 1, "valid")
        elif kind == "BatchNormalization":
            y = (a - w["moving_mean"]) / np.sqrt(w["moving_variance"] + config["epsilon"]) * w["gamma"] + w["beta"]
        elif kind == "Activation":
            if config["activation"] == "relu":
                y = np.maximum(a, 0)
            elif config["activation"] == "softmax":
                e = np.exp(a - a.max(axis=-1, keepdims=True))
                y = e / e.sum(axis=-1, keepdims=True)
            else:
                raise NotImplementedError(config["activation"])
        elif kind == "MaxPooling2D":
            size, stride = config["pool_size"][0], config["strides"][0]
            padded = _pad(a, size, stride, config["padding"], value=-np.inf)
            y = _windows(np.ascontiguousarray(padded), size, stride).max(axis=(3, 4))
        elif kind == "Add":
            y = sum(inputs)
        elif kind == "GlobalAveragePooling2D":
            y = a.mean(axis=(1, 2))
        else:
            raise NotImplementedError(kind)
        outputs[name] = y
    return outputs[layers[-1]["name"]]
