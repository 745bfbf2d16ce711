"""Evaluate a checkpoint on labelled media, through the same pipeline the service runs.

    python -m ml.training.evaluate --model ml/weights/efficientnet_lstm.pt --data ../shared/data/videos/ffpp \
        --split test --frames 32 --out docs/evaluation/efficientnet_lstm

Every file of the split is analysed end to end (decode, face detection, crops, model).
Metrics are reported per file (video level) and per frame (the frame's most suspicious counted
face): accuracy, precision, recall and F1 at the checkpoint's threshold, ROC-AUC, EER,
average precision, the confusion matrix, and how many files fell in the "uncertain" band.
The per-file ROC-AUC comes with a 95 % bootstrap interval: with a few dozen test videos one
pair of videos moves the AUC by a percent or more, and a reader should see how far.
OUT gets `summary.json`, `summary.md` and ROC, PR, confusion-matrix and histogram PNGs.
The split is the one `ml.training.train` used (same grouping and seed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)


@dataclass
class Metrics:
    count: int
    positives: int
    threshold: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float
    eer: float
    average_precision: float
    confusion: list[list[int]]  # [[TN, FP], [FN, TP]], rows = true real, true fake
    roc_auc_interval: tuple[float, float] | None = None  # 95 % bootstrap interval, per-file level only


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The error rate where false positives and false negatives are equally frequent."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def auc_interval(
    labels: np.ndarray, scores: np.ndarray, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the ROC-AUC. Reals and fakes are resampled separately
    (each with replacement, keeping their counts), so every resample has both classes.
    Deterministic for a seed. Only for independent items (files, not frames of one video)."""
    labels = np.asarray(labels, int)
    scores = np.asarray(scores, float)
    real, fake = scores[labels == 0], scores[labels == 1]
    if not len(real) or not len(fake):
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    for k in range(resamples):
        r = rng.choice(real, len(real))
        f = rng.choice(fake, len(fake))
        # AUC = P(fake score > real score) + half the ties, over all pairs.
        values[k] = (f[:, None] > r[None, :]).mean() + 0.5 * (f[:, None] == r[None, :]).mean()
    tail = (1 - level) / 2
    return (float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail)))


def compute_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> Metrics:
    labels = np.asarray(labels, int)
    scores = np.asarray(scores, float)
    predicted = (scores >= threshold).astype(int)
    both = len(set(labels.tolist())) == 2
    return Metrics(
        count=len(labels),
        positives=int(labels.sum()),
        threshold=threshold,
        accuracy=float(accuracy_score(labels, predicted)),
        precision=float(precision_score(labels, predicted, zero_division=0)),
        recall=float(recall_score(labels, predicted, zero_division=0)),
        f1=float(f1_score(labels, predicted, zero_division=0)),
        roc_auc=float(roc_auc_score(labels, scores)) if both else float("nan"),
        eer=equal_error_rate(labels, scores) if both else float("nan"),
        average_precision=float(average_precision_score(labels, scores)) if both else float("nan"),
        confusion=confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
    )


def plot_all(labels: np.ndarray, scores: np.ndarray, metrics: Metrics, out: Path, title: str, prefix: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fpr, tpr, _ = roc_curve(labels, scores)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUC {metrics.roc_auc:.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC · {title}")
    ax.legend(loc="lower right")
    names.append(_save(fig, out / f"{prefix}_roc.png"))

    precision, recall, _ = precision_recall_curve(labels, scores)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(recall, precision, label=f"AP {metrics.average_precision:.3f}")
    ax.set(xlabel="recall (fake)", ylabel="precision (fake)", title=f"PR · {title}", ylim=(0, 1.02))
    ax.legend(loc="lower left")
    names.append(_save(fig, out / f"{prefix}_pr.png"))

    fig, ax = plt.subplots(figsize=(4, 3.6))
    matrix = np.array(metrics.confusion)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", color="black" if value < matrix.max() / 2 else "white")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["real", "fake"], yticklabels=["real", "fake"])
    ax.set(xlabel="predicted", ylabel="true", title=f"Confusion at {metrics.threshold:.2f}")
    names.append(_save(fig, out / f"{prefix}_confusion.png"))

    fig, ax = plt.subplots(figsize=(5, 3.4))
    bins = np.linspace(0, 1, 26)
    ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label="real")
    ax.hist(scores[labels == 1], bins=bins, alpha=0.6, label="fake")
    ax.axvline(metrics.threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    ax.set(xlabel="P(fake)", ylabel="count", title=f"Scores · {title}")
    ax.legend()
    names.append(_save(fig, out / f"{prefix}_histogram.png"))
    return names


def _save(fig: object, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name


def split_items(data: str, split: str, seed: int = 0) -> list:
    """The files of one split of a dataset root or manifest, split as `ml.training.train` splits."""
    from ml.training.datasets import discover, grouped_split

    items = discover(data)
    grouped_split(items, seed=seed)
    return [item for item in items if item.split == split]


def score_files(
    detector: object, items: list, frames: int, desc: str = "evaluating", emotions: bool = False
) -> tuple[list[dict], list[dict]]:
    """Analyse every item end to end: (rows, failures). A row has the file's label, method,
    P(fake), verdict and the per-frame scores of its counted faces (the frame's most
    suspicious); a failure the reason the file gave no result (unreadable, no face)."""
    from tqdm import tqdm

    from ml.errors import EngineError

    rows, failures = [], []
    for item in tqdm(items, desc=desc, unit="file", file=sys.stderr):
        try:
            if item.media_type == "video":
                result = detector.analyze_video(item.path, frames, explain=False, emotions=emotions)
            else:
                result = detector.analyze_image(item.path, explain=False, emotions=emotions)
        except EngineError as exc:
            failures.append({"path": item.path, "error": f"{exc.reason}: {exc}"})
            continue
        if result.fake_probability is None:
            failures.append({"path": item.path, "error": "no_face"})
            continue
        counted = {t.track_id for t in result.tracks if t.counted}
        frame_scores = []
        for frame in result.frames:
            values = [f.fake_probability for f in frame.faces if f.track_id in counted]
            if values:
                frame_scores.append(max(values))
        rows.append(
            {
                "path": item.path,
                "label": item.label,
                "method": item.method,
                "score": result.fake_probability,
                "verdict": result.verdict,
                "frame_scores": frame_scores,
                "abrupt_changes": len(result.emotion_changes),
            }
        )
    return rows, failures


def evaluate(model: Path, data: str, split: str, frames: int, out: Path, seed: int = 0, limit: int = 0) -> dict:
    from ml.inference import Detector

    out.mkdir(parents=True, exist_ok=True)
    items = split_items(data, split, seed)
    if limit:
        items = items[:limit]
    if not items:
        raise SystemExit(f"no files in the {split!r} split of {data}")
    detector = Detector.load(model)
    started = time.monotonic()
    rows, failures = score_files(detector, items, frames, f"evaluating {split}", emotions=True)
    frame_labels = [r["label"] for r in rows for _ in r["frame_scores"]]
    frame_scores = [score for r in rows for score in r["frame_scores"]]
    seconds = time.monotonic() - started
    labels = np.array([r["label"] for r in rows])
    scores = np.array([r["score"] for r in rows])
    threshold = detector.calibration.threshold
    file_metrics = compute_metrics(labels, scores, threshold)
    file_metrics.roc_auc_interval = auc_interval(labels, scores)
    frame_metrics = compute_metrics(np.array(frame_labels), np.array(frame_scores), threshold)
    level = "video" if items[0].media_type == "video" else "photo"
    plots = plot_all(labels, scores, file_metrics, out, f"{split}, per {level}", level)
    if level == "video":
        plots += plot_all(
            np.array(frame_labels), np.array(frame_scores), frame_metrics, out, f"{split}, per frame", "frame"
        )
    uncertain = [r for r in rows if r["verdict"] == "uncertain"]
    decided = [r for r in rows if r["verdict"] in ("fake", "real")]
    by_method = {}
    for method in sorted({r["method"] for r in rows if r["method"]}):
        chosen = [r for r in rows if r["method"] in (method, "")]
        by_method[method] = float(roc_auc_score([r["label"] for r in chosen], [r["score"] for r in chosen]))
    summary = {
        "model": str(model),
        "model_name": detector.name,
        "model_version": detector.version,
        "data": data,
        "split": split,
        "frames": frames if level == "video" else None,
        "files": len(items),
        "failed": failures,
        "seconds": round(seconds, 1),
        "calibration": {
            "threshold": threshold,
            "uncertain_low": detector.calibration.uncertain_low,
            "uncertain_high": detector.calibration.uncertain_high,
        },
        f"per_{level}": vars(file_metrics),
        "per_frame": vars(frame_metrics),
        "uncertain_share": len(uncertain) / max(1, len(rows)),
        "accuracy_when_decided": (
            sum((r["verdict"] == "fake") == bool(r["label"]) for r in decided) / len(decided) if decided else None
        ),
        "auc_by_method": by_method,
        # The expression cue, measured, not used: mean abrupt changes per video, by label.
        "abrupt_expression_changes": {
            name: float(np.mean([r["abrupt_changes"] for r in rows if r["label"] == label]))
            for name, label in (("real", 0), ("fake", 1))
            if level == "video" and any(r["label"] == label for r in rows)
        },
        "plots": plots,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(markdown(summary, level))
    return summary


def markdown(summary: dict, level: str) -> str:
    rows = [("per " + level, summary[f"per_{level}"])]
    if level == "video":
        rows.append(("per frame", summary["per_frame"]))
    lines = [
        f"Evaluation of `{summary['model_name']}` ({summary['model_version']}) on the "
        f"**{summary['split']}** split of `{summary['data']}`: {summary['files']} files"
        + (f", {summary['frames']} frames per video" if summary["frames"] else "")
        + f", {len(summary['failed'])} without a result, {summary['seconds']:.0f} s.",
        "",
        "| level | n (fake) | ROC-AUC (95 % CI) | EER | AP | accuracy | precision | recall | F1 "
        "| confusion [[TN FP] [FN TP]] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in rows:
        lines.append(
            f"| {name} | {m['count']} ({m['positives']}) | {m['roc_auc']:.3f}{_interval(m)} | {m['eer']:.3f} "
            f"| {m['average_precision']:.3f} | {m['accuracy']:.3f} | {m['precision']:.3f} "
            f"| {m['recall']:.3f} | {m['f1']:.3f} | {m['confusion']} |"
        )
    c = summary["calibration"]
    lines += [
        "",
        f"Threshold {c['threshold']:.3f} (chosen on validation); uncertain band "
        f"[{c['uncertain_low']:.3f}, {c['uncertain_high']:.3f}): {summary['uncertain_share']:.1%} of files "
        f"fell in it; accuracy on the others {summary['accuracy_when_decided'] or 0:.3f}.",
    ]
    if summary["auc_by_method"]:
        lines.append(
            "ROC-AUC by manipulation (real vs that method): "
            + ", ".join(f"{k} {v:.3f}" for k, v in summary["auc_by_method"].items())
            + "."
        )
    if summary.get("abrupt_expression_changes"):
        lines.append(
            "Abrupt expression changes per file (shown beside the verdict, never part of it): "
            + ", ".join(f"{k} {v:.2f}" for k, v in summary["abrupt_expression_changes"].items())
            + "."
        )
    return "\n".join(lines) + "\n"


def headline(summary: dict, level: str) -> dict:
    """The figures a reader of a verdict needs, for the model's card."""
    metrics = summary[f"per_{level}"]
    return {
        "data": summary["data"],
        "split": summary["split"],
        "level": level,
        "files": metrics["count"],
        "fake": metrics["positives"],
        "frames": summary["frames"],
        "roc_auc": metrics["roc_auc"],
        "roc_auc_interval": metrics["roc_auc_interval"],
        "accuracy": metrics["accuracy"],
        "uncertain_share": summary["uncertain_share"],
        "accuracy_when_decided": summary["accuracy_when_decided"],
        "auc_by_method": summary["auc_by_method"],
    }


def _interval(metrics: dict) -> str:
    interval = metrics.get("roc_auc_interval")
    if not interval or any(np.isnan(interval)):
        return ""
    return f" ({interval[0]:.2f}–{interval[1]:.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.training.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N files (smoke tests)")
    parser.add_argument(
        "--record", action="store_true", help="store the headline figures in the model's card (shown by the service)"
    )
    args = parser.parse_args(argv)
    summary = evaluate(args.model, args.data, args.split, args.frames, args.out, args.seed, args.limit)
    level = "video" if summary["frames"] else "photo"
    if args.record:
        from ml.checkpoint import record_evaluation

        record_evaluation(args.model, args.split, headline(summary, level))
    print(markdown(summary, level))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
