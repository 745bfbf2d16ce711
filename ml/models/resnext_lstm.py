"""ResNeXt50-32x4d + LSTM, as in the classic open ResNeXt-LSTM deepfake detector, able to
load that project's published checkpoints.

Their checkpoint layout: the trunk under `model.0` ... `model.7` (resnext50's children minus
avgpool and fc), `lstm.weight_ih_l0` / `lstm.weight_hh_l0` only, and `linear1` with two
outputs where index 1 means REAL; inputs are 112x112 face crops with ImageNet mean/std.

Two modes (`arch["mode"]`):

* `"compat"` reproduces their computation exactly. They build `nn.LSTM(2048, 2048, 1, False)`,
  whose 4th positional argument is `bias` (no biases), and feed it (batch, frames, 2048)
  although it is not batch_first. So the LSTM reads the batch axis as time: with one video
  per batch every frame is an independent one-step sequence from a zero state, and the
  output is `linear1(mean over frames of those one-step outputs)`. Their page draws its
  heatmap from the last frame's feature map. Use this mode only for their checkpoints.
* `"temporal"` (default, for our own training) runs a batch-first LSTM with biases over the
  frames in order and classifies from the mean and last outputs.

No ImageNet ResNeXt50 weights can be had offline, so the trunk starts from random weights
unless a checkpoint is given.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ml.errors import ModelUnavailableError
from ml.models.base import DeepfakeModel, ModelConfig
from ml.models.registry import register_model


class ResNeXtLSTM(DeepfakeModel):
    def __init__(self, config: ModelConfig, pretrained: bool = False) -> None:
        super().__init__()
        from torchvision.models import resnext50_32x4d

        self.config = config
        self.mode = config.arch.get("mode", "temporal")
        if self.mode not in ("compat", "temporal"):
            raise ValueError(f"mode must be 'compat' or 'temporal', not {self.mode!r}")
        trunk = resnext50_32x4d(weights=None)
        self.model = nn.Sequential(*list(trunk.children())[:-2])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dp = nn.Dropout(0.4)
        hidden = config.arch.get("hidden", 2048)
        if self.mode == "compat":
            self.lstm = nn.LSTM(2048, hidden, 1, bias=False)
            self.linear1 = nn.Linear(hidden, len(config.labels))
        else:
            self.lstm = nn.LSTM(2048, hidden, 1, batch_first=True)
            self.linear1 = nn.Linear(2 * hidden, len(config.labels))
            self.frame_head = nn.Linear(2048, len(config.labels))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def embed_from_features(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.avgpool(features).flatten(1)

    def forward_head(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Per-frame logits. In compat mode: their LSTM step and linear1 on the frame alone."""
        if self.mode == "compat":
            outputs, _ = self.lstm(embeddings.float().unsqueeze(0))  # time = 1, batch = frames
            return self.linear1(self.dp(outputs[0]))
        return self.frame_head(self.dp(embeddings))

    def forward_sequence(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, T, 2048) embeddings -> (B, C) logits, per the mode's documented behaviour."""
        if self.mode == "compat":
            outputs, _ = self.lstm(embeddings.float(), None)  # not batch_first, as in theirs
            return self.dp(self.linear1(torch.mean(outputs, dim=1)))
        outputs, _ = self.lstm(self.dp(embeddings.float()))
        return self.linear1(self.dp(torch.cat([outputs.mean(dim=1), outputs[:, -1]], dim=1)))


@register_model(
    ModelConfig(
        name="resnext50_lstm",
        kind="video",
        input_size=112,
        labels=("fake", "real"),
        arch={"mode": "temporal", "hidden": 2048},
    )
)
def resnext50_lstm(config: ModelConfig, pretrained: bool = False) -> ResNeXtLSTM:
    if pretrained:
        raise FileNotFoundError("no ImageNet ResNeXt50 weights ship offline: pass a checkpoint")
    return ResNeXtLSTM(config)


def load_reference_state_dict(state_dict: dict[str, torch.Tensor]) -> ResNeXtLSTM:
    """A compat-mode model holding a checkpoint of the reference project (their key names)."""
    config = ModelConfig(
        name="resnext50_lstm",
        kind="video",
        input_size=112,
        labels=("fake", "real"),
        arch={"mode": "compat", "hidden": state_dict["lstm.weight_hh_l0"].shape[1]},
    )
    model = ResNeXtLSTM(config)
    model.load_state_dict(state_dict)
    return model


def import_reference(source: str | Path) -> ResNeXtLSTM:
    """A checkpoint file of the reference ResNeXt-LSTM project as a compat-mode model; save it
    with `ml.checkpoint.save_checkpoint` (threshold 0.5, no band: theirs had none)."""
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged or foreign file
        raise ModelUnavailableError(f"{Path(source).name} is corrupt or not a state dict ({exc})") from None
    return load_reference_state_dict(state)
