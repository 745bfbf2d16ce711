import pytest


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", password="ops-password-1", is_staff=True))
    return client


@pytest.mark.django_db
def test_healthz_reports_database_and_broker_to_staff(staff_client, settings):
    client = staff_client
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["broker"]["kind"] == ("redis" if settings.REDIS_URL else "orm")


@pytest.mark.django_db
def test_healthz_is_503_when_a_check_fails(staff_client, monkeypatch):
    from detector import health

    client = staff_client
    monkeypatch.setattr(health, "check_broker", lambda: {"ok": False, "error": "broker down"})
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "broker down"}


@pytest.mark.django_db
def test_anonymous_callers_get_the_status_only(client, monkeypatch):
    from detector import health

    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert all(check == {"ok": True} for name, check in body["checks"].items() if name != "live")
    monkeypatch.setattr(health, "check_broker", lambda: {"ok": False, "error": "redis at 10.0.0.5 refused"})
    response = client.get("/healthz")
    assert response.status_code == 503 and "10.0.0.5" not in response.content.decode()
    assert response.json()["checks"]["broker"] == {"ok": False}
