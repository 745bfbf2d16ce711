"""Faults: a broker that is down, a disk that refuses writes, a worker killed mid-analysis."""

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bench.serving import start, stop, wait_for
from detector.models import Analysis, FailureReason, FrameResult, Status, Upload
from tests.conftest import shared_path
from tests.test_serve import database_url_of_test_db

PHOTO = ("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg")


def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.mark.django_db
def test_uploads_are_kept_while_the_broker_is_down_and_sent_when_it_is_back(
    alice, models, monkeypatch, django_capture_on_commit_callbacks
):
    import django_q.tasks

    from detector import services

    real_async_task = django_q.tasks.async_task

    def broker_down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(django_q.tasks, "async_task", broker_down)
    api = api_for(alice)
    photo = shared_path(*PHOTO)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/analyses/", {"file": SimpleUploadedFile("p.jpg", photo.read_bytes())})
    assert response.status_code == 202  # accepted: the file is stored and the job waits
    analysis = Analysis.objects.get()
    assert analysis.status == Status.QUEUED and analysis.task_id == ""
    assert analysis.upload.file.storage.exists(analysis.upload.file.name)

    monkeypatch.setattr(django_q.tasks, "async_task", real_async_task)
    assert services.requeue_unsent(min_age_s=0) == 1
    analysis.refresh_from_db()
    assert analysis.status == Status.DONE and analysis.task_id


@pytest.mark.django_db
def test_an_unwritable_results_folder_fails_the_job_without_half_results(
    alice, client, models, settings, django_capture_on_commit_callbacks
):
    # A file where the results folder should be: every write under it fails, even as root.
    (Path(settings.MEDIA_ROOT) / "analyses").write_text("in the way")
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("upload"), {"files": SimpleUploadedFile("p.jpg", shared_path(*PHOTO).read_bytes()), "frames": 32}
        )
    analysis = Analysis.objects.get()
    assert analysis.status == Status.FAILED and analysis.failure_reason == FailureReason.INTERNAL_ERROR
    assert "could not be stored" in analysis.failure_message
    assert not FrameResult.objects.exists() and analysis.verdict == ""


@pytest.mark.django_db
def test_an_unwritable_upload_folder_is_a_clear_error_and_keeps_nothing(alice, client, settings):
    (Path(settings.MEDIA_ROOT) / "uploads").write_text("in the way")
    api = api_for(alice)
    response = api.post("/api/v1/analyses/", {"file": SimpleUploadedFile("p.jpg", shared_path(*PHOTO).read_bytes())})
    assert response.status_code == 503 and "could not store the file" in response.json()["detail"]
    client.force_login(alice)
    page = client.post(
        reverse("upload"), {"files": SimpleUploadedFile("p.jpg", shared_path(*PHOTO).read_bytes()), "frames": 32}
    )
    assert page.status_code == 200 and "could not store the file" in page.content.decode()
    assert not Upload.objects.exists() and not Analysis.objects.exists()


def test_a_worker_killed_mid_analysis_never_leaves_the_job_running(
    transactional_db, alice, model_dir, monkeypatch, settings
):
    """A real qcluster; SIGKILL the worker process that runs the job. With the ORM broker the
    task is handed out again and completes; the Redis broker has no re-delivery, so the reaper
    ends the job instead. Either way: never stuck in `running`."""
    from django.conf import settings as live
    from django_q.conf import Conf

    from detector import services
    from detector.management.commands.reap import reap

    monkeypatch.setattr(Conf, "SYNC", False)
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "DEEPFAKE_MODEL_DIR": str(model_dir),
        "DEEPFAKE_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        # Re-delivery waits for the retry to pass: short, but the retried job (60 frames, ~10 s
        # on these 2 cores, model loading included) must still end within the timeout.
        "DEEPFAKE_TASK_TIMEOUT": "30",
        "DEEPFAKE_TASK_RETRY": "35",
    }
    cluster = start(["manage.py", "qcluster"], env)
    try:
        video = shared_path("data", "videos", "ffpp", "fake", "Deepfakes_044_945.mp4")
        upload = services.store_upload(alice, SimpleUploadedFile(video.name, video.read_bytes()))
        analysis = Analysis.objects.create(upload=upload, owner=alice, frames_requested=60)
        assert services.send_task(analysis.pk)

        def running_worker():
            row = Analysis.objects.filter(pk=analysis.pk, status=Status.RUNNING).exclude(worker="").first()
            return row.worker if row and row.stage not in ("", "starting") else None

        worker = wait_for(running_worker, 90, "the worker to start the analysis")
        os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
        if "redis" in live.Q_CLUSTER:
            time.sleep(3)
            analysis.refresh_from_db()
            assert analysis.status == Status.RUNNING  # nothing will hand it out again…
            assert reap(now=timezone.now() + timedelta(hours=1)) == 1  # …so the reaper ends it
            analysis.refresh_from_db()
            assert analysis.status == Status.FAILED and analysis.failure_reason == FailureReason.INTERNAL_ERROR
        else:
            finished = wait_for(
                lambda: Analysis.objects.filter(pk=analysis.pk, status__in=[Status.DONE, Status.FAILED]).first(),
                150,
                "the re-delivered task to finish the job",
            )
            assert finished.status == Status.DONE, finished.failure_message
            assert finished.attempts == 2 and finished.worker != worker
            assert finished.frames.count() == 60  # one full set of results, not two
    finally:
        stop([cluster])
