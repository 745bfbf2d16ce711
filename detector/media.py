"""What an upload is, told from its first bytes, in the web process (no OpenCV, no torch).

The worker decides for certain by decoding; this only lets the upload page refuse files
that are plainly neither a photo nor a video, before a job is queued.
"""

from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

# (offset, signature) of containers OpenCV/FFmpeg decode video from.
VIDEO_SIGNATURES = [
    (4, b"ftyp"),  # MP4, MOV, M4V, 3GP
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska, WebM
    (0, b"RIFF"),  # AVI (checked further below)
    (0, b"\x00\x00\x01\xba"),  # MPEG program stream
    (0, b"\x00\x00\x01\xb3"),  # MPEG video
    (0, b"FLV"),
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
]


def sniff_media_type(handle: BinaryIO) -> str | None:
    """'image', 'video', or None when the content is neither. Leaves the handle at 0."""
    handle.seek(0)
    head = handle.read(64)
    handle.seek(0)
    for offset, signature in VIDEO_SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            if signature == b"RIFF" and head[8:12] != b"AVI ":
                break  # RIFF WebP or WAV: not a video
            return "video"
    try:
        with Image.open(handle) as image:
            image.verify()
        return "image"
    except Image.DecompressionBombError:
        return "image"  # an image, too big: the worker refuses it with its reason
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    finally:
        handle.seek(0)
