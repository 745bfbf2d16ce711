"""The REST API under token auth, with real files through the real pipeline."""

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from detector.models import Analysis, Status
from detector.webhooks import user_secret, verify
from tests.conftest import WebhookListener, shared_path
from tests.media_factory import write_frames_from

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def api(alice):
    return token_client(alice)


@pytest.fixture
def clip(tmp_path) -> Path:
    return write_frames_from(
        shared_path("data", "videos", "ffpp", "fake", "Deepfakes_033_097.mp4"), tmp_path / "clip.mp4", 50
    )


def create(api, django_capture_on_commit_callbacks, path: Path, **fields):
    with django_capture_on_commit_callbacks(execute=True):
        return api.post(
            "/api/v1/analyses/",
            {"file": SimpleUploadedFile(path.name, path.read_bytes()), **fields},
            format="multipart",
        )


def test_the_whole_api_flow(api, models, clip, django_capture_on_commit_callbacks):
    response = create(api, django_capture_on_commit_callbacks, clip, frames=10)
    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == body["status_url"] and body["id"]

    status = api.get(body["status_url"]).json()  # sync queue in tests: it is finished already
    assert status["status"] == "done" and status["verdict"] in ("fake", "real", "uncertain")
    for key in (
        "fake_probability",
        "confidence",
        "model_name",
        "model_version",
        "timings",
        "people",
        "progress",
    ):
        assert key in status
    assert status["frames_analyzed"] == 10 and status["people"]

    listing = api.get("/api/v1/analyses/", {"status": "done", "media_type": "video"}).json()
    assert listing["count"] == 1 and listing["results"][0]["id"] == body["id"]
    assert api.get("/api/v1/analyses/", {"verdict": "no_face"}).json()["count"] == 0
    assert api.get("/api/v1/analyses/", {"ordering": "sideways"}).status_code == 400
    for param in ("verdict", "status", "media_type"):  # a typo is an error, not "no results"
        bogus = api.get("/api/v1/analyses/", {param: "bogus"})
        assert bogus.status_code == 400 and param in bogus.json()

    page = api.get(f"/api/v1/analyses/{body['id']}/frames/").json()
    assert page["count"] == 10 and page["next"] is None
    frames = page["results"]
    assert len(frames) == 10 and frames[0]["faces"]
    assert [f["index"] for f in frames] == sorted(f["index"] for f in frames)
    # Pages, as the schema says: 4 a page gives 3 pages, the last with 2 frames.
    second = api.get(f"/api/v1/analyses/{body['id']}/frames/", {"page": 2, "page_size": 4}).json()
    assert second["count"] == 10 and [f["index"] for f in second["results"]] == [f["index"] for f in frames[4:8]]
    assert api.get(f"/api/v1/analyses/{body['id']}/frames/", {"page": 9}).status_code == 404
    face = frames[0]["faces"][0]
    assert len(face["box"]) == 4 and 0 <= face["fake_probability"] <= 1
    image = api.get(face["heatmap_url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert api.get(frames[0]["thumbnail_url"]).status_code == 200

    report = api.get(f"/api/v1/analyses/{body['id']}/report.json")
    assert report.status_code == 200 and json.loads(report.content)["file"]["name"] == "clip.mp4"
    csv_report = api.get(f"/api/v1/analyses/{body['id']}/report.csv")
    header = "file,sha256,verdict,model,model_version,content_credentials,file_says,frame_index,"
    assert csv_report.content.decode().startswith(header)
    assert csv_report["Content-Disposition"] == f'attachment; filename="clip-{body["id"].replace("-", "")[:8]}.csv"'
    pdf = api.get(f"/api/v1/analyses/{body['id']}/report.pdf")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")

    with django_capture_on_commit_callbacks(execute=True):
        again = api.post(f"/api/v1/analyses/{body['id']}/rerun/", {"frames": 12}, format="json")
    assert again.status_code == 202 and again.json()["frames_requested"] == 12
    assert Analysis.objects.filter(status=Status.DONE).count() == 2

    assert api.delete(f"/api/v1/analyses/{body['id']}/").status_code == 204
    assert api.get(f"/api/v1/analyses/{body['id']}/").status_code == 404
    assert Analysis.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"frames": 9}, "frames"),
        ({"frames": 101}, "frames"),
        ({"frames": "abc"}, "frames"),
        ({"model": "nope"}, "model"),
        ({"callback_url": "ftp://example.org/hook"}, "callback_url"),
    ],
)
def test_validation_errors_are_400_with_field_messages(api, models, tmp_path, fields, field):
    photo = next(shared_path("data", "images", "lfw_faceswap", "test", "real").glob("*.jpg"))
    response = api.post("/api/v1/analyses/", {"file": SimpleUploadedFile("a.jpg", photo.read_bytes()), **fields})
    assert response.status_code == 400 and field in response.json()
    assert not Analysis.objects.exists()


def test_a_missing_file_is_400(api):
    response = api.post("/api/v1/analyses/", {"frames": 20})
    assert response.status_code == 400 and "file" in response.json()


def test_an_oversized_upload_is_413_and_nothing_is_kept(api, settings, tmp_path):
    settings.DEEPFAKE_MAX_UPLOAD_MB = 1
    big = SimpleUploadedFile("big.mp4", b"\x00" * (3 * 1024 * 1024))
    response = api.post("/api/v1/analyses/", {"file": big})
    assert response.status_code == 413 and "1 MB" in response.json()["detail"]
    assert not Analysis.objects.exists()
    assert not any(Path(settings.MEDIA_ROOT).rglob("*.mp4"))


def test_users_see_only_their_own_analyses(alice, bob, models, clip, django_capture_on_commit_callbacks):
    alice_api, bob_api = token_client(alice), token_client(bob)
    analysis_id = create(alice_api, django_capture_on_commit_callbacks, clip, frames=10).json()["id"]
    frames = alice_api.get(f"/api/v1/analyses/{analysis_id}/frames/").json()["results"]
    face_id = frames[0]["faces"][0]["id"]
    urls = [
        f"/api/v1/analyses/{analysis_id}/",
        f"/api/v1/analyses/{analysis_id}/frames/",
        f"/api/v1/analyses/{analysis_id}/report.pdf",
        f"/api/v1/analyses/{analysis_id}/report.json",
        f"/api/v1/analyses/{analysis_id}/report.csv",
        f"/api/v1/analyses/{analysis_id}/files/crop/{face_id}",
    ]
    for url in urls:
        assert alice_api.get(url).status_code == 200, url
        assert bob_api.get(url).status_code == 404, url
        assert APIClient().get(url).status_code == 401, url
    assert bob_api.get("/api/v1/analyses/").json()["count"] == 0
    assert bob_api.delete(f"/api/v1/analyses/{analysis_id}/").status_code == 404
    assert bob_api.post(f"/api/v1/analyses/{analysis_id}/rerun/", {}).status_code == 404
    bad_token = APIClient()
    bad_token.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert bad_token.get("/api/v1/analyses/").status_code == 401


@pytest.fixture
def receiver(webhook_listener):
    return f"http://127.0.0.1:{webhook_listener}/hook"


def test_the_webhook_is_delivered_signed(api, alice, models, settings, receiver, django_capture_on_commit_callbacks):
    settings.DEEPFAKE_WEBHOOK_ALLOW_PRIVATE = True
    photo = shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg")
    response = create(api, django_capture_on_commit_callbacks, photo, callback_url=receiver)
    assert response.status_code == 202
    assert len(WebhookListener.received) == 1
    headers, body = WebhookListener.received[0]
    summary = json.loads(body)
    assert summary["id"] == response.json()["id"] and summary["status"] == "done"
    assert summary["event"] == "analysis.finished" and summary["file"]["name"] == "multiface.jpg"
    detail = api.get(f"/api/v1/analyses/{summary['id']}/").json()
    for key in ("verdict", "model_name", "model_version", "uncertain_low", "uncertain_high", "faces_detected"):
        assert summary[key] == detail[key], key  # one shape: the webhook and the API agree
    secret = api.get("/api/v1/webhook-secret/").json()["secret"]
    assert secret == user_secret(alice.pk)
    assert verify(secret, headers["X-Deepfake-Timestamp"], body, headers["X-Deepfake-Signature"])
    assert not verify("wrong-secret", headers["X-Deepfake-Timestamp"], body, headers["X-Deepfake-Signature"])
    assert not verify(secret, headers["X-Deepfake-Timestamp"], body + b" ", headers["X-Deepfake-Signature"])


def test_webhooks_to_private_addresses_are_refused_by_default(api, models):
    photo = shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg")
    response = api.post(
        "/api/v1/analyses/",
        {"file": SimpleUploadedFile("p.jpg", photo.read_bytes()), "callback_url": "http://127.0.0.1:9/hook"},
    )
    assert response.status_code == 400 and "private or local" in response.json()["callback_url"][0]


def test_a_failed_delivery_is_retried_later(api, models, settings, django_capture_on_commit_callbacks):
    from django_q.models import Schedule

    from detector.webhooks import deliver

    settings.DEEPFAKE_WEBHOOK_ALLOW_PRIVATE = True
    photo = shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg")
    create(api, django_capture_on_commit_callbacks, photo, callback_url="http://127.0.0.1:9/nobody-listens")
    analysis = Analysis.objects.get()
    retry = Schedule.objects.get(func="detector.webhooks.deliver")
    assert retry.schedule_type == Schedule.ONCE and retry.args == repr((str(analysis.pk), 2))
    assert deliver(str(analysis.pk), 5).startswith("gave up after 5 attempts")


def test_models_are_listed(api, models):
    listed = api.get("/api/v1/models/").json()
    names = {m["name"]: m for m in listed}
    assert {"efficientnet", "efficientnet_lstm"} <= set(names)
    assert names["efficientnet_lstm"]["kind"] == "video" and names["efficientnet"]["kind"] == "image"
    assert names["efficientnet_lstm"]["default"] and names["efficientnet_lstm"]["version"]
    from detector.catalog import without_paths

    for name in ("efficientnet", "efficientnet_lstm"):  # the measured accuracy, as the card records it
        card = json.loads((models / f"{name}.json").read_text())
        assert names[name]["evaluation"] == without_paths(card.get("evaluation", {}))
        assert names[name]["validation"] == card["provenance"].get("validation", {})
    # Where the training machine kept its data is nobody's business.
    text = json.dumps(listed)
    assert "../shared" not in text and "/work/" not in text and "/root/" not in text


def test_the_openapi_schema_is_valid(tmp_path, client):
    from django.core.management import call_command

    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    text = path.read_text()
    assert "/api/v1/analyses/" in text and "/api/v1/analyses/{id}/frames/" in text
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content


def test_a_token_can_be_created_on_the_page(client, alice):
    client.force_login(alice)
    assert b"You have no token yet" in client.get("/account/api/").content
    client.post("/account/api/")
    token = Token.objects.get(user=alice)
    assert token.key.encode() in client.get("/account/api/").content


def test_reports_do_not_expose_local_paths(api, models, django_capture_on_commit_callbacks):
    photo = shared_path("data", "images", "real_faces", "facenet_pytorch", "multiface.jpg")
    analysis_id = create(api, django_capture_on_commit_callbacks, photo).json()["id"]
    report = api.get(f"/api/v1/analyses/{analysis_id}/report.json").content.decode()
    assert "model_accuracy" in report and "../shared" not in report and "/work/" not in report


def openapi_validator(schema: dict, component: dict):
    """A JSON Schema validator for an OpenAPI 3.0 schema object (nullable -> null allowed)."""
    import jsonschema

    def convert(node):
        if isinstance(node, dict):
            node = {k: convert(v) for k, v in node.items()}
            if "$ref" in node:
                return {"$ref": "#/components/schemas/" + node["$ref"].rsplit("/", 1)[1]}
            if "oneOf" in node:  # formats are not asserted here, so "" matches a uri and a blank alike
                node["anyOf"] = node.pop("oneOf")
            if node.pop("nullable", False):
                return {"anyOf": [node, {"type": "null"}]}
            return node
        if isinstance(node, list):
            return [convert(v) for v in node]
        return node

    definitions = {"components": {"schemas": convert(schema["components"]["schemas"])}}
    return jsonschema.Draft7Validator({**convert(component), **definitions})


def response_schema(schema: dict, path: str, method: str = "get", status: str = "200") -> dict:
    content = schema["paths"][path][method]["responses"][status]["content"]
    return content["application/json"]["schema"]


def test_every_json_endpoint_answers_as_its_schema_says(api, alice, models, clip, django_capture_on_commit_callbacks):
    import yaml

    schema = yaml.safe_load(api.get("/api/schema/").content)
    created = create(api, django_capture_on_commit_callbacks, clip, frames=10)
    analysis_id = created.json()["id"]
    checks = [
        ("/api/v1/analyses/", "post", "202", created.json()),
        ("/api/v1/analyses/", "get", "200", api.get("/api/v1/analyses/").json()),
        ("/api/v1/analyses/{id}/", "get", "200", api.get(f"/api/v1/analyses/{analysis_id}/").json()),
        ("/api/v1/analyses/{id}/frames/", "get", "200", api.get(f"/api/v1/analyses/{analysis_id}/frames/").json()),
        (
            "/api/v1/analyses/{id}/frames/",
            "get",
            "200",
            api.get(f"/api/v1/analyses/{analysis_id}/frames/", {"page": 2, "page_size": 4}).json(),
        ),
        ("/api/v1/models/", "get", "200", api.get("/api/v1/models/").json()),
        ("/api/v1/webhook-secret/", "get", "200", api.get("/api/v1/webhook-secret/").json()),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        rerun = api.post(f"/api/v1/analyses/{analysis_id}/rerun/", {"frames": 12})
    checks.append(("/api/v1/analyses/{id}/rerun/", "post", "202", rerun.json()))
    for path, method, status, body in checks:
        validator = openapi_validator(schema, response_schema(schema, path, method, status))
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, (path, method, errors[:5])
    # The frames endpoint is paginated in the schema, and in fact.
    frames_schema = response_schema(schema, "/api/v1/analyses/{id}/frames/")
    assert "Paginated" in frames_schema["$ref"]
