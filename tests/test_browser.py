"""A person's path through the real pages, in headless Chromium, against `manage.py serve`
(gunicorn + a real qcluster worker) and the real pipeline.

Screenshots go to $SCREENSHOT_DIR when set (docs/screenshots/ holds the committed ones).
"""

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from bench.serving import free_port, serve
from tests.conftest import shared_path
from tests.media_factory import write_y4m
from tests.test_serve import database_url_of_test_db

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
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "DEEPFAKE_MODEL_DIR": str(model_dir),
        "DEEPFAKE_MEDIA_ROOT": str(tmp_path / "media"),
        "DEEPFAKE_LIVE_URL": f"http://127.0.0.1:{free_port()}",
    }
    with serve(env, "--web-workers", "1") as served:
        yield served.base


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
    # Playwright's sync API runs an event loop in this thread, and Django keeps a separate
    # database connection for code run while a loop runs: the tests' own ORM calls open one.
    # It is closed here, in that same context; left open, it kept PostgreSQL from dropping
    # the test database at the end of the run. (monkeypatch: the variable must not leak into
    # later tests' subprocesses.)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            connections.close_all()
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
        # A full-page shot shows images below the fold: load the lazy ones first.
        page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(img => { img.loading = 'eager'; })")
        wait_until(page, "[...document.images].every(img => img.complete)")
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def wait_until(page, expression: str, timeout_s: float = 30) -> None:
    """Poll a JavaScript expression (the pages' CSP forbids the eval behind wait_for_function)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


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
    # The card explains itself: the score on a scale with the band, and the reason in words,
    # in as many digits as tell the score from the band's edges; no "confidence" inside the band.
    reason = page.inner_text("#verdict-reason")
    score = page.inner_text("#verdict-score")
    assert score in reason and page.locator("#verdict-scale .scale-band").count() == 1
    assert {"FAKE": "calls it FAKE", "REAL": "calls it REAL", "UNCERTAIN": "does not commit"}[verdict] in reason
    assert ("beyond the threshold" in page.inner_text("#verdict-card")) == (verdict != "UNCERTAIN")
    # The video plays on the page; clicking a scored frame shows that moment.
    assert page.locator("#frame-marks .mark").count() == 20
    mark = page.locator("#frame-marks .mark").nth(10)
    wanted = float(mark.get_attribute("data-time"))
    wait_until(page, "document.getElementById('player').readyState >= 1")
    mark.click()
    wait_until(page, f"Math.abs(document.getElementById('player').currentTime - {wanted}) < 0.25")
    assert page.locator("#timeline svg").count() == 1
    assert page.locator("#emotion-timeline svg").count() == 1
    assert page.locator("#emotions .emotion-bar").count() == 7
    assert page.locator("#thumbnails img").count() == 20
    assert page.locator("#thumbnails .box").count() >= 20
    assert page.locator(".faces img").count() >= 2
    # What the file says about itself: its container and encoder, no Content Credentials.
    provenance = page.inner_text("#provenance")
    assert "Container and encoder" in provenance and "x264 core" in provenance
    assert "no Content Credentials" in provenance and "No earlier upload" in provenance
    assert page.locator("#file-claim").count() == 0
    shoot(page, "result-desktop")

    with page.expect_download() as download_info:
        page.click("#download-pdf")
    pdf = tmp_path / "report.pdf"
    download_info.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 20_000

    # Analyse again with another frame count: the runs of the file stay together and compare.
    first_url = page.url
    page.fill("#rerun-frames", "12")
    page.click("form[action$='/rerun/'] button[type=submit]")
    page.wait_for_selector("#verdict-card", timeout=120_000)
    assert page.locator("#runs li").count() == 2
    page.click("#runs a:has-text('compare with this run')")
    page.wait_for_selector("#compare")
    assert page.locator("#compare .verdict-label").count() == 2
    assert page.locator("#compare .scale").count() == 2 and "Two runs of" in page.inner_text("main")
    shoot(page, "compare-desktop")
    page.goto(first_url)

    # A text file renamed .mp4 passes the browser's name check and is refused at upload, with why.
    fake_video = tmp_path / "notes.mp4"
    fake_video.write_text("These are meeting notes, not a video.\n" * 20)
    page.goto(f"{base}/upload/")
    page.set_input_files("#id_files", str(fake_video))
    page.click("#submit")
    page.wait_for_selector("#files-error")
    assert "is not a photo or video" in page.inner_text("#files-error")

    # A file that is a video by its first bytes but does not decode: a failure page, not a result.
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 4000)
    page.goto(f"{base}/upload/")
    page.set_input_files("#id_files", str(broken))
    page.click("#submit")
    page.wait_for_selector("#verdict-card", timeout=120_000)
    card = page.inner_text("#verdict-card")
    assert "ANALYSIS FAILED" in card and "What to do" in card and "No verdict was made" in card
    assert page.locator("#download-pdf").count() == 0 and page.locator("text=What this means").count() == 0
    shoot(page, "failed-desktop")

    # A photo gets a photo's page.
    photo = shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg")
    page.goto(f"{base}/upload/")
    page.set_input_files("#id_files", str(photo))
    page.click("#submit")
    page.wait_for_selector("#verdict-card", timeout=120_000)
    body = page.inner_text("main")
    assert "The photo" in body and "Per-frame table" not in body and " 0.0 s" not in body
    assert page.locator("#rerun-frames").count() == 0 and page.locator("#player").count() == 0
    shoot(page, "photo-desktop")

    # A reviewer's decision reaches the owner's page, beside the model's verdict.
    from detector.models import Analysis, Review, Upload

    video_case = Analysis.objects.filter(upload__original_name="Deepfakes_033_097.mp4").order_by("created_at").first()
    staff = type(video_case.owner).objects.create_user("rita", password="another-long-password", is_staff=True)
    Review.objects.create(analysis=video_case, reviewer=staff, decision="confirmed_fake", notes="matches the source")
    video_case.review_decision = "confirmed_fake"
    video_case.save(update_fields=["review_decision"])
    page.goto(first_url)
    decision = page.inner_text("#review-decision")
    assert "Reviewed: Confirmed fake" in decision and "rita" in decision and "matches the source" in decision
    assert page.locator("#verdict-card .verdict-label").count() == 1

    # A job waiting in the queue says where it stands and about how long, from measured times.
    # (Its task id is set so that nothing sends it to the worker: it stays queued.)
    waiting = Analysis.objects.create(
        upload=Upload.objects.get(pk=video_case.upload_id), owner=video_case.owner, frames_requested=20, task_id="held"
    )
    page.goto(f"{base}/analyses/{waiting.pk}/")
    place = page.inner_text("#queue-place")
    assert "Place 1 in the queue" in place and "result in about" in place
    shoot(page, "queue-desktop")
    page.goto(f"{base}/history/")
    page.wait_for_selector(".live-status")  # the queued row updates itself
    assert "queued, place 1" in page.inner_text(".live-status")
    waiting.delete()

    page.goto(f"{base}/history/")
    assert page.locator(".history li").count() == 4
    assert "32 frames" not in page.inner_text(".history li:first-child")
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

    # A photo whose Content Credentials say it was generated by AI: the statement stands in
    # the verdict card, beside the model's verdict; a smaller copy finds it as seen before.
    from tests.provenance_factory import AI_GENERATED, sign, signing_identity

    plain = tmp_path / "portrait.jpg"
    Image.open(photo).convert("RGB").save(plain, quality=90)
    signed = sign(plain, tmp_path / "portrait-signed.jpg", "image/jpeg", signing_identity(), AI_GENERATED, "Imaginary")
    page.goto(f"{base}/upload/")
    page.set_input_files("#id_files", str(signed))
    page.click("#submit")
    page.wait_for_selector("#verdict-card .verdict-label", timeout=120_000)
    claim = page.locator("#verdict-card #file-claim")
    assert claim.is_visible() and "generated by AI" in claim.inner_text()
    assert page.inner_text("#verdict-card .verdict-label") in ("FAKE", "REAL", "UNCERTAIN")
    assert "Test Newsroom Camera" in page.inner_text("#provenance-c2pa + table")
    shoot(page, "provenance-desktop")
    smaller = tmp_path / "portrait-small.jpg"
    Image.open(plain).resize((600, 315)).save(smaller, quality=70)
    page.goto(f"{base}/upload/")
    page.set_input_files("#id_files", str(smaller))
    page.click("#submit")
    page.wait_for_selector("#verdict-card .verdict-label", timeout=120_000)
    seen = page.inner_text("#seen-before + ul")
    assert "portrait-signed.jpg" in seen and "near copy" in seen
    page.locator("#seen-before + ul a").first.click()
    page.wait_for_selector("#file-claim")


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
        wait_until(page, "Number(document.getElementById('live').dataset.frames || 0) >= 5", 90)
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
    wait_until(small, "Number(document.getElementById('live').dataset.frames || 0) >= 2", 30)
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
