"""Training-time augmentation of face crops (RGB uint8), and the matching evaluation resize.

Each transform imitates something uploaded media does to faces: re-compression, resizing,
blur, colour shifts, small changes of framing. None of them may create or remove the
blending traces a detector must learn, so they are mild.
"""

from __future__ import annotations

import cv2
import numpy as np


def to_input(crop: np.ndarray, size: int) -> np.ndarray:
    """The evaluation view of a cached crop: the whole crop resized to the model's input."""
    if crop.shape[0] == size:
        return crop
    interpolation = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def augment(crop: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random training view of a crop, at the model's input size."""
    height, width = crop.shape[:2]
    # Framing: a random square of 80-100 % of the crop, slightly off centre.
    side = round(width * np.sqrt(rng.uniform(0.8, 1.0)))
    x = int(rng.integers(0, width - side + 1))
    y = int(rng.integers(0, height - side + 1))
    image = to_input(crop[y : y + side, x : x + side], size)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.5:
        alpha = rng.uniform(0.8, 1.2)  # contrast
        beta = rng.uniform(-20, 20)  # brightness
        image = cv2.convertScaleAbs(np.ascontiguousarray(image), alpha=alpha, beta=beta)
    if rng.random() < 0.3:
        hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.7, 1.3), 0, 255)
        image = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    if rng.random() < 0.2:
        factor = rng.uniform(0.5, 0.9)
        small = cv2.resize(image, (int(size * factor), int(size * factor)), interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.2:
        image = cv2.GaussianBlur(np.ascontiguousarray(image), (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.5:
        quality = int(rng.integers(40, 96))
        ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            image = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(image)
