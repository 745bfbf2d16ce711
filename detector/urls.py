from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView

from detector import views

urlpatterns = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("history/", views.history, name="history"),
    path("live/", views.live_camera, name="live"),
    path("account/api/", views.api_access, name="api-access"),
    path("analyses/<uuid:pk>/", views.analysis_detail, name="analysis"),
    path("analyses/<uuid:pk>/status.json", views.analysis_status, name="analysis-status"),
    path("analyses/<uuid:pk>/rerun/", views.analysis_rerun, name="analysis-rerun"),
    path("analyses/<uuid:pk>/delete/", views.analysis_delete, name="analysis-delete"),
    path("analyses/<uuid:pk>/report.<str:fmt>", views.analysis_report, name="analysis-report"),
    path("analyses/<uuid:pk>/evidence.zip", views.analysis_evidence, name="analysis-evidence"),
    path("analyses/<uuid:pk>/compare/<uuid:other>/", views.analysis_compare, name="analysis-compare"),
    path(
        "analyses/<uuid:pk>/files/original",
        views.analysis_file,
        {"kind": "original"},
        name="analysis-original",
    ),
    path("analyses/<uuid:pk>/files/play", views.analysis_file, {"kind": "play"}, name="analysis-play"),
    path("analyses/<uuid:pk>/files/<str:kind>/<int:item>", views.analysis_file, name="analysis-file"),
    path("models/", views.models_page, name="models"),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("healthz", views.healthz, name="healthz"),
]
