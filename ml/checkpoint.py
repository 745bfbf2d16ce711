"""The checkpoint format: one file per model, everything needed to trust and use it.

A checkpoint is a `torch.save`d dict of plain data and tensors, loaded with
`weights_only=True` because a checkpoint is untrusted input:

    format          "deepfake-forensics-checkpoint"
    format_version  1
    config          ModelConfig as a dict: architecture, preprocessing, class mapping
    calibration     decision threshold and the "uncertain" band, chosen on validation data
    provenance      free-form: data, licences, date, command, metrics, version
    state_dict      the weights (floating tensors may be stored as float16)

Loading checks every part and raises `ModelUnavailableError` with a message that says what
is wrong, for a missing file, a corrupt one, or one that does not fit its architecture.

Beside each checkpoint `NAME.pt`, `save_checkpoint` writes `NAME.json`: the same config,
calibration and provenance without the weights, so that programs without torch (the web
process) can list the installed models and their metrics. Measurements made after training
(`ml.training.evaluate --record`, `ml.training.crossval --record`) are added to the card's `evaluation`, under
the sha256 of the weights they measured.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ml import cards
from ml.calibration import Calibration
from ml.errors import ModelUnavailableError
from ml.models import DeepfakeModel, ModelConfig, build_model
from ml.provenance import sha256_file

FORMAT = "deepfake-forensics-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    model: DeepfakeModel
    calibration: Calibration
    provenance: dict = field(default_factory=dict)
    path: Path | None = None
    sha256: str = ""

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def version(self) -> str:
        """A short, stable identity of these exact weights (for the record of an analysis)."""
        return cards.version(self.provenance, self.sha256)


def save_checkpoint(
    model: DeepfakeModel,
    path: str | Path,
    calibration: Calibration | None = None,
    provenance: dict | None = None,
    half: bool = False,
) -> Path:
    """Write the model, its config, calibration and provenance to one file."""
    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        state[key] = tensor.half() if half and tensor.is_floating_point() else tensor.clone()
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "calibration": asdict(calibration or Calibration()),
        "provenance": dict(provenance or {}),
        "state_dict": state,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, temporary)
    temporary.replace(path)  # never leave a half-written checkpoint under the real name
    card = {key: value for key, value in payload.items() if key != "state_dict"}
    card["sha256"] = sha256_file(path)
    path.with_suffix(".json").write_text(json.dumps(card, indent=2, default=str) + "\n")
    return path


def load_checkpoint(path: str | Path, expected_name: str | None = None, device: str = "cpu") -> Checkpoint:
    """Load and validate a checkpoint; the model comes back in eval mode on `device`."""
    path = Path(path)
    if not path.is_file():
        raise ModelUnavailableError(f"model file not found: {path.name} (is the model installed?)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged or foreign file
        raise ModelUnavailableError(f"{path.name} is corrupt or not a checkpoint ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelUnavailableError(f"{path.name} is not a {FORMAT} file")
    if payload.get("format_version") != FORMAT_VERSION:
        found = payload.get("format_version")
        raise ModelUnavailableError(f"{path.name} has format version {found}, this code reads {FORMAT_VERSION}")
    try:
        config = ModelConfig.from_dict(payload["config"])
        calibration = Calibration(**payload["calibration"])
        state = payload["state_dict"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelUnavailableError(f"{path.name} has an invalid config or calibration ({exc})") from None
    if expected_name is not None and config.name != expected_name:
        raise ModelUnavailableError(f"{path.name} holds a {config.name!r} model, not {expected_name!r}")
    try:
        model = build_model(config)
    except (KeyError, ValueError) as exc:
        raise ModelUnavailableError(f"{path.name}: {exc}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong_shape:
        raise ModelUnavailableError(
            f"{path.name} does not fit the {config.name!r} architecture: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong_shape[:3]}"
        )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    model.eval().to(device)
    return Checkpoint(
        model=model,
        calibration=calibration,
        provenance=dict(payload.get("provenance") or {}),
        path=path,
        sha256=sha256_file(path),
    )


def record_evaluation(path: str | Path, name: str, result: dict) -> Path:
    """Store a measurement of these exact weights (`name`: "test", "crossval") in the card
    beside the checkpoint. Refuses when the card describes other weights than the file."""
    path = Path(path)
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    if card.get("sha256") != sha256_file(path):
        raise ValueError(f"{card_path.name} does not describe the weights in {path.name}; save the checkpoint again")
    card.setdefault("evaluation", {})[name] = result
    card_path.write_text(json.dumps(card, indent=2, default=str) + "\n")
    return card_path
