"""Pages. Views validate, store, enqueue and render; they never analyse (no torch here)."""

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from rest_framework.authtoken.models import Token

from detector import provenance, reports, services, summary, verdicts
from detector.catalog import installed_models, measured_accuracy, scoreboard_sentence, weak_evidence, without_paths
from detector.evidence import bundle
from detector.forms import HistoryFilterForm, SettingsForm, UploadForm
from detector.health import REQUIRED, run_checks
from detector.media import derived_image, media_response, playable_type, playback_response
from detector.models import (
    Analysis,
    FailureReason,
    FrameResult,
)
from detector.seen import seen_before
from detector.webhooks import user_secret
from ml.formats import DEFAULT_FRAMES, MAX_FRAMES, MIN_FRAMES
from ml.results import ABRUPT_MAX_GAP_S

# What a user can do about each kind of failure (the page says what failed, why, and this).
FAILURE_ADVICE = {
    FailureReason.UNREADABLE_MEDIA: (
        "The file is damaged or in a form this service cannot decode. Export it again as MP4 (H.264) "
        "or JPEG/PNG from the program that made it, and upload that."
    ),
    FailureReason.UNSUPPORTED_TYPE: "Convert it to a photo (JPEG, PNG, WebP) or a video (MP4, MOV, WebM); upload that.",
    FailureReason.TOO_LARGE: "Scale it down below the limit named above (for a video, 4K or less) and upload it again.",
    FailureReason.MODEL_UNAVAILABLE: (
        "Analyse it again with another model, or ask the administrator to install the missing model."
    ),
    FailureReason.TIMEOUT: "Analyse it again with fewer frames, or when the queue is quieter.",
    FailureReason.INTERNAL_ERROR: (
        "Analyse it again. If it fails again, tell the administrator the case id in this page's address."
    ),
}
RERUN_MAY_HELP = {FailureReason.MODEL_UNAVAILABLE, FailureReason.TIMEOUT, FailureReason.INTERNAL_ERROR}
# An analysis's largest columns, which lists of analyses never show.
HEAVY_FIELDS = ("timeline_svg", "histogram_svg", "emotion_svg", "custody", "timings", "aggregates", "emotion_changes")


def visible_analyses(user) -> QuerySet[Analysis]:
    """What a user may see: their own analyses; staff see everyone's. The upload's provenance
    (up to a few hundred kB each) and fingerprint load only where they are read."""
    analyses = Analysis.objects.select_related("upload", "owner").defer("upload__provenance", "upload__fingerprint")
    return analyses if user.is_staff else analyses.filter(owner=user)


def get_analysis(request: HttpRequest, pk) -> Analysis:
    return get_object_or_404(visible_analyses(request.user), pk=pk)


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.check_quota(request.user, len(data["files"]))
                created = [
                    services.create_analysis(
                        request.user, services.store_upload(request.user, f), data["frames"], data["model"]
                    )
                    for f in data["files"]
                ]
            except (services.StorageError, services.QuotaExceeded) as exc:
                form.add_error(None, str(exc))
            else:
                if len(created) == 1:
                    return redirect("analysis", pk=created[0].pk)
                messages.success(request, f"{len(created)} files uploaded; each is analysed on its own.")
                return redirect("history")
    else:
        form = UploadForm(initial={"frames": DEFAULT_FRAMES})
    recent = visible_analyses(request.user).filter(owner=request.user)[:5]
    context = {
        "form": form,
        "recent": recent,
        "max_upload_mb": settings.DEEPFAKE_MAX_UPLOAD_MB,
        "frames_min": MIN_FRAMES,
        "frames_max": MAX_FRAMES,
    }
    return render(request, "detector/upload.html", context)


@login_required
def history(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET or None)
    analyses = visible_analyses(request.user)
    if form.is_valid():
        if query := form.cleaned_data["q"].strip():
            analyses = analyses.filter(Q(upload__original_name__icontains=query) | Q(upload__sha256=query.lower()))
        if verdict := form.cleaned_data["verdict"]:
            analyses = analyses.filter(verdict=verdict)
        if status := form.cleaned_data["status"]:
            analyses = analyses.filter(status=status)
    # A row needs neither the charts nor the custody record (tens of kB an analysis), and of the
    # frames only the first thumbnail's id: one query for the page, however many frames.
    first_thumbnail = FrameResult.objects.filter(analysis=OuterRef("pk")).exclude(thumbnail="").order_by("index")
    analyses = analyses.defer(*HEAVY_FIELDS).annotate(thumbnail_frame=Subquery(first_thumbnail.values("pk")[:1]))
    page = Paginator(analyses, 20).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "detector/history.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


@login_required
def analysis_detail(request: HttpRequest, pk) -> HttpResponse:
    analysis = get_analysis(request, pk)
    frames = list(analysis.frames.prefetch_related("faces"))
    tracks = list(analysis.tracks.all())
    counted = {t.track_id for t in tracks if t.counted}
    faces = sorted(
        analysis.faces.select_related("frame"),
        key=lambda face: (face.track_id not in counted, -face.fake_probability),
    )
    width = analysis.upload.width or 1
    height = analysis.upload.height or 1
    duration = analysis.upload.duration_s or 0
    strip = []
    for frame in frames:
        boxes = [
            {
                "left": 100 * face.box[0] / width,
                "top": 100 * face.box[1] / height,
                "width": 100 * (face.box[2] - face.box[0]) / width,
                "height": 100 * (face.box[3] - face.box[1]) / height,
                "score": face.fake_probability,
                "suspicious": analysis.threshold is not None and face.fake_probability >= analysis.threshold,
            }
            for face in frame.faces.all()
        ]
        strip.append(
            {
                "frame": frame,
                "boxes": boxes,
                # Where the frame sits on the player's timeline, and its score's height there.
                "at_pct": round(100 * min(1.0, frame.timestamp_s / duration), 2) if duration else 0,
                "score_pct": round(100 * (frame.fake_probability or 0), 1),
                "suspicious": analysis.threshold is not None
                and frame.fake_probability is not None
                and frame.fake_probability >= analysis.threshold,
            }
        )
    measured = measured_accuracy(analysis.model_name, analysis.model_version)
    reading = verdicts.reading_of(analysis)
    is_photo = analysis.upload.media_type == "image"
    stored = Path(settings.MEDIA_ROOT) / analysis.upload.file.name
    playable = not is_photo and analysis.status == "done" and stored.is_file() and playable_type(stored) is not None
    gap = duration / max(1, (analysis.frames_analyzed or 1) - 1)
    context = {
        "reading": reading,
        "is_photo": is_photo,
        "playable": playable,
        # A histogram of one or two faces says nothing a reader cannot see in the faces themselves.
        "show_histogram": bool(analysis.histogram_svg) and (not is_photo or (analysis.faces_detected or 0) > 2),
        "failure_advice": FAILURE_ADVICE.get(analysis.failure_reason, FAILURE_ADVICE[FailureReason.INTERNAL_ERROR]),
        # A failure for the file's own sake (unreadable, too large, no face) is not mended by
        # analysing it again; a timeout or an error of the service may be.
        "can_rerun": analysis.status != "failed" or analysis.failure_reason in RERUN_MAY_HELP,
        "last_review": analysis.reviews.select_related("reviewer").first(),
        "queue": services.queue_estimate(analysis),
        # Every analysis of the same file the user may see: the runs, newest first.
        "runs": visible_analyses(request.user).filter(upload=analysis.upload).order_by("-created_at"),
        "seen": seen_before(analysis, visible_analyses(request.user)) if analysis.is_finished else [],
        "provenance": provenance.sections(
            analysis.upload.provenance, analysis.upload.sha256, analysis.upload.media_type
        ),
        "ai_statement": provenance.ai_statement(analysis.upload.provenance),
        "near_copy_bits": settings.DEEPFAKE_NEAR_COPY_BITS,
        "sparse_sampling": not is_photo and gap > ABRUPT_MAX_GAP_S,
        "sample_gap_s": gap,
        "analysis": analysis,
        "upload": analysis.upload,
        "strip": strip,
        "frames": frames,
        "top_faces": faces[:12],
        "more_faces": faces[12:],
        "tracks": tracks,
        "people": len([t for t in tracks if t.counted]) > 1 or len(tracks) > 1,
        "emotions": sorted(analysis.emotions.items(), key=lambda item: -item[1]),
        "measured": measured,
        "weak_evidence": weak_evidence(measured),
        "scoreboard": scoreboard_sentence(measured),
        "settings_form": SettingsForm(initial={"frames": analysis.frames_requested, "model": analysis.model_requested}),
    }
    return render(request, "detector/detail.html", context)


@login_required
@require_GET
def analysis_compare(request: HttpRequest, pk, other) -> HttpResponse:
    """Two analyses side by side (two runs of one file, or two models): verdicts, scores, timelines."""
    pair = [get_analysis(request, pk), get_analysis(request, other)]
    columns = [{"analysis": analysis, "reading": verdicts.reading_of(analysis)} for analysis in pair]
    same_file = pair[0].upload_id == pair[1].upload_id
    return render(request, "detector/compare.html", {"columns": columns, "same_file": same_file})


@login_required
@require_GET
@never_cache
def analysis_status(request: HttpRequest, pk) -> JsonResponse:
    analysis = get_analysis(request, pk)
    return JsonResponse(
        {
            **summary.of(analysis),
            "stage": analysis.stage,
            "progress": analysis.progress,
            "finished": analysis.is_finished,
            # Queued: the place in the queue and an estimate from measured times.
            **services.queue_estimate(analysis),
        }
    )


@login_required
@require_POST
def analysis_rerun(request: HttpRequest, pk) -> HttpResponse:
    analysis = get_analysis(request, pk)
    form = SettingsForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return redirect("analysis", pk=analysis.pk)
    try:
        again = services.rerun(analysis, form.cleaned_data["frames"], form.cleaned_data["model"])
    except services.QuotaExceeded as exc:
        messages.error(request, str(exc))
        return redirect("analysis", pk=analysis.pk)
    messages.success(request, "A new analysis of the same file was started; the earlier one is kept.")
    return redirect("analysis", pk=again.pk)


@login_required
@require_POST
def analysis_delete(request: HttpRequest, pk) -> HttpResponse:
    analysis = get_analysis(request, pk)
    name = analysis.upload.original_name
    services.delete_analysis(analysis)
    messages.success(request, f"The analysis of “{name}” and its files were deleted.")
    return redirect("history")


@login_required
@require_GET
def analysis_file(request: HttpRequest, pk, kind: str, item: int = 0) -> FileResponse:
    """The original upload, a frame thumbnail, a face crop or a heatmap: owner (or staff) only."""
    analysis = get_analysis(request, pk)
    if kind == "original":
        return media_response(analysis.upload.file.name, analysis.upload.original_name, attachment=True)
    if kind == "play":
        return playback_response(request, analysis.upload.file.name)
    return derived_image(analysis, kind, item)


@login_required
@require_GET
def analysis_evidence(request: HttpRequest, pk) -> FileResponse:
    """One zip: the original, the reports, every derived image and their SHA-256 sums."""
    return bundle(get_analysis(request, pk))


@login_required
@require_GET
def analysis_report(request: HttpRequest, pk, fmt: str) -> HttpResponse:
    return reports.download(get_analysis(request, pk), fmt)


@never_cache  # the token and the webhook secret must not stay in any cache
@login_required
def api_access(request: HttpRequest) -> HttpResponse:
    """The user's API token (created or replaced on POST) and webhook secret."""

    if request.method == "POST":
        replaced, _ = Token.objects.filter(user=request.user).delete()
        Token.objects.create(user=request.user)
        if replaced:
            messages.success(request, "A new API token was created; the old one no longer works.")
        else:
            messages.success(request, "Your API token was created.")
        return redirect("api-access")
    token = Token.objects.filter(user=request.user).first()
    context = {"token": token, "webhook_secret": user_secret(request.user.pk)}
    return render(request, "detector/api_access.html", context)


@login_required
def live_camera(request: HttpRequest) -> HttpResponse:
    """The live camera page; frames go to the API's live endpoint (`api-live-frame`)."""
    image_model = next((m for m in installed_models() if m.kind == "image" and m.is_default), None)
    threshold = image_model.calibration.get("threshold", 0.5) if image_model else 0.5
    return render(request, "detector/live.html", {"threshold": threshold})


@login_required
def models_page(request: HttpRequest) -> HttpResponse:
    """The model cards, readable: training data, calibration, measured accuracy, scoreboard."""
    models = []
    for m in installed_models():
        if not m.weights_present:
            continue
        m.trained_on = m.provenance.get("data_note") or without_paths(m.provenance.get("data")) or ""
        validation = m.provenance.get("validation") or {}
        m.fit = m.provenance.get("calibration_fit") or (validation if "coverage" in validation else None)
        models.append(m)
    return render(request, "detector/models.html", {"models": models})


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("upload")
    return render(request, "detector/home.html")


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers, 503 otherwise; the body says which failed."""
    checks = run_checks()
    healthy = all(checks[name]["ok"] for name in REQUIRED)
    if not request.user.is_staff:
        # Anyone may ask whether the service is up; only staff learn its internals
        # (database vendor, broker kind, error texts).
        checks = {name: {"ok": check["ok"]} for name, check in checks.items()}
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks},
        status=200 if healthy else 503,
    )
