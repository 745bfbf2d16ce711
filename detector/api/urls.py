from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from detector.api import views

router = DefaultRouter()
# Trailing slashes optional, so `…/report.pdf` reads as a file name.
router.trailing_slash = "/?"
router.register("analyses", views.AnalysisViewSet, basename="api-analysis")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("v1/models/", views.models_list, name="api-models"),
    path("v1/webhook-secret/", views.webhook_secret, name="api-webhook-secret"),
    path("v1/live/frame/", views.live_frame, name="api-live-frame"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/",
        # The split view serves its script as a file: the page needs no inline script (CSP).
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="detector/api_docs.html"),
        name="api-docs",
    ),
]
