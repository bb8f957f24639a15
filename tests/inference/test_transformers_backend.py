"""The transformers backend on tiny random-weight models built during the run: the real
loading (from_pretrained from a directory) and generation path, on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inference.backends import backend_get
from inference.backends.hf import TransformersBackend
from inference.types import GenerationRequest, InferenceError, StudyInput

PROMPT = "Describe the findings of this {modality} study."


def _request(study: StudyInput, **params: object) -> GenerationRequest:
    return GenerationRequest(
        study=study,
        prompt_template=PROMPT,
        params={"max_new_tokens": 6, "ct_slices": 4, **params},
        seed=7,
    )


def test_an_image_text_to_text_model_writes_a_cxr_report_with_its_record(
    tiny_models: dict[str, Path], cxr_study: StudyInput
) -> None:
    backend = backend_get(kind="transformers", location=str(tiny_models["image-text-to-text"]))

    output = backend.generate(_request(cxr_study))

    assert output.findings or output.impression
    record = output.record
    assert record["model"]["architecture"] == "image-text-to-text"
    assert record["model"]["class"] == "LlavaForConditionalGeneration"
    assert record["model"]["dtype"] == "float32"
    assert list(record["model"]["weight_sha256"]) == ["model.safetensors"]
    assert len(record["model"]["weight_sha256"]["model.safetensors"]) == 64
    assert record["prompt"] == "user: <image>Describe the findings of this CXR study.assistant: "
    assert record["generation_params"]["max_new_tokens"] == 6
    assert record["seed"] == 7
    assert record["inputs"]["sop_instance_uids"] == [cxr_study.images[0].sop_instance_uid]
    assert record["tokens"]["output"] <= 6
    assert record["tokens"]["input"] > 0
    assert record["device"] == {"device": "cpu"}
    assert record["software"]["transformers"]
    assert record["timings_s"]["load"] > 0


def test_a_ct_study_goes_in_as_evenly_sampled_windowed_slices(
    tiny_models: dict[str, Path], ct_study: StudyInput
) -> None:
    backend = backend_get(kind="transformers", location=str(tiny_models["image-text-to-text"]))

    output = backend.generate(_request(ct_study))

    assert output.record["prompt"].count("<image>") == 4
    assert output.record["inputs"]["preprocessing"]["slice_indices"] == [0, 10, 19, 29]


def test_a_vision_encoder_decoder_checkpoint_writes_a_report_without_a_prompt(
    tiny_models: dict[str, Path], cxr_study: StudyInput
) -> None:
    backend = backend_get(kind="transformers", location=str(tiny_models["vision-encoder-decoder"]))

    output = backend.generate(_request(cxr_study))

    assert output.findings or output.impression
    assert output.record["model"]["architecture"] == "vision-encoder-decoder"
    assert output.record["prompt"] is None
    assert output.record["tokens"]["output"] > 0


def test_the_model_is_loaded_once_per_process(
    tiny_models: dict[str, Path], cxr_study: StudyInput
) -> None:
    location = str(tiny_models["image-text-to-text"])
    first = backend_get(kind="transformers", location=location)
    first.generate(_request(cxr_study))
    second = backend_get(kind="transformers", location=location)

    output = second.generate(_request(cxr_study))

    assert second is first
    assert output.record["timings_s"]["load"] == 0.0


def test_sampling_with_the_same_seed_repeats_the_same_report(
    tiny_models: dict[str, Path], cxr_study: StudyInput
) -> None:
    backend = backend_get(kind="transformers", location=str(tiny_models["image-text-to-text"]))
    request = _request(cxr_study, do_sample=True, temperature=1.5, top_k=0)
    first, second = backend.generate(request), backend.generate(request)
    assert (first.findings, first.impression) == (second.findings, second.impression)
    assert first.record["generation_params"]["do_sample"] is True


class OutOfMemoryAtFullSize(TransformersBackend):
    """A test backend: the real model, but CUDA runs out of memory at the sizes listed."""

    def __init__(self, location: str, failing_scales: set[float]) -> None:
        super().__init__(location)
        self.failing_scales = failing_scales
        self.tried: list[float] = []

    def _attempt(self, loaded, request, scale):  # type: ignore[no-untyped-def]
        self.tried.append(scale)
        if scale in self.failing_scales:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super()._attempt(loaded, request, scale)


def test_out_of_memory_retries_once_with_half_the_slices(
    tiny_models: dict[str, Path], ct_study: StudyInput
) -> None:
    backend = OutOfMemoryAtFullSize(str(tiny_models["image-text-to-text"]), {1.0})

    output = backend.generate(_request(ct_study))

    assert backend.tried == [1.0, 0.5]
    assert output.record["oom"]["scale"] == 0.5
    assert len(output.record["oom"]["failed_tries"]) == 1
    assert len(output.record["inputs"]["sop_instance_uids"]) == 2


def test_out_of_memory_twice_fails_with_what_to_change(
    tiny_models: dict[str, Path], ct_study: StudyInput
) -> None:
    backend = OutOfMemoryAtFullSize(str(tiny_models["image-text-to-text"]), {1.0, 0.5})

    with pytest.raises(InferenceError, match="lower ct_slices, max_side or max_new_tokens"):
        backend.generate(_request(ct_study))
    assert backend.tried == [1.0, 0.5]


def test_a_missing_model_directory_fails_clearly(tmp_path: Path, cxr_study: StudyInput) -> None:
    backend = backend_get(kind="transformers", location=str(tmp_path / "nowhere"))
    with pytest.raises(InferenceError, match=r"No model at .*nowhere: expected a Hugging Face"):
        backend.generate(_request(cxr_study))


def test_asking_for_cuda_where_there_is_none_fails_clearly(
    tiny_models: dict[str, Path], cxr_study: StudyInput
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    backend = TransformersBackend(str(tiny_models["image-text-to-text"]), device="cuda:0")
    with pytest.raises(InferenceError, match="CUDA is not available"):
        backend.generate(_request(cxr_study))
