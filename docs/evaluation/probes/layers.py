"""Probe (2026-11-29): does any layer of the video model's trunk separate FF++ videos better
than its frame head does, for a head trained on FF++ itself?

    PYTHONPATH=. .venv/bin/python docs/evaluation/probes/layers.py ../shared/data/videos/ffpp \
        ~/.cache/deepfake-forensics/crops/ffpp ml/weights/efficientnet_lstm.pt

For 32 evenly spaced cached crops of each FF++ c23 train + validation video: the channel mean
and standard deviation of the feature maps after the stem's first block and blocks 2, 4, 7,
10, 14 and 15, and of the head convolution, averaged over the video. A logistic regression
per layer, trained on four of `ml.training.crossval`'s five grouped folds, scores the fifth;
it prints the pooled per-video ROC-AUC per layer and regularisation. A record of what
MODEL_CARD.md reports, not part of the workshop.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.checkpoint import load_checkpoint
from ml.training.crossval import assign_folds
from ml.training.datasets import connected_groups, discover, grouped_split, read_index
from ml.training.train import load_split, to_input, to_tensor

TAPS = {0: "block 0", 2: "block 2", 4: "block 4", 7: "block 7", 10: "block 10", 14: "block 14", 15: "block 15"}


def layer_statistics(model, crops: np.ndarray) -> list[np.ndarray]:
    """Per tapped layer (and the head convolution): the video's mean of per-crop channel mean and std."""
    trunk = model.backbone
    x = to_tensor([to_input(c, model.config.input_size) for c in crops], model)
    found = []
    with torch.no_grad():
        h = trunk.act(trunk._bn0(trunk._conv_stem(x)))
        for k, block in enumerate(trunk._blocks):
            h = block(h)
            if k in TAPS:
                found.append(torch.cat([h.mean((2, 3)), h.std((2, 3))], 1).mean(0).numpy())
        h = trunk.act(trunk._bn1(trunk._conv_head(h)))
        found.append(torch.cat([h.mean((2, 3)), h.std((2, 3))], 1).mean(0).numpy())
    return found


def main(data: str, cache: str, model_path: str) -> None:
    items = discover(data)
    grouped_split(items, seed=0)
    by_key = {item.key: item for item in items}
    pooled = {key for key, item in by_key.items() if item.split in ("train", "val")}
    crops = load_split(Path(cache), [dict(e, split="pool") for e in read_index(cache) if e["key"] in pooled], "pool")
    model = load_checkpoint(Path(model_path)).model.float().eval()
    layers, labels = [], []
    for i, entry in enumerate(crops.files):
        members = np.flatnonzero(crops.owners == i)
        picks = members[np.linspace(0, len(members) - 1, min(32, len(members))).round().astype(int)]
        layers.append(layer_statistics(model, crops.crops[picks]))
        labels.append(entry["label"])
    y = np.array(labels)
    folds = assign_folds(connected_groups([by_key[e["key"]] for e in crops.files]), 5, 0)
    names = [*TAPS.values(), "head convolution", "all together"]
    for c in (0.001, 0.01, 0.1):
        results = []
        for n in range(len(names)):
            x = np.array([np.concatenate(v) if n == len(names) - 1 else v[n] for v in layers])
            scores = np.zeros(len(y))
            for fold in range(5):
                fit = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
                fit.fit(x[folds != fold], y[folds != fold])
                scores[folds == fold] = fit.decision_function(x[folds == fold])
            results.append(f"{names[n]} {roc_auc_score(y, scores):.3f}")
        print(f"C={c}: " + ", ".join(results))


if __name__ == "__main__":
    main(*sys.argv[1:4])
