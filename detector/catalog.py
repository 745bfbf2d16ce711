"""The installed models, read from the JSON cards beside the checkpoints (no torch needed)."""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from ml.calibration import WEAK_EVIDENCE_BELOW
from ml.cards import DEFAULT_MODELS, read_cards, version


@dataclass
class InstalledModel:
    name: str  # the file stem, which is what a user asks for
    architecture: str
    kind: str
    version: str
    calibration: dict
    provenance: dict
    weights_present: bool
    evaluation: dict  # measurements of these weights: "test" (ml.training.evaluate), "crossval" (ml.training.crossval)

    @property
    def is_default(self) -> bool:
        return DEFAULT_MODELS.get(self.kind) == self.name


def without_paths(value):
    """The value with every file-system path cut to its last part: cards record where the
    training machine kept its data (`../shared/data/...`), which is nobody's business."""
    if isinstance(value, dict):
        return {key: without_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_paths(item) for item in value]
    if isinstance(value, str) and "/" in value and value.startswith(("/", "./", "../", "~")):
        return Path(value).name
    return value


def installed_models() -> list[InstalledModel]:
    models = []
    for card_path, card in read_cards(settings.DEEPFAKE_MODEL_DIR):
        config = card["config"]
        provenance = card.get("provenance") or {}
        models.append(
            InstalledModel(
                name=card_path.stem,
                architecture=config["name"],
                kind=config["kind"],
                version=version(provenance, card.get("sha256", "")),
                calibration=card.get("calibration") or {},
                provenance=provenance,
                weights_present=card_path.with_suffix(".pt").is_file(),
                evaluation=without_paths(card.get("evaluation") or {}),
            )
        )
    return models


def measured_accuracy(architecture: str, version: str) -> dict:
    """The card's measurements of the model that made an analysis, if its weights are still
    the installed ones (a model retrained since has other figures)."""
    for model in installed_models():
        if model.architecture == architecture and model.version == version:
            return model.evaluation
    return {}


def measured_aucs(measured: dict) -> list[float]:
    """Every ROC-AUC measured of a model: its test split, cross-validation, scoreboard sets."""
    aucs = [result["roc_auc"] for key, result in measured.items() if key in ("test", "crossval")]
    aucs += [entry["roc_auc"] for entry in scoreboard_sets(measured)]
    return [auc for auc in aucs if auc is not None]


def scoreboard_sets(measured: dict) -> list[dict]:
    """The scoreboard rows of a model (`ml.training.scoreboard --record`) that have a figure."""
    board = measured.get("scoreboard") or {}
    return [entry for entry in board.get("sets", []) if entry.get("roc_auc") is not None]


def weak_evidence(measured: dict) -> bool:
    """Whether any of the model's measured ROC-AUCs falls below WEAK_EVIDENCE_BELOW: a model
    that fails on some kind of media gives weak evidence on any."""
    return any(auc < WEAK_EVIDENCE_BELOW for auc in measured_aucs(measured))


def scoreboard_sentence(measured: dict) -> str:
    """The scoreboard in one line: the range of ROC-AUCs over the test sets other than the
    model's own held-back split (which the page states on its own)."""
    home = (measured.get("test") or {}).get("data")
    sets = [entry for entry in scoreboard_sets(measured) if entry["set"] != home]
    if not sets:
        return ""
    if len(sets) == 1:
        return f"On a test set from another source ({sets[0]['set']}), ROC-AUC {sets[0]['roc_auc']:.2f}"
    low = min(sets, key=lambda entry: entry["roc_auc"])
    high = max(sets, key=lambda entry: entry["roc_auc"])
    return (
        f"On {len(sets)} test sets from other sources, ROC-AUC from {low['roc_auc']:.2f} ({low['set']}) "
        f"to {high['roc_auc']:.2f} ({high['set']})"
    )


def accuracy_sentence(measured: dict) -> str:
    """`measured_accuracy` in one line, for reports."""
    test, crossval = measured.get("test"), measured.get("crossval")
    if not test:
        return "not measured"
    text = f"ROC-AUC {test['roc_auc']:.2f} on {test['files']} held-back {test['level']}s"
    if test.get("roc_auc_interval"):
        low, high = test["roc_auc_interval"]
        text += f" (95 % interval {low:.2f}–{high:.2f})"
    if crossval:
        text += f"; cross-validated over {crossval['files']} other {crossval['level']}s, {crossval['roc_auc']:.2f}"
    if board := scoreboard_sentence(measured):
        text += f"; {board[0].lower()}{board[1:]}"
    text += " (1 = perfect ranking, 0.5 = chance)"
    return text + (". Treat the verdict as weak evidence." if weak_evidence(measured) else "")


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
