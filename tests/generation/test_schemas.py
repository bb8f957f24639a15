"""The generation JSONFields' schemas: what the services store passes, a malformed document is
refused with a message naming the field and the place.

carol (coordinator) configures models and queues the baseline.
"""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError

from inference.backends import backend_cache_clear
from reviewapp.generation import schemas, services
from reviewapp.generation.models import GenerationRun, ModelConfig
from tests.inference.test_openai_backend import FakeVllm

pytestmark = pytest.mark.django_db

EVERY_PARAMETER = {
    "max_new_tokens": 300,
    "do_sample": True,
    "temperature": 0.7,
    "top_p": 0.9,
    "top_k": 50,
    "num_beams": 1,
    "repetition_penalty": 1.1,
    "no_repeat_ngram_size": 3,
    "seed": 0,
    "system_prompt": "You are a careful radiologist.",
    "ct_slices": 16,
    "ct_windows": [[-600, 1500], [40, 400], [300, 1500]],
    "max_side": 1024,
    "max_images": 2,
    "device": "cuda:0",
    "timeout_s": 120,
    "retries": 2,
    "backoff_s": 1.5,
    "throttle_seconds": 0,
}


def _field_check(model, field: str, value) -> None:
    """What the admin and model forms run: the field's own validators."""
    model._meta.get_field(field).run_validators(value)


def test_every_known_parameter_is_accepted_and_kept(coordinator) -> None:
    assert set(EVERY_PARAMETER) == schemas.KNOWN_PARAMETERS
    config = services.model_config_save(
        user=coordinator,
        name="local-model",
        backend="transformers",
        location="/models/medgemma",
        parameters=EVERY_PARAMETER,
    )
    stored = ModelConfig.objects.get(pk=config.pk).parameters
    assert stored == EVERY_PARAMETER
    _field_check(ModelConfig, "parameters", stored)


def test_parameters_of_the_wrong_shape_are_refused_naming_each_one(coordinator) -> None:
    with pytest.raises(ValidationError) as caught:
        services.model_config_save(
            user=coordinator,
            name="broken",
            backend="retrieval",
            parameters={
                "max_new_tokens": "300",
                "ct_windows": [[40, 400, 1]],
                "throttle_seconds": 301,
            },
        )
    (message,) = caught.value.message_dict["parameters"]
    assert message.startswith("parameters does not match its schema: ")
    assert "ct_windows/0: must have at most 2 items" in message
    assert "max_new_tokens: must be of type integer" in message
    assert "throttle_seconds: must be at most 300" in message
    assert not ModelConfig.objects.filter(name="broken").exists()
    with pytest.raises(ValidationError) as caught:
        _field_check(ModelConfig, "parameters", {"do_sample": "yes"})
    assert caught.value.error_list[0].code == "invalid_parameters"


def test_a_baseline_runs_reproducibility_record_matches_its_schema(
    coordinator, two_radiographs
) -> None:
    baseline = ModelConfig.objects.get(name="retrieval-baseline")
    created = services.generation_job_create(
        user=coordinator, model_config=baseline, studies=two_radiographs[:1]
    )
    run = created.job.runs.get()
    _field_check(GenerationRun, "provenance", run.provenance)  # {} while queued
    schemas.provenance_validate(run.provenance)

    assert services.generation_run_execute(run_pk=run.pk) == "succeeded"

    record = GenerationRun.objects.get(pk=run.pk).provenance
    _field_check(GenerationRun, "provenance", record)
    without_inputs = {k: v for k, v in record.items() if k != "inputs"}
    for bad, place in (
        (without_inputs, "(document): 'inputs' is a required property"),
        ({**record, "attempt": 0}, "attempt: must be at least 1"),
        ({**record, "backend": "gpt"}, "backend: must be one of"),
    ):
        with pytest.raises(ValidationError) as caught:
            _field_check(GenerationRun, "provenance", bad)
        assert caught.value.error_list[0].code == "invalid_provenance"
        assert f"provenance does not match its schema: {place}" in caught.value.messages[0]


def test_a_served_models_reproducibility_record_matches_its_schema(
    coordinator, two_radiographs
) -> None:
    # A real HTTP server standing in for vLLM; the run goes through the real service, which
    # refuses to store a record that does not match (the run would fail).
    server = FakeVllm()
    threading.Thread(target=server.httpd.serve_forever, daemon=True).start()
    backend_cache_clear()
    try:
        config = ModelConfig.objects.create(
            name="served",
            backend="openai",
            location=server.url,
            served_model_name="medgemma-4b-it",
            parameters={"max_new_tokens": 50, "backoff_s": 0},
        )
        created = services.generation_job_create(
            user=coordinator, model_config=config, studies=two_radiographs[:1]
        )
        run = created.job.runs.get()
        assert services.generation_run_execute(run_pk=run.pk) == "succeeded"
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    record = GenerationRun.objects.get(pk=run.pk).provenance
    assert record["tokens"] == {"input": 321, "output": 9}
    _field_check(GenerationRun, "provenance", record)
