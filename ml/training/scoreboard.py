"""The cross-dataset scoreboard: the shipped models on every test set there is, through the
full pipeline, in one table.

    python -m ml.training.scoreboard [--photo-model ml/weights/efficientnet.pt]
        [--video-model ml/weights/efficientnet_lstm.pt] [--root ~/.cache/deepfake-forensics]
        [--frames 32] [--out docs/evaluation/scoreboard] [--record] [--only NAME ...]

Per set: files (fakes), per-file ROC-AUC with its 95 % bootstrap interval, accuracy at the
threshold, the share of files given a definite verdict (FAKE or REAL: the coverage) and the
accuracy of those definite verdicts. Photos go to the photo model, videos to the video model.
The FaceForensics++ cross-validated estimate is read from the video model's card
(`ml.training.crossval --record`); it is not recomputed here.

Sets that need an imported source (`ml.training.sources`) are skipped, with the reason, when
it is missing. Sets marked *left out* come from sources or methods that no shipped model
trained on; they show how a model does on manipulations it has never seen.
With `--record`, each model's card gets its rows under `evaluation.scoreboard`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.training.datasets import MediaItem, discover, grouped_split
from ml.training.sources import DEFAULT_FFPP, DEFAULT_ROOT

SHARED = DEFAULT_FFPP.parents[2]


@dataclass
class Part:
    """Files of one dataset that belong to a set: a split (or every split) and a filter."""

    data: str  # a root under ../shared, or `sources/NAME/manifest.tsv` under the import root
    split: str = ""  # "" = every split
    keep: Callable[[MediaItem], bool] = lambda item: True


@dataclass
class ScoreSet:
    name: str
    kind: str  # "photo" or "video"
    parts: list[Part]
    left_out: bool = False  # no shipped model trained on any of it
    note: str = ""
    items: list[MediaItem] = field(default_factory=list)


def standard_sets() -> list[ScoreSet]:
    lfw = str(SHARED / "data" / "images" / "lfw_faceswap")
    return [
        ScoreSet("FF++ c23 test", "video", [Part(str(DEFAULT_FFPP), "test")]),
        ScoreSet(
            "FF++ c40, 4 methods",
            "video",
            [Part("sources/ffpp_c40/manifest.tsv", keep=lambda item: not _actor(item))],
            note="10 FF++ originals and their 40 fakes at c40; these people are in FF++'s training split at c23",
        ),
        ScoreSet(
            "NeuralTextures c40 (left out)",
            "video",
            [
                Part(
                    "sources/ffpp_c40/manifest.tsv", keep=lambda i: not _actor(i) and i.method in ("", "NeuralTextures")
                )
            ],
            left_out=True,
            note="a manipulation method no model trained on, against the same 10 originals",
        ),
        ScoreSet("DeepfakeTIMIT test speakers", "video", [Part("sources/deepfaketimit/manifest.tsv", "test")]),
        ScoreSet(
            "StyleGAN vs real photos",
            "photo",
            [
                Part("sources/stylegan/manifest.tsv", "test"),
                Part("sources/real_photos/manifest.tsv", "test"),
                Part(lfw, "test", keep=lambda item: item.label == 0),
            ],
        ),
        ScoreSet(
            "AniPortrait vs real talking heads (left out)",
            "video",
            [
                Part("sources/aniportrait/manifest.tsv"),
                Part("sources/talking_heads/manifest.tsv"),
                Part("sources/ffpp_c40/manifest.tsv", keep=_actor),
            ],
            left_out=True,
            note="audio-driven portrait animation against real talking-head clips; no model trained on either",
        ),
        ScoreSet("LFW face swap test", "photo", [Part(lfw, "test")]),
    ]


def resolve(part: Part, root: Path) -> tuple[list[MediaItem], str]:
    """The part's files, or [] and why not."""
    path = Path(part.data) if Path(part.data).is_absolute() else root / part.data
    if not path.exists():
        name = part.data.split("/")[1] if part.data.startswith("sources/") else part.data
        return [], f"{name} is not imported (python -m ml.training.sources import {name} ...)"
    items = discover(path)
    if not path.is_file():  # a root: the split of `ml.training.train`
        grouped_split(items)
    return [item for item in items if (not part.split or item.split == part.split) and part.keep(item)], ""


def _actor(item: MediaItem) -> bool:
    """DeepFakeDetection's actor originals in the c40 source: real talking heads, not FF++."""
    return "/actors/" in item.path


def set_metrics(rows: list[dict], threshold: float) -> dict:
    from sklearn.metrics import roc_auc_score

    from ml.training.evaluate import auc_interval

    labels = np.array([r["label"] for r in rows], int)
    scores = np.array([r["score"] for r in rows], float)
    definite = [r for r in rows if r["verdict"] in ("fake", "real")]
    both = len(set(labels.tolist())) == 2
    return {
        "files": len(rows),
        "fake": int(labels.sum()),
        "roc_auc": float(roc_auc_score(labels, scores)) if both else None,
        "roc_auc_interval": list(auc_interval(labels, scores)) if both else None,
        "accuracy": float(((scores >= threshold).astype(int) == labels).mean()) if rows else None,
        "coverage": len(definite) / len(rows) if rows else None,
        "definite_accuracy": (
            sum((r["verdict"] == "fake") == bool(r["label"]) for r in definite) / len(definite) if definite else None
        ),
    }


def run(
    photo_model: Path, video_model: Path, root: Path, frames: int, only: list[str] | None = None, limit: int = 0
) -> dict:
    from ml.inference import Detector
    from ml.training.evaluate import score_files

    detectors = {"photo": Detector.load(photo_model), "video": Detector.load(video_model)}
    results = []
    scored: dict[tuple[str, str], dict] = {}
    for score_set in standard_sets():
        if only and score_set.name not in only:
            continue
        entry = {"set": score_set.name, "kind": score_set.kind, "left_out": score_set.left_out, "note": score_set.note}
        items, missing = [], []
        for part in score_set.parts:
            found, why = resolve(part, root)
            items += found
            if why:
                missing.append(why)
        if missing or not items:
            entry["skipped"] = "; ".join(missing) or "no files"
            results.append(entry)
            continue
        if limit:  # a quick look: up to `limit` files of each label
            items = [i for i in items if i.label == 0][:limit] + [i for i in items if i.label == 1][:limit]
        detector = detectors[score_set.kind]
        started = time.monotonic()
        # A file in several sets (the c40 originals) is analysed once per run.
        todo = [item for item in items if (score_set.kind, item.path) not in scored]
        new_rows, new_failures = score_files(detector, todo, frames, score_set.name)
        for result in (*new_rows, *new_failures):
            scored[(score_set.kind, result["path"])] = result
        results_of = [scored[(score_set.kind, item.path)] for item in items]
        rows = [r for r in results_of if "error" not in r]
        failures = [r for r in results_of if "error" in r]
        entry.update(set_metrics(rows, detector.calibration.threshold))
        entry.update(
            model=detector.name,
            model_version=detector.version,
            failed=len(failures),
            seconds=round(time.monotonic() - started, 1),
            # Files by name (their folders are this machine's business), with label, score, verdict.
            rows=[
                {"file": Path(r["path"]).name, **{k: r[k] for k in ("label", "method", "score", "verdict")}}
                for r in rows
            ],
        )
        results.append(entry)
    crossval = (json.loads(video_model.with_suffix(".json").read_text()).get("evaluation") or {}).get("crossval")
    return {
        "photo_model": detectors["photo"].version,
        "video_model": detectors["video"].version,
        "frames": frames,
        "sets": results,
        "crossval": crossval,
    }


def markdown(board: dict) -> str:
    lines = [
        f"Scoreboard of `{board['photo_model']}` (photos) and `{board['video_model']}` (videos), "
        f"{board['frames']} frames per video, full pipeline.",
        "",
        "| set | model | files (fake) | ROC-AUC (95 % CI) | accuracy | definite verdicts | right when definite |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in board["sets"]:
        if "skipped" in entry:
            lines.append(f"| {entry['set']} | – | skipped: {entry['skipped']} | | | | |")
            continue
        lines.append(
            f"| {entry['set']} | {entry['kind']} | {entry['files']} ({entry['fake']}) | "
            f"{_figure(entry['roc_auc'])}{_interval(entry['roc_auc_interval'])} | {_figure(entry['accuracy'])} | "
            f"{_share(entry['coverage'])} | {_share(entry['definite_accuracy'])} |"
        )
    crossval = board.get("crossval")
    if crossval:
        lines.append(
            f"| FF++ c23 cross-validated ({crossval.get('folds', '?')} folds, train + val videos) | video | "
            f"{crossval.get('files', '?')} ({crossval.get('fake', '?')}) | "
            f"{_figure(crossval.get('roc_auc'))}{_interval(crossval.get('roc_auc_interval'))} | | | |"
        )
    return "\n".join(lines) + "\n"


def _figure(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _interval(interval: list | None) -> str:
    if not interval or any(v is None or np.isnan(v) for v in interval):
        return ""
    return f" ({interval[0]:.2f}–{interval[1]:.2f})"


# Each model's own held-back test split, also recorded as the card's `test` figure.
HOME_SETS = {"photo": "LFW face swap test", "video": "FF++ c23 test"}


def record(board: dict, photo_model: Path, video_model: Path) -> None:
    """Each model's card gets the rows it produced (without the per-file rows), and its home
    test split as `test` (the figure `ml.training.evaluate --record` would store)."""
    from ml.checkpoint import record_evaluation

    for kind, path in (("photo", photo_model), ("video", video_model)):
        mine = [{k: v for k, v in e.items() if k != "rows"} for e in board["sets"] if e["kind"] == kind]
        record_evaluation(path, "scoreboard", {"frames": board["frames"], "sets": mine})
        home = next((e for e in mine if e["set"] == HOME_SETS[kind] and "skipped" not in e), None)
        if home:
            record_evaluation(path, "test", test_headline(home, board["frames"]))


def test_headline(entry: dict, frames: int) -> dict:
    """A scoreboard row in the shape of `ml.training.evaluate.headline`."""
    return {
        "data": entry["set"],
        "split": "test",
        "level": entry["kind"],
        "files": entry["files"],
        "fake": entry["fake"],
        "frames": frames if entry["kind"] == "video" else None,
        "roc_auc": entry["roc_auc"],
        "roc_auc_interval": entry["roc_auc_interval"],
        "accuracy": entry["accuracy"],
        "uncertain_share": 1 - entry["coverage"],
        "accuracy_when_decided": entry["definite_accuracy"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.training.scoreboard", description=__doc__.split("\n")[0])
    parser.add_argument("--photo-model", type=Path, default=Path("ml/weights/efficientnet.pt"))
    parser.add_argument("--video-model", type=Path, default=Path("ml/weights/efficientnet_lstm.pt"))
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where `ml.training.sources` imported to")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--out", type=Path, help="write scoreboard.json and scoreboard.md here")
    parser.add_argument("--only", action="append", help="run only this set (repeatable)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many real and fake files per set")
    parser.add_argument("--record", action="store_true", help="store each model's rows in its card")
    parser.add_argument(
        "--record-from",
        type=Path,
        help="store the rows of an earlier run's scoreboard.json in the cards (the models must be those it measured)",
    )
    args = parser.parse_args(argv)
    if args.record and args.limit:
        parser.error("--record measures every file: drop --limit")
    if args.record_from:
        board = json.loads(args.record_from.read_text())
        versions = {"photo": board["photo_model"], "video": board["video_model"]}
        for kind, path in (("photo", args.photo_model), ("video", args.video_model)):
            card = json.loads(path.with_suffix(".json").read_text())
            version = (card.get("provenance") or {}).get("version") or card.get("sha256", "")[:12]
            if version != versions[kind]:
                parser.error(f"{args.record_from} measured {versions[kind]}, not {path.name} ({version})")
        record(board, args.photo_model, args.video_model)
        print(markdown(board))
        return 0
    board = run(args.photo_model, args.video_model, args.root, args.frames, args.only, args.limit)
    table = markdown(board)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "scoreboard.json").write_text(json.dumps(board, indent=2) + "\n")
        (args.out / "scoreboard.md").write_text(table)
    if args.record:
        record(board, args.photo_model, args.video_model)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
