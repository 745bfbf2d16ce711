"""Estimate a video model's per-video ROC-AUC by grouped k-fold cross-validation.

    python -m ml.training.crossval --model ml/weights/efficientnet_lstm.pt --data ../shared/data/videos/ffpp \
        --cache ~/.cache/deepfake-forensics/crops/ffpp --folds 5 --out docs/evaluation/efficientnet_lstm/crossval.json

Why: a test split of twenty videos gives an AUC that one pair of videos moves by a percent or
more. This pools the train and validation videos of `ml.training.train`'s split (never the test
split), deals their connected groups (a fake and the real videos it was made from) into
folds, and for each fold trains a fresh sequence head on the other folds, exactly as
`ml.training.train` does, then scores the held-out videos. Every pooled video is scored once by a head
that never saw it or anyone in it, so the estimate rests on all of them.

What it measures: the sequence stage (and, for comparison, the mean of frame scores) on top
of the checkpoint's trunk, which is kept fixed. The estimate is honest only if that trunk
never trained on these videos: true of a trunk taken from the photo model (`--init-from`
with the frame model's fine-tuning rejected, as its provenance history shows), not of one
fine-tuned on this data.

With `--retrain WORK -- TRAIN_ARGS` it estimates a whole training *recipe* instead, for one
that trains the trunk on this source too: for each fold, `ml.training.train TRAIN_ARGS` runs
with this source's other folds added as one more domain (their train and validation videos
as `ml.training.train` splits them, so the epoch is chosen without the held-out fold), and
the fold's videos are scored by the checkpoint it writes. Each fold's run lives in
`WORK/fold-K/` and resumes like any training run; finished folds are not trained again.

    python -m ml.training.crossval --data ../shared/data/videos/ffpp --cache CACHE --folds 5 \
        --retrain WORK --out WORK/crossval.json -- image --data OTHER --cache OTHER_CACHE ... --epochs 3
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ml.checkpoint import load_checkpoint, record_evaluation
from ml.training.datasets import (
    MediaItem,
    cache_faces,
    cached_entries,
    connected_groups,
    discover,
    grouped_split,
    read_index,
    source_name,
)
from ml.training.evaluate import auc_interval
from ml.training.train import (
    load_split,
    reset_sequence_head,
    safe_auc,
    sequence_epoch,
    sequence_optimizer,
    video_embeddings,
    video_scores,
)
from ml.training.train import (
    main as train_main,
)


def assign_folds(groups: list[int], folds: int, seed: int) -> np.ndarray:
    """A fold per item, keeping each group whole: groups in a seeded shuffle, largest first,
    each to the fold with fewest items so far (so the folds come out nearly equal)."""
    sizes = {group: groups.count(group) for group in set(groups)}
    order = sorted(sizes)
    np.random.default_rng(seed).shuffle(order)
    order.sort(key=lambda group: -sizes[group])  # stable: the shuffle breaks ties
    totals = np.zeros(folds, int)
    fold_of_group = {}
    for group in order:
        fold = int(np.argmin(totals))
        fold_of_group[group] = fold
        totals[fold] += sizes[group]
    return np.array([fold_of_group[g] for g in groups])


def cross_validate(
    model_path: Path,
    data: str,
    cache: str,
    folds: int = 5,
    epochs: int = 12,
    length: int = 32,
    views: int = 2,
    seed: int = 0,
    frames: int = 64,
    device: str = "auto",
) -> dict:
    from ml.inference import resolve_device

    items = discover(data)
    grouped_split(items, seed=seed)
    pooled = [item for item in items if item.split in ("train", "val")]
    cache_faces(pooled, cache, frames=frames)
    group_of = dict(zip([item.key for item in pooled], connected_groups(pooled), strict=True))
    keys = set(group_of)
    entries = [dict(e, split="pool") for e in read_index(cache) if e["key"] in keys]
    videos = load_split(Path(cache), entries, "pool")
    method_of = {item.key: item.method for item in pooled}

    model = load_checkpoint(model_path).model.float().eval().to(resolve_device(device))
    rng = np.random.default_rng(seed + 1000)
    # A model that scores by the mean of its frames learns nothing per fold: only the clean
    # view of each video is needed, and only the mean is measured.
    aggregates = ("sequence", "mean") if model.is_sequence_model else ("mean",)
    views, sbi_views = (views, 2) if model.is_sequence_model else (0, 0)
    print(f"embedding {len(videos.files)} videos ({views} augmented, {sbi_views} SBI views per real)", file=sys.stderr)
    # In float32, as the engine scores: the estimate must not depend on the machine's CPU.
    sequences = video_embeddings(model, videos, views, sbi_views, rng, exact=True)
    # video_embeddings yields each video's clean view first; only clean views are scored.
    clean = {}
    for k, (_, _, owner) in enumerate(sequences):
        clean.setdefault(owner, k)
    fold_of = assign_folds([group_of[f["key"]] for f in videos.files], folds, seed)

    labels = np.array([f["label"] for f in videos.files])
    scores = {aggregate: np.zeros(len(labels)) for aggregate in aggregates}
    per_fold = []
    for fold in range(folds):
        training = [s for s in sequences if fold_of[s[2]] != fold]
        held = sorted(o for o in clean if fold_of[o] == fold)
        if model.is_sequence_model:
            torch.manual_seed(seed + fold)
            reset_sequence_head(model)
            optimizer = sequence_optimizer(model)
            for _ in range(epochs):
                sequence_epoch(model, training, optimizer, length, rng)
        held_sequences = [sequences[clean[o]] for o in held]
        record = {"fold": fold, "videos": len(held), "fake": int(labels[held].sum())}
        for aggregate in scores:
            fold_scores, _ = video_scores(model, held_sequences, length, aggregate)
            scores[aggregate][held] = fold_scores
            record[aggregate] = safe_auc(labels[held], fold_scores)
        per_fold.append(record)
        print(f"fold {fold + 1}/{folds}: {record}", file=sys.stderr)

    methods = sorted({m for m in method_of.values() if m})
    method = np.array([method_of[f["key"]] for f in videos.files])
    summary = {
        "model": str(model_path),
        "aggregate": "sequence" if model.is_sequence_model else "mean",  # how the model scores a video
        "data": data,
        "videos": len(labels),
        "fake": int(labels.sum()),
        "folds": folds,
        "sequence_epochs": epochs,
        "frames_per_video": length,
        "device": str(next(model.parameters()).device),
        "per_fold": per_fold,
    }
    for aggregate, values in scores.items():
        summary[aggregate] = pooled_estimate(labels, values, method, methods)
    return summary


def pooled_estimate(labels: np.ndarray, values: np.ndarray, method: np.ndarray, methods: list[str]) -> dict:
    """ROC-AUC of the pooled held-out scores, its 95 % interval, and per method (its fakes
    against every real video)."""
    return {
        "roc_auc": safe_auc(labels, values),
        "roc_auc_interval": auc_interval(labels, values),
        "by_method": {
            m: safe_auc(labels[(method == m) | (labels == 0)], values[(method == m) | (labels == 0)]) for m in methods
        },
    }


def cross_validate_training(
    data: str,
    cache: str,
    train_args: list[str],
    work: Path,
    folds: int = 5,
    length: int = 32,
    seed: int = 0,
    frames: int = 64,
    device: str = "auto",
) -> dict:
    """Grouped k-fold estimate of a training recipe that also trains on `data` (see the module
    docstring). Returns the summary: pooled per-video ROC-AUC of the checkpoints each fold's
    run chose (`selected`, the recipe's estimate) and, for comparison, of its last epoch's
    weights (`last_epoch`: what more training on this source gave, unchosen)."""
    from ml.inference import resolve_device

    items = discover(data)
    grouped_split(items, seed=seed)
    pooled = [item for item in items if item.split in ("train", "val")]
    index = {e["key"]: e for e in cached_entries(pooled, cache, frames)}
    pooled = [item for item in pooled if index[item.key].get("crops")]  # as the fixed-trunk estimate
    groups = connected_groups(pooled)
    fold_of = assign_folds(groups, folds, seed)
    labels = np.array([item.label for item in pooled])
    scores = {"selected": np.zeros(len(pooled)), "last_epoch": np.full(len(pooled), np.nan)}
    per_fold = []
    for fold in range(folds):
        fold_dir = Path(work) / f"fold-{fold + 1}"
        manifest, fold_cache = write_linked_source(
            [(item, group) for item, group, f in zip(pooled, groups, fold_of, strict=True) if f != fold],
            index,
            Path(cache),
            fold_dir / source_name(data),
        )
        output = fold_dir / "model.pt"
        if not output.exists():  # a finished fold is not trained again
            run = ["--data", str(manifest), "--cache", str(fold_cache), "--run", str(fold_dir / "run")]
            train_main([*train_args, *run, "--output", str(output)])
        held = np.flatnonzero(fold_of == fold)
        entries = [dict(index[pooled[i].key], split="held") for i in held]
        videos = load_split(Path(cache), entries, "held")
        model = load_checkpoint(output).model.float().eval().to(resolve_device(device))
        scores["selected"][held] = _video_scores(model, videos, length, seed)
        state = fold_dir / "run" / "state.pt"
        if state.exists():  # no state: the run kept its starting weights without training an epoch
            saved = torch.load(state, weights_only=False, map_location="cpu")  # our own file
            model.load_state_dict(saved["model"])
            scores["last_epoch"][held] = _video_scores(model, videos, length, seed)
        record = {"fold": fold, "videos": len(held), "fake": int(labels[held].sum())}
        record.update({name: safe_auc(labels[held], values[held]) for name, values in scores.items()})
        per_fold.append(record)
        print(f"fold {fold + 1}/{folds}: {record}", file=sys.stderr)

    method = np.array([item.method for item in pooled])
    summary = {
        "recipe": ["python -m ml.training.train", *train_args],
        "data": data,
        "videos": len(labels),
        "fake": int(labels.sum()),
        "folds": folds,
        "frames_per_video": length,
        "per_fold": per_fold,
    }
    for name, values in scores.items():
        if not np.isnan(values).any():  # last_epoch: only when every fold trained an epoch
            summary[name] = pooled_estimate(labels, values, method, sorted(set(method) - {""}))
    return summary


def write_linked_source(
    members: list[tuple[MediaItem, int]], index: dict[str, dict], cache: Path, folder: Path
) -> tuple[Path, Path]:
    """A manifest of a training source made of `members` (each file by its absolute path, with
    its connected group and split: one fold's share of a source, say) and a crop cache for it
    that links to the crops already cut in `cache`, so that training detects no face again."""
    crops = folder / "crops"
    crops.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.tsv"
    cache_lines = []
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle, dialect="excel-tab")
        writer.writerow(["path", "label", "group", "split", "method"])
        for item, group in members:
            path = str(Path(item.path).resolve())
            writer.writerow([path, "fake" if item.label else "real", f"group{group}", item.split, item.method])
            # The key the manifest's item will have (a hash of its path string).
            key = MediaItem(path, item.label, item.media_type).key
            entry = dict(index[item.key], key=key, path=path, ids=[f"group{group}"], split=item.split)
            cache_lines.append(json.dumps(entry))
            link = crops / f"{key}.npz"
            if entry.get("crops") and not link.exists():
                link.symlink_to((cache / f"{item.key}.npz").resolve())
    (crops / "index.jsonl").write_text("\n".join(cache_lines) + "\n")
    return manifest, crops


def _video_scores(model, videos, length: int, seed: int) -> np.ndarray:
    """P(fake) per video as the engine aggregates it (sequence head or mean of frames), in float32."""
    sequences = video_embeddings(model, videos, 0, 0, np.random.default_rng(seed), exact=True)
    aggregate = "sequence" if model.is_sequence_model else "mean"
    return video_scores(model, sequences, length, aggregate)[0]


def headline(summary: dict) -> dict:
    """The estimate for the way this model aggregates (its sequence head or the mean), or, for
    a recipe (`--retrain`), the estimate of the checkpoints its runs chose."""
    aggregate = summary.get("aggregate", "selected")
    result = summary[aggregate]
    return {
        "data": summary["data"],
        "level": "video",
        "files": summary["videos"],
        "fake": summary["fake"],
        "folds": summary["folds"],
        "frames": summary["frames_per_video"],
        "aggregate": summary.get("aggregate", "the recipe, trained again without each fold"),
        "roc_auc": result["roc_auc"],
        "roc_auc_interval": result["roc_auc_interval"],
        "roc_auc_fold_mean": float(np.nanmean([fold[aggregate] for fold in summary["per_fold"]])),
        "auc_by_method": result["by_method"],
        **({"recipe": summary["recipe"]} if "recipe" in summary else {}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml.training.crossval",
        description=__doc__.split("\n")[0],
        usage="%(prog)s (--model MODEL | --retrain WORK) --data DATA --cache CACHE [options] [-- TRAIN_ARGS]",
    )
    parser.add_argument(
        "--model",
        type=Path,
        help="a video checkpoint; its trunk is kept fixed (with --retrain: the recipe's model, for --record)",
    )
    parser.add_argument(
        "--retrain",
        type=Path,
        metavar="WORK",
        help="estimate the training recipe after `--` instead, a run per fold in WORK (resumable)",
    )
    parser.add_argument("--data", required=True, help="real/ + fake/ root or manifest (its train + val splits)")
    parser.add_argument("--cache", required=True, help="face-crop cache directory, as for ml.training.train")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sequence-epochs", type=int, default=12, help="epochs per fold (no early stopping)")
    parser.add_argument("--length", type=int, default=32, help="frames per video, as at inference")
    parser.add_argument("--views", type=int, default=2, help="augmented views per training video")
    parser.add_argument("--seed", type=int, default=0, help="the split seed of ml.training.train, and of the folds")
    parser.add_argument("--frames", type=int, default=64, help="frames cached per video, as for ml.training.train")
    parser.add_argument("--device", default="auto", help="auto (CUDA if there is one), cpu or cuda")
    parser.add_argument("--out", type=Path, help="also write the summary here as JSON")
    parser.add_argument(
        "--record", action="store_true", help="store the estimate in the model's card (shown by the service)"
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    train_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: len(argv) - len(train_args) - (1 if "--" in argv else 0)])
    if args.model is None and args.retrain is None:
        parser.error("give --model (a fixed trunk) or --retrain WORK -- TRAIN_ARGS (a recipe)")
    if args.record and args.model is None:
        parser.error("--record stores the estimate in --model's card")
    if args.retrain is not None:
        if not train_args:
            parser.error("--retrain needs the recipe's ml.training.train arguments after `--`")
        options = (args.folds, args.length, args.seed, args.frames, args.device)
        summary = cross_validate_training(args.data, args.cache, train_args, args.retrain, *options)
    else:
        summary = cross_validate(
            args.model,
            args.data,
            args.cache,
            args.folds,
            args.sequence_epochs,
            args.length,
            args.views,
            args.seed,
            args.frames,
            args.device,
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))
    if args.record:
        record_evaluation(args.model, "crossval", headline(summary))
    print(
        f"{summary['videos']} videos ({summary['fake']} fake) of the train + validation splits, "
        f"{summary['folds']} grouped folds:"
    )
    for aggregate in ("sequence", "mean", "selected", "last_epoch"):
        if aggregate not in summary:
            continue
        result = summary[aggregate]
        low, high = result["roc_auc_interval"]
        by_method = ", ".join(f"{m} {v:.3f}" for m, v in result["by_method"].items())
        auc = f"per-video ROC-AUC {result['roc_auc']:.3f} (95 % CI {low:.2f}–{high:.2f})"
        print(f"  {aggregate:10s} {auc}; {by_method}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
