import threading

import cv2
import numpy as np
import pytest
from PIL import Image

from ml.errors import MediaTooLargeError, UnreadableMediaError
from ml.media import (
    BackgroundDecoding,
    FrameReader,
    detect_media_type,
    probe_video,
    read_frames,
    read_image,
    sample_indices,
)
from tests.conftest import shared_path
from tests.media_factory import write_h264, write_video


def test_sample_indices_spread_over_the_whole_video():
    indices = sample_indices(300, 10)
    assert indices == sorted(set(indices))
    assert len(indices) == 10
    assert indices[0] < 30 and indices[-1] >= 270  # first and last tenth are both covered
    gaps = np.diff(indices)
    assert gaps.max() - gaps.min() <= 1


def test_sample_indices_of_a_short_video_are_all_its_frames():
    assert sample_indices(7, 10) == list(range(7))
    assert sample_indices(0, 10) == []


def test_read_frames_of_a_real_video_are_even_and_in_range():
    path = shared_path("data", "videos", "ffpp", "real", "033.mp4")
    info, frames = read_frames(path, 20)
    assert len(frames) == 20
    indices = [f.index for f in frames]
    assert indices == sample_indices(info.frame_count, 20)
    assert indices[-1] < info.frame_count
    assert indices[-1] > 0.9 * info.frame_count  # not the first 20 frames
    timestamps = [f.timestamp_s for f in frames]
    assert timestamps == sorted(timestamps)
    assert timestamps[-1] == pytest.approx(indices[-1] / info.fps, abs=0.05)
    assert frames[0].image.shape == (info.height, info.width, 3)


def test_read_frames_decodes_the_right_frames(tmp_path):
    # Frame i of this video has grey level 7*i: the decoded frames must be the sampled ones.
    path = write_video(tmp_path / "grey.mp4", frames=30)
    _, frames = read_frames(path, 10)
    for frame in frames:
        assert abs(float(frame.image.mean()) - (frame.index * 7) % 256) < 4


def opencv_frames(path, indices: list[int]) -> list[np.ndarray]:
    """The frames at `indices` as OpenCV decodes them, every frame in turn: a reference
    decoder that skips nothing."""
    capture = cv2.VideoCapture(str(path))
    frames, i = [], 0
    while i <= indices[-1]:
        ok, bgr = capture.read()
        assert ok
        if i in indices:
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        i += 1
    capture.release()
    return frames


def test_skipping_frames_loses_no_pixel():
    # An FF++ clip has B-frames nothing refers to, and read_frames skips those it does not
    # sample (at 32 frames, some of the sampled ones are such B-frames).
    path = shared_path("data", "videos", "ffpp", "fake", "Deepfakes_044_945.mp4")
    info, frames = read_frames(path, 32)
    assert [f.index for f in frames] == sample_indices(info.frame_count, 32)
    for frame, expected in zip(frames, opencv_frames(path, [f.index for f in frames]), strict=True):
        assert np.array_equal(frame.image, expected)


def test_a_long_video_is_read_by_jumping_to_keyframes(tmp_path):
    path = write_h264(tmp_path / "long.mp4", frames=1500, keyframe_every=50)
    info, frames = read_frames(path, 10)
    assert info.frame_count == 1500 and info.fps == 25
    assert [f.index for f in frames] == sample_indices(1500, 10)
    for frame in frames:
        assert abs(float(frame.image[60:, 60:].mean()) - (frame.index * 7) % 256) < 4
        assert frame.timestamp_s == pytest.approx(frame.index / 25)


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_a_rotated_video_is_read_upright_as_opencv_shows_it(tmp_path, rotation):
    path = write_h264(tmp_path / "phone.mp4", frames=12, size=(96, 64), rotation=rotation)
    info, frames = read_frames(path, 10)
    capture = cv2.VideoCapture(str(path))  # OpenCV applies the display matrix when it decodes
    ok, upright = capture.read()
    capture.release()
    assert ok
    assert (info.width, info.height) == (upright.shape[1], upright.shape[0])
    assert info.rotation == probe_video(path).rotation == (-rotation) % 360
    assert frames[0].image.shape == upright.shape
    assert np.abs(frames[0].image.astype(int) - cv2.cvtColor(upright, cv2.COLOR_BGR2RGB)).max() <= 2


def test_a_video_shorter_than_n_gives_all_its_frames(tmp_path):
    path = write_video(tmp_path / "short.mp4", frames=5)
    info, frames = read_frames(path, 10)
    assert info.frame_count == 5
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]


def test_frame_count_out_of_range_is_refused(tmp_path):
    path = write_video(tmp_path / "v.mp4", frames=5)
    for n in (0, 9, 101, -1):
        with pytest.raises(ValueError, match="between 10 and 100"):
            read_frames(path, n)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is plain text, not a video\n" * 20, b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 5000],
    ids=["empty", "text", "header-then-garbage"],
)
def test_unreadable_files_raise_a_typed_error(tmp_path, content):
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(UnreadableMediaError):
        detect_media_type(path)
    with pytest.raises(UnreadableMediaError):
        read_frames(path, 10)


def test_a_truncated_video_still_gives_its_decodable_frames(tmp_path):
    source = shared_path("data", "videos", "ffpp", "real", "033.mp4")
    data = source.read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    try:
        info, frames = read_frames(path, 10)
    except UnreadableMediaError:
        return  # the index (moov) may be at the end: then nothing is decodable, and it says so
    assert 0 < len(frames) <= 10
    assert all(f.index < info.frame_count for f in frames)


def test_media_type_is_told_by_content_not_name(tmp_path):
    photo = shared_path("data", "images", "lfw_faceswap", "test", "real").glob("*.jpg").__next__()
    renamed = tmp_path / "looks-like-a-video.mp4"
    renamed.write_bytes(photo.read_bytes())
    assert detect_media_type(renamed) == "image"
    video = write_video(tmp_path / "clip.mp4", frames=3)
    for name in ("named.jpg", "no-extension"):
        copy = tmp_path / name
        copy.write_bytes(video.read_bytes())
        assert detect_media_type(copy) == "video"


def test_probe_video_reports_facts():
    info = probe_video(shared_path("data", "videos", "ffpp", "real", "033.mp4"))
    assert info.fps == pytest.approx(25.0, abs=0.5)
    assert info.frame_count > 200
    assert info.duration_s == pytest.approx(info.frame_count / info.fps)
    assert (info.width, info.height) == (854, 480)


def test_read_image_applies_exif_orientation(tmp_path):
    source = next(shared_path("data", "images", "lfw_faceswap", "test", "real").glob("*.jpg"))
    upright = np.asarray(Image.open(source).convert("RGB"))
    # Store the pixels rotated and tell viewers, via EXIF, to rotate them back.
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    _, image = read_image(path)
    assert image.shape == upright.shape
    assert np.abs(image.astype(int) - upright.astype(int)).mean() < 6


@pytest.mark.parametrize("mode", ["CMYK", "RGBA", "I;16", "P", "L"])
def test_read_image_converts_every_mode_to_rgb(tmp_path, mode):
    rgb = Image.new("RGB", (64, 48), (200, 120, 40))
    image = rgb.convert(mode) if mode != "I;16" else Image.new("I;16", (64, 48), 40000)
    path = tmp_path / ("photo.tif" if mode in ("CMYK",) else "photo.png")
    image.save(path)
    info, array = read_image(path)
    assert array.shape == (48, 64, 3)
    assert array.dtype == np.uint8
    assert (info.width, info.height) == (64, 48)


def test_a_decompression_bomb_is_refused_without_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("L", (12000, 12000)).save(path, optimize=True)  # 144 MP of zeros, a few hundred KB
    assert path.stat().st_size < 2_000_000
    with pytest.raises(MediaTooLargeError):
        read_image(path)


def test_frames_decoded_in_the_background_are_those_read_frames_gives():
    path = shared_path("data", "videos", "ffpp", "fake", "Deepfakes_044_945.mp4")
    info, expected = read_frames(path, 20)
    reader = FrameReader(path, 20)
    assert reader.timestamps == [frame.timestamp_s for frame in expected]  # known before decoding
    with BackgroundDecoding(reader, threads=1) as decoding:
        got = list(decoding)
    assert decoding.done and decoding.frames == got and decoding.seconds > 0
    assert [frame.index for frame in got] == [frame.index for frame in expected]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, expected, strict=True))
    assert reader.info() == info


def test_background_decoding_raises_its_error_where_the_frames_are_taken():
    class Failing:
        def frames(self, threads):
            yield "a frame"
            raise MediaTooLargeError("a frame of 9000x9000 is more than 8.8 megapixels")

    with BackgroundDecoding(Failing()) as decoding:
        taken = []
        with pytest.raises(MediaTooLargeError, match="9000x9000"):
            for frame in decoding:
                taken.append(frame)
    assert taken == ["a frame"] and decoding.done


def test_leaving_background_decoding_early_stops_its_thread():
    path = shared_path("data", "videos", "ffpp", "real", "033.mp4")
    with BackgroundDecoding(FrameReader(path, 100), threads=1) as decoding:
        for _ in decoding:
            break
    assert decoding.done
    assert not [thread for thread in threading.enumerate() if thread.name == "decoding"]
