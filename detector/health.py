"""Liveness checks behind GET /healthz: each returns a small JSON-able report."""

from django.conf import settings
from django.db import connection

from detector.catalog import check_models
from detector.live import check_live


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the message says why
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "vendor": connection.vendor}


def check_broker() -> dict:
    from django_q.brokers import get_broker

    try:
        broker = get_broker()
        if "redis" in settings.Q_CLUSTER:
            broker.ping()
        else:
            # The ORM broker is the database: it answers when the queue table does.
            from django_q.models import OrmQ

            OrmQ.objects.exists()
        return {"ok": True, "kind": "redis" if "redis" in settings.Q_CLUSTER else "orm"}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


# Checks whose failure makes the service unhealthy. The live camera service is reported
# too, but uploads work without it.
REQUIRED = ("database", "broker", "models")


def run_checks() -> dict[str, dict]:

    return {"database": check_database(), "broker": check_broker(), "models": check_models(), "live": check_live()}
