"""RadGraph F1: overlap of the clinical entities (and relations) of a candidate and its reference.

Decision record. RadGraph (Jain et al. 2021) annotates a report as entities (a span of words
with a label: anatomy, or an observation definitely present, uncertain or definitely absent)
and relations between them (``modify``, ``located_at``, ``suggestive_of``). The rewards are the
RadGraph F1 of Delbrouck et al. (2022), as the radgraph package computes them, each an F1 between
two *sets* built from the candidate's and the reference's annotations:

- **simple** (entity match): ``(tokens, label)`` of every entity;
- **partial**: ``(tokens, label)`` of an entity without relations, ``(tokens, label, True)`` of
  one with at least one: an entity counts only if both reports agree on whether it relates to
  anything;
- **complete** (exact): ``(tokens, label)`` of an entity without relations, and for each
  relation ``(tokens, label, relation, target tokens)`` (tokens lower-cased): entity and
  every relation must match.

Precision = matched / candidate set, recall = matched / reference set, F1 their harmonic mean
(0 when both are 0). A pair where either report has no entity scores 0 on all three, as in the
package. Over a corpus: the mean of the per-report F1 (the package's ``mean_reward``).

What differs from the published metric, precisely: the published annotations come from
RadGraph's DyGIE++ model (an allennlp span-and-relation model), which we do not bundle. The
rewards here take annotations from any *extractor* in RadGraph's annotation shape
(``{"entities": {id: {"tokens", "label", "start_ix", "end_ix", "relations": [[type, id]]}}}``).
The one shipped is a local ``transformers`` token-classification model (``id2label`` in BIO
form: ``B-OBS-DP``, ``I-ANAT-DP``, ``O``...), over RadGraph's word split (punctuation as words);
an entity is a B tag and the I tags of the same label after it, labelled from each word's first
sub-token. It finds entities only, no relations: with it, *partial* and *complete* equal
*simple*, and the stored parameters say ``relations: none``. An extractor that yields
relations (e.g. the RadGraph model's own output) makes the three differ as published.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from inference.metrics.base import Metric, MetricError, register
from inference.metrics.local_model import device_resolve, require_transformers_directory

Annotation = dict[str, Any]
REWARD_LEVELS = ("simple", "partial", "complete")
# RadGraph's word split: these marks become words of their own (not the hyphen: the
# package's character class names it only as the bounds of a one-character range).
_MARKS = re.compile(r"([/,:.!?()])")


def radgraph_words(text: str) -> list[str]:
    """A report split into words the way RadGraph's preprocessing does (marks apart)."""
    return _MARKS.sub(r" \1 ", text).split()


def _reward_set(annotation: Annotation, level: str) -> set[tuple[Any, ...]]:
    entities = annotation.get("entities", {})
    items: set[tuple[Any, ...]] = set()
    for entity in entities.values():
        tokens, label, relations = entity["tokens"], entity["label"], entity.get("relations", [])
        if not relations or level == "simple":
            items.add((tokens, label))
        elif level == "partial":
            items.add((tokens, label, True))
        else:
            for relation, target in relations:
                items.add(
                    (tokens.lower(), label, relation, entities[str(target)]["tokens"].lower())
                )
    return items


def reward(hypothesis: Annotation, reference: Annotation, level: str) -> tuple[float, float, float]:
    """(F1, precision, recall) of one reward level between two annotations."""
    if level not in REWARD_LEVELS:
        raise MetricError(f"Unknown RadGraph reward level {level!r}.", code="metric_bad_params")
    if not hypothesis.get("entities") or not reference.get("entities"):
        return 0.0, 0.0, 0.0
    hyp, ref = _reward_set(hypothesis, level), _reward_set(reference, level)
    matched = len(hyp & ref)
    precision = matched / len(hyp) if hyp else 0.0
    recall = matched / len(ref) if ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return f1, precision, recall


class Extractor(Protocol):
    """Anything that annotates reports in RadGraph's shape."""

    def describe(self) -> dict[str, Any]:
        """Flat parameters that pin the annotations (model, its weights, relations or not)."""
        ...

    def annotate(self, texts: Sequence[str]) -> list[Annotation]:
        """One annotation per text, in order."""
        ...


def entities_from_bio(words: Sequence[str], tags: Sequence[str]) -> Annotation:
    """Entities from one BIO tag per word (an I tag that continues no entity of its label
    starts one, as conlleval reads it); no relations."""
    entities: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for index, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        if prefix == "I" and current is not None and current["label"] == label:
            current["end_ix"] = index
            continue
        current = None
        if prefix in ("B", "I") and label:
            current = {"label": label, "start_ix": index, "end_ix": index, "relations": []}
            entities[str(len(entities) + 1)] = current
    for entity in entities.values():
        entity["tokens"] = " ".join(words[entity["start_ix"] : entity["end_ix"] + 1])
    return {"entities": entities}


class TokenClassificationExtractor:
    """Entities from a local transformers token-classification model with BIO labels."""

    def __init__(self, model_dir: str, *, batch_size: int = 16, device: str = "cpu") -> None:
        self.path = Path(model_dir)
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None
        self._labels: dict[int, str] = {}
        self._weights = ""

    def _load(self) -> None:
        if self._model is not None:
            return
        require_transformers_directory(self.path)
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            model = AutoModelForTokenClassification.from_pretrained(
                self.path, local_files_only=True
            )
        except (OSError, ValueError, KeyError) as exc:
            raise MetricError(
                f"The model at {self.path} could not be loaded: {exc}", code="metric_model_load"
            ) from exc
        if not tokenizer.is_fast:
            raise MetricError(
                f"The tokenizer in {self.path} must be a fast tokenizer (tokenizer.json): "
                "words are mapped to their first sub-token.",
                code="metric_model_load",
            )
        self.device = device_resolve(self.device)
        labels = {int(k): str(v) for k, v in model.config.id2label.items()}
        bad = [v for v in labels.values() if v != "O" and not re.match(r"^[BI]-.+", v)]
        if bad:
            raise MetricError(
                f"The model at {self.path} does not tag entities in BIO form "
                f"(labels like B-OBS-DP, I-ANAT-DP, O); it has {', '.join(bad[:3])}.",
                code="metric_model_load",
            )
        model.to(self.device)
        model.eval()
        self._model, self._tokenizer, self._labels = model, tokenizer, labels
        from inference.environment import weight_hashes

        hashes = weight_hashes(self.path)
        self._weights = ";".join(f"{name}:{digest}" for name, digest in sorted(hashes.items()))

    def describe(self) -> dict[str, Any]:
        self._load()
        return {
            "extractor": "token-classification",
            "relations": "none",
            "model_type": self._model.config.model_type,
            "weights_sha256": self._weights[:500],
        }

    def annotate(self, texts: Sequence[str]) -> list[Annotation]:
        import torch

        self._load()
        out: list[Annotation] = []
        for start in range(0, len(texts), self.batch_size):
            words = [radgraph_words(t) for t in texts[start : start + self.batch_size]]
            # A text with no words still needs a row: one blank word gives it none.
            encoded = self._tokenizer(
                [w or [""] for w in words],
                is_split_into_words=True,
                truncation=True,
                max_length=512,
                padding=True,
                return_tensors="pt",
            )
            with torch.inference_mode():
                logits = self._model(**{k: v.to(self.device) for k, v in encoded.items()}).logits
            predicted = logits.argmax(dim=-1).tolist()
            for row, row_words in enumerate(words):
                tags = ["O"] * len(row_words)
                seen: set[int] = set()
                for position, word in enumerate(encoded.word_ids(batch_index=row)):
                    if word is None or word in seen or word >= len(row_words):
                        continue
                    seen.add(word)
                    tags[word] = self._labels.get(predicted[row][position], "O")
                out.append(entities_from_bio(row_words, tags))
        return out


@register
class RadGraphF1(Metric):
    name = "radgraph_f1"
    version = "1"
    tier = "model"
    value_names = ("radgraph_simple", "radgraph_partial", "radgraph_complete")
    headline = "radgraph_partial"
    batch_pairs = 64  # two encoder passes per pair

    def __init__(
        self,
        *,
        model_dir: str = "",
        extractor: Extractor | None = None,
        batch_size: int = 16,
        device: str = "cpu",
    ) -> None:
        if extractor is None:
            if not model_dir:
                raise MetricError(
                    "RadGraph F1 needs a model directory or an extractor.", code="metric_bad_params"
                )
            extractor = TokenClassificationExtractor(
                model_dir, batch_size=batch_size, device=device
            )
        super().__init__(model_dir=str(model_dir))
        self.extractor = extractor

    def _score_valid(
        self, candidates: list[str], references: list[str]
    ) -> list[tuple[dict[str, float], dict[str, Any]]]:
        annotations = self.extractor.annotate([*candidates, *references])
        self.params.update(self.extractor.describe())
        hyps, refs = annotations[: len(candidates)], annotations[len(candidates) :]
        out: list[tuple[dict[str, float], dict[str, Any]]] = []
        for hyp, ref in zip(hyps, refs, strict=True):
            values = {f"radgraph_{level}": reward(hyp, ref, level)[0] for level in REWARD_LEVELS}
            out.append((values, {}))
        return out
