"""Fault drills on the cluster setup (PostgreSQL + Redis on this machine). Run by hand:

    .venv/bin/python -m bench.faults

1. Redis stops while uploads arrive: the API still accepts and stores every upload (202), the
   jobs wait as `queued`; once Redis is back, the scheduled re-send queues them and they finish.
2. PostgreSQL restarts under a running worker: the worker reconnects and the next job finishes.

It stops and restarts this machine's Redis and PostgreSQL (with the commands this machine
documents), uses a scratch database and loopback only, and prints what happened and how long
recovery took.
"""

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from bench.load_test import SHARED, drop_database
from bench.serving import free_port, manage, start, stop

REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def pg_cluster() -> list[str]:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def wait(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if predicate():
                return time.monotonic() - started
        except Exception:  # a service that is still coming back
            pass
        time.sleep(0.5)
    raise SystemExit(f"gave up waiting for {what} after {timeout:.0f} s")


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="It takes no options.").parse_args()
    import psycopg

    postgres = "postgres://postgres@127.0.0.1:5432"
    database = f"deepfake_faults_{os.getpid()}"
    with psycopg.connect(f"{postgres}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": f"{postgres}/{database}",
        "REDIS_URL": "redis://127.0.0.1:6379/8",
        "DEEPFAKE_QUEUE_NAME": database,
        "DEEPFAKE_MEDIA_ROOT": tempfile.mkdtemp(prefix="faults-media-"),
    }
    processes: list[subprocess.Popen] = []
    photo = SHARED / "data/images/real_faces/facenet_pytorch/multiface.jpg"
    try:
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "shell", "-c", "from django.contrib.auth.models import User; User.objects.create_user('drill')")
        token = manage(env, "drf_create_token", "drill").split()[2]
        manage(env, "reap", "--schedule")
        for command in (["serve", "--no-worker", "--no-live", "--port", str(port)], ["qcluster"]):
            processes.append(start(["manage.py", *command], env))
        api = requests.Session()
        api.headers["Authorization"] = f"Token {token}"
        wait(lambda: requests.get(f"{base}/healthz", timeout=2).ok, 60, "the web server")

        def upload() -> requests.Response:
            with photo.open("rb") as handle:
                return api.post(f"{base}/api/v1/analyses/", files={"file": ("photo.jpg", handle)}, timeout=30)

        def status(analysis_id: str) -> str:
            return api.get(f"{base}/api/v1/analyses/{analysis_id}/", timeout=10).json()["status"]

        print("1. Redis stops while uploads arrive")
        subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False, capture_output=True)
        responses = [upload() for _ in range(5)]
        codes = [r.status_code for r in responses]
        ids = [r.json()["id"] for r in responses if r.status_code == 202]
        health = requests.get(f"{base}/healthz", timeout=5)
        print(
            f"   with Redis down: uploads answered {codes}; /healthz {health.status_code} "
            f"(broker ok: {health.json()['checks']['broker']['ok']}); job states {[status(i) for i in ids]}"
        )
        subprocess.run(REDIS_START, check=True, capture_output=True)
        took = wait(lambda: all(status(i) == "done" for i in ids), 300, "the queued jobs to finish")
        print(f"   Redis back: all {len(ids)} stored uploads analysed {took:.0f} s later (re-sent by the scheduler)")

        print("2. PostgreSQL restarts under a running worker")
        first = upload().json()["id"]
        wait(lambda: status(first) == "done", 120, "a job before the restart")
        subprocess.run([*pg_cluster(), "restart"], check=True, capture_output=True)
        down_for = wait(lambda: requests.get(f"{base}/healthz", timeout=2).ok, 60, "the database to answer")
        second = upload().json()["id"]
        took = wait(lambda: status(second) == "done", 180, "a job after the restart")
        alive = all(p.poll() is None for p in processes)
        print(
            f"   database back after {down_for:.0f} s; a new job finished {took:.0f} s after upload; "
            f"web and worker processes still running: {alive}"
        )
        return 0
    finally:
        subprocess.run(REDIS_START, check=False, capture_output=True)  # whatever happened, leave Redis running
        stop(processes)
        drop_database(postgres, database)


if __name__ == "__main__":
    raise SystemExit(main())
