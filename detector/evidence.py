"""The evidence bundle of an analysis: one zip with the original file, the three reports, every
derived image, and a manifest of SHA-256 sums, so that a reader elsewhere can check that
nothing was changed on the way."""

import hashlib
import json
import tempfile
import zipfile
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404
from django.utils import timezone

from detector import reports
from detector.models import Analysis


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bundle(analysis: Analysis) -> FileResponse:
    """The bundle as a download (built in a temporary file: an original may be large); 404
    while the analysis has not finished."""
    if not analysis.is_finished:
        raise Http404("the analysis has not finished")
    data = reports.from_analysis(analysis)
    stem = reports.report_filename(analysis, "")[:-1]
    members: list[tuple[str, Path | bytes]] = [
        (f"original/{Path(analysis.upload.original_name).name or 'upload'}", _stored(analysis.upload.file.name)),
        (f"{stem}.pdf", reports.as_pdf(data)),
        (f"{stem}.json", json.dumps(reports.as_json(data), indent=2, default=str).encode()),
        (f"{stem}.csv", reports.as_csv(data).encode()),
    ]
    for frame in analysis.frames.prefetch_related("faces"):
        if frame.thumbnail:
            members.append((f"frames/frame-{frame.index:06d}.jpg", _stored(frame.thumbnail.name)))
        for face in frame.faces.all():
            for kind in ("crop", "heatmap"):
                stored = getattr(face, kind)
                if stored:
                    members.append(
                        (f"faces/frame-{frame.index:06d}-person-{face.track_id}-{kind}.jpg", _stored(stored.name))
                    )
    manifest = {
        "case": str(analysis.pk),
        "file": analysis.upload.original_name,
        "created_at": timezone.now().isoformat(),
        "files": {},
    }
    # The response closes (and so removes) the file once it is sent.
    handle = tempfile.NamedTemporaryFile(suffix=".zip")  # noqa: SIM115
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            if content is None:
                continue
            if isinstance(content, Path):
                digest = hashlib.sha256()
                with content.open("rb") as source, archive.open(name, "w", force_zip64=True) as target:
                    for chunk in iter(lambda: source.read(1 << 20), b""):
                        digest.update(chunk)
                        target.write(chunk)
                manifest["files"][name] = digest.hexdigest()
            else:
                archive.writestr(name, content)
                manifest["files"][name] = _sha256(content)
        archive.writestr("MANIFEST.json", json.dumps(manifest, indent=2))
        archive.writestr("SHA256SUMS", "".join(f"{digest}  {name}\n" for name, digest in manifest["files"].items()))
    handle.seek(0)
    return FileResponse(handle, as_attachment=True, filename=reports.report_filename(analysis, "zip"))


def _stored(relative: str) -> Path | None:
    path = Path(settings.MEDIA_ROOT) / relative if relative else None
    return path if path is not None and path.is_file() else None
