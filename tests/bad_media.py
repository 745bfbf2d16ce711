"""Every kind of awkward or hostile input we promise to handle, made on the fly.

Each entry: a file name, how to make its bytes, and what must happen:
("done", None) analysed; ("failed", reason) a failed job with that reason.
"""

import io
import struct
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tests.conftest import shared_path

FFPP = ("data", "videos", "ffpp", "real", "033.mp4")


@dataclass
class Case:
    name: str
    filename: str
    make: Callable[[Path], bytes]
    outcome: str  # "done" or "failed"
    reason: str | None = None
    content_type: str | None = None


def _face_photo() -> Image.Image:
    return Image.open(next(shared_path("data", "images", "lfw_faceswap", "test", "real").glob("*.jpg"))).convert("RGB")


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _frames_of(count: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(shared_path(*FFPP)))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if size else frame)
    capture.release()
    return frames


def _video(tmp: Path, frames: list[np.ndarray], fps: float = 25.0, fourcc: str = "mp4v", suffix: str = ".mp4") -> bytes:
    path = tmp / f"made{suffix}"
    height, width = frames[0].shape[:2] if frames else (120, 160)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path.read_bytes()


def long_video(tmp: Path) -> bytes:
    """Ten minutes at 5 fps and 320x180: 3,000 frames, of a real face."""
    base = _frames_of(50, (320, 180))
    path = tmp / "long.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (320, 180))
    for i in range(3000):
        writer.write(base[i % len(base)])
    writer.release()
    return path.read_bytes()


def uhd_video(tmp: Path) -> bytes:
    return _video(tmp, [cv2.resize(f, (3840, 2160)) for f in _frames_of(12)])


def ten_faces(tmp: Path) -> bytes:
    folder = shared_path("data", "images", "lfw_faceswap", "test", "real")
    tiles = [Image.open(p).convert("RGB").resize((200, 200)) for p in sorted(folder.glob("*.jpg"))[:10]]
    sheet = Image.new("RGB", (1000, 400), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % 5) * 200, (i // 5) * 200))
    return _encode(sheet, "JPEG", quality=92)


def exif_rotated(tmp: Path) -> bytes:
    stored = _face_photo().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(stored, "JPEG", exif=exif, quality=95)


def photo_8k(tmp: Path) -> bytes:
    canvas = Image.new("RGB", (7680, 4320), (90, 110, 130))
    canvas.paste(_face_photo().resize((1600, 1600)), (3000, 1300))
    return _encode(canvas, "JPEG", quality=85)


def bomb(tmp: Path) -> bytes:
    return _encode(Image.new("L", (12000, 12000)), "PNG", optimize=True)


def sixteen_bit(tmp: Path) -> bytes:
    grey = np.asarray(_face_photo().convert("L"), np.uint16) * 257
    return _encode(Image.fromarray(grey), "PNG")


def alpha_png(tmp: Path) -> bytes:
    image = _face_photo().convert("RGBA")
    image.putalpha(200)
    return _encode(image, "PNG")


def animated_gif(tmp: Path) -> bytes:
    first = _face_photo()
    return _encode(first, "GIF", save_all=True, append_images=[first.rotate(10), first.rotate(20)], duration=100)


def wav_audio(tmp: Path) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(struct.pack("<8000h", *([0, 1000] * 4000)))
    return buffer.getvalue()


def heic_like(tmp: Path) -> bytes:
    # The ISO-BMFF header of a HEIC photo: an 'ftyp' box with brand 'heic'.
    return struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"heic", 0, b"mif1", b"heic") + b"\x00" * 2000


def truncated_mp4(tmp: Path) -> bytes:
    data = shared_path(*FFPP).read_bytes()
    return data[: len(data) // 2]


def garbage_frames(tmp: Path) -> bytes:
    data = bytearray(shared_path(*FFPP).read_bytes())
    start = len(data) // 10
    rng = np.random.default_rng(0)
    data[start:] = rng.integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
    return bytes(data)


def polyglot(tmp: Path) -> bytes:
    # A JPEG with a ZIP archive appended: still a valid photo.
    archive = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("payload.html", "<script>alert(1)</script>")
    return _encode(_face_photo(), "JPEG") + archive.getvalue()


CASES = [
    Case("zero bytes", "empty.mp4", lambda t: b"", "failed", "unsupported_type"),
    Case("text named .mp4", "notes.mp4", lambda t: b"meeting notes, not a video\n" * 40, "failed", "unsupported_type"),
    Case("text named .jpg", "notes.jpg", lambda t: b"meeting notes, not a photo\n" * 40, "failed", "unsupported_type"),
    Case(
        "html named .mp4",
        "page.mp4",
        lambda t: b"<!doctype html><html><script>alert(1)</script></html>",
        "failed",
        "unsupported_type",
    ),
    Case("truncated mp4", "half.mp4", truncated_mp4, "failed", "unreadable_media"),
    Case("mp4 header, garbage frames", "garbled.mp4", garbage_frames, "failed", "unreadable_media"),
    Case("audio only (wav)", "speech.mp4", wav_audio, "failed", "unsupported_type"),
    Case("video with 0 frames", "zero-frames.mp4", lambda t: _video(t, []), "failed", "unreadable_media"),
    Case("video with 1 frame", "one-frame.mp4", lambda t: _video(t, _frames_of(1)), "done"),
    Case("10-minute video", "ten-minutes.mp4", long_video, "done"),
    Case("4K video", "uhd.mp4", uhd_video, "done"),
    Case(
        "MJPEG AVI", "clip.avi", lambda t: _video(t, _frames_of(12, (640, 360)), fourcc="MJPG", suffix=".avi"), "done"
    ),
    Case("8K photo", "huge.jpg", photo_8k, "done"),
    Case("decompression bomb", "bomb.png", bomb, "failed", "too_large"),
    Case("CMYK JPEG", "cmyk.jpg", lambda t: _encode(_face_photo().convert("CMYK"), "JPEG"), "done"),
    Case("16-bit PNG", "deep.png", sixteen_bit, "done"),
    Case("PNG with alpha", "alpha.png", alpha_png, "done"),
    Case("animated GIF", "moving.gif", animated_gif, "done"),
    Case("WebP", "photo.webp", lambda t: _encode(_face_photo(), "WEBP"), "done"),
    Case("BMP", "photo.bmp", lambda t: _encode(_face_photo(), "BMP"), "done"),
    Case("TIFF", "photo.tiff", lambda t: _encode(_face_photo(), "TIFF"), "done"),
    Case("HEIC (not supported)", "phone.heic", heic_like, "failed", "unsupported_type"),
    Case("EXIF-rotated photo", "rotated.jpg", exif_rotated, "done"),
    Case(
        "photo with no face",
        "wall.jpg",
        lambda t: _encode(Image.new("RGB", (640, 480), (120, 140, 160)), "JPEG"),
        "failed",
        "no_face",
    ),
    Case("photo with 10 faces", "team.jpg", ten_faces, "done"),
    Case("path traversal name", "../../etc/passwd.mp4", lambda t: _video(t, _frames_of(12)), "done"),
    Case("unicode name", "vidéo-入力-😀.mp4", lambda t: _video(t, _frames_of(12)), "done"),
    Case("300-character name", "a" * 296 + ".jpg", lambda t: _encode(_face_photo(), "JPEG"), "done"),
    Case("wrong content type", "clip.mp4", lambda t: _video(t, _frames_of(12)), "done", content_type="image/png"),
    Case("polyglot JPEG+ZIP", "polyglot.jpg", polyglot, "done"),
]
