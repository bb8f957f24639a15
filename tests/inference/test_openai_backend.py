"""The OpenAI-compatible backend against a real local HTTP server standing in for vLLM."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image

from inference.backends.openai_http import OpenAIBackend
from inference.types import (
    GenerationRequest,
    InferenceError,
    RetryableInferenceError,
    StudyInput,
)

ANSWER = {
    "model": "medgemma-4b-it",
    "system_fingerprint": "fp-1",
    "choices": [{"message": {"content": "FINDINGS: Clear lungs.\nIMPRESSION: Normal."}}],
    "usage": {"prompt_tokens": 321, "completion_tokens": 9},
}


class FakeVllm:
    """Answers each request with the next scripted (status, body, delay) and keeps the bodies."""

    def __init__(self) -> None:
        self.script: list[tuple[int, Any, float]] = []
        self.received: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                server.received.append(
                    {"path": self.path, "body": json.loads(self.rfile.read(length))}
                )
                status, body, delay = server.script.pop(0) if server.script else (200, ANSWER, 0)
                time.sleep(delay)
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture
def vllm() -> Iterator[FakeVllm]:
    server = FakeVllm()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _request(study: StudyInput) -> GenerationRequest:
    return GenerationRequest(
        study=study,
        prompt_template="Report this {modality} ({views}).",
        params={"max_new_tokens": 200, "ct_slices": 3, "max_side": 128},
        seed=11,
    )


def test_images_go_as_png_data_urls_and_the_answer_becomes_the_report(
    vllm: FakeVllm, ct_study: StudyInput
) -> None:
    backend = OpenAIBackend(vllm.url, model_name="medgemma-4b-it", backoff_s=0)

    output = backend.generate(_request(ct_study))

    assert (output.findings, output.impression) == ("Clear lungs.", "Normal.")
    (sent,) = vllm.received
    assert sent["path"] == "/v1/chat/completions"
    body = sent["body"]
    assert body["model"] == "medgemma-4b-it"
    assert (body["max_tokens"], body["seed"], body["temperature"]) == (200, 11, 0.0)
    parts = body["messages"][0]["content"]
    images = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(images) == 3
    prefix = "data:image/png;base64,"
    assert all(url.startswith(prefix) for url in images)
    decoded = Image.open(io.BytesIO(base64.b64decode(images[0][len(prefix) :])))
    assert decoded.format == "PNG"
    assert max(decoded.size) == 128
    assert parts[-1] == {"type": "text", "text": "Report this CT ()."}
    record = output.record
    assert record["model"]["id"] == "medgemma-4b-it"
    assert record["model"]["system_fingerprint"] == "fp-1"
    assert record["tokens"] == {"input": 321, "output": 9}
    assert record["prompt"] == "Report this CT ()."


def test_a_busy_server_is_retried(vllm: FakeVllm, cxr_study: StudyInput) -> None:
    vllm.script = [(503, {"error": "busy"}, 0), (429, {"error": "slow down"}, 0)]
    backend = OpenAIBackend(vllm.url, model_name="m", retries=2, backoff_s=0)

    output = backend.generate(_request(cxr_study))

    assert output.findings == "Clear lungs."
    assert len(vllm.received) == 3


def test_a_server_that_never_answers_in_time_is_a_retryable_failure(
    vllm: FakeVllm, cxr_study: StudyInput
) -> None:
    vllm.script = [(200, ANSWER, 1.5), (200, ANSWER, 1.5)]
    backend = OpenAIBackend(vllm.url, model_name="m", timeout_s=0.3, retries=1, backoff_s=0)

    with pytest.raises(RetryableInferenceError, match=r"failed after 2 tries; last: no answer"):
        backend.generate(_request(cxr_study))


def test_a_refusal_fails_at_once_with_the_servers_message(
    vllm: FakeVllm, cxr_study: StudyInput
) -> None:
    vllm.script = [(404, {"message": "The model `m` does not exist."}, 0)]
    backend = OpenAIBackend(vllm.url, model_name="m", retries=3, backoff_s=0)

    with pytest.raises(InferenceError, match=r"refused the request \(404\).*does not exist"):
        backend.generate(_request(cxr_study))
    assert len(vllm.received) == 1


def test_an_empty_answer_is_not_stored_as_a_report(vllm: FakeVllm, cxr_study: StudyInput) -> None:
    vllm.script = [(200, {"choices": [{"message": {"content": "  "}}]}, 0)]
    backend = OpenAIBackend(vllm.url, model_name="m", backoff_s=0)
    with pytest.raises(InferenceError, match="empty report"):
        backend.generate(_request(cxr_study))
