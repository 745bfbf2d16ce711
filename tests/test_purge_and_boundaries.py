import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone

from detector.models import Analysis, FrameResult, Upload
from tests.conftest import ROOT


@pytest.mark.django_db
def test_purge_deletes_old_uploads_with_all_their_files(alice, settings):
    media = Path(settings.MEDIA_ROOT)
    old = Upload.objects.create(owner=alice, original_name="old.mp4", size=4, sha256="1" * 64)
    old.file.save("old.mp4", ContentFile(b"data"))
    new = Upload.objects.create(owner=alice, original_name="new.mp4", size=4, sha256="2" * 64)
    new.file.save("new.mp4", ContentFile(b"data"))
    analysis = Analysis.objects.create(upload=old, owner=alice)
    derived = media / analysis.result_dir / "frame_000001.jpg"
    derived.parent.mkdir(parents=True)
    derived.write_bytes(b"jpeg")
    FrameResult.objects.create(
        analysis=analysis, index=1, timestamp_s=0.0, thumbnail=f"{analysis.result_dir}/frame_000001.jpg"
    )
    Upload.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))

    call_command("purge", "--days", "30", "--dry-run")
    assert Upload.objects.count() == 2
    call_command("purge", "--days", "30")
    assert list(Upload.objects.all()) == [new]
    assert not Analysis.objects.exists() and not FrameResult.objects.exists()
    assert not (media / old.file.name).exists() and not derived.parent.exists()
    assert (media / new.file.name).exists()
    settings.DEEPFAKE_RETENTION_DAYS = 0
    call_command("purge")  # 0: keep everything
    assert Upload.objects.count() == 1


def test_the_web_process_never_imports_torch():
    """Loading every URL, view, API and admin module of the web app must not pull in torch or OpenCV."""
    code = (
        "import sys, django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'deepfake_site.settings'; django.setup();"
        "import deepfake_site.urls, detector.views, detector.api.views, detector.admin;"
        "import detector.tasks, detector.reports, detector.store;"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        "bad = [m for m in ('torch', 'torchvision', 'cv2', 'facenet_pytorch') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.engine
def test_ml_never_imports_django():
    code = (
        "import sys, ml.inference, ml.training.train, ml.training.evaluate, ml.training.datasets;"
        "bad = [m for m in sys.modules if m == 'django' or m.startswith(('django.', 'detector'))];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
