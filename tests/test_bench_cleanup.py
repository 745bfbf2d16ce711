"""A benchmark cleans up after itself whatever happens: the load test, interrupted with Ctrl-C
while its workers are busy, leaves no process running and no scratch database behind."""

import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import ROOT, shared_path

# It starts its own PostgreSQL database and Redis queue: CI runs it on the first leg only.
pytestmark = [pytest.mark.slow, pytest.mark.engine]


def reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_with(marker: str) -> list[int]:
    """Processes whose environment mentions the marker (the load test's scratch database)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # gone, or not ours to read
                pass
    return found


def test_an_interrupted_load_test_leaves_nothing_behind():
    shared_path("data", "videos", "ffpp")
    if not (reachable(5432) and reachable(6379)):
        pytest.skip("PostgreSQL and Redis are not running on 127.0.0.1 (CI's second leg starts them)")
    import psycopg

    process = subprocess.Popen(
        [sys.executable, "-m", "bench.load_test", "--uploads", "4", "--workers", "1", "--frames", "10"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    marker = f"deepfake_load_{process.pid}"
    accepted = threading.Event()
    output: list[str] = []

    def read() -> None:
        for line in process.stdout:
            output.append(line)
            if "uploads accepted" in line:
                accepted.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert accepted.wait(240), "".join(output)[-2000:]
        assert processes_with(marker), "the web server and the worker should be running now"
        process.send_signal(signal.SIGINT)  # Ctrl-C while the worker is busy
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert processes_with(marker) == [], "".join(output)[-2000:]
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres") as db:
        assert db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (marker,)).fetchone() is None
    # The cleanup itself ran to its end (it once died of a TypeError in its `finally`).
    assert "TypeError" not in "".join(output)
