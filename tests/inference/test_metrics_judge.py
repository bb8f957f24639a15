"""The GREEN-style judge: its answers parsed leniently but never guessed, and the judge run
through both backends: a tiny local causal LM built here, and a real HTTP server speaking the
OpenAI chat-completions protocol that serves that same tiny model."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from inference.backends.hf import TransformersBackend
from inference.metrics import MetricError, metric_create
from inference.metrics.judge import CATEGORIES, parse_answer
from inference.types import ChatRequest
from tests.inference.tiny_models import build_causal_lm


def green_answer(significant: list[int], insignificant: list[int], matched: int) -> str:
    def section(counts: list[int]) -> str:
        return "\n".join(
            f"({letter}) {label}: {n}." + (" an error" * bool(n))
            for letter, label, n in zip("abcdef", CATEGORIES, counts, strict=True)
        )

    return (
        "[Explanation]:\nThe candidate has clinically significant errors: it misses one.\n\n"
        f"[Clinically Significant Errors]:\n{section(significant)}\n\n"
        f"[Clinically Insignificant Errors]:\n{section(insignificant)}\n\n"
        f"[Matched Findings]:\n{matched}. Heart size normal; No pneumothorax; Clear lungs\n"
    )


ANSWER = green_answer([0, 1, 0, 2, 0, 0], [1, 0, 0, 0, 0, 0], 3)
REFERENCE = "Heart size is normal. There is a small left effusion. No pneumothorax."
CANDIDATE = "Heart size is normal. Large right effusion and a small pneumothorax."


def test_a_green_answer_gives_its_counts_and_score() -> None:
    values = parse_answer(ANSWER)
    assert values is not None
    assert values["green"] == pytest.approx(3 / (3 + 3))
    assert (values["green_matched"], values["green_significant"]) == (3.0, 3.0)
    assert values["green_insignificant"] == 1.0
    assert [values[f"green_significant_{x}"] for x in "abcdef"] == [0, 1, 0, 2, 0, 0]


def test_answers_in_other_dress_parse_to_the_same_counts() -> None:
    markdown = (
        "**Clinically Significant Errors:**\n"
        "1) False report of a finding in the candidate: 0\n"
        "2) Missing a finding present in the reference: 2. effusion; edema\n"
        "**Clinically Insignificant Errors:** None\n"
        "**Matched Findings:** two. heart; lungs\n"
    )
    values = parse_answer(markdown)
    assert values is not None
    assert values["green_significant_b"] == 2.0
    assert values["green_significant"] == 2.0
    assert values["green_insignificant"] == 0.0
    assert values["green"] == pytest.approx(2 / 4)
    headings = (
        "### Clinically Significant Errors\n(d) Misassessment of the severity: 1. size\n\n"
        "### Clinically Insignificant Errors\nNo errors.\n\n### Matched Findings\n4. a; b\n"
    )
    assert parse_answer(headings) == parse_answer(green_answer([0, 0, 0, 1, 0, 0], [0] * 6, 4))
    nothing_matched = green_answer([1, 0, 0, 0, 0, 0], [0] * 6, 0)
    assert parse_answer(nothing_matched)["green"] == 0.0  # type: ignore[index]  # GREEN's rule


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "The candidate report is mostly correct.",
        # No matched findings section.
        ANSWER.split("[Matched Findings]")[0],
        # A count that is not a number.
        ANSWER.replace("(b) Missing a finding present in the reference: 1.", "(b) Missing: some."),
        # The headings only inside a sentence.
        "There are no clinically significant errors and the matched findings are many.",
    ],
)
def test_an_answer_without_every_count_is_unparseable_not_zero(answer: str) -> None:
    assert parse_answer(answer) is None


@pytest.fixture(scope="module")
def judges(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("judges")
    return {
        "answers": build_causal_lm(root / "answers", answer=ANSWER),
        "babbles": build_causal_lm(root / "babbles"),
    }


def test_a_local_judge_scores_each_pair_and_records_its_weights(judges: dict[str, Path]) -> None:
    metric = metric_create(
        "green_judge",
        {"backend": "transformers", "location": str(judges["answers"]), "max_new_tokens": 64},
    )
    results = metric.score([(CANDIDATE, REFERENCE), (CANDIDATE, "")])
    assert results[0]["status"] == "scored"
    assert results[0]["values"]["green"] == pytest.approx(0.5)
    assert results[0]["values"]["green_significant_d"] == 2.0
    assert results[1]["reason"] == "reference_empty"
    params = metric.describe()["params"]
    assert params["prompt"] == "green-style-1"
    assert len(params["prompt_sha256"]) == len(params["weights_sha256"]) == 64


def test_a_judge_that_babbles_is_a_named_failure_per_report(judges: dict[str, Path]) -> None:
    metric = metric_create(
        "green_judge",
        {"backend": "transformers", "location": str(judges["babbles"]), "max_new_tokens": 16},
    )
    results = metric.score([(CANDIDATE, REFERENCE), (REFERENCE, REFERENCE)])
    assert (
        results
        == [{"status": "failed", "reason": "judge_unparseable", "values": {}, "detail": {}}] * 2
    )


def test_a_judge_directory_without_weights_names_them(tmp_path: Path, judges) -> None:
    directory = tmp_path / "judge"
    directory.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (directory / name).write_bytes((judges["answers"] / name).read_bytes())
    metric = metric_create("green_judge", {"backend": "transformers", "location": str(directory)})
    with pytest.raises(MetricError) as failure:
        metric.score([(CANDIDATE, REFERENCE)])
    assert failure.value.code == "metric_model_missing_file"
    assert "model.safetensors" in str(failure.value)


class TinyServer:
    """An OpenAI-compatible chat-completions server answering with a tiny local model."""

    def __init__(self, model_dir: Path) -> None:
        backend = TransformersBackend(str(model_dir), device="cpu")
        self.received: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.received.append({"path": self.path, "body": body})
                output = backend.chat(
                    ChatRequest(
                        messages=tuple(body["messages"]),
                        params={"max_new_tokens": body.get("max_tokens", 64)},
                        seed=body.get("seed", 0),
                    )
                )
                payload = json.dumps(
                    {
                        "model": "tiny-judge",
                        "choices": [{"message": {"role": "assistant", "content": output.text}}],
                        "usage": output.record["tokens"],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture
def served(judges: dict[str, Path]) -> Iterator[TinyServer]:
    server = TinyServer(judges["answers"])
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_a_judge_behind_an_openai_compatible_server(served: TinyServer) -> None:
    metric = metric_create(
        "green_judge",
        {"backend": "openai", "location": served.url, "model_name": "tiny-judge",
         "max_new_tokens": 64},
    )  # fmt: skip
    (result,) = metric.score([(CANDIDATE, REFERENCE)])
    assert result["values"]["green"] == pytest.approx(0.5)
    (request,) = served.received
    assert request["path"] == "/v1/chat/completions"
    body = request["body"]
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("tiny-judge", 0.0, 64)
    (message,) = body["messages"]
    prompt = message["content"]
    # Both reports, each under its own heading, and every error category the counts refer to.
    assert prompt.index(REFERENCE) < prompt.index("Candidate report:") < prompt.index(CANDIDATE)
    assert all(label in prompt for label in CATEGORIES)
    assert metric.describe()["params"]["served_model"] == "tiny-judge"


def test_a_judge_server_that_is_down_fails_with_the_backends_message() -> None:
    metric = metric_create(
        "green_judge",
        {"backend": "openai", "location": "http://127.0.0.1:9/v1", "timeout_s": 2},
    )
    with pytest.raises(MetricError) as failure:
        metric.score([(CANDIDATE, REFERENCE)])
    assert failure.value.code == "metric_judge"
    assert "127.0.0.1:9" in str(failure.value)
