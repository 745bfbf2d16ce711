import pytest

from deepfake_site import settings as site_settings


def test_env_bool_reads_common_spellings(monkeypatch):
    for value, expected in [("1", True), ("true", True), ("YES", True), ("0", False), ("off", False)]:
        monkeypatch.setenv("X_FLAG", value)
        assert site_settings.env_bool("X_FLAG") is expected
    monkeypatch.delenv("X_FLAG")
    assert site_settings.env_bool("X_FLAG", True) is True


def test_env_bool_rejects_garbage(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ValueError, match="X_FLAG"):
        site_settings.env_bool("X_FLAG")


def test_env_int_and_list(monkeypatch):
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_LIST", "a.example, b.example,,")
    assert site_settings.env_int("X_INT", 1) == 42
    assert site_settings.env_list("X_LIST") == ["a.example", "b.example"]
    monkeypatch.setenv("X_INT", "forty")
    with pytest.raises(ValueError, match="X_INT"):
        site_settings.env_int("X_INT", 1)


def test_env_secret_prefers_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    monkeypatch.setenv("X_SECRET", "from-env")
    assert site_settings.env_secret("X_SECRET") == "from-env"
    monkeypatch.setenv("X_SECRET_FILE", str(secret_file))
    assert site_settings.env_secret("X_SECRET") == "from-file"


def test_local_secret_key_is_generated_once_and_private(tmp_path):
    path = tmp_path / ".secret_key"
    first = site_settings.local_secret_key(path)
    assert len(first) >= 50
    assert site_settings.local_secret_key(path) == first
    assert path.stat().st_mode & 0o077 == 0


def test_defaults_are_safe():
    from django.conf import settings

    assert settings.DEBUG is False
    assert "django-insecure" not in settings.SECRET_KEY
    assert settings.ALLOWED_HOSTS


def test_check_deploy_is_clean_for_production_settings():
    """`manage.py check --deploy` with the settings the README gives for HTTPS deployments."""
    import secrets
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {
        **__import__("os").environ,
        "SECRET_KEY": secrets.token_urlsafe(60),
        "DEEPFAKE_HTTPS": "1",
        "ALLOWED_HOSTS": "deepfake.example.org",
        "DEBUG": "0",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


@pytest.mark.parametrize(("setting", "expected"), [("", 10), ("3", 3)])
def test_a_worker_runs_below_the_web_servers_priority(setting, expected):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    run_in_worker = (
        "import os, threading, django; django.setup()\n"
        "from detector.tasks import _configure_worker\n"
        "_configure_worker(); _configure_worker()\n"  # once per process, however many jobs
        "later = []\n"
        "thread = threading.Thread(target=lambda: later.append(os.getpriority(os.PRIO_PROCESS, 0)))\n"
        "thread.start(); thread.join()\n"
        "print(os.getpriority(os.PRIO_PROCESS, 0), later[0])\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "deepfake_site.settings",
        "DEEPFAKE_WORKER_NICENESS": setting,
        "DEEPFAKE_TORCH_THREADS": "0",  # torch's own threads: nothing to set, nothing to import
    }
    done = subprocess.run([sys.executable, "-c", run_in_worker], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    base = os.getpriority(os.PRIO_PROCESS, 0)
    # The worker's threads (torch's, the decoder's) inherit its priority.
    assert done.stdout.split() == [str(max(base, expected))] * 2
