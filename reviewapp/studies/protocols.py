"""Protocols as data: loading and validating the JSON documents, building the blinded form a
reader sees for one assignment, and turning that form's answers back into stored answers.

Blinding rules enforced here, in one place:
- labels name sides ("Report A"), never sources; placeholders are resolved per assignment;
- comparative options are ordered by how they favour the report shown as A, so the order of a
  list never tells which side is the candidate;
- the client identifies options by letter codes ("a", "b", ...) given in display order, never by
  the stored values (which say "ai_better" and the like).
"""

from __future__ import annotations

import copy
import itertools
import json
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from django.core.exceptions import ValidationError

PROTOCOL_DIR = Path(__file__).resolve().parent / "protocols"
TEMPLATE_KEYS = (
    "medgemini_cxr",
    "flamingo_cxr",
    "error_correction",
    "ct_acceptability",
    "radpeer",
)
AI_GUESS_ID = "ai_guess"
AI_GUESS_QUESTION: dict[str, Any] = {
    "id": AI_GUESS_ID,
    "type": "single_choice",
    "scope": "comparative",
    "prompt": "Which report do you think was written by the AI?",
    "required": True,
    "options": [
        {"value": "candidate", "axis": 1, "label": "{Candidate}"},
        {"value": "original", "axis": -1, "label": "{Original}"},
        {"value": "dont_know", "axis": None, "label": "Don't know"},
    ],
}
# Letters for option codes: a-g. h is the viewer's help key, so forms stop at seven options.
OPTION_CODES = string.ascii_lowercase[:7]
YES_NO_OPTIONS = [{"value": "yes", "label": "Yes"}, {"value": "no", "label": "No"}]
MAX_TEXT = 10_000
MAX_SPANS = 200


@cache
def protocol_schema() -> dict[str, Any]:
    return json.loads((PROTOCOL_DIR / "schema.json").read_text())


def protocol_template(key: str) -> dict[str, Any]:
    """Return a fresh copy of a built-in protocol template."""
    if key not in TEMPLATE_KEYS:
        raise ValidationError({"protocol": f"Unknown protocol template {key!r}."})
    return json.loads((PROTOCOL_DIR / f"{key}.json").read_text())


def protocol_templates() -> list[dict[str, Any]]:
    return [protocol_template(key) for key in TEMPLATE_KEYS]


def protocol_blank() -> dict[str, Any]:
    """Return the starting point of a protocol composed from scratch (one question to edit)."""
    return {
        "key": "custom_protocol",
        "version": 1,
        "title": "",
        "mode": "pairwise",
        "questions": [
            {
                "id": "preference",
                "type": "single_choice",
                "scope": "comparative",
                "prompt": "Which report would you rather use for the care of this patient?",
                "required": True,
                "options": [
                    {"value": "candidate", "axis": 1, "label": "{Candidate}"},
                    {"value": "original", "axis": -1, "label": "{Original}"},
                    {"value": "neither", "axis": None, "label": "Neither is better"},
                ],
            }
        ],
    }


def protocol_next_version(protocol: dict[str, Any]) -> dict[str, Any]:
    """Return an editable copy of a study's protocol as its next version.

    The AI-guess question belongs to the study, not the protocol: a study that asks for it adds
    it again when it is created.
    """
    document = copy.deepcopy(protocol)
    document["version"] = int(document.get("version", 0)) + 1
    document["questions"] = [q for q in document.get("questions", []) if q["id"] != AI_GUESS_ID]
    return document


def protocol_parse(text: str) -> dict[str, Any]:
    """Return the protocol document in ``text`` (JSON), or raise ValidationError."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ValidationError({"protocol": [f"(document): not valid JSON ({error})"]}) from None
    if not isinstance(document, dict):
        raise ValidationError({"protocol": ["(document): the protocol must be a JSON object"]})
    return document


def protocol_validate(protocol: Any) -> None:
    """Raise ValidationError naming every problem of a protocol document."""
    validator = jsonschema.Draft202012Validator(protocol_schema())
    errors = sorted(validator.iter_errors(protocol), key=lambda e: list(e.absolute_path))
    if errors:
        raise ValidationError(
            {
                "protocol": [
                    f"{'/'.join(str(p) for p in e.absolute_path) or '(document)'}: {e.message}"
                    for e in errors[:20]
                ]
            }
        )
    problems: list[str] = []
    seen: dict[str, dict[str, Any]] = {}
    for question in protocol["questions"]:
        qid = question["id"]
        if qid in seen:
            problems.append(f"question {qid}: the id is used twice")
        if question["scope"] == "comparative" and protocol["mode"] != "pairwise":
            problems.append(f"question {qid}: comparative questions need a pairwise protocol")
        values = [o["value"] for o in _options_of(question)]
        if len(set(values)) != len(values):
            problems.append(f"question {qid}: option values repeat")
        has_axis = any(o.get("axis") is not None for o in question.get("options", []))
        if has_axis and question["scope"] != "comparative":
            problems.append(f"question {qid}: only comparative options can favour a side (axis)")
        condition = question.get("show_if")
        if condition:
            target = seen.get(condition["question"])
            if target is None:
                problems.append(
                    f"question {qid}: show_if must name an earlier question, "
                    f"not {condition['question']!r}"
                )
            else:
                allowed = {o["value"] for o in _options_of(target)}
                unknown = set(condition["in"]) - allowed
                if unknown:
                    problems.append(f"question {qid}: show_if values {sorted(unknown)} unknown")
                if target["scope"] != question["scope"]:
                    problems.append(f"question {qid}: show_if must name a question of its scope")
        seen[qid] = question
    for outcome in protocol.get("outcomes", []):
        target = seen.get(outcome["question"])
        if target is None:
            problems.append(f"outcome {outcome['id']}: no question {outcome['question']!r}")
            continue
        allowed = {o["value"] for o in _options_of(target)}
        listed = set(outcome.get("values", [])) | (
            {outcome["at_least"]} if "at_least" in outcome else set()
        )
        if listed - allowed:
            problems.append(f"outcome {outcome['id']}: values {sorted(listed - allowed)} unknown")
        if ("values" in outcome) == ("at_least" in outcome):
            problems.append(f"outcome {outcome['id']}: give either values or at_least")
    if not problems and protocol["mode"] == "pairwise":
        # A composed protocol must not unblind by itself: the reader's form has to be the same
        # whichever side the candidate is on (wording, order and letters of every option).
        form_a = form_build(protocol, Sides(candidate_side="A"))
        form_b = form_build(protocol, Sides(candidate_side="B"))
        for item_a, item_b in zip(form_a, form_b, strict=True):
            if item_a != item_b:
                problems.append(
                    f"question {item_a['id']}: the options read differently depending on which "
                    "side the candidate report is on, which would reveal it; give opposing "
                    "options mirrored wording and opposite axis values"
                )
    problems += _template_version_problems(protocol)
    if problems:
        raise ValidationError({"protocol": problems})


def _questions_as_asked(protocol: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    # The AI-guess question and the outcomes' thresholds are per-study options
    # (protocol_prepare), not changes to the questions themselves.
    return protocol["mode"], [q for q in protocol["questions"] if q["id"] != AI_GUESS_ID]


def _template_version_problems(protocol: dict[str, Any]) -> list[str]:
    """A changed copy of a built-in template must not carry the template's key and version:
    exports and the study list name a protocol by them, so they must mean one question set."""
    key, version = protocol["key"], protocol["version"]
    if key not in TEMPLATE_KEYS:
        return []
    template = protocol_template(key)
    if version > template["version"] or _questions_as_asked(protocol) == _questions_as_asked(
        template
    ):
        return []
    return [
        f"version: these questions differ from the built-in template {key} v{template['version']};"
        f" give them version {template['version'] + 1} or higher, or a key of their own"
    ]


def protocol_prepare(
    protocol: dict[str, Any], *, ask_ai_guess: bool, acceptable_threshold: str | None = None
) -> dict[str, Any]:
    """Return the study's frozen copy: the template plus the study's own options."""
    prepared = copy.deepcopy(protocol)
    if ask_ai_guess:
        if prepared["mode"] != "pairwise":
            raise ValidationError(
                {"ask_ai_guess": "The AI-guess question needs a pairwise protocol."}
            )
        if not any(q["id"] == AI_GUESS_ID for q in prepared["questions"]):
            prepared["questions"].append(copy.deepcopy(AI_GUESS_QUESTION))
    if acceptable_threshold:
        outcomes = [o for o in prepared.get("outcomes", []) if "at_least" in o]
        if not outcomes:
            raise ValidationError(
                {"acceptable_threshold": "This protocol has no ordinal threshold to set."}
            )
        for outcome in outcomes:
            outcome["at_least"] = acceptable_threshold
        prepared.setdefault("parameters", {})["acceptable_threshold"] = acceptable_threshold
    protocol_validate(prepared)
    return prepared


def modality_mismatch(protocol: dict[str, Any], modalities: str) -> list[str]:
    """Return the study's modalities the protocol was not written for ([] when it fits).

    ``modalities`` is the imaging study's backslash-separated list (``CR\\DX``). A study fits
    when any of its modalities is declared; a protocol that declares none fits everything.
    """
    declared = set(protocol.get("modalities") or [])
    found = [m.strip().upper() for m in modalities.split("\\") if m.strip()]
    if not declared or not found or declared.intersection(found):
        return []
    return found


def outcome_values(protocol: dict[str, Any], outcome_id: str) -> set[str]:
    """Return the stored values that meet an outcome (e.g. "equivalent or better")."""
    for outcome in protocol.get("outcomes", []):
        if outcome["id"] != outcome_id:
            continue
        if "values" in outcome:
            return set(outcome["values"])
        question = next(q for q in protocol["questions"] if q["id"] == outcome["question"])
        ordered = [o["value"] for o in _options_of(question)]
        return set(ordered[: ordered.index(outcome["at_least"]) + 1])
    raise KeyError(outcome_id)


def _options_of(question: dict[str, Any]) -> list[dict[str, Any]]:
    if question["type"] == "yes_no":
        return YES_NO_OPTIONS
    if question["type"] == "error_spans":
        return question["categories"]
    return question.get("options", [])


# --- the reader's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sides:
    """Which sides a case's reports are shown on, for one assignment."""

    candidate_side: str  # "A", "B" or "" for a single-report case

    @property
    def is_pairwise(self) -> bool:
        return self.candidate_side in ("A", "B")

    @property
    def original_side(self) -> str:
        return {"A": "B", "B": "A"}.get(self.candidate_side, "")

    @property
    def shown(self) -> list[str]:
        return ["A", "B"] if self.is_pairwise else [""]

    def label(self, side: str) -> str:
        return f"Report {side}" if side else "Report"

    def placeholders(self) -> dict[str, str]:
        cand, orig = self.candidate_side, self.original_side
        return {
            "candidate": self.label(cand),
            "Candidate": self.label(cand),
            "original": self.label(orig),
            "Original": self.label(orig),
            "cand_short": cand,
            "orig_short": orig,
        }


def text_render(template: str, values: dict[str, str]) -> str:
    """Resolve {placeholders}; only known names, so a stray brace is kept as written."""
    out = template
    for name, value in values.items():
        out = out.replace("{" + name + "}", value)
    return out


def _display_options(question: dict[str, Any], sides: Sides) -> list[dict[str, Any]]:
    """Options in the order the reader sees them, each with its letter code."""
    options = _options_of(question)
    if question["scope"] == "comparative" and sides.is_pairwise:
        sign = 1 if sides.candidate_side == "A" else -1
        axed = [o for o in options if o.get("axis") is not None]
        free = [o for o in options if o.get("axis") is None]
        # Sorting on how much an option favours A makes the order identical for both
        # assignments of sides; ties keep protocol order (stable sort).
        options = sorted(axed, key=lambda o: -sign * o["axis"]) + free
    values = sides.placeholders()
    shown = []
    for code, option in zip(OPTION_CODES, options, strict=False):
        item = {
            "code": code,
            "value": option["value"],
            "label": text_render(option["label"], values),
        }
        if option.get("short"):
            item["short"] = text_render(option["short"], values)
        shown.append(item)
    return shown


def _item_id(question_id: str, side: str, *, per_report: bool, pairwise: bool) -> str:
    return f"{question_id}.{side}" if per_report and pairwise else question_id


def form_build(protocol: dict[str, Any], sides: Sides) -> list[dict[str, Any]]:
    """Return the form items for one assignment, free of any source value (see module doc)."""
    items: list[dict[str, Any]] = []
    values = sides.placeholders()
    codes_by_item: dict[str, dict[str, str]] = {}
    for question in protocol["questions"]:
        item_sides = [""] if question["scope"] == "comparative" else sides.shown
        for side in item_sides:
            per_report = question["scope"] == "per_report"
            item_id = _item_id(
                question["id"], side, per_report=per_report, pairwise=sides.is_pairwise
            )
            prompt = text_render(question["prompt"], values)
            if per_report and sides.is_pairwise:
                prompt = f"{prompt} ({sides.label(side)})"
            item: dict[str, Any] = {
                "id": item_id,
                "type": question["type"],
                "prompt": prompt,
                "required": bool(question.get("required", False)),
                "side": side,
            }
            if question.get("help"):
                item["help"] = text_render(question["help"], values)
            if question["type"] == "error_spans":
                item["categories"] = [
                    {"code": c["value"], "label": c["label"]} for c in question["categories"]
                ]
            elif question["type"] != "free_text":
                shown = _display_options(question, sides)
                item["options"] = [{k: v for k, v in o.items() if k != "value"} for o in shown]
                codes_by_item[item_id] = {o["value"]: o["code"] for o in shown}
            condition = question.get("show_if")
            if condition:
                target_id = _item_id(
                    condition["question"], side, per_report=per_report, pairwise=sides.is_pairwise
                )
                codes = codes_by_item[target_id]
                item["show_if"] = {
                    "item": target_id,
                    "codes": sorted(codes[v] for v in condition["in"]),
                }
            items.append(item)
    return items


@dataclass
class ResolvedAnswers:
    answers: dict[str, Any]
    spans: list[dict[str, Any]]
    ai_guess: str


def answers_resolve(
    protocol: dict[str, Any],
    sides: Sides,
    *,
    raw_answers: Any,
    raw_spans: Any,
    sources: dict[str, str],
    report_texts: dict[str, dict[str, str]],
) -> ResolvedAnswers:
    """Validate a submitted form and translate letter codes back into stored values.

    ``sources`` maps side -> report kind; ``report_texts`` side -> section -> text, to check
    span offsets. Raises ValidationError naming each item that is wrong or missing.
    """
    if not isinstance(raw_answers, dict):
        raise ValidationError({"answers": "Answers must be an object of item id -> answer."})
    spans_in = raw_spans if raw_spans is not None else []
    if not isinstance(spans_in, list) or len(spans_in) > MAX_SPANS:
        raise ValidationError({"spans": f"Spans must be a list of at most {MAX_SPANS}."})
    items = form_build(protocol, sides)
    by_id = {item["id"]: item for item in items}
    unknown = set(raw_answers) - set(by_id)
    problems: dict[str, str] = {f"answers.{k}": "No such question." for k in sorted(unknown)}
    answers: dict[str, Any] = {}
    chosen_codes: dict[str, str] = {}
    questions = {q["id"]: q for q in protocol["questions"]}
    span_items: dict[str, dict[str, Any]] = {}
    for item in items:
        question = questions[item["id"].split(".")[0]]
        condition = item.get("show_if")
        if condition and chosen_codes.get(condition["item"]) not in condition["codes"]:
            if item["id"] in raw_answers and raw_answers[item["id"]] not in (None, ""):
                problems[f"answers.{item['id']}"] = "This question does not apply to your answers."
            continue
        if item["type"] == "error_spans":
            span_items[item["side"]] = item
            continue
        value = raw_answers.get(item["id"])
        if value in (None, ""):
            if item["required"]:
                problems[f"answers.{item['id']}"] = f"Please answer: {item['prompt']}"
            continue
        stored: dict[str, Any] = {"question": question["id"], "side": item["side"]}
        if item["side"]:
            stored["source"] = sources[item["side"]]
        if item["type"] == "free_text":
            if not isinstance(value, str) or len(value) > MAX_TEXT:
                problems[f"answers.{item['id']}"] = f"Text of at most {MAX_TEXT} characters."
                continue
            stored["text"] = value
        else:
            shown = {o["code"]: o for o in _display_options(question, sides)}
            if value not in shown:
                problems[f"answers.{item['id']}"] = (
                    f"Choose one of {', '.join(sorted(shown))} for: {item['prompt']}"
                )
                continue
            chosen_codes[item["id"]] = value
            stored.update(code=value, value=shown[value]["value"], label=shown[value]["label"])
        answers[item["id"]] = stored
    spans: list[dict[str, Any]] = []
    for index, span in enumerate(spans_in):
        where = f"spans.{index}"
        if not isinstance(span, dict):
            problems[where] = "Each span must be an object."
            continue
        side = span.get("side", "")
        span_item = span_items.get(side)
        if span_item is None:
            problems[where] = "No error-span question applies to this report."
            continue
        section = span.get("section")
        text = report_texts.get(side, {}).get(section or "")
        start, end = span.get("start"), span.get("end")
        if text is None:
            problems[where] = "Section must be findings or impression of a shown report."
            continue
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            problems[where] = f"Offsets must satisfy 0 <= start < end <= {len(text)}."
            continue
        categories = {c["code"] for c in span_item["categories"]}
        if span.get("category") not in categories:
            problems[where] = f"Reason must be one of {', '.join(sorted(categories))}."
            continue
        if not isinstance(span.get("significant"), bool):
            problems[where] = "Say whether the error is clinically significant (true/false)."
            continue
        replacement = span.get("replacement", "")
        if not isinstance(replacement, str) or len(replacement) > MAX_TEXT:
            problems[where] = "Replacement must be text."
            continue
        spans.append(
            {
                "side": side,
                "section": section,
                "start": start,
                "end": end,
                "category": span["category"],
                "is_significant": span["significant"],
                "replacement_text": replacement,
            }
        )
    for side_spans in _group(spans):
        ordered = sorted(side_spans, key=lambda s: s["start"])
        for before, after in itertools.pairwise(ordered):
            if after["start"] < before["end"]:
                problems["spans"] = "Marked passages overlap; merge or shorten them."
    if problems:
        raise ValidationError(problems)
    guess = answers.get(AI_GUESS_ID, {}).get("value", "")
    return ResolvedAnswers(answers=answers, spans=spans, ai_guess=guess)


def _group(spans: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for span in spans:
        groups.setdefault((span["side"], span["section"]), []).append(span)
    return list(groups.values())


def text_apply_edits(text: str, edits: list[dict[str, Any]]) -> str:
    """Return ``text`` with each [start, end) replaced; edits must not overlap."""
    out = text
    for edit in sorted(edits, key=lambda e: e["start"], reverse=True):
        out = out[: edit["start"]] + edit["replacement_text"] + out[edit["end"] :]
    return out


# --- reference answers of practice cases -----------------------------------------------------


def protocol_for_reference(protocol: dict[str, Any]) -> dict[str, Any]:
    """The questions a practice case's reference answers: the protocol without the AI-guess
    question (a reference answer to it would tell readers which report is the AI's)."""
    document = copy.deepcopy(protocol)
    document["questions"] = [q for q in document["questions"] if q["id"] != AI_GUESS_ID]
    return document


def reference_sides(protocol: dict[str, Any]) -> Sides:
    """The sides a coordinator enters reference answers on: the case's first report as A."""
    return Sides(candidate_side="B" if protocol.get("mode") == "pairwise" else "")


def answers_applicable(protocol: dict[str, Any], sides: Sides, raw_answers: Any) -> Any:
    """``raw_answers`` without the answers to questions whose ``show_if`` the other answers do
    not meet, as the reading page leaves hidden questions out (a page without scripts shows
    every question, and a radio button cannot be cleared)."""
    if not isinstance(raw_answers, dict):
        return raw_answers
    kept = dict(raw_answers)
    for item in form_build(protocol, sides):
        condition = item.get("show_if")
        if condition and kept.get(condition["item"]) not in condition["codes"]:
            kept.pop(item["id"], None)
    return kept


def _side_of_slot(sides: Sides, slot: str) -> str:
    return sides.candidate_side if slot == "candidate" else sides.original_side


def _slot_of_side(sides: Sides, side: str) -> str:
    return "candidate" if side == sides.candidate_side else "original"


def answers_on_sides(
    protocol: dict[str, Any], stored: dict[str, Any], *, entered: Sides, shown: Sides
) -> dict[str, dict[str, str]]:
    """Stored answers given on the ``entered`` sides, as one reader's form would show them on
    theirs: item id -> {"code", "label"} of the option, or {"text"}.

    A per-report answer follows its report to the side this reader sees it on; a comparative
    answer keeps its stored value, which this reader's options show in their own words.
    """
    questions = {q["id"]: q for q in protocol["questions"]}
    out: dict[str, dict[str, str]] = {}
    for answer in stored.values():
        question = questions.get(answer.get("question", ""))
        if question is None or question["type"] == "error_spans":
            continue
        side = answer.get("side", "")
        if side and shown.is_pairwise:
            side = _side_of_slot(shown, _slot_of_side(entered, side))
        item_id = _item_id(
            question["id"],
            side,
            per_report=question["scope"] == "per_report",
            pairwise=shown.is_pairwise,
        )
        if "text" in answer:
            out[item_id] = {"text": answer["text"]}
            continue
        options = {o["value"]: o for o in _display_options(question, shown)}
        option = options.get(answer.get("value"))
        if option is not None:
            out[item_id] = {"code": option["code"], "label": option["label"]}
    return out
