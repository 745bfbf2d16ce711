"""Facial expressions through the whole product: an FF++ video analysed by the real pipeline
carries per-frame expressions, the distribution, the chart, and all three reports and the API
show them; turning the stage off removes them and leaves the verdict alone."""

import csv
import io
import json

import pytest

from detector.models import Analysis
from tests.conftest import shared_path
from tests.test_api import create, token_client

pytestmark = pytest.mark.django_db
EMOTIONS = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def analyse(api, path, django_capture_on_commit_callbacks, frames=12) -> Analysis:
    response = create(api, django_capture_on_commit_callbacks, path, frames=frames)
    assert response.status_code == 202, response.content
    analysis = Analysis.objects.get(pk=response.json()["id"])
    assert analysis.status == "done", analysis.failure_message
    return analysis


def test_an_ffpp_video_gets_expressions_everywhere(alice, client, models, django_capture_on_commit_callbacks):
    video = shared_path("data", "videos", "ffpp", "fake", "Deepfakes_033_097.mp4")
    api = token_client(alice)
    analysis = analyse(api, video, django_capture_on_commit_callbacks)

    frames = list(analysis.frames.prefetch_related("faces"))
    with_face = [f for f in frames if f.fake_probability is not None]
    assert len(with_face) >= 10
    assert all(f.emotion in EMOTIONS for f in with_face)
    for face in analysis.faces.all():
        assert face.emotion in EMOTIONS
        assert set(face.emotions) == EMOTIONS
        assert sum(face.emotions.values()) == pytest.approx(1.0, abs=1e-3)
        assert face.emotion == max(face.emotions, key=face.emotions.get)
    assert set(analysis.emotions) == EMOTIONS
    assert sum(analysis.emotions.values()) == pytest.approx(1.0, abs=1e-3)
    assert isinstance(analysis.emotion_changes, list)
    assert analysis.emotion_svg.lstrip().startswith(("<?xml", "<svg"))

    client.force_login(alice)
    page = client.get(f"/analyses/{analysis.pk}/").content.decode()
    assert 'id="emotion-timeline"' in page and 'id="emotions"' in page
    assert "abrupt expression change" in page and "never change the verdict" in page
    assert "<th>Expression</th>" in page

    report = json.loads(client.get(f"/analyses/{analysis.pk}/report.json").content)
    assert report["emotions"] == analysis.emotions
    assert all(face["emotion"] in EMOTIONS for frame in report["frames"] for face in frame["faces"])
    rows = list(csv.DictReader(io.StringIO(client.get(f"/analyses/{analysis.pk}/report.csv").content.decode())))
    assert rows and all(row["emotion"] in EMOTIONS for row in rows)
    assert all(abs(sum(float(row[f"p_{e}"]) for e in EMOTIONS) - 1) < 2e-3 for row in rows)
    pdf = client.get(f"/analyses/{analysis.pk}/report.pdf").content
    assert pdf.startswith(b"%PDF")
    from pypdfium2 import PdfDocument

    text = "".join(page.get_textpage().get_text_range() for page in PdfDocument(pdf))
    assert "Facial expressions" in text and "Abrupt changes" in text

    body = api.get(f"/api/v1/analyses/{analysis.pk}/").json()
    assert body["emotions"] == analysis.emotions and "emotion_changes" in body
    api_frames = api.get(f"/api/v1/analyses/{analysis.pk}/frames/").json()["results"]
    assert all(face["emotion"] in EMOTIONS for frame in api_frames for face in frame["faces"])

    alice.is_staff = alice.is_superuser = True
    alice.save()
    admin_page = client.get(f"/admin/detector/analysis/{analysis.pk}/change/").content.decode()
    assert "Facial expressions" in admin_page and "abrupt change(s)" in admin_page


def test_turning_expressions_off_removes_them_and_keeps_the_verdict(
    alice, models, settings, django_capture_on_commit_callbacks
):
    photo = shared_path("data", "images", "lfw_faceswap", "test", "real", "real_1655.jpg")
    api = token_client(alice)
    with_emotions = analyse(api, photo, django_capture_on_commit_callbacks)
    assert with_emotions.faces.get().emotion == "happy"  # a broad smile
    settings.DEEPFAKE_EMOTIONS = False
    without = analyse(api, photo, django_capture_on_commit_callbacks)
    assert without.faces.get().emotion == "" and without.emotions == {} and without.emotion_svg == ""
    assert (without.verdict, without.fake_probability) == (with_emotions.verdict, with_emotions.fake_probability)
