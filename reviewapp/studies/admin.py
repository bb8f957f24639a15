"""Admin: look, never touch. Ratings and assignments change only through the services (which
check versions and keep idempotency); the admin is for inspection by administrators."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from reviewapp.studies.models import Assignment, Case, Rating, ReaderStudy


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ReaderStudy)
class ReaderStudyAdmin(ReadOnlyAdmin):
    list_display = ["name", "status", "protocol_key", "protocol_version", "created_at"]
    list_filter = ["status", "protocol_key"]


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "reader_study", "stratum"]
    list_filter = ["reader_study"]


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "reader_study", "reader", "position", "candidate_side", "status"]
    list_filter = ["reader_study", "status"]


@admin.register(Rating)
class RatingAdmin(ReadOnlyAdmin):
    list_display = ["assignment", "version", "submitted_at", "revised_at"]
