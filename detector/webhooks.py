"""Webhooks: when a job ends, POST its summary to the `callback_url` given with it.

The body is JSON. Two headers let the receiver check it came from us and is fresh:

    X-Deepfake-Timestamp: 1763780000
    X-Deepfake-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with your webhook secret>

Each user's secret is shown on the API token page and at GET /api/v1/webhook-secret/.
Delivery is a task of its own, so it never holds up an analysis: each attempt waits at most
`TIMEOUT_S`, and a failed attempt is tried again later (after 10 s, 60 s, 5 min, 30 min) by
the queue's scheduler, not by sleeping in a worker.

Targets must be http(s). Private, loopback and link-local addresses are refused unless
`DEEPFAKE_WEBHOOK_ALLOW_PRIVATE` is set (a callback must not reach into the server's network),
and so are IPv6 addresses that carry one inside (IPv4-mapped, NAT64, 6to4, Teredo). The host
is resolved once per attempt and the POST goes to the address that was checked, with the
URL's host name in `Host` and in TLS (SNI and certificate): a name that resolves to a public
address for the check and to a private one for the connection (DNS rebinding) gets nowhere.
"""

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django_q import tasks as queue  # looked up at each call: tests stand in a broken broker
from django_q.models import Schedule

from detector import summary
from detector.models import Analysis

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


# Prefixes whose addresses embed an IPv4 address in their last 32 bits (RFC 6052, RFC 8215).
NAT64_PREFIXES = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


@dataclass(frozen=True)
class Target:
    """A callback URL, checked, with the one address the POST will go to."""

    scheme: str
    host: str
    port: int
    address: str
    path: str


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses (one lookup; tests replace this with a fake resolver)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable, and so is any IPv4 address it carries inside."""
    if not ip.is_global:
        return False
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and any(ip in prefix for prefix in NAT64_PREFIXES):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not embedded.is_global:
            return False
    return True


def check_target(url: str) -> Target:
    """The checked target of a callback URL; WebhookTargetError unless it is http(s) to an
    allowed address on a valid port."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookTargetError("the callback URL must be an http:// or https:// URL")
    try:
        port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookTargetError("the callback URL's port must be between 1 and 65535") from None
    if not 1 <= port <= 65535:
        raise WebhookTargetError("the callback URL's port must be between 1 and 65535")
    try:
        addresses = resolve(parts.hostname, port)
    except (socket.gaierror, UnicodeError):
        raise WebhookTargetError(f"the callback host {parts.hostname!r} does not resolve") from None
    if not addresses:
        raise WebhookTargetError(f"the callback host {parts.hostname!r} does not resolve")
    if not settings.DEEPFAKE_WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not is_public(ip):
                raise WebhookTargetError(
                    f"the callback host {parts.hostname!r} is a private or local address ({ip}); "
                    "set DEEPFAKE_WEBHOOK_ALLOW_PRIVATE=1 to allow it"
                )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, addresses[0], path)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; `Host` stays the URL's host."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the checked address; TLS verifies the URL's host name (SNI, certificate)."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self.address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float = TIMEOUT_S) -> int:
    """POST to the checked address, no redirects followed; the response status."""
    kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = kind(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def payload(analysis) -> dict:
    """The webhook's body: the analysis's summary (`detector.summary`) and the event's name."""
    return {"event": "analysis.finished", **summary.of(analysis)}


def schedule_delivery(analysis) -> None:
    """Queue the first delivery attempt of a finished job's webhook, if it has one."""
    if analysis.callback_url:
        queue.async_task("detector.webhooks.deliver", str(analysis.pk), 1, task_name=f"webhook {analysis.pk}")


def deliver(analysis_id: str, attempt: int = 1) -> str:
    """One delivery attempt; on failure, schedule the next one with backoff."""
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
        status = post(check_target(analysis.callback_url), body, headers)
        if 200 <= status < 300:
            return f"delivered ({status})"
        problem = f"HTTP {status}"
    except WebhookTargetError as exc:
        log.warning("webhook of %s refused: %s", analysis_id, exc)
        return f"refused: {exc}"
    except (OSError, http.client.HTTPException) as exc:
        problem = type(exc).__name__
    if attempt > len(BACKOFF_S):
        log.warning("webhook of %s failed %d times (%s); giving up", analysis_id, attempt, problem)
        return f"gave up after {attempt} attempts ({problem})"

    Schedule.objects.create(
        func="detector.webhooks.deliver",
        args=repr((analysis_id, attempt + 1)),
        schedule_type=Schedule.ONCE,
        next_run=timezone.now() + timedelta(seconds=BACKOFF_S[attempt - 1]),
        name=f"webhook {analysis_id} attempt {attempt + 1}",
    )
    return f"attempt {attempt} failed ({problem}); retrying in {BACKOFF_S[attempt - 1]} s"
