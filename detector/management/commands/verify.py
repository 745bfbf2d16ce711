"""Check a report's chain of custody against what is stored now.

    python manage.py verify report.json            # a line per item: matches, CHANGED or missing
    python manage.py verify report.json --format json

Exit status: 0 when every item matches, 1 when any changed or is missing, 2 for a file that
is not a report's JSON.
"""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from detector import custody


class Command(BaseCommand):
    help = "Recompute the SHA-256 of the upload, the model and every derived file a JSON report lists."
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("report", help="a report downloaded as JSON")
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args, report: str, format: str, **options) -> None:
        try:
            data = json.loads(Path(report).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CommandError(f"{report} is not a readable JSON report ({exc})", returncode=2) from None
        chain = data.get("custody") if isinstance(data, dict) else None
        if not isinstance(chain, dict):
            raise CommandError(f"{report} has no chain of custody (a report from before it was kept?)", returncode=2)
        checks = custody.verify(chain)
        for check in checks:
            if format == "json":
                self.stdout.write(json.dumps(check.__dict__))
            else:
                detail = f" ({check.detail})" if check.detail else ""
                self.stdout.write(f"{check.state:8} {check.item}{detail}")
        bad = [check for check in checks if check.state != custody.MATCHES]
        summary = f"{len(checks) - len(bad)} of {len(checks)} items match"
        self.stderr.write(summary + ("" if not bad else f"; {len(bad)} do not"))
        if bad:
            sys.exit(1)
