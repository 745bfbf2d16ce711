"""How a verdict is decided: the one answer to "why FAKE?".

1. Each face's raw P(fake) comes from the network; each person's (track's) raw score from the
   sequence model over their faces, or the mean of their faces (`ml.inference`).
2. `Calibration.apply` maps a raw score to a calibrated probability (Platt scaling, fitted on
   validation data by `ml.training.calibrate`), once, after aggregation.
3. `counts` says which people may decide: faces large enough and present often enough.
4. `decide` takes the most suspicious counted person; `Calibration.verdict` reads their
   score against the uncertain band (FAKE at or above its top, REAL below its bottom,
   UNCERTAIN between) and `confidence` says how far it lies beyond the threshold. Per frame,
   `deciding_face` picks the most suspicious counted face: the frame's score on the timeline.
5. Beside the verdict, the model card's measurements say how much to trust it: below
   `WEAK_EVIDENCE_BELOW` on any measured set, the pages call it weak evidence.

Pure Python and numpy (no torch): the web process reads the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

# Faces smaller than this (pixels, longer side, median over the track) or seen in fewer than
# a quarter of the frames with faces are scored and shown, but do not decide the verdict:
# a face on a TV screen in the background is too small to judge.
MIN_COUNTED_FACE = 60
MIN_COUNTED_PRESENCE = 0.25
# Below this measured ROC-AUC (held-back, cross-validated or any scoreboard set), a verdict
# is called weak evidence.
WEAK_EVIDENCE_BELOW = 0.9


@dataclass
class Calibration:
    """P(fake) >= uncertain_high is "fake", < uncertain_low is "real", between is "uncertain".

    `scale` and `bias` map the network's raw probability p to a calibrated one,
    sigmoid(scale * logit(p) + bias) (Platt scaling; scale = 1 / temperature). The threshold
    and band apply to the calibrated value. The defaults leave p unchanged (checkpoints
    written before calibration existed)."""

    threshold: float = 0.5
    uncertain_low: float = 0.4
    uncertain_high: float = 0.6
    scale: float = 1.0
    bias: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.uncertain_low <= self.threshold <= self.uncertain_high <= 1.0:
            raise ValueError(f"calibration must satisfy 0 <= low <= threshold <= high <= 1, got {asdict(self)}")
        if not self.scale > 0:
            raise ValueError(f"calibration scale must be positive, got {self.scale}")

    def apply(self, raw):
        """Calibrated P(fake) of raw probabilities: a float for a float, float32 for an array
        (monotonic: rankings are kept)."""
        if self.scale == 1.0 and self.bias == 0.0:
            return raw
        p = np.clip(np.asarray(raw, dtype=np.float64), 1e-6, 1.0 - 1e-6)
        calibrated = 1.0 / (1.0 + np.exp(-(self.scale * np.log(p / (1.0 - p)) + self.bias)))
        return float(calibrated) if np.ndim(raw) == 0 else calibrated.astype(np.float32)

    def verdict(self, fake_probability: float) -> str:
        if fake_probability >= self.uncertain_high:
            return "fake"
        if fake_probability < self.uncertain_low:
            return "real"
        return "uncertain"


def confidence(fake_probability: float, threshold: float) -> float:
    """How far the score is from the threshold, towards the side it falls on: 0 to 1."""
    if fake_probability >= threshold:
        return (fake_probability - threshold) / max(1e-6, 1.0 - threshold)
    return (threshold - fake_probability) / max(1e-6, threshold)


def counts(median_face_size: float, faces: int, frames_with_faces: int) -> bool:
    """Whether a person may decide the verdict: a large enough face, often enough."""
    return median_face_size >= MIN_COUNTED_FACE and faces >= MIN_COUNTED_PRESENCE * frames_with_faces


def deciding_face(faces, counted_track_ids: set[int]):
    """Of one frame's faces (anything with `track_id` and `fake_probability`), the most
    suspicious among the counted people, or None. Engine results, stored rows and reports
    all pick a frame's face, score and expression by this one rule."""
    return max((f for f in faces if f.track_id in counted_track_ids), key=lambda f: f.fake_probability, default=None)


class Person(Protocol):
    faces: int
    median_face_size: float
    fake_probability: float
    counted: bool


@dataclass
class Decision:
    verdict: str
    fake_probability: float
    confidence: float
    person: Person  # the most suspicious counted person, whose score is the verdict's


def decide(people: Sequence[Person], calibration: Calibration) -> Decision:
    """The verdict from calibrated per-person scores. When nobody counts (every face small or
    brief), the person seen most, then largest, counts: a file with faces always gets a verdict.
    Marks that person `counted`."""
    if not people:
        raise ValueError("no people to decide from")
    if not any(person.counted for person in people):
        max(people, key=lambda p: (p.faces, p.median_face_size)).counted = True
    decisive = max((p for p in people if p.counted), key=lambda p: p.fake_probability)
    return Decision(
        verdict=calibration.verdict(decisive.fake_probability),
        fake_probability=decisive.fake_probability,
        confidence=confidence(decisive.fake_probability, calibration.threshold),
        person=decisive,
    )
