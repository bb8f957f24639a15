from __future__ import annotations

from django.contrib import admin

from reviewapp.reports.models import Report


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["public_id", "study", "kind", "created_at", "source_note"]
    list_filter = ["kind"]
    list_select_related = ["study"]
    raw_id_fields = ["study", "author", "derived_from"]
