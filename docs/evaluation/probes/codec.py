"""Probe (2026-11-29): does the video model's trunk see self-blending traces, and FF++'s fakes,
as well through H.264 as through JPEG?

    PYTHONPATH=. .venv/bin/python docs/evaluation/probes/codec.py ../shared/data/videos/ffpp \
        ~/.cache/deepfake-forensics/crops/ffpp ml/weights/efficientnet_lstm.pt \
        [OTHER_DATA OTHER_CACHE ...]

Eight evenly spaced cached crops of each FF++ c23 train + validation video; self-blended fakes
made from the real crops (seed 0). Each condition re-encodes every crop of both classes alike,
then scores them in float32; it prints per-frame ROC-AUC of real crops against their blends
and against FF++'s fakes. For comparison, each OTHER source's validation reals (at most 400
crops) against their blends, as cached. A record of what MODEL_CARD.md reports, not part of the workshop.
"""

import io
import sys
from pathlib import Path

import av
import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

from ml.checkpoint import load_checkpoint
from ml.training.datasets import discover, grouped_split, read_index
from ml.training.sbi import self_blend
from ml.training.train import load_split, predict


def h264(image: np.ndarray, crf: int) -> np.ndarray:
    """An RGB image through a one-frame libx264 stream (yuv420p) and back."""
    height, width = image.shape[:2]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency"}
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")), *stream.encode()]:
            out.mux(packet)
    buffer.seek(0)
    with av.open(buffer, "r", format="h264") as decoded:
        return next(decoded.decode(video=0)).to_ndarray(format="rgb24")


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)


def self_blends(reals: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.stack([self_blend(c, lm, rng)[0] for c, lm in zip(reals, landmarks, strict=True)])


def blend_auc(model, reals: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> float:
    blends = self_blends(reals, landmarks, rng)
    r, b = (predict(model, s, exact=True)[0] for s in (reals, blends))
    return roc_auc_score(np.r_[np.zeros(len(r)), np.ones(len(b))], np.r_[r, b])


def main(data: str, cache: str, model_path: str, *others: str) -> None:
    items = discover(data)
    grouped_split(items, seed=0)
    split_of = {item.key: item.split for item in items}
    entries = [dict(e, split="pool") for e in read_index(cache) if split_of.get(e["key"]) in ("train", "val")]
    crops = load_split(Path(cache), entries, "pool")
    real, fake = [], []
    for i, entry in enumerate(crops.files):
        members = np.flatnonzero(crops.owners == i)
        picks = members[np.linspace(0, len(members) - 1, 8).round().astype(int)]
        (fake if entry["label"] else real).extend(picks.tolist())
    rng = np.random.default_rng(0)
    reals = crops.crops[real]
    blends = self_blends(reals, crops.landmarks[real], rng)
    fakes = crops.crops[fake]
    model = load_checkpoint(Path(model_path)).model.float().eval()
    conditions = {
        "as cached": lambda x: x,
        "JPEG q75": lambda x: jpeg(x, 75),
        "JPEG q50": lambda x: jpeg(x, 50),
        "H.264 CRF 23": lambda x: h264(x, 23),
        "H.264 CRF 30": lambda x: h264(x, 30),
        "H.264 CRF 38": lambda x: h264(x, 38),
    }
    for name, change in conditions.items():
        r, b, f = (predict(model, np.stack([change(c) for c in s]), exact=True)[0] for s in (reals, blends, fakes))
        blends_found = roc_auc_score(np.r_[np.zeros(len(r)), np.ones(len(b))], np.r_[r, b])
        fake_auc = roc_auc_score(np.r_[np.zeros(len(r)), np.ones(len(f))], np.r_[r, f])
        print(f"{name:13} real mean P {r.mean():.3f}  blends AUC {blends_found:.3f}  FF++ fakes AUC {fake_auc:.3f}")
    for other, other_cache in zip(others[::2], others[1::2], strict=True):
        items = discover(other)
        grouped_split(items, seed=0)
        val = {item.key for item in items if item.split == "val" and item.label == 0}
        entries = [dict(e, split="val") for e in read_index(other_cache) if e["key"] in val]
        crops = load_split(Path(other_cache), entries, "val")
        pick = np.random.default_rng(0).permutation(len(crops.crops))[:400]
        auc = blend_auc(model, crops.crops[pick], crops.landmarks[pick], np.random.default_rng(0))
        print(f"{other}: validation reals against their blends, AUC {auc:.3f} ({len(pick)} crops)")


if __name__ == "__main__":
    main(*sys.argv[1:4])
