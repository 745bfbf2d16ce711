"""A frequency branch: the log-magnitude 2-D spectrum of a face, through a small conv net.

Blending and up-sampling in face swaps leave periodic traces that are easier to see in the
spectrum than in pixels. The branch's features are concatenated to the backbone's.
"""

from itertools import pairwise

import torch
from torch import nn


def log_spectrum(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) images -> (N, 1, H, W) standardised log-magnitude spectra, centred."""
    gray = x.float().mean(dim=1)
    spectrum = torch.fft.fftshift(torch.fft.fft2(gray, norm="ortho"), dim=(-2, -1))
    magnitude = torch.log1p(spectrum.abs())
    mean = magnitude.mean(dim=(-2, -1), keepdim=True)
    std = magnitude.std(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
    return ((magnitude - mean) / std).unsqueeze(1)


class FrequencyBranch(nn.Module):
    def __init__(self, out_features: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = [1, 16, 32, out_features]
        for c_in, c_out in pairwise(channels):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out)]
            layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.net(log_spectrum(x))
