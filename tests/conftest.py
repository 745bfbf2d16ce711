"""Shared fixtures: private media per test, a synchronous queue, named users."""

import inspect
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
ROOT = Path(__file__).resolve().parents[1]


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or skip the test when the datasets are not beside the checkout."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared is not available ({path})")
    return path


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def sync_queue(monkeypatch) -> None:
    """Run queued tasks in-process. Q_CLUSTER is read once at import, so patch Conf."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-password-1")


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The shipped models when they exist; otherwise real architectures with untrained heads
    on the ImageNet trunk, saved in the checkpoint format (the pipeline runs for real)."""
    shipped = ROOT / "ml" / "weights"
    if (shipped / "efficientnet_lstm.pt").is_file() and (shipped / "efficientnet.pt").is_file():
        return shipped
    import torch

    from ml.calibration import Calibration
    from ml.checkpoint import save_checkpoint
    from ml.models import create_model

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    for name in ("efficientnet_lstm", "efficientnet"):
        save_checkpoint(
            create_model(name, pretrained=True),
            folder / f"{name}.pt",
            Calibration(),
            {"version": "untrained"},
        )
    return folder


@pytest.fixture
def models(settings, model_dir) -> Path:
    settings.DEEPFAKE_MODEL_DIR = model_dir
    return model_dir


def pytest_collection_modifyitems(config, items) -> None:
    """Mark tests that touch neither the database nor the broker: CI's second leg (PostgreSQL +
    Redis) skips them, since they would only repeat the first leg."""
    for item in items:
        path = Path(str(item.fspath))
        if "ml" in path.parts[-2:-1] or item.get_closest_marker("engine"):
            item.add_marker(pytest.mark.engine)
    mark_slow(items)


class WebhookListener(BaseHTTPRequestHandler):
    """A local webhook receiver: records (headers, body) of every POST and answers 204."""

    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        WebhookListener.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_listener():
    """The port of a WebhookListener on 127.0.0.1 (its `received` starts empty)."""
    WebhookListener.received = []
    server = HTTPServer(("127.0.0.1", 0), WebhookListener)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()


# Fixtures that load the shipped models, run the face detector or start the service: a test
# that uses one (directly or through another fixture) takes seconds, not milliseconds.
HEAVY_FIXTURES = {"model_dir", "models", "face_detector", "served", "service", "scorer", "live_service"}


def _reads_shared_media(function) -> bool:
    try:
        return "shared_path(" in inspect.getsource(function)
    except (OSError, TypeError):
        return False


def mark_slow(items) -> None:
    """Mark `slow` every test that needs the shipped models or ../shared media, by what it
    uses: `make test-fast` runs the rest (`-m "not slow"`) in under a minute."""
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        fixtures = definitions.name2fixturedefs if definitions else {}
        heavy = HEAVY_FIXTURES & set(getattr(item, "fixturenames", ()))
        shared = _reads_shared_media(getattr(item, "function", None)) or any(
            _reads_shared_media(fixture.func) for defs in fixtures.values() for fixture in defs
        )
        if heavy or shared:
            item.add_marker(pytest.mark.slow)
