"""One summary of an analysis: the keys every way out shares, with the same names and the
same rounding. The status JSON of the result page, the webhook and the JSON report start from
`of(analysis)` and add their own; the command line and its reports start from
`verdict_fields(result)` of an engine result; the API's serializer lists these names.
"""

from detector.models import Analysis

# Read by name from an `Analysis` row or an `ml.results.AnalysisResult`: both carry them.
VERDICT_FIELDS = (
    "verdict",
    "fake_probability",
    "confidence",
    "threshold",
    "uncertain_low",
    "uncertain_high",
    "model_name",
    "model_version",
    "frames_requested",
    "frames_analyzed",
    "faces_detected",
)


def verdict_fields(source) -> dict:
    """The verdict and what it was read against, from a row or an engine result."""
    fields = {}
    for name in VERDICT_FIELDS:
        value = getattr(source, name)
        if name in ("fake_probability", "confidence") and value is not None:
            value = round(value, 4)
        fields[name] = value if value != "" else None
    return fields


def of(analysis: Analysis) -> dict:
    """The summary of a stored analysis."""
    upload = analysis.upload
    return {
        "id": str(analysis.pk),
        "status": analysis.status,
        **verdict_fields(analysis),
        "failure_reason": analysis.failure_reason or None,
        "failure_message": analysis.failure_message or None,
        "file": {"name": upload.original_name, "media_type": upload.media_type, "sha256": upload.sha256},
        "created_at": analysis.created_at.isoformat(),
        "started_at": analysis.started_at.isoformat() if analysis.started_at else None,
        "finished_at": analysis.finished_at.isoformat() if analysis.finished_at else None,
    }
