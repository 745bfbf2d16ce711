"""Media files in the web process (no OpenCV, no torch): what an upload is, told from its
first bytes, and stored files served back to their owner.

The worker decides for certain by decoding; this only lets the upload page refuse files
that are plainly neither a photo nor a video, before a job is queued.
"""

from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.http import FileResponse, Http404
from PIL import Image, UnidentifiedImageError

from ml.formats import container_kind

SUPPORTED = (
    "supported: JPEG, PNG, WebP, BMP, TIFF, GIF photos; MP4, MOV, MKV, WebM, AVI videos; "
    "HEIC/AVIF photos must be converted first"
)


def unsupported_message(name: str) -> str:
    return f"“{name}” is not a photo or video this service can read ({SUPPORTED})."


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


def media_response(relative: str, filename: str, attachment: bool = False) -> FileResponse:
    """A stored file, with a safe content type and no sniffing (the middleware sets nosniff)."""
    if not relative:
        raise Http404("no such file")
    path = Path(settings.MEDIA_ROOT) / relative
    if not path.is_file():
        raise Http404("no such file")
    response = FileResponse(path.open("rb"), as_attachment=attachment, filename=filename)
    if attachment:
        # An original is served as bytes, whatever its name says (`page.html`, `image.svg`).
        response["Content-Type"] = "application/octet-stream"
    elif path.suffix.lower() in (".jpg", ".jpeg"):
        response["Content-Type"] = "image/jpeg"
    response["Cache-Control"] = "private, max-age=3600"
    return response
