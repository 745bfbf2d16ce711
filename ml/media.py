"""Reading media: what a file is, its facts, evenly sampled video frames, and photos.

Frames and photos come back as RGB uint8 arrays (H, W, 3), upright (rotation metadata and
EXIF orientation applied).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ml.errors import MediaTooLargeError, UnreadableMediaError, UnsupportedMediaError
from ml.formats import DEFAULT_FRAMES, MAX_FRAMES, MIN_FRAMES, container_kind

# Photos above this many pixels are refused (8K is 33 MP). Pillow raises its own
# DecompressionBombError at twice its limit; we set the limit so both agree.
MAX_IMAGE_PIXELS = 80_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

# Videos above this many pixels per frame are refused (4K DCI, 4096x2160, passes). A 52 kB
# 4096x4096 clip would otherwise cost ~50 MB of RAM per sampled frame.
MAX_VIDEO_PIXELS = 4096 * 2160
# Sampled frames above this many pixels (1080p) are scaled down as soon as they are decoded,
# so a 100-frame analysis holds at most ~620 MB of frames whatever the resolution. Faces are
# cropped to 224 px for the model, so nothing the model sees is lost for faces below ~1/5 of
# the frame height. Boxes are reported in the source's pixels (`Frame.scale`).
MAX_ANALYSIS_PIXELS = 1920 * 1080

# Grabbing (decoding without converting) costs ~1 ms a frame at 720p; one seek costs
# ~90 ms here. Seek only across gaps long enough for it to pay (long videos).
SEEK_GAP_FRAMES = 300


@dataclass(frozen=True)
class VideoInfo:
    frame_count: int
    fps: float
    width: int
    height: int
    duration_s: float
    rotation: int


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


@dataclass
class Frame:
    """One decoded frame: its index in the stream, its timestamp and its RGB pixels, which
    are `scale` times the source's size (1.0 unless the source is above 1080p)."""

    index: int
    timestamp_s: float
    image: np.ndarray
    scale: float = 1.0


def sample_indices(frame_count: int, n: int) -> list[int]:
    """N frame indices spread evenly over the whole video: the centre of N equal segments.

    A video with fewer than N frames gives all of its frames.
    """
    if frame_count <= 0:
        return []
    if frame_count <= n:
        return list(range(frame_count))
    step = frame_count / n
    return [min(frame_count - 1, int(step * (i + 0.5))) for i in range(n)]


def detect_media_type(path: str | Path) -> str:
    """'image' or 'video' from the file's content (never its name); raises when it is neither."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableMediaError(f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise UnreadableMediaError(f"{path.name}: the file is empty")
    with path.open("rb") as handle:
        if container_kind(handle.read(64)) == "heif":
            raise UnsupportedMediaError(f"{path.name}: HEIC/HEIF/AVIF photos are not supported; convert to JPEG or PNG")
    try:
        with Image.open(path) as image:
            image.verify()
        return "image"
    except Image.DecompressionBombError as exc:
        raise MediaTooLargeError(f"{path.name}: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        pass
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise UnreadableMediaError(f"{path.name}: not a readable image or video file")
        if capture.get(cv2.CAP_PROP_FRAME_WIDTH) <= 0:
            raise UnsupportedMediaError(f"{path.name}: the file has no video stream (audio only?)")
        return "video"
    finally:
        capture.release()


def probe_video(path: str | Path) -> VideoInfo:
    capture = _open_video(Path(path))
    try:
        return _video_info(capture, Path(path))
    finally:
        capture.release()


def read_frames(path: str | Path, n: int = DEFAULT_FRAMES) -> tuple[VideoInfo, list[Frame]]:
    """Decode N frames spread evenly over the whole video, in one sequential pass.

    The container's frame count can be wrong (variable frame rate, damaged index). When
    the stream ends early, the true count is known and the frames are sampled again from it,
    so the N frames always span the video that can actually be decoded.
    """
    if not MIN_FRAMES <= n <= MAX_FRAMES:
        raise ValueError(f"frames must be between {MIN_FRAMES} and {MAX_FRAMES}, not {n}")
    path = Path(path)
    capture = _open_video(path)
    try:
        info = _video_info(capture, path)
        frames, decoded = _read_indices(capture, sample_indices(info.frame_count, n))
    finally:
        capture.release()
    if decoded < info.frame_count and len(frames) < min(n, decoded):
        capture = _open_video(path)
        try:
            frames, _ = _read_indices(capture, sample_indices(decoded, n))
        finally:
            capture.release()
        info = VideoInfo(
            frame_count=decoded,
            fps=info.fps,
            width=info.width,
            height=info.height,
            duration_s=decoded / info.fps if info.fps else info.duration_s,
            rotation=info.rotation,
        )
    if not frames:
        raise UnreadableMediaError(f"{path.name}: no frame of the video could be decoded")
    return info, frames


def _open_video(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise UnreadableMediaError(f"{path.name}: no such file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise UnreadableMediaError(f"{path.name}: not a readable video file")
    return capture


def _video_info(capture: cv2.VideoCapture, path: Path) -> VideoInfo:
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if math.isfinite(fps) and 0 < fps < 1000 else 0.0
    frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if frame_count <= 0:  # unknown: WebM without a duration reports a huge negative number
        frame_count = _count_frames(path)
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    rotation = int(capture.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
    if rotation in (90, 270):
        # OpenCV applies the rotation when it decodes (CAP_PROP_ORIENTATION_AUTO).
        width, height = height, width
    if frame_count <= 0 or width <= 0:
        raise UnreadableMediaError("the video has no decodable frames")
    if width * height > MAX_VIDEO_PIXELS:
        raise MediaTooLargeError(f"{path.name}: {width}x{height} is more than {_megapixels(MAX_VIDEO_PIXELS)} a frame")
    return VideoInfo(
        frame_count=frame_count,
        fps=fps,
        width=width,
        height=height,
        duration_s=frame_count / fps if fps else 0.0,
        rotation=rotation,
    )


def _count_frames(path: Path) -> int:
    """Count frames by decoding a second, throw-away stream: streams without an index (a
    browser's MediaRecorder WebM) often cannot seek back to the start."""
    capture = _open_video(path)
    count = 0
    try:
        while capture.grab():
            count += 1
    finally:
        capture.release()
    return count


def _read_indices(capture: cv2.VideoCapture, wanted: list[int]) -> tuple[list[Frame], int]:
    """Decode the wanted frame indices (ascending); return them and how far the stream went."""
    frames: list[Frame] = []
    position = 0  # index of the next frame grab() returns
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    for index in wanted:
        if index - position > SEEK_GAP_FRAMES and capture.set(cv2.CAP_PROP_POS_FRAMES, index):
            position = index
        while position <= index:
            if not capture.grab():
                return frames, position
            position += 1
        ok, bgr = capture.retrieve()
        if not ok or bgr is None:
            continue
        height, width = bgr.shape[:2]
        if width * height > MAX_VIDEO_PIXELS:  # a stream larger than its container said
            raise MediaTooLargeError(f"a frame of {width}x{height} is more than {_megapixels(MAX_VIDEO_PIXELS)}")
        milliseconds = capture.get(cv2.CAP_PROP_POS_MSEC)
        timestamp = milliseconds / 1000 if milliseconds > 0 or index == 0 else (index / fps if fps else 0.0)
        scale = min(1.0, math.sqrt(MAX_ANALYSIS_PIXELS / (width * height)))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            scale = size[0] / width
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        frames.append(Frame(index=index, timestamp_s=timestamp, image=rgb, scale=scale))
    return frames, position


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels"


def read_image(path: str | Path) -> tuple[ImageInfo, np.ndarray]:
    """Load a photo as upright RGB uint8 (EXIF orientation applied, alpha flattened on white)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image_format = image.format or "unknown"
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise MediaTooLargeError(
                    f"{path.name}: {image.width}x{image.height} is more than {MAX_IMAGE_PIXELS // 1_000_000} megapixels"
                )
            image.seek(0)  # the first frame of an animated image
            image = ImageOps.exif_transpose(image)
            rgb = _to_rgb(image)
    except Image.DecompressionBombError as exc:
        raise MediaTooLargeError(f"{path.name}: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableMediaError(f"{path.name}: not a readable image ({exc})") from None
    array = np.asarray(rgb, dtype=np.uint8)
    return ImageInfo(width=array.shape[1], height=array.shape[0], format=image_format), array


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits instead of clipping at 255.
        array = np.asarray(image, dtype=np.float32)
        top = float(array.max()) or 1.0
        image = Image.fromarray((array * (255.0 / top)).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")
