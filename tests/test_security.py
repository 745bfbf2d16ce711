"""Hostile input, probed as an attacker with an account would, on 127.0.0.1 only (about 450
lines: one file for the whole threat list, so that its hostile files and fixtures are shared).

Resource tests make their hostile files themselves and measure the peak memory of a child
process. Webhook tests use local listeners and a fake resolver: nothing here contacts an
address outside this machine.
"""

import csv
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from detector import webhooks
from detector.models import Analysis, Status, Upload
from tests.conftest import ROOT, WebhookListener

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def face_jpeg() -> bytes:
    """A small JPEG (content is what matters to the upload check, not a face)."""
    ok, data = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))
    assert ok
    return data.tobytes()


def peak_rss_mib(code: str, timeout: int = 300) -> tuple[float, str]:
    """Run `code` in a fresh Python and return (its peak RSS growth in MiB, its output).

    The growth is measured from after the imports `code` needs (it calls `mark()` first)."""
    prelude = (
        "import resource, sys\n"
        "def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "base = [0.0]\n"
        "def mark(): base[0] = rss()\n"
    )
    epilogue = "\nprint('PEAK', rss() - base[0])\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + code + epilogue],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    peak = float(done.stdout.strip().splitlines()[-1].split()[1])
    return peak, done.stdout


# -- 1. video resolution ----------------------------------------------------------------------


def write_mjpg(path: Path, size: tuple[int, int], frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (i * 11) % 256, np.uint8))
    writer.release()
    return path


@pytest.mark.engine
def test_a_video_above_4k_is_refused_before_its_frames_are_decoded(tmp_path):
    clip = write_mjpg(tmp_path / "square.avi", (4096, 4096), 10)
    assert clip.stat().st_size < 2_000_000  # a small file that claims 16.7 megapixels a frame
    peak, out = peak_rss_mib(
        "from ml.media import read_frames\n"
        "from ml.errors import MediaTooLargeError\n"
        "mark()\n"
        "try:\n"
        f"    read_frames({str(clip)!r}, 10)\n"
        "except MediaTooLargeError as e:\n"
        "    print('REFUSED', e.reason, e)\n"
    )
    assert "REFUSED too_large" in out and "4096x4096" in out and "8.8 megapixels" in out
    assert peak < 200, f"{peak:.0f} MiB to refuse a 4096x4096 clip"


@pytest.mark.engine
@pytest.mark.slow  # decodes 100 frames of a UHD clip
def test_the_frames_of_a_100_frame_uhd_analysis_stay_bounded(tmp_path):
    # 100 sampled frames of 3840x2160 held at full size are 2.4 GiB; scaled to 1080p, 0.6 GiB.
    clip = write_mjpg(tmp_path / "uhd.avi", (3840, 2160), 100)
    peak, out = peak_rss_mib(
        "from ml.media import read_frames\n"
        "mark()\n"
        f"info, frames = read_frames({str(clip)!r}, 100)\n"
        "print('FRAMES', len(frames), info.width, info.height, frames[0].image.shape, round(frames[0].scale, 3))\n"
    )
    assert "FRAMES 100 3840 2160 (1080, 1920, 3) 0.5" in out
    assert peak < 1000, f"{peak:.0f} MiB for 100 UHD frames"


def test_an_oversized_video_upload_ends_as_too_large(alice, models, tmp_path, django_capture_on_commit_callbacks):
    clip = write_mjpg(tmp_path / "square.avi", (4096, 4096), 10)
    api = token_client(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/analyses/", {"file": SimpleUploadedFile("square.avi", clip.read_bytes())})
    assert response.status_code == 202
    analysis = Analysis.objects.get()
    assert analysis.status == Status.FAILED and analysis.failure_reason == "too_large"
    assert "megapixels" in analysis.failure_message


# -- 2. pictures are measured from their header --------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header for width x height greyscale pixels, with one row of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1)))


@pytest.mark.engine
def test_a_live_frame_is_refused_from_its_header(tmp_path):
    picture = tmp_path / "huge.png"
    picture.write_bytes(png_claiming(30000, 30000))
    peak, out = peak_rss_mib(
        "from ml.live import decode_picture\n"
        f"data = open({str(picture)!r}, 'rb').read()\n"
        "mark()\n"
        "try:\n"
        "    decode_picture(data)\n"
        "except ValueError as e:\n"
        "    print('REFUSED', e)\n"
    )
    assert "REFUSED a frame is at most 8 megapixels" in out
    assert peak < 100, f"{peak:.0f} MiB to refuse a 30000x30000 frame"


# -- 3. one upload limit, counted in files, on every door ---------------------------------------


def test_one_upload_limit_holds_on_every_door(client, alice, settings, models, django_capture_on_commit_callbacks):
    settings.DEEPFAKE_UPLOAD_RATE = "3/hour"
    api = token_client(alice)
    for i in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post("/api/v1/analyses/", {"file": SimpleUploadedFile(f"{i}.jpg", face_jpeg())})
        assert response.status_code == 202
    # The page may not start two more at once, whatever the API has left.
    client.force_login(alice)
    files = [SimpleUploadedFile(f"p{i}.jpg", face_jpeg()) for i in range(2)]
    page = client.post(reverse("upload"), {"files": files, "frames": 10})
    assert page.status_code == 200 and "You may start 3 analyses per hour" in page.content.decode()
    assert Analysis.objects.count() == 2 and Upload.objects.count() == 2
    # One more is allowed (by the page), then every door says no.
    with django_capture_on_commit_callbacks(execute=True):
        one = SimpleUploadedFile("p.jpg", face_jpeg())
        assert client.post(reverse("upload"), {"files": [one], "frames": 10}).status_code == 302
    first = Analysis.objects.order_by("created_at").first()
    response = api.post("/api/v1/analyses/", {"file": SimpleUploadedFile("4.jpg", face_jpeg())})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert api.post(f"/api/v1/analyses/{first.pk}/rerun/", {}).status_code == 429
    client.post(reverse("analysis-rerun", args=[first.pk]), {"frames": 10, "model": ""})
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client.post(
        reverse("admin:detector_analysis_changelist"),
        {"action": "rerun", "_selected_action": [str(first.pk)], "apply": "1", "frames": "10", "model": ""},
    )
    assert Analysis.objects.count() == 3 and Upload.objects.count() == 3


# -- 4. sign-in throttling ----------------------------------------------------------------------


def test_sign_in_is_throttled_by_account(client, alice, settings):
    for _ in range(settings.DEEPFAKE_SIGNIN_FAILURES_PER_ACCOUNT):
        response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
        assert response.status_code == 200
    # Locked: even the right password is refused, and the page says why (429).
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 429 and "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The admin's sign-in is the same door.
    admin = client.post(reverse("admin:login"), {"username": "alice", "password": "alice-password-1"})
    assert "_auth_user_id" not in client.session and "Too many failed sign-ins" in admin.content.decode()


def test_sign_in_is_throttled_by_address(client, alice, bob, settings):
    settings.DEEPFAKE_SIGNIN_FAILURES_PER_ADDRESS = 6
    for i in range(6):
        client.post(reverse("login"), {"username": f"guess{i}", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "bob", "password": "bob-password-1"})
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    # Another address is not locked out by this one.
    other = client.post(reverse("login"), {"username": "bob", "password": "bob-password-1"}, REMOTE_ADDR="10.9.8.7")
    assert other.status_code == 302 and client.session["_auth_user_id"] == str(bob.pk)


# -- 5 and 6. webhooks go only where they were checked to go ---------------------------------


@pytest.fixture
def listener(webhook_listener):
    return webhook_listener


def test_dns_rebinding_cannot_reach_a_local_listener(alice, listener, monkeypatch):
    answers = iter(["93.184.216.34", "93.184.216.34", "127.0.0.1"])
    lookups = []

    def rebinding_resolver(host, port):
        lookups.append(host)
        return [next(answers)]

    connected = []

    def no_outside_connections(address, timeout=None, *args, **kwargs):
        connected.append(address)  # record, and never leave this machine
        raise ConnectionRefusedError("test: no outside connections")

    monkeypatch.setattr(webhooks, "resolve", rebinding_resolver)
    monkeypatch.setattr(webhooks.socket, "create_connection", no_outside_connections)
    upload = Upload.objects.create(owner=alice, file="uploads/x.jpg", original_name="x.jpg", size=1, sha256="0" * 64)
    analysis = Analysis.objects.create(
        upload=upload, owner=alice, status=Status.DONE, callback_url=f"http://rebind.example:{listener}/hook"
    )
    result = webhooks.deliver(str(analysis.pk))
    assert "failed" in result and lookups == ["rebind.example"]
    # The connection went to the address that was checked, never to the rebound one.
    assert connected == [("93.184.216.34", listener)] and WebhookListener.received == []


def test_the_post_goes_to_the_resolved_address_with_the_hosts_name(alice, listener, monkeypatch, settings):
    settings.DEEPFAKE_WEBHOOK_ALLOW_PRIVATE = True
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: ["127.0.0.1"])
    upload = Upload.objects.create(owner=alice, file="uploads/x.jpg", original_name="x.jpg", size=1, sha256="0" * 64)
    analysis = Analysis.objects.create(
        upload=upload, owner=alice, status=Status.DONE, callback_url=f"http://hooks.example:{listener}/hook?a=1"
    )
    assert webhooks.deliver(str(analysis.pk)) == "delivered (204)"
    headers, body = WebhookListener.received[0]
    assert headers["Host"] == f"hooks.example:{listener}" and json.loads(body)["id"] == str(analysis.pk)


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::7f00:1", "64:ff9b::a00:1", "2002:7f00:1::", "::ffff:127.0.0.1", "2001:0:4136:e378:8000:63bf:80ff:fffe"],
)
def test_ipv6_addresses_that_carry_a_private_ipv4_are_refused(api_alice, monkeypatch, address):
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: [address])
    with pytest.raises(webhooks.WebhookTargetError, match="private or local"):
        webhooks.check_target("http://sneaky.example/hook")
    response = api_alice.post(
        "/api/v1/analyses/",
        {"file": SimpleUploadedFile("x.jpg", face_jpeg()), "callback_url": "http://sneaky.example/hook"},
    )
    assert response.status_code == 400 and "callback_url" in response.json()


@pytest.fixture
def api_alice(alice):
    return token_client(alice)


@pytest.mark.parametrize("url", ["http://hooks.example:0/x", "http://hooks.example:99999/x"])
def test_bad_ports_are_a_400_not_a_500(api_alice, monkeypatch, url):
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: ["93.184.216.34"])
    response = api_alice.post(
        "/api/v1/analyses/", {"file": SimpleUploadedFile("x.jpg", face_jpeg()), "callback_url": url}
    )
    assert response.status_code == 400 and "port" in json.dumps(response.json())
    assert not Upload.objects.exists()


# -- 7. CSV cells cannot become formulas ----------------------------------------------------------


def test_csv_exports_neutralise_formulas(client, alice):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client.force_login(alice)
    names = ["=cmd|'calc'!A0.jpg", "@SUM(1+1)*cmd.jpg", "+1+1.jpg", "-2+3.jpg", "\tTAB.jpg"]
    cases = []
    for name in names:
        upload = Upload.objects.create(owner=alice, file="uploads/x.jpg", original_name=name, size=1, sha256="0" * 64)
        cases.append(Analysis.objects.create(upload=upload, owner=alice, status=Status.DONE, verdict="fake"))
    cases[0].reviews.create(reviewer=alice, decision="confirmed_fake", notes="=1+2")
    response = client.post(
        reverse("admin:detector_analysis_changelist"),
        {"action": "export_csv", "_selected_action": [str(c.pk) for c in cases]},
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted(row["file"] for row in rows) == sorted("'" + name for name in names)
    assert {row["review_notes"] for row in rows} == {"'=1+2", ""}
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())


# -- 8. originals are bytes, and refused types are not kept ------------------------------------


def test_originals_are_served_as_bytes_whatever_their_name(client, alice, models, django_capture_on_commit_callbacks):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("upload"), {"files": SimpleUploadedFile("page.html", face_jpeg()), "frames": 10})
    analysis = Analysis.objects.get()
    response = client.get(reverse("analysis-original", args=[analysis.pk]))
    assert response["Content-Type"] == "application/octet-stream" and response["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in response["Content-Disposition"]


@pytest.mark.parametrize("name", ["page.html", "image.svg", "clip.mp4"])
def test_files_of_a_refused_type_are_not_kept(client, alice, name, private_media):
    client.force_login(alice)
    body = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    response = client.post(reverse("upload"), {"files": SimpleUploadedFile(name, body), "frames": 10})
    assert response.status_code == 200 and "is not a photo or video" in response.content.decode()
    assert not Upload.objects.exists() and not any(p.is_file() for p in private_media.rglob("*"))


# -- 9. the admin re-runs with installed models only --------------------------------------------


def test_the_admin_rerun_takes_installed_models_only(client, alice, models):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client.force_login(alice)
    upload = Upload.objects.create(owner=alice, file="uploads/x.jpg", original_name="x.jpg", size=1, sha256="0" * 64)
    case = Analysis.objects.create(upload=upload, owner=alice, status=Status.DONE)
    response = client.post(
        reverse("admin:detector_analysis_changelist"),
        {"action": "rerun", "_selected_action": [str(case.pk)], "apply": "1", "frames": "10", "model": "/etc/passwd"},
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert Analysis.objects.count() == 1


@pytest.mark.engine
def test_a_missing_model_does_not_show_the_servers_path(tmp_path):
    from ml.checkpoint import load_checkpoint
    from ml.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError) as error:
        load_checkpoint(tmp_path / "secret-folder" / "nothing.pt")
    assert "secret-folder" not in str(error.value) and "nothing.pt" in str(error.value)


# -- 10. headers, health, mail, the database file, HTTPS ---------------------------------------


def test_pages_carry_a_strict_content_security_policy(client, alice):
    client.force_login(alice)
    for name in ("upload", "history", "live", "api-access"):
        response = client.get(reverse(name))
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        html = response.content.decode()
        # No inline script or handler anywhere: the policy would block it.
        assert "<script>" not in html and " onsubmit=" not in html and " onclick=" not in html
    docs = client.get("/api/docs/")
    assert "<script>" not in docs.content.decode() and "Content-Security-Policy" in docs


def test_secrets_are_never_cached(client, alice):
    client.force_login(alice)
    assert "no-store" in client.get(reverse("api-access"))["Cache-Control"]
    api = token_client(alice)
    assert "no-store" in api.get("/api/v1/webhook-secret/")["Cache-Control"]


def test_the_first_token_is_not_called_a_replacement(client, alice):
    client.force_login(alice)
    first = client.post(reverse("api-access"), follow=True).content.decode()
    assert "Your API token was created" in first and "old one" not in first
    second = client.post(reverse("api-access"), follow=True).content.decode()
    assert "the old one no longer works" in second


def test_password_reset_is_offered_only_with_mail(client):
    assert client.get("/accounts/password_reset/").status_code == 404
    env = {**os.environ, "EMAIL_HOST": "mail.example"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.urls import reverse; print(reverse('password_reset'))",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "deepfake_site.settings"},
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "/accounts/password_reset/", done.stderr[-500:]


def test_the_sqlite_file_is_private(tmp_path):
    # The file holds sessions and API tokens: whoever connects first makes it private.
    path = tmp_path / "service.sqlite3"
    path.write_bytes(b"")
    path.chmod(0o644)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "deepfake_site.settings", "DATABASE_URL": f"sqlite:///{path}"}
    code = "import django; django.setup(); from django.db import connection; connection.ensure_connection()"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]
    assert path.stat().st_mode & 0o777 == 0o600


def test_https_settings_keep_the_health_check_plain_and_preload_opt_in():
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_PRELOAD, s.SECURE_REDIRECT_EXEMPT]))"
    )
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "deepfake_site.settings", "DEEPFAKE_HTTPS": "1"}
    plain = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True)
    redirect, preload, exempt = json.loads(plain.stdout)
    assert redirect is True and preload is False and exempt == ["^healthz$"]
    asked = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DEEPFAKE_HSTS_PRELOAD": "1"},
        capture_output=True,
        text=True,
    )
    assert json.loads(asked.stdout)[1] is True


def test_healthz_answers_plain_http_when_https_is_on(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get(reverse("login")).status_code == 301
