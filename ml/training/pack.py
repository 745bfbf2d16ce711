"""Pack face-crop caches into parts small enough to travel to a GPU machine, and merge them there.

    python -m ml.training.pack build OUT --data DATA --cache CACHE [--data ... --cache ...] \
        [--validate-on DATA --validate-cache CACHE] [--size 224] [--quality 90] [--part-mb 28]
    python -m ml.training.pack merge PART DEST
    python -m ml.training.pack train DEST KIND --run RUN --output MODEL [ml.training.train options]

Why: a lent GPU machine (README, "Training on a lent GPU machine") gets the working tree and at
most 64 MiB beside it per call, and no `../shared`, no imported sources, no MTCNN. What
training needs of a source is its cached crops, landmarks and split, so a source is packed
as a crop cache whose crops are JPEG: `OUT/part-K/NAME/` holds `pack.json`, `index.jsonl`
(the cache's entries, each with the split it has here) and one `.npz` per file. Merged
parts make `DEST/NAME`, which `ml.training.train` (and `crossval`) take as `--data DEST/NAME
--cache DEST/NAME`: the pack is both the source and its cache. `pack train` does that for
every source in DEST (a source packed for validation only goes to `--validate-on`), and on a
GPU lets all cores but one make batches (`--workers`).

What is packed: the train and validation splits (never the test split, which only the
scoreboard here reads); of a `--validate-on` source only its validation split. Files are
dealt to the parts in a seeded shuffle, so each part is a random sample of every source and
a session short of time can train on the parts it staged. Both classes get the same
treatment (one size, one JPEG quality), so neither can be told apart by it; the training
augmentation re-compresses at quality 40-95 anyway.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from ml.training.datasets import (
    PACK_MARKER,
    cached_entries,
    discover,
    grouped_split,
    load_crops,
    read_index,
    source_name,
)


def encode(crops: dict[str, np.ndarray], size: int, quality: int, frames_per_file: int = 0) -> dict[str, np.ndarray]:
    """A cached file's arrays with its crops resized to `size` (landmarks scaled alike) and
    JPEG-encoded into one byte buffer; with `frames_per_file`, only that many of a video's
    crops, evenly spaced (neighbouring frames teach a frame model little more than one)."""
    count = len(crops["crops"])
    if frames_per_file and count > frames_per_file:
        keep = np.linspace(0, count - 1, frames_per_file).round().astype(int)
        crops = {k: v[keep] for k, v in crops.items()}
    images, scale = crops["crops"], 1.0
    if images.shape[1] != size:
        scale = size / images.shape[1]
        images = np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) for image in images])
    encoded = []
    for image in images:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        encoded.append(data.ravel())
    arrays = {k: v for k, v in crops.items() if k != "crops"}
    arrays["landmarks"] = (crops["landmarks"] * scale).astype(np.float32)
    arrays["jpeg"] = np.concatenate(encoded)
    arrays["jpeg_ends"] = np.cumsum([len(e) for e in encoded]).astype(np.int64)
    return arrays


def source_entries(data: str, cache: Path, splits: tuple[str, ...], frames: int, seed: int) -> list[dict]:
    """The cache entries of a source's files in `splits` (split as training assigns it), with crops."""
    items = discover(data)
    grouped_split(items, seed=seed)
    entries = cached_entries([item for item in items if item.split in splits], cache, frames)
    return [entry for entry in entries if entry.get("crops", 0) > 0]


def unique_name(data: str, taken: set[str]) -> str:
    base = source_name(data)
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}-{k}"
    taken.add(name)
    return name


def build(
    out: Path,
    sources: list[tuple[str, Path, tuple[str, ...]]],
    size: int = 224,
    quality: int = 90,
    part_mb: float = 28,
    frames_per_file: int = 0,
    frames: int = 64,
    seed: int = 0,
    log=print,
) -> list[Path]:
    """Pack every (data, cache, splits) source into `out/part-K/NAME/`; returns the parts.
    A part takes at most `part_mb` MiB on disk (a single larger file gets a part of its own)."""
    names: set[str] = set()
    work = []
    for data, cache, splits in sources:
        name = unique_name(data, names)
        entries = source_entries(data, cache, splits, frames, seed)
        work += [(name, data, splits, entry, cache) for entry in entries]
        log(f"{name}: {len(entries)} files ({', '.join(splits)}) from {data}")
    random.Random(seed).shuffle(work)
    limit = part_mb * 2**20
    parts: list[Path] = []
    used = limit  # start a part with the first file
    counts: dict[tuple[str, str], int] = {}
    for name, data, splits, entry, cache in work:
        arrays = encode(load_crops(cache, entry["key"]), size, quality, frames_per_file)
        entry = dict(entry, crops=len(arrays["jpeg_ends"]))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        line = json.dumps(entry) + "\n"
        nbytes = buffer.tell() + len(line)
        if used + nbytes > limit:
            parts.append(out / f"part-{len(parts) + 1}")
            used = 0
        folder = parts[-1] / name
        if not (folder / PACK_MARKER).exists():
            folder.mkdir(parents=True, exist_ok=True)
            marker = {
                "source": name,
                "data": str(data),
                "splits": list(splits),
                "size": size,
                "quality": quality,
                "frames_per_file": frames_per_file,
                "seed": seed,
            }
            text = json.dumps(marker, indent=1) + "\n"
            (folder / PACK_MARKER).write_text(text)
            used += len(text)
        (folder / f"{entry['key']}.npz").write_bytes(buffer.getvalue())
        with (folder / "index.jsonl").open("a") as handle:
            handle.write(line)
        used += nbytes
        counts[(name, entry["split"])] = counts.get((name, entry["split"]), 0) + 1
    for part in parts:
        megabytes = sum(f.stat().st_size for f in part.rglob("*") if f.is_file()) / 2**20
        log(f"{part}: {megabytes:.1f} MiB")
    summary = {f"{name}/{split}": count for (name, split), count in sorted(counts.items())}
    out.mkdir(parents=True, exist_ok=True)
    (out / "pack.json").write_text(json.dumps({"parts": len(parts), "files": summary}, indent=1) + "\n")
    return parts


def merge(part: Path, dest: Path) -> int:
    """Copy one part's sources into `dest` (a file already there is skipped, so staging a part
    twice is harmless); returns the number of files added."""
    added = 0
    for folder in sorted(p for p in part.iterdir() if (p / PACK_MARKER).exists()):
        target = dest / folder.name
        target.mkdir(parents=True, exist_ok=True)
        marker = folder / PACK_MARKER
        if (target / PACK_MARKER).exists():
            if json.loads((target / PACK_MARKER).read_text()) != json.loads(marker.read_text()):
                raise SystemExit(f"{folder} was packed differently from {target}: build all parts in one run")
        else:
            shutil.copy(marker, target / PACK_MARKER)
        have = {entry["key"] for entry in read_index(target)}
        new = [entry for entry in read_index(folder) if entry["key"] not in have]
        for entry in new:
            shutil.copy(folder / f"{entry['key']}.npz", target / f"{entry['key']}.npz")
        # The index last: an interrupted merge leaves files the index does not name, never the reverse.
        with (target / "index.jsonl").open("a") as handle:
            handle.writelines(json.dumps(entry) + "\n" for entry in new)
        added += len(new)
    return added


def train_arguments(dest: Path, kind: str, options: list[str]) -> list[str]:
    """The `ml.training.train` command line that trains on every source merged into `dest`."""
    import torch

    arguments = [kind]
    for folder in sorted(p for p in dest.iterdir() if (p / PACK_MARKER).exists()):
        marker = json.loads((folder / PACK_MARKER).read_text())
        role = ("--validate-on", "--validate-cache") if marker["splits"] == ["val"] else ("--data", "--cache")
        arguments += [role[0], str(folder), role[1], str(folder)]
    if "--data" not in arguments:
        raise SystemExit(f"no packed training source in {dest}: merge the parts first")
    if "--workers" not in options and torch.cuda.is_available():
        arguments += ["--workers", str(max(1, (os.cpu_count() or 2) - 1))]
    return arguments + options


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.training.pack", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("build", help="pack the train and validation crops of sources into parts")
    packing.add_argument("out", type=Path)
    packing.add_argument("--data", action="append", default=[], help="a source, as for ml.training.train")
    packing.add_argument("--cache", action="append", default=[], help="its face-crop cache")
    packing.add_argument("--validate-on", action="append", default=[], help="a source packed for validation only")
    packing.add_argument("--validate-cache", action="append", default=[])
    packing.add_argument("--size", type=int, default=224, help="crop side in pixels (the model's input: 224)")
    packing.add_argument("--quality", type=int, default=90, help="JPEG quality")
    packing.add_argument("--part-mb", type=float, default=28, help="MiB per part (what one call can carry)")
    packing.add_argument(
        "--frames-per-file", type=int, default=0, help="pack at most this many crops of each video, evenly (0: all)"
    )
    packing.add_argument("--frames", type=int, default=64, help="frames per video, if a cache must be completed")
    packing.add_argument("--seed", type=int, default=0, help="the split seed of ml.training.train")
    merging = commands.add_parser("merge", help="add a part to a pack (on the machine that trains)")
    merging.add_argument("part", type=Path)
    merging.add_argument("dest", type=Path)
    training = commands.add_parser(
        "train", help="train on every source of a merged pack (options: ml.training.train's)"
    )
    training.add_argument("dest", type=Path)
    training.add_argument("kind", choices=["image", "video"])
    args, options = parser.parse_known_args(list(argv) if argv is not None else None)
    if args.command == "train":
        from ml.training import train

        return train.main(train_arguments(args.dest, args.kind, options))
    if options:
        parser.error(f"unrecognized arguments: {' '.join(options)}")

    if args.command == "merge":
        added = merge(args.part, args.dest)
        print(f"merged {added} files from {args.part} into {args.dest}", file=sys.stderr)
        return 0
    if len(args.data) != len(args.cache) or len(args.validate_on) != len(args.validate_cache):
        parser.error("give one --cache per --data and one --validate-cache per --validate-on")
    if not args.data:
        parser.error("give at least one --data")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty: packs are built whole, into a new folder")
    sources = [(d, Path(c), ("train", "val")) for d, c in zip(args.data, args.cache, strict=True)]
    sources += [(d, Path(c), ("val",)) for d, c in zip(args.validate_on, args.validate_cache, strict=True)]
    parts = build(
        args.out, sources, args.size, args.quality, args.part_mb, args.frames_per_file, args.frames, args.seed
    )
    print(f"{len(parts)} parts in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
