"""A language-model judge in the manner of GREEN, through the generation backends.

Decision record. GREEN (Ostmeier et al. 2024) asks a language model to compare a candidate
report with the reference and to count, separately for clinically significant and clinically
insignificant errors, six kinds of error: (a) a false finding, (b) a missed finding,
(c) a wrong location, (d) a misjudged severity, (e) a comparison the reference does not make,
(f) an omitted change from a prior study; and to count the findings both reports share. The
score is ``matched / (matched + significant errors)``, 0 when nothing is matched (as GREEN
computes it). The prompt is our own wording; it keeps GREEN's section headings and category
labels, so the answers of a GREEN-trained model parse too (such a model was trained on GREEN's
own wording, and may do better with it: say which prompt in a paper; ``prompt`` and its digest
are stored with every result).

The judge runs through the backends the generation runs use: a local ``transformers`` causal
LM from a directory (``backend="transformers"``, on the GPU when the worker has one), or any
OpenAI-compatible server (``backend="openai"``, e.g. vLLM), greedy unless told otherwise. An
answer is parsed leniently (headings in any case, with or without brackets or markdown, the
six categories lettered a-f or numbered 1-6, "None"/"No errors" for zero), but every count the
score and the stored values need must be there: an answer without the significant errors,
the insignificant errors or the matched findings is a *failed* pair, reason
``judge_unparseable``, named on the page, never a 0. A server or model that cannot answer at
all fails the job with the backend's message. Report text goes to the model only; nothing here
logs it or stores the judge's answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from inference.metrics.base import Metric, MetricError, PairFailure, Scored, register
from inference.metrics.local_model import require_transformers_directory
from inference.types import ChatRequest, InferenceError

PROMPT_VERSION = "green-style-1"
CATEGORIES = (
    "False report of a finding in the candidate",
    "Missing a finding present in the reference",
    "Misidentification of a finding's anatomic location/position",
    "Misassessment of the severity of a finding",
    "Mentioning a comparison that isn't in the reference",
    "Omitting a comparison detailing a change from a prior study",
)
LETTERS = "abcdef"
UNPARSEABLE = "judge_unparseable"

_FORMAT_LINES = "\n".join(
    f"({letter}) {label}: <number>. <the errors, separated by ;>"
    for letter, label in zip(LETTERS, CATEGORIES, strict=True)
)
PROMPT = f"""You are a radiologist checking a candidate radiology report against a reference \
report of the same study written by another radiologist. Take the reference as correct.

Count the candidate's errors of each kind below, once for clinically significant errors \
(errors that could change the patient's management or outcome) and once for clinically \
insignificant errors:
(a) a finding the candidate reports that the reference does not;
(b) a finding of the reference that the candidate misses;
(c) a finding placed at the wrong anatomic location or position;
(d) a finding whose severity is misjudged;
(e) a comparison with a prior study that the reference does not make;
(f) a change from a prior study, stated in the reference, that the candidate leaves out.
Then count the findings that the two reports share.

Answer in exactly this form, with a number on every line (0 when there are none):

[Explanation]:
<a short explanation>

[Clinically Significant Errors]:
{_FORMAT_LINES}

[Clinically Insignificant Errors]:
{_FORMAT_LINES}

[Matched Findings]:
<number>. <the matched findings, separated by ;>

Reference report:
{{reference}}

Candidate report:
{{candidate}}
"""
PROMPT_SHA256 = hashlib.sha256(PROMPT.encode("utf-8")).hexdigest()

_HEADINGS = {
    "significant": r"clinically\s+significant\s+errors?",
    "insignificant": r"clinically\s+insignificant\s+errors?",
    "matched": r"matched\s+findings?",
    "explanation": r"explanation",
}


def _names(prefix: str) -> str:
    return "|".join(f"(?P<{prefix}{key}>{pattern})" for key, pattern in _HEADINGS.items())


# A heading is a line that starts with the name in brackets, or with the name and a colon, or
# holds the name alone (a markdown heading): "clinically significant errors" inside a sentence
# of the explanation is not one.
_HEADING = re.compile(
    r"^[ \t#>\-]*(?:\[\s*(?:" + _names("b_") + r")\s*\]\s*:?"
    r"|(?:" + _names("c_") + r")\s*:"
    r"|(?:" + _names("l_") + r")[ \t]*$)",
    re.IGNORECASE | re.MULTILINE,
)
_NONE = re.compile(r"^\W*(?:none|no\b|nil\b|n/a\b|0\b|zero\b)", re.IGNORECASE)
_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def _sections(answer: str) -> dict[str, str]:
    """The text under each heading, keyed by which heading it is; the first of each kind."""
    cleaned = answer.replace("**", "").replace("__", "")
    found = list(_HEADING.finditer(cleaned))
    sections: dict[str, str] = {}
    for index, match in enumerate(found):
        key = next(k for k in _HEADINGS if any(match.group(p + k) for p in ("b_", "c_", "l_")))
        end = found[index + 1].start() if index + 1 < len(found) else len(cleaned)
        sections.setdefault(key, cleaned[match.end() : end].strip())
    return sections


def _count(text: str) -> int | None:
    """The count a line or section starts with: a number, a number word, or a "none"."""
    head = text.strip().lstrip(":").strip()
    number = re.match(r"^\D{0,3}?(\d{1,3})\b", head)
    if number:
        return int(number.group(1))
    word = re.match(r"^\W*([a-z]+)\b", head, re.IGNORECASE)
    if word and word.group(1).lower() in _WORDS:
        return _WORDS[word.group(1).lower()]
    if _NONE.match(head):
        return 0
    return None


def _error_counts(section: str) -> list[int] | None:
    """Six counts, (a)-(f), from one error section; None when they cannot all be read."""
    if not section.strip():
        return None
    lines: dict[int, str] = {}
    item = re.compile(r"^[ \t*\-]*\(?([a-f1-6])[).:]\s*(.*)$", re.IGNORECASE)
    for line in section.splitlines():
        match = item.match(line)
        if match:
            key = match.group(1).lower()
            position = LETTERS.index(key) if key in LETTERS else int(key) - 1
            lines.setdefault(position, match.group(2))
    if not lines:
        # "None", "No clinically significant errors." for the whole section.
        return [0] * 6 if _NONE.match(section.strip()) else None
    counts: list[int] = []
    for position in range(6):
        text = lines.get(position)
        if text is None:
            # A model that lists only the categories it found errors in: the others are 0.
            counts.append(0)
            continue
        after_label = text.split(":", 1)[1] if ":" in text else text
        value = _count(after_label)
        if value is None:
            return None
        counts.append(value)
    return counts


def parse_answer(answer: str) -> dict[str, float] | None:
    """The judge's counts and score, or None when the answer lacks any of them."""
    sections = _sections(answer)
    if not {"significant", "insignificant", "matched"} <= sections.keys():
        return None
    significant = _error_counts(sections["significant"])
    insignificant = _error_counts(sections["insignificant"])
    matched = _count(sections["matched"])
    if significant is None or insignificant is None or matched is None:
        return None
    total = sum(significant)
    score = matched / (matched + total) if matched > 0 else 0.0
    values = {
        "green": score,
        "green_matched": float(matched),
        "green_significant": float(total),
        "green_insignificant": float(sum(insignificant)),
    }
    for letter, count in zip(LETTERS, significant, strict=True):
        values[f"green_significant_{letter}"] = float(count)
    return values


@register
class GreenJudge(Metric):
    name = "green_judge"
    version = "1"
    tier = "model"
    value_names = (
        "green",
        "green_matched",
        "green_significant",
        "green_insignificant",
        *(f"green_significant_{letter}" for letter in LETTERS),
    )
    headline = "green"
    # One batched generation (local) or as many concurrent requests (server) per call:
    # seconds each, so the progress bar moves.
    batch_pairs = 8

    def __init__(
        self,
        *,
        backend: str,
        location: str,
        model_name: str = "",
        max_new_tokens: int = 1024,
        seed: int = 0,
        device: str = "auto",
        timeout_s: float = 300.0,
        concurrency: int = 8,
    ) -> None:
        if backend not in ("transformers", "openai"):
            raise MetricError(
                f"The judge runs through the transformers or openai backend, not {backend!r}.",
                code="metric_bad_params",
            )
        super().__init__(
            backend=backend,
            location=str(location),
            model_name=model_name,
            max_new_tokens=int(max_new_tokens),
            seed=int(seed),
            temperature=0.0,
            prompt=PROMPT_VERSION,
            prompt_sha256=PROMPT_SHA256,
        )
        self.backend_kind = backend
        self.location = str(location)
        self.model_name = model_name
        self.max_new_tokens = int(max_new_tokens)
        self.seed = int(seed)
        self.device = device
        self.timeout_s = timeout_s
        # Requests in flight to a server (it batches them itself).
        self.concurrency = max(1, int(concurrency))
        self._backend: Any = None

    def _load(self) -> Any:
        if self._backend is not None:
            return self._backend
        from inference.backends import chat_backend_get

        options: dict[str, Any] = {}
        if self.backend_kind == "transformers":
            require_transformers_directory(Path(self.location))
            options["device"] = self.device
            from inference.environment import weight_hashes

            # The weights pin the answers: every result says which ones gave it.
            hashes = weight_hashes(Path(self.location))
            canonical = json.dumps(hashes, sort_keys=True).encode("utf-8")
            self.params["weights_sha256"] = hashlib.sha256(canonical).hexdigest()
        else:
            # A key is configuration, not a parameter of the result: never stored.
            options["api_key"] = os.environ.get("RADREVIEW_JUDGE_API_KEY", "")
            options["timeout_s"] = self.timeout_s
            options["concurrency"] = self.concurrency
        self._backend = chat_backend_get(
            kind=self.backend_kind, location=self.location, model_name=self.model_name, **options
        )
        return self._backend

    def _score_valid(self, candidates: list[str], references: list[str]) -> list[Scored]:
        backend = self._load()
        requests = [
            ChatRequest(
                # One pass: a report that itself contains "{candidate}" is not substituted again.
                messages=(
                    {
                        "role": "user",
                        "content": PROMPT.format(reference=reference, candidate=candidate),
                    },
                ),
                params={"max_new_tokens": self.max_new_tokens, "do_sample": False},
                seed=self.seed,
            )
            for candidate, reference in zip(candidates, references, strict=True)
        ]
        try:
            outputs = backend.chat_many(requests)
        except InferenceError as exc:
            raise MetricError(f"The judge could not answer: {exc}", code="metric_judge") from exc
        if self.backend_kind == "openai" and outputs:
            # What the server says it served (the name asked for may be an alias).
            model = outputs[0].record.get("model", {})
            self.params["served_model"] = str(model.get("id") or "")[:200]
        out: list[Scored] = []
        for output in outputs:
            values = parse_answer(output.text)
            out.append(PairFailure(UNPARSEABLE) if values is None else (values, {}))
        return out
