from django.urls import path

from reviewapp.reports.api import CandidatesImportApi, ReportsImportApi, ReportSourcesApi

urlpatterns = [
    path("reports/import", ReportsImportApi.as_view(), name="api-reports-import"),
    path("reports/candidates/import", CandidatesImportApi.as_view(), name="api-candidates-import"),
    path("reports/sources", ReportSourcesApi.as_view(), name="api-report-sources"),
]
