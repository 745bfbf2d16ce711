"""End jobs whose worker died without a word (power loss, OOM kill, a machine gone), and send
jobs whose task never reached the broker (it was down when they were uploaded).

The queue re-delivers a task whose worker died, and the task's hook ends jobs that timed
out; this catches what both miss, so no job stays `queued` or `running` forever. Run it from
cron, or let the cluster's scheduler run it (`manage.py reap --schedule` installs that).
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone
from django_q.models import Schedule

from detector.models import Analysis, FailureReason, Status
from detector.services import requeue_unsent


def reap(now=None) -> int:
    """Fail jobs running longer than the timeout plus the queue's retry window (after which a
    re-delivery would have started them again). Returns how many were ended."""
    now = now or timezone.now()
    cluster = settings.Q_CLUSTER
    # A job may be delivered `max_attempts` times, each after `retry` seconds at the most.
    window = timedelta(seconds=cluster["retry"] * cluster.get("max_attempts", 1) + settings.DEEPFAKE_TASK_TIMEOUT)
    stale = Analysis.objects.filter(status__in=[Status.QUEUED, Status.RUNNING], created_at__lt=now - window)
    message = "No worker finished this job (the worker stopped or was lost); analyse the file again."
    return stale.update(
        status=Status.FAILED, failure_reason=FailureReason.INTERNAL_ERROR, failure_message=message, finished_at=now
    )


class Command(BaseCommand):
    help = "Fail analyses stuck in queued/running after their worker died."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--schedule", action="store_true", help="run this every 10 minutes in the cluster")

    def handle(self, *args, schedule: bool, **options) -> None:
        if schedule:
            Schedule.objects.update_or_create(
                name="reap stuck analyses",
                defaults={
                    "func": "detector.management.commands.reap.reap",
                    "schedule_type": Schedule.MINUTES,
                    "minutes": 10,
                },
            )
            Schedule.objects.update_or_create(
                name="send jobs the broker missed",
                defaults={"func": "detector.services.requeue_unsent", "schedule_type": Schedule.MINUTES, "minutes": 1},
            )
            self.stdout.write("Scheduled: reap every 10 minutes, re-send unsent jobs every minute.")
            return
        self.stdout.write(f"Ended {reap()} stuck analyses; sent {requeue_unsent()} jobs the broker had missed.")
