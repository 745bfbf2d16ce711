"""The live camera through the web app: the page, and the API endpoint that forwards a frame
to the real scoring service (`python -m ml.live`) and answers with a score and a box."""

import time

import pytest
from rest_framework.test import APIClient

from bench.serving import free_port, get_or_none, start, stop, wait_for
from detector.models import Analysis, Upload
from tests.conftest import shared_path
from tests.media_factory import jpeg_frame
from tests.test_api import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def live_service(model_dir):
    """The scoring service, as `manage.py serve` starts it, on a free port."""
    port = free_port()
    process = start(["-m", "ml.live", "--port", str(port), "--model-dir", str(model_dir)])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get_or_none(f"{url}/health"), 90, "the live scoring service")
        yield url
    finally:
        stop([process], grace_s=20)


@pytest.fixture
def live_url(settings, live_service):
    settings.DEEPFAKE_LIVE_URL = live_service
    return live_service


def test_a_frame_from_ffpp_gets_a_score_and_a_box_within_a_second(alice, live_url, private_media):
    api = token_client(alice)
    frame = jpeg_frame(shared_path("data", "videos", "ffpp", "fake", "Deepfakes_033_097.mp4"), 25)
    api.post("/api/v1/live/frame/", frame, content_type="image/jpeg")  # the first call warms caches
    started = time.perf_counter()
    response = api.post("/api/v1/live/frame/", frame, content_type="image/jpeg")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.content
    body = response.json()
    assert elapsed < 1.0, f"answered in {elapsed:.2f} s"
    assert body["faces"], body
    face = body["faces"][0]
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= body["width"] and 0 <= y1 < y2 <= body["height"]
    assert 0 <= face["fake_probability"] <= 1 and face["verdict"] in ("fake", "real", "uncertain")
    assert body["fake_probability"] == face["fake_probability"]
    assert body["model"] == "efficientnet" and body["milliseconds"] < 1000
    # Nothing was kept: no upload, no analysis, no file.
    assert not Upload.objects.exists() and not Analysis.objects.exists()
    assert not any(p.is_file() for p in private_media.rglob("*"))


def test_bad_frames_and_a_stopped_service_get_clear_answers(alice, live_url, settings):
    api = token_client(alice)
    response = api.post("/api/v1/live/frame/", b"a text file, not a frame", content_type="image/jpeg")
    assert response.status_code == 400 and "not a JPEG or PNG" in response.json()["detail"]
    assert api.post("/api/v1/live/frame/", b"", content_type="image/jpeg").status_code == 400
    huge = api.post("/api/v1/live/frame/", b"\xff" * (4 * 1024 * 1024 + 1), content_type="image/jpeg")
    assert huge.status_code == 413 and "at most 4 MB" in huge.json()["detail"]
    settings.DEEPFAKE_LIVE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    response = api.post("/api/v1/live/frame/", b"\xff\xd8", content_type="image/jpeg")
    assert response.status_code == 503 and "not running" in response.json()["detail"]


def test_the_endpoint_needs_a_user_and_the_pages_csrf_token(alice, live_url):
    frame = b"\xff\xd8 not checked before the user is"
    assert APIClient().post("/api/v1/live/frame/", frame, content_type="image/jpeg").status_code in (401, 403)
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(alice)
    response = browser.post("/api/v1/live/frame/", frame, content_type="image/jpeg")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_the_live_page(client, alice):
    assert client.get("/live/").status_code == 302  # sign in first
    client.force_login(alice)
    page = client.get("/live/").content.decode()
    assert 'id="live-video"' in page and "/api/v1/live/frame/" in page and 'id="live-record"' in page
    assert "kept nowhere" in page


def test_healthz_reports_the_live_service_without_depending_on_it(client, live_url, settings):
    body = client.get("/healthz").json()
    assert body["checks"]["live"]["ok"] is True
    settings.DEEPFAKE_LIVE_URL = f"http://127.0.0.1:{free_port()}"
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["checks"]["live"]["ok"] is False
