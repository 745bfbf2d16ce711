"""The review workflow in the Django admin: cases, reviewer decisions (an audit trail that is
only ever added to), re-runs, CSV export, and where reviewers disagree with the model."""

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from detector import services
from detector.csvfiles import SafeWriter
from detector.forms import SettingsForm
from detector.models import Analysis, Decision, Review, Upload

AGREEING = Q(verdict="fake", review_decision=Decision.CONFIRMED_FAKE) | Q(
    verdict="real", review_decision=Decision.CONFIRMED_REAL
)
DISAGREEING = Q(verdict="fake", review_decision=Decision.CONFIRMED_REAL) | Q(
    verdict="real", review_decision=Decision.CONFIRMED_FAKE
)


# The case list needs the width: without the app sidebar it fits 1280 px (status, review and
# date were off screen beside it). The apps stay one click away, on the admin's home page.
admin.site.enable_nav_sidebar = False


class ReviewInline(admin.TabularInline):
    """Earlier decisions are shown, never edited or deleted; a new one may be added."""

    model = Review
    extra = 1
    fields = ["decision", "notes", "reviewer", "created_at", "agreement"]
    readonly_fields = ["reviewer", "created_at", "agreement"]
    can_delete = False
    ordering = ["created_at"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="agrees with model")
    def agreement(self, review: Review) -> str:
        return {True: "yes", False: "NO", None: "–"}[review.agrees] if review.pk else ""


class RerunForm(SettingsForm):
    """Frames and a model chosen from the installed ones (never a free-text path)."""


@admin.register(Analysis)
class AnalysisAdmin(admin.ModelAdmin):
    # Narrow columns first and short labels, so that the list fits 1280 px.
    list_display = [
        "thumbnail",
        "file_name",
        "owner",
        "verdict",
        "probability",
        "status",
        "decision",
        "model_name",
        "created",
    ]
    list_display_links = ["thumbnail", "file_name"]
    list_filter = ["verdict", "status", "review_decision", "model_name", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["upload__original_name", "owner__username", "upload__sha256"]
    date_hierarchy = "created_at"
    list_select_related = ["upload", "owner"]
    inlines = [ReviewInline]
    actions = ["rerun", "export_csv"]
    readonly_fields = [
        "result_link",
        "upload",
        "owner",
        "status",
        "failure_reason",
        "failure_message",
        "verdict",
        "probability",
        "band",
        "model_name",
        "model_version",
        "frames_requested",
        "frames_analyzed",
        "faces_detected",
        "decision",
        "timings_table",
        "created_at",
        "finished_at",
        "expressions",
    ]
    fieldsets = [
        ("Case", {"fields": ["result_link", "upload", "owner", "created_at", "finished_at"]}),
        (
            "The model's verdict (kept as it was, whatever the review)",
            {"fields": ["verdict", "probability", "band", "model_name", "model_version"]},
        ),
        (
            "Job",
            {
                "fields": [
                    "status",
                    "failure_reason",
                    "failure_message",
                    "frames_requested",
                    "frames_analyzed",
                    "faces_detected",
                    "timings_table",
                ]
            },
        ),
        ("Facial expressions (evidence beside the verdict, never part of it)", {"fields": ["expressions"]}),
        ("Review", {"fields": ["decision"]}),
    ]

    @admin.display(description="review", ordering="review_decision")
    def decision(self, analysis: Analysis) -> str:
        return Decision(analysis.review_decision).label if analysis.review_decision else "–"

    @admin.display(description="created", ordering="created_at")
    def created(self, analysis: Analysis) -> str:
        return f"{timezone.localtime(analysis.created_at):%Y-%m-%d %H:%M}"

    @admin.display(description="uncertain band")
    def band(self, analysis: Analysis) -> str:
        if analysis.uncertain_low is None:
            return "–"
        return (
            f"{analysis.uncertain_low:.3f} to {analysis.uncertain_high:.3f} (threshold {analysis.threshold:.3f}): "
            "FAKE at or above the band, REAL below it"
        )

    @admin.display(description="timings")
    def timings_table(self, analysis: Analysis) -> str:
        if not analysis.timings:
            return "–"
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{} s</td></tr>", ((k, f"{v:.2f}") for k, v in analysis.timings.items())
        )
        return format_html('<table class="timings">{}</table>', rows)

    @admin.display(description="expressions")
    def expressions(self, analysis: Analysis) -> str:
        if not analysis.emotions:
            return "–"
        mix = ", ".join(f"{k} {v:.0%}" for k, v in sorted(analysis.emotions.items(), key=lambda item: -item[1]))
        return f"{mix}; {len(analysis.emotion_changes)} abrupt change(s)"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # cases come from uploads

    @admin.display(description="")
    def thumbnail(self, analysis: Analysis) -> str:
        frame = analysis.frames.exclude(thumbnail="").order_by("index").first()
        if frame is None:
            return "–"
        url = reverse("analysis-file", args=[analysis.pk, "thumbnail", frame.pk])
        return format_html('<img src="{}" alt="" style="height:48px;border-radius:3px">', url)

    @admin.display(description="file", ordering="upload__original_name")
    def file_name(self, analysis: Analysis) -> str:
        return analysis.upload.original_name

    @admin.display(description="P(fake)", ordering="fake_probability")
    def probability(self, analysis: Analysis) -> str:
        return "–" if analysis.fake_probability is None else f"{analysis.fake_probability:.3f}"

    @admin.display(description="evidence")
    def result_link(self, analysis: Analysis) -> str:
        url = reverse("analysis", args=[analysis.pk])
        return format_html(
            '<a href="{}" target="_blank">Open the result page (frames, faces, heatmaps, reports)</a>', url
        )

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        reviews = formset.save(commit=False)
        for review in reviews:
            review.reviewer = request.user
            review.save()
        if reviews:
            analysis = form.instance
            analysis.review_decision = reviews[-1].decision
            analysis.save(update_fields=["review_decision"])

    @admin.action(description="Re-run the selected analyses with another frame count or model")
    def rerun(self, request: HttpRequest, queryset):
        if "apply" in request.POST:
            form = RerunForm(request.POST)
            if form.is_valid():
                started, refused = 0, []
                for analysis in queryset:
                    try:
                        services.rerun(analysis, form.cleaned_data["frames"], form.cleaned_data["model"])
                    except services.QuotaExceeded as exc:
                        refused.append(f"{analysis.upload.original_name}: {exc}")
                        continue
                    started += 1
                self.message_user(request, f"{started} analyses queued again.", messages.SUCCESS)
                for reason in refused:
                    self.message_user(request, f"Not re-run: {reason}", messages.WARNING)
                return None
        else:
            form = RerunForm()
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "analyses": queryset,
            "title": "Re-run analyses",
        }
        return render(request, "admin/detector/rerun.html", context)

    @admin.action(description="Export the selected cases as CSV")
    def export_csv(self, request: HttpRequest, queryset) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="cases-{timezone.now():%Y%m%d-%H%M}.csv"'
        writer = SafeWriter(response)
        writer.writerow(
            [
                "id",
                "file",
                "sha256",
                "owner",
                "created_at",
                "status",
                "failure_reason",
                "verdict",
                "fake_probability",
                "model",
                "model_version",
                "frames_analyzed",
                "review_decision",
                "reviewer",
                "reviewed_at",
                "review_notes",
            ]
        )
        for analysis in queryset.select_related("upload", "owner").prefetch_related("reviews__reviewer"):
            last = analysis.reviews.first()  # newest first
            writer.writerow(
                [
                    analysis.pk,
                    analysis.upload.original_name,
                    analysis.upload.sha256,
                    analysis.owner.get_username(),
                    analysis.created_at.isoformat(),
                    analysis.status,
                    analysis.failure_reason,
                    analysis.verdict,
                    analysis.fake_probability,
                    analysis.model_name,
                    analysis.model_version,
                    analysis.frames_analyzed,
                    analysis.review_decision,
                    last.reviewer.get_username() if last else "",
                    last.created_at.isoformat() if last else "",
                    last.notes if last else "",
                ]
            )
        return response

    def get_urls(self):
        extra = [path("disagreements/", self.admin_site.admin_view(self.disagreements), name="detector_disagreements")]
        return extra + super().get_urls()

    def disagreements(self, request: HttpRequest) -> HttpResponse:
        """Cases where a reviewer's decision contradicts the model, and agreement per model."""
        cases = Analysis.objects.filter(DISAGREEING).select_related("upload", "owner").order_by("-created_at")
        per_model = (
            Analysis.objects.exclude(review_decision="")
            .values("model_name")
            .annotate(
                reviewed=Count("pk"),
                agree=Count("pk", filter=AGREEING),
                disagree=Count("pk", filter=DISAGREEING),
                inconclusive=Count("pk", filter=Q(review_decision=Decision.INCONCLUSIVE)),
            )
            .order_by("model_name")
        )
        rows = []
        for row in per_model:
            decided = row["agree"] + row["disagree"]
            rows.append({**row, "rate": row["agree"] / decided if decided else None})
        context = {
            **self.admin_site.each_context(request),
            "title": "Where reviewers disagree with the model",
            "cases": cases,
            "per_model": rows,
            "opts": self.model._meta,
        }
        return render(request, "admin/detector/disagreements.html", context)


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    """The audit trail: every decision, who made it and when. Read-only."""

    list_display = ["created_at", "reviewer", "decision", "analysis", "notes"]
    list_filter = ["decision", "reviewer", "created_at"]
    search_fields = ["analysis__upload__original_name", "reviewer__username", "notes"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["original_name", "owner", "media_type", "size", "sha256", "created_at"]
    search_fields = ["original_name", "sha256", "owner__username"]
    list_filter = ["media_type"]
    readonly_fields = [f.name for f in Upload._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
