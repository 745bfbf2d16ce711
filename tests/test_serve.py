"""The run command end to end: a real web server and a real qcluster worker process."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from django.db import connection

from tests.conftest import ROOT, free_port


def database_url_of_test_db() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def served(transactional_db, monkeypatch):
    """`manage.py serve` on a free port, against this test's database."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "DEEPFAKE_LIVE_URL": f"http://127.0.0.1:{free_port()}",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--web-workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its group holds gunicorn, qcluster and the live service
    )
    try:
        yield process, f"http://127.0.0.1:{port}", env["DEEPFAKE_LIVE_URL"]
    finally:
        # A failed test must not leave the children running: stop the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def get_or_none(url: str):
    try:
        return requests.get(url, timeout=2)
    except requests.RequestException:  # refused, or too busy to answer yet
        return None


def test_run_command_serves_pages_runs_tasks_and_stops_on_ctrl_c(served):
    from django_q.tasks import async_task, fetch

    process, base, live = served
    health = wait_for(lambda: get_or_none(f"{base}/healthz"), 60, "the web server")
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"
    home = requests.get(f"{base}/", timeout=5)
    assert home.status_code == 200
    assert "Deepfake Forensics" in home.text
    css = requests.get(f"{base}/static/css/site.css", timeout=5)
    assert css.status_code == 200

    task_id = async_task("detector.tasks.ping", "hello from the test")
    task = wait_for(lambda: fetch(task_id), 60, "the worker to run the task")
    assert task.success, task.result
    assert task.result["message"] == "hello from the test"
    assert task.result["worker_pid"] != os.getpid()

    # The live camera's scoring service came up with its model and is reported by /healthz.
    service = wait_for(lambda: get_or_none(f"{live}/health"), 90, "the live scoring service")
    assert service.json()["model"] == "efficientnet", service.text
    # /healthz reports it too (to an anonymous caller: whether it answers, nothing more).
    checks = requests.get(f"{base}/healthz", timeout=5).json()["checks"]
    assert checks["live"] == {"ok": True}, checks["live"]

    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=40)
    assert process.returncode == 0, output
    assert "Stopped." in output
    assert get_or_none(f"{base}/healthz") is None
    assert get_or_none(f"{live}/health") is None
