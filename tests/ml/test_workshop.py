"""The workshop's new pieces on small real samples: source import (from a local git clone the
test makes), calibration for coverage, training domains, and the scoreboard."""

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ml.calibration import Calibration
from ml.training import calibrate, sources
from tests.conftest import shared_path


def git_repo(folder: Path) -> Path:
    """Commit everything under `folder` to a fresh repository; returns its .git directory."""
    run = {"cwd": folder, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "-q"], **run)
    subprocess.run(["git", "add", "-A"], **run)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "fixture"], **run)
    return folder / ".git"


# -- import -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timit_clone(tmp_path_factory) -> Path:
    """A clone laid out like source 1 (frame folders of JPEGs without extension), made of real
    faces: two speakers' clips from LFW photos, real at 512x384 and fake at 299x299."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("timit_clone")
    photos = sorted(shared_path("data", "images", "lfw_faceswap", "test", "real").glob("*.jpg"))
    k = 0
    for split, speaker in (("train", "fadg0"), ("test", "mrgg0")):
        for label, size in (("real", (512, 384)), ("fake", (299, 299))):
            clip = folder / "deepfake_dataset" / "LQ" / split / label / speaker / "sa1"
            clip.mkdir(parents=True)
            for i in range(3):
                Image.open(photos[k % len(photos)]).convert("RGB").resize(size).save(clip / f"{i:03d}", "JPEG")
                k += 1
            (clip.parent / ".dircksum").write_text("checksum file of the original repository")
    return git_repo(folder)


@pytest.mark.slow
def test_a_source_imports_with_manifest_provenance_and_engine_crops(timit_clone, tmp_path):
    out = sources.import_source("deepfaketimit", [timit_clone], root=tmp_path)
    rows = list(csv.DictReader((out / "manifest.tsv").open(), dialect="excel-tab"))
    assert len(rows) == 4 and {r["split"] for r in rows} == {"train", "test"}
    assert {(r["label"], r["method"]) for r in rows} == {("real", ""), ("fake", "DeepfakeTIMIT")}
    assert all(r["kind"] == "video" and r["group"] in ("fadg0", "mrgg0") for r in rows)
    # Both classes get the same treatment: every clip has the fakes' size (299, stored as 298:
    # MJPG keeps even sides), written the same way.
    import cv2

    sizes = set()
    for row in rows:
        capture = cv2.VideoCapture(str(out / row["path"]))
        sizes.add((capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 3
    assert sizes == {(298, 298)}
    provenance = json.loads((out / "provenance.json").read_text())
    commit = subprocess.run(
        ["git", f"--git-dir={timit_clone}", "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout
    assert provenance["commit"] == commit[:7] and provenance["repository"] == "LamQam/Deepfake_Detection"
    assert provenance["counts"] == {"test/fake": 1, "test/real": 1, "train/fake": 1, "train/real": 1}
    assert "research only" in provenance["licence"]
    # Faces were found and cropped by the engine's own detector, one cache entry per clip.
    index = [json.loads(line) for line in (tmp_path / "crops" / "deepfaketimit" / "index.jsonl").open()]
    assert len(index) == 4 and all(entry["crops"] >= 1 for entry in index)


def test_reserved_clips_are_never_imported(tmp_path):
    folder = tmp_path / "clone"
    (folder / "examples" / "ref_video").mkdir(parents=True)
    (folder / "examples" / "face").mkdir(parents=True)
    for name in ("WDA_AlexandriaOcasioCortez_000.mp4", "WDA_KatieHill_000.mp4"):
        (folder / "examples" / "ref_video" / name).write_bytes(b"not really a video")
    (folder / "examples" / "face" / "1.mp4").write_bytes(b"not really a video either")
    clone = git_repo(folder)
    into = tmp_path / "tree"
    sources.extract(clone, sources.SOURCES["talking_heads"].folders, into)
    names = sorted(p.name for p in into.rglob("*.mp4"))
    assert names == ["1.mp4", "WDA_KatieHill_000.mp4"]


def test_ffpp_c40_keeps_the_split_of_each_id_and_skips_reserved_ids(tmp_path):
    ffpp = shared_path("data", "videos", "ffpp")
    known = sources.ffpp_splits(ffpp)
    source = ffpp / "real" / "033.mp4"
    base = tmp_path / "media" / "in_out_videos"
    ids = ["183", "253", "866", "878", "004"]
    for video_id in ids:
        path = base / "original" / "youtube" / "c40" / "videos" / f"{video_id}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, path)
    for pair in ("183_253", "866_878", "004_183"):
        path = base / "manipulate" / "NeuralTextures" / "c40" / "videos" / f"{pair}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, path)
    records = {r.path: r for r in sources.prepare_ffpp_c40(tmp_path, tmp_path / "out")}
    assert not any("004" in path for path in records)  # reserved, as target or source
    assert records["files/youtube/183.mp4"].split == known["183"]
    assert records["files/youtube/866.mp4"].split == known["878"]  # 866 follows its partner
    fake = records["files/NeuralTextures/NeuralTextures_183_253.mp4"]
    assert fake.label == "fake" and fake.method == "NeuralTextures" and fake.split == known["183"]


# -- calibration --------------------------------------------------------------------------------


def brute_force_band(labels: np.ndarray, p: np.ndarray, target: float) -> float:
    """The best coverage any band around 0.5 reaches with definite accuracy >= target."""
    best = 0.0
    values = np.unique(np.concatenate([p, [0.5]]))
    for low in values[values <= 0.5]:
        for high in values[values >= 0.5]:
            definite = (p < max(low, 0.001)) | (p >= min(high, 0.999))
            if definite.sum():
                right = ((p >= min(high, 0.999)) & (labels == 1)) | ((p < max(low, 0.001)) & (labels == 0))
                if right.sum() / definite.sum() >= target:
                    best = max(best, definite.mean())
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_band_gives_the_most_definite_verdicts_at_the_target(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 120)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.18), 0.001, 0.999)
    low, high, coverage, accuracy = calibrate.choose_band(labels, scores, 0.5, 0.9)
    assert low <= 0.5 <= high and accuracy >= 0.9
    definite = (scores < low) | (scores >= high)
    assert coverage == pytest.approx(definite.mean())
    assert coverage == pytest.approx(brute_force_band(labels, scores, 0.9))


def test_with_sources_the_band_holds_the_target_within_each_source():
    rng = np.random.default_rng(0)
    # A large easy source (well separated) and a small hard one (barely separated).
    easy_labels = rng.integers(0, 2, 300)
    easy = np.clip(rng.normal(0.2 + 0.6 * easy_labels, 0.08), 0.001, 0.999)
    hard_labels = rng.integers(0, 2, 60)
    hard = np.clip(rng.normal(0.45 + 0.1 * hard_labels, 0.12), 0.001, 0.999)
    labels, scores = np.concatenate([easy_labels, hard_labels]), np.concatenate([easy, hard])
    groups = np.array(["easy"] * 300 + ["hard"] * 60)

    def right_when_definite(low, high, mask):
        definite = mask & ((scores < low) | (scores >= high))
        right = definite & (((scores >= high) & (labels == 1)) | ((scores < low) & (labels == 0)))
        return right.sum() / max(definite.sum(), 1), definite.sum() / mask.sum()

    low, high, _, _ = calibrate.choose_band(labels, scores, 0.5, 0.9)
    pooled_hard, _ = right_when_definite(low, high, groups == "hard")
    assert pooled_hard < 0.9  # pooled, the easy source sets a band that fails the hard one

    low, high, coverage, worst = calibrate.choose_band(labels, scores, 0.5, 0.9, groups)
    for name in ("easy", "hard"):
        accuracy, _ = right_when_definite(low, high, groups == name)
        assert accuracy >= 0.9
    assert worst >= 0.9
    coverages = [right_when_definite(low, high, groups == name)[1] for name in ("easy", "hard")]
    assert coverage == pytest.approx(np.mean(coverages)) and coverages[0] > 0.8
    # One source given as groups is the pooled choice.
    assert calibrate.choose_band(easy_labels, easy, 0.5, 0.9, np.zeros(300)) == calibrate.choose_band(
        easy_labels, easy, 0.5, 0.9
    )


def test_platt_scaling_makes_probabilities_honest_and_keeps_the_ranking():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    # An overconfident model: right 75 % of the time, but says 0.99 / 0.01.
    right = rng.random(2000) < 0.75
    raw = np.where(right == labels.astype(bool), 0.99, 0.01)
    scale, bias = calibrate.fit_platt(labels, raw)
    calibrated = calibrate.platt(raw, scale, bias)
    assert 0 < scale < 1  # a temperature above 1 softens it
    assert calibrated[raw == 0.99].mean() == pytest.approx(0.75, abs=0.03)
    assert np.all(np.diff(calibrated[np.argsort(raw)]) >= 0)
    # A model that ranks backwards is not "calibrated" into a forward one.
    assert calibrate.fit_platt(labels, 1 - np.where(labels == 1, 0.8, 0.2)) == (1.0, 0.0)


def test_the_engine_applies_the_calibration_after_aggregating():
    calibration = Calibration(threshold=0.5, uncertain_low=0.3, uncertain_high=0.7, scale=0.5, bias=0.2)
    raw = np.array([0.01, 0.5, 0.99], np.float32)
    expected = calibrate.platt(raw, 0.5, 0.2)
    assert np.allclose(calibration.apply(raw), expected, atol=1e-6) and calibration.apply(raw).dtype == np.float32
    assert calibration.apply(0.99) == pytest.approx(float(expected[2]), abs=1e-6)
    assert Calibration().apply(raw) is raw  # old checkpoints: unchanged
    with pytest.raises(ValueError):
        Calibration(scale=0.0)


# -- training domains ---------------------------------------------------------------------------


def crop_set(labels: list[int], tag: int):
    from ml.training.train import CropSet

    n = len(labels)
    return CropSet(
        crops=np.full((n, 8, 8, 3), tag, np.uint8),
        landmarks=np.zeros((n, 5, 2), np.float32),
        labels=np.array(labels),
        owners=np.arange(n),
        files=[{"key": f"{tag}-{i}", "label": label} for i, label in enumerate(labels)],
    )


def test_a_fakes_only_domain_borrows_the_reals_of_domains_with_both():
    from ml.training.train import Domain, Log, borrow_reals, merge

    both = Domain("lfw", crop_set([0, 0, 1], 1), crop_set([0, 1], 1))
    reals_only = Domain("utkface", crop_set([0, 0, 0, 0], 2), crop_set([0], 2))
    fakes_only = Domain("stylegan", crop_set([1, 1], 3), crop_set([1], 3))
    borrow_reals([both, reals_only, fakes_only], Log(Path("/dev/null")))
    assert sorted(fakes_only.train.labels.tolist()) == [0, 0, 1, 1]
    # The borrowed reals are the lender's (tag 1), never the reals-only source's (tag 2).
    assert set(fakes_only.train.crops[fakes_only.train.labels == 0][:, 0, 0, 0].tolist()) == {1}
    assert sorted(fakes_only.val.labels.tolist()) == [0, 1]
    merged = merge([both.train, reals_only.train])
    assert len(merged.files) == 7 and merged.owners.max() == 6


# -- the scoreboard -------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_scoreboard_scores_a_set_through_the_full_pipeline(tmp_path):
    from ml.training import scoreboard

    shared_path("data", "images", "lfw_faceswap")
    weights = Path(__file__).resolve().parents[2] / "ml" / "weights"
    board = scoreboard.run(
        weights / "efficientnet.pt", weights / "efficientnet_lstm.pt", tmp_path, 10, ["LFW face swap test"], limit=3
    )
    (entry,) = board["sets"]
    assert entry["files"] + entry["failed"] == 6 and entry["kind"] == "photo"
    rows = entry["rows"]
    definite = [r for r in rows if r["verdict"] in ("fake", "real")]
    assert entry["coverage"] == pytest.approx(len(definite) / len(rows))
    if definite:
        right = sum((r["verdict"] == "fake") == bool(r["label"]) for r in definite)
        assert entry["definite_accuracy"] == pytest.approx(right / len(definite))
    assert 0 <= entry["roc_auc"] <= 1
    table = scoreboard.markdown(board)
    assert "| LFW face swap test | photo |" in table
    # Sets whose source is not imported are skipped with the command that imports it.
    board = scoreboard.run(
        weights / "efficientnet.pt", weights / "efficientnet_lstm.pt", tmp_path, 10, ["StyleGAN vs real photos"]
    )
    assert "python -m ml.training.sources import stylegan" in board["sets"][0]["skipped"]


def test_a_clip_written_from_frames_reads_back_in_order(tmp_path):
    import cv2

    frames = [np.full((48, 48, 3), 40 * i, np.uint8) for i in range(5)]
    sources.write_clip(frames, tmp_path / "clip.avi")
    capture = cv2.VideoCapture(str(tmp_path / "clip.avi"))
    levels = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        levels.append(float(frame.mean()))
    assert len(levels) == 5 and np.allclose(levels, [40 * i for i in range(5)], atol=3)


def test_writing_a_calibration_keeps_the_ranking_figures_and_sets_aside_the_verdict_figures(tmp_path):
    """A new band changes verdicts, not the ranking: the test split's verdict figures move to
    `evaluation_before_calibration`, the cross-validated ROC-AUC stays current."""
    import torch

    from ml.checkpoint import record_evaluation, save_checkpoint
    from ml.models import create_model

    model = tmp_path / "efficientnet_lstm.pt"
    torch.manual_seed(0)
    save_checkpoint(create_model("efficientnet_lstm"), model, Calibration(), {"version": "test-video"})
    crossval = {"roc_auc": 0.74, "roc_auc_interval": [0.65, 0.83], "files": 122}
    test = {"roc_auc": 0.89, "accuracy": 0.75, "split": "test", "files": 20}
    record_evaluation(model, "crossval", crossval)
    record_evaluation(model, "test", test)

    band = Calibration(uncertain_low=0.4, uncertain_high=0.9, scale=1.5, bias=-0.2)
    calibrate.write(model, calibrate.BandChoice(band, 0.85, 0.9, 124), ["val-videos"], "val", 0.9)

    card = json.loads(model.with_suffix(".json").read_text())
    assert card["calibration"]["uncertain_low"] == 0.4 and card["calibration"]["bias"] == -0.2
    assert card["evaluation"] == {"crossval": crossval}
    assert card["evaluation_before_calibration"] == {"crossval": crossval, "test": test}
