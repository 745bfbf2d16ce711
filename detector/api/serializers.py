from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from detector.catalog import model_names
from detector.media import sniff_media_type, unsupported_message
from detector.models import (
    Analysis,
    FaceResult,
    FrameResult,
    Review,
    Track,
)
from detector.summary import VERDICT_FIELDS
from detector.verdicts import FIELD_HELP
from detector.webhooks import WebhookTargetError, check_target
from ml.formats import DEFAULT_FRAMES, MAX_FRAMES, MIN_FRAMES


class CreateAnalysisSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=False)
    frames = serializers.IntegerField(min_value=MIN_FRAMES, max_value=MAX_FRAMES, default=DEFAULT_FRAMES)
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
    frames = serializers.IntegerField(min_value=MIN_FRAMES, max_value=MAX_FRAMES, required=False)
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


# -- provenance: what the file says about itself (`ml.provenance`), read-only -------------------


class ActionSerializer(serializers.Serializer):
    action = serializers.CharField(help_text="C2PA action without its prefix, e.g. created, edited, converted")
    software_agent = serializers.CharField()
    digital_source_type = serializers.CharField(help_text="IPTC code, e.g. trainedAlgorithmicMedia")
    when = serializers.CharField()


class IngredientSerializer(serializers.Serializer):
    title = serializers.CharField()
    format = serializers.CharField()
    relationship = serializers.CharField(help_text="parentOf, componentOf or inputTo")


class ProblemSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="C2PA validation status code")
    explanation = serializers.CharField()


class ContentCredentialsSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        ["absent", "trusted", "untrusted", "valid", "invalid", "unreadable", "unsupported"],
        help_text="untrusted: intact, signed by an authority this installation does not know",
    )
    summary = serializers.CharField(help_text="the state in a sentence")
    claim_generator = serializers.CharField()
    signer = serializers.CharField(help_text="the signing certificate's common name")
    issuer = serializers.CharField(help_text="the signing certificate's organisation")
    signed_at = serializers.CharField()
    title = serializers.CharField()
    digital_source_type = serializers.CharField(help_text="IPTC code of how the media was made")
    ai_generated = serializers.BooleanField(help_text="the manifest says a generative model made or edited it")
    actions = ActionSerializer(many=True)
    ingredients = IngredientSerializer(many=True)
    problems = ProblemSerializer(many=True, help_text="validation failures")
    manifest = serializers.JSONField(allow_null=True, help_text="the raw manifest store (null above 256 kB)")
    note = serializers.CharField()


class PhotoMetadataSerializer(serializers.Serializer):
    state = serializers.ChoiceField(["present", "absent", "unreadable"])
    make = serializers.CharField()
    model = serializers.CharField()
    software = serializers.CharField()
    taken_at = serializers.CharField(help_text="EXIF DateTimeOriginal")
    modified_at = serializers.CharField()
    gps = serializers.BooleanField(help_text="whether a position is recorded (the position is not kept)")
    orientation = serializers.IntegerField(allow_null=True)
    declared_size = serializers.CharField(help_text="the size EXIF records, when it is not the image's")
    creator_tool = serializers.CharField()
    digital_source_type = serializers.CharField(help_text="from XMP: an unsigned claim")
    thumbnail = serializers.ChoiceField(["absent", "matches", "differs", "unreadable"])
    thumbnail_distance = serializers.IntegerField(allow_null=True)
    note = serializers.CharField()


class ContainerSerializer(serializers.Serializer):
    state = serializers.ChoiceField(["present", "unreadable"])
    format = serializers.CharField()
    codec = serializers.CharField()
    profile = serializers.CharField()
    encoder = serializers.CharField(help_text="the container's encoder tag, e.g. Lavf60.3.100 (FFmpeg)")
    writing_library = serializers.CharField(help_text="e.g. x264 core 164")
    make = serializers.CharField()
    model = serializers.CharField()
    software = serializers.CharField()
    creation_time = serializers.CharField()
    frame_rate = serializers.FloatField(allow_null=True)
    frame_rate_mode = serializers.CharField(help_text="constant or variable")
    rotation = serializers.IntegerField()
    audio = serializers.BooleanField()
    audio_codec = serializers.CharField()
    bit_rate = serializers.IntegerField(allow_null=True)
    note = serializers.CharField()


class ProvenanceSerializer(serializers.Serializer):
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField()
    perceptual_hash = serializers.CharField(help_text="64-bit DCT hash of a photo (videos: per frame)")
    ai_statement = serializers.CharField(help_text="what the file says about AI generation; empty when nothing")
    content_credentials = ContentCredentialsSerializer()
    photo = PhotoMetadataSerializer(allow_null=True)
    container = ContainerSerializer(allow_null=True)


class SeenBeforeSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="analysis.pk", help_text="the newest analysis of the earlier upload")
    url = serializers.SerializerMethodField()
    file_name = serializers.CharField(source="analysis.upload.original_name")
    uploaded_at = serializers.DateTimeField(source="analysis.upload.created_at")
    verdict = serializers.CharField(source="analysis.verdict")
    how = serializers.ChoiceField(["same file", "near copy"], help_text="same SHA-256, or perceptual hashes close")
    distance = serializers.IntegerField(allow_null=True, help_text="bits of 64 between perceptual hashes")

    def get_url(self, sighting) -> str:
        return self.context["request"].build_absolute_uri(reverse("api-analysis-detail", args=[sighting.analysis.pk]))


class AnalysisSerializer(serializers.ModelSerializer):
    file_name = serializers.CharField(source="upload.original_name")
    media_type = serializers.CharField(source="upload.media_type")
    size = serializers.IntegerField(source="upload.size")
    sha256 = serializers.CharField(source="upload.sha256")
    url = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()
    people = TrackSerializer(source="tracks", many=True, read_only=True)
    reviews = ReviewSerializer(many=True, read_only=True)
    provenance = serializers.SerializerMethodField(
        help_text="What the file says about itself, beside the verdict and never in it; null until read"
    )
    seen_before = serializers.SerializerMethodField(
        help_text="Earlier uploads of the same file or a near copy, among the analyses you may see"
    )

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
            # The names every way out shares (`detector.summary`); frames_requested is above,
            # with what the upload asked for.
            *(name for name in VERDICT_FIELDS if name != "frames_requested"),
            "aggregates",
            "emotions",
            "emotion_changes",
            "timings",
            "people",
            "provenance",
            "seen_before",
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

    @extend_schema_field(ProvenanceSerializer(allow_null=True))
    def get_provenance(self, analysis: Analysis) -> dict | None:
        return analysis.upload.provenance or None

    @extend_schema_field(SeenBeforeSerializer(many=True))
    def get_seen_before(self, analysis: Analysis) -> list[dict]:
        from detector.seen import seen_before
        from detector.views import visible_analyses

        if not analysis.is_finished:
            return []
        sightings = seen_before(analysis, visible_analyses(self.context["request"].user))
        return SeenBeforeSerializer(sightings, many=True, context=self.context).data


class AnalysisListSerializer(AnalysisSerializer):
    class Meta(AnalysisSerializer.Meta):
        fields = [
            f
            for f in AnalysisSerializer.Meta.fields
            if f not in ("people", "reviews", "aggregates", "timings", "emotion_changes", "provenance", "seen_before")
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
        fields = ["index", "timestamp_s", "fake_probability", "emotion", "perceptual_hash", "thumbnail_url", "faces"]

    def get_thumbnail_url(self, frame: FrameResult) -> str | None:
        if not frame.thumbnail:
            return None
        path = reverse("api-analysis-files", args=[frame.analysis_id, "thumbnail", frame.pk])
        return self.context["request"].build_absolute_uri(path)
