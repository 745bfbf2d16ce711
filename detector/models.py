"""Uploads, analysis jobs and their results.

An `Upload` is a file a user gave us, stored under a random name. Each `Analysis` of it is
one job with its own settings and results, so an upload can be analysed again with other
settings without losing the earlier results.
"""

import uuid
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone

from ml.formats import DEFAULT_FRAMES


class MediaType(models.TextChoices):
    IMAGE = "image", "Photo"
    VIDEO = "video", "Video"
    UNKNOWN = "unknown", "Unknown"


def upload_path(instance: "Upload", filename: str) -> str:
    """A random name: nothing of the user's file name reaches the file system."""
    suffix = Path(filename).suffix.lower()
    suffix = suffix if suffix.isascii() and suffix[1:].isalnum() and len(suffix) <= 6 else ""
    return f"uploads/{timezone.now():%Y/%m}/{uuid.uuid4().hex}{suffix}"


class Upload(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads")
    file = models.FileField(upload_to=upload_path, max_length=200)
    original_name = models.CharField(max_length=255)
    media_type = models.CharField(max_length=8, choices=MediaType.choices, default=MediaType.UNKNOWN)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    frame_count = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # What the file says about itself (`ml.provenance.Provenance.to_dict()`), read by the worker.
    provenance = models.JSONField(default=dict, blank=True)
    # [[position in 0..1, perceptual hash], ...]: the photo, or the analysed frames of a video.
    # Finds near copies among earlier uploads (`detector.seen`).
    fingerprint = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.original_name


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class FailureReason(models.TextChoices):
    NO_FACE = "no_face", "No face found"
    UNREADABLE_MEDIA = "unreadable_media", "Unreadable media"
    UNSUPPORTED_TYPE = "unsupported_type", "Unsupported file type"
    TOO_LARGE = "too_large", "Too large"
    MODEL_UNAVAILABLE = "model_unavailable", "Model unavailable"
    TIMEOUT = "timeout", "Timed out"
    INTERNAL_ERROR = "internal_error", "Internal error"


class Verdict(models.TextChoices):
    FAKE = "fake", "Fake"
    REAL = "real", "Real"
    UNCERTAIN = "uncertain", "Uncertain"
    NO_FACE = "no_face", "No face"


class Decision(models.TextChoices):
    CONFIRMED_FAKE = "confirmed_fake", "Confirmed fake"
    CONFIRMED_REAL = "confirmed_real", "Confirmed real"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class Analysis(models.Model):
    """One analysis job of an upload.

    States and transitions (and nothing else):
        queued  -> running   the worker picked the job up
        running -> done      results stored (verdict fake, real or uncertain)
        running -> failed    with a `failure_reason` and a message for people
        queued  -> failed    refused before analysis (e.g. unsupported type)
        running -> running   a worker died and the queue handed the job to another (attempts + 1)
    A job never stays `running`: the task's hook and `manage.py reap` end jobs whose worker died.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="analyses")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="analyses")
    frames_requested = models.PositiveSmallIntegerField(default=DEFAULT_FRAMES)
    model_requested = models.CharField(max_length=64, blank=True, help_text="empty: the default model")
    callback_url = models.URLField(max_length=500, blank=True, help_text="POSTed a signed summary when the job ends")

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    failure_reason = models.CharField(max_length=20, choices=FailureReason.choices, blank=True)
    failure_message = models.TextField(blank=True)
    stage = models.CharField(max_length=40, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=128, blank=True, help_text="host:pid of the worker that last ran it")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)

    model_name = models.CharField(max_length=64, blank=True)
    model_version = models.CharField(max_length=64, blank=True)
    verdict = models.CharField(max_length=10, choices=Verdict.choices, blank=True, db_index=True)
    fake_probability = models.FloatField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    uncertain_low = models.FloatField(null=True, blank=True)
    uncertain_high = models.FloatField(null=True, blank=True)
    frames_analyzed = models.PositiveSmallIntegerField(default=0)
    faces_detected = models.PositiveIntegerField(default=0)
    aggregates = models.JSONField(default=dict, blank=True)
    timeline_svg = models.TextField(blank=True)
    histogram_svg = models.TextField(blank=True)
    # Facial expressions of the counted people (empty when the stage is off): the mean
    # distribution, the abrupt changes (a weak cue, never part of the verdict) and the chart.
    emotions = models.JSONField(default=dict, blank=True)
    emotion_changes = models.JSONField(default=list, blank=True)
    emotion_svg = models.TextField(blank=True)
    # Chain of custody: the weights that ran, and the SHA-256 of every file this analysis
    # wrote ({"files": [{"path": relative to MEDIA_ROOT, "sha256": ...}]}), taken as written.
    model_sha256 = models.CharField(max_length=64, blank=True)
    custody = models.JSONField(default=dict, blank=True)
    # The latest reviewer decision, kept here for filtering; every decision is a `Review` row.
    review_decision = models.CharField(max_length=16, blank=True, db_index=True, choices=Decision.choices)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "analyses"

    def __str__(self) -> str:
        return f"{self.upload.original_name} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in (Status.DONE, Status.FAILED)

    @property
    def result_dir(self) -> str:
        """Where this analysis's derived images live, relative to MEDIA_ROOT."""
        return f"analyses/{self.id.hex}"


class FrameResult(models.Model):
    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="frames")
    index = models.PositiveIntegerField()
    timestamp_s = models.FloatField()
    fake_probability = models.FloatField(null=True, blank=True)
    emotion = models.CharField(max_length=10, blank=True, help_text="expression of the face behind fake_probability")
    thumbnail = models.ImageField(upload_to="", max_length=200, blank=True)
    thumbnail_width = models.PositiveIntegerField(default=0)
    thumbnail_height = models.PositiveIntegerField(default=0)
    perceptual_hash = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["analysis", "index"]
        constraints = [models.UniqueConstraint(fields=["analysis", "index"], name="one_row_per_frame")]

    def __str__(self) -> str:
        return f"frame {self.index} ({self.timestamp_s:.2f} s)"


class FaceResult(models.Model):
    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="faces")
    frame = models.ForeignKey(FrameResult, on_delete=models.CASCADE, related_name="faces")
    track_id = models.IntegerField()
    box = models.JSONField()  # [x1, y1, x2, y2] in frame pixels
    landmarks = models.JSONField(default=list)
    detector_confidence = models.FloatField()
    interpolated = models.BooleanField(default=False)
    fake_probability = models.FloatField()
    emotion = models.CharField(max_length=10, blank=True)
    emotions = models.JSONField(default=dict, blank=True)  # expression -> probability
    crop = models.ImageField(upload_to="", max_length=200, blank=True)
    heatmap = models.ImageField(upload_to="", max_length=200, blank=True)

    class Meta:
        ordering = ["frame__index", "track_id"]

    def __str__(self) -> str:
        return f"person {self.track_id}: P(fake) {self.fake_probability:.3f}"


class Track(models.Model):
    """One person: faces grouped across frames."""

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="tracks")
    track_id = models.IntegerField()
    faces = models.PositiveIntegerField()
    fake_probability = models.FloatField()
    mean_probability = models.FloatField()
    max_probability = models.FloatField()
    median_face_size = models.FloatField()
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    counted = models.BooleanField()

    class Meta:
        ordering = ["analysis", "track_id"]

    def __str__(self) -> str:
        return f"person {self.track_id} ({self.faces} faces)"


class Review(models.Model):
    """A reviewer's decision on a case. Rows are only ever added: together they are the audit
    trail. The model's verdict stays on the analysis, never overwritten."""

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.reviewer} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def agrees(self) -> bool | None:
        """Whether the decision matches the model's verdict (None: nothing to compare)."""
        expected = {"fake": Decision.CONFIRMED_FAKE, "real": Decision.CONFIRMED_REAL}.get(self.analysis.verdict)
        if expected is None or self.decision == Decision.INCONCLUSIVE:
            return None
        return self.decision == expected


class SignInFailure(models.Model):
    """A failed sign-in, counted per account and per address (see `detector.signin`)."""

    username = models.CharField(max_length=150, db_index=True)
    address = models.CharField(max_length=45, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.username} from {self.address} at {self.created_at:%Y-%m-%d %H:%M:%S}"
