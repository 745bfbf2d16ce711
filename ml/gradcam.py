"""Grad-CAM (Selvaraju et al., 2017) at the backbone's last convolutional map.

A heatmap shows where the model's evidence for "fake" lies in a face crop: model attention,
not proof of manipulation. The gradient is taken with respect to the feature map only, so
it costs a backward pass through the head, not through the trunk.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ml.models.base import DeepfakeModel


def fake_score(logits: torch.Tensor, labels: tuple[str, ...]) -> torch.Tensor:
    """A per-row score that grows with the evidence for "fake" (the logit of P(fake))."""
    if len(labels) == 1:
        return logits[:, 0] if labels[0] == "fake" else -logits[:, 0]
    fake = labels.index("fake")
    others = torch.cat([logits[:, :fake], logits[:, fake + 1 :]], dim=1)
    return logits[:, fake] - torch.logsumexp(others, dim=1)


def gradcam(model: DeepfakeModel, features: torch.Tensor, inputs: torch.Tensor, size: int) -> np.ndarray:
    """Heatmaps (N, size, size) in [0, 1] for a batch, from its feature maps (N, C, h, w)."""
    # A copy made outside inference mode, so autograd may record on it.
    maps = features.detach().float().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model.forward_head(model.embed_from_features(maps, inputs))
        score = fake_score(logits.float(), model.config.labels).sum()
        (grads,) = torch.autograd.grad(score, maps)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * maps.detach()).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-8)[:, None, None]
    return (cam / peak).clamp(0, 1).cpu().numpy().astype(np.float32)


def overlay(crop: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heatmap in the JET colour map blended over an RGB crop of the same size."""
    colours = cv2.applyColorMap((heatmap * 255).astype(np.uint8), cv2.COLORMAP_JET)
    colours = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(crop, 1 - alpha, colours, alpha, 0)
