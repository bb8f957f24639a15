from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from reviewapp.generation.models import GenerationJob, GenerationRun, ModelConfig
from reviewapp.generation.services import MODEL_CONFIG_FIELDS, model_config_check


class ModelConfigForm(forms.ModelForm):
    class Meta:
        model = ModelConfig
        fields = list(MODEL_CONFIG_FIELDS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        model_config_check(
            backend=data.get("backend", ""),
            location=data.get("location", ""),
            served_model_name=data.get("served_model_name", ""),
            parameters=data.get("parameters", {}),
            prompt_cxr=data.get("prompt_cxr", ""),
            prompt_ct=data.get("prompt_ct", ""),
            time_limit_seconds=data.get("time_limit_seconds") or 0,
        )
        return data


@admin.register(ModelConfig)
class ModelConfigAdmin(admin.ModelAdmin):
    form = ModelConfigForm
    list_display = ["name", "backend", "location", "is_active", "max_attempts"]
    list_filter = ["backend", "is_active"]


class GenerationRunInline(admin.TabularInline):
    model = GenerationRun
    fields = ("study", "status", "attempts", "error_message", "report")
    readonly_fields = ("study", "status", "attempts", "error_message", "report")
    extra = 0
    can_delete = False


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ["public_id", "model_config", "created_by", "created_at", "cancelled_at"]
    readonly_fields = ["model_config", "created_by", "cancelled_at"]
    inlines = [GenerationRunInline]

    def has_add_permission(self, request: Any) -> bool:
        return False  # jobs are queued through the generation page, API or command


@admin.register(GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = ["public_id", "job", "status", "attempts", "worker", "finished_at"]
    list_filter = ["status"]
    readonly_fields = tuple(f.name for f in GenerationRun._meta.fields)

    def has_add_permission(self, request: Any) -> bool:
        return False
