"""Tasks run by the django-q2 worker. Each is a plain function that takes ids, not objects.

`run_analysis` is the only place the web app calls the detection engine: it imports `ml`
(and so torch) inside the function, in the worker process.
"""

import logging
import os
import socket
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from detector.models import Analysis, FailureReason, Status

log = logging.getLogger(__name__)

# Progress updates are cheap, but not free: write at most this often.
PROGRESS_INTERVAL_S = 0.5


def ping(message: str) -> dict:
    """Echo a message from the worker process: proves a worker picks up and runs tasks."""
    return {"message": message, "worker_pid": os.getpid()}


def run_analysis(analysis_id: str) -> str:
    """Analyse one upload and store the results; always ends the job `done` or `failed`.

    Safe to deliver twice: a finished job is left as it is.
    """
    started = Analysis.objects.filter(pk=analysis_id, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.RUNNING,
        started_at=timezone.now(),
        stage="starting",
        progress=0,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        attempts=F("attempts") + 1,
    )
    if not started:
        return "skipped: already finished or deleted"
    analysis = Analysis.objects.select_related("upload").get(pk=analysis_id)
    try:
        outcome = _analyse_and_store(analysis)
    finally:
        _notify(analysis_id)
    return outcome


def _analyse_and_store(analysis: Analysis) -> str:
    from detector.store import store_result
    from ml.errors import EngineError

    try:
        result = _run_pipeline(analysis)
    except EngineError as exc:
        # The engine names the file it read (stored under a random name): say the user's name.
        message = str(exc).replace(Path(analysis.upload.file.name).name, analysis.upload.original_name)
        _fail(analysis.pk, exc.reason, message)
        return exc.reason
    except Exception as exc:
        log.exception("analysis %s failed", analysis.pk)
        _fail(analysis.pk, FailureReason.INTERNAL_ERROR, f"The analysis stopped on an unexpected error ({exc}).")
        return FailureReason.INTERNAL_ERROR
    try:
        store_result(analysis, result)
    except OSError as exc:
        log.exception("could not store the results of %s", analysis.pk)
        _fail(analysis.pk, FailureReason.INTERNAL_ERROR, f"The results could not be stored ({exc.strerror}).")
        return FailureReason.INTERNAL_ERROR
    return result.verdict


def _notify(analysis_id: str) -> None:
    """Deliver the webhook of a job that has ended (its own task: never blocks this one)."""
    from detector.webhooks import schedule_delivery

    analysis = Analysis.objects.select_related("upload").filter(pk=analysis_id).first()
    if analysis is not None and analysis.is_finished:
        schedule_delivery(analysis)


def _run_pipeline(analysis: Analysis):
    from ml.inference import analyze_file

    _configure_worker()
    last_write = 0.0

    def progress(stage: str, fraction: float) -> None:
        nonlocal last_write
        now = time.monotonic()
        if now - last_write >= PROGRESS_INTERVAL_S or fraction >= 1.0:
            last_write = now
            Analysis.objects.filter(pk=analysis.pk).update(stage=stage, progress=round(90 * fraction))

    progress("loading the model", 0.0)
    result = analyze_file(
        analysis.upload.file.path,
        analysis.frames_requested,
        analysis.model_requested or None,
        model_dir=settings.DEEPFAKE_MODEL_DIR,
        device=settings.DEEPFAKE_DEVICE,
        progress=progress,
        emotions=settings.DEEPFAKE_EMOTIONS,
        trust_anchors=trust_anchors(),
        sha256=analysis.upload.sha256,  # hashed as it arrived: not read again
    )
    if result.note:  # the model that ran is recorded with the result; the log says why it is another
        log.info("analysis %s: %s", analysis.pk, result.note)
    return result


def trust_anchors() -> str:
    """The PEM text of DEEPFAKE_C2PA_TRUST_ANCHORS ("" when unset or unreadable, logged)."""
    if not settings.DEEPFAKE_C2PA_TRUST_ANCHORS:
        return ""
    try:
        return Path(settings.DEEPFAKE_C2PA_TRUST_ANCHORS).read_text()
    except OSError as exc:
        log.warning("C2PA trust anchors not read (%s): every signature reads as unknown", exc)
        return ""


_worker_configured = False


def _configure_worker() -> None:
    """Once per worker process, before the engine starts any thread (threads inherit both
    settings): torch's thread count, and a lower CPU priority than the web server's, so that
    where workers and the web server share cores, a page waits less for a busy worker and
    the workers lose only the time pages take."""
    global _worker_configured
    if _worker_configured:
        return
    if settings.DEEPFAKE_TORCH_THREADS > 0:
        import torch

        torch.set_num_threads(settings.DEEPFAKE_TORCH_THREADS)
    niceness = settings.DEEPFAKE_WORKER_NICENESS
    if niceness > os.getpriority(os.PRIO_PROCESS, 0):
        try:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
        except OSError as exc:  # a container without the right to change it
            log.warning("the worker's niceness stays %s: %s", os.getpriority(os.PRIO_PROCESS, 0), exc)
    _worker_configured = True


def _fail(analysis_id: str, reason: str, message: str) -> None:
    with transaction.atomic():
        Analysis.objects.filter(pk=analysis_id).exclude(status=Status.DONE).update(
            status=Status.FAILED,
            failure_reason=reason,
            failure_message=message,
            finished_at=timezone.now(),
            stage="",
        )


def finish_analysis(task) -> None:
    """django-q2 hook, run when the task ends in any way. A task that died before it could end
    its job (timeout, killed worker, crash) leaves it `running`: end it here with the reason."""
    if not task.args:
        return
    analysis_id = task.args[0]
    unfinished = Analysis.objects.filter(pk=analysis_id, status__in=[Status.QUEUED, Status.RUNNING])
    if task.success or not unfinished.exists():
        return
    text = str(task.result or "")
    if "timeout" in text.lower():
        minutes = settings.DEEPFAKE_TASK_TIMEOUT / 60
        message = f"The analysis took longer than {minutes:.0f} minutes and was stopped."
        _fail(analysis_id, FailureReason.TIMEOUT, message)
    else:
        _fail(analysis_id, FailureReason.INTERNAL_ERROR, f"The worker stopped unexpectedly ({text[:200]}).")
    _notify(analysis_id)
