"""A person's path through the real pages, in headless Chromium, against `manage.py serve`
(gunicorn + a real qcluster worker) and the real pipeline.

Screenshots go to $SCREENSHOT_DIR when set (docs/screenshots/ holds the committed ones).
"""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, shared_path
from tests.media_factory import write_y4m
from tests.test_serve import database_url_of_test_db, get_or_none, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)"),
]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def service(transactional_db, model_dir, tmp_path, monkeypatch, django_user_model):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    django_user_model.objects.create_user("reporter", password="a-long-test-password")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "DEEPFAKE_MODEL_DIR": str(model_dir),
        "DEEPFAKE_MEDIA_ROOT": str(tmp_path / "media"),
        "DEEPFAKE_LIVE_URL": f"http://127.0.0.1:{free_port()}",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--web-workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get_or_none(f"{base}/healthz"), 60, "the web server")
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(monkeypatch, extra_args=()):
    # Playwright's sync API runs an event loop in this thread; the Django ORM is not used here.
    # (monkeypatch: the variable must not leak into later tests' subprocesses.)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        yield browser
        browser.close()


@pytest.fixture
def browser(monkeypatch):
    yield from launch(monkeypatch)


@pytest.fixture
def camera_browser(monkeypatch, tmp_path):
    """Chromium whose camera plays the first seconds of an FF++ video (a y4m file)."""
    clip = write_y4m(shared_path("data", "videos", "ffpp", "fake", "Deepfakes_033_097.mp4"), tmp_path / "cam.y4m")
    yield from launch(
        monkeypatch,
        [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}",
        ],
    )


def shoot(page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def sign_in(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "reporter")
    page.fill("#id_password", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/upload/")


def test_a_reporter_checks_a_video_and_downloads_the_report(service, browser, tmp_path):
    base = service
    video = shared_path("data", "videos", "ffpp", "fake", "Deepfakes_033_097.mp4")
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    sign_in(page, base)
    shoot(page, "upload-desktop")

    page.set_input_files("#id_files", str(video))
    page.locator("#id_frames").evaluate("(el) => { el.value = 20; el.dispatchEvent(new Event('input')); }")
    assert page.inner_text("#frames-value") == "20"
    assert "Deepfakes_033_097.mp4" in page.inner_text("#file-list")
    page.click("#submit")
    page.wait_for_url(f"{base}/analyses/**")
    # The job is queued or running: the progress bar shows before the verdict does.
    assert page.locator("#progress-card .progress").is_visible()
    page.wait_for_selector("#verdict-card", timeout=120_000)
    verdict = page.inner_text("#verdict-card .verdict-label")
    assert verdict in ("FAKE", "REAL", "UNCERTAIN")
    assert page.locator("#timeline svg").count() == 1
    assert page.locator("#emotion-timeline svg").count() == 1
    assert page.locator("#emotions .emotion-bar").count() == 7
    assert page.locator("#thumbnails img").count() == 20
    assert page.locator("#thumbnails .box").count() >= 20
    assert page.locator(".faces img").count() >= 2
    shoot(page, "result-desktop")

    with page.expect_download() as download_info:
        page.click("#download-pdf")
    pdf = tmp_path / "report.pdf"
    download_info.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 20_000

    # A text file renamed .mp4 passes the browser's name check and is refused with a reason.
    fake_video = tmp_path / "notes.mp4"
    fake_video.write_text("These are meeting notes, not a video.\n" * 20)
    page.goto(f"{base}/upload/")
    page.set_input_files("#id_files", str(fake_video))
    page.click("#submit")
    page.wait_for_selector("#verdict-card")
    text = page.inner_text("#verdict-card")
    assert "ANALYSIS FAILED" in text and "not a photo or video" in text

    page.goto(f"{base}/history/")
    assert page.locator(".history li").count() == 2
    shoot(page, "history-desktop")

    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    small = phone.new_page()
    sign_in(small, base)
    # Nothing may be wider than a phone screen.
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(small, "upload-phone")
    small.goto(page.url.replace("/history/", "/history/"))
    shoot(small, "history-phone")
    result_url = small.locator(".history li a.name").last.get_attribute("href")
    small.goto(f"{base}{result_url}")
    small.wait_for_selector("#verdict-card")
    shoot(small, "result-phone")
    wide = small.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => !e.closest('.scroll, .strip'))"
        ".filter(e => e.getBoundingClientRect().right > innerWidth + 1)"
        ".map(e => e.tagName + '.' + e.className).slice(0, 5)"
    )
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], wide

    dark = browser.new_context(viewport=DESKTOP, color_scheme="dark")
    night = dark.new_page()
    sign_in(night, base)
    night.goto(f"{base}{result_url}")
    background = night.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(246, 247, 249)"  # the light theme's background
    shoot(night, "result-dark")


def test_the_live_camera_scores_a_fake_camera_and_records_an_analysis(service, camera_browser):
    base = service
    context = camera_browser.new_context(viewport=DESKTOP)
    context.grant_permissions(["camera"], origin=base)
    page = context.new_page()
    sign_in(page, base)
    page.click("nav >> text=Live")
    page.wait_for_url(f"{base}/live/")
    page.click("#live-start")
    # The live scoring service loads its models while the page starts: allow for that once.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("Number(document.getElementById('live').dataset.frames || 0) >= 5", timeout=90_000)
    except PlaywrightTimeout:
        raise AssertionError(f"no live scores; the page says: {page.inner_text('#live-status')}") from None
    assert float(page.inner_text("#live-probability")) >= 0
    assert page.inner_text("#live-verdict") in ("LOOKS FAKE", "LOOKS REAL", "UNCERTAIN")
    assert "face(s)" in page.inner_text("#live-latency")
    answered_ms = int(page.inner_text("#live-latency").split("answered in ")[1].split(" ms")[0])
    assert answered_ms < 1000
    # A box was drawn over the face: some overlay pixels are not transparent.
    painted = page.evaluate(
        "(() => { const c = document.getElementById('live-overlay');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })()"
    )
    assert painted > 100
    shoot(page, "live-desktop")

    # On a phone the page stacks: nothing is wider than the screen.
    phone = camera_browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    phone.grant_permissions(["camera"], origin=base)
    small = phone.new_page()
    sign_in(small, base)
    small.goto(f"{base}/live/")
    small.click("#live-start")
    small.wait_for_function("Number(document.getElementById('live').dataset.frames || 0) >= 2", timeout=30_000)
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(small, "live-phone")
    phone.close()

    # Record: the clip becomes an ordinary analysis, and the page goes to it.
    page.click("#live-record")
    page.wait_for_timeout(2500)
    page.click("#live-record")
    page.wait_for_url(f"{base}/analyses/**", timeout=30_000)
    page.wait_for_selector("#verdict-card", timeout=120_000)
    assert page.inner_text("#verdict-card .verdict-label") in ("FAKE", "REAL", "UNCERTAIN"), page.inner_text(
        "#verdict-card"
    )
    assert ".webm" in page.inner_text("h1.filename")
