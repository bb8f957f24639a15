"""The one renderer every report passes through before a reader sees it.

Decision record (renderer version 2)
------------------------------------
Why: originals and AI reports differ in habits that unblind a reader at a glance. Originals carry
signatures ("Electronically signed by ... MD, 01/02/2020 10:32"), attestations ("I have
personally reviewed the images"), dictation notes, staff names, dates and times, addendum
markers, institution boilerplate and headings for parts of the case (INDICATION:, COMPARISON:);
AI reports carry none of these. Version 1 only dropped lines *starting* with a few footer words,
so a signature in mid-line reached the reader.

What: one pipeline of named rules (``PIPELINE``), applied to every section of every source alike.
Each rule below says which tell it removes and why. Error-span offsets refer to the rendered
text, so the pipeline is deterministic (pure functions of the text, no locale, no clock) and any
change to it bumps ``RENDERER_VERSION``; a study pins the renderings it opened with.

Decisions:
- Clinical content is never dropped to remove a tell. Rules that delete a whole sentence do so
  only for sentences whose subject is the reporting workflow (signing, dictation, attestation,
  communication of results, institution boilerplate), never for a sentence about the patient.
- A date inside a clinical sentence is removed, not the sentence: "compared with 01/02/2020 there
  is" becomes "compared with the prior study there is"; "the radiograph of 01/02/2020" becomes
  "the radiograph"; other dates and times vanish with their preposition ("at 10:32").
- Addenda: the marker ("ADDENDUM:", "*** ADDENDUM ***", "Addendum by Dr X on ...:") is removed
  and the addendum's clinical text is kept, because it is part of the final report a clinician
  would act on; its own signature goes by the signature rules.
- Sections that belong to the case, not the report (indication/history, comparison, technique,
  examination) are shown to readers once, outside both reports, so their headings *and content*
  are dropped here. Their content runs to the end of its sentence, the line, or the next heading,
  whichever comes first, so a finding that follows on the same line is kept.
- Headings of the shown sections (FINDINGS:, IMPRESSION:, CONCLUSION: ...) are dropped; the page
  labels the sections itself.
- Lists ("1.", "1)", "-", "•", "*") are rendered as prose: each item one sentence, so a numbered
  original and a prose AI report look alike. Lines without closing punctuation followed by a line
  starting with a capital become sentences the same way.
- Case: any sentence written in capitals is rendered in sentence case with common radiology
  acronyms (PA, CT, PICC, T12...) restored; every sentence starts with a capital. Applying it per
  sentence, to every source, is fairest: a shouted impression line inside a normal report is
  treated exactly like a report that is all capitals.
- Names: "Dr X" in a clinical sentence becomes "the clinician"; "X Y, MD" and other credentials
  are removed with the name. What the rules cannot recognise (a bare name, a year alone) is left
  for the blinding check to list before a study opens (reviewapp.studies.blinding).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from reviewapp.reports.models import Report

RENDERER_VERSION = 2

Rule = Callable[[str], str]

# --- shared patterns -----------------------------------------------------------------------

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE = (
    r"(?<![\w/.\-])(?:(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s+)?(?:"
    r"\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})(?!\d)"  # 01/02/2020, 1.2.20, 01-02-2020
    r"|\d{4}[/.\-]\d{1,2}[/.\-]\d{1,2}(?!\d)"  # 2020-01-02
    rf"|\d{{1,2}}(?:st|nd|rd|th)?(?:\s+of)?[\s\-]+{_MONTH}\.?,?[\s\-]+\d{{2,4}}(?!\d)"  # 2 Jan 2020
    rf"|{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}(?!\d)"  # January 2, 2020
    rf"|{_MONTH}\.?,?\s+\d{{4}}(?!\d)"  # January 2020
    r"))"
)
_TIME = (
    r"(?<![\w/.:\-])(?:\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?\s?m\b\.?)?"  # 10:32:05 AM
    r"|\d{1,2}\s*[ap]\.m\.|\d{1,2}\s*[ap]m\b"  # 10 am, 10 a.m.
    r"|\d{4}\s*(?:hours|hrs|h)\b)"  # 1032 hours
    r"(?:\s*\(?(?:gmt|utc|bst|est|edt|cst|cdt|pst|pdt|cet|ist)\b\)?)?"
)
_TEMPORAL = rf"(?:{_DATE}(?:,?\s*(?:at\s+)?{_TIME})?|{_TIME}(?:,?\s*(?:on\s+)?{_DATE})?)"

# Tokens before a full stop that do not end a sentence: honorifics, initials, month
# abbreviations and the like; a signature's "Dr. J. Smith" must not be cut at "Dr.".
_NOT_SENTENCE_END = re.compile(
    r"(?:\b(?:dr|mr|mrs|ms|prof|st|jr|sr|vs|approx|e\.g|i\.e|fig|jan|feb|mar|apr|jun|jul|"
    r"aug|sep|sept|oct|nov|dec)|\b[a-z])$",
    re.IGNORECASE,
)
_END_CANDIDATE = re.compile(r"[.!?](?=\s+[A-Z0-9(\"']|\s*$)")


# ...but a credential written with full stops ("M.D.") does end one when a capital follows.
_CREDENTIAL_END = re.compile(r"(?:M\.\s?D|D\.O|Ph\.\s?D|B\.S)$")


def _ends_sentence(text: str, stop: int) -> bool:
    before = text[max(0, stop - 8) : stop]
    return bool(_CREDENTIAL_END.search(before)) or not _NOT_SENTENCE_END.search(before)


def _sentence_end(text: str, start: int) -> int:
    """Index just past the end of the sentence (or line) that contains ``start``."""
    line_end = text.find("\n", start)
    line_end = len(text) if line_end == -1 else line_end
    for match in _END_CANDIDATE.finditer(text, start, line_end):
        if _ends_sentence(text, match.start()):
            return match.end()
    return line_end


def _sentence_start(text: str, position: int) -> int:
    """Index of the first character of the sentence (or line) that contains ``position``."""
    line_start = text.rfind("\n", 0, position) + 1
    start = line_start
    for match in _END_CANDIDATE.finditer(text, line_start, position):
        if _ends_sentence(text, match.start()):
            start = match.end()
    return start


# --- rules ---------------------------------------------------------------------------------

_DECORATION = re.compile(r"[*=_#~]{2,}|[ \t\u00a0\u2000-\u200b]+")


def _unify_whitespace(text: str) -> str:
    """Line endings, tabs, non-breaking spaces and ruler lines ("*****", "=====") differ by
    house style and editor; unify them so the rules below see one form."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(_DECORATION.sub(" ", line).strip() for line in text.split("\n"))


_HEADING_WORDS = (
    r"clinical\s+(?:history|information|indications?|details|notes?)|history|indications?"
    r"|reason\s+for\s+(?:exam(?:ination)?|study|referral|request)|comparisons?|priors?"
    r"|prior\s+stud(?:y|ies)|techniques?|exam(?:ination)?|procedure|study|views?|type\s+of\s+study"
    r"|findings?|impressions?|conclusions?|opinion|summary|recommendations?|diagnosis"
    r"|interpretation|report|final\s+report|preliminary\s+report|wet\s+read|addend(?:um|a)"
)
_CASE_LEVEL_HEADING = re.compile(
    r"(?:^|(?<=[.!?;]\s)|(?<=[.!?;]))\s*"
    r"(?:clinical\s+(?:history|information|indications?|details|notes?)|history|indications?"
    r"|reason\s+for\s+(?:exam(?:ination)?|study|referral|request)|comparisons?|priors?"
    r"|prior\s+stud(?:y|ies)|techniques?|exam(?:ination)?|procedure|study|views?"
    r"|type\s+of\s+study)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_ANY_HEADING = re.compile(rf"(?:^|(?<=\s))(?:{_HEADING_WORDS})\s*:", re.IGNORECASE | re.MULTILINE)


def _case_level_block_end(text: str, start: int) -> int:
    """A case-level block runs to its sentence's end, the next heading or the line's end; a
    line wrapped mid-sentence (the next starts in lower case) continues it."""
    end = start
    while True:
        sentence = _sentence_end(text, end)
        heading = _ANY_HEADING.search(text, end, sentence)
        if heading:
            return heading.start()
        line_text = text[end:sentence].rstrip()
        following = text[sentence + 1 : sentence + 2]
        wrapped = (
            sentence < len(text)
            and text[sentence] == "\n"
            and not line_text.endswith((".", "!", "?"))
            and following.islower()
        )
        if not wrapped:
            return sentence
        end = sentence + 1


def _drop_case_level_sections(text: str) -> str:
    """Indication, history, comparison and technique belong to the case: readers see them once,
    outside both reports. Inside one report they mark it as the original (AI reports rarely
    repeat them), and comparison lines carry dates."""
    while match := _CASE_LEVEL_HEADING.search(text):
        end = _case_level_block_end(text, match.end())
        text = text[: match.start()] + " " + text[end:]
    return text


_REPORT_HEADING = re.compile(
    r"(?:^|(?<=[.!?;]\s)|(?<=[.!?;]))\s*(?:findings?|impressions?|conclusions?|opinion|summary"
    r"|recommendations?|diagnosis|interpretation|report)\s*:"
    r"|^\s*(?:findings?|impressions?|conclusions?|opinion|summary|report|final\s+report"
    r"|preliminary\s+report|wet\s+read|final|preliminary|amended\s+report|corrected\s+report)"
    r"\s*:?\s*$",
    re.IGNORECASE | re.MULTILINE,
)


def _drop_report_headings(text: str) -> str:
    """Headings of the shown sections (and report-status lines such as FINAL REPORT) are a
    house style of originals; the page labels findings and impression itself."""
    return _REPORT_HEADING.sub(" ", text)


_ADDENDUM_MARKER = re.compile(
    r"\baddend(?:um|a)\b(?:\s+(?:begins?|ends?|starts?|#?\d+))?"
    r"(?:\s*\((?:[^()\n]{0,60})\))?"
    r"(?:\s+(?:by|from|on|dated)\b[^:\n]{0,80}?:)?\s*[:\-]?",
    re.IGNORECASE,
)


def _drop_addendum_markers(text: str) -> str:
    """Only originals are amended. The marker goes; the addendum's clinical text stays (it is
    part of the final report) and its signature goes by the signature rules."""
    return _ADDENDUM_MARKER.sub(" ", text)


# Clauses removed from their trigger to the end of their sentence or line: sign-off and
# dictation stamps, which begin where they begin (often after the last finding, on its line).
_FROM_TRIGGER = [
    # "Electronically signed by ...", "Report signed off by ...", "Verified by: ..."
    re.compile(
        r"(?:\b(?:this\s+)?(?:report|study|exam(?:ination)?)\s+(?:was\s+|has\s+been\s+|is\s+)?)?"
        r"\b(?:electronically\s+)?(?:e-)?(?:(?:signed|authenticated|finali[sz]ed|verified|approved"
        r"|dictated|transcribed|typed)(?:\s+(?:and|&)\s+\w+)?\s*(?:off\s+)?(?:by|on)"
        r"|(?:reported|read|interpreted|reviewed|released)(?:\s+(?:and|&)\s+\w+)?\s+by)\b\s*:?",
        re.IGNORECASE,
    ),
    re.compile(r"\belectronically\s+(?:signed|authenticated|verified)\b", re.IGNORECASE),
    # "Dictated: 01/02/2020", "Transcription date: ...", "D: 01/02/2020 T: 01/02/2020"
    re.compile(
        r"\b(?:dictat(?:ed|ion)|transcri(?:bed|ption)|signed|signature|verified|typed)"
        r"(?:\s+(?:date|time|on))?\s*:",
        re.IGNORECASE,
    ),
    re.compile(rf"\b(?:DD|DT|D|T)\s*:\s*(?:\d|(?i:{_MONTH}))"),
    re.compile(r"\bjob\s*(?:#|no\.?|number|id)\s*:?\s*\d", re.IGNORECASE),
    # Staff roles: "Attending: Dr X", "RADIOLOGIST: JOHN SMITH, MD", "Reported by: ..."
    re.compile(
        r"\b(?:attending|resident|fellow|registrar|consultant|trainee|(?:reporting|staff|"
        r"reading|interpreting)\s+(?:radiologist|physician)|radiologists?|physician|"
        r"(?:referring|ordering|requesting)\s+(?:physician|clinician|doctor|provider)|"
        r"technologist|radiographer|sonographer|reporter|author)\s*:",
        re.IGNORECASE,
    ),
]

# Sentences removed whole: their subject is the reporting workflow, not the patient.
_WHOLE_SENTENCE = [
    # Dictation notes however phrased: "Dictated 01/02/2020 10:32.", "Transcriptionist: KLM".
    # (Those followed by "by" or ":" are cut from the trigger instead: see _FROM_TRIGGER.)
    re.compile(
        r"\b(?:dictated|transcribed)\b(?!(?:\s+(?:and|&)\s+\w+)?\s*(?:by|on|:))"
        r"|\b(?:dictation|transcription|transcriptionist)\b(?!\s*(?:date|time|by)?\s*:)",
        re.IGNORECASE,
    ),
    # Attestations: "I have personally reviewed the images and agree with the findings."
    re.compile(
        r"\bI\b[^.\n]{0,60}?\b(?:have\s+)?(?:personally\s+)?(?:reviewed|examined|viewed|agree|"
        r"concur|attest)\b",
        re.IGNORECASE,
    ),
    re.compile(r"\bpersonally\s+(?:reviewed|examined|viewed)\b|\battestation\b", re.IGNORECASE),
    # Communication of results: "Findings were discussed with Dr X by telephone at 10:30."
    re.compile(
        r"\b(?:discussed|communicated|conveyed|relayed|reviewed)\s+(?:with|to)\b"
        r"|\b(?:called|telephoned|phoned|paged|notified|emailed|faxed)\s+(?:to|by|at|the)\b"
        r"|\bread\s*back\b|\bcritical\s+(?:results?|findings?)\s+(?:notification|communication"
        r"|policy)\b",
        re.IGNORECASE,
    ),
    # Institution boilerplate: where it was reported, whom to call, thanks, disclaimers.
    re.compile(
        r"\b(?:this|the)\s+(?:report|study|exam(?:ination)?)\s+(?:was|has\s+been)\s+"
        r"(?:performed|generated|produced|created|issued|prepared|reported|read|interpreted|"
        r"released)\s+(?:at|by)\b"
        r"|\bplease\s+(?:call|contact|phone|telephone|page|do\s+not\s+hesitate|feel\s+free)\b"
        r"|\bthank\s+you\s+for\b|\bif\s+you\s+have\s+(?:any\s+)?(?:questions|queries)\b"
        r"|\bfor\s+(?:any\s+)?(?:questions|queries)\b|\bend\s+of\s+(?:report|impression)\b"
        r"|\b(?:see|this\s+is\s+an|an)\s+addendum\b|\bdisclaimer\b"
        r"|\b(?:voice|speech)\s+recognition\b|\bthis\s+report\s+(?:is|was)\s+(?:confidential"
        r"|intended)\b",
        re.IGNORECASE,
    ),
]


# "No acute disease I have personally reviewed ..." lacks its full stop: the attestation still
# starts at its "I", and the finding before it is kept.
_FIRST_PERSON = re.compile(r"\bI\b(?=(?i:,|\s+(?:have|agree|concur|personally|attest)))")


def _workflow_sentence_start(text: str, position: int) -> int:
    start = _sentence_start(text, position)
    opener = _FIRST_PERSON.search(text, start)
    return opener.start() if opener and opener.start() <= position else start


def _drop_workflow_clauses(text: str) -> str:
    """Signatures, attestations, dictation notes, communication notes and boilerplate, wherever
    they stand in the text (v1 only caught them at the start of a line)."""
    # A removal leaves a line break, so what stood before it ends there and never merges with
    # what followed. Whole sentences first: "The images were personally reviewed by ..." must
    # go whole, not lose only its tail to the "reviewed by" trigger.
    changed = True
    while changed:
        changed = False
        for pattern in _WHOLE_SENTENCE:
            while match := pattern.search(text):
                start = _workflow_sentence_start(text, match.start())
                text = text[:start] + "\n" + text[_sentence_end(text, match.end()) :]
                changed = True
        for pattern in _FROM_TRIGGER:
            if match := pattern.search(text):
                text = text[: match.start()] + "\n" + text[_sentence_end(text, match.end()) :]
                changed = True
    return text


# A name token starts at a word boundary and never spans lines, so "...ATELECTASIS.\nJANE DOE,
# MD" cannot borrow "S." as an initial and eat the finding's last word.
_NAME_PART = r"(?:\b[A-Z]\.[ \t]*|\b[A-Z][A-Za-z'\-]+[ \t]*)"
_CREDENTIAL = (
    r"(?:M\.\s?D\.?|MD|D\.O\.|MBBS|M\.B\.B\.S\.|MBChB|FRCR|FRCPC|FRANZCR|FACR|DMRD|DNB|MRCP"
    r"|DABR|Ph\.\s?D\.?|PhD)"
)
_NAME_WITH_CREDENTIALS = re.compile(
    rf"(?:\b(?:Dr|DR|Doctor|Prof|Professor)\.?[ \t]+)?(?:{_NAME_PART}{{1,4}},?[ \t]*)?"
    rf"(?<![A-Za-z]){_CREDENTIAL}(?![A-Za-z])(?:\s*,?\s*{_CREDENTIAL}(?![A-Za-z]))*"
    r"|,\s*D\.?O\.?(?![A-Za-z])"
)
_HONORIFIC_NAME = re.compile(
    r"\b(?:Dr|DR|Doctor|DOCTOR|Prof|PROF|Professor)\.?\s+(?:[A-Z]\.\s*){0,2}"
    r"[A-Z][A-Za-z'\-]+(?:\s+[A-Z][a-z'\-]+)?(?:'s)?"
)
_STAFF_ROLE_NOTE = re.compile(
    r"\(\s*(?:resident|attending|fellow|consultant|radiologist|registrar|trainee|staff)\s*\)",
    re.IGNORECASE,
)


def _drop_staff_names(text: str) -> str:
    """Staff names and credentials outside a signature ("Jane Doe, MD", "(resident)") name the
    original's author; a doctor named in a clinical sentence becomes "the clinician"."""
    text = _NAME_WITH_CREDENTIALS.sub(" ", text)
    text = _STAFF_ROLE_NOTE.sub(" ", text)
    return _HONORIFIC_NAME.sub("the clinician", text)


_DATE_AFTER_NOUN = re.compile(
    r"\b(?P<noun>stud(?:y|ies)|exam(?:ination)?s?|radiographs?|films?|x-rays?|ct|mri|scans?|"
    r"images?|one)\b\s*,?\s*(?:(?:dated|of|from|on|done\s+on|performed\s+on|obtained\s+on)\s+)?"
    rf"{_TEMPORAL}",
    re.IGNORECASE,
)
_DATE_AFTER_COMPARISON = re.compile(
    r"\b(?P<prep>compared\s+(?:with|to)|comparison\s+(?:with|to)|since|versus|vs\.?|relative\s+to"
    rf"|than\s+(?:on|at)|than)\s+{_TEMPORAL}",
    re.IGNORECASE,
)
_DATE_ANYWHERE = re.compile(rf",?\s*\b(?:(?:on|at|dated|of|from|by)\s+)?{_TEMPORAL}", re.IGNORECASE)


def _drop_dates_and_times(text: str) -> str:
    """Dates and times (digits or words) tell when, and so often who, wrote a report. The
    sentence stays: a compared-with date becomes "the prior study", a date after the study it
    dates is dropped, any other goes with its preposition."""
    text = _DATE_AFTER_NOUN.sub(lambda m: m.group("noun"), text)
    text = _DATE_AFTER_COMPARISON.sub(lambda m: f"{m.group('prep')} the prior study", text)
    return _DATE_ANYWHERE.sub(" ", text)


_LIST_MARKER = re.compile(
    r"^(?:\(?\d{1,2}[.)]|\(?[a-hA-H]\)|[-\u2022*\u2013\u2014\u00b7\u25aa\u25cf\u25e6>])\s+"
)
_INLINE_NUMBER = re.compile(r"(?:(?<=[.;:!?])|(?<=[.;:!?]\s))\s*\(?\d{1,2}[.)]\s+(?=[A-Za-z])")
_INLINE_PAREN_NUMBER = re.compile(r"(?<=[A-Za-z,])\s+\(?\d{1,2}\)\s+(?=[A-Za-z])")
_CLOSED = (".", "!", "?", ":", ";", ",")


def _lists_to_prose(text: str) -> str:
    """Numbered and bulleted lists are an original's house style: render each item, and each
    line that stands alone, as one sentence, so both sides read as prose."""
    text = _INLINE_NUMBER.sub(" ", text)
    text = _INLINE_PAREN_NUMBER.sub(". ", text)
    lines: list[tuple[str, bool]] = []
    for raw in text.split("\n"):
        line = raw.strip()
        is_item = bool(_LIST_MARKER.match(line))
        line = _LIST_MARKER.sub("", line).strip()
        if line:
            lines.append((line, is_item))
    pieces = []
    for index, (line, is_item) in enumerate(lines):
        following = lines[index + 1][0] if index + 1 < len(lines) else ""
        stands_alone = is_item or (following[:1].isupper() or following[:1].isdigit())
        if stands_alone and not line.endswith(_CLOSED):
            line += "."
        pieces.append(line)
    return " ".join(pieces)


ACRONYMS = frozenset([
    "PA", "AP", "CT", "MRI", "MR", "ICU", "ET", "ETT", "NG", "NGT", "OG", "PICC", "IVC", "SVC",
    "IJ", "COPD", "CHF", "ARDS", "AICD", "ICD", "CABG", "TB", "HIV", "CXR", "KUB", "LLL", "LUL",
    "RLL", "RUL", "RML", "LV", "RV", "AV", "PEG", "ECG", "EKG", "PE", "DVT", "AAA", "IV", "CVC",
    "CVP", "ASD", "VSD", "TAVR", "TAVI", "ILD", "UIP", "NSIP", "GGO", "RLQ", "RUQ", "LLQ", "LUQ",
])  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_SPINE_LEVEL = re.compile(r"\b([ctls])(\d{1,2})\b")
_SENTENCES = re.compile(r"(?<=[.!?])\s+")


def _mostly_upper(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) >= 0.6 * len(letters)


def _is_shouted(sentence: str) -> bool:
    words = [w for w in _WORD.findall(sentence) if len(w) >= 2 and w.upper() not in ACRONYMS]
    return sum(w.isupper() for w in words) >= 2 and _mostly_upper(sentence)


def _calm(sentence: str) -> str:
    lowered = _WORD.sub(
        lambda m: m.group(0) if m.group(0).upper() in ACRONYMS else m.group(0).lower(), sentence
    )
    return _SPINE_LEVEL.sub(lambda m: m.group(1).upper() + m.group(2), lowered)


def _capitalise(sentence: str) -> str:
    for index, char in enumerate(sentence):
        if char.isalpha():
            return sentence[:index] + char.upper() + sentence[index + 1 :]
        if char.isdigit():
            return sentence
    return sentence


def _normalise_case(text: str) -> str:
    """Capitals are a house style of some originals (and some systems): any sentence written in
    capitals becomes sentence case, with acronyms kept, and every sentence starts with a capital,
    whichever source wrote it."""
    # A section in capitals is calmed whole: its one-word sentences ("EMPHYSEMA.") too.
    whole = _mostly_upper(text)
    return " ".join(
        _capitalise(_calm(s) if whole or _is_shouted(s) else s) for s in _SENTENCES.split(text) if s
    )


_TIDY = [
    (re.compile(r"\(\s*[,;:]?\s*\)"), " "),  # brackets emptied by a removed name or date
    (re.compile(r"\s+([.,;:!?])"), r"\1"),
    (re.compile(r"([,;:])(?:\s*[,;:])+"), r"\1"),
    (re.compile(r"[,;:]\s*([.!?])"), r"\1"),
    (re.compile(r"([.!?])(?:\s*[.,;:])+"), r"\1"),
    (re.compile(r"^[\s.,;:!?]+"), ""),
    (re.compile(r"\s{2,}"), " "),
]


def _tidy(text: str) -> str:
    """Removals leave stray punctuation and spaces behind; the same clean-up for every source
    keeps the seams invisible. A section ends with a full stop whoever wrote it."""
    for pattern, replacement in _TIDY:
        text = pattern.sub(replacement, text)
    text = text.strip()
    if text and text[-1].isalnum():
        text += "."
    return text


PIPELINE: list[tuple[str, Rule]] = [
    ("unify whitespace", _unify_whitespace),
    ("drop case-level sections", _drop_case_level_sections),
    ("drop report headings", _drop_report_headings),
    ("drop addendum markers", _drop_addendum_markers),
    ("drop workflow clauses", _drop_workflow_clauses),
    ("drop staff names", _drop_staff_names),
    ("drop dates and times", _drop_dates_and_times),
    ("lists to prose", _lists_to_prose),
    ("tidy", _tidy),
    ("normalise case", _normalise_case),
    ("tidy again", _tidy),
]


def section_render(text: str) -> str:
    """Render one section's text for readers (see the module docstring for each rule's why)."""
    for _name, rule in PIPELINE:
        text = rule(text)
    return text


# Clinical context is not a report: its headings and case-level sentences are the content, so
# only what identifies people or dates is removed (as from reports), then the same tidy-up.
CONTEXT_PIPELINE: list[tuple[str, Rule]] = [
    ("unify whitespace", _unify_whitespace),
    ("drop staff names", _drop_staff_names),
    ("drop dates and times", _drop_dates_and_times),
    ("tidy", _tidy),
]


def context_render(text: str) -> str:
    """Render one clinical-context text (indication, technique, comparison) for readers and
    models: names and dates removed as from reports, nothing else changed."""
    if not text.strip():
        return ""
    for _name, rule in CONTEXT_PIPELINE:
        text = rule(text)
    return text


def report_render(report: Report) -> dict[str, str]:
    """Return the reader-facing sections of a report: findings and impression only."""
    return {
        "findings": section_render(report.findings),
        "impression": section_render(report.impression),
    }
