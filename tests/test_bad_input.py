"""Every kind of bad or awkward input, through the API, the upload page and `manage.py analyze`:
each ends in a stated job state (or a clear error line), and the service keeps serving."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from detector.models import Analysis, Status, Upload
from tests.bad_media import CASES
from tests.conftest import ROOT

IDS = [case.name for case in CASES]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, bytes]:
    """Each case's bytes, made once for the three ways in."""
    folder = tmp_path_factory.mktemp("bad_media")
    made = {}
    for case in CASES:
        scratch = folder / str(len(made))
        scratch.mkdir()
        made[case.name] = case.make(scratch)
    return made


def check(analysis: Analysis, case, settings) -> None:
    assert analysis.status == (Status.DONE if case.outcome == "done" else Status.FAILED), analysis.failure_message
    if case.outcome == "failed":
        assert analysis.failure_reason == case.reason and analysis.failure_message
    else:
        assert analysis.verdict in ("fake", "real", "uncertain") and analysis.faces_detected >= 1
    # Whatever the name, the file is stored under a random name inside the media root.
    stored = (Path(settings.MEDIA_ROOT) / analysis.upload.file.name).resolve()
    assert stored.is_relative_to(Path(settings.MEDIA_ROOT).resolve()) and stored.is_file()
    assert "/" not in analysis.upload.original_name and len(analysis.upload.original_name) <= 255
    if case.name == "10-minute video":
        last = analysis.frames.order_by("-index").first()
        assert last.timestamp_s > 500  # sampled over the whole ten minutes
    if case.name == "photo with 10 faces":
        assert analysis.faces_detected >= 8
    if case.name == "unicode name":
        assert analysis.upload.original_name == case.filename


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_through_the_api(case, media, alice, models, settings, django_capture_on_commit_callbacks):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    upload = SimpleUploadedFile(
        case.filename, media[case.name], content_type=case.content_type or "application/octet-stream"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/analyses/", {"file": upload, "frames": 10}, format="multipart")
    if case.reason == "unsupported_type":
        # Not a photo or video (or empty): refused at the door, with the field named; nothing kept.
        assert response.status_code == 400 and "file" in response.json(), response.content
        assert not Upload.objects.exists() and not Analysis.objects.exists()
        assert not any(Path(settings.MEDIA_ROOT).rglob("*.*"))
        return
    assert response.status_code == 202, response.content
    body = client.get(response.json()["url"]).json()
    assert body["status"] == ("done" if case.outcome == "done" else "failed")
    check(Analysis.objects.get(pk=body["id"]), case, settings)
    assert client.get("/healthz").status_code == 200


@pytest.mark.one_leg  # the same jobs as through the API, which both legs run
@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_through_the_upload_page(case, media, client, alice, models, settings, django_capture_on_commit_callbacks):
    client.force_login(alice)
    upload = SimpleUploadedFile(
        case.filename, media[case.name], content_type=case.content_type or "application/octet-stream"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("upload"), {"files": upload, "frames": 10})
    if case.reason == "unsupported_type":
        text = response.content.decode()
        assert response.status_code == 200 and ("is empty" in text or "is not a photo or video" in text)
        assert not Upload.objects.exists() and not Analysis.objects.exists()
        return
    analysis = Analysis.objects.get()
    assert response.status_code == 302
    check(analysis, case, settings)
    page = client.get(reverse("analysis", args=[analysis.pk]))
    assert page.status_code == 200
    assert ("ANALYSIS FAILED" in page.content.decode() or "NO FACE" in page.content.decode()) == (
        case.outcome == "failed"
    )


@pytest.mark.engine
def test_through_manage_py_analyze(media, model_dir, tmp_path):
    files = []
    for i, case in enumerate(CASES):
        path = tmp_path / f"{i:02d}{Path(case.filename).suffix[:6]}"
        path.write_bytes(media[case.name])
        files.append(str(path))
    env = {**os.environ, "DEEPFAKE_MODEL_DIR": str(model_dir), "DATABASE_URL": f"sqlite:///{tmp_path / 'none.sqlite3'}"}
    done = subprocess.run(
        [sys.executable, "manage.py", "analyze", *files, "--frames", "10", "--format", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 1  # some failed, and said so
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [line["file"] for line in lines] == files
    for case, line in zip(CASES, lines, strict=True):
        if case.outcome == "done":
            assert line["error"] is None and line["verdict"] in ("fake", "real", "uncertain"), (
                case.name,
                line["error"],
            )
        else:
            # The engine reads content only: what the web refuses up front (not a photo or video),
            # it reports as unreadable; everything else keeps its reason.
            expected = {case.reason, "unreadable_media"} if case.reason == "unsupported_type" else {case.reason}
            assert line["error"]["reason"] in expected, (case.name, line["error"])
