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
    newest analysis in `visible` (what the user may see). Reads only hashes while scanning:
    the rows' provenance and charts are loaded for the sightings alone."""
    upload = analysis.upload
    earlier = (
        visible.filter(upload__created_at__lt=upload.created_at, upload__media_type=upload.media_type)
        .exclude(upload=upload)
        .order_by("-upload__created_at", "-created_at")
        .values_list("pk", "upload_id", "upload__sha256", "upload__fingerprint")
    )
    seen_uploads: set[int] = set()
    found: list[tuple[int, str, int | None]] = []  # (analysis pk, how, distance)
    for pk, upload_id, sha256, fingerprint in earlier[: SCAN * 2]:
        if upload_id in seen_uploads:
            continue  # an older analysis of an upload already judged
        seen_uploads.add(upload_id)
        if sha256 == upload.sha256:
            found.append((pk, "same file", None))
        else:
            distance = fingerprint_distance(upload.fingerprint, fingerprint, upload.media_type)
            if distance is not None and distance <= settings.DEEPFAKE_NEAR_COPY_BITS:
                found.append((pk, "near copy", distance))
        if len(found) >= limit or len(seen_uploads) >= SCAN:
            break
    rows = Analysis.objects.select_related("upload", "owner").in_bulk([pk for pk, _, _ in found])
    return [Sighting(rows[pk], how, distance) for pk, how, distance in found]
