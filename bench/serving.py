"""Start and stop the service's processes (`manage.py serve`, `qcluster`, the live scoring
service) for the tests and the benchmarks, in one way.

Each child runs in a session of its own, so that it and everything it starts (gunicorn's
workers, qcluster's, the live service) stop together, whatever happens to the caller:

    with serve(env, "--web-workers", "1") as served:
        requests.get(f"{served.base}/healthz")
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(arguments: list[str], env: dict | None = None, output=subprocess.DEVNULL) -> subprocess.Popen:
    """`python ARGUMENTS...` from the project's root, in a session of its own."""
    return subprocess.Popen(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=env if env is not None else dict(os.environ),
        stdout=output,
        stderr=subprocess.STDOUT if output == subprocess.PIPE else output,
        text=True,
        start_new_session=True,
    )


def stop(processes: list[subprocess.Popen], first: int = signal.SIGTERM, grace_s: float = 30) -> None:
    """Signal every process group, wait up to `grace_s`, then SIGKILL what is left of each."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, first)
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group, if any
        process.wait()


def manage(env: dict, *arguments: str) -> str:
    """Run `manage.py ARGUMENTS...` to its end; its standard output (raises when it fails)."""
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def get_or_none(url: str, timeout: float = 2):
    """The response, or None while the server is not up or too busy to answer."""
    try:
        return requests.get(url, timeout=timeout)
    except requests.RequestException:
        return None


def wait_for(predicate: Callable, timeout: float, what: str):
    """Poll `predicate` until it returns something true; its value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Served:
    process: subprocess.Popen
    base: str  # http://127.0.0.1:PORT


@contextlib.contextmanager
def serve(env: dict, *options: str, output=subprocess.DEVNULL, ready_s: float = 60) -> Iterator[Served]:
    """`manage.py serve --port FREE OPTIONS...`, up (its /healthz answered 200, unless
    `ready_s` is 0) for the block, and stopped with its whole group after it."""
    port = free_port()
    process = start(["manage.py", "serve", "--port", str(port), *options], env, output)
    served = Served(process, f"http://127.0.0.1:{port}")
    try:
        if ready_s:
            wait_for(
                lambda: (r := get_or_none(f"{served.base}/healthz", 10)) and r.status_code == 200,
                ready_s,
                "the web server",
            )
        yield served
    finally:
        stop([process], first=signal.SIGINT)
