"""Weight-free lexical metrics: BLEU-1...4 (sacrebleu) and ROUGE-L (rouge-score).

Decision record. The values follow RadEval, the toolkit the report-generation papers use, so a
study's figures can sit beside published ones:

- BLEU: text split on whitespace only, case kept, punctuation stuck to its word (sacrebleu's
  ``tokenize="none"``); one reference per candidate; corpus BLEU-n from the n-gram counts summed
  over the pairs, with the brevity penalty on the summed lengths and no smoothing (the
  pycocoevalcap scorer RadEval wraps adds 1e-15/1e-9 guards that move nothing at four decimals
  unless an order has no match at all, where both are 0 to four decimals). The per-pair value is
  the same formula on one pair, computed for the whole batch at once in numpy from sacrebleu's
  n-gram statistics; it is 0 when any order up to n has no match. sacrebleu's own default
  (13a tokenisation, exp smoothing) was rejected: it splits "effusion." into two tokens and
  would not match the published figures.
- ROUGE-L: rouge-score's F-measure of the longest common subsequence, Porter stemmer on, its own
  tokeniser (lower case, letters and digits); the corpus value is the mean over pairs. The
  tokeniser is rouge-score's own function, given the same NLTK Porter stemmer with its results
  memoised: stemming is a pure function of the word and was most of ROUGE-L's time, and a
  report corpus repeats a few thousand words. The LCS length is computed bit-parallel
  (Allison and Dix 1986; Hyyrö 2004: one big-integer add per candidate token) instead of
  rouge-score's dynamic-programming table in Python; precision, recall and F are then
  rouge-score's own formulas, so the values are equal (a test compares them).
  bench/RESULTS.md has the figures.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from inference.metrics.base import SCORED, Metric, MetricError, Result, register

MAX_ORDER = 4


def _bleu_from_counts(
    correct: np.ndarray, total: np.ndarray, sys_len: np.ndarray, ref_len: np.ndarray, order: int
) -> np.ndarray:
    """Unsmoothed BLEU-``order`` for each row of n-gram counts (rows are pairs or a corpus)."""
    c = correct[:, :order].astype(float)
    t = total[:, :order].astype(float)
    has_all = np.all(c > 0, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.where(c > 0, np.log(np.where(c > 0, c, 1.0) / np.where(t > 0, t, 1.0)), 0.0)
        geo = np.exp(log_p.mean(axis=1))
        bp = np.where(
            sys_len >= ref_len, 1.0, np.exp(1.0 - ref_len / np.where(sys_len > 0, sys_len, 1.0))
        )
    bp = np.where(sys_len > 0, bp, 0.0)
    return np.where(has_all, geo * bp, 0.0)


@register
class Bleu(Metric):
    name = "bleu"
    version = "1"
    tier = "weight-free"
    value_names = ("bleu_1", "bleu_2", "bleu_3", "bleu_4")
    headline = "bleu_4"

    def __init__(self, **params: Any) -> None:
        if params:
            raise MetricError(
                f"BLEU takes no parameters (got {sorted(params)}).", code="metric_bad_params"
            )
        super().__init__(tokenize="none", lowercase=False, smooth="none", max_order=MAX_ORDER)
        from sacrebleu.metrics.bleu import BLEU

        self._sacrebleu = BLEU(tokenize="none", max_ngram_order=MAX_ORDER, force=True)

    def _score_valid(
        self, candidates: list[str], references: list[str]
    ) -> list[tuple[dict[str, float], dict[str, Any]]]:
        # One pass of sacrebleu's n-gram counting for all pairs; the formula is then vectorised.
        stats = np.asarray(
            self._sacrebleu._extract_corpus_statistics(candidates, [references]), dtype=np.int64
        ).reshape(len(candidates), 2 + 2 * MAX_ORDER)
        sys_len, ref_len = stats[:, 0], stats[:, 1]
        correct, total = stats[:, 2 : 2 + MAX_ORDER], stats[:, 2 + MAX_ORDER :]
        per_order = [
            _bleu_from_counts(correct, total, sys_len, ref_len, n) for n in range(1, MAX_ORDER + 1)
        ]
        out = []
        for i, row in enumerate(stats.tolist()):
            values = {f"bleu_{n}": float(per_order[n - 1][i]) for n in range(1, MAX_ORDER + 1)}
            detail = {"counts": row}  # sys_len, ref_len, matches 1..4, candidate n-grams 1..4
            out.append((values, detail))
        return out

    def summarise(self, results: list[Result]) -> dict[str, float | None]:  # type: ignore[override]
        """Corpus BLEU: n-gram counts summed over the scored pairs (not the mean of pair BLEUs)."""
        from sacrebleu.metrics.bleu import BLEU

        rows = [r["detail"]["counts"] for r in results if r["status"] == SCORED]
        if not rows:
            return dict.fromkeys(self.value_names)
        summed = np.asarray(rows, dtype=np.int64).sum(axis=0).tolist()
        sys_len, ref_len = summed[0], summed[1]
        correct, total = summed[2 : 2 + MAX_ORDER], summed[2 + MAX_ORDER :]
        out: dict[str, float | None] = {}
        for n in range(1, MAX_ORDER + 1):
            score = BLEU.compute_bleu(
                correct=list(correct), total=list(total), sys_len=sys_len, ref_len=ref_len,
                smooth_method="none", max_ngram_order=n,
            )  # fmt: skip
            out[f"bleu_{n}"] = score.score / 100.0
        return out


class _MemoStemmer:
    """rouge-score's stemmer (NLTK's Porter stemmer, its default mode), each word stemmed once."""

    def __init__(self) -> None:
        from nltk.stem import porter

        self.stem = lru_cache(maxsize=1 << 16)(porter.PorterStemmer().stem)


def _rouge_tokenizer(use_stemmer: bool) -> Any:
    from rouge_score import tokenize, tokenizers

    class Tokenizer(tokenizers.Tokenizer):
        """rouge-score's DefaultTokenizer with the memoised stemmer."""

        def __init__(self) -> None:
            self._stemmer = _MemoStemmer() if use_stemmer else None

        def tokenize(self, text: str) -> list[str]:
            return list(tokenize.tokenize(text, self._stemmer))

    return Tokenizer()


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two token lists, bit-parallel: the zero
    bits of ``row`` count the matches so far; each token of b updates every bit at once."""
    if not a or not b:
        return 0
    positions: dict[str, int] = {}
    for i, token in enumerate(a):
        positions[token] = positions.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        matches = row & positions.get(token, 0)
        row = ((row + matches) | (row - matches)) & full
    return len(a) - row.bit_count()


@register
class RougeL(Metric):
    name = "rouge_l"
    version = "1"
    tier = "weight-free"
    value_names = ("rouge_l", "rouge_l_precision", "rouge_l_recall")
    headline = "rouge_l"

    def __init__(self, *, use_stemmer: bool = True) -> None:
        super().__init__(use_stemmer=use_stemmer)
        self._tokenizer = _rouge_tokenizer(use_stemmer)

    def _score_valid(
        self, candidates: list[str], references: list[str]
    ) -> list[tuple[dict[str, float], dict[str, Any]]]:
        out: list[tuple[dict[str, float], dict[str, Any]]] = []
        from rouge_score.scoring import fmeasure

        tokens: dict[str, list[str]] = {}

        def tokenised(text: str) -> list[str]:
            # A reference scored against several candidates is tokenised once.
            if text not in tokens:
                tokens[text] = self._tokenizer.tokenize(text)
            return tokens[text]

        for candidate, reference in zip(candidates, references, strict=True):
            target, prediction = tokenised(reference), tokenised(candidate)
            if not target or not prediction:
                precision = recall = f1 = 0.0
            else:
                common = lcs_length(target, prediction)
                precision, recall = common / len(prediction), common / len(target)
                f1 = fmeasure(precision, recall)
            values = {
                "rouge_l": float(f1),
                "rouge_l_precision": float(precision),
                "rouge_l_recall": float(recall),
            }
            out.append((values, {}))
        return out
