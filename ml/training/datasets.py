"""Labelled media for training and evaluation: discovery, grouped splits, and a face-crop cache.

Command line (progress bars on stderr; every command resumes where it stopped):

    python -m ml.training.datasets list  ROOT_OR_MANIFEST
    python -m ml.training.datasets cache ROOT_OR_MANIFEST OUT_DIR [--frames 64] [--crop-size 256]

A root holds `real/` and `fake/` folders (searched recursively; an image folder may also
have `train/`, `val/`, `test/` above them). A manifest is a TSV or CSV with the columns
`path` (or `file`/`relpath`) and `label` (`real`/`fake`), and optionally `group` and `split`;
relative paths are resolved against the manifest's folder.

The cache holds, per media file, the crops of its primary face track (the person the file
is about) taken with the engine's own sampler, detector and cropper, so training sees
exactly what inference sees.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}
SPLITS = ("train", "val", "test")
PACK_MARKER = "pack.json"  # a folder holding it is a packed source (see `ml.training.pack`)


@dataclass
class MediaItem:
    path: str
    label: int  # 1 = fake, 0 = real
    media_type: str  # "image" or "video"
    ids: list[str] = field(default_factory=list)  # identities/video ids it touches
    split: str = ""  # given by the dataset, or assigned by `grouped_split`
    method: str = ""  # manipulation method, for per-method reports

    @property
    def key(self) -> str:
        return hashlib.sha1(self.path.encode()).hexdigest()[:16]


# FaceForensics++: real/033.mp4 is id 033; fake/Deepfakes_033_097.mp4 touches 033 (target) and 097 (source).
FFPP_FAKE = re.compile(r"^(?P<method>[A-Za-z0-9]+)_(?P<target>\d{3})_(?P<source>\d{3})$")  # Face2Face has a digit
FFPP_REAL = re.compile(r"^(?P<id>\d{3})$")


def ids_for(path: Path) -> tuple[list[str], str]:
    """The ids a file touches (for grouped splits) and its manipulation method, from its name."""
    stem = path.stem
    if match := FFPP_FAKE.match(stem):
        return [match["target"], match["source"]], match["method"]
    if match := FFPP_REAL.match(stem):
        return [match["id"]], ""
    return [stem], ""


def discover(source: str | Path) -> list[MediaItem]:
    """Every labelled media file under a `real/` + `fake/` root, listed in a manifest, or
    packed (`ml.training.pack`: the files as they were where the pack was made, each with the
    split it had there; their crops are in the pack, which is its own cache)."""
    source = Path(source)
    if source.is_file():
        return _from_manifest(source)
    if (source / PACK_MARKER).exists():
        fields = MediaItem.__dataclass_fields__
        return [MediaItem(**{k: v for k, v in entry.items() if k in fields}) for entry in read_index(source)]
    items = []
    for path in sorted(source.rglob("*")):
        suffix = path.suffix.lower()
        if suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES or not path.is_file():
            continue
        parts = [part.lower() for part in path.relative_to(source).parts[:-1]]
        if "real" in parts:
            label = 0
        elif "fake" in parts:
            label = 1
        else:
            continue
        split = next((part for part in parts if part in SPLITS), "")
        ids, method = ids_for(path)
        media_type = "video" if suffix in VIDEO_SUFFIXES else "image"
        items.append(MediaItem(str(path), label, media_type, ids, split, method))
    return items


def _from_manifest(manifest: Path) -> list[MediaItem]:
    dialect = "excel-tab" if manifest.suffix.lower() in (".tsv", ".txt") else "excel"
    items = []
    with manifest.open(newline="") as handle:
        for row in csv.DictReader(handle, dialect=dialect):
            relative = row.get("path") or row.get("file") or row.get("relpath")
            if not relative or row.get("label", "").lower() not in ("real", "fake", "0", "1"):
                continue
            path = Path(relative)
            if not path.is_absolute():
                path = manifest.parent / path
                if not path.exists():  # manifests that list paths from a parent folder
                    path = manifest.parent.parent / relative
                    if not path.exists():
                        path = manifest.parents[2] / relative
            label = 1 if row["label"].lower() in ("fake", "1") else 0
            ids, method = ids_for(path)
            if row.get("group"):
                ids = [row["group"]]
            media_type = "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"
            items.append(
                MediaItem(str(path), label, media_type, ids, row.get("split", ""), row.get("method") or method)
            )
    return items


def connected_groups(items: Sequence[MediaItem]) -> list[int]:
    """A group number per item: items that share any id (transitively) share a group."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for item in items:
        for other in item.ids[1:]:
            parent[find(other)] = find(item.ids[0])
    roots: dict[str, int] = {}
    return [roots.setdefault(find(item.ids[0]), len(roots)) for item in items]


def grouped_split(items: Sequence[MediaItem], fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0) -> None:
    """Assign `split` to items that have none, keeping every connected group in one split.

    Groups are shuffled with the seed and dealt out so each split gets about its fraction of
    items. Items whose dataset already fixed a split keep it.
    """
    free = [i for i, item in enumerate(items) if not item.split]
    if not free:
        return
    groups = connected_groups([items[i] for i in free])
    members: dict[int, list[int]] = {}
    for i, group in zip(free, groups, strict=True):
        members.setdefault(group, []).append(i)
    order = sorted(members)
    random.Random(seed).shuffle(order)
    total = len(free)
    targets = [f * total for f in fractions]
    counts = [0, 0, 0]
    for group in order:
        # The split furthest below its target takes the next group.
        s = max(range(3), key=lambda k: (targets[k] - counts[k]) / max(targets[k], 1e-9))
        for i in members[group]:
            items[i].split = SPLITS[s]
        counts[s] += len(members[group])


# ---------------------------------------------------------------------------------------------
# The face-crop cache


def cache_faces(
    items: Sequence[MediaItem],
    out_dir: str | Path,
    frames: int = 64,
    crop_size: int = 256,
    margin: float = 0.3,
    progress: bool = True,
) -> Path:
    """Crop the primary face track of every item into `out_dir/<key>.npz`; resumable.

    `out_dir/index.jsonl` gets one line per finished item (its fields, the number of crops,
    or the reason it has none). Items already in the index are skipped, so an interrupted run
    continues where it stopped.
    """
    from tqdm import tqdm

    from ml.errors import EngineError
    from ml.faces import FaceDetector, assign_tracks, crop_face
    from ml.media import read_frames, read_image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.jsonl"
    done = {entry["key"] for entry in read_index(out_dir)}
    todo = [item for item in items if item.key not in done]
    if not todo:  # a finished cache (or a pack) needs neither the media nor the detector
        return out_dir
    detector = FaceDetector(threads=1)  # other work usually runs beside a cache job
    started = time.monotonic()
    for item in tqdm(todo, desc="caching faces", unit="file", disable=not progress, file=sys.stderr):
        entry = {"key": item.key, **asdict(item)}
        try:
            if item.media_type == "video":
                _, sampled = read_frames(item.path, frames)
                images = [frame.image for frame in sampled]
                indices = [frame.index for frame in sampled]
            else:
                images = [read_image(item.path)[1]]
                indices = [0]
            detections = detector.detect(images)
            assign_tracks(detections)
            primary = _primary_track(detections)
            crops, landmarks, boxes, kept = [], [], [], []
            for frame_index, image, faces in zip(indices, images, detections, strict=True):
                face = next((f for f in faces if f.track_id == primary), None)
                if face is None:
                    continue
                crop = crop_face(image, face, margin=margin, size=crop_size)
                crops.append(crop.image)
                landmarks.append(crop.landmarks)
                boxes.append(face.box)
                kept.append(frame_index)
            entry["crops"] = len(crops)
            if crops:
                np.savez(
                    out_dir / f"{item.key}.npz",
                    crops=np.stack(crops),
                    landmarks=np.stack(landmarks),
                    boxes=np.asarray(boxes, np.float32),
                    frames=np.asarray(kept, np.int32),
                )
            else:
                entry["error"] = "no_face"
        except EngineError as exc:
            entry["crops"] = 0
            entry["error"] = f"{exc.reason}: {exc}"
        with index.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
    elapsed = time.monotonic() - started
    if progress:
        print(f"cached {len(todo)} files in {elapsed:.0f} s into {out_dir}", file=sys.stderr)
    return out_dir


def cached_entries(items: Sequence[MediaItem], cache: str | Path, frames: int = 64) -> list[dict]:
    """Crop the items (resumable) and return their cache entries, each with the split of this
    run, not of the run that cached it."""
    cache_faces(items, cache, frames=frames)
    by_key = {item.key: item for item in items}
    return [dict(e, split=by_key[e["key"]].split) for e in read_index(cache) if e["key"] in by_key]


def source_name(data: str | Path) -> str:
    """A source's name in logs, histories and packs: its folder, or the folder of its manifest."""
    return Path(data).parent.name if Path(data).is_file() else Path(data).name


def _primary_track(detections: Sequence[Sequence]) -> int:
    """The track the media is about: present most often, then largest."""
    presence: dict[int, list[float]] = {}
    for faces in detections:
        for face in faces:
            presence.setdefault(face.track_id, []).append(face.size)
    if not presence:
        return -1
    return max(presence, key=lambda t: (len(presence[t]), float(np.median(presence[t]))))


def read_index(cache_dir: str | Path) -> list[dict]:
    index = Path(cache_dir) / "index.jsonl"
    if not index.exists():
        return []
    entries = {}
    for line in index.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            entries[entry["key"]] = entry  # a file cached twice (two runs at once): the last wins
    return list(entries.values())


def load_crops(cache_dir: str | Path, key: str) -> dict[str, np.ndarray]:
    """One file's cached arrays: `crops` (N, S, S, 3) RGB uint8, `landmarks` (N, 5, 2) in crop
    pixels, `boxes`, `frames`. A pack stores the crops as JPEG (`jpeg` bytes cut at
    `jpeg_ends`); they are decoded here, so every reader sees the same arrays."""
    with np.load(Path(cache_dir) / f"{key}.npz") as data:
        arrays = {name: data[name] for name in data.files}
    if "jpeg" in arrays:
        import cv2

        buffer, ends = arrays.pop("jpeg"), arrays.pop("jpeg_ends")
        starts = np.concatenate([[0], ends[:-1]])
        arrays["crops"] = np.stack(
            [
                cv2.cvtColor(cv2.imdecode(buffer[a:b], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                for a, b in zip(starts, ends, strict=True)
            ]
        )
    return arrays


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.training.datasets", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list labelled media and the grouped split")
    listing.add_argument("source")
    listing.add_argument("--seed", type=int, default=0)
    cache = commands.add_parser("cache", help="cache face crops of every file (resumable)")
    cache.add_argument("source")
    cache.add_argument("out_dir")
    cache.add_argument("--frames", type=int, default=64, help="frames sampled per video")
    cache.add_argument("--crop-size", type=int, default=256)
    cache.add_argument("--margin", type=float, default=0.3)
    args = parser.parse_args(list(argv) if argv is not None else None)

    items = discover(args.source)
    if not items:
        parser.error(f"no labelled media found in {args.source}")
    if args.command == "list":
        grouped_split(items, seed=args.seed)
        for item in items:
            print(f"{item.split}\t{'fake' if item.label else 'real'}\t{item.media_type}\t{item.path}")
        counts = {s: sum(1 for i in items if i.split == s) for s in SPLITS}
        print(f"{len(items)} files: {counts}", file=sys.stderr)
    else:
        cache_faces(items, args.out_dir, frames=args.frames, crop_size=args.crop_size, margin=args.margin)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
