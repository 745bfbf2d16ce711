"""MesoNet (Afchar et al., WIFS 2018): Meso4 and MesoInception4, ported from the authors'
Keras weights (Apache-2.0; keep their LICENSE and NOTICE with any copy of the weights).

Keras layout notes the port depends on: every conv block is Conv -> ReLU -> BatchNorm ->
MaxPool; BatchNorm epsilon is 1e-3; Flatten is NHWC order; the output is a sigmoid of
P(REAL); inputs are 256x256 RGB in [0, 1], resized nearest-neighbour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.models.base import DeepfakeModel, ModelConfig
from ml.models.registry import register_model


def _conv(c_in: int, c_out: int, k: int, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=dilation * (k // 2), dilation=dilation)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3)


class InceptionLayer(nn.Module):
    def __init__(self, c_in: int, a: int, b: int, c: int, d: int) -> None:
        super().__init__()
        self.b1 = _conv(c_in, a, 1)
        self.b2 = nn.Sequential(_conv(c_in, b, 1), nn.ReLU(), _conv(b, b, 3))
        self.b3 = nn.Sequential(_conv(c_in, c, 1), nn.ReLU(), _conv(c, c, 3, dilation=2))
        self.b4 = nn.Sequential(_conv(c_in, d, 1), nn.ReLU(), _conv(d, d, 3, dilation=3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(self.b1(x)), F.relu(self.b2(x)), F.relu(self.b3(x)), F.relu(self.b4(x))], 1)


class MesoNet(DeepfakeModel):
    def __init__(self, config: ModelConfig, inception: bool) -> None:
        super().__init__()
        self.config = config
        self.inception = inception
        if inception:
            self.block1 = InceptionLayer(3, 1, 4, 4, 2)
            self.bn1 = _bn(11)
            self.block2 = InceptionLayer(11, 2, 4, 4, 2)
            self.bn2 = _bn(12)
            self.conv3 = _conv(12, 16, 5)
        else:
            self.block1 = _conv(3, 8, 3)
            self.bn1 = _bn(8)
            self.block2 = _conv(8, 8, 5)
            self.bn2 = _bn(8)
            self.conv3 = _conv(8, 16, 5)
        self.bn3 = _bn(16)
        self.conv4 = _conv(16, 16, 5)
        self.bn4 = _bn(16)
        self.dropout = nn.Dropout(0.5)
        self.dense1 = nn.Linear(1024, 16)
        self.dense2 = nn.Linear(16, 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        act = (lambda t: t) if self.inception else F.relu  # inception layers apply their own ReLU
        x = F.max_pool2d(self.bn1(act(self.block1(x))), 2)
        x = F.max_pool2d(self.bn2(act(self.block2(x))), 2)
        x = F.max_pool2d(self.bn3(F.relu(self.conv3(x))), 2)
        return self.bn4(F.relu(self.conv4(x)))

    def embed_from_features(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(features, 4)
        return x.permute(0, 2, 3, 1).flatten(1)  # Keras flattens NHWC

    def forward_head(self, embeddings: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.dense1(self.dropout(embeddings)), 0.1)
        return self.dense2(self.dropout(x))


def _config(name: str) -> ModelConfig:
    return ModelConfig(
        name=name,
        kind="image",
        input_size=256,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        labels=("real",),
        resize="nearest",
    )


@register_model(_config("mesonet4"))
def mesonet4(config: ModelConfig, pretrained: bool = False) -> MesoNet:
    return MesoNet(config, inception=False)


@register_model(_config("mesoinception4"))
def mesoinception4(config: ModelConfig, pretrained: bool = False) -> MesoNet:
    return MesoNet(config, inception=True)


def load_keras_weights(path: str | Path) -> MesoNet:
    """A MesoNet holding the weights of one of the authors' Keras .h5 files."""
    import h5py

    with h5py.File(path, "r") as h5:
        layers = {name: h5[name][name] for name in h5 if len(h5[name]) and name in h5[name]}
        convs = sorted((n for n in layers if n.startswith("conv2d_")), key=lambda n: int(n.split("_")[-1]))
        bns = sorted((n for n in layers if n.startswith("batch_normalization_")), key=lambda n: int(n.split("_")[-1]))
        denses = sorted((n for n in layers if n.startswith("dense_")), key=lambda n: int(n.split("_")[-1]))
        inception = len(convs) == 16
        model = (mesoinception4 if inception else mesonet4)(_config("mesoinception4" if inception else "mesonet4"))
        model.config = _config("mesoinception4" if inception else "mesonet4")
        if inception:
            targets = []
            for layer in (model.block1, model.block2):
                targets += [
                    layer.b1,
                    layer.b2[0],
                    layer.b2[2],
                    layer.b3[0],
                    layer.b3[2],
                    layer.b4[0],
                    layer.b4[2],
                ]
            targets += [model.conv3, model.conv4]
        else:
            targets = [model.block1, model.block2, model.conv3, model.conv4]
        if len(targets) != len(convs) or len(bns) != 4 or len(denses) != 2:
            raise ValueError(f"{Path(path).name}: not a Meso4/MesoInception4 weight file")
        with torch.no_grad():
            for conv, name in zip(targets, convs, strict=True):
                conv.weight.copy_(torch.from_numpy(np.asarray(layers[name]["kernel:0"]).transpose(3, 2, 0, 1)))
                conv.bias.copy_(torch.from_numpy(np.asarray(layers[name]["bias:0"])))
            for bn, name in zip((model.bn1, model.bn2, model.bn3, model.bn4), bns, strict=True):
                bn.weight.copy_(torch.from_numpy(np.asarray(layers[name]["gamma:0"])))
                bn.bias.copy_(torch.from_numpy(np.asarray(layers[name]["beta:0"])))
                bn.running_mean.copy_(torch.from_numpy(np.asarray(layers[name]["moving_mean:0"])))
                bn.running_var.copy_(torch.from_numpy(np.asarray(layers[name]["moving_variance:0"])))
            for dense, name in zip((model.dense1, model.dense2), denses, strict=True):
                dense.weight.copy_(torch.from_numpy(np.asarray(layers[name]["kernel:0"]).T))
                dense.bias.copy_(torch.from_numpy(np.asarray(layers[name]["bias:0"])))
    return model.eval()
