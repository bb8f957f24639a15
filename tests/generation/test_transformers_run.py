"""A local transformers model through the real run service: on CPU always, on CUDA (bf16,
device placement) wherever a GPU is present."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inference.backends import backend_cache_clear
from reviewapp.generation import services
from reviewapp.generation.models import GenerationRun, ModelConfig
from reviewapp.reports.models import Report
from tests.generation.conftest import CT_FILES
from tests.inference.tiny_models import build_llava

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here"),
    ),
]


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_llava(tmp_path_factory.mktemp("models") / "llava")


@pytest.mark.parametrize("device", DEVICES)
def test_a_local_model_writes_the_ai_report_of_a_ct_study(
    device, tiny_llava, coordinator, archive
) -> None:
    backend_cache_clear()
    ct = archive(CT_FILES[:8])
    config = ModelConfig.objects.create(
        name=f"tiny-{device}",
        backend="transformers",
        location=str(tiny_llava),
        parameters={"max_new_tokens": 8, "ct_slices": 3, "seed": 3, "device": device},
    )
    job = services.generation_job_create(user=coordinator, model_config=config, studies=[ct]).job
    run = job.runs.get()

    assert services.generation_run_execute(run_pk=run.pk) == "succeeded"

    run.refresh_from_db()
    assert run.status == GenerationRun.Status.SUCCEEDED
    assert Report.objects.get(kind=Report.Kind.AI) == run.report
    record = run.provenance
    assert record["model"]["dtype"] == ("bfloat16" if device == "cuda" else "float32")
    assert record["device"]["device"] == device
    if device == "cuda":
        assert record["device"]["gpu"]
        assert record["device"]["cuda"]
    assert record["prompt"].count("<image>") == 3
    assert "axial slices" in record["prompt"]
    assert record["inputs"]["preprocessing"]["slice_indices"] == [0, 4, 7]
    assert record["seed"] == 3
    assert record["tokens"]["output"] <= 8
    assert record["model_config"]["name"] == f"tiny-{device}"
