"""Packing crop caches for a GPU machine: parts that travel, merged there into sources that train."""

import json

import numpy as np
import pytest

from ml.checkpoint import load_checkpoint
from ml.training import pack, train
from ml.training.datasets import cache_faces, discover, grouped_split, load_crops, read_index


@pytest.fixture(scope="module")
def cached_photos(tiny_images, tmp_path_factory):
    """The tiny LFW photos and their crop cache."""
    cache = tmp_path_factory.mktemp("lfw_cache")
    cache_faces(discover(tiny_images), cache, progress=False)
    return tiny_images, cache


@pytest.fixture(scope="module")
def packed(cached_photos, tmp_path_factory):
    root, cache = cached_photos
    out = tmp_path_factory.mktemp("pack")
    # About two photos' crops per part, so that the source is spread over several parts.
    parts = pack.build(out, [(str(root), cache, ("train", "val"))], part_mb=0.04, log=lambda _: None)
    return out, parts


def test_parts_stay_under_their_size_and_hold_no_test_file(packed):
    out, parts = packed
    assert len(parts) >= 3
    for part in parts:
        files = [f for f in part.rglob("*.npz")]
        assert files
        # A part may pass its limit only by the one file that opened it.
        assert sum(f.stat().st_size for f in files) - max(f.stat().st_size for f in files) <= 0.04 * 2**20
    entries = [e for part in parts for e in read_index(part / next(part.iterdir()).name)]
    assert {e["split"] for e in entries} == {"train", "val"}
    assert json.loads((out / "pack.json").read_text())["parts"] == len(parts)


def test_merged_parts_are_the_source_with_its_splits_and_its_crops(cached_photos, packed, tmp_path):
    root, cache = cached_photos
    _, parts = packed
    for part in parts:
        pack.merge(part, tmp_path)
    pack.merge(parts[0], tmp_path)  # staging a part twice adds nothing
    source = tmp_path / root.name
    here = discover(root)
    grouped_split(here)
    expected = {(i.key, i.split, i.label) for i in here if i.split != "test" and i.key in cached_keys(cache)}
    there = discover(source)
    assert {(i.key, i.split, i.label) for i in there} == expected
    assert len(read_index(source)) == len(expected)

    item = there[0]
    original, packed_arrays = load_crops(cache, item.key), load_crops(source, item.key)
    assert packed_arrays["crops"].shape == (len(original["crops"]), 224, 224, 3)
    scale = 224 / original["crops"].shape[1]
    np.testing.assert_allclose(packed_arrays["landmarks"], original["landmarks"] * scale, rtol=1e-5)
    # The same face, resized and JPEG-encoded at quality 90: a small difference, no other image.
    resized = np.stack([pack.cv2.resize(c, (224, 224), interpolation=pack.cv2.INTER_AREA) for c in original["crops"]])
    assert np.abs(packed_arrays["crops"].astype(int) - resized).mean() < 3


def cached_keys(cache):
    return {e["key"] for e in read_index(cache) if e.get("crops", 0) > 0}


def test_parts_of_different_packs_do_not_mix(cached_photos, packed, tmp_path):
    root, cache = cached_photos
    _, parts = packed
    pack.merge(parts[0], tmp_path / "dest")
    other = pack.build(tmp_path / "other", [(str(root), cache, ("val",))], quality=70, log=lambda _: None)
    with pytest.raises(SystemExit, match="packed differently"):
        pack.merge(other[0], tmp_path / "dest")


def test_a_merged_pack_trains_on_every_source_it_holds(cached_photos, tmp_path):
    """What a GPU machine runs: the pack is its own cache (no media, no face detector there),
    and a source packed for validation only validates."""
    root, cache = cached_photos
    sources = [(str(root), cache, ("train", "val")), (str(root), cache, ("val",))]
    parts = pack.build(tmp_path / "parts", sources, part_mb=0.1, log=lambda _: None)
    dest = tmp_path / "pack"
    for part in parts:
        pack.merge(part, dest)
    output = tmp_path / "model.pt"
    pack.main(
        [
            "train",
            str(dest),
            "image",
            "--run",
            str(tmp_path / "run"),
            "--output",
            str(output),
            "--epochs",
            "1",
            "--head-epochs",
            "0",
            "--samples-per-epoch",
            "16",
            "--batch-size",
            "8",
            "--workers",
            "2",
            "--no-pretrained",
        ]
    )
    provenance = load_checkpoint(output, expected_name="efficientnet").provenance
    assert provenance["data"] == [str(dest / root.name)]
    assert provenance["validated_on"] == [str(dest / f"{root.name}-2")]
    assert provenance["splits"]["test"] == {"files": 0, "fake": 0}  # the test split stayed home
    assert provenance["splits"]["train"]["files"] > 0
    assert provenance["history"][-1]["loss"] > 0
    assert set(provenance["history"][-1]["by_domain"]) == {root.name, f"{root.name}-2"}


def test_worker_processes_draw_their_own_batches(packed, tmp_path):
    _, parts = packed
    dest = tmp_path / "pack"
    for part in parts:
        pack.merge(part, dest)
    source = next(p for p in dest.iterdir())
    config = train.TrainConfig(kind="image", batch_size=8, workers=2)
    domain, _ = train.load_domain(str(source), source, config, lambda _: None)
    batches = list(train.batches([domain], config, 64, steps=4, seed=0))
    assert len(batches) == 4
    images = [b[0].numpy() for b in batches]
    assert all(i.shape == (8, 64, 64, 3) and i.dtype == np.uint8 for i in images)
    # Two workers with one seed each: no batch repeats another.
    assert len({i.tobytes() for i in images}) == 4
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert 0 < labels.mean() < 1


def test_a_video_can_be_packed_with_fewer_frames_evenly_spaced(tmp_path):
    crops = np.stack([np.full((256, 256, 3), 20 * k, np.uint8) for k in range(10)])
    cached = {
        "crops": crops,
        "landmarks": np.tile(np.arange(10, dtype=np.float32)[:, None, None], (1, 5, 2)),
        "frames": np.arange(0, 100, 10, dtype=np.int32),
    }
    arrays = pack.encode(cached, 128, 90, frames_per_file=4)
    assert arrays["frames"].tolist() == [0, 30, 60, 90]
    assert arrays["landmarks"][:, 0, 0].tolist() == [0, 1.5, 3, 4.5]  # frames 0, 3, 6, 9, scaled by 0.5
    np.savez(tmp_path / "video.npz", **arrays)
    decoded = load_crops(tmp_path, "video")["crops"]
    assert decoded.shape == (4, 128, 128, 3)
    assert [round(float(image.mean())) for image in decoded] == [0, 60, 120, 180]
