from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from detector.management.commands.reap import reap
from detector.models import Analysis, FailureReason, Status, Upload

pytestmark = pytest.mark.django_db


def test_jobs_stuck_past_every_retry_are_failed_and_others_left_alone(alice):
    upload = Upload.objects.create(owner=alice, file="uploads/a.mp4", original_name="a.mp4", size=1, sha256="0" * 64)
    stuck = Analysis.objects.create(upload=upload, owner=alice, status=Status.RUNNING)
    fresh = Analysis.objects.create(upload=upload, owner=alice, status=Status.RUNNING)
    done = Analysis.objects.create(upload=upload, owner=alice, status=Status.DONE)
    Analysis.objects.filter(pk__in=[stuck.pk, done.pk]).update(created_at=timezone.now() - timedelta(days=1))
    assert reap() == 1
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    done.refresh_from_db()
    assert stuck.status == Status.FAILED and stuck.failure_reason == FailureReason.INTERNAL_ERROR
    assert fresh.status == Status.RUNNING and done.status == Status.DONE


def test_reap_can_schedule_itself():
    from django_q.models import Schedule

    call_command("reap", "--schedule")
    call_command("reap", "--schedule")
    assert Schedule.objects.filter(name="reap stuck analyses").count() == 1
    assert Schedule.objects.filter(func="detector.services.requeue_unsent").count() == 1
