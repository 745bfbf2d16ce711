"""Run the whole service on one machine: the web server and one django-q2 worker.

Both run as child processes. Ctrl-C (SIGINT) or SIGTERM stops both and waits for
them; if either dies on its own, the other is stopped too and the command fails,
so a half-running service never looks healthy.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

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

    def handle(self, *args, host: str, port: int, web_workers: int, no_worker: bool, **options) -> None:
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
