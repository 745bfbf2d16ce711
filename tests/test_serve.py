"""The run command end to end: a real web server and a real qcluster worker process."""

import os
import signal
import subprocess

import pytest
import requests
from django.db import connection

from bench.serving import free_port, get_or_none, serve, wait_for


def database_url_of_test_db() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def served(transactional_db, monkeypatch):
    """`manage.py serve` on a free port, against this test's database (the test waits for it,
    and stops it itself to see it stop)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "DEEPFAKE_LIVE_URL": f"http://127.0.0.1:{free_port()}",
    }
    with serve(env, "--web-workers", "1", output=subprocess.PIPE, ready_s=0) as service:
        yield service.process, service.base, env["DEEPFAKE_LIVE_URL"]


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
