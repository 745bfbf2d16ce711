"""Retention: delete uploads older than N days, with every analysis, result and image of them.

python manage.py purge                 # DEEPFAKE_RETENTION_DAYS (nothing when it is 0)
python manage.py purge --days 30 --dry-run
python manage.py purge --schedule      # run daily in the cluster
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_q.models import Schedule

from detector import services
from detector.models import Upload


def purge(days: int | None = None, dry_run: bool = False) -> int:
    """Delete uploads created more than `days` days ago; returns how many."""
    days = settings.DEEPFAKE_RETENTION_DAYS if days is None else days
    if days <= 0:
        return 0
    old = Upload.objects.filter(created_at__lt=timezone.now() - timedelta(days=days))
    count = old.count()
    if not dry_run:
        for upload in old.iterator():
            services.delete_upload(upload)
    return count


class Command(BaseCommand):
    help = "Delete uploads (and their analyses and files) older than the retention period."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, help="default: DEEPFAKE_RETENTION_DAYS")
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument("--schedule", action="store_true", help="run this daily in the cluster")

    def handle(self, *args, days: int | None, dry_run: bool, schedule: bool, **options) -> None:
        if days is not None and days <= 0:
            raise CommandError("--days must be at least 1")
        if schedule:
            Schedule.objects.update_or_create(
                name="purge old uploads",
                defaults={"func": "detector.management.commands.purge.purge", "schedule_type": Schedule.DAILY},
            )
            self.stdout.write("Scheduled daily.")
            return
        count = purge(days, dry_run)
        self.stdout.write(f"{'Would delete' if dry_run else 'Deleted'} {count} uploads.")
