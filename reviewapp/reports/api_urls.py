from django.urls import path

from reviewapp.reports.api import ReportsImportApi

urlpatterns = [path("reports/import", ReportsImportApi.as_view(), name="api-reports-import")]
