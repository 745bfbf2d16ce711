"""FF++ c23 as a manifest without the videos that touch the ten originals of the FF++ c40
scoreboard sets, so that a model trained on it leaves those sets unseen (2026-11-29: the
candidate in MODEL_CARD.md trained on it). Its crops are linked from the FF++ cache, not cut again.

    PYTHONPATH=. .venv/bin/python docs/evaluation/probes/ffpp_without_c40.py ../shared/data/videos/ffpp \
        ~/.cache/deepfake-forensics/crops/ffpp ~/.cache/deepfake-forensics/sources/ffpp_c40/manifest.tsv \
        ~/.cache/deepfake-forensics/sources/ffpp-minus-c40

writes OUT/ffpp/manifest.tsv and OUT/ffpp/crops (a `--data` and `--cache` for ml.training.train).
"""

import sys
from pathlib import Path

from ml.training.crossval import write_linked_source
from ml.training.datasets import connected_groups, discover, grouped_split, read_index


def main(ffpp: str, cache: str, c40_manifest: str, out: str) -> None:
    c40_ids = set()
    for line in Path(c40_manifest).read_text().splitlines()[1:]:
        path = Path(line.split("\t")[0])
        if "actors" not in path.parts:
            c40_ids.update(part for part in path.stem.split("_") if part.isdigit())
    items = discover(ffpp)
    grouped_split(items, seed=0)
    kept = [(item, g) for item, g in zip(items, connected_groups(items), strict=True) if not set(item.ids) & c40_ids]
    counts = {split: sum(1 for item, _ in kept if item.split == split) for split in ("train", "val", "test")}
    print(f"left out the videos of ids {sorted(c40_ids)}: kept {len(kept)} of {len(items)} {counts}")
    index = {entry["key"]: entry for entry in read_index(cache)}
    print(*write_linked_source(kept, index, Path(cache), Path(out) / "ffpp"))


if __name__ == "__main__":
    main(*sys.argv[1:5])
