"""Media files in the web process (no OpenCV, no torch): what an upload is, told from its
first bytes, and stored files served back to their owner.

The worker decides for certain by decoding; this only lets the upload page refuse files
that are plainly neither a photo nor a video, before a job is queued.
"""

import re
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from PIL import Image, UnidentifiedImageError

from detector.models import FaceResult, FrameResult
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


# What a browser plays, told from the container's first bytes (never from the file name).
def playable_type(path: Path) -> str | None:
    with path.open("rb") as handle:
        head = handle.read(12)
    if head[4:8] == b"ftyp":
        return "video/mp4"  # MP4 and MOV (H.264 plays in browsers either way)
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    return None


def playback_response(request, relative: str) -> HttpResponse:
    """A stored video for the page's player: inline, with its sniffed type, byte ranges (so the
    player can seek), and a sandboxing CSP (the file is the user's, not ours)."""
    path = Path(settings.MEDIA_ROOT) / relative if relative else None
    if path is None or not path.is_file() or (content_type := playable_type(path)) is None:
        raise Http404("no playable video")
    size = path.stat().st_size
    start, end = 0, size - 1
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", request.headers.get("Range", ""))
    if match and (match[1] or match[2]):
        if match[1]:
            start, end = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1)
        else:  # the last N bytes
            start = max(0, size - int(match[2]))
        if start > end:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
    ranged = bool(match and (match[1] or match[2]))
    response = StreamingHttpResponse(_read_range(path, start, end - start + 1), status=206 if ranged else 200)
    response["Content-Type"] = content_type
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    if response.status_code == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _read_range(path: Path, start: int, length: int):
    with path.open("rb") as handle:
        handle.seek(start)
        while length > 0:
            data = handle.read(min(1 << 16, length))
            if not data:
                return
            length -= len(data)
            yield data


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


def derived_image(analysis, kind: str, item: int) -> FileResponse:
    """A frame thumbnail ("thumbnail"), face crop ("crop") or heatmap ("heatmap") of an
    analysis, for the page and the API alike; the caller has checked that the user may see it."""

    if kind == "thumbnail":
        frame = get_object_or_404(FrameResult, analysis=analysis, pk=item)
        return media_response(frame.thumbnail.name, f"frame-{frame.index}.jpg")
    if kind in ("crop", "heatmap"):
        face = get_object_or_404(FaceResult, analysis=analysis, pk=item)
        if not getattr(face, kind).name:
            raise Http404("no such file")
        return media_response(getattr(face, kind).name, f"face-{face.pk}-{kind}.jpg")
    raise Http404("no such file")
