"""What every detector model is: a config that travels with its weights, and one interface.

Interface (timm's split of `forward`, extended for sequences):
    forward_features(x) -> the last convolutional feature map (Grad-CAM reads it)
    embed_from_features(f, x) -> one feature vector per face crop, (N, D), from that map
    embed(x)            -> embed_from_features(forward_features(x), x)
    forward_head(e)     -> per-crop logits from embeddings, (N, C)
    forward(x)          -> forward_head(embed(x))
    forward_sequence(e) -> per-video logits from (B, T, D) embeddings (video models only)

Grad-CAM differentiates the per-crop fake logit with respect to the feature map alone
(`embed_from_features` then `forward_head`), so explaining costs no backward pass
through the trunk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelConfig:
    """Architecture and preprocessing: everything needed to rebuild a model and feed it.

    `labels` is the class mapping: with one output, the class its sigmoid is the probability
    of (`("fake",)` or `("real",)`); with several, the class of each softmax index.
    """

    name: str
    kind: str  # "image" or "video"
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    labels: tuple[str, ...] = ("fake",)
    crop_margin: float = 0.3
    resize: str = "area"  # how crops are resized to input_size: "area" or "nearest"
    arch: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        data = dict(data)
        for key in ("mean", "std", "labels"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def fake_probability(logits: torch.Tensor, labels: tuple[str, ...]) -> torch.Tensor:
    """P(fake) per row of logits, under the model's class mapping."""
    logits = logits.float()
    if len(labels) == 1:
        p = torch.sigmoid(logits[:, 0])
        if labels[0] == "fake":
            return p
        if labels[0] == "real":
            return 1.0 - p
        raise ValueError(f"a one-output model must name 'fake' or 'real', not {labels[0]!r}")
    if "fake" not in labels:
        raise ValueError(f"the class mapping {labels} has no 'fake' class")
    return torch.softmax(logits, dim=1)[:, labels.index("fake")]


class DeepfakeModel(nn.Module):
    config: ModelConfig

    @property
    def is_sequence_model(self) -> bool:
        """Whether a person's score comes from the sequence head. A video model whose training
        found the mean of its frame scores better on validation says so in its config
        (`arch["aggregate"] = "mean"`) and is scored like a photo model, frame by frame."""
        return self.config.kind == "video" and self.config.arch.get("aggregate", "sequence") == "sequence"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def embed_from_features(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_from_features(self.forward_features(x), x)

    def forward_head(self, embeddings: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.embed(x))

    def forward_sequence(self, embeddings: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.config.name} is not a sequence model")

    def fake_probability(self, logits: torch.Tensor) -> torch.Tensor:
        return fake_probability(logits, self.config.labels)

    def optimize_for_inference(self) -> DeepfakeModel:
        """This model, in eval mode, rewritten in place for inference where that computes the
        same function faster; it cannot be trained or saved as a checkpoint afterwards. The
        default changes nothing; a subclass may fold its batch norms into their convolutions
        or run its activations in place."""
        return self.eval()
