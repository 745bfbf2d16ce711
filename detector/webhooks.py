"""Webhooks: when a job ends, POST its summary to the `callback_url` given with it.

The body is JSON. Two headers let the receiver check it came from us and is fresh:

    X-Deepfake-Timestamp: 1763780000
    X-Deepfake-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with your webhook secret>

Each user's secret is shown on the API token page and at GET /api/v1/webhook-secret/.
Delivery is a task of its own, so it never holds up an analysis: each attempt waits at most
`TIMEOUT_S`, and a failed attempt is tried again later (after 10 s, 60 s, 5 min, 30 min) by
the queue's scheduler, not by sleeping in a worker.

Targets must be http(s). Private, loopback and link-local addresses are refused unless
`DEEPFAKE_WEBHOOK_ALLOW_PRIVATE` is set (a callback must not reach into the server's network).
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

log = logging.getLogger(__name__)

TIMEOUT_S = 5
BACKOFF_S = [10, 60, 300, 1800]


class WebhookTargetError(ValueError):
    """The callback URL may not be called (scheme, host or address not allowed)."""


def user_secret(user_id: int) -> str:
    """A per-user signing secret derived from SECRET_KEY (stable, nothing stored)."""
    return hmac.new(settings.SECRET_KEY.encode(), f"webhook:{user_id}".encode(), hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, tolerance_s: int = 300) -> bool:
    """What a receiver does (shown here for the docs and the tests)."""
    fresh = abs(time.time() - int(timestamp)) <= tolerance_s
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def check_target(url: str) -> None:
    """Raise WebhookTargetError unless the URL is http(s) to an allowed address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookTargetError("the callback URL must be an http:// or https:// URL")
    if settings.DEEPFAKE_WEBHOOK_ALLOW_PRIVATE:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except socket.gaierror:
        raise WebhookTargetError(f"the callback host {parts.hostname!r} does not resolve") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            raise WebhookTargetError(
                f"the callback host {parts.hostname!r} is a private or local address ({ip}); "
                "set DEEPFAKE_WEBHOOK_ALLOW_PRIVATE=1 to allow it"
            )


def payload(analysis) -> dict:
    return {
        "event": "analysis.finished",
        "id": str(analysis.pk),
        "status": analysis.status,
        "verdict": analysis.verdict or None,
        "fake_probability": analysis.fake_probability,
        "confidence": analysis.confidence,
        "model": analysis.model_name or None,
        "model_version": analysis.model_version or None,
        "failure_reason": analysis.failure_reason or None,
        "failure_message": analysis.failure_message or None,
        "file": {"name": analysis.upload.original_name, "sha256": analysis.upload.sha256},
        "finished_at": analysis.finished_at.isoformat() if analysis.finished_at else None,
    }


def schedule_delivery(analysis) -> None:
    """Queue the first delivery attempt of a finished job's webhook, if it has one."""
    if analysis.callback_url:
        from django_q.tasks import async_task

        async_task("detector.webhooks.deliver", str(analysis.pk), 1, task_name=f"webhook {analysis.pk}")


def deliver(analysis_id: str, attempt: int = 1) -> str:
    """One delivery attempt; on failure, schedule the next one with backoff."""
    import requests

    from detector.models import Analysis

    analysis = Analysis.objects.select_related("upload").filter(pk=analysis_id).first()
    if analysis is None or not analysis.callback_url:
        return "nothing to deliver"
    body = json.dumps(payload(analysis), separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "deepfake-forensics-webhook/1",
        "X-Deepfake-Event": "analysis.finished",
        "X-Deepfake-Delivery": f"{analysis_id}:{attempt}",
        "X-Deepfake-Timestamp": timestamp,
        "X-Deepfake-Signature": sign(user_secret(analysis.owner_id), timestamp, body),
    }
    try:
        check_target(analysis.callback_url)
        response = requests.post(
            analysis.callback_url, data=body, headers=headers, timeout=TIMEOUT_S, allow_redirects=False
        )
        if 200 <= response.status_code < 300:
            return f"delivered ({response.status_code})"
        problem = f"HTTP {response.status_code}"
    except WebhookTargetError as exc:
        log.warning("webhook of %s refused: %s", analysis_id, exc)
        return f"refused: {exc}"
    except requests.RequestException as exc:
        problem = type(exc).__name__
    if attempt > len(BACKOFF_S):
        log.warning("webhook of %s failed %d times (%s); giving up", analysis_id, attempt, problem)
        return f"gave up after {attempt} attempts ({problem})"
    from django_q.models import Schedule

    Schedule.objects.create(
        func="detector.webhooks.deliver",
        args=repr((analysis_id, attempt + 1)),
        schedule_type=Schedule.ONCE,
        next_run=timezone.now() + timedelta(seconds=BACKOFF_S[attempt - 1]),
        name=f"webhook {analysis_id} attempt {attempt + 1}",
    )
    return f"attempt {attempt} failed ({problem}); retrying in {BACKOFF_S[attempt - 1]} s"
