from django import forms
from django.conf import settings

from detector.catalog import model_names
from detector.media import sniff_media_type, unsupported_message
from detector.models import Status, Verdict
from ml.formats import DEFAULT_FRAMES, MAX_FRAMES, MIN_FRAMES


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        files = [f for f in files if f]
        if not files:
            raise forms.ValidationError("Choose at least one photo or video.", code="required")
        limit = settings.DEEPFAKE_MAX_UPLOAD_MB * 1024 * 1024
        for f in files:
            if f.size == 0:
                raise forms.ValidationError(f"“{f.name}” is empty.", code="empty")
            if f.size > limit:
                raise forms.ValidationError(
                    f"“{f.name}” is larger than {settings.DEEPFAKE_MAX_UPLOAD_MB} MB.", code="too_large"
                )
            if sniff_media_type(f.file) is None:  # refused at upload: nothing is stored or queued
                raise forms.ValidationError(unsupported_message(f.name), code="unsupported")
        return files


def model_choices() -> list[tuple[str, str]]:
    return [("", "Default for the file type")] + [(name, name) for name in model_names()]


class SettingsForm(forms.Form):
    """How to analyse: the frame count (videos) and the model."""

    frames = forms.IntegerField(
        min_value=MIN_FRAMES,
        max_value=MAX_FRAMES,
        initial=DEFAULT_FRAMES,
        error_messages={
            "min_value": f"Choose between {MIN_FRAMES} and {MAX_FRAMES} frames.",
            "max_value": f"Choose between {MIN_FRAMES} and {MAX_FRAMES} frames.",
            "invalid": "The frame count must be a whole number.",
        },
    )
    model = forms.ChoiceField(required=False, choices=())

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = model_choices()


class UploadForm(SettingsForm):
    files = MultipleFileField(widget=MultipleFileInput(attrs={"accept": "image/*,video/*"}))


class HistoryFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200)
    verdict = forms.ChoiceField(required=False, choices=[("", "Any verdict"), *Verdict.choices])
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Status.choices])
