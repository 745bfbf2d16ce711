"""Model cards: `NAME.json` beside each checkpoint `NAME.pt`, with the config, calibration,
provenance, the SHA-256 of the weights and the measurements made of them. Pure Python: the
web process lists the installed models from their cards without loading torch.

The facts both sides must agree on live here: which model is the default for each kind of
file, and how a model's version is named (if the two drifted, measured accuracy would
silently vanish from every page: pages find a card's figures by that version).
"""

from __future__ import annotations

import json
from pathlib import Path

DEFAULT_MODELS = {"video": "efficientnet_lstm", "image": "efficientnet"}


def version(provenance: dict, sha256: str) -> str:
    """A short, stable identity of a model's exact weights: the version it was given when
    saved, else the start of its weights' SHA-256."""
    return str((provenance or {}).get("version") or sha256[:12] or "untracked")


def read_cards(model_dir: str | Path) -> list[tuple[Path, dict]]:
    """Every readable card in a folder, by name; unreadable ones are left out."""
    cards = []
    for path in sorted(Path(model_dir).glob("*.json")):
        try:
            card = json.loads(path.read_text())
            card["config"]["name"], card["config"]["kind"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        cards.append((path, card))
    return cards
