"""Refuse uploads over the size limit before their body is read (413); security headers."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

# Room for the multipart envelope and the form's other fields.
ENVELOPE_BYTES = 1024 * 1024


def limit_bytes() -> int:
    return settings.DEEPFAKE_MAX_UPLOAD_MB * 1024 * 1024


class UploadSizeLimitMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit_bytes() + ENVELOPE_BYTES:
            message = f"The upload is larger than the limit of {settings.DEEPFAKE_MAX_UPLOAD_MB} MB."
            if request.path.startswith("/api/"):
                response = JsonResponse({"detail": message}, status=413)
            else:
                body = render_to_string("413.html", {"message": message}, request=request)
                response = HttpResponse(body, status=413)
            # The body was not read: ask the client not to keep sending it on this connection.
            response["Connection"] = "close"
            return response
        return self.get_response(request)


class SizeLimitUploadHandler(FileUploadHandler):
    """Stops an upload that grows past the limit without announcing its length (chunked)."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > limit_bytes():
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


class SecurityHeadersMiddleware:
    """The Content-Security-Policy (`DEEPFAKE_CSP`) on every response that has none."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.DEEPFAKE_CSP)
        return response
