"""The report as JSON (everything) and CSV (one row per face)."""

import io

from django.utils import timezone

from detector.csvfiles import SafeWriter
from detector.reports.data import FACE_FIELDS, LIMITS_TEXT, METHOD_TEXT, ReportData
from ml.results import EMOTIONS


def as_json(data: ReportData) -> dict:
    report = dict(data.summary)
    report["people"] = data.people
    report["frames"] = [
        {
            "index": frame.index,
            "timestamp_s": frame.timestamp_s,
            "fake_probability": frame.fake_probability,
            "perceptual_hash": frame.perceptual_hash or None,
            "emotion": frame.emotion or None,
            "faces": [
                {
                    **{name: getattr(face, name) for name in FACE_FIELDS},
                    "emotion": face.emotion or None,
                    "emotions": face.emotions or None,
                }
                for face in frame.faces
            ],
        }
        for frame in data.frames
    ]
    report["reviews"] = data.reviews
    report["method"] = METHOD_TEXT
    report["limitations"] = LIMITS_TEXT
    report["generated_at"] = timezone.now().isoformat()
    return report


# Each row starts with what the file is and what was concluded, so that a CSV that travels
# alone still says which file, which verdict and which model it belongs to.
CSV_CASE_COLUMNS = ["file", "sha256", "verdict", "model", "model_version", "content_credentials", "file_says"]
CSV_COLUMNS = [
    *CSV_CASE_COLUMNS,
    "frame_index",
    "timestamp_s",
    "frame_perceptual_hash",
    "track_id",
    "fake_probability",
    "detector_confidence",
    "interpolated",
    "box_x1",
    "box_y1",
    "box_x2",
    "box_y2",
    "emotion",
    *(f"p_{name}" for name in EMOTIONS),
]


def as_csv(data: ReportData) -> str:
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    writer.writerow(CSV_COLUMNS)
    s = data.summary
    case = [
        s["file"]["name"],
        s["file"]["sha256"],
        s["verdict"] or s["status"],
        s["model_name"] or "",
        s["model_version"] or "",
        ((s.get("provenance") or {}).get("content_credentials") or {}).get("state", ""),
        (s.get("provenance") or {}).get("ai_statement", ""),
    ]
    for frame in data.frames:
        for face in sorted(frame.faces, key=lambda f: f.track_id):
            writer.writerow(
                [
                    *case,
                    frame.index,
                    f"{frame.timestamp_s:.3f}",
                    frame.perceptual_hash,
                    face.track_id,
                    f"{face.fake_probability:.4f}",
                    f"{face.detector_confidence:.4f}",
                    int(face.interpolated),
                    *face.box,
                    face.emotion,
                    *(f"{face.emotions[name]:.4f}" if face.emotions else "" for name in EMOTIONS),
                ]
            )
    return buffer.getvalue()
