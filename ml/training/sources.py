"""Import public face and deepfake sources into the project's dataset layout, reproducibly.

    python -m ml.training.sources list
    python -m ml.training.sources import SOURCE... --clones DIR [--root ~/.cache/deepfake-forensics]
    python -m ml.training.sources import all --clones DIR

DIR holds a clone of each source's repository: `OWNER+NAME/repo` (the bare directory the
search tool's `fetch` returns), `OWNER+NAME` or `NAME` (a plain `git clone URL`). Nothing
is downloaded here and nothing lands in the repository: each source becomes `ROOT/sources/NAME/` with

    files/          the media, prepared (see below); videos made from frame folders
    manifest.tsv    path, label, group, split, method, kind: the `ml.training.datasets` manifest
    provenance.json repository, commit, folders, licence, counts per split and label

and the faces of every file are then detected and cropped by the engine's own detector into
`ROOT/crops/NAME/` (resumable), so training and the scoreboard see what inference sees.

Preparation treats both classes of a source alike, so that a model cannot learn the source's
size or codec instead of the manipulation: DeepfakeTIMIT's real frames (512x384) are resized
to its fakes' 299x299 and every frame of both is re-encoded at the same JPEG quality before
the clip is written; AniPortrait's side-by-side frames are cut and only the generated panel is
kept (the reference portrait is often generated itself). Splits follow `../shared/DATA_SOURCES.md`:
people stay together, FaceForensics++ ids keep the split they have in `../shared`, and the
reserved FaceForensics++ ids and clips are never imported.

One file (about 440 lines) for all sources: each importer is short, and they share the
split rules, the reserved list and the provenance record, which must not drift apart.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

DEFAULT_ROOT = Path("~/.cache/deepfake-forensics").expanduser()
DEFAULT_FFPP = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos" / "ffpp"
# ../shared/DATA_SOURCES.md: kept for the project's independent evaluation, never imported.
RESERVED_FFPP_IDS = frozenset({"004", "519", "634", "750"})
RESERVED_CLIPS = ("WDA_AlexandriaOcasioCortez_000",)
JPEG_QUALITY = 90
CLIP_FPS = 10


@dataclass
class Record:
    """One prepared file of a source, a manifest row."""

    path: str  # relative to the source's folder
    label: str  # "real" or "fake"
    group: str  # people that must stay in one split
    split: str  # train / val / test
    method: str = ""  # manipulation or generator; "" for real
    kind: str = "image"  # image or video


@dataclass
class Source:
    name: str
    repository: str
    commit: str  # the commit DATA_SOURCES.md was read from (a later snapshot may differ)
    folders: tuple[str, ...]
    licence: str
    prepare: Callable[[Path, Path], Iterator[Record]]  # (extracted tree, out files dir) -> records
    note: str = ""


def hashed_split(key: str, fractions: tuple[float, float] = (0.7, 0.15)) -> str:
    """A stable split from a name: the same group always lands in the same split."""
    value = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if value < fractions[0]:
        return "train"
    return "val" if value < fractions[0] + fractions[1] else "test"


def reencode(image: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """One JPEG round trip (RGB in, RGB out): the compression both classes of a source share."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1]


def write_clip(frames: list[np.ndarray], path: Path, fps: float = CLIP_FPS) -> None:
    """Frames (RGB, equal size) to a video the engine reads (MJPG in AVI: near-lossless,
    so the JPEG treatment above stays the only compression). MJPG keeps even sides: an odd
    side loses its last pixel row or column (299 becomes 298), for every clip alike."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    try:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    finally:
        writer.release()


def _read_rgb(path: Path) -> np.ndarray | None:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else image[:, :, ::-1]


# -- the sources --------------------------------------------------------------------------------


def prepare_deepfaketimit(tree: Path, out: Path) -> Iterator[Record]:
    """VidTIMIT real and DeepfakeTIMIT (LQ) fake clips, ~7 frames each, split by speaker as given."""
    import cv2

    base = tree / "deepfake_dataset" / "LQ"
    for clip in sorted(p for p in base.glob("*/*/*/*") if p.is_dir()):
        split, label, speaker, name = clip.relative_to(base).parts
        frames = []
        for file in sorted(f for f in clip.iterdir() if f.is_file() and not f.name.startswith(".")):
            image = _read_rgb(file)
            if image is not None:
                frames.append(reencode(cv2.resize(image, (299, 299), interpolation=cv2.INTER_AREA)))
        if len(frames) < 2:
            continue
        relative = f"files/{split}/{label}/{speaker}_{name}.avi"
        write_clip(frames, out / relative)
        yield Record(relative, label, speaker, split, "DeepfakeTIMIT" if label == "fake" else "", "video")


def prepare_utkface(tree: Path, out: Path) -> Iterator[Record]:
    """UTKFace's aligned 200x200 chips: real faces of ~20,000 people, for self-blended fakes."""
    for file in sorted((tree / "data").glob("*.jpg*")):
        relative = f"files/{file.name}"
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_bytes(file.read_bytes())
        yield Record(relative, "real", file.name, hashed_split(file.name))


def ffpp_splits(ffpp: Path = DEFAULT_FFPP) -> dict[str, str]:
    """The split of every FaceForensics++ id in ../shared (as `ml.training.train` makes it)."""
    from ml.training.datasets import discover, grouped_split

    if not ffpp.exists():
        return {}
    items = discover(ffpp)
    grouped_split(items)
    return {i: item.split for item in items for i in item.ids}


def prepare_ffpp_c40(tree: Path, out: Path) -> Iterator[Record]:
    """FF++ c40 originals and fakes (with NeuralTextures) and DeepFakeDetection actor originals.

    Each id keeps its ../shared split; a fake pair touching an id absent there (866) follows
    its partner; actors are split by actor."""
    known = ffpp_splits()
    base = tree / "media" / "in_out_videos"
    for video in sorted(base.glob("original/youtube/c40/videos/*.mp4")):
        if video.stem in RESERVED_FFPP_IDS:
            continue
        split = known.get(video.stem) or _partner_split(video.stem, base, known)
        yield _copy(video, out, f"files/youtube/{video.name}", "real", video.stem, split, "", "video")
    for video in sorted(base.glob("manipulate/*/c40/videos/*.mp4")):
        target, source = video.stem.split("_")
        if {target, source} & RESERVED_FFPP_IDS:
            continue
        method = video.parts[-4]
        split = known.get(target) or known.get(source) or "test"
        relative = f"files/{method}/{method}_{video.name}"
        yield _copy(video, out, relative, "fake", f"{target}+{source}", split, method, "video")
    for video in sorted(base.glob("original/actors/c40/videos/*.mp4")):
        actor = video.stem.split("__")[0]
        yield _copy(video, out, f"files/actors/{video.name}", "real", f"actor{actor}", hashed_split(actor), "", "video")


def _partner_split(video_id: str, base: Path, known: dict[str, str]) -> str:
    for fake in base.glob(f"manipulate/*/c40/videos/*{video_id}*.mp4"):
        for other in fake.stem.split("_"):
            if other in known:
                return known[other]
    return "test"


def _copy(file: Path, out: Path, relative: str, label: str, group: str, split: str, method: str, kind: str) -> Record:
    (out / relative).parent.mkdir(parents=True, exist_ok=True)
    (out / relative).write_bytes(file.read_bytes())
    return Record(relative, label, group, split, method, kind)


def prepare_stylegan(tree: Path, out: Path) -> Iterator[Record]:
    """StyleGAN faces (wholly generated). Each image is its own (non-)person."""
    for file in sorted((tree / "faces").glob("*")):
        image = _read_rgb(file)
        if image is None:  # a dozen files of the repository do not decode
            continue
        relative = f"files/{file.stem}.jpg"
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_bytes(file.read_bytes())
        yield Record(relative, "fake", file.stem, hashed_split(f"stylegan{file.stem}", (0.6, 0.2)), "StyleGAN")


def prepare_real_photos(tree: Path, out: Path) -> Iterator[Record]:
    """Real photos of people: deepface's test photos and CelebA-HQ samples (stargan-v2)."""
    patterns = ("tests/unit/dataset/*.jpg", "assets/representative/celeba_hq/*/*/*.jpg")
    for pattern in patterns:
        for file in sorted(tree.glob(pattern)):
            relative = f"files/{file.relative_to(tree).as_posix().replace('/', '_')}"
            yield _copy(file, out, relative, "real", file.stem, hashed_split(file.stem, (0.5, 0.2)), "", "image")


def prepare_talking_heads(tree: Path, out: Path) -> Iterator[Record]:
    """Real talking-head clips (video-retalking, PC-AVS's VoxCeleb2 samples, SadTalker's
    KatieHill): evaluation only, the real side of the generated-animation set."""
    for file in sorted(tree.glob("examples/face/*.mp4")):
        yield _copy(file, out, f"files/retalking_{file.name}", "real", f"retalking{file.stem}", "test", "", "video")
    for file in sorted(tree.glob("examples/ref_video/*.mp4")):
        if any(reserved in file.name for reserved in RESERVED_CLIPS):
            continue
        yield _copy(file, out, f"files/sadtalker_{file.name}", "real", file.stem, "test", "", "video")
    for archive in sorted(tree.glob("misc/*.zip")):
        with zipfile.ZipFile(archive) as bundle:
            for name in sorted(n for n in bundle.namelist() if n.endswith(".mp4")):
                relative = f"files/pcavs_{archive.stem}_{Path(name).name}"
                (out / relative).parent.mkdir(parents=True, exist_ok=True)
                (out / relative).write_bytes(bundle.read(name))
                yield Record(relative, "real", f"pcavs{Path(name).stem}", "test", "", "video")


def prepare_aniportrait(tree: Path, out: Path) -> Iterator[Record]:
    """AniPortrait demo clips: the generated (right) panel only, as a fake video. Evaluation only."""
    import cv2

    for file in sorted(tree.glob("asset/*.mp4")):
        capture = cv2.VideoCapture(str(file))
        fps = capture.get(cv2.CAP_PROP_FPS) or 25
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            width = frame.shape[1]
            frames.append(reencode(frame[:, width - width // 2 :, ::-1]))
        capture.release()
        if not frames:
            continue
        relative = f"files/{file.stem}.avi"
        write_clip(frames, out / relative, fps)
        yield Record(relative, "fake", f"aniportrait{file.stem}", "test", "AniPortrait", "video")


SOURCES = {
    source.name: source
    for source in (
        Source(
            "deepfaketimit",
            "LamQam/Deepfake_Detection",
            "9bb03ac",
            ("deepfake_dataset/LQ",),
            "VidTIMIT / DeepfakeTIMIT: research only (no licence in the repository)",
            prepare_deepfaketimit,
        ),
        Source("utkface", "xerow03/UTKFace", "d5a7ff2", ("data",), "UTKFace: non-commercial research", prepare_utkface),
        Source(
            "ffpp_c40",
            "mudouble/FaceForensics-Detection_Website",
            "0f59c2f",
            ("media/in_out_videos/original", "media/in_out_videos/manipulate"),
            "FaceForensics++ Terms of Use (research only)",
            prepare_ffpp_c40,
        ),
        Source("stylegan", "BaseMax/FakeFaces", "bb509d9", ("faces",), "GPL-3.0", prepare_stylegan),
        Source(
            "real_photos",
            "serengil/deepface+clovaai/stargan-v2",
            "243209f+875b70a",
            ("tests/unit/dataset", "assets/representative/celeba_hq"),
            "MIT (deepface); CC BY-NC 4.0 (CelebA-HQ samples in stargan-v2)",
            prepare_real_photos,
        ),
        Source(
            "talking_heads",
            "OpenTalker/video-retalking+Hangz-nju-cuhk/Talking-Face_PC-AVS+OpenTalker/SadTalker",
            "d32e8e5+201d2b9+cd4c046",
            ("examples/face", "misc/Input.zip", "misc/Pose_Source.zip", "examples/ref_video/WDA_KatieHill_000.mp4"),
            "Apache-2.0 (video-retalking, SadTalker); CC BY 4.0 (PC-AVS)",
            prepare_talking_heads,
        ),
        Source(
            "aniportrait",
            "Zejun-Yang/AniPortrait",
            "7f6593f",
            ("asset",),
            "Apache-2.0",
            prepare_aniportrait,
            note="generated panel only",
        ),
    )
}


# -- import -------------------------------------------------------------------------------------


def extract(git_dir: Path, folders: tuple[str, ...], into: Path) -> str:
    """Write the named folders (or files) of the repository's HEAD under `into`; return the commit."""
    git = ["git", f"--git-dir={_git_dir(git_dir)}"]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    listed = subprocess.run(
        [*git, "ls-tree", "-r", "--name-only", "HEAD", "--", *folders], check=True, capture_output=True, text=True
    ).stdout.split("\n")
    wanted = [p for p in listed if p and not any(reserved in p for reserved in RESERVED_CLIPS)]
    # A snapshot may list files whose content it left out (large files): skip those.
    present = subprocess.run(
        [*git, "cat-file", "--batch-check=%(objectname) %(objecttype)"],
        input="".join(f"HEAD:{p}\n" for p in wanted),
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    wanted = [p for p, line in zip(wanted, present, strict=False) if line.endswith(" blob")]
    if not wanted:
        raise SystemExit(f"{git_dir} has none of {', '.join(folders)}")
    archive = subprocess.run([*git, "archive", "--format=tar", "HEAD", "--", *wanted], check=True, capture_output=True)
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return commit


def _git_dir(path: Path) -> Path:
    return path / ".git" if (path / ".git").is_dir() else path


def import_source(name: str, git_dirs: list[Path], root: Path = DEFAULT_ROOT, crops: bool = True) -> Path:
    """Extract, prepare and describe one source under ROOT/sources/NAME; then cache its faces.

    Re-running replaces the prepared files and the manifest; the face cache resumes."""
    import shutil
    import tempfile

    source = SOURCES[name]
    out = root / "sources" / name
    if (out / "files").exists():
        shutil.rmtree(out / "files")
    out.mkdir(parents=True, exist_ok=True)
    commits = []
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch)
        for git_dir in git_dirs:
            commits.append(extract(git_dir, source.folders, tree))
        records = list(source.prepare(tree, out))
    if not records:
        raise SystemExit(f"{name}: nothing to import from {', '.join(map(str, git_dirs))}")
    with (out / "manifest.tsv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(Record.__dataclass_fields__), dialect="excel-tab")
        writer.writeheader()
        writer.writerows(asdict(r) for r in records)
    counts = Counter(f"{r.split}/{r.label}" for r in records)
    provenance = {
        "source": name,
        "repository": source.repository,
        "commit": "+".join(c[:7] for c in commits),
        "commit_read_in_data_sources": source.commit,
        "folders": list(source.folders),
        "licence": source.licence,
        "note": source.note,
        "files": len(records),
        "people": len({r.group for r in records if r.label == "real"}),
        "counts": dict(sorted(counts.items())),
        "methods": dict(Counter(r.method for r in records if r.method)),
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"{name}: {len(records)} files {dict(sorted(counts.items()))} -> {out}", file=sys.stderr)
    if crops:
        from ml.training.datasets import cache_faces, discover

        cache_faces(discover(out / "manifest.tsv"), root / "crops" / name, frames=32)
    return out


# Which repositories feed which source, as `fetch` names their folders (OWNER+NAME).
REPOSITORIES = {
    "deepfaketimit": ["LamQam+Deepfake_Detection"],
    "utkface": ["xerow03+UTKFace"],
    "ffpp_c40": ["mudouble+FaceForensics-Detection_Website"],
    "stylegan": ["BaseMax+FakeFaces"],
    "real_photos": ["serengil+deepface", "clovaai+stargan-v2"],
    "talking_heads": ["OpenTalker+video-retalking", "Hangz-nju-cuhk+Talking-Face_PC-AVS", "OpenTalker+SadTalker"],
    "aniportrait": ["Zejun-Yang+AniPortrait"],
}


def _clone(clones: Path, folder: str) -> Path:
    for candidate in (clones / folder / "repo", clones / folder, clones / folder.split("+")[1]):
        if candidate.exists():
            return candidate
    raise SystemExit(f"no clone of {folder.replace('+', '/')} under {clones}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.training.sources", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the sources this command imports")
    importing = commands.add_parser("import", help="import sources from local clones of their repositories")
    importing.add_argument("sources", nargs="+", choices=[*SOURCES, "all"], metavar="SOURCE")
    importing.add_argument(
        "--clones",
        type=Path,
        required=True,
        help="folder holding the clones: OWNER+NAME/repo (as `fetch` lays them out), OWNER+NAME or NAME",
    )
    importing.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    importing.add_argument("--no-crops", action="store_true", help="prepare files and manifest only")
    args = parser.parse_args(argv)
    if args.command == "list":
        for source in SOURCES.values():
            print(f"{source.name:14} {source.repository} @ {source.commit}  [{source.licence}]")
        return 0
    names = list(SOURCES) if "all" in args.sources else args.sources
    for name in names:
        git_dirs = [_clone(args.clones, folder) for folder in REPOSITORIES[name]]
        import_source(name, git_dirs, args.root, crops=not args.no_crops)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
