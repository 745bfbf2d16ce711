"""The REST API (v1). Every query is limited to the caller's own analyses (staff: all), so
another user's id answers 404, exactly as the pages do."""

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, parser_classes, throttle_classes
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import BaseParser, FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle

from detector import live, reports, services
from detector.api.serializers import (
    AnalysisListSerializer,
    AnalysisSerializer,
    CreateAnalysisSerializer,
    FrameSerializer,
    RerunSerializer,
)
from detector.catalog import installed_models, without_paths
from detector.evidence import bundle
from detector.media import derived_image
from detector.models import Analysis, FrameResult, Status, Verdict
from detector.views import visible_analyses
from detector.webhooks import user_secret
from ml.formats import MAX_FRAME_BYTES

ORDERINGS = {
    "created_at",
    "-created_at",
    "fake_probability",
    "-fake_probability",
    "finished_at",
    "-finished_at",
}


class FramePagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100  # the most frames an analysis has


def quota_response(exc: "services.QuotaExceeded") -> Response:
    """429 with the reason and when to try again, like DRF's own throttles answer."""
    response = Response({"detail": str(exc)}, status=status.HTTP_429_TOO_MANY_REQUESTS)
    response["Retry-After"] = str(exc.retry_after_s)
    return response


class AnalysisViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    throttle_scope = "analyses"

    def get_serializer_class(self):
        return AnalysisListSerializer if self.action == "list" else AnalysisSerializer

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return Analysis.objects.none()
        analyses = visible_analyses(self.request.user)
        if self.action != "list":
            return analyses.prefetch_related("tracks", "reviews__reviewer")
        params = self.request.query_params
        filters = {
            "status": ("status", Status.values),
            "verdict": ("verdict", Verdict.values),
            "media_type": ("upload__media_type", ["image", "video"]),
        }
        for param, (lookup, allowed) in filters.items():
            if value := params.get(param):
                if value not in allowed:  # a typo must not look like "no results"
                    raise serializers.ValidationError({param: f"One of: {', '.join(allowed)}."})
                analyses = analyses.filter(**{lookup: value})
        for param, lookup in (("created_after", "created_at__gte"), ("created_before", "created_at__lt")):
            if value := params.get(param):
                moment = parse_datetime(value)
                if moment is None:
                    raise serializers.ValidationError({param: "Use an ISO 8601 date and time."})
                analyses = analyses.filter(**{lookup: moment})
        ordering = params.get("ordering", "-created_at")
        if ordering not in ORDERINGS:
            raise serializers.ValidationError({"ordering": f"One of: {', '.join(sorted(ORDERINGS))}."})
        return analyses.order_by(ordering)

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=["queued", "running", "done", "failed"]),
            OpenApiParameter("verdict", str, enum=["fake", "real", "uncertain", "no_face"]),
            OpenApiParameter("media_type", str, enum=["image", "video"]),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME),
            OpenApiParameter("ordering", str, enum=sorted(ORDERINGS)),
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request={"multipart/form-data": CreateAnalysisSerializer}, responses={202: AnalysisSerializer})
    def create(self, request: Request) -> Response:
        """Upload a photo or video and queue its analysis. Answers 202 with the job and its status URL."""
        serializer = CreateAnalysisSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            services.check_quota(request.user)
            upload = services.store_upload(request.user, data["file"])
        except services.QuotaExceeded as exc:
            return quota_response(exc)
        except services.StorageError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        analysis = services.create_analysis(request.user, upload, data["frames"], data["model"], data["callback_url"])
        return self._accepted(analysis)

    def perform_destroy(self, instance) -> None:
        services.delete_analysis(instance)

    @extend_schema(request=RerunSerializer, responses={202: AnalysisSerializer})
    @action(detail=True, methods=["post"])
    def rerun(self, request: Request, pk=None) -> Response:
        """Analyse the same file again with other settings; both analyses keep their results."""
        serializer = RerunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            again = services.rerun(
                self.get_object(), serializer.validated_data.get("frames"), serializer.validated_data.get("model")
            )
        except services.QuotaExceeded as exc:
            return quota_response(exc)
        return self._accepted(again)

    @extend_schema(responses=FrameSerializer(many=True))
    @action(detail=True, pagination_class=FramePagination)
    def frames(self, request: Request, pk=None) -> Response:
        """Per-frame, per-face scores and boxes, with thumbnail, crop and heatmap URLs, in time
        order, 20 frames a page (`?page=2`; `?page_size=` up to 100: a whole analysis)."""
        analysis = self.get_object()
        frames = FrameResult.objects.filter(analysis=analysis).order_by("index").prefetch_related("faces")
        page = self.paginate_queryset(frames)
        return self.get_paginated_response(FrameSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY, (200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, url_path=r"report\.(?P<fmt>pdf|json|csv)")
    def report(self, request: Request, pk=None, fmt: str = "json") -> HttpResponse:
        """The report as PDF, JSON (everything) or CSV (per frame, per face)."""
        return reports.download(self.get_object(), fmt)

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    @action(detail=True, url_path=r"evidence\.zip")
    def evidence(self, request: Request, pk=None):
        """The evidence bundle: original, reports, frames, crops, heatmaps, and SHA-256 sums."""
        return bundle(self.get_object())

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY})
    @action(detail=True, url_path=r"files/(?P<kind>thumbnail|crop|heatmap)/(?P<item>[0-9]+)")
    def files(self, request: Request, pk=None, kind: str = "", item: str = "0"):
        """A frame thumbnail, face crop or heatmap image of this analysis."""
        return derived_image(self.get_object(), kind, int(item))

    def _accepted(self, analysis) -> Response:
        analysis = visible_analyses(self.request.user).get(pk=analysis.pk)
        data = AnalysisSerializer(analysis, context={"request": self.request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})


@extend_schema(
    responses=inline_serializer(
        "InstalledModel",
        {
            "name": serializers.CharField(),
            "architecture": serializers.CharField(),
            "kind": serializers.ChoiceField(["image", "video"]),
            "version": serializers.CharField(),
            "default": serializers.BooleanField(),
            "calibration": serializers.DictField(),
            "evaluation": serializers.DictField(),
            "validation": serializers.DictField(),
            "trained_on": serializers.CharField(),
        },
        many=True,
    )
)
@api_view(["GET"])
def models_list(request: Request) -> Response:
    """The installed models: version, kind, calibration, what they were trained on, their
    validation figures and their measured accuracy on held-back data (`evaluation`)."""
    return Response(
        [
            {
                "name": m.name,
                "architecture": m.architecture,
                "kind": m.kind,
                "version": m.version,
                "default": m.is_default,
                "calibration": m.calibration,
                "evaluation": m.evaluation,
                "validation": m.provenance.get("validation") or {},
                "trained_on": m.provenance.get("data_note") or without_paths(m.provenance.get("data")) or "",
            }
            for m in installed_models()
            if m.weights_present
        ]
    )


@extend_schema(responses=inline_serializer("WebhookSecret", {"secret": serializers.CharField()}))
@api_view(["GET"])
def webhook_secret(request: Request) -> Response:
    """Your webhook signing secret (see the README: verifying webhooks)."""
    response = Response({"secret": user_secret(request.user.pk)})
    response["Cache-Control"] = "no-store, private"
    return response


class LiveThrottle(UserRateThrottle):
    scope = "live"


class PictureParser(BaseParser):
    """A raw JPEG or PNG body, handed on as bytes."""

    media_type = "image/*"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read() if stream is not None else b""


@extend_schema(
    request={"image/jpeg": OpenApiTypes.BINARY, "image/png": OpenApiTypes.BINARY},
    responses=inline_serializer(
        "LiveFrame",
        {
            "width": serializers.IntegerField(),
            "height": serializers.IntegerField(),
            "fake_probability": serializers.FloatField(allow_null=True),
            "faces": serializers.ListField(child=serializers.DictField()),
            "milliseconds": serializers.FloatField(),
            "model": serializers.CharField(),
            "threshold": serializers.FloatField(),
        },
    ),
)
@api_view(["POST"])
@parser_classes([PictureParser])
@throttle_classes([LiveThrottle])
def live_frame(request: Request) -> Response:
    """Score one camera frame (the request body: a JPEG or PNG) with the image model. Answers
    the faces in it, largest first, each with its box, P(fake), verdict and expression. The
    frame is not stored. 503 when the live scoring service is not running."""
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_FRAME_BYTES:
        return Response(
            {"detail": f"A frame is at most {MAX_FRAME_BYTES // 1024 // 1024} MB."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    try:
        code, body = live.score_frame(request.data or b"", request.content_type or "image/jpeg")
    except live.LiveUnavailable as error:
        return Response(
            {"detail": f"The live scoring service is not running ({error}). Start it with `manage.py serve`."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if code != 200:
        return Response({"detail": body.get("error", "the frame was refused")}, status=code)
    return Response(body)
