"""Admin for the archive. The pseudonym map re-identifies patients: superusers only, and
read-only even for them (it is written by imports alone)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from reviewapp.imaging.models import (
    ImportBatch,
    ImportProblem,
    Instance,
    PseudonymMapping,
    Series,
    Study,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["public_id", "study_date", "modalities", "description", "stratum"]
    list_filter = ["modalities", "stratum"]
    search_fields = ["description", "accession_pseudonym", "study_instance_uid"]
    readonly_fields = [
        f.name for f in Study._meta.get_fields() if f.concrete and f.name not in ("stratum",)
    ]


@admin.register(Series)
class SeriesAdmin(ReadOnlyAdmin):
    list_display = ["series_instance_uid", "study", "modality", "series_number"]
    list_select_related = ["study"]


@admin.register(Instance)
class InstanceAdmin(ReadOnlyAdmin):
    list_display = ["sop_instance_uid", "series", "status", "instance_number", "position"]
    list_filter = ["status"]
    list_select_related = ["series"]
    exclude = ["dicom_json", "frame_ranges"]


class ImportProblemInline(admin.TabularInline):
    model = ImportProblem
    extra = 0
    can_delete = False
    readonly_fields = ["file_name", "kind", "reason", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "created_at",
        "source",
        "status",
        "files_total",
        "imported_count",
        "failed_count",
    ]
    list_filter = ["status", "source"]
    inlines = [ImportProblemInline]


@admin.register(PseudonymMapping)
class PseudonymMappingAdmin(ReadOnlyAdmin):
    list_display = ["kind", "original", "pseudonym", "date_shift_days", "created_at"]
    list_filter = ["kind"]
    search_fields = ["original", "pseudonym"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
