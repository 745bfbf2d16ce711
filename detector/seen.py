"""Seen before: earlier uploads of the same file (same SHA-256) or of a near copy (perceptual
hashes within `DEEPFAKE_NEAR_COPY_BITS`: a resize, a re-encode, a screenshot of it), among
the analyses a user may see.

Near copies are found by comparing fingerprints in Python over the most recent `SCAN`
earlier uploads of the same kind: simple, and fast enough for a newsroom's archive (2,000
comparisons take a few milliseconds). A much larger archive would want an index.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from detector.models import Analysis
from ml.provenance import hash_distance, sequence_distance

SCAN = 2000


@dataclass
class Sighting:
    analysis: Analysis  # the newest analysis of the earlier upload
    how: str  # "same file" or "near copy"
    distance: int | None = None  # bits between perceptual hashes (near copies)


def fingerprint_distance(a: list, b: list, media_type: str) -> int | None:
    """Bits apart of two uploads' fingerprints (None when they cannot be compared)."""
    if not a or not b:
        return None
    if media_type == "video":
        return sequence_distance([(p, h) for p, h in a], [(p, h) for p, h in b])
    return hash_distance(a[0][1], b[0][1])


def seen_before(analysis: Analysis, visible: QuerySet[Analysis], limit: int = 10) -> list[Sighting]:
    """Earlier uploads of this analysis's file or of near copies, newest first, each with its
    newest analysis in `visible` (what the user may see)."""
    upload = analysis.upload
    earlier = (
        visible.filter(upload__created_at__lt=upload.created_at, upload__media_type=upload.media_type)
        .exclude(upload=upload)
        .select_related("upload")
        .order_by("-upload__created_at", "-created_at")
    )
    newest: dict[int, Analysis] = {}
    for candidate in earlier[: SCAN * 2]:
        newest.setdefault(candidate.upload_id, candidate)
        if len(newest) >= SCAN:
            break
    sightings = []
    for candidate in newest.values():
        if candidate.upload.sha256 == upload.sha256:
            sightings.append(Sighting(candidate, "same file"))
            continue
        distance = fingerprint_distance(upload.fingerprint, candidate.upload.fingerprint, upload.media_type)
        if distance is not None and distance <= settings.DEEPFAKE_NEAR_COPY_BITS:
            sightings.append(Sighting(candidate, "near copy", distance))
        if len(sightings) >= limit:
            break
    return sightings
