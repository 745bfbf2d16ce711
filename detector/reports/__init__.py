"""Downloadable reports of an analysis: JSON (everything), CSV (per frame, per face), PDF.

`data` gathers what a report shows (from stored rows or an engine result); `tables` writes
JSON and CSV, `pdf` the PDF. `download` serves any of them for an analysis.
"""

from pathlib import Path

from django.http import Http404, HttpResponse, JsonResponse
from django.utils.text import slugify

from detector.models import Analysis
from detector.reports.data import ReportData, from_analysis, from_result
from detector.reports.pdf import as_pdf
from detector.reports.tables import as_csv, as_json

__all__ = ["ReportData", "as_csv", "as_json", "as_pdf", "download", "from_analysis", "from_result", "report_filename"]


def report_filename(analysis: Analysis, extension: str) -> str:
    """`interview-45c5b349.pdf`: the original's name and the case, safe in any file system."""
    stem = slugify(Path(analysis.upload.original_name).stem)[:60] or "analysis"
    return f"{stem}-{analysis.pk.hex[:8]}.{extension}"


def download(analysis: Analysis, fmt: str) -> HttpResponse:
    """The report of an analysis as a file download: "pdf", "json" or "csv"."""
    data = from_analysis(analysis)
    if fmt == "json":
        response = JsonResponse(as_json(data), json_dumps_params={"indent": 2})
    elif fmt == "csv":
        response = HttpResponse(as_csv(data), content_type="text/csv; charset=utf-8")
    elif fmt == "pdf":
        response = HttpResponse(as_pdf(data), content_type="application/pdf")
    else:
        raise Http404("no such report format")
    response["Content-Disposition"] = f'attachment; filename="{report_filename(analysis, fmt)}"'
    return response
