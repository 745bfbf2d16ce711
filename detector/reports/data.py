"""The report's data: everything a report shows, from stored rows (`from_analysis`) or
straight from an engine result (`from_result`, the command line). The formats read only this."""

from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from PIL import Image

from detector import custody
from detector import summary as summaries
from detector.catalog import measured_accuracy
from detector.models import Analysis
from ml.calibration import deciding_face
from ml.provenance import sha256_file

METHOD_TEXT = (
    "Frames are sampled evenly over the whole video. Every face is found with MTCNN and "
    "cropped with a margin; a convolutional network scores each crop for signs of "
    "manipulation. For videos, each person's score comes from a sequence model (LSTM) over "
    "their frames in order, or from the mean of their frame scores when validation favoured "
    "that for the model (the report's aggregates say which). The verdict comes from the most "
    "suspicious person whose face is large and steady enough to judge. Heatmaps (Grad-CAM) "
    "show where the network's evidence lies in a face."
)
LIMITS_TEXT = (
    "The score is a model's estimate, not proof. Models miss manipulation methods unlike those "
    "they were trained on, heavy compression and small faces lower their accuracy, and real "
    "media can score high. Heatmaps show model attention, not the location of a manipulation. "
    "Treat a FAKE verdict as a reason to look closer and an UNCERTAIN one as no answer; "
    "confirm with other evidence (source, context, metadata, other tools) before acting."
)


@dataclass
class FaceRow:
    frame_index: int
    timestamp_s: float
    track_id: int
    box: list[float]
    landmarks: list
    detector_confidence: float
    interpolated: bool
    fake_probability: float
    crop: Path | None = None
    heatmap: Path | None = None
    emotion: str = ""
    emotions: dict[str, float] = field(default_factory=dict)


@dataclass
class FrameRow:
    index: int
    timestamp_s: float
    fake_probability: float | None
    thumbnail: Path | None = None
    faces: list[FaceRow] = field(default_factory=list)
    perceptual_hash: str = ""
    emotion: str = ""  # of the face behind fake_probability


@dataclass
class ReportData:
    """Everything a report shows, from stored rows or straight from an engine result."""

    summary: dict
    people: list[dict]
    frames: list[FrameRow]
    reviews: list[dict] = field(default_factory=list)

    def frame_face(self, frame: FrameRow) -> FaceRow | None:
        """The face behind a frame's score and expression (the rule of `ml.results`)."""
        return deciding_face(frame.faces, {p["track_id"] for p in self.people if p["counted_in_verdict"]})

    def faces_by_suspicion(self) -> list[FaceRow]:
        """Faces of counted people first, then by score."""
        counted = {p["track_id"] for p in self.people if p["counted_in_verdict"]}
        faces = [face for frame in self.frames for face in frame.faces]
        return sorted(faces, key=lambda face: (face.track_id not in counted, -face.fake_probability))


EMOTION_NOTE = (
    "Expressions are recognised per face by a separate model (mini-Xception, FER2013 classes). "
    "An abrupt change between frames a fraction of a second apart is a weak manipulation cue; "
    "speech, blinks and compression cause them too. Expressions never change the verdict."
)


# A person (`Track` row or engine `TrackResult`) and a face (`FaceResult` row or engine
# `FaceResult`) carry these fields under the same names on both sides.
PERSON_FIELDS = ("track_id", "faces", "fake_probability", "mean_probability", "max_probability", "median_face_size")
FACE_FIELDS = ("track_id", "box", "landmarks", "detector_confidence", "interpolated", "fake_probability")


def _people(tracks) -> list[dict]:
    """The people of a report, from `Track` rows or engine `TrackResult`s."""
    return [
        {**{name: getattr(t, name) for name in PERSON_FIELDS}, "verdict": t.verdict, "counted_in_verdict": t.counted}
        for t in tracks
    ]


def _face_row(face, frame_index: int, timestamp_s: float, crop: Path | None, heatmap: Path | None, **values) -> FaceRow:
    """A report's face from a stored row or an engine face; `values` override fields (the
    engine's rounding of boxes, landmarks and expressions)."""
    fields = {name: getattr(face, name) for name in FACE_FIELDS}
    fields["emotions"] = face.emotions or {}
    fields.update(values)
    return FaceRow(
        frame_index=frame_index,
        timestamp_s=timestamp_s,
        crop=crop,
        heatmap=heatmap,
        emotion=face.emotion or "",
        **fields,
    )


def _media(relative: str) -> Path | None:
    return Path(settings.MEDIA_ROOT) / relative if relative else None


def from_analysis(analysis: Analysis) -> ReportData:
    upload = analysis.upload
    summary = {
        **summaries.of(analysis),
        "file": {
            "name": upload.original_name,
            "media_type": upload.media_type,
            "size_bytes": upload.size,
            "sha256": upload.sha256,
            "width": upload.width,
            "height": upload.height,
            "duration_s": upload.duration_s,
            "fps": upload.fps,
            "frame_count": upload.frame_count,
            "uploaded_at": upload.created_at.isoformat(),
        },
        "settings": {
            "frames_requested": analysis.frames_requested,
            "model_requested": analysis.model_requested or None,
        },
        "model_accuracy": measured_accuracy(analysis.model_name, analysis.model_version),
        "aggregates": analysis.aggregates,
        "emotions": analysis.emotions,
        "emotion_changes": analysis.emotion_changes,
        "timings": analysis.timings,
        "review_decision": analysis.review_decision or None,
        "provenance": upload.provenance or None,
        "custody": custody.of(analysis),
    }
    people = _people(analysis.tracks.all())
    frames = [
        FrameRow(
            index=frame.index,
            timestamp_s=frame.timestamp_s,
            fake_probability=frame.fake_probability,
            perceptual_hash=frame.perceptual_hash,
            thumbnail=_media(frame.thumbnail.name),
            faces=[
                _face_row(face, frame.index, frame.timestamp_s, _media(face.crop.name), _media(face.heatmap.name))
                for face in frame.faces.all()
            ],
            emotion=frame.emotion,
        )
        for frame in analysis.frames.prefetch_related("faces")
    ]
    reviews = [
        {
            "decision": review.decision,
            "notes": review.notes,
            "reviewer": review.reviewer.get_username(),
            "created_at": review.created_at.isoformat(),
            "agrees_with_model": review.agrees,
        }
        for review in analysis.reviews.select_related("reviewer").order_by("created_at")
    ]
    return ReportData(summary=summary, people=people, frames=frames, reviews=reviews)


def from_result(result, path: Path, image_dir: Path | None = None) -> ReportData:
    """Report data straight from an engine result (the command line, no database).

    With `image_dir`, thumbnails, crops and heatmaps are written there for the PDF.
    """

    def save(pixels, name: str) -> Path | None:
        if image_dir is None or pixels is None:
            return None
        target = image_dir / name
        Image.fromarray(pixels).save(target, quality=85)
        return target

    digest = result.provenance.sha256 if result.provenance else sha256_file(path)
    data = result.to_dict()
    summary = {
        "id": None,
        "file": {
            "name": path.name,
            "media_type": result.media_type,
            "size_bytes": path.stat().st_size,
            "sha256": digest,
            "width": result.width,
            "height": result.height,
            "duration_s": result.duration_s or None,
            "fps": result.fps or None,
            "frame_count": result.frame_count,
            "uploaded_at": None,
        },
        "settings": {"frames_requested": result.frames_requested, "model_requested": None},
        "status": "failed" if result.verdict == "no_face" else "done",
        **summaries.verdict_fields(result),
        "failure_reason": "no_face" if result.verdict == "no_face" else None,
        "failure_message": "No face was found." if result.verdict == "no_face" else None,
        "model_accuracy": measured_accuracy(result.model_name, result.model_version),
        "aggregates": data["aggregates"] or {},
        "emotions": data["emotions"],
        "emotion_changes": data["emotion_changes"],
        "timings": data["timings"],
        "review_decision": None,
        "created_at": None,
        "started_at": None,
        "finished_at": timezone.now().isoformat(),
        "provenance": result.provenance.to_dict() if result.provenance else None,
        "custody": {
            "upload": {"path": str(path.resolve()), "sha256": digest, "size_bytes": path.stat().st_size},
            "model": {"name": result.model_name, "version": result.model_version, "sha256": result.model_sha256},
            # Nothing is stored on the command line: its images live only inside the PDF.
            "derived_files": [],
            "steps": {"analysed_at": timezone.now().isoformat()},
            "engine_seconds": data["timings"],
        },
    }
    people = _people(result.tracks)
    frames = []
    for frame in result.frames:
        faces = []
        for k, face in enumerate(frame.faces):
            row = face.to_dict()
            crop = save(face.crop, f"face_{frame.index}_{k}_crop.jpg")
            heatmap = save(face.overlay, f"face_{frame.index}_{k}_cam.jpg")
            rounded = {"box": row["box"], "landmarks": row["landmarks"], "emotions": row["emotions"] or {}}
            faces.append(_face_row(face, frame.index, frame.timestamp_s, crop, heatmap, **rounded))
        frames.append(
            FrameRow(
                index=frame.index,
                timestamp_s=frame.timestamp_s,
                fake_probability=speaker.fake_probability if (speaker := result.frame_face(frame)) else None,
                thumbnail=save(frame.thumbnail, f"frame_{frame.index}.jpg"),
                perceptual_hash=frame.perceptual_hash,
                faces=faces,
                emotion=(speaker.emotion or "") if speaker else "",
            )
        )
    return ReportData(summary=summary, people=people, frames=frames)
