"""The web product through its pages: upload, queue, worker task, result, reports, history.

One file (about 540 lines) for the pages' whole path, so that its fixtures are shared."""

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from detector.catalog import weak_evidence, without_paths
from detector.models import Analysis, FaceResult, FailureReason, FrameResult, Status, Upload
from tests.conftest import shared_path
from tests.media_factory import blank_photo, write_frames_from

pytestmark = pytest.mark.django_db


def upload(client, django_capture_on_commit_callbacks, name: str, content: bytes, frames: int = 10, **extra):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("upload"), {"files": SimpleUploadedFile(name, content), "frames": frames, **extra}
        )
    return response


@pytest.fixture
def short_video(tmp_path) -> bytes:
    """A 2-second clip of a real FF++ video (real frames, quick to analyse)."""
    path = write_frames_from(shared_path("data", "videos", "ffpp", "real", "033.mp4"), tmp_path / "clip.mp4", 50)
    return path.read_bytes()


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def test_pages_need_sign_in(client):
    for name in ("upload", "history"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.get(reverse("login")).status_code == 200


def test_a_video_is_analysed_and_its_result_page_shows_the_evidence(
    signed_in, models, short_video, django_capture_on_commit_callbacks
):
    response = upload(signed_in, django_capture_on_commit_callbacks, "interview.mp4", short_video)
    analysis = Analysis.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("analysis", args=[analysis.pk])
    assert analysis.status == Status.DONE, analysis.failure_message
    assert analysis.verdict in ("fake", "real", "uncertain")
    assert analysis.upload.original_name == "interview.mp4"
    assert analysis.upload.media_type == "video"
    assert len(analysis.upload.sha256) == 64 and analysis.upload.width == 854
    assert "interview" not in analysis.upload.file.name  # stored under a random name
    assert analysis.frames.count() == 10 and analysis.faces.count() >= 10
    assert analysis.tracks.filter(counted=True).exists()
    assert analysis.timings["total"] > 0 and analysis.model_name == "efficientnet_lstm"

    page = signed_in.get(reverse("analysis", args=[analysis.pk])).content.decode()
    assert 'id="verdict-card"' in page and analysis.get_verdict_display().upper() in page
    assert 'id="timeline"' in page and "<svg" in page
    assert page.count('class="frame"') == 10
    # The model's measured accuracy (from its card) sits beside the verdict: for the shipped
    # video model, a held-back and a cross-validated figure, and a warning to weigh it lightly.
    measured = json.loads((models / "efficientnet_lstm.json").read_text()).get("evaluation")
    if measured:
        assert 'id="model-accuracy"' in page and f"{measured['test']['roc_auc']:.2f}" in page
        assert f"{measured['crossval']['roc_auc']:.2f}" in page and "weak evidence" in page
        if measured.get("scoreboard"):  # the scoreboard's video sets, the worst and best named
            assert 'id="model-scoreboard"' in page and "from other sources" in page
    frame = analysis.frames.exclude(thumbnail="").first()
    face = analysis.faces.first()
    for url in (
        reverse("analysis-file", args=[analysis.pk, "thumbnail", frame.pk]),
        reverse("analysis-file", args=[analysis.pk, "crop", face.pk]),
        reverse("analysis-file", args=[analysis.pk, "heatmap", face.pk]),
    ):
        image = signed_in.get(url)
        assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
        assert image["X-Content-Type-Options"] == "nosniff"
        assert b"".join(image.streaming_content)[:2] == b"\xff\xd8"
    original = signed_in.get(reverse("analysis-original", args=[analysis.pk]))
    assert "attachment" in original["Content-Disposition"] and "interview.mp4" in original["Content-Disposition"]

    status = signed_in.get(reverse("analysis-status", args=[analysis.pk])).json()
    assert status["finished"] and status["status"] == "done" and status["progress"] == 100


def test_reports_in_three_formats(signed_in, models, short_video, django_capture_on_commit_callbacks, tmp_path):
    upload(signed_in, django_capture_on_commit_callbacks, "clip.mp4", short_video)
    analysis = Analysis.objects.get()
    report = signed_in.get(reverse("analysis-report", args=[analysis.pk, "json"]))
    data = json.loads(report.content)
    assert data["file"]["sha256"] == analysis.upload.sha256
    assert len(data["frames"]) == 10 and data["verdict"] == analysis.verdict
    assert "not proof" in data["limitations"]
    card = json.loads((models / "efficientnet_lstm.json").read_text())
    assert data["model_accuracy"] == without_paths(card.get("evaluation", {}))  # the card's, minus local paths

    csv_text = signed_in.get(reverse("analysis-report", args=[analysis.pk, "csv"])).content.decode()
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith(
        "file,sha256,verdict,model,model_version,content_credentials,file_says,"
        "frame_index,timestamp_s,frame_perceptual_hash,track_id"
    )
    name = analysis.upload.original_name
    assert lines[1].startswith(f"{name},{analysis.upload.sha256},{analysis.verdict},efficientnet_lstm,")
    assert len(lines) - 1 == analysis.faces.count()

    pdf = signed_in.get(reverse("analysis-report", args=[analysis.pk, "pdf"]))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf.content)
    assert len(document) >= 2  # summary and evidence, then the per-frame table
    pages = [document[i].render(scale=1.5).to_pil() for i in range(len(document))]
    assert all(page.size[0] > 800 for page in pages)
    # The first page is not blank: it holds the verdict, the facts and the charts.
    assert len(np.unique(np.asarray(pages[0].convert("L").resize((60, 85))))) > 20
    if folder := os.environ.get("SCREENSHOT_DIR"):
        for i, page in enumerate(pages, 1):
            page.save(Path(folder) / f"report-page-{i}.png")
    text = document[0].get_textpage().get_text_range()
    assert "Deepfake forensics report" in text and analysis.upload.sha256[:16] in text.replace("\n", "")
    assert "Model accuracy" in text
    if data["model_accuracy"]:
        assert f"ROC-AUC {data['model_accuracy']['test']['roc_auc']:.2f}" in text
        # A measured figure below 0.9 (cross-validated, or a scoreboard set): the PDF says so too.
        assert ("weak evidence" in " ".join(text.split())) == weak_evidence(data["model_accuracy"])
    last = document[len(document) - 1].get_textpage().get_text_range()
    assert "Per-frame scores" in "".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    assert last


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            lambda tmp: ("broken.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 4000),
            FailureReason.UNREADABLE_MEDIA,
        ),
        (lambda tmp: ("wall.jpg", blank_photo(tmp / "wall.jpg").read_bytes()), FailureReason.NO_FACE),
        (lambda tmp: ("bomb.png", _bomb(tmp)), FailureReason.TOO_LARGE),
    ],
    ids=["unreadable_media", "no_face", "too_large"],
)
def test_bad_files_end_failed_with_their_reason(
    signed_in, models, tmp_path, django_capture_on_commit_callbacks, make, reason
):
    name, content = make(tmp_path)
    upload(signed_in, django_capture_on_commit_callbacks, name, content)
    analysis = Analysis.objects.get()
    assert analysis.status == Status.FAILED
    assert analysis.failure_reason == reason
    assert analysis.failure_message
    page = signed_in.get(reverse("analysis", args=[analysis.pk])).content.decode()
    assert escape(analysis.failure_message) in page
    assert ("NO FACE" if reason == FailureReason.NO_FACE else "ANALYSIS FAILED") in page


def test_a_file_that_is_no_photo_or_video_is_refused_at_upload(signed_in, private_media):
    # What can be known at upload is refused there: nothing is stored, no job is made.
    content = b"just text, renamed to look like a video\n" * 10
    response = signed_in.post(reverse("upload"), {"files": SimpleUploadedFile("notes.mp4", content), "frames": 10})
    assert response.status_code == 200
    assert "“notes.mp4” is not a photo or video this service can read" in response.content.decode()
    assert not Analysis.objects.exists() and not any(p.is_file() for p in private_media.rglob("*"))


def _bomb(tmp: Path) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (12000, 12000)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def test_a_missing_model_fails_with_model_unavailable(
    signed_in, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.DEEPFAKE_MODEL_DIR = tmp_path / "no-models-here"
    photo = next(shared_path("data", "images", "lfw_faceswap", "test", "real").glob("*.jpg")).read_bytes()
    upload(signed_in, django_capture_on_commit_callbacks, "face.jpg", photo)
    analysis = Analysis.objects.get()
    assert analysis.status == Status.FAILED and analysis.failure_reason == FailureReason.MODEL_UNAVAILABLE
    assert "not found" in analysis.failure_message
    assert signed_in.get(reverse("history")).status_code == 200  # the web still serves


def test_a_timed_out_or_crashed_task_ends_the_job(alice, bob):
    from types import SimpleNamespace

    from detector.models import Upload
    from detector.tasks import finish_analysis

    upload_row = Upload.objects.create(
        owner=alice, file="uploads/x.mp4", original_name="x.mp4", size=1, sha256="0" * 64
    )
    for result, reason in [
        ("Task exceeded maximum timeout value (900 seconds)", "timeout"),
        ("killed", "internal_error"),
    ]:
        analysis = Analysis.objects.create(upload=upload_row, owner=alice, status=Status.RUNNING)
        finish_analysis(SimpleNamespace(args=[str(analysis.pk)], success=False, result=result))
        analysis.refresh_from_db()
        assert analysis.status == Status.FAILED and analysis.failure_reason == reason and analysis.failure_message


def test_an_unexpected_error_is_internal_error(signed_in, models, monkeypatch, django_capture_on_commit_callbacks):
    import detector.tasks

    def explode(analysis):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(detector.tasks, "_run_pipeline", explode)
    photo = next(shared_path("data", "images", "lfw_faceswap", "test", "real").glob("*.jpg")).read_bytes()
    upload(signed_in, django_capture_on_commit_callbacks, "face.jpg", photo)
    analysis = Analysis.objects.get()
    assert analysis.status == Status.FAILED and analysis.failure_reason == FailureReason.INTERNAL_ERROR
    assert "disk on fire" in analysis.failure_message


def test_another_user_gets_404_for_everything(client, alice, bob, models, django_capture_on_commit_callbacks):
    client.force_login(alice)
    photo = shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg").read_bytes()
    upload(client, django_capture_on_commit_callbacks, "group.jpg", photo)
    analysis = Analysis.objects.get()
    frame = FrameResult.objects.get(analysis=analysis)
    face = FaceResult.objects.filter(analysis=analysis).first()
    urls = [
        reverse("analysis", args=[analysis.pk]),
        reverse("analysis-status", args=[analysis.pk]),
        reverse("analysis-original", args=[analysis.pk]),
        reverse("analysis-file", args=[analysis.pk, "thumbnail", frame.pk]),
        reverse("analysis-file", args=[analysis.pk, "crop", face.pk]),
        reverse("analysis-file", args=[analysis.pk, "heatmap", face.pk]),
        *[reverse("analysis-report", args=[analysis.pk, fmt]) for fmt in ("pdf", "json", "csv")],
    ]
    for url in urls:
        assert client.get(url).status_code == 200, url
    client.force_login(bob)
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("analysis-delete", args=[analysis.pk])).status_code == 404
    assert client.post(reverse("analysis-rerun", args=[analysis.pk]), {"frames": 20}).status_code == 404
    assert "group.jpg" not in client.get(reverse("history")).content.decode()
    client.logout()
    for url in urls:
        assert client.get(url).status_code == 302  # to the sign-in page


def test_re_analysis_keeps_both_results(signed_in, models, short_video, django_capture_on_commit_callbacks):
    upload(signed_in, django_capture_on_commit_callbacks, "clip.mp4", short_video, frames=10)
    first = Analysis.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(reverse("analysis-rerun", args=[first.pk]), {"frames": 20, "model": ""})
    second = Analysis.objects.exclude(pk=first.pk).get()
    assert response["Location"] == reverse("analysis", args=[second.pk])
    assert second.upload_id == first.upload_id
    assert first.frames.count() == 10 and second.frames.count() == 20
    assert Analysis.objects.filter(status=Status.DONE).count() == 2


def test_delete_removes_the_files(signed_in, models, short_video, settings, django_capture_on_commit_callbacks):
    upload(signed_in, django_capture_on_commit_callbacks, "clip.mp4", short_video)
    analysis = Analysis.objects.get()
    media = Path(settings.MEDIA_ROOT)
    upload_file = media / analysis.upload.file.name
    result_dir = media / analysis.result_dir
    assert upload_file.is_file() and any(result_dir.iterdir())
    response = signed_in.post(reverse("analysis-delete", args=[analysis.pk]))
    assert response.status_code == 302
    assert not Analysis.objects.exists() and not FrameResult.objects.exists()
    assert not upload_file.exists() and not result_dir.exists()


def test_several_files_make_one_analysis_each(signed_in, models, django_capture_on_commit_callbacks):
    folder = shared_path("data", "images", "lfw_faceswap", "test", "real")
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(folder.glob("*.jpg"))[:3]]
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(reverse("upload"), {"files": files, "frames": 32})
    assert response["Location"] == reverse("history")
    assert Analysis.objects.filter(status=Status.DONE).count() == 3


@pytest.mark.parametrize("frames", ["0", "9", "101", "-1", "abc"])
def test_frame_counts_out_of_range_are_refused(signed_in, frames):
    photo = SimpleUploadedFile("face.jpg", b"\xff\xd8\xff" + b"0" * 100)
    response = signed_in.post(reverse("upload"), {"files": photo, "frames": frames})
    assert response.status_code == 200
    assert "frames" in response.content.decode().lower() and not Analysis.objects.exists()


def test_history_filters_and_searches(signed_in, alice, models, django_capture_on_commit_callbacks):
    photo = next(shared_path("data", "images", "lfw_faceswap", "test", "real").glob("*.jpg")).read_bytes()
    upload(signed_in, django_capture_on_commit_callbacks, "holiday.jpg", photo)
    # A video that fails in the worker (its frames do not decode).
    upload(signed_in, django_capture_on_commit_callbacks, "notes.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 500)
    page = signed_in.get(reverse("history")).content.decode()
    assert "holiday.jpg" in page and "notes.mp4" in page
    page = signed_in.get(reverse("history"), {"status": "failed"}).content.decode()
    assert "notes.mp4" in page and "holiday.jpg" not in page
    page = signed_in.get(reverse("history"), {"q": "holi"}).content.decode()
    assert "holiday.jpg" in page and "notes.mp4" not in page


def finished_video(owner, name: str, frames: int) -> Analysis:
    """A finished analysis with its frame rows, made directly (the page is under test)."""
    upload_row = Upload.objects.create(owner=owner, file=f"uploads/{name}", original_name=name, size=1, sha256="0" * 64)
    analysis = Analysis.objects.create(
        upload=upload_row, owner=owner, status=Status.DONE, verdict="real", fake_probability=0.1, timeline_svg="<svg/>"
    )
    for index in reversed(range(frames)):
        FrameResult.objects.create(
            analysis=analysis, index=index * 10, timestamp_s=index, thumbnail=f"results/{name}/{index}.jpg"
        )
    return analysis


def test_history_shows_each_first_frame_in_a_fixed_number_of_queries(
    signed_in, alice, django_assert_max_num_queries, django_assert_num_queries
):
    first = finished_video(alice, "first.mp4", 3)
    signed_in.get(reverse("history"))  # the session, loaded once
    with django_assert_num_queries(4) as few:
        page = signed_in.get(reverse("history")).content.decode()
    frame = first.frames.get(index=0)
    assert reverse("analysis-file", args=[first.pk, "thumbnail", frame.pk]) in page
    for k in range(6):
        finished_video(alice, f"more-{k}.mp4", 20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = signed_in.get(reverse("history")).content.decode()
    assert page.count('class="thumb"') == 7


def test_forms_need_their_csrf_token(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    photo = SimpleUploadedFile("face.jpg", b"\xff\xd8\xff" + b"0" * 100)
    assert client.post(reverse("upload"), {"files": photo, "frames": 32}).status_code == 403
    assert client.post(reverse("api-access")).status_code == 403
    assert not Analysis.objects.exists()


def test_the_scoreboard_counts_as_evidence_of_weakness():
    from detector.catalog import accuracy_sentence, scoreboard_sentence, weak_evidence

    strong = {"test": {"roc_auc": 0.98, "files": 100, "level": "photo", "roc_auc_interval": [0.97, 0.99]}}
    assert not weak_evidence(strong) and scoreboard_sentence(strong) == ""
    board = {
        "sets": [
            {"set": "LFW face swap test", "roc_auc": 0.98},
            {"set": "StyleGAN vs real photos", "roc_auc": 0.61},
            {"set": "not imported", "skipped": "stylegan is not imported", "roc_auc": None},
        ]
    }
    measured = {**strong, "scoreboard": board}
    assert weak_evidence(measured)  # fails on one kind of media: weak evidence on any
    sentence = scoreboard_sentence(measured)
    assert (
        sentence
        == "On 2 test sets from other sources, ROC-AUC from 0.61 (StyleGAN vs real photos) to 0.98 (LFW face swap test)"
    )
    assert "from 0.61 (StyleGAN vs real photos)" in accuracy_sentence(measured)
    # The model's own held-back split is stated apart, not counted among the other sources.
    measured["test"]["data"] = "LFW face swap test"
    assert scoreboard_sentence(measured) == "On a test set from another source (StyleGAN vs real photos), ROC-AUC 0.61"


def test_a_failed_analysis_says_what_failed_why_and_what_to_do(signed_in, models, django_capture_on_commit_callbacks):
    broken = b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 4000  # an MP4 header, nothing decodable
    upload(signed_in, django_capture_on_commit_callbacks, "broken.mp4", broken)
    analysis = Analysis.objects.get()
    page = signed_in.get(reverse("analysis", args=[analysis.pk])).content.decode()
    assert "ANALYSIS FAILED" in page and 'id="failure-what"' in page and 'id="failure-todo"' in page
    assert "Export it again" in page and "No verdict was made" in page
    assert "broken.mp4" in analysis.failure_message and Path(analysis.upload.file.name).name not in page
    assert 'id="player"' not in page
    # Nothing that reads like a result: no P(fake) explanation, no reports, no pointless re-run.
    assert "What this means" not in page and 'id="download-pdf"' not in page and "Analyse again" not in page


def test_a_photo_gets_a_photos_page(signed_in, models, django_capture_on_commit_callbacks):
    photo = shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg").read_bytes()
    upload(signed_in, django_capture_on_commit_callbacks, "group.jpg", photo)
    analysis = Analysis.objects.get()
    page = signed_in.get(reverse("analysis", args=[analysis.pk])).content.decode()
    assert "The photo" in page and "0.0 s" not in page and "Per-frame table" not in page
    assert "abrupt expression change" not in page and 'id="rerun-frames"' not in page
    history = signed_in.get(reverse("history")).content.decode()
    assert "Photo · " in history and "32 frames" not in history


def test_the_owner_sees_the_reviewers_decision(signed_in, alice, django_user_model):
    upload_row = Upload.objects.create(
        owner=alice, file="uploads/x.jpg", original_name="x.jpg", size=1, sha256="0" * 64
    )
    analysis = Analysis.objects.create(
        upload=upload_row,
        owner=alice,
        status=Status.DONE,
        verdict="fake",
        fake_probability=0.91,
        threshold=0.5,
        uncertain_low=0.3,
        uncertain_high=0.7,
        confidence=0.8,
    )
    rita = django_user_model.objects.create_user("rita", password="rita-password-1", is_staff=True)
    analysis.reviews.create(reviewer=rita, decision="confirmed_real", notes="the source is the original broadcast")
    page = signed_in.get(reverse("analysis", args=[analysis.pk])).content.decode()
    assert 'id="review-decision"' in page and "Reviewed: Confirmed real" in page and "rita" in page
    assert "the original broadcast" in page and "disagrees with the model" in page
    assert "FAKE" in page  # the model's verdict stays beside the decision


def test_small_things_a_user_meets(client, signed_in, models):
    # A styled 404 with the site's navigation; a favicon; the model card on the site.
    missing = signed_in.get("/no/such/page/")
    assert missing.status_code == 404 and "Not found" in missing.content.decode()
    assert 'href="/history/"' in missing.content.decode()
    assert signed_in.get("/favicon.ico").status_code == 301
    page = signed_in.get(reverse("models")).content.decode()
    assert "efficientnet_lstm" in page and "Trained on" in page and "../shared" not in page
    assert signed_in.get(reverse("password_change")).status_code == 200
    docs = signed_in.get("/api/docs/").content.decode()
    assert "← Deepfake Forensics" in docs and "<script>" not in docs


def test_routine_scheduler_lines_are_debug():
    import logging

    from detector.logs import ScheduledTasksAtDebug

    routine = logging.LogRecord(
        "django-q", logging.INFO, "", 0, "Process-1 created task x from schedule [reap]", (), None
    )
    other = logging.LogRecord("django-q", logging.INFO, "", 0, "Q Cluster x running.", (), None)
    assert ScheduledTasksAtDebug("INFO").filter(routine) is False and routine.levelname == "DEBUG"
    assert ScheduledTasksAtDebug("INFO").filter(other) is True
    assert ScheduledTasksAtDebug("DEBUG").filter(routine) is True


def test_reports_travel_with_their_case(signed_in, models, django_capture_on_commit_callbacks):
    import hashlib
    import zipfile

    photo = shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg").read_bytes()
    upload(signed_in, django_capture_on_commit_callbacks, "Press Photo (final).jpg", photo)
    analysis = Analysis.objects.get()
    case = analysis.pk.hex[:8]
    pdf = signed_in.get(reverse("analysis-report", args=[analysis.pk, "pdf"]))
    assert pdf["Content-Disposition"] == f'attachment; filename="press-photo-final-{case}.pdf"'
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf.content)
    for i in range(len(document)):  # every page names the case and its place
        text = " ".join(document[i].get_textpage().get_text_range().split())
        assert f"Case {analysis.pk}" in text and f"page {i + 1} of {len(document)}" in text
    response = signed_in.get(reverse("analysis-evidence", args=[analysis.pk]))
    assert response["Content-Disposition"].endswith(f'press-photo-final-{case}.zip"')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = set(archive.namelist())
    assert {"original/Press Photo (final).jpg", "MANIFEST.json", "SHA256SUMS"} <= names
    assert {f"press-photo-final-{case}.{ext}" for ext in ("pdf", "json", "csv")} <= names
    assert any(n.endswith("-crop.jpg") for n in names) and any(n.endswith("-heatmap.jpg") for n in names)
    manifest = json.loads(archive.read("MANIFEST.json"))
    assert manifest["files"]["original/Press Photo (final).jpg"] == analysis.upload.sha256
    for name, digest in manifest["files"].items():  # every sum checks out
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest


def test_a_queued_job_shows_its_place_and_an_estimate_from_measured_times(signed_in, alice):
    def job(name: str, status: str, media_type: str = "video", frames: int = 20, total: float | None = None):
        upload_row = Upload.objects.create(
            owner=alice, file=f"uploads/{name}", original_name=name, size=1, sha256="0" * 64, media_type=media_type
        )
        return Analysis.objects.create(
            upload=upload_row,
            owner=alice,
            status=status,
            frames_requested=frames,
            frames_analyzed=frames if total else 0,
            timings={"total": total} if total else {},
        )

    job("old1.mp4", Status.DONE, total=4.0)  # 0.2 s a frame
    job("old2.jpg", Status.DONE, media_type="image", frames=1, total=0.3)
    job("ahead.mp4", Status.QUEUED, frames=50)  # 10 s
    mine = job("mine.jpg", Status.QUEUED, media_type="image")
    status = signed_in.get(reverse("analysis-status", args=[mine.pk])).json()
    assert status["queue_position"] == 2 and status["estimate_s"] == round(10 + 0.3)
    page = signed_in.get(reverse("analysis", args=[mine.pk])).content.decode()
    assert "Place 2 in the queue" in page and "about 10 s" in page
    history = signed_in.get(reverse("history")).content.decode()
    assert history.count("data-status-url=") == 2  # the queued rows update themselves


def test_runs_of_a_file_stay_together_and_compare_side_by_side(signed_in, alice, bob):
    upload_row = Upload.objects.create(
        owner=alice, file="uploads/x.mp4", original_name="x.mp4", size=1, sha256="ab" * 32, media_type="video"
    )
    common = {"upload": upload_row, "owner": alice, "status": Status.DONE, "threshold": 0.5, "uncertain_low": 0.3}
    first = Analysis.objects.create(
        **common, verdict="uncertain", fake_probability=0.61, uncertain_high=0.7, model_name="efficientnet_lstm"
    )
    second = Analysis.objects.create(
        **common,
        verdict="fake",
        fake_probability=0.93,
        uncertain_high=0.7,
        model_name="efficientnet",
        frames_requested=64,
    )
    page = signed_in.get(reverse("analysis", args=[second.pk])).content.decode()
    assert 'id="runs"' in page and "This run" in page
    assert reverse("analysis-compare", args=[second.pk, first.pk]) in page
    compare = signed_in.get(reverse("analysis-compare", args=[second.pk, first.pk])).content.decode()
    assert "Two runs of “x.mp4”" in compare and "FAKE" in compare and "UNCERTAIN" in compare
    assert "0.93" in compare and "0.61" in compare and "efficientnet_lstm" in compare
    # Another user's analysis cannot be pulled into a comparison.
    other = Analysis.objects.create(
        upload=Upload.objects.create(owner=bob, file="uploads/y.mp4", original_name="y.mp4", size=1, sha256="c" * 64),
        owner=bob,
    )
    assert signed_in.get(reverse("analysis-compare", args=[second.pk, other.pk])).status_code == 404


def test_the_video_plays_on_the_page_with_its_scored_frames_marked(
    signed_in, models, tmp_path, django_capture_on_commit_callbacks
):
    clip = write_frames_from(
        shared_path("data", "videos", "ffpp", "real", "035.mp4"), tmp_path / "clip.mp4", 60, step=2
    )
    upload(signed_in, django_capture_on_commit_callbacks, "clip.mp4", clip.read_bytes(), frames=10)
    analysis = Analysis.objects.get()
    page = signed_in.get(reverse("analysis", args=[analysis.pk])).content.decode()
    assert 'id="player"' in page and page.count('class="mark ') == analysis.frames.count()
    assert 'data-time="' in page and "js/player.js" in page
    play = reverse("analysis-play", args=[analysis.pk])
    whole = signed_in.get(play)
    assert whole.status_code == 200 and whole["Content-Type"] == "video/mp4" and whole["Accept-Ranges"] == "bytes"
    assert "sandbox" in whole["Content-Security-Policy"]
    assert b"".join(whole.streaming_content) == clip.read_bytes()
    part = signed_in.get(play, HTTP_RANGE="bytes=100-199")  # what a player asks for to seek
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 100-199/{clip.stat().st_size}"
    assert b"".join(part.streaming_content) == clip.read_bytes()[100:200]
    assert signed_in.get(play, HTTP_RANGE=f"bytes={10**9}-").status_code == 416


def test_a_photos_pdf_reads_like_a_photos(signed_in, models, django_capture_on_commit_callbacks):
    import pypdfium2

    photo = shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg").read_bytes()
    upload(signed_in, django_capture_on_commit_callbacks, "group.jpg", photo)
    analysis = Analysis.objects.get()
    pdf = signed_in.get(reverse("analysis-report", args=[analysis.pk, "pdf"])).content
    document = pypdfium2.PdfDocument(pdf)
    text = " ".join(" ".join(document[i].get_textpage().get_text_range().split()) for i in range(len(document)))
    assert "the photo, analysed whole" in text and "frames requested" not in text
    assert "over the video" not in text
