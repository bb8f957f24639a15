from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from reviewapp.reports.models import Report


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = [
        "public_id",
        "study",
        "kind",
        "version",
        "is_latest",
        "created_at",
        "source_note",
    ]
    list_filter = ["kind", "is_latest"]
    list_select_related = ["study"]
    raw_id_fields = ["study", "author", "derived_from", "supersedes"]

    # Report texts are immutable (the database refuses an in-place change); a changed text is
    # a new version made through the reports services, never an edit here.
    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
