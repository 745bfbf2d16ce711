"""Live scoring in the engine: one frame scored as a photo, the HTTP service that keeps the
model loaded, and a video played in real time."""

import itertools
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from ml.inference import get_detector
from ml.live import LiveScorer, RollingScore, decode_picture, play, serve
from tests.conftest import ROOT, shared_path
from tests.media_factory import jpeg_frame

VIDEO = ("data", "videos", "ffpp", "real", "033.mp4")


@pytest.fixture(scope="module")
def scorer():
    detector = get_detector(None, "image", ROOT / "ml" / "weights")
    scorer = LiveScorer(detector)
    scorer.warm_up()
    return scorer


def post(url: str, data: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "image/jpeg"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_frame_gets_a_box_a_score_and_an_expression(scorer):
    frame = scorer.score_bytes(jpeg_frame(shared_path(*VIDEO), 10))
    assert (frame.width, frame.height) == (854, 480)
    assert frame.faces, "the presenter's face is found"
    face = frame.faces[0]
    x1, y1, x2, y2 = face.box
    assert 0 <= x1 < x2 <= frame.width and 0 <= y1 < y2 <= frame.height
    assert (x2 - x1) > 40  # the presenter's face, ~50 px wide in this 854x480 frame
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in frame.faces]
    assert areas == sorted(areas, reverse=True)  # largest first: the one the page follows
    assert 0.0 <= face.fake_probability <= 1.0
    assert face.verdict in ("fake", "real", "uncertain")
    assert face.emotion in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert frame.fake_probability == face.fake_probability


def test_a_frame_without_a_face_and_a_body_that_is_no_picture(scorer):
    empty = scorer.score(np.full((240, 320, 3), 90, np.uint8))
    assert empty.faces == [] and empty.fake_probability is None
    with pytest.raises(ValueError, match="not a JPEG or PNG"):
        decode_picture(b"plain text, not a picture")
    with pytest.raises(ValueError, match="no picture"):
        decode_picture(b"")


def test_the_service_answers_a_real_frame_within_a_second(scorer):
    server = serve("127.0.0.1", 0, scorer)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
            assert json.loads(response.read())["model"] == "efficientnet"
        data = jpeg_frame(shared_path(*VIDEO), 40)
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            status, body = post(f"{base}/score", data)
            timings.append(time.perf_counter() - started)
            assert status == 200, body
        assert body["faces"] and len(body["faces"][0]["box"]) == 4
        assert 0 <= body["fake_probability"] <= 1
        assert min(timings) < 1.0, timings
        status, body = post(f"{base}/score", b"not a picture")
        assert status == 400 and "not a JPEG" in body["error"]
    finally:
        server.shutdown()
        server.server_close()


def test_play_scores_a_video_every_interval(scorer):
    positions = [position for position, _ in play(str(shared_path(*VIDEO)), scorer, 1.0, realtime=False)]
    assert len(positions) >= 8  # a ~10 s clip, one score per second of video
    assert positions[0] == 0.0
    assert all(0.95 <= b - a <= 1.1 for a, b in itertools.pairwise(positions))
    with pytest.raises(ValueError, match="cannot open"):
        next(play(str(ROOT / "no-such-video.mp4"), scorer))


def test_play_in_real_time_skips_what_it_could_not_keep_up_with(scorer):
    durations = []

    class TimedScorer:
        def score(self, rgb):
            began = time.monotonic()
            try:
                return scorer.score(rgb)
            finally:
                durations.append(time.monotonic() - began)

    started = time.monotonic()
    lags = []
    for position, _ in play(str(shared_path(*VIDEO)), TimedScorer(), 0.1):
        lags.append(time.monotonic() - started - position)
        if position >= 2.0:
            break
    assert time.monotonic() - started >= 1.9  # it waits for playback to reach each frame
    # Each answer is about the frame playing when its scoring began: behind by one scoring
    # (plus decoding), however slow the machine, never by a growing queue of frames.
    assert max(lags) < max(durations) + 0.5, (lags, durations)
    # Where scoring is slower than the 0.1 s interval, frames were skipped, not queued.
    if min(durations) > 0.1:
        assert len(lags) < 2.0 / 0.1


def test_rolling_score_is_the_mean_of_the_last_frames_with_a_face():
    rolling = RollingScore(3)
    assert rolling.add(None) is None
    assert [rolling.add(v) for v in (0.2, 0.4, None, 0.6, 0.8)] == pytest.approx([0.2, 0.3, 0.3, 0.4, 0.6])
