from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from reviewapp.core import views as core_views
from reviewapp.core.api_docs import ApiDocsView, ApiRedocView

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("accounts/", include("reviewapp.accounts.urls")),
    path("imaging/", include("reviewapp.imaging.urls")),
    path("reports/", include("reviewapp.reports.urls")),
    path("studies/<str:study_id>/invitations/", include("reviewapp.accounts.invitation_urls")),
    path("studies/", include("reviewapp.studies.urls")),
    path("generation/", include("reviewapp.generation.urls")),
    path("analysis/", include("reviewapp.analysis.urls")),
    path("metrics/", include("reviewapp.metrics.urls")),
    path("dicomweb/", include("reviewapp.imaging.dicomweb.urls")),
    path("viewer/", include("reviewapp.imaging.viewer.urls")),
    path("api/v1/", include("reviewapp.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", ApiRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("admin/", admin.site.urls),
]
