"""An OpenAI-compatible chat-completions server (vLLM serving a vision model; or any model
answering text-only chats, a metric's judge, through ``chat``).

Images go as PNG data URLs inside the user message. Connection errors, timeouts, 429 and 5xx
are retried with exponential backoff (``retries`` more tries); other answers fail at once with
the server's own message, which names what to fix (wrong model name, context too long...).
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from inference.environment import software_versions
from inference.preprocess import prepare_study
from inference.text import render_prompt, require_text, split_sections
from inference.types import (
    ChatOutput,
    ChatRequest,
    GenerationOutput,
    GenerationRequest,
    InferenceError,
    RetryableInferenceError,
)

PASSED_PARAMS = ("temperature", "top_p", "top_k", "repetition_penalty")


def png_data_url(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class OpenAIBackend:
    kind = "openai"
    needs_corpus = False

    def __init__(
        self,
        location: str,
        *,
        model_name: str = "",
        timeout_s: float = 120.0,
        retries: int = 2,
        backoff_s: float = 1.0,
        api_key: str = "",
        concurrency: int = 8,
        **_: Any,
    ) -> None:
        base = location.rstrip("/")
        self.url = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        self.model_name = model_name
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        # Chats in flight at once from chat_many: the server batches them.
        self.concurrency = max(1, int(concurrency))
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=self.timeout_s, headers=headers)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self.client.post(self.url, json=body)
            except httpx.TimeoutException:
                last = f"no answer from {self.url} within {self.timeout_s:g} s"
                continue
            except httpx.TransportError as exc:
                last = f"could not reach {self.url}: {exc}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last = f"{self.url} answered {response.status_code}"
                continue
            if response.status_code != 200:
                raise InferenceError(
                    f"The model server refused the request ({response.status_code}): "
                    f"{response.text[:500]}"
                )
            try:
                return response.json()
            except ValueError as exc:
                raise InferenceError(f"The model server sent invalid JSON: {exc}") from exc
        raise RetryableInferenceError(
            f"The model server failed after {self.retries + 1} tries; last: {last}."
        )

    def generate(self, request: GenerationRequest) -> GenerationOutput:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        prepared = prepare_study(request.study, request.params)
        timings["preprocess"] = time.perf_counter() - started
        prompt = render_prompt(
            request.prompt_template,
            {
                "modality": request.study.kind,
                "views": ", ".join(prepared.description.get("views", [])),
                "num_images": len(prepared.images),
                **request.study.context,
            },
        )
        content: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": png_data_url(image)}}
            for image in prepared.images
        ]
        content.append({"type": "text", "text": prompt})
        messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
        system = request.params.get("system_prompt")
        if system:
            messages.insert(0, {"role": "system", "content": system})
        sent = {k: request.params[k] for k in PASSED_PARAMS if k in request.params}
        sent["max_tokens"] = int(request.params.get("max_new_tokens", 256))
        if not request.params.get("do_sample", False):
            sent.setdefault("temperature", 0.0)
        sent["seed"] = request.seed
        body = {"model": self.model_name, "messages": messages, **sent}
        started = time.perf_counter()
        answer = self._post(body)
        timings["generate"] = time.perf_counter() - started
        try:
            text = answer["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise InferenceError("The model server's answer has no choices[0].message.") from exc
        findings, impression = split_sections(text)
        require_text(findings, impression)
        usage = answer.get("usage") or {}
        record = {
            "backend": self.kind,
            "is_baseline": False,
            "model": {
                "id": answer.get("model") or self.model_name,
                "requested": self.model_name,
                "endpoint": self.url,
                "system_fingerprint": answer.get("system_fingerprint"),
            },
            "prompt": prompt,
            "system_prompt": system or None,
            "prompt_template": request.prompt_template,
            "generation_params": sent,
            "requested_params": dict(request.params),
            "seed": request.seed,
            "inputs": {
                "study": request.study.study_key,
                "sop_instance_uids": prepared.sop_instance_uids,
                "preprocessing": {**prepared.description, "encoding": "png-data-url"},
            },
            "software": software_versions(),
            "device": {"device": "remote"},
            "timings_s": {k: round(v, 4) for k, v in timings.items()},
            "tokens": {
                "input": usage.get("prompt_tokens"),
                "output": usage.get("completion_tokens"),
            },
        }
        return GenerationOutput(findings=findings, impression=impression, record=record)

    def chat(self, request: ChatRequest) -> ChatOutput:
        sent = {k: request.params[k] for k in PASSED_PARAMS if k in request.params}
        sent["max_tokens"] = int(request.params.get("max_new_tokens", 256))
        if not request.params.get("do_sample", False):
            sent.setdefault("temperature", 0.0)
        sent["seed"] = request.seed
        body = {"model": self.model_name, "messages": [dict(m) for m in request.messages], **sent}
        started = time.perf_counter()
        answer = self._post(body)
        elapsed = time.perf_counter() - started
        try:
            text = answer["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise InferenceError("The model server's answer has no choices[0].message.") from exc
        usage = answer.get("usage") or {}
        record = {
            "backend": self.kind,
            "model": {
                "id": answer.get("model") or self.model_name,
                "requested": self.model_name,
                "endpoint": self.url,
                "system_fingerprint": answer.get("system_fingerprint"),
            },
            "generation_params": sent,
            "seed": request.seed,
            "device": {"device": "remote"},
            "timings_s": {"generate": round(elapsed, 4)},
            "tokens": {
                "input": usage.get("prompt_tokens"),
                "output": usage.get("completion_tokens"),
            },
        }
        return ChatOutput(text=text, record=record)

    def chat_many(self, requests: Sequence[ChatRequest]) -> list[ChatOutput]:
        """Several chats, up to ``concurrency`` in flight (the server batches them), in order."""
        if len(requests) <= 1 or self.concurrency == 1:
            return [self.chat(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self.chat, requests))
