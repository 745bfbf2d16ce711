"""The review workflow in the admin: decisions as an audit trail, actions, disagreements."""

import json

import pytest
from django.urls import reverse

from detector.models import Analysis, Decision, Review, Status, Upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer(django_user_model):
    return django_user_model.objects.create_user("rita", password="rita-password-1", is_staff=True, is_superuser=True)


def make_case(owner, verdict: str, p: float, model: str = "efficientnet_lstm") -> Analysis:
    upload = Upload.objects.create(
        owner=owner,
        file="uploads/x.mp4",
        original_name=f"{verdict}-{p}.mp4",
        size=10,
        sha256="ab" * 32,
        media_type="video",
    )
    return Analysis.objects.create(
        upload=upload,
        owner=owner,
        status=Status.DONE,
        verdict=verdict,
        fake_probability=p,
        model_name=model,
        threshold=0.5,
        uncertain_low=0.4,
        uncertain_high=0.6,
        confidence=0.5,
    )


def review(client, analysis: Analysis, decision: str, notes: str):
    url = reverse("admin:detector_analysis_change", args=[analysis.pk])
    data = {
        "reviews-TOTAL_FORMS": "1",
        "reviews-INITIAL_FORMS": "0",
        "reviews-MIN_NUM_FORMS": "0",
        "reviews-MAX_NUM_FORMS": "1000",
        "reviews-0-decision": decision,
        "reviews-0-notes": notes,
        "reviews-0-analysis": str(analysis.pk),
        "_continue": "Save",
    }
    # An existing decision appears as an initial form that is never changed.
    existing = list(analysis.reviews.order_by("created_at"))
    if existing:
        data = {**data, "reviews-TOTAL_FORMS": str(len(existing) + 1), "reviews-INITIAL_FORMS": str(len(existing))}
        for i, old in enumerate(existing):
            data[f"reviews-{i}-id"] = str(old.pk)
            data[f"reviews-{i}-analysis"] = str(analysis.pk)
        n = len(existing)
        data[f"reviews-{n}-decision"] = data.pop("reviews-0-decision")
        data[f"reviews-{n}-notes"] = data.pop("reviews-0-notes")
        data[f"reviews-{n}-analysis"] = str(analysis.pk)
    return client.post(url, data)


def test_a_review_decision_is_recorded_in_the_audit_trail_and_the_report(client, alice, reviewer):
    case = make_case(alice, "fake", 0.91)
    client.force_login(reviewer)
    response = review(client, case, Decision.CONFIRMED_REAL, "Original footage found on the broadcaster's site.")
    assert response.status_code == 302, response.content[:2000]
    response = review(client, case, Decision.INCONCLUSIVE, "Second look: the broadcaster's copy is also edited.")
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.verdict == "fake" and case.fake_probability == 0.91  # the model's verdict is kept
    assert case.review_decision == Decision.INCONCLUSIVE
    trail = list(case.reviews.order_by("created_at"))
    assert [r.decision for r in trail] == [Decision.CONFIRMED_REAL, Decision.INCONCLUSIVE]
    assert all(r.reviewer == reviewer for r in trail)
    assert trail[0].agrees is False

    page = client.get(reverse("admin:detector_analysis_change", args=[case.pk])).content.decode()
    assert "Original footage found" in page and "Second look" in page

    client.force_login(alice)
    report = json.loads(client.get(reverse("analysis-report", args=[case.pk, "json"])).content)
    assert [r["decision"] for r in report["reviews"]] == ["confirmed_real", "inconclusive"]
    assert report["reviews"][0]["reviewer"] == "rita" and report["reviews"][0]["agrees_with_model"] is False
    assert report["verdict"] == "fake"


def test_the_audit_trail_cannot_be_edited_or_deleted(client, reviewer, alice):
    case = make_case(alice, "real", 0.1)
    Review.objects.create(analysis=case, reviewer=reviewer, decision=Decision.CONFIRMED_REAL)
    client.force_login(reviewer)
    row = case.reviews.get()
    assert client.get(reverse("admin:detector_review_change", args=[row.pk])).status_code in (200, 403)
    assert client.post(reverse("admin:detector_review_delete", args=[row.pk]), {"post": "yes"}).status_code == 403
    assert Review.objects.filter(pk=row.pk).exists()


def test_list_filters_and_search(client, reviewer, alice):
    make_case(alice, "fake", 0.9)
    make_case(alice, "real", 0.2)
    client.force_login(reviewer)
    url = reverse("admin:detector_analysis_changelist")
    assert client.get(url).status_code == 200
    page = client.get(url, {"verdict__exact": "fake"}).content.decode()
    assert "fake-0.9.mp4" in page and "real-0.2.mp4" not in page
    page = client.get(url, {"q": "alice"}).content.decode()
    assert "fake-0.9.mp4" in page and "real-0.2.mp4" in page
    page = client.get(url, {"q": "ab" * 32}).content.decode()
    assert "fake-0.9.mp4" in page


def test_disagreements_and_agreement_rate_per_model(client, reviewer, alice):
    agree = make_case(alice, "fake", 0.95)
    disagree = make_case(alice, "real", 0.2)
    other_model = make_case(alice, "fake", 0.8, model="efficientnet")
    for case, decision in [
        (agree, Decision.CONFIRMED_FAKE),
        (disagree, Decision.CONFIRMED_FAKE),
        (other_model, Decision.CONFIRMED_FAKE),
    ]:
        Review.objects.create(analysis=case, reviewer=reviewer, decision=decision)
        case.review_decision = decision
        case.save()
    client.force_login(reviewer)
    page = client.get(reverse("admin:detector_disagreements")).content.decode()
    assert "real-0.2.mp4" in page and "fake-0.95.mp4" not in page
    assert "50 %" in page and "100 %" in page  # efficientnet_lstm: 1 of 2; efficientnet: 1 of 1


def test_export_and_rerun_actions(client, reviewer, alice, django_capture_on_commit_callbacks, monkeypatch):
    from detector import services

    queued = []
    monkeypatch.setattr(services, "enqueue", lambda analysis: queued.append(analysis))
    case = make_case(alice, "fake", 0.7)
    client.force_login(reviewer)
    url = reverse("admin:detector_analysis_changelist")
    export = client.post(url, {"action": "export_csv", "_selected_action": [str(case.pk)]})
    lines = export.content.decode().strip().splitlines()
    assert lines[0].startswith("id,file,sha256") and str(case.pk) in lines[1]
    client.post(url, {"action": "rerun", "_selected_action": [str(case.pk)], "apply": "1", "frames": "64", "model": ""})
    again = Analysis.objects.exclude(pk=case.pk).get()
    assert again.upload_id == case.upload_id and again.frames_requested == 64 and queued == [again]


def test_the_case_reads_in_words(client, reviewer, alice):
    case = make_case(alice, "fake", 0.912345)
    case.timings = {"decode": 0.41, "detect": 1.234, "total": 2.0}
    case.save()
    client.force_login(reviewer)
    review(client, case, Decision.CONFIRMED_FAKE, "matches the source")
    listing = client.get(reverse("admin:detector_analysis_changelist")).content.decode()
    assert "Confirmed fake" in listing and "confirmed_fake<" not in listing and "0.912<" in listing
    page = client.get(reverse("admin:detector_analysis_change", args=[case.pk])).content.decode()
    assert '<table class="timings">' in page and "<th>detect</th><td>1.23 s</td>" in page
    assert "0.912345 " not in page and '<div class="readonly">0.912</div>' in page and "0.400 to 0.600" in page
