from django.conf import settings
from django.urls import reverse
from rest_framework import serializers

from detector.catalog import model_names
from detector.media import sniff_media_type, unsupported_message
from detector.models import (
    FRAMES_DEFAULT,
    FRAMES_MAX,
    FRAMES_MIN,
    Analysis,
    FaceResult,
    FrameResult,
    Review,
    Track,
)
from detector.verdicts import FIELD_HELP
from detector.webhooks import WebhookTargetError, check_target


class CreateAnalysisSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=False)
    frames = serializers.IntegerField(min_value=FRAMES_MIN, max_value=FRAMES_MAX, default=FRAMES_DEFAULT)
    model = serializers.CharField(required=False, allow_blank=True, default="")
    callback_url = serializers.URLField(required=False, allow_blank=True, default="", max_length=500)

    def validate_file(self, value):
        limit = settings.DEEPFAKE_MAX_UPLOAD_MB * 1024 * 1024
        if value.size > limit:
            raise serializers.ValidationError(f"The file is larger than {settings.DEEPFAKE_MAX_UPLOAD_MB} MB.")
        # What can be known at upload is refused at upload: nothing is stored or queued.
        if sniff_media_type(value.file) is None:
            raise serializers.ValidationError(unsupported_message(value.name or "the file"))
        return value

    def validate_model(self, value: str) -> str:
        if value and value not in model_names():
            raise serializers.ValidationError(f"Unknown model. Installed: {', '.join(model_names()) or 'none'}.")
        return value

    def validate_callback_url(self, value: str) -> str:
        if value:
            try:
                check_target(value)
            except WebhookTargetError as exc:
                raise serializers.ValidationError(str(exc)) from None
        return value


class RerunSerializer(serializers.Serializer):
    frames = serializers.IntegerField(min_value=FRAMES_MIN, max_value=FRAMES_MAX, required=False)
    model = serializers.CharField(required=False, allow_blank=True)

    def validate_model(self, value: str) -> str:
        return CreateAnalysisSerializer().validate_model(value)


class TrackSerializer(serializers.ModelSerializer):
    class Meta:
        model = Track
        fields = [
            "track_id",
            "faces",
            "fake_probability",
            "mean_probability",
            "max_probability",
            "median_face_size",
            "verdict",
            "counted",
        ]


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.get_username")

    class Meta:
        model = Review
        fields = ["decision", "notes", "reviewer", "created_at"]


class AnalysisSerializer(serializers.ModelSerializer):
    file_name = serializers.CharField(source="upload.original_name")
    media_type = serializers.CharField(source="upload.media_type")
    size = serializers.IntegerField(source="upload.size")
    sha256 = serializers.CharField(source="upload.sha256")
    url = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()
    people = TrackSerializer(source="tracks", many=True, read_only=True)
    reviews = ReviewSerializer(many=True, read_only=True)

    class Meta:
        model = Analysis
        fields = [
            "id",
            "url",
            "status_url",
            "file_name",
            "media_type",
            "size",
            "sha256",
            "frames_requested",
            "model_requested",
            "status",
            "stage",
            "progress",
            "failure_reason",
            "failure_message",
            "verdict",
            "fake_probability",
            "confidence",
            "threshold",
            "uncertain_low",
            "uncertain_high",
            "model_name",
            "model_version",
            "frames_analyzed",
            "faces_detected",
            "aggregates",
            "emotions",
            "emotion_changes",
            "timings",
            "people",
            "review_decision",
            "reviews",
            "callback_url",
            "created_at",
            "started_at",
            "finished_at",
        ]
        extra_kwargs = {name: {"help_text": text} for name, text in FIELD_HELP.items()}

    def get_url(self, analysis: Analysis) -> str:
        return self.context["request"].build_absolute_uri(reverse("api-analysis-detail", args=[analysis.pk]))

    def get_status_url(self, analysis: Analysis) -> str:
        return self.get_url(analysis)


class AnalysisListSerializer(AnalysisSerializer):
    class Meta(AnalysisSerializer.Meta):
        fields = [
            f
            for f in AnalysisSerializer.Meta.fields
            if f not in ("people", "reviews", "aggregates", "timings", "emotion_changes")
        ]


class FaceSerializer(serializers.ModelSerializer):
    crop_url = serializers.SerializerMethodField()
    heatmap_url = serializers.SerializerMethodField()

    class Meta:
        model = FaceResult
        fields = [
            "id",
            "track_id",
            "box",
            "landmarks",
            "detector_confidence",
            "interpolated",
            "fake_probability",
            "emotion",
            "emotions",
            "crop_url",
            "heatmap_url",
        ]

    def _url(self, face: FaceResult, kind: str) -> str | None:
        if not getattr(face, kind):
            return None
        path = reverse("api-analysis-files", args=[face.analysis_id, kind, face.pk])
        return self.context["request"].build_absolute_uri(path)

    def get_crop_url(self, face: FaceResult) -> str | None:
        return self._url(face, "crop")

    def get_heatmap_url(self, face: FaceResult) -> str | None:
        return self._url(face, "heatmap")


class FrameSerializer(serializers.ModelSerializer):
    faces = FaceSerializer(many=True, read_only=True)
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = FrameResult
        fields = ["index", "timestamp_s", "fake_probability", "emotion", "thumbnail_url", "faces"]

    def get_thumbnail_url(self, frame: FrameResult) -> str | None:
        if not frame.thumbnail:
            return None
        path = reverse("api-analysis-files", args=[frame.analysis_id, "thumbnail", frame.pk])
        return self.context["request"].build_absolute_uri(path)
