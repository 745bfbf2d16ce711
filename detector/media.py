"""What an upload is, told from its first bytes, in the web process (no OpenCV, no torch).

The worker decides for certain by decoding; this only lets the upload page refuse files
that are plainly neither a photo nor a video, before a job is queued.
"""

from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from ml.formats import container_kind


def sniff_media_type(handle: BinaryIO) -> str | None:
    """'image', 'video', or None when the content is neither. Leaves the handle at 0."""
    handle.seek(0)
    head = handle.read(64)
    handle.seek(0)
    kind = container_kind(head)
    if kind == "video":
        return "video"
    if kind == "heif":
        return None  # HEIC/AVIF photos: not decodable here
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
