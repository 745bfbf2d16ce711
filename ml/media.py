"""Reading media: what a file is, its facts, evenly sampled video frames, and photos.

Frames and photos come back as RGB uint8 arrays (H, W, 3), upright (rotation metadata and
EXIF orientation applied).
"""

from __future__ import annotations

import bisect
import copy
import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
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

# Jump to the keyframe before the next sample only when that skips decoding at least this many
# frames (long videos): a seek also throws away the frames in flight in the decoder's threads.
SEEK_GAP_FRAMES = 60


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
    path = Path(path)
    with _open_video(path) as container:
        stream = container.streams.video[0]
        index = _index(stream, container)
    with _open_video(path) as container:
        return _video_info(path, index, _first_rotation(container, container.streams.video[0]))


def read_frames(path: str | Path, n: int = DEFAULT_FRAMES, threads: int = 0) -> tuple[VideoInfo, list[Frame]]:
    """Decode N frames spread evenly over the whole video, with `threads` decoding threads
    (0: one per core).

    The frames are counted from the container's packets (one demuxing pass, no decoding), so
    a wrong or missing frame count in the header (variable frame rate, a damaged index, a
    browser's WebM) does not matter. Then the stream is decoded once, in order, skipping what
    no sampled frame needs: frames nothing refers to (H.264/HEVC B-frames, ~40 % of an FF++
    clip) unless sampled, and whole groups of pictures between distant samples (a seek to the
    keyframe before the next sample). The frames are those a full decode gives, pixel for
    pixel. When frames at the end cannot be decoded (a truncated or damaged file), the N
    frames are sampled again over the part that can.
    """
    reader = FrameReader(path, n)
    frames = sorted(reader.frames(threads), key=lambda frame: frame.index)
    decodable = max((frame.index for frame in frames), default=-1) + 1
    if len(frames) < len(reader.timestamps) and 0 < decodable < reader.frame_count:
        reader = reader.first(decodable)
        frames = sorted(reader.frames(threads), key=lambda frame: frame.index)
    if not frames:
        raise UnreadableMediaError(f"{reader.path.name}: no frame of the video could be decoded")
    return reader.info(), frames


class FrameReader:
    """`read_frames` in two steps, for a caller that works on frames while later ones are
    decoded: which frames it samples and their timestamps first (one demuxing pass; raises as
    `read_frames` does for a file that is not a video), then the frames as they are decoded.

    It makes one pass and does not sample again: a damaged file can give fewer frames than
    `timestamps` has, where `read_frames` samples the part that decodes.
    """

    def __init__(self, path: str | Path, n: int = DEFAULT_FRAMES) -> None:
        if not MIN_FRAMES <= n <= MAX_FRAMES:
            raise ValueError(f"frames must be between {MIN_FRAMES} and {MAX_FRAMES}, not {n}")
        self.path = Path(path)
        with _open_video(self.path) as container:
            stream = container.streams.video[0]
            _check_size(self.path, stream.codec_context.width, stream.codec_context.height)
            index = _index(stream, container)
            self._time_base = float(stream.time_base or 0)
        if not index.pts:
            raise UnreadableMediaError(f"{self.path.name}: the video has no decodable frames")
        self._n = n
        self._sample(index)

    def first(self, count: int) -> FrameReader:
        """A reader of N frames sampled from the video's first `count` frames, without another
        demuxing pass."""
        reader = copy.copy(self)
        reader._sample(self._index.first(count))
        return reader

    def _sample(self, index: _Index) -> None:
        self._index = index
        self._wanted = sample_indices(len(index.pts), self._n)
        self._rotation = 0
        self.timestamps = [self._seconds(i, index.pts[i]) for i in self._wanted]

    @property
    def frame_count(self) -> int:
        return len(self._index.pts)

    def frames(self, threads: int = 0) -> Iterator[Frame]:
        """The sampled frames, in order, as they are decoded with `threads` decoding threads (0:
        one per core); a frame that does not decode is left out."""
        import av

        index, wanted = self._index, self._wanted
        wanted_pts = {index.pts[i] for i in wanted}
        keyframes = [i for i, key in enumerate(index.keyframe) if key]
        pending = set(wanted)
        with _open_video(self.path, threads) as container:
            stream = container.streams.video[0]
            context = stream.codec_context
            packets = container.demux(stream)
            reached = -1  # display position decoding has reached (or sought to)
            shown = -1  # frames output so far, for streams without timestamps
            while True:
                ahead = bisect.bisect_right(wanted, reached)
                if ahead == len(wanted):
                    break
                target = wanted[ahead]
                # Jump to the keyframe before the next sample when it lies far ahead of where decoding is.
                start = keyframes[bisect.bisect_right(keyframes, target) - 1] if keyframes else 0
                if start - reached > SEEK_GAP_FRAMES:
                    container.seek(index.pts[start], stream=stream, backward=True)
                    context.flush_buffers()
                    packets = container.demux(stream)
                    reached = start - 1
                packet = next(packets, None)
                try:
                    if packet is None:
                        decoded = context.decode(None)
                    else:
                        pts = packet.pts if packet.pts is not None else packet.dts
                        # A frame no other frame refers to is decoded only if it is sampled.
                        context.skip_frame = "DEFAULT" if pts is None or pts in wanted_pts else "NONREF"
                        decoded = context.decode(packet)
                except av.FFmpegError:
                    decoded = []  # a damaged packet: the frames that need it are missing
                for frame in decoded:
                    shown += 1
                    i = shown if frame.pts is None else bisect.bisect_left(index.pts, frame.pts)
                    known = frame.pts is None or (i < len(index.pts) and index.pts[i] == frame.pts)
                    reached = max(reached, i if known else i - 1)
                    if not known or i not in pending:
                        continue
                    pending.remove(i)
                    self._rotation = _clockwise(frame)
                    yield _frame(frame, i, self._seconds(i, frame.pts))
                if packet is None:
                    break

    def info(self) -> VideoInfo:
        """The video's facts; its rotation is known once a frame is decoded."""
        return _video_info(self.path, self._index, self._rotation)

    def _seconds(self, i: int, pts: int | None) -> float:
        if pts is not None and self._time_base:
            return (pts - self._index.pts[0]) * self._time_base
        return i / (self._index.fps or 1)


class BackgroundDecoding:
    """A `FrameReader`'s frames decoded on a thread of their own while the caller works on
    those already decoded (`ml.inference`: on two cores, detecting faces in 20 frames of 720p
    beside decoding them took 0.56 s, one after the other 0.84 s).

        with BackgroundDecoding(reader, threads=1) as decoding:
            for frame in decoding:  # in order, as each is decoded
                ...

    Iterating raises what decoding raised. `frames` holds the frames handed out so far,
    `waiting()` how many more are there now, `done` whether decoding has ended, `started` when
    it started (`time.perf_counter()`) and `seconds` how long it took. Leaving the block stops
    decoding and waits for its thread.
    """

    def __init__(self, reader: FrameReader, threads: int = 0) -> None:
        self.frames: list[Frame] = []
        self.started = 0.0
        self.seconds = 0.0
        self._reader = reader
        self._threads = threads
        self._arrived: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._decode, name="decoding", daemon=True)

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def waiting(self) -> int:
        """How many decoded frames can be taken now without waiting for the decoder."""
        return self._arrived.qsize()

    def __enter__(self) -> BackgroundDecoding:
        self.started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def __iter__(self) -> Iterator[Frame]:
        while (item := self._arrived.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            self.frames.append(item)
            yield item

    def _decode(self) -> None:
        try:
            for frame in self._reader.frames(self._threads):
                if self._stop.is_set():
                    break
                self._arrived.put(frame)
        except BaseException as exc:  # handed to the caller's thread, raised where it iterates
            self._arrived.put(exc)
        finally:
            self.seconds = time.perf_counter() - self.started
            self._finished.set()
            self._arrived.put(None)


@dataclass(frozen=True)
class _Index:
    """A video stream's frames in display order: their timestamps (stream time base) and which
    are keyframes, where decoding can start; and the stream's coded size and frame rate."""

    pts: list[int]
    keyframe: list[bool]
    width: int
    height: int
    fps: float

    def first(self, count: int) -> _Index:
        return replace(self, pts=self.pts[:count], keyframe=self.keyframe[:count])


def _open_video(path: Path, threads: int = 0):
    import av  # PyAV: FFmpeg's demuxers and decoders, with frame threads and frame skipping

    if not path.is_file():
        raise UnreadableMediaError(f"{path.name}: no such file")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError):
        raise UnreadableMediaError(f"{path.name}: not a readable video file") from None
    if not container.streams.video:
        container.close()
        raise UnsupportedMediaError(f"{path.name}: the file has no video stream (audio only?)")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads
    stream.thread_count = threads  # 0: one per core
    return container


def _index(stream, container) -> _Index:
    """Every frame's timestamp, from one pass over the packets. Packets without timestamps
    (some AVI and raw streams) are numbered in order."""
    import av

    timestamps: list[tuple[int, bool]] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:  # discarded: decoded for reference, never shown
                continue
            pts = packet.pts if packet.pts is not None else packet.dts
            timestamps.append((len(timestamps) if pts is None else pts, packet.is_keyframe))
    except av.FFmpegError:
        pass  # a damaged tail: the frames before it are still there
    timestamps.sort()
    fps = float(stream.average_rate or stream.guessed_rate or 0)
    return _Index(
        pts=[pts for pts, _ in timestamps],
        keyframe=[key for _, key in timestamps],
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        fps=fps if math.isfinite(fps) and 0 < fps < 1000 else 0.0,
    )


def _frame(decoded, index: int, timestamp: float) -> Frame:
    """A decoded frame as upright RGB, scaled down to MAX_ANALYSIS_PIXELS when larger."""
    width, height = decoded.width, decoded.height
    if width * height > MAX_VIDEO_PIXELS:  # a stream larger than its container said
        raise MediaTooLargeError(f"a frame of {width}x{height} is more than {_megapixels(MAX_VIDEO_PIXELS)}")
    rgb = decoded.to_ndarray(format="rgb24")
    if decoded.rotation % 360:
        rgb = np.ascontiguousarray(np.rot90(rgb, decoded.rotation // 90))  # counterclockwise, as the matrix says
    height, width = rgb.shape[:2]
    scale = min(1.0, math.sqrt(MAX_ANALYSIS_PIXELS / (width * height)))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        scale = size[0] / width
    return Frame(index=index, timestamp_s=timestamp, image=rgb, scale=scale)


def _first_rotation(container, stream) -> int:
    import av

    try:
        for frame in container.decode(stream):
            return _clockwise(frame)
    except av.FFmpegError:
        pass
    return 0


def _clockwise(frame) -> int:
    """The clockwise rotation (degrees) that shows a decoded frame upright: its display matrix
    turns it counterclockwise (`frame.rotation`)."""
    return (-frame.rotation) % 360


def _check_size(path: Path, width: int, height: int) -> None:
    if width * height > MAX_VIDEO_PIXELS:
        raise MediaTooLargeError(f"{path.name}: {width}x{height} is more than {_megapixels(MAX_VIDEO_PIXELS)} a frame")


def _video_info(path: Path, index: _Index, rotation: int) -> VideoInfo:
    width, height = (index.height, index.width) if rotation in (90, 270) else (index.width, index.height)
    if not index.pts or width <= 0:
        raise UnreadableMediaError(f"{path.name}: the video has no decodable frames")
    frame_count = len(index.pts)
    return VideoInfo(
        frame_count=frame_count,
        fps=index.fps,
        width=width,
        height=height,
        duration_s=frame_count / index.fps if index.fps else 0.0,
        rotation=rotation,
    )


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
