"""The web side of live camera scoring: forward a frame to the live scoring service
(`python -m ml.live`, started by `manage.py serve`) and hand back its answer.

The web process never loads a model; the service keeps one loaded. Frames pass through
memory only: nothing here writes them anywhere.
"""

import json
import urllib.error
import urllib.request

from django.conf import settings

# The service answers in ~0.1-0.3 s; a queue of frames behind a busy CPU should fail fast
# (the page simply sends the next frame) rather than pile up.
TIMEOUT_S = 5.0


class LiveUnavailable(Exception):
    """The live scoring service did not answer."""


def score_frame(data: bytes, content_type: str = "image/jpeg") -> tuple[int, dict]:
    """(HTTP status, JSON body) of the service's answer for one encoded frame."""
    request = urllib.request.Request(
        settings.DEEPFAKE_LIVE_URL.rstrip("/") + "/score",
        data=data,
        headers={"Content-Type": content_type},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read())
        except ValueError:
            return error.code, {"error": f"live scoring answered {error.code}"}
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise LiveUnavailable(str(getattr(error, "reason", error))) from error


def check_live() -> dict:
    """Whether the live service answers (reported by /healthz, but not required: uploads work without it)."""
    try:
        with urllib.request.urlopen(settings.DEEPFAKE_LIVE_URL.rstrip("/") + "/health", timeout=2) as response:
            return {"ok": True, **json.loads(response.read())}
    except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as error:
        return {"ok": False, "error": str(getattr(error, "reason", error))}
