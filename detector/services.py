"""Creating, queueing, re-running and deleting analyses: one place for the views, the API,
the admin and the command line, so each behaves the same."""

import hashlib
import logging
import shutil
from datetime import timedelta
from pathlib import Path
from statistics import median

from django.conf import settings
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django_q import tasks as queue  # looked up at each call: tests stand in a broken broker

from detector.media import sniff_media_type, unsupported_message
from detector.models import Analysis, FailureReason, MediaType, Status, Upload
from ml.formats import DEFAULT_FRAMES

log = logging.getLogger(__name__)


class StorageError(Exception):
    """The upload could not be written (disk full, media directory missing or not writable)."""


class QuotaExceeded(Exception):
    """The user asked for more analyses than `DEEPFAKE_UPLOAD_RATE` allows in its period."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """("120/hour") -> (120, 3600): how many analyses per how many seconds."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip()[:1].lower()]


def check_quota(owner, files: int = 1) -> None:
    """Refuse (QuotaExceeded) when `files` more analyses would exceed the owner's rate.

    One limit for every way in a user has: the upload page, the API, re-runs (page and API)
    and the admin's re-run action count the analyses they create, so the CPU a user can claim
    does not depend on the door. (`manage.py analyze --save` is the operator's own tool and is
    not counted.) Counted from the analyses' rows, so it holds across web processes and machines."""

    limit, period = parse_rate(settings.DEEPFAKE_UPLOAD_RATE)
    since = timezone.now() - timedelta(seconds=period)
    recent = Analysis.objects.filter(owner=owner, created_at__gte=since)
    used = recent.count()
    if used + files <= limit:
        return
    oldest = recent.order_by("created_at").values_list("created_at", flat=True).first()
    wait = max(1, int((oldest + timedelta(seconds=period) - timezone.now()).total_seconds())) if oldest else period
    left = max(0, limit - used)
    raise QuotaExceeded(
        f"You may start {limit} analyses per {_period_name(period)}; {used} were started in the last one, "
        f"so {left} more can start now (you asked for {files}). Try again in {_duration(wait)}.",
        wait,
    )


def _period_name(seconds: int) -> str:
    return {1: "second", 60: "minute", 3600: "hour", 86400: "day"}[seconds]


def _duration(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"


def store_upload(owner, uploaded: UploadedFile) -> Upload:
    """Save the file under a random name with its size, SHA-256 and sniffed media type.

    Raises StorageError, with nothing left behind, when the file cannot be written.
    """
    try:
        with transaction.atomic():  # a savepoint: a failed write leaves no row and no broken transaction
            return _store_upload(owner, uploaded)
    except OSError as exc:
        log.error("could not store an upload: %s", exc)
        raise StorageError(
            "The server could not store the file (its disk is full or not writable). Nothing was kept; "
            "try again later or tell the administrator."
        ) from exc


def _store_upload(owner, uploaded: UploadedFile) -> Upload:
    digest = hashlib.sha256()
    for chunk in uploaded.chunks():
        digest.update(chunk)
    media_type = sniff_media_type(uploaded.file) or MediaType.UNKNOWN
    uploaded.seek(0)
    name = Path(uploaded.name or "upload").name[:255] or "upload"
    return Upload.objects.create(
        owner=owner,
        file=uploaded,
        original_name=name,
        media_type=media_type,
        size=uploaded.size,
        sha256=digest.hexdigest(),
    )


def create_analysis(
    owner, upload: Upload, frames: int = DEFAULT_FRAMES, model: str = "", callback_url: str = ""
) -> Analysis:
    """A new analysis of an upload, queued; or failed at once when the upload is no photo or video."""
    analysis = Analysis.objects.create(
        upload=upload, owner=owner, frames_requested=frames, model_requested=model, callback_url=callback_url
    )
    if upload.media_type == MediaType.UNKNOWN:
        fail_now(analysis, FailureReason.UNSUPPORTED_TYPE, unsupported_message(upload.original_name))
        return analysis
    enqueue(analysis)
    return analysis


def record_analysis(owner, handle, name: str, frames: int, model: str, result) -> Analysis:
    """Store a file analysed outside the queue (`manage.py analyze --save`) with its engine
    result, as if a worker had run it: the same upload rules, the same result rows."""
    from detector.store import store_result

    upload = store_upload(owner, File(handle, name=name))
    analysis = Analysis(upload=upload, owner=owner, frames_requested=frames, model_requested=model)
    analysis.status, analysis.started_at = Status.RUNNING, timezone.now()
    analysis.save()
    store_result(analysis, result)
    return analysis


def enqueue(analysis: Analysis) -> None:
    """Queue the analysis task once the rows are committed (a worker may start at once).

    When the broker is down the upload is kept and the job stays `queued` with no task id;
    `requeue_unsent` (run by the cluster's scheduler, see `manage.py reap --schedule`) sends it
    once the broker is back. Nothing the user gave us is lost, and the request still succeeds.
    """
    transaction.on_commit(lambda: send_task(analysis.pk))


def send_task(analysis_id) -> bool:

    try:
        task_id = queue.async_task(
            "detector.tasks.run_analysis",
            str(analysis_id),
            hook="detector.tasks.finish_analysis",
            task_name=f"analysis {analysis_id}",
            timeout=settings.DEEPFAKE_TASK_TIMEOUT,
        )
    except Exception as exc:  # the broker's client raises its own kinds (redis, database)
        log.warning("could not queue analysis %s (%s); it will be sent when the broker answers", analysis_id, exc)
        return False
    Analysis.objects.filter(pk=analysis_id).update(task_id=str(task_id or ""))
    return True


def requeue_unsent(min_age_s: int = 30) -> int:
    """Send the jobs whose task never reached the broker. Returns how many were sent."""

    unsent = Analysis.objects.filter(
        status=Status.QUEUED, task_id="", created_at__lt=timezone.now() - timedelta(seconds=min_age_s)
    )
    return sum(send_task(pk) for pk in unsent.values_list("pk", flat=True))


def fail_now(analysis: Analysis, reason: str, message: str) -> None:

    analysis.status = Status.FAILED
    analysis.failure_reason = reason
    analysis.failure_message = message
    analysis.finished_at = timezone.now()
    analysis.save(update_fields=["status", "failure_reason", "failure_message", "finished_at"])
    from detector.webhooks import schedule_delivery

    transaction.on_commit(lambda: schedule_delivery(analysis))


def rerun(analysis: Analysis, frames: int | None = None, model: str | None = None) -> Analysis:
    """A new analysis of the same upload with other settings; the old one keeps its results.
    Counts against the owner's quota like any other way in (QuotaExceeded when it is spent)."""
    check_quota(analysis.owner)
    return create_analysis(
        analysis.owner,
        analysis.upload,
        frames=frames or analysis.frames_requested,
        model=analysis.model_requested if model is None else model,
        callback_url=analysis.callback_url,
    )


def delete_analysis(analysis: Analysis) -> None:
    """Delete the analysis and its derived files; the upload too when no other analysis uses it."""
    upload = analysis.upload
    result_dir = Path(settings.MEDIA_ROOT) / analysis.result_dir
    analysis.delete()
    shutil.rmtree(result_dir, ignore_errors=True)
    if not upload.analyses.exists():
        delete_upload(upload)


def delete_upload(upload: Upload) -> None:
    for analysis in upload.analyses.all():
        shutil.rmtree(Path(settings.MEDIA_ROOT) / analysis.result_dir, ignore_errors=True)
    upload.file.delete(save=False)
    upload.delete()


def queue_estimate(analysis: Analysis) -> dict:
    """Where a queued job stands: its place in the queue (1 = next) and about how many seconds
    until its result, from measured times of the last finished jobs (median seconds per photo
    and per video frame). Empty when the job is not queued or nothing has been measured yet."""
    if analysis.status != Status.QUEUED:
        return {}
    waiting = Analysis.objects.filter(status=Status.QUEUED)
    ahead = waiting.filter(created_at__lt=analysis.created_at).select_related("upload")
    running = Analysis.objects.filter(status=Status.RUNNING).select_related("upload")
    recent = Analysis.objects.filter(status=Status.DONE).select_related("upload").order_by("-finished_at")[:50]
    per_photo, per_frame = [], []
    for done in recent:
        total = (done.timings or {}).get("total")
        if total:
            if done.upload.media_type == MediaType.IMAGE:
                per_photo.append(total)
            elif done.frames_analyzed:
                per_frame.append(total / done.frames_analyzed)
    result = {"queue_position": ahead.count() + 1}
    if not per_photo and not per_frame:
        return result
    photo_s = median(per_photo) if per_photo else median(per_frame)
    frame_s = median(per_frame) if per_frame else photo_s / 10

    def seconds(job: Analysis) -> float:
        return photo_s if job.upload.media_type == MediaType.IMAGE else frame_s * job.frames_requested

    # Jobs run side by side on as many workers as are busy now (at least one).
    workers = max(1, running.count())
    backlog = sum(seconds(job) for job in ahead) + sum(seconds(job) * (1 - job.progress / 100) for job in running)
    result["estimate_s"] = round(backlog / workers + seconds(analysis))
    return result
