from pathlib import Path

from django.apps import AppConfig
from django.db.backends.signals import connection_created


def private_sqlite_files(sender, connection, **kwargs) -> None:
    """The SQLite file holds sessions and API tokens: readable by the service's user only."""
    if connection.vendor != "sqlite":
        return
    name = str(connection.settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    for path in (Path(name), Path(f"{name}-wal"), Path(f"{name}-shm")):
        try:
            if path.exists() and path.stat().st_mode & 0o077:
                path.chmod(0o600)
        except OSError:  # not ours to change (a shared volume): leave it as the operator set it
            pass


class DetectorConfig(AppConfig):
    name = "detector"
    verbose_name = "Deepfake detector"

    def ready(self) -> None:
        from detector import signin  # noqa: F401  (registers the sign-in failure counters)

        connection_created.connect(private_sqlite_files, dispatch_uid="detector-private-sqlite")
