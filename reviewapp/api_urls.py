"""Version 1 of the REST API: each app contributes its routes here."""

from django.urls import include, path

urlpatterns = [
    path("", include("reviewapp.accounts.api_urls")),
    path("", include("reviewapp.imaging.api_urls")),
    path("", include("reviewapp.reports.api_urls")),
    path("", include("reviewapp.studies.api_urls")),
    path("", include("reviewapp.generation.api_urls")),
    path("", include("reviewapp.analysis.api_urls")),
    path("", include("reviewapp.metrics.api_urls")),
]
