"""The installed models, read from the JSON cards beside the checkpoints (no torch needed)."""

import json
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

DEFAULT_MODELS = {"video": "efficientnet_lstm", "image": "efficientnet"}


@dataclass
class InstalledModel:
    name: str  # the file stem, which is what a user asks for
    architecture: str
    kind: str
    version: str
    calibration: dict
    provenance: dict
    weights_present: bool

    @property
    def is_default(self) -> bool:
        return DEFAULT_MODELS.get(self.kind) == self.name


def installed_models() -> list[InstalledModel]:
    models = []
    for card_path in sorted(Path(settings.DEEPFAKE_MODEL_DIR).glob("*.json")):
        try:
            card = json.loads(card_path.read_text())
            config = card["config"]
        except (OSError, ValueError, KeyError):
            continue
        provenance = card.get("provenance") or {}
        models.append(
            InstalledModel(
                name=card_path.stem,
                architecture=config["name"],
                kind=config["kind"],
                version=str(provenance.get("version") or card.get("sha256", "")[:12]),
                calibration=card.get("calibration") or {},
                provenance=provenance,
                weights_present=card_path.with_suffix(".pt").is_file(),
            )
        )
    return models


def model_names() -> list[str]:
    return [m.name for m in installed_models() if m.weights_present]


def check_models() -> dict:
    """For /healthz: the default models' weight files are present."""
    missing = [
        name for name in DEFAULT_MODELS.values() if not (Path(settings.DEEPFAKE_MODEL_DIR) / f"{name}.pt").is_file()
    ]
    if missing:
        return {
            "ok": False,
            "error": f"model files missing in {settings.DEEPFAKE_MODEL_DIR}: {', '.join(missing)}",
        }
    return {"ok": True, "models": model_names()}
