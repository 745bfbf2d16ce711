"""Chain of custody: what an analysis read and wrote, with the SHA-256 of each taken when it
was written, and the time of each step. Reports carry it (`of`); `manage.py verify REPORT.json`
recomputes what is still stored (`verify`).
"""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from detector.models import Analysis
from ml.provenance import sha256_file

MATCHES, CHANGED, MISSING = "matches", "CHANGED", "missing"


def of(analysis: Analysis) -> dict:
    """The chain of custody of an analysis, as its reports list it."""
    upload = analysis.upload
    return {
        "upload": {"path": upload.file.name, "sha256": upload.sha256, "size_bytes": upload.size},
        "model": {
            "name": analysis.model_name or None,
            "version": analysis.model_version or None,
            "sha256": analysis.model_sha256 or None,
        },
        "derived_files": (analysis.custody or {}).get("files", []),
        "steps": {
            "uploaded_at": upload.created_at.isoformat(),
            "queued_at": analysis.created_at.isoformat(),
            "started_at": analysis.started_at.isoformat() if analysis.started_at else None,
            "finished_at": analysis.finished_at.isoformat() if analysis.finished_at else None,
        },
        "engine_seconds": analysis.timings,
        "worker": analysis.worker or None,
    }


@dataclass
class Check:
    item: str  # what was checked, e.g. "upload", "model efficientnet 20261128", a derived file
    path: str
    state: str  # MATCHES, CHANGED or MISSING
    detail: str = ""


def verify(custody: dict, media_root: Path | None = None, model_dir: Path | None = None) -> list[Check]:
    """Recompute every SHA-256 a report's chain of custody lists, from what is stored now.

    Stored paths are relative to MEDIA_ROOT (absolute for command-line reports, whose upload
    is the file analysed); the model is looked up by name in the model directory.
    """
    media_root = Path(media_root or settings.MEDIA_ROOT)
    model_dir = Path(model_dir or settings.DEEPFAKE_MODEL_DIR)
    checks = []
    upload = custody.get("upload") or {}
    if upload.get("path"):
        checks.append(_check("upload", media_root / upload["path"], upload.get("sha256", "")))
    model = custody.get("model") or {}
    if model.get("name") and model.get("sha256"):
        label = f"model {model['name']} {model.get('version') or ''}".strip()
        check = _check(label, model_dir / f"{model['name']}.pt", model["sha256"])
        if check.state == CHANGED:
            check.detail = "the installed model of this name has other weights (a newer version?)"
        checks.append(check)
    for derived in custody.get("derived_files") or []:
        checks.append(_check(Path(derived["path"]).name, media_root / derived["path"], derived.get("sha256", "")))
    return checks


def _check(item: str, path: Path, expected: str) -> Check:
    if not path.is_file():
        return Check(item, str(path), MISSING, "not stored any more: deleted, purged or moved")
    actual = sha256_file(path)
    if actual == expected:
        return Check(item, str(path), MATCHES)
    return Check(item, str(path), CHANGED, f"SHA-256 now {actual}, the report says {expected}")
