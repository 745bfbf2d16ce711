"""The typed values the engine returns. They need numpy but not torch, so the web process
can read them. `AnalysisResult.to_dict()` gives the JSON-able summary (arrays left out)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ml.calibration import deciding_face
from ml.provenance import Provenance

VERDICTS = ("fake", "real", "uncertain", "no_face")
# The expression model's classes, in the order of its outputs (FER2013's).
# Abrupt expression changes are looked for between faces of one person at most this far apart
# (seconds); here, torch-free, so that the web process can say when sampling is too sparse.
ABRUPT_MAX_GAP_S = 0.5
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def top_emotion(distribution: dict[str, float]) -> str:
    """The most likely expression of a distribution."""
    return max(distribution, key=distribution.__getitem__)


@dataclass
class EmotionChange:
    """An abrupt expression change between two analysed frames of the same person."""

    track_id: int
    from_frame: int
    to_frame: int
    from_timestamp_s: float
    to_timestamp_s: float
    from_emotion: str
    to_emotion: str
    distance: float  # total variation distance between the two distributions

    def to_dict(self) -> dict:
        return {
            "track_id": self.track_id,
            "from_frame": self.from_frame,
            "to_frame": self.to_frame,
            "from_timestamp_s": round(self.from_timestamp_s, 3),
            "to_timestamp_s": round(self.to_timestamp_s, 3),
            "from_emotion": self.from_emotion,
            "to_emotion": self.to_emotion,
            "distance": round(self.distance, 3),
        }


@dataclass
class FaceResult:
    """One face in one analysed frame (or photo), with its score and evidence images."""

    frame_index: int
    timestamp_s: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels
    landmarks: list[tuple[float, float]]
    detector_confidence: float
    track_id: int
    fake_probability: float
    interpolated: bool = False  # box placed between detections in the neighbouring frames
    crop: np.ndarray | None = None  # RGB uint8, the model's input crop
    heatmap: np.ndarray | None = None  # float32 in [0, 1], same size as the crop
    overlay: np.ndarray | None = None  # RGB uint8: the heatmap blended over the crop
    emotions: dict[str, float] | None = None  # expression -> probability; None when the stage is off

    @property
    def emotion(self) -> str | None:
        """The most likely expression, or None when expressions were not recognised."""
        return top_emotion(self.emotions) if self.emotions else None

    def to_dict(self) -> dict:
        return {
            "frame_index": self.frame_index,
            "timestamp_s": round(self.timestamp_s, 3),
            "box": [round(v, 1) for v in self.box],
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks],
            "detector_confidence": round(self.detector_confidence, 4),
            "interpolated": self.interpolated,
            "track_id": self.track_id,
            "fake_probability": round(self.fake_probability, 4),
            "emotion": self.emotion,
            "emotions": {k: round(v, 4) for k, v in self.emotions.items()} if self.emotions else None,
        }


@dataclass
class FrameResult:
    index: int
    timestamp_s: float
    faces: list[FaceResult] = field(default_factory=list)
    thumbnail: np.ndarray | None = None  # RGB uint8, at most THUMBNAIL_WIDTH wide
    perceptual_hash: str = ""  # `ml.provenance.perceptual_hash` of the frame: finds near copies

    @property
    def fake_probability(self) -> float | None:
        """The most suspicious face in the frame, or None when it has no face."""
        return max((face.fake_probability for face in self.faces), default=None)

    def to_dict(self) -> dict:
        p = self.fake_probability
        return {
            "index": self.index,
            "timestamp_s": round(self.timestamp_s, 3),
            "fake_probability": None if p is None else round(p, 4),
            "perceptual_hash": self.perceptual_hash,
            "faces": [face.to_dict() for face in self.faces],
        }


@dataclass
class TrackResult:
    """One person: the faces that detection grouped across frames."""

    track_id: int
    faces: int
    fake_probability: float  # the sequence model's output, or the mean of frame scores
    mean_probability: float
    max_probability: float
    median_face_size: float
    verdict: str
    counted: bool  # whether this track took part in the overall verdict

    def to_dict(self) -> dict:
        return {
            "track_id": self.track_id,
            "faces": self.faces,
            "fake_probability": round(self.fake_probability, 4),
            "mean_probability": round(self.mean_probability, 4),
            "max_probability": round(self.max_probability, 4),
            "median_face_size": round(self.median_face_size, 1),
            "verdict": self.verdict,
            "counted": self.counted,
        }


@dataclass
class Aggregates:
    """Ways to summarise per-frame scores, kept for the record beside the one used."""

    used: str  # "sequence" or "mean"
    sequence: float | None
    mean: float | None
    max: float | None
    smoothed_max: float | None  # max of a 3-frame moving average: one odd frame counts less

    def to_dict(self) -> dict:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "used": self.used,
            "sequence": r(self.sequence),
            "mean": r(self.mean),
            "max": r(self.max),
            "smoothed_max": r(self.smoothed_max),
        }


@dataclass
class AnalysisResult:
    media_type: str  # "video" or "image"
    verdict: str  # one of VERDICTS
    fake_probability: float | None
    confidence: float | None  # 0 at the decision threshold, 1 at certainty
    model_name: str
    model_version: str
    threshold: float
    uncertain_low: float
    uncertain_high: float
    frames_requested: int
    width: int
    height: int
    duration_s: float = 0.0
    fps: float = 0.0
    frame_count: int = 1
    frames: list[FrameResult] = field(default_factory=list)
    tracks: list[TrackResult] = field(default_factory=list)
    aggregates: Aggregates | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # Expressions of the people the verdict counts: their mean distribution, and abrupt
    # changes (a weak cue shown beside the verdict, never part of it). Empty when off.
    emotions: dict[str, float] = field(default_factory=dict)
    emotion_changes: list[EmotionChange] = field(default_factory=list)
    model_sha256: str = ""  # of the weights that ran: the chain of custody names them
    # What the file says about itself (`ml.provenance`); None for pictures from memory.
    provenance: Provenance | None = None
    note: str = ""  # e.g. why another model than the requested one ran

    @property
    def frames_analyzed(self) -> int:
        return len(self.frames)

    @property
    def faces_detected(self) -> int:
        return sum(len(frame.faces) for frame in self.frames)

    def faces(self) -> list[FaceResult]:
        return [face for frame in self.frames for face in frame.faces]

    def frame_face(self, frame: FrameResult) -> FaceResult | None:
        """The face that decides a frame's score: its most suspicious face among the people the
        verdict counts (None when it has none)."""
        counted = {track.track_id for track in self.tracks if track.counted}
        return deciding_face(frame.faces, counted)

    def frame_score(self, frame: FrameResult) -> float | None:
        face = self.frame_face(frame)
        return face.fake_probability if face else None

    def to_dict(self) -> dict:
        return {
            "media_type": self.media_type,
            "verdict": self.verdict,
            "fake_probability": None if self.fake_probability is None else round(self.fake_probability, 4),
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "model_sha256": self.model_sha256,
            "threshold": self.threshold,
            "uncertain_low": self.uncertain_low,
            "uncertain_high": self.uncertain_high,
            "frames_requested": self.frames_requested,
            "frames_analyzed": self.frames_analyzed,
            "faces_detected": self.faces_detected,
            "width": self.width,
            "height": self.height,
            "duration_s": round(self.duration_s, 3),
            "fps": round(self.fps, 3),
            "frame_count": self.frame_count,
            "aggregates": self.aggregates.to_dict() if self.aggregates else None,
            "tracks": [track.to_dict() for track in self.tracks],
            "emotions": {k: round(v, 4) for k, v in self.emotions.items()},
            "emotion_changes": [change.to_dict() for change in self.emotion_changes],
            "frames": [frame.to_dict() for frame in self.frames],
            "timings": {stage: round(seconds, 3) for stage, seconds in self.timings.items()},
            "provenance": self.provenance.to_dict() if self.provenance else None,
            "note": self.note,
        }
