"""Calibrate a checkpoint's probabilities and choose its uncertain band for coverage.

    python -m ml.training.calibrate --model ml/weights/efficientnet.pt \
        --data ../shared/data/images/lfw_faceswap --data ~/.cache/deepfake-forensics/sources/stylegan/manifest.tsv \
        --split val [--target 0.9] [--write]

Every validation file is analysed through the full pipeline (as the service would). Then:

1. Platt scaling: calibrated P = sigmoid(scale * logit(raw P) + bias), fitted by logistic
   regression on the validation files, so that "0.8" means fake about 8 times in 10.
2. The threshold is calibrated 0.5, and the uncertain band [low, high) is the narrowest of
   those that give as many definite verdicts (FAKE or REAL) as possible (the mean share over
   the sources) while those stay at least `target` right on the validation files of *every*
   source given. A verdict that rarely commits helps nobody; one that commits wrongly helps
   less.

With `--write` the checkpoint (and its card) get the new calibration; the figures (coverage,
definite accuracy, the data) go into the card's provenance under `calibration_fit`. The test
splits are never looked at here.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ml.calibration import Calibration

EPS = 1e-6


@dataclass
class BandChoice:
    calibration: Calibration
    coverage: float  # share of validation files with a definite verdict (mean over sources)
    definite_accuracy: float  # share of those that were right (the worst source's)
    files: int


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def fit_platt(labels: np.ndarray, raw: np.ndarray) -> tuple[float, float]:
    """(scale, bias) of the logistic regression of the label on logit(raw P); (1, 0) if it
    cannot be fitted (one class) or would invert the ranking."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels, int)
    if len(set(labels.tolist())) < 2:
        return 1.0, 0.0
    model = LogisticRegression(C=1e4, max_iter=1000).fit(logit(raw)[:, None], labels)
    scale, bias = float(model.coef_[0, 0]), float(model.intercept_[0])
    if scale <= 0:  # the model ranks backwards on this data: calibration cannot fix that
        return 1.0, 0.0
    return round(scale, 5), round(bias, 5)


def platt(raw: np.ndarray, scale: float, bias: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(scale * logit(raw) + bias)))


def choose_band(
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float = 0.5,
    target: float = 0.9,
    groups: np.ndarray | None = None,
) -> tuple[float, float, float, float]:
    """(low, high, coverage, definite accuracy) with the most definite verdicts at >= target.

    Scores >= high are called fake, < low real. Candidates are the scores themselves (and the
    threshold); both ends stay inside (0.001, 0.999) so that both verdicts remain reachable.
    If no band reaches the target, the widest one is returned (everything uncertain).

    With `groups` (the source of each file), the target must hold within every source, and
    coverage is the mean of the sources' coverages: a band chosen on pooled files is set by
    the largest, easiest source and then commits wrongly on the others (a video candidate's
    band, chosen on validation files that were mostly DeepfakeTIMIT, was right on 45 % of
    its definite verdicts on another set). The returned accuracy is the worst source's."""
    labels = np.asarray(labels, int)
    p = np.asarray(probabilities, float)
    groups = np.zeros(len(p), int) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    values = np.unique(np.concatenate([p, [threshold]]))
    lows = np.unique(np.clip(values[values <= threshold], 0.001, threshold))
    highs = np.unique(np.clip(values[values >= threshold], threshold, 0.999))
    coverage = np.zeros((len(lows), len(highs)))
    worst = np.ones((len(lows), len(highs)))
    count = np.bincount(groups).astype(float)
    for g in range(len(count)):
        q, y = p[groups == g], labels[groups == g]
        # Counts below each low (p < low) and at or above each high, per class.
        real_below = np.array([((q < low) & (y == 0)).sum() for low in lows])
        fake_below = np.array([((q < low) & (y == 1)).sum() for low in lows])
        fake_above = np.array([((q >= high) & (y == 1)).sum() for high in highs])
        real_above = np.array([((q >= high) & (y == 0)).sum() for high in highs])
        definite = (real_below + fake_below)[:, None] + (fake_above + real_above)[None, :]
        correct = real_below[:, None] + fake_above[None, :]
        # A source without a definite verdict under a band cannot be wrong under it.
        accuracy = np.where(definite > 0, correct / np.maximum(definite, 1), 1.0)
        worst = np.minimum(worst, accuracy)
        coverage += definite / count[g] / len(count)
    ok = (worst >= target) & (coverage > 0)
    if not ok.any():
        return float(lows.min()), float(highs.max()), 0.0, float("nan")
    width = highs[None, :] - lows[:, None]
    # Most definite verdicts first; among equals, the narrowest band, then the most accurate.
    order = np.lexsort((-worst[ok], width[ok], -coverage[ok]))
    i, j = (index[order[0]] for index in np.nonzero(ok))
    return float(lows[i]), float(highs[j]), float(coverage[i, j]), float(worst[i, j])


def fit(labels: np.ndarray, raw: np.ndarray, target: float = 0.9, groups: np.ndarray | None = None) -> BandChoice:
    """Platt scaling, then the band for coverage at `target` definite accuracy (within each
    group, when the files' sources are given: see `choose_band`)."""
    scale, bias = fit_platt(labels, raw)
    calibrated = platt(raw, scale, bias)
    low, high, coverage, accuracy = choose_band(labels, calibrated, 0.5, target, groups)
    calibration = Calibration(
        threshold=0.5, uncertain_low=round(low, 4), uncertain_high=round(high, 4), scale=scale, bias=bias
    )
    return BandChoice(calibration, coverage, accuracy, len(labels))


def raw_scores(
    model: Path, data: list[str], split: str, frames: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """Uncalibrated per-file P(fake) of every file of the split, through the full pipeline:
    (labels, scores, the index in `data` of each file's source, rows)."""
    from dataclasses import replace

    from ml.inference import Detector
    from ml.training.evaluate import score_files, split_items

    detector = Detector.load(model)
    # Score with the identity calibration: Platt is fitted on the network's own output.
    detector.calibration = replace(detector.calibration, scale=1.0, bias=0.0)
    source_of, items = {}, []
    for index, source in enumerate(data):
        for item in split_items(source, split):
            source_of[item.path] = index
            items.append(item)
    rows, _ = score_files(detector, items, frames)
    return (
        np.array([r["label"] for r in rows]),
        np.array([r["score"] for r in rows]),
        np.array([source_of[r["path"]] for r in rows]),
        rows,
    )


def write(model: Path, choice: BandChoice, data: list[str], split: str, target: float) -> None:
    """Store the calibration in the checkpoint and its card (the weights stay the same)."""
    import torch

    from ml.checkpoint import save_checkpoint
    from ml.inference import Detector

    checkpoint = Detector.load(model).checkpoint
    provenance = dict(checkpoint.provenance)
    provenance["calibration_fit"] = {
        # Each source by name (a manifest by its folder's): where this machine keeps it is no one's business.
        "data": [Path(d).parent.name if Path(d).is_file() else Path(d).name for d in data],
        "split": split,
        "files": choice.files,
        "target_definite_accuracy": target,
        "coverage": round(choice.coverage, 4),  # mean over the sources
        "definite_accuracy": round(choice.definite_accuracy, 4),  # the worst source's
        "previous": asdict(checkpoint.calibration),
    }
    card = json.loads(model.with_suffix(".json").read_text()) if model.with_suffix(".json").exists() else {}
    with torch.no_grad():
        save_checkpoint(checkpoint.model.float(), model, choice.calibration, provenance, half=True)
    if card.get("evaluation"):  # measurements of the old calibration's verdicts stay, marked as such
        fresh = json.loads(model.with_suffix(".json").read_text())
        fresh["evaluation_before_calibration"] = card["evaluation"]
        # The cross-validated estimate is ROC-AUC only: a ranking, which the monotone calibration
        # leaves as it was, of the same weights. It stays current.
        if "crossval" in card["evaluation"]:
            fresh.setdefault("evaluation", {})["crossval"] = card["evaluation"]["crossval"]
        model.with_suffix(".json").write_text(json.dumps(fresh, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.training.calibrate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", action="append", required=True, help="a dataset root or manifest (repeatable)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--target", type=float, default=0.9, help="least share of definite verdicts that are right")
    parser.add_argument("--write", action="store_true", help="store the calibration in the checkpoint and card")
    args = parser.parse_args(argv)
    labels, raw, sources, _ = raw_scores(args.model, args.data, args.split, args.frames)
    choice = fit(labels, raw, args.target, sources)
    c = choice.calibration
    print(
        f"{choice.files} files: scale {c.scale}, bias {c.bias}; band [{c.uncertain_low}, {c.uncertain_high}) "
        f"gives definite verdicts on {choice.coverage:.1%} (mean over {len(args.data)} sources), "
        f"at least {choice.definite_accuracy:.1%} of them right in each"
    )
    if args.write:
        write(args.model, choice, args.data, args.split, args.target)
        print(f"wrote the calibration into {args.model} and its card")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
