"""The training and evaluation commands end to end on a tiny subset (seconds, not minutes)."""

import itertools
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ml.checkpoint import load_checkpoint
from ml.inference import resolve_device
from ml.training import evaluate, train
from ml.training.datasets import read_index
from tests.conftest import shared_path
from tests.media_factory import write_frames_from


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory):
    """Three real and three fake 12-frame clips cut from FF++ (distinct ids, so splits are clean)."""
    root = tmp_path_factory.mktemp("tiny_ffpp")
    (root / "real").mkdir()
    (root / "fake").mkdir()
    ffpp = shared_path("data", "videos", "ffpp")
    reals = ["033", "035", "036"]
    for video_id in reals:
        write_frames_from(ffpp / "real" / f"{video_id}.mp4", root / "real" / f"{video_id}.mp4", 12, step=8)
    fakes = sorted(p for p in (ffpp / "fake").glob("Deepfakes_*.mp4") if p.stem.split("_")[1] not in reals)[:3]
    for path in fakes:
        write_frames_from(path, root / "fake" / path.name, 12, step=8)
    return root


def image_training(tiny_images: Path, tmp_path: Path, *options: str) -> list[str]:
    """`ml.training.train`'s command line for an image model on the tiny photos, in tmp_path."""
    return [
        "image",
        "--data",
        str(tiny_images),
        "--cache",
        str(tmp_path / "cache"),
        "--run",
        str(tmp_path / "run"),
        "--output",
        str(tmp_path / "efficientnet.pt"),
        "--samples-per-epoch",
        "16",
        "--batch-size",
        "8",
        *options,
    ]


def test_the_image_model_trains_and_its_checkpoint_loads(tiny_images, tmp_path):
    output = tmp_path / "efficientnet.pt"
    train.main(image_training(tiny_images, tmp_path, "--epochs", "2"))
    checkpoint = load_checkpoint(output, expected_name="efficientnet")
    provenance = checkpoint.provenance
    assert provenance["splits"]["train"] == {"files": 8, "fake": 4}
    assert len(provenance["history"]) == 2
    assert "validation" in provenance and provenance["training_minutes"] >= 0
    # Dated to the minute, so that two models trained on one day have their own versions.
    assert re.fullmatch(r"efficientnet-\d{8}-\d{4}", provenance["version"])
    assert (
        0
        <= checkpoint.calibration.uncertain_low
        <= checkpoint.calibration.threshold
        <= checkpoint.calibration.uncertain_high
        <= 1
    )
    log = (tmp_path / "run" / "train.log").read_text()
    assert "epoch 2/2" in log and "img/s" in log

    # Run again: it resumes after the last finished epoch instead of starting over.
    train.main(image_training(tiny_images, tmp_path, "--epochs", "3"))
    log = (tmp_path / "run" / "train.log").read_text()
    assert "resuming after epoch 2" in log and "epoch 3/3" in log and "epoch 1/3" not in log

    summary = evaluate.evaluate(output, str(tiny_images), "test", 10, tmp_path / "eval")
    assert summary["files"] == 8 and summary["per_photo"]["count"] + len(summary["failed"]) == 8
    written = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert written["per_photo"]["roc_auc"] == summary["per_photo"]["roc_auc"]
    for plot in ("photo_roc.png", "photo_pr.png", "photo_confusion.png", "photo_histogram.png"):
        assert (tmp_path / "eval" / plot).stat().st_size > 1000
    assert "| per photo |" in (tmp_path / "eval" / "summary.md").read_text()
    low, high = written["per_photo"]["roc_auc_interval"]
    assert low <= written["per_photo"]["roc_auc"] <= high


def test_a_source_that_only_validates_chooses_the_epoch_and_never_trains(tiny_images, tiny_videos, tmp_path):
    """`--validate-on`: its validation split is scored every epoch beside the training
    sources'; its other files are not even cropped, so no frame of them can reach a batch."""
    videos = sorted(tiny_videos.rglob("*.mp4"))
    rows = ["path\tlabel\tgroup\tsplit"]
    for k, path in enumerate(videos):
        label = path.parent.name
        rows.append(f"{path}\t{label}\t{path.stem}\t{'val' if k in (0, 3) else 'train'}")
    manifest = tmp_path / "watched" / "manifest.tsv"
    manifest.parent.mkdir()
    manifest.write_text("\n".join(rows) + "\n")
    args = ["image", "--data", str(tiny_images), "--cache", str(tmp_path / "cache"), "--run", str(tmp_path / "run")]
    args += ["--validate-on", str(manifest), "--validate-cache", str(tmp_path / "watched-cache")]
    args += ["--output", str(tmp_path / "model.pt"), "--epochs", "1", "--samples-per-epoch", "16"]
    train.main([*args, "--batch-size", "8", "--frames", "10"])

    history = load_checkpoint(tmp_path / "model.pt").provenance["history"]
    assert {tiny_images.name, "watched"} <= set(history[-1]["by_domain"])
    cached = {entry["key"] for entry in read_index(tmp_path / "watched-cache")}
    assert len(cached) == 2  # the two validation videos, one of each class
    assert "watched (validation only): val 20 crops (2 files, 10 fake)" in (tmp_path / "run" / "train.log").read_text()


def test_the_video_model_trains_its_sequence_head(tiny_videos, tmp_path):
    """...starting from a photo model's trunk and frame head (`--init-from`)."""

    from ml.calibration import Calibration
    from ml.checkpoint import save_checkpoint
    from ml.models import create_model

    photo_model = create_model("efficientnet")
    save_checkpoint(photo_model, tmp_path / "photo.pt", Calibration(), {"version": "test"})
    output = tmp_path / "efficientnet_lstm.pt"
    train.main(
        [
            "video",
            "--init-from",
            str(tmp_path / "photo.pt"),
            "--data",
            str(tiny_videos),
            "--cache",
            str(tmp_path / "cache"),
            "--run",
            str(tmp_path / "run"),
            "--output",
            str(output),
            "--epochs",
            "1",
            "--samples-per-epoch",
            "16",
            "--batch-size",
            "8",
            "--frames",
            "10",
            "--sequence-epochs",
            "2",
            "--sequence-views",
            "1",
        ]
    )
    checkpoint = load_checkpoint(output, expected_name="efficientnet_lstm")
    assert "best_val_video_auc" in checkpoint.provenance["validation"]
    log = (tmp_path / "run" / "train.log").read_text()
    assert "sequence features" in log
    # The starting weights were validated as epoch 0 and the provenance says where they came from.
    assert "epoch 0 (the starting weights)" in log
    assert checkpoint.provenance["history"][0]["epoch"] == 0
    assert checkpoint.provenance["backbone_init"].startswith("photo.pt")

    # A video model that scores by the mean of its frames: no sequence stage, the photo trunk kept.
    mean_output = tmp_path / "mean.pt"
    args = ["video", "--init-from", str(tmp_path / "photo.pt"), "--data", str(tiny_videos)]
    args += ["--cache", str(tmp_path / "cache"), "--run", str(tmp_path / "run-mean"), "--output", str(mean_output)]
    train.main([*args, "--epochs", "0", "--frames", "10", "--aggregate", "mean"])
    mean_model = load_checkpoint(mean_output, expected_name="efficientnet_lstm")
    assert mean_model.config.arch["aggregate"] == "mean" and not mean_model.model.is_sequence_model
    assert "val_video_auc_mean" in mean_model.provenance["validation"]
    assert "sequence features" not in (tmp_path / "run-mean" / "train.log").read_text()


def test_metrics_match_scikit_learn_on_a_hand_made_example():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.35, 0.8, 0.3, 0.6, 0.7, 0.9])
    m = evaluate.compute_metrics(labels, scores, threshold=0.5)
    # At 0.5: TN = 3 (0.1, 0.2, 0.35), FP = 1 (0.8), FN = 1 (0.3), TP = 3.
    assert m.confusion == [[3, 1], [1, 3]]
    assert m.accuracy == 0.75 and m.precision == 0.75 and m.recall == 0.75 and m.f1 == 0.75
    # Of 16 (real, fake) pairs, 12 rank the fake higher: 0.3 beats 2 reals, 0.6 and 0.7 beat 3, 0.9 beats 4.
    assert m.roc_auc == pytest.approx(12 / 16)
    assert m.eer == pytest.approx(0.25)
    assert 0 < m.average_precision <= 1


def test_the_auc_interval_is_a_stratified_bootstrap():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.35, 0.8, 0.3, 0.6, 0.7, 0.9])
    low, high = evaluate.auc_interval(labels, scores)
    assert low < 12 / 16 < high and (low, high) == evaluate.auc_interval(labels, scores)
    # Ten times as many files with the same scores: a narrower interval around the same AUC.
    many_low, many_high = evaluate.auc_interval(np.repeat(labels, 10), np.repeat(scores, 10))
    assert low < many_low < 12 / 16 < many_high < high
    # Perfect separation stays perfect in every resample; ties count half, as in scikit-learn.
    assert evaluate.auc_interval(labels, labels + 0.1) == (1.0, 1.0)
    assert evaluate.auc_interval(labels, np.full(8, 0.5)) == (0.5, 0.5)


def test_cross_validation_folds_keep_each_group_whole():
    from ml.training.crossval import assign_folds
    from ml.training.datasets import MediaItem, connected_groups, ids_for

    names = ["real/033.mp4", "real/097.mp4", "fake/Deepfakes_033_097.mp4", "real/035.mp4", "real/036.mp4"]
    names += ["fake/Face2Face_035_036.mp4", "real/040.mp4", "real/041.mp4", "fake/FaceSwap_041_040.mp4"]
    names += ["real/050.mp4", "real/051.mp4", "real/052.mp4"]
    items = []
    for name in names:
        ids, method = ids_for(Path(name))
        items.append(MediaItem(name, int(name.startswith("fake")), "video", ids, method=method))
    groups = connected_groups(items)
    folds = assign_folds(groups, 3, seed=0)
    for group in set(groups):
        assert len({f for f, g in zip(folds, groups, strict=True) if g == group}) == 1
    # Three groups of three and three single videos: dealt to the smallest fold, 4 each.
    assert sorted(np.bincount(folds).tolist()) == [4, 4, 4]
    assert (assign_folds(groups, 3, seed=0) == folds).all()


def test_cross_validation_scores_every_pooled_video_once(tiny_videos, tmp_path):
    from ml.calibration import Calibration
    from ml.checkpoint import save_checkpoint
    from ml.models import create_model
    from ml.training.crossval import main as crossval
    from ml.training.datasets import discover, grouped_split

    save_checkpoint(create_model("efficientnet_lstm"), tmp_path / "video.pt", Calibration(), {"version": "test"})
    out = tmp_path / "cv.json"
    model, data, cache = str(tmp_path / "video.pt"), str(tiny_videos), str(tmp_path / "cache")
    options = f"--folds 2 --sequence-epochs 1 --views 0 --frames 10 --out {out}"  # tmp_path has no spaces
    crossval(["--model", model, "--data", data, "--cache", cache, *options.split()])
    summary = json.loads(out.read_text())
    items = discover(str(tiny_videos))
    grouped_split(items, seed=0)
    pooled = [item for item in items if item.split in ("train", "val")]
    # The test split stays out; every train and validation video is held out in exactly one fold.
    assert summary["videos"] == len(pooled) == sum(f["videos"] for f in summary["per_fold"])
    assert summary["fake"] == sum(item.label for item in pooled)
    assert set(summary) >= {"sequence", "mean"} and len(summary["sequence"]["roc_auc_interval"]) == 2
    assert summary["device"] == str(resolve_device("auto"))  # where `--device auto` finds (CUDA if any)


def test_select_last_keeps_the_weights_of_the_last_epoch_not_the_start(tiny_images, tmp_path):
    from ml.calibration import Calibration
    from ml.checkpoint import save_checkpoint
    from ml.models import create_model

    torch.manual_seed(0)
    save_checkpoint(create_model("efficientnet"), tmp_path / "start.pt", Calibration(), {"version": "start"})
    options = f"--init-from {tmp_path / 'start.pt'} --head-epochs 0 --unfreeze-blocks 16 --lr-backbone 1e-3"
    train.main(image_training(tiny_images, tmp_path, *options.split(), "--epochs", "1", "--select", "last"))
    kept = load_checkpoint(tmp_path / "efficientnet.pt").model.float().state_dict()
    last = torch.load(tmp_path / "run" / "state.pt", weights_only=False)["model"]
    start = load_checkpoint(tmp_path / "start.pt").model.float().state_dict()
    name = "backbone._conv_head.weight"
    assert torch.allclose(kept[name], last[name].float(), atol=1e-3)  # float16 in the checkpoint
    assert not torch.allclose(kept[name], start[name], atol=1e-3)
    assert " *best" not in (tmp_path / "run" / "train.log").read_text()


def test_a_training_recipe_is_cross_validated_with_a_run_per_fold_that_never_sees_the_fold(tiny_videos, tmp_path):
    import csv

    from ml.training.crossval import main as crossval
    from ml.training.datasets import discover, grouped_split

    work, out = tmp_path / "work", tmp_path / "cv.json"
    recipe = "image --no-pretrained --epochs 1 --samples-per-epoch 8 --batch-size 4 --frames 10"
    options = f"--data {tiny_videos} --cache {tmp_path / 'cache'} --folds 2 --frames 10 --out {out}"
    command = ["--retrain", str(work), *options.split(), "--", *recipe.split()]
    crossval(command)
    summary = json.loads(out.read_text())
    items = discover(str(tiny_videos))
    grouped_split(items, seed=0)
    pooled = {str(Path(item.path).resolve()) for item in items if item.split in ("train", "val")}
    assert summary["videos"] == len(pooled) == sum(fold["videos"] for fold in summary["per_fold"])
    assert summary["recipe"][1:] == recipe.split()
    assert len(summary["selected"]["roc_auc_interval"]) == 2 and "last_epoch" in summary
    for k, fold in enumerate(summary["per_fold"], start=1):
        # Each fold's run trained on the pooled videos outside the fold: none of its own, no test video.
        with (work / f"fold-{k}" / tiny_videos.name / "manifest.tsv").open() as handle:
            listed = {row["path"] for row in csv.DictReader(handle, dialect="excel-tab")}
        assert listed < pooled and len(listed) == len(pooled) - fold["videos"]
        log = (work / f"fold-{k}" / "run" / "train.log").read_text()
        assert "epoch 1/1" in log and "caching faces" not in log  # the crops were linked, not cut again
    # Run again: the finished folds are scored, not trained again. With the recipe's model (here
    # fold 1's, standing in for one trained on everything), --record stores the estimate in its card.
    trained = [(work / f"fold-{k}" / "model.pt").stat().st_mtime_ns for k in (1, 2)]
    split = command.index("--")
    crossval([*command[:split], "--model", str(work / "fold-1" / "model.pt"), "--record", *command[split:]])
    assert [(work / f"fold-{k}" / "model.pt").stat().st_mtime_ns for k in (1, 2)] == trained
    assert json.loads(out.read_text())["selected"] == summary["selected"]
    card = json.loads((work / "fold-1" / "model.json").read_text())
    recorded = card["evaluation"]["crossval"]
    assert recorded["roc_auc"] == summary["selected"]["roc_auc"] and recorded["recipe"][1:] == recipe.split()


def test_bfloat16_is_used_only_where_the_cpu_computes_it_natively():
    """For training: emulated bfloat16 (AVX512 without its BF16 extension) is slower than float32."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo to read the CPU's flags from")
    flags = set(cpuinfo.read_text().split())
    assert train.bf16_is_fast(torch.device("cpu")) == bool({"avx512_bf16", "amx_bf16"} & flags)


def test_reported_figures_are_computed_in_float32_on_every_machine(monkeypatch):
    """Training may run in bfloat16 where the CPU has it; crossval and calibration must not:
    their figures would then depend on the machine that computed them."""
    from ml.models import create_model

    torch.manual_seed(0)
    model = create_model("efficientnet").eval()
    crops = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    monkeypatch.setattr(train, "bf16_is_fast", lambda device: False)
    float32, embedded32 = train.predict(model, crops)
    monkeypatch.setattr(train, "bf16_is_fast", lambda device: True)  # a machine with AMX
    fast, _ = train.predict(model, crops)
    exact, embedded = train.predict(model, crops, exact=True)
    assert not np.array_equal(fast, float32)  # bfloat16 did run
    np.testing.assert_array_equal(exact, float32)
    np.testing.assert_array_equal(embedded, embedded32)


def test_a_time_budget_stops_between_epochs_and_the_same_command_goes_on(tiny_images, tmp_path, monkeypatch):
    output = tmp_path / "efficientnet.pt"
    command = image_training(tiny_images, tmp_path, "--epochs", "3", "--patience", "5", "--no-pretrained")
    # A clock that reads a minute later each time: the setup outlasts the half-minute budget,
    # and the first epoch still runs; after it, any other would pass the budget.
    monkeypatch.setattr(train, "time", SimpleNamespace(monotonic=itertools.count(0.0, 60.0).__next__))
    train.main([*command, "--max-minutes", "0.5"])
    assert [h["epoch"] for h in load_checkpoint(output).provenance["history"]] == [1]
    assert "another would pass --max-minutes" in (tmp_path / "run" / "train.log").read_text()
    train.main(command)
    assert [h["epoch"] for h in load_checkpoint(output).provenance["history"]] == [1, 2, 3]
