"""Run the whole service on one machine: the web server, one django-q2 worker and the live
camera's scoring service (`python -m ml.live`, at DEEPFAKE_LIVE_URL).

All run as child processes. Ctrl-C (SIGINT) or SIGTERM stops them all and waits for
them; if one dies on its own, the others are stopped too and the command fails,
so a half-running service never looks healthy.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

STOP_TIMEOUT_S = 20


class Command(BaseCommand):
    help = "Serve the web app (gunicorn) and run a django-q2 worker (qcluster) until Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--no-worker", action="store_true", help="serve the web app only (workers run elsewhere)")
        parser.add_argument("--no-live", action="store_true", help="do not start the live camera's scoring service")

    def handle(self, *args, host: str, port: int, web_workers: int, no_worker: bool, no_live: bool, **options) -> None:
        manage_py = str(Path(settings.BASE_DIR) / "manage.py")
        commands = {
            "web": [
                sys.executable,
                "-m",
                "gunicorn",
                "deepfake_site.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(web_workers),
                "--threads",
                "4",
                # Uploads of hundreds of MB take a while on a slow link.
                "--timeout",
                "300",
                "--access-logfile",
                "-",
            ],
        }
        if not no_worker:
            commands["worker"] = [sys.executable, manage_py, "qcluster"]
        if not no_live:
            live = urlsplit(settings.DEEPFAKE_LIVE_URL)
            commands["live"] = [
                *(sys.executable, "-m", "ml.live", "--host", live.hostname or "127.0.0.1"),
                *("--port", str(live.port or 8765), "--device", settings.DEEPFAKE_DEVICE),
                *("--model-dir", str(settings.DEEPFAKE_MODEL_DIR)),
                *(("--threads", str(settings.DEEPFAKE_TORCH_THREADS)) if settings.DEEPFAKE_TORCH_THREADS else ()),
                *(() if settings.DEEPFAKE_EMOTIONS else ("--no-emotions",)),
            ]

        stopping = False

        def request_stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

        children = {name: subprocess.Popen(cmd, cwd=settings.BASE_DIR) for name, cmd in commands.items()}
        self.stdout.write(f"Serving http://{host}:{port}/ with {', '.join(children)}; Ctrl-C stops.")
        self.stdout.flush()
        died = None
        while not stopping and died is None:
            time.sleep(0.2)
            died = next((name for name, child in children.items() if child.poll() is not None), None)

        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if died is not None:
            raise CommandError(f"the {died} process exited with code {children[died].returncode}")
        self.stdout.write("Stopped.")
