"""A rule-based CheXpert-style labeler of 14 chest X-ray observations, and label F1 between
a candidate report and its reference.

Decision record. The CheXpert labeler (Irvin et al. 2019) finds mentions of 14 observations,
classifies each mention as negative, uncertain or positive, and aggregates per report. Its
mention and negation/uncertainty phrase lists are its own (MIT); the phrase lists here are
written for this project after the published observation names and the documented rules, as
regular expressions over one clause at a time instead of NegBio's dependency graphs (no parser,
no model: 10,000 reports in seconds). The rules:

- A report is split into sentences, a sentence into clauses at words that end a negation's reach
  ("but", "however", "although", "which", "except"...).
- Each mention is *uncertain* when a phrase of doubt that itself contains a negation ("cannot be
  excluded", "not ruled out") reaches it; else *negative* when a negation before it ("no",
  "without", "negative for", "resolution of") or after it ("has resolved", "is not seen")
  reaches it; else *uncertain* when a hedge reaches it ("may", "possible", "likely",
  "suggestive of", "versus", "X or Y" between two observations); else *positive*.
- A negation reaches forward to the end of its clause across a comma-separated list, and stops
  at a comma followed by a new finding described on its own ("no pneumothorax, small effusion").
- Per report and observation: positive (1) if any mention is positive, else uncertain (-1) if
  any is uncertain, else negative (0) if any is negative, else blank (None).
- No Finding is positive when no observation other than Support Devices is positive or
  uncertain, and blank otherwise; as in CheXpert, "heart failure"/"CHF" make Cardiomegaly
  uncertain unless it was labelled otherwise.
- Site-and-attribute phrases carry their own polarity: "heart size is normal" is a negative
  Cardiomegaly mention, "heart is enlarged" a positive one, "borderline" or "top normal" an
  uncertain one.

F1. Each report's 14 labels are binarised two ways: *positive* (label 1) and *positive or
uncertain* (label 1 or -1). Per pair: micro F1 over the 14 observations, and macro F1 over the
observations positive in either report (an observation absent from both has no F1; a pair with
none at all agrees on everything and scores 1). Over a corpus: micro F1 over all pairs and
observations, and macro F1 as the mean of per-observation F1 over the observations positive in
some candidate or reference (sklearn's convention of 0 for absent classes would punish a study
for the findings its cases happen not to have).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from inference.metrics.base import SCORED, Metric, Result, register

OBSERVATIONS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Lesion",
    "Lung Opacity",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
POSITIVE, NEGATIVE, UNCERTAIN = 1, 0, -1
Label = int | None

# Mentions per observation. Word boundaries are added around each; plurals spelt out.
MENTIONS: dict[str, tuple[str, ...]] = {
    "Enlarged Cardiomediastinum": (
        r"widen(?:ed|ing) (?:of the )?(?:superior )?mediastinum",
        r"mediastinal (?:widening|enlargement|prominence)",
        r"enlarged (?:cardio)?mediastinum",
        r"(?:widened|enlarged|prominent) (?:cardio)?mediastinal (?:silhouette|contours?)",
        r"enlarged cardiomediastinal silhouette",
    ),
    "Cardiomegaly": (
        r"cardiomegaly",
        r"cardiac enlargement",
        r"enlarged (?:heart|cardiac silhouette)",
        r"enlargement of the (?:heart|cardiac silhouette)",
        r"(?:large|enlarged|prominent) heart",
    ),
    "Lung Lesion": (
        r"(?:pulmonary |lung )?nodules?",
        r"nodular (?:opacit(?:y|ies)|densit(?:y|ies))",
        r"(?:lung |pulmonary |hilar |cavitary )?mass(?:es)?",
        r"(?:lung |pulmonary )?lesions?",
        r"tumou?rs?",
        r"neoplasms?",
        r"carcinoma",
        r"malignan(?:cy|cies)",
        r"metastas[ie]s",
        r"granulomas?",
    ),
    "Lung Opacity": (
        r"opacit(?:y|ies)",
        r"opacification",
        r"densit(?:y|ies)",
        r"infiltrates?",
        r"infiltration",
        r"airspace (?:disease|process)",
        r"air-space (?:disease|process)",
        r"(?:ground[- ]glass|reticular|interstitial) (?:markings|abnormalit(?:y|ies))",
        r"ground[- ]glass",
        r"scarring",
    ),
    "Edema": (
        r"(?:pulmonary |interstitial |alveolar |perihilar )?edema",
        r"(?:pulmonary )?vascular congestion",
        r"(?:pulmonary |vascular )?congestion",
        r"heart failure",
        r"chf",
        r"fluid overload",
        r"kerley b lines",
    ),
    "Consolidation": (r"consolidations?", r"consolidative (?:opacit(?:y|ies)|process)"),
    "Pneumonia": (
        r"pneumonias?",
        r"infections?",
        r"infectious process",
        r"aspiration",
        r"pneumonitis",
    ),
    "Atelectasis": (r"atelectas[ie]s", r"atelectatic", r"collapse", r"volume loss"),
    "Pneumothora": (r"pneumothora(?:x|ces)", r"pneumothoraxes"),
    "Pleural Effusion": (
        r"(?:pleural )?effusions?",
        r"pleural fluid",
        r"hydropneumothorax",
        r"blunting of the (?:\w+ )?costophrenic angles?",
    ),
    "Pleural Other": (
        r"pleural (?:thickening|scarring|plaques?|calcifications?)",
        r"fibrothorax",
        r"pleural-parenchymal scarring",
    ),
    "Fracture": (r"fractures?", r"fractured"),
    "Support Devices": (
        r"(?:endotracheal|et|nasogastric|ng|orogastric|og|enteric|feeding|chest|"
        r"tracheostomy|dobhoff|dobbhoff) tubes?",
        r"picc(?: lines?)?",
        r"(?:central venous|venous|central|swan-ganz|swan ganz|pulmonary artery) "
        r"(?:catheters?|lines?)",
        r"catheters?",
        r"(?:cardiac )?pacemakers?",
        r"pacers?",
        r"(?:pacing|pacemaker|sternotomy|sternal) (?:wires?|leads?)",
        r"defibrillators?",
        r"aicd",
        r"icd",
        r"(?:port-a-cath|portacath|mediport|port)",
        r"stents?",
        r"(?:surgical )?clips",
        r"(?:support|monitoring) devices?",
        r"(?:orthopedic |surgical )?hardware",
        r"(?:prosthetic|mechanical) (?:mitral |aortic )?valves?",
        r"(?:mitral|aortic) valve (?:replacement|prosthesis)",
        r"drains?",
    ),
}
MENTIONS["Pneumothorax"] = MENTIONS.pop("Pneumothora")

# Site-and-attribute phrases for the heart and mediastinum: (regex, observation, label).
_SIZE_NORMAL = r"(?:normal|within normal limits|unremarkable|not enlarged|stable|unchanged)"
_SIZE_LARGE = r"(?:enlarged|increased|large|prominent|mildly enlarged|moderately enlarged)"
_SIZE_BORDER = r"(?:borderline|top(?:-| )normal|upper limits? of normal|at the upper limit)"
_HEART = r"(?:heart(?: size)?|cardiac (?:size|silhouette)|cardiac contours?)"
_MEDIAST = (
    r"(?:mediastin(?:um|al (?:contours?|silhouette))|cardiomediastinal (?:silhouette|contours?))"
)
ATTRIBUTES: tuple[tuple[str, str, int], ...] = (
    (rf"{_HEART}\s+(?:is|are|appears?|remains?)?\s*{_SIZE_BORDER}", "Cardiomegaly", UNCERTAIN),
    (rf"{_SIZE_BORDER}\s+{_HEART}", "Cardiomegaly", UNCERTAIN),
    (rf"{_HEART}\s+(?:is|are|appears?|remains?)?\s*{_SIZE_LARGE}", "Cardiomegaly", POSITIVE),
    (rf"{_HEART}\s+(?:is|are|appears?|remains?)?\s*{_SIZE_NORMAL}", "Cardiomegaly", NEGATIVE),
    (rf"normal\s+{_HEART}", "Cardiomegaly", NEGATIVE),
    (rf"{_MEDIAST}\s+(?:is|are|appears?|remains?)?\s*(?:widened|{_SIZE_LARGE})",
     "Enlarged Cardiomediastinum", POSITIVE),
    (rf"{_MEDIAST}\s+(?:is|are|appears?|remains?)?\s*{_SIZE_NORMAL}",
     "Enlarged Cardiomediastinum", NEGATIVE),
    (rf"normal\s+{_MEDIAST}", "Enlarged Cardiomediastinum", NEGATIVE),
)  # fmt: skip

# Doubt phrases that contain a negation word: checked before negation.
NEGATED_DOUBT = (
    r"cannot be (?:entirely |completely |definitely )?(?:excluded|ruled out)",
    r"can ?not be (?:entirely |completely )?(?:excluded|ruled out)",
    r"(?:is|are) not (?:entirely |completely )?(?:excluded|ruled out)",
    r"not (?:entirely |completely )?(?:excluded|ruled out)",
    r"cannot (?:exclude|rule out)",
    r"can ?not (?:exclude|rule out)",
    r"could not (?:exclude|rule out)",
    r"not (?:be )?(?:entirely )?exclude",
)
PRE_NEGATION = (
    r"no",
    r"not",
    r"without",
    r"negative for",
    r"free of",
    r"absence of",
    r"absent",
    r"resolution of",
    r"resolved",
    r"clear of",
    r"rather than",
    r"nor",
    r"never",
    r"neither",
    r"no (?:evidence|signs?|findings?) (?:of|to suggest|for)",
    r"interval resolution of",
)
POST_NEGATION = (
    r"(?:is|are|has|have) (?:now |since |completely |nearly )?(?:resolved|cleared|gone)",
    r"(?:has|have) (?:been )?(?:removed|resolved)",
    r"(?:is|are|was|were) (?:not|no longer) (?:seen|present|identified|evident|visualized|"
    r"appreciated|demonstrated|noted|visible|detected)",
    r"(?:is|are) absent",
    r"(?:is|are) (?:excluded|ruled out)",
    r"resolved",
)
PRE_DOUBT = (
    r"may",
    r"might",
    r"could",
    r"possibl[ey]",
    r"probabl[ey]",
    r"likely",
    r"questionable",
    r"question of",
    r"suspected",
    r"suspicious for",
    r"suggestive of",
    r"suggests?",
    r"concerning for",
    r"concern for",
    r"worrisome for",
    r"cannot exclude",
    r"differential (?:diagnosis )?(?:includes|of)",
    r"(?:to )?(?:evaluate|assess|rule out|r/o) for",
    r"rule out",
    r"r/o",
    r"equivocal",
    r"indeterminate",
    r"borderline",
    r"presumed",
    r"versus",
    r"vs\.?",
    r"(?:can|could|may) (?:not )?represent",
    r"potential",
)
POST_DOUBT = (
    r"(?:is|are) (?:possible|suspected|likely|questioned|not excluded|a consideration)",
    # Not "may represent": in "opacities may represent atelectasis" the opacity is certain.
    r"(?:could|may|might) be",
    r"(?:versus|vs\.?)",
    r"\?",
    r"unlikely",
    r"(?:is|are) (?:not )?favou?red",
)
# Words after which a negation or hedge no longer reaches.
CLAUSE_BREAK = re.compile(
    r"\b(?:but|however|although|though|which|whereas|except|aside from|apart from|"
    r"other than|otherwise|while|with the exception of)\b|;"
)
# A "?" stays in its sentence: it is a hedge on the finding before it.
SENTENCE_BREAK = re.compile(r"(?<!\d)\.(?!\d)|\n|!")
# A comma followed by a finding described on its own ends a list under negation.
FRESH_ITEM = re.compile(
    r"^\s*(?:(?:and|with)\s+)?(?:new|small|large|moderate|mild|severe|trace|minimal|"
    r"persistent|stable|increased|decreased|unchanged|improved|worsening|there is|there are|"
    r"left|right|bilateral|\d)"
)


def _alternation(patterns: Sequence[str]) -> re.Pattern[str]:
    ordered = sorted(patterns, key=len, reverse=True)  # longest first: "no evidence of" over "no"
    return re.compile(r"(?<![\w-])(?:" + "|".join(ordered) + r")(?![\w-])")


_MENTION_RES = [(obs, _alternation(MENTIONS[obs])) for obs in OBSERVATIONS if obs in MENTIONS]
_ATTRIBUTE_RES = [(re.compile(r"(?<![\w-])" + p), obs, label) for p, obs, label in ATTRIBUTES]
_NEGATED_DOUBT = _alternation(NEGATED_DOUBT)
_PRE_NEG = _alternation(PRE_NEGATION)
# A cue after a mention reaches back over at most a few words ("effusion on the left has resolved").
_POST_NEG = re.compile(r"^\W*(?:[\w/-]+\W+){0,4}?(?:" + "|".join(POST_NEGATION) + r")(?![\w-])")
_PRE_DOUBT = _alternation(PRE_DOUBT)
_POST_DOUBT = re.compile(r"^\W*(?:[\w/-]+\W+){0,2}?(?:" + "|".join(POST_DOUBT) + r")")
_OR = re.compile(r"\bor\b")


def _reaches_forward(clause: str, cue_end: int, mention_start: int) -> bool:
    """A cue before a mention reaches it unless a comma between them opens a new finding."""
    between = clause[cue_end:mention_start]
    return not any(FRESH_ITEM.match(part) for part in between.split(",")[1:])


def _mention_label(clause: str, start: int, end: int, mention_spans: list[tuple[int, int]]) -> int:
    before, after = clause[:start], clause[end:]
    if _NEGATED_DOUBT.search(clause):
        return UNCERTAIN
    for cue in _PRE_NEG.finditer(before):
        if _reaches_forward(clause, cue.end(), start):
            return NEGATIVE
    if _POST_NEG.match(after):
        return NEGATIVE
    for cue in _PRE_DOUBT.finditer(before):
        if _reaches_forward(clause, cue.end(), start):
            return UNCERTAIN
    if _POST_DOUBT.match(after):
        return UNCERTAIN
    # "atelectasis or pneumonia": an unnegated choice between two findings is a doubt about both.
    for other_start, other_end in mention_spans:
        if (other_start, other_end) == (start, end):
            continue
        gap = clause[end:other_start] if other_start >= end else clause[other_end:start]
        if _OR.search(gap) and len(gap.split()) <= 3:
            return UNCERTAIN
    return POSITIVE


def _clauses(report: str) -> list[str]:
    text = report.lower()
    clauses: list[str] = []
    for sentence in SENTENCE_BREAK.split(text):
        clauses.extend(part for part in CLAUSE_BREAK.split(sentence) if part.strip())
    return clauses


@lru_cache(maxsize=1 << 16)
def _clause_mentions(clause: str) -> tuple[tuple[tuple[str, int], ...], bool]:
    """The (observation, label) of every mention in one clause, and whether it names heart
    failure. A pure function of the clause's text, memoised: reports repeat their sentences
    ("No pleural effusion or pneumothorax."), so most clauses are labelled once."""
    found: list[tuple[str, int]] = []
    heart_failure = False
    taken: list[tuple[int, int]] = []
    for pattern, obs, label in _ATTRIBUTE_RES:
        for match in pattern.finditer(clause):
            if any(s < match.end() and match.start() < e for s, e in taken):
                continue
            taken.append(match.span())
            if label == POSITIVE and _PRE_NEG.search(clause[: match.start()]):
                label = NEGATIVE
            found.append((obs, label))
    spans: list[tuple[str, int, int]] = []
    for obs, pattern in _MENTION_RES:
        for match in pattern.finditer(clause):
            s, e = match.span()
            if any(ts < e and s < te for ts, te in taken):
                continue  # part of a longer mention already claimed ("pleural thickening")
            taken.append((s, e))
            spans.append((obs, s, e))
    positions = [(s, e) for _, s, e in spans]
    for obs, s, e in spans:
        label = _mention_label(clause, s, e, positions)
        found.append((obs, label))
        if obs == "Edema" and label != NEGATIVE and clause[s:e] in ("heart failure", "chf"):
            heart_failure = True
    return tuple(found), heart_failure


def label_report(report: str) -> dict[str, Label]:
    """The 14 CheXpert labels of one report: 1 positive, 0 negative, -1 uncertain, None blank."""
    found: dict[str, list[int]] = {obs: [] for obs in OBSERVATIONS}
    heart_failure = False
    for clause in _clauses(report):
        mentions, names_heart_failure = _clause_mentions(clause)
        for obs, label in mentions:
            found[obs].append(label)
        heart_failure = heart_failure or names_heart_failure
    labels: dict[str, Label] = {}
    for obs in OBSERVATIONS:
        given = found[obs]
        labels[obs] = (
            POSITIVE if POSITIVE in given
            else UNCERTAIN if UNCERTAIN in given
            else NEGATIVE if NEGATIVE in given
            else None
        )  # fmt: skip
    if heart_failure and labels["Cardiomegaly"] is None:
        labels["Cardiomegaly"] = UNCERTAIN
    has_finding = any(
        labels[obs] in (POSITIVE, UNCERTAIN)
        for obs in OBSERVATIONS
        if obs not in ("No Finding", "Support Devices")
    )
    labels["No Finding"] = None if has_finding else POSITIVE
    return labels


def _binarise(labels: Sequence[dict[str, Label]], *, with_uncertain: bool) -> np.ndarray:
    accepted = (POSITIVE, UNCERTAIN) if with_uncertain else (POSITIVE,)
    return np.array([[row[obs] in accepted for obs in OBSERVATIONS] for row in labels], dtype=bool)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), np.nan)


def _pair_f1(cand: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Micro and macro F1 per pair (rows); 1 where neither report has any positive."""
    tp, fp, fn = cand & ref, cand & ~ref, ~cand & ref
    micro = _f1(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))
    per_obs = _f1(tp.astype(int), fp.astype(int), fn.astype(int))
    present = ~np.isnan(per_obs)
    with np.errstate(invalid="ignore"):
        macro = np.where(
            present.any(axis=1),
            np.nansum(per_obs, axis=1) / np.maximum(present.sum(axis=1), 1),
            np.nan,
        )
    return np.nan_to_num(micro, nan=1.0), np.nan_to_num(macro, nan=1.0)


def corpus_f1(
    candidates: Sequence[dict[str, Label]], references: Sequence[dict[str, Label]]
) -> dict[str, float | None]:
    """Micro and macro label F1 over a corpus, both binarisations."""
    out: dict[str, float | None] = {}
    for suffix, with_uncertain in (("pos", False), ("pos_unc", True)):
        cand = _binarise(candidates, with_uncertain=with_uncertain)
        ref = _binarise(references, with_uncertain=with_uncertain)
        tp = (cand & ref).sum(axis=0)
        fp = (cand & ~ref).sum(axis=0)
        fn = (~cand & ref).sum(axis=0)
        micro = _f1(np.array(tp.sum()), np.array(fp.sum()), np.array(fn.sum()))
        per_obs = _f1(tp, fp, fn)
        out[f"chexpert_micro_f1_{suffix}"] = None if np.isnan(micro) else float(micro)
        out[f"chexpert_macro_f1_{suffix}"] = (
            None if np.all(np.isnan(per_obs)) else float(np.nanmean(per_obs))
        )
    return out


@register
class ChexpertLabelF1(Metric):
    name = "chexpert_f1"
    version = "1"
    tier = "weight-free"
    value_names = (
        "chexpert_micro_f1_pos",
        "chexpert_macro_f1_pos",
        "chexpert_micro_f1_pos_unc",
        "chexpert_macro_f1_pos_unc",
    )
    headline = "chexpert_micro_f1_pos"

    def __init__(self) -> None:
        super().__init__(labeler="rule-based", observations=len(OBSERVATIONS))

    def _score_valid(
        self, candidates: list[str], references: list[str]
    ) -> list[tuple[dict[str, float], dict[str, Any]]]:
        cand_labels = [label_report(text) for text in candidates]
        ref_labels = [label_report(text) for text in references]
        columns: dict[str, np.ndarray] = {}
        for suffix, with_uncertain in (("pos", False), ("pos_unc", True)):
            micro, macro = _pair_f1(
                _binarise(cand_labels, with_uncertain=with_uncertain),
                _binarise(ref_labels, with_uncertain=with_uncertain),
            )
            columns[f"chexpert_micro_f1_{suffix}"] = micro
            columns[f"chexpert_macro_f1_{suffix}"] = macro
        out = []
        for i in range(len(candidates)):
            values = {name: float(columns[name][i]) for name in self.value_names}
            detail = {"candidate_labels": cand_labels[i], "reference_labels": ref_labels[i]}
            out.append((values, detail))
        return out

    def summarise(self, results: Sequence[Result]) -> dict[str, float | None]:
        """Micro and macro F1 over all scored pairs (not the mean of the per-pair F1s)."""
        scored = [r["detail"] for r in results if r["status"] == SCORED]
        if not scored:
            return dict.fromkeys(self.value_names)
        return corpus_f1(
            [d["candidate_labels"] for d in scored], [d["reference_labels"] for d in scored]
        )
