"""Local Hugging Face ``transformers`` models: image-text-to-text (MedGemma class, through
``AutoModelForImageTextToText`` + ``AutoProcessor`` and the model's chat template) and
``VisionEncoderDecoderModel`` checkpoints (image in, report out, no prompt); and, for a
metric's judge, text-only causal language models (``AutoModelForCausalLM`` + the tokenizer's
chat template) through ``chat``.

bfloat16 on CUDA, float32 on CPU. The model is loaded on the first ``generate`` inside the
worker child, never at import, and kept for the life of the process. A CUDA out-of-memory
error frees the cache and retries once with half the images and half the image size; a
second one fails the study with a message saying what to change.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from inference.environment import device_versions, software_versions, weight_hashes
from inference.preprocess import PreparedImages, prepare_study
from inference.text import render_prompt, require_text, split_sections
from inference.types import (
    ChatOutput,
    ChatRequest,
    GenerationOutput,
    GenerationRequest,
    InferenceError,
)

T = TypeVar("T")

GENERATION_KEYS = (
    "max_new_tokens",
    "do_sample",
    "temperature",
    "top_p",
    "top_k",
    "num_beams",
    "repetition_penalty",
    "no_repeat_ngram_size",
)
DEFAULT_MAX_NEW_TOKENS = 256
OOM_SCALES = (1.0, 0.5)


def resolve_device(preference: str | None) -> str:
    import torch

    if preference and preference != "auto":
        if preference.startswith("cuda") and not torch.cuda.is_available():
            raise InferenceError(f"Device {preference} was asked for but CUDA is not available.")
        return preference
    return "cuda" if torch.cuda.is_available() else "cpu"


def dtype_for(device: str) -> Any:
    import torch

    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def free_accelerator_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def with_oom_fallback(
    attempt: Callable[[float], T], *, scales: tuple[float, ...] = OOM_SCALES
) -> tuple[T, float, list[str]]:
    """Call ``attempt(scale)``; on CUDA OOM free memory and retry at the next, smaller scale.

    Returns (result, scale that worked, messages of the failed tries). The memory is freed
    outside the ``except`` block: the live exception's traceback pins the failed try's tensors.
    """
    import torch

    failures: list[str] = []
    for scale in scales:
        try:
            return attempt(scale), scale, failures
        except torch.cuda.OutOfMemoryError as exc:
            failures.append(f"scale {scale}: {str(exc).splitlines()[0] if str(exc) else 'OOM'}")
        free_accelerator_memory()
    raise InferenceError(
        "CUDA ran out of memory at full size and again with half the images and half the "
        "image size; lower ct_slices, max_side or max_new_tokens, or use a larger GPU."
    )


@dataclass
class _Loaded:
    model: Any
    processor: Any
    tokenizer: Any
    architecture: str
    device: str
    dtype: Any
    load_seconds: float
    model_info: dict[str, Any]


class TransformersBackend:
    kind = "transformers"
    needs_corpus = False

    def __init__(self, location: str, *, device: str | None = None, **_: Any) -> None:
        self.path = Path(location)
        self.device_preference = device
        self._loaded: _Loaded | None = None
        self._text_loaded: _Loaded | None = None

    def _load(self) -> _Loaded:
        if self._loaded is not None:
            return self._loaded
        if not (self.path / "config.json").is_file():
            raise InferenceError(
                f"No model at {self.path}: expected a Hugging Face model directory with "
                "config.json (downloads are never made at run time)."
            )
        import torch
        import transformers
        from transformers import (
            AutoConfig,
            AutoImageProcessor,
            AutoModelForImageTextToText,
            AutoProcessor,
            AutoTokenizer,
            VisionEncoderDecoderModel,
        )

        started = time.perf_counter()
        device = resolve_device(self.device_preference)
        dtype = dtype_for(device)
        config = AutoConfig.from_pretrained(self.path, local_files_only=True)
        tokenizer = None
        try:
            if config.model_type == "vision-encoder-decoder":
                model = VisionEncoderDecoderModel.from_pretrained(
                    self.path, dtype=dtype, local_files_only=True
                )
                processor = AutoImageProcessor.from_pretrained(self.path, local_files_only=True)
                tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                architecture = "vision-encoder-decoder"
            else:
                model = AutoModelForImageTextToText.from_pretrained(
                    self.path, dtype=dtype, local_files_only=True
                )
                processor = AutoProcessor.from_pretrained(self.path, local_files_only=True)
                architecture = "image-text-to-text"
        except (OSError, ValueError, KeyError) as exc:
            raise InferenceError(f"The model at {self.path} could not be loaded: {exc}") from exc
        model.to(device)
        model.eval()
        info = {
            "id": getattr(config, "_name_or_path", "") or self.path.name,
            "path": str(self.path),
            "architecture": architecture,
            "model_type": config.model_type,
            "class": type(model).__name__,
            "revision": getattr(config, "_commit_hash", None),
            "weight_sha256": weight_hashes(self.path),
            "dtype": str(dtype).removeprefix("torch."),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        }
        self._loaded = _Loaded(
            model, processor, tokenizer, architecture, device, dtype,
            time.perf_counter() - started, info,
        )  # fmt: skip
        return self._loaded

    def generation_config(self, loaded: _Loaded, params: dict[str, Any]) -> Any:
        config = loaded.model.generation_config.__class__.from_dict(
            loaded.model.generation_config.to_dict()
        )
        overrides = {k: params[k] for k in GENERATION_KEYS if k in params}
        overrides.setdefault("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
        config.update(**overrides)
        tokenizer = loaded.tokenizer or getattr(loaded.processor, "tokenizer", None)
        if config.pad_token_id is None and tokenizer is not None:
            config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
        return config

    def _attempt(
        self, loaded: _Loaded, request: GenerationRequest, scale: float
    ) -> tuple[str, str | None, PreparedImages, dict[str, Any], dict[str, float]]:
        import torch

        timings: dict[str, float] = {}
        started = time.perf_counter()
        prepared = prepare_study(request.study, request.params, scale=scale)
        timings["preprocess"] = time.perf_counter() - started
        gen_config = self.generation_config(loaded, request.params)
        torch.manual_seed(request.seed)
        started = time.perf_counter()
        rendered: str | None
        with torch.inference_mode():
            if loaded.architecture == "vision-encoder-decoder":
                rendered = None
                pixel_values = loaded.processor(
                    images=prepared.images[:1], return_tensors="pt"
                ).pixel_values.to(loaded.device, loaded.dtype)
                prepared.sop_instance_uids[:] = prepared.sop_instance_uids[:1]
                output = loaded.model.generate(
                    pixel_values=pixel_values, generation_config=gen_config
                )
                new_tokens = output[0]
                input_tokens = 0
                text = loaded.tokenizer.decode(new_tokens, skip_special_tokens=True)
            else:
                prompt = render_prompt(
                    request.prompt_template,
                    {
                        "modality": request.study.kind,
                        "views": ", ".join(prepared.description.get("views", [])),
                        "num_images": len(prepared.images),
                        **request.study.context,
                    },
                )
                content: list[dict[str, Any]] = [{"type": "image"} for _ in prepared.images]
                content.append({"type": "text", "text": prompt})
                messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
                system = request.params.get("system_prompt")
                if system:
                    messages.insert(
                        0, {"role": "system", "content": [{"type": "text", "text": system}]}
                    )
                rendered = loaded.processor.apply_chat_template(
                    messages, add_generation_prompt=True, tokenize=False
                )
                inputs = loaded.processor(
                    text=rendered, images=prepared.images, return_tensors="pt"
                )
                inputs = {
                    k: (
                        v.to(loaded.device, loaded.dtype)
                        if torch.is_floating_point(v)
                        else v.to(loaded.device)
                    )
                    for k, v in inputs.items()
                }
                output = loaded.model.generate(**inputs, generation_config=gen_config)
                input_tokens = int(inputs["input_ids"].shape[1])
                new_tokens = output[0, input_tokens:]
                text = loaded.processor.decode(new_tokens, skip_special_tokens=True)
        timings["generate"] = time.perf_counter() - started
        tokens = {"input": input_tokens, "output": int(new_tokens.shape[0])}
        effective = json.loads(gen_config.to_json_string(use_diff=True))
        return text, rendered, prepared, {"effective": effective, "tokens": tokens}, timings

    def generate(self, request: GenerationRequest) -> GenerationOutput:
        first_load = self._loaded is None
        loaded = self._load()
        (text, rendered, prepared, extra, timings), scale, failures = with_oom_fallback(
            lambda scale: self._attempt(loaded, request, scale)
        )
        findings, impression = split_sections(text)
        require_text(findings, impression)
        record = {
            "backend": self.kind,
            "is_baseline": False,
            "model": loaded.model_info,
            "prompt": rendered,
            "prompt_template": request.prompt_template,
            "generation_params": extra["effective"],
            "requested_params": dict(request.params),
            "seed": request.seed,
            "inputs": {
                "study": request.study.study_key,
                "sop_instance_uids": prepared.sop_instance_uids,
                "preprocessing": prepared.description,
            },
            "oom": {"scale": scale, "failed_tries": failures},
            "software": software_versions(),
            "device": device_versions(loaded.device),
            "timings_s": {
                "load": round(loaded.load_seconds, 4) if first_load else 0.0,
                **{k: round(v, 4) for k, v in timings.items()},
            },
            "tokens": extra["tokens"],
        }
        return GenerationOutput(findings=findings, impression=impression, record=record)

    # --- text-only chat (a metric's judge) -------------------------------------------------

    def _load_text(self) -> _Loaded:
        if self._text_loaded is not None:
            return self._text_loaded
        if not (self.path / "config.json").is_file():
            raise InferenceError(
                f"No model at {self.path}: expected a Hugging Face model directory with "
                "config.json (downloads are never made at run time)."
            )
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.perf_counter()
        device = resolve_device(self.device_preference)
        dtype = dtype_for(device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            if tokenizer.pad_token is None:  # a batch of prompts needs one; never generated
                tokenizer.pad_token = tokenizer.eos_token
            model: Any = AutoModelForCausalLM.from_pretrained(
                self.path, dtype=dtype, local_files_only=True
            )
        except (OSError, ValueError, KeyError) as exc:
            raise InferenceError(f"The model at {self.path} could not be loaded: {exc}") from exc
        model.to(device)
        model.eval()
        info = {
            "id": getattr(model.config, "_name_or_path", "") or self.path.name,
            "path": str(self.path),
            "architecture": "causal-lm",
            "model_type": model.config.model_type,
            "class": type(model).__name__,
            "weight_sha256": weight_hashes(self.path),
            "dtype": str(dtype).removeprefix("torch."),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        }
        self._text_loaded = _Loaded(
            model, None, tokenizer, "causal-lm", device, dtype,
            time.perf_counter() - started, info,
        )  # fmt: skip
        return self._text_loaded

    def _chat_prompt(self, tokenizer: Any, request: ChatRequest) -> str:
        messages = [dict(m) for m in request.messages]
        if getattr(tokenizer, "chat_template", None):
            return str(
                tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            )
        # A base model without a chat template reads the conversation as plain text.
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n".join([*lines, "assistant: "])

    def chat(self, request: ChatRequest) -> ChatOutput:
        return self.chat_many([request])[0]

    def chat_many(self, requests: Sequence[ChatRequest]) -> list[ChatOutput]:
        """Answer several chats in one left-padded batch, with the first request's generation
        parameters and seed (a judge sends the same ones for every report)."""
        import torch

        loaded = self._load_text()
        tokenizer = loaded.tokenizer
        prompts = [self._chat_prompt(tokenizer, r) for r in requests]
        gen_config = self.generation_config(loaded, requests[0].params)
        torch.manual_seed(requests[0].seed)
        started = time.perf_counter()
        side = tokenizer.padding_side
        # Generation continues at the right end of every row; the chat template already holds
        # the model's special tokens.
        tokenizer.padding_side = "left"
        try:
            inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        finally:
            tokenizer.padding_side = side
        inputs = {k: v.to(loaded.device) for k, v in inputs.items()}
        try:
            with torch.inference_mode():
                output = loaded.model.generate(**inputs, generation_config=gen_config)
        except torch.cuda.OutOfMemoryError:
            failed = True
        else:
            failed = False
        if failed:  # freed outside the except block: its traceback pins the tensors
            free_accelerator_memory()
            raise InferenceError(
                f"CUDA ran out of memory answering {len(prompts)} prompts at once; lower "
                "max_new_tokens or use a larger GPU."
            )
        elapsed = time.perf_counter() - started
        n_input = int(inputs["input_ids"].shape[1])
        pad = gen_config.pad_token_id
        params = json.loads(gen_config.to_json_string(use_diff=True))
        outputs = []
        for row, request in enumerate(requests):
            new_tokens = output[row, n_input:]
            record = {
                "backend": self.kind,
                "model": loaded.model_info,
                "generation_params": params,
                "seed": request.seed,
                "batch": len(requests),
                "device": device_versions(loaded.device),
                "timings_s": {"generate_batch": round(elapsed, 4)},
                "tokens": {
                    "input": int(inputs["attention_mask"][row].sum()),
                    "output": int((new_tokens != pad).sum()) if pad is not None else None,
                },
            }
            text = tokenizer.decode(new_tokens, skip_special_tokens=True)
            outputs.append(ChatOutput(text=text, record=record))
        return outputs
