"""Map an engine result (`ml.results.AnalysisResult`) to rows and image files.

Images are written first, then every row in one transaction; if anything fails, the images
written so far are removed, so an analysis never holds half of its results. Each image's
SHA-256 is taken from the bytes as written (the chain of custody, `Analysis.custody`).
"""

import hashlib
import io
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image

from detector import charts
from detector.models import (
    Analysis,
    FaceResult,
    FailureReason,
    FrameResult,
    Status,
    Track,
    Upload,
)


class _Writer:
    """Writes an analysis's images and keeps the SHA-256 of each, in the order written."""

    def __init__(self) -> None:
        self.written: list[dict] = []

    def jpeg(self, relative: str, pixels: np.ndarray | None, quality: int = 85) -> str:
        if pixels is None:
            return ""
        path = Path(settings.MEDIA_ROOT) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
        data = buffer.getvalue()
        path.write_bytes(data)
        self.written.append({"path": relative, "sha256": hashlib.sha256(data).hexdigest()})
        return relative


def _fingerprint(result) -> list[list]:
    """[[position in 0..1, perceptual hash], ...] of the photo or the analysed frames."""
    if result.media_type != "video":
        return [[0.0, frame.perceptual_hash] for frame in result.frames[:1] if frame.perceptual_hash]
    length = result.duration_s or max((frame.timestamp_s for frame in result.frames), default=0.0) or 1.0
    return [
        [round(min(1.0, frame.timestamp_s / length), 4), frame.perceptual_hash]
        for frame in result.frames
        if frame.perceptual_hash
    ]


def store_result(analysis: Analysis, result) -> None:
    result_dir = analysis.result_dir
    absolute_dir = Path(settings.MEDIA_ROOT) / result_dir
    shutil.rmtree(absolute_dir, ignore_errors=True)  # a retried job starts clean
    writer = _Writer()
    try:
        frame_rows, face_rows = [], []
        speakers = [result.frame_face(frame) for frame in result.frames]
        for frame, speaker in zip(result.frames, speakers, strict=True):
            thumbnail = writer.jpeg(f"{result_dir}/frame_{frame.index:06d}.jpg", frame.thumbnail, 80)
            frame_rows.append(
                (
                    FrameResult(
                        index=frame.index,
                        timestamp_s=frame.timestamp_s,
                        fake_probability=speaker.fake_probability if speaker else None,
                        emotion=(speaker.emotion or "") if speaker else "",
                        thumbnail=thumbnail,
                        thumbnail_width=frame.thumbnail.shape[1] if frame.thumbnail is not None else 0,
                        thumbnail_height=frame.thumbnail.shape[0] if frame.thumbnail is not None else 0,
                        perceptual_hash=frame.perceptual_hash,
                    ),
                    frame,
                )
            )
            for k, face in enumerate(frame.faces):
                stem = f"{result_dir}/face_{frame.index:06d}_{k}"
                data = face.to_dict()  # the engine's one rounding of boxes, landmarks, expressions
                face_rows.append(
                    (
                        frame.index,
                        FaceResult(
                            track_id=face.track_id,
                            box=data["box"],
                            landmarks=data["landmarks"],
                            detector_confidence=face.detector_confidence,
                            interpolated=face.interpolated,
                            fake_probability=face.fake_probability,
                            emotion=face.emotion or "",
                            emotions=data["emotions"] or {},
                            crop=writer.jpeg(f"{stem}_crop.jpg", face.crop),
                            heatmap=writer.jpeg(f"{stem}_cam.jpg", face.overlay),
                        ),
                    )
                )
        timeline_svg = histogram_svg = emotion_svg = ""
        changes = [change.to_dict() for change in result.emotion_changes]
        if result.faces_detected:
            band = (result.uncertain_low, result.uncertain_high)
            if result.media_type == "video":
                timeline_svg = charts.timeline(
                    [f.timestamp_s for f in result.frames],
                    [result.frame_score(f) for f in result.frames],
                    result.threshold,
                    band,
                ).decode()
                if result.emotions:
                    emotion_svg = charts.emotion_timeline(
                        [f.timestamp_s for f in result.frames],
                        [speaker.emotions if speaker else None for speaker in speakers],
                        changes,
                    ).decode()
            histogram_svg = charts.histogram(
                [face.fake_probability for face in result.faces()], result.threshold
            ).decode()

        with transaction.atomic():
            locked = Analysis.objects.select_for_update().get(pk=analysis.pk)
            if locked.status != Status.RUNNING:
                raise RuntimeError(f"analysis {analysis.pk} is {locked.status}, not running")
            locked.frames.all().delete()
            locked.tracks.all().delete()
            frames_by_index = {}
            for row, _ in frame_rows:
                row.analysis = locked
            FrameResult.objects.bulk_create([row for row, _ in frame_rows])
            for row in FrameResult.objects.filter(analysis=locked):
                frames_by_index[row.index] = row
            faces = []
            for frame_index, row in face_rows:
                row.analysis = locked
                row.frame = frames_by_index[frame_index]
                faces.append(row)
            FaceResult.objects.bulk_create(faces)
            # `Track` has the fields of the engine's `TrackResult`, by the same names.
            Track.objects.bulk_create([Track(analysis=locked, **asdict(t)) for t in result.tracks])
            Upload.objects.filter(pk=locked.upload_id).update(
                media_type=result.media_type,
                provenance=result.provenance.to_dict() if result.provenance else {},
                fingerprint=_fingerprint(result),
                width=result.width,
                height=result.height,
                duration_s=result.duration_s or None,
                fps=result.fps or None,
                frame_count=result.frame_count,
            )
            no_face = result.verdict == "no_face"
            locked.status = Status.FAILED if no_face else Status.DONE
            locked.failure_reason = FailureReason.NO_FACE if no_face else ""
            locked.failure_message = (
                f"No face was found in the {result.frames_analyzed} analysed "
                f"{'frames' if result.media_type == 'video' else 'photo'}: there is nothing to judge."
                if no_face
                else ""
            )
            locked.stage = ""
            locked.progress = 100
            locked.finished_at = timezone.now()
            locked.model_name = result.model_name
            locked.model_version = result.model_version
            locked.model_sha256 = result.model_sha256
            locked.custody = {"files": writer.written}
            locked.verdict = result.verdict
            locked.fake_probability = result.fake_probability
            locked.confidence = result.confidence
            locked.threshold = result.threshold
            locked.uncertain_low = result.uncertain_low
            locked.uncertain_high = result.uncertain_high
            locked.frames_analyzed = result.frames_analyzed
            locked.faces_detected = result.faces_detected
            locked.aggregates = result.aggregates.to_dict() if result.aggregates else {}
            locked.timings = {stage: round(seconds, 3) for stage, seconds in result.timings.items()}
            locked.timeline_svg = timeline_svg
            locked.histogram_svg = histogram_svg
            locked.emotions = {k: round(v, 4) for k, v in result.emotions.items()}
            locked.emotion_changes = changes
            locked.emotion_svg = emotion_svg
            locked.save()
    except BaseException:
        shutil.rmtree(absolute_dir, ignore_errors=True)
        raise
