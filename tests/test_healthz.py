import pytest


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["broker"]["kind"] == ("redis" if settings.REDIS_URL else "orm")


@pytest.mark.django_db
def test_healthz_is_503_when_a_check_fails(client, monkeypatch):
    from detector import health

    monkeypatch.setattr(health, "check_broker", lambda: {"ok": False, "error": "broker down"})
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "broker down"}
