"""Self-blended images (SBI; Shiohara & Yamasaki, CVPR 2022): training fakes made from a real
face alone.

A copy of the face (the "source") is slightly changed in colour, sharpness and geometry,
then blended back into the original (the "target") inside a soft mask around the inner
face. The result carries the traces every face swap leaves at its blending boundary, and
none of any one manipulation method, which is why detectors trained on it generalise.

The mask is built from MTCNN's five landmarks (eyes, nose, mouth corners): a polygon from the
brows to the chin, scaled and jittered at random, eroded or dilated, then blurred. A share of
blends (`part_share`) covers only a part of the face instead: the mouth and jaw, or the eyes.
Reenactment methods leave their boundary there: NeuralTextures re-renders the mouth alone,
Face2Face's changes are strongest around the mouth, and a whole-face blend never shows a
boundary that crosses the cheeks below the nose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np


@dataclass(frozen=True)
class BlendParams:
    """Every random choice of one blend, so a whole video can share them (consistent fakes)."""

    hull_scale: float
    jitter: np.ndarray  # (8, 2) vertex offsets, in units of the eye distance
    morph: int  # > 0 dilate, < 0 erode, in pixels (at 256 px)
    blur: int  # odd Gaussian kernel for the mask edge (at 256 px)
    ratio: float  # blend strength at the mask's centre
    shift: tuple[float, float]  # source translation, fraction of the crop size
    scale: float  # source scale
    hue: float
    saturation: float
    brightness: float
    contrast: float
    channel_shift: tuple[float, float, float]
    frequency: str  # "none", "downup" (blur by re-sampling) or "sharpen"
    region: str = "face"  # "face" (brows to chin), "mouth" (below the nose to the chin) or "eyes"


REGIONS = ("face", "mouth", "eyes")


def sample_params(rng: np.random.Generator, part_share: float = 0.0) -> BlendParams:
    """Random blend parameters. With `part_share` > 0 that share of blends covers the mouth
    (two in three) or the eyes instead of the whole inner face; with 0 the random stream is
    the one it always was, so earlier runs replay exactly."""
    params = BlendParams(
        hull_scale=float(rng.uniform(0.9, 1.15)),
        jitter=rng.normal(0.0, 0.05, size=(8, 2)),
        morph=int(rng.integers(-6, 7)),
        blur=int(rng.choice([5, 9, 13, 17, 21])),
        ratio=float(rng.choice([0.5, 0.75, 1.0, 1.0, 1.0])),
        shift=(float(rng.uniform(-0.03, 0.03)), float(rng.uniform(-0.03, 0.03))),
        scale=float(rng.uniform(0.95, 1.05)),
        hue=float(rng.uniform(-6, 6)),
        saturation=float(rng.uniform(0.85, 1.15)),
        brightness=float(rng.uniform(-20, 20)),
        contrast=float(rng.uniform(0.85, 1.15)),
        channel_shift=tuple(float(v) for v in rng.uniform(-15, 15, size=3)),
        frequency=str(rng.choice(["none", "downup", "sharpen"])),
    )
    if part_share > 0 and rng.random() < part_share:
        params = replace(params, region="mouth" if rng.random() < 2 / 3 else "eyes")
    return params


def _region_polygon(landmarks: np.ndarray, region: str) -> tuple[np.ndarray, float]:
    """The region's polygon in pixels, before jitter, and the eye distance it is measured in."""
    left_eye, right_eye, nose, mouth_left, mouth_right = landmarks.astype(np.float32)
    eye_distance = max(float(np.linalg.norm(right_eye - left_eye)), 4.0)
    across = (right_eye - left_eye) / eye_distance  # unit vector from left to right eye
    down = np.array([-across[1], across[0]], np.float32)  # perpendicular, towards the chin
    e = eye_distance
    mouth = (mouth_left + mouth_right) / 2
    if region == "face":
        points = [
            left_eye - 0.55 * e * across - 0.55 * e * down,  # above the left brow
            (left_eye + right_eye) / 2 - 0.75 * e * down,  # mid forehead
            right_eye + 0.55 * e * across - 0.55 * e * down,
            right_eye + 0.75 * e * across + 0.25 * e * down,  # right cheek
            mouth_right + 0.35 * e * across + 0.35 * e * down,
            mouth + 0.6 * e * down,  # chin
            mouth_left - 0.35 * e * across + 0.35 * e * down,
            left_eye - 0.75 * e * across + 0.25 * e * down,  # left cheek
        ]
    elif region == "mouth":
        # From just under the nose tip over the lips to the chin, cheek to cheek.
        points = [
            nose - 0.5 * e * across + 0.1 * e * down,
            nose + 0.5 * e * across + 0.1 * e * down,
            mouth_right + 0.4 * e * across,
            mouth_right + 0.3 * e * across + 0.4 * e * down,
            mouth + 0.6 * e * down,  # chin
            mouth_left - 0.3 * e * across + 0.4 * e * down,
            mouth_left - 0.4 * e * across,
        ]
    elif region == "eyes":
        # Both eyes and brows, one band from temple to temple.
        points = [
            left_eye - 0.6 * e * across - 0.5 * e * down,
            right_eye + 0.6 * e * across - 0.5 * e * down,
            right_eye + 0.6 * e * across + 0.3 * e * down,
            left_eye - 0.6 * e * across + 0.3 * e * down,
        ]
    else:
        raise ValueError(f"unknown blend region {region!r}; expected one of {REGIONS}")
    return np.array(points, np.float32), e


def face_mask(landmarks: np.ndarray, size: tuple[int, int], params: BlendParams) -> np.ndarray:
    """A soft mask (H, W) in [0, 1] over the blend's region of the face, from five landmarks."""
    height, width = size
    polygon, e = _region_polygon(landmarks, params.region)
    centre = polygon.mean(axis=0)
    polygon = centre + (polygon - centre) * params.hull_scale + params.jitter[: len(polygon)] * e
    hull = cv2.convexHull(polygon.astype(np.int32))
    mask = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(mask, hull, 255)
    unit = max(1, round(abs(params.morph) * width / 256))
    if params.morph:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * unit + 1, 2 * unit + 1))
        mask = cv2.dilate(mask, kernel) if params.morph > 0 else cv2.erode(mask, kernel)
    blur = max(3, round(params.blur * width / 256)) | 1
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (blur, blur), 0)
    # Keep the soft edge inside the face region: a blurred mask must still be 0 far outside it.
    return np.clip(soft, 0.0, 1.0)


def _transform_source(face: np.ndarray, params: BlendParams) -> np.ndarray:
    height, width = face.shape[:2]
    image = face.astype(np.float32)
    hsv = cv2.cvtColor(face, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + params.hue) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * params.saturation, 0, 255)
    image = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    image = (image - 128.0) * params.contrast + 128.0 + params.brightness
    image = image + np.asarray(params.channel_shift, np.float32)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if params.frequency == "downup":
        small = cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    elif params.frequency == "sharpen":
        blurred = cv2.GaussianBlur(image, (0, 0), 2.0)
        image = cv2.addWeighted(image, 1.6, blurred, -0.6, 0)
    matrix = np.array(
        [
            [params.scale, 0, (1 - params.scale) * width / 2 + params.shift[0] * width],
            [0, params.scale, (1 - params.scale) * height / 2 + params.shift[1] * height],
        ],
        np.float32,
    )
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def self_blend(
    face: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator | None = None,
    params: BlendParams | None = None,
    part_share: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A self-blended fake of an RGB uint8 face crop, and the blend mask used (H, W) in [0, 1].

    Pixels where the mask is 0 are exactly the input's. Deterministic for a seeded `rng`
    (or given `params`); `part_share` as for `sample_params`.
    """
    if params is None:
        params = sample_params(rng if rng is not None else np.random.default_rng(), part_share)
    source = _transform_source(face, params)
    mask = face_mask(landmarks, face.shape[:2], params) * params.ratio
    blended = mask[..., None] * source.astype(np.float32) + (1.0 - mask[..., None]) * face.astype(np.float32)
    result = np.where(mask[..., None] > 0, np.clip(np.rint(blended), 0, 255), face).astype(np.uint8)
    return result, mask
