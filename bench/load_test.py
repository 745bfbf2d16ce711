"""Load test of the cluster setup: N qcluster workers on PostgreSQL + Redis, many uploads at once.

    .venv/bin/python -m bench.load_test [--uploads 50] [--workers 2] [--frames 20]

It creates a scratch database, starts the web server (gunicorn) and N `qcluster` processes on
127.0.0.1 only, submits the uploads concurrently through the API, measures the web's latency
(history page, status endpoint) while the workers are busy, waits for every job, checks each
finished exactly once with its results stored, prints the figures, then stops everything and
drops the database. Bounded: it gives up after --timeout seconds.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bench.serving import ROOT, free_port, manage, start, stop

SHARED = ROOT.parent / "shared"


def drop_database(server: str, database: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def client() -> requests.Session:
    """A keep-alive session that resends a GET once when the server closed the idle connection
    just as the request went out (gunicorn drops keep-alive connections idle for 2 s, and the
    poll below waits 2 s), as browsers do. Uploads (POST) are never resent."""
    session = requests.Session()
    retry = Retry(total=2, connect=2, read=2, status=0, allowed_methods={"GET"}, raise_on_status=False)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="qcluster processes")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--timeout", type=int, default=1500)
    args = parser.parse_args()

    import psycopg

    database = f"deepfake_load_{os.getpid()}"
    with psycopg.connect(f"{args.postgres}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    media = Path(tempfile.mkdtemp(prefix="load-media-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": f"{args.postgres}/{database}",
        "REDIS_URL": args.redis,
        "DEEPFAKE_QUEUE_NAME": database,
        "DEEPFAKE_MEDIA_ROOT": str(media),
        "DEEPFAKE_WORKERS": "1",
        # Several workers share this machine's cores: give each its share.
        "DEEPFAKE_TORCH_THREADS": str(max(1, (os.cpu_count() or 2) // args.workers)),
        "DEEPFAKE_UPLOAD_RATE": "100000/hour",
        "DEEPFAKE_API_RATE": "100000/hour",
    }
    processes: list[subprocess.Popen] = []
    try:
        manage(env, "migrate", "--noinput", "-v0")
        manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            "User.objects.create_user('load', password='load-password-123')",
        )
        token = manage(env, "drf_create_token", "load").split()[2]
        processes.append(
            start(["manage.py", "serve", "--no-worker", "--no-live", "--port", str(port), "--web-workers", "2"], env)
        )
        for _ in range(args.workers):
            processes.append(start(["manage.py", "qcluster"], env))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:  # not up yet, or slow to answer on a busy machine
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("the web server did not come up")

        api = client()
        api.headers["Authorization"] = f"Token {token}"
        videos = sorted((SHARED / "data/videos/ffpp/real").glob("*.mp4")) + sorted(
            (SHARED / "data/videos/ffpp/fake").glob("*.mp4")
        )
        if not videos:
            raise SystemExit(f"no FaceForensics++ videos under {SHARED / 'data/videos/ffpp'}: ../shared is needed")
        chosen = [videos[i * len(videos) // args.uploads] for i in range(args.uploads)]
        # Warm the workers' models so the first jobs do not carry the load time.
        started = time.monotonic()

        def submit(path: Path) -> str:
            with path.open("rb") as handle:
                response = api.post(
                    f"{base}/api/v1/analyses/",
                    files={"file": (path.name, handle)},
                    data={"frames": args.frames},
                    timeout=120,
                )
            response.raise_for_status()
            return response.json()["id"]

        with ThreadPoolExecutor(max_workers=10) as pool:
            ids = list(pool.map(submit, chosen))
        submitted = time.monotonic() - started
        print(f"{len(ids)} uploads accepted in {submitted:.1f} s ({len(ids) / submitted:.1f}/s)", flush=True)

        # Latency of the pages people look at while the workers are busy.
        browser = client()
        login = browser.get(f"{base}/accounts/login/")
        browser.post(
            f"{base}/accounts/login/",
            data={
                "username": "load",
                "password": "load-password-123",
                "csrfmiddlewaretoken": login.cookies["csrftoken"],
            },
            headers={"Referer": f"{base}/accounts/login/"},
        )
        latencies: dict[str, list[float]] = {"history page": [], "status endpoint": []}
        sampling_done = threading.Event()

        def sample() -> None:
            i = 0
            while not sampling_done.is_set():
                for name, url, session in (
                    ("history page", f"{base}/history/", browser),
                    ("status endpoint", f"{base}/analyses/{ids[i % len(ids)]}/status.json", browser),
                ):
                    t0 = time.perf_counter()
                    session.get(url, timeout=30).raise_for_status()
                    latencies[name].append(time.perf_counter() - t0)
                i += 1
                sampling_done.wait(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def unfinished() -> int:
            return sum(
                api.get(f"{base}/api/v1/analyses/", params={"status": status}, timeout=30).json()["count"]
                for status in ("queued", "running")
            )

        # Every 2 s, two requests (how many jobs are still queued or running), not one per
        # unfinished job: that polling (~25 requests a second) took about a third of a core from
        # the workers under test. Each job's detail is read once, at the end.
        while unfinished() and time.monotonic() - started < args.timeout:
            time.sleep(2)
        elapsed = time.monotonic() - started
        sampling_done.set()
        sampler.join()
        finished: dict[str, dict] = {}
        for analysis_id in ids:
            body = api.get(f"{base}/api/v1/analyses/{analysis_id}/", timeout=30).json()
            if body["status"] in ("done", "failed"):
                finished[analysis_id] = body

        done = [b for b in finished.values() if b["status"] == "done"]
        failed = [b for b in finished.values() if b["status"] == "failed"]
        with psycopg.connect(env["DATABASE_URL"]) as db:
            rows = db.execute(
                "SELECT a.id, a.attempts, count(f.id) FROM detector_analysis a "
                "LEFT JOIN detector_frameresult f ON f.analysis_id = a.id GROUP BY a.id, a.attempts"
            ).fetchall()
            runs = db.execute(
                "SELECT args, count(*) FROM django_q_task WHERE func = 'detector.tasks.run_analysis' GROUP BY args"
            ).fetchall()
        print(
            f"finished {len(finished)}/{len(ids)} ({len(done)} done, {len(failed)} failed) in {elapsed:.0f} s "
            f"with {args.workers} workers at {args.frames} frames"
        )
        print(f"throughput: {len(finished) / elapsed * 60:.1f} analyses per minute")
        print(
            f"jobs in the database: {len(rows)}; attempts > 1: {sum(1 for r in rows if r[1] > 1)}; "
            f"results per job (frames): {sorted({r[2] for r in rows})}"
        )
        print(
            f"task runs recorded: {sum(c for _, c in runs)} for {len(runs)} distinct jobs "
            f"(duplicates: {sum(1 for _, c in runs if c > 1)})"
        )
        for name, values in latencies.items():
            if values:
                print(
                    f"{name}: {len(values)} requests, p50 {statistics.median(values) * 1000:.0f} ms, "
                    f"p95 {percentile(values, 0.95) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
                )
        ok = len(done) == len(ids) and len(rows) == len(ids) and all(r[2] == args.frames for r in rows)
        print("RESULT:", "every upload finished exactly once with its results" if ok else "PROBLEMS (see above)")
        return 0 if ok else 1
    finally:
        # Whatever happened (an error, Ctrl-C, a timeout), nothing is left running or stored.
        stop(processes)
        drop_database(args.postgres, database)
        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
