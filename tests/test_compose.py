"""The cluster's compose file: every service of the app reaches the database and the broker
(YAML's `<<:` merge is shallow, so a service that sets its own `environment` must repeat
them), and the GPU worker is opt-in and really asks for a GPU."""

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "compose.yaml"


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_every_app_service_reaches_database_and_broker():
    app = {name: s for name, s in services().items() if s.get("image") == "deepfake-forensics"}
    assert {"web", "worker", "live", "worker-gpu"} <= set(app)
    for name, service in app.items():
        environment = service["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://"), name
        assert environment["REDIS_URL"].startswith("redis://"), name


def test_gpu_worker_is_opt_in_and_reserves_an_nvidia_gpu():
    every = services()
    gpu = every["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]  # `docker compose up` alone starts CPU workers only
    assert gpu["command"] == every["worker"]["command"]
    assert gpu["environment"]["DEEPFAKE_DEVICE"] == "cuda"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    for name, service in every.items():
        if name != "worker-gpu":
            assert "deploy" not in service and service.get("environment", {}).get("DEEPFAKE_DEVICE") != "cuda"
