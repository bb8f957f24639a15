"""BERTScore from a local model directory (the model-based tier).

As in Zhang et al. (2020) and the bert-score package: token embeddings of candidate and
reference from one layer of a BERT-class encoder, cosine similarity of every candidate token
with every reference token, precision = mean over candidate tokens of the best match,
recall = mean over reference tokens of the best match, F1 their harmonic mean. Special tokens
([CLS], [SEP], padding) are left out; no IDF weighting and no baseline rescaling by default
(both need corpus statistics or files the model directory does not carry). The model comes from
a local directory only (``local_files_only``): nothing is downloaded at run time, and a
directory that does not load says which file is missing. torch and transformers are imported
when the model loads, never at import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inference.metrics.base import Metric, MetricError, register
from inference.metrics.local_model import require_transformers_directory


@register
class BertScore(Metric):
    name = "bertscore"
    version = "1"
    tier = "model"
    value_names = ("bertscore_f1", "bertscore_precision", "bertscore_recall")
    headline = "bertscore_f1"

    def __init__(
        self,
        *,
        model_dir: str,
        layer: int | None = None,
        batch_size: int = 32,
        max_length: int = 512,
        device: str = "cpu",
    ) -> None:
        super().__init__(model_dir=str(model_dir), layer=layer, max_length=max_length, idf=False)
        self.path = Path(model_dir)
        self.layer = layer
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        require_transformers_directory(self.path)
        from transformers import AutoModel, AutoTokenizer

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            model = AutoModel.from_pretrained(self.path, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise MetricError(
                f"The model at {self.path} could not be loaded: {exc}", code="metric_model_load"
            ) from exc
        model.to(self.device)
        model.eval()
        self._model = model
        # Weights and layer pin the values; a stored result must say which were used.
        self.params["model_type"] = model.config.model_type
        self.params["layer"] = (
            self.layer if self.layer is not None else model.config.num_hidden_layers
        )

    def _embed(self, texts: list[str]) -> tuple[Any, Any]:
        """Unit-length token embeddings (batch, tokens, dim) and a mask of the real tokens."""
        import torch

        encoded = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            return_special_tokens_mask=True,
        )
        special = encoded.pop("special_tokens_mask").bool()
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        with torch.inference_mode():
            output = self._model(**encoded, output_hidden_states=True)
        layer = self.layer if self.layer is not None else -1
        hidden = output.hidden_states[layer]
        mask = encoded["attention_mask"].bool() & ~special.to(self.device)
        return torch.nn.functional.normalize(hidden, dim=-1), mask

    def _score_valid(
        self, candidates: list[str], references: list[str]
    ) -> list[tuple[dict[str, float], dict[str, Any]]]:
        import torch

        self._load()
        out: list[tuple[dict[str, float], dict[str, Any]]] = []
        for start in range(0, len(candidates), self.batch_size):
            cand, cand_mask = self._embed(candidates[start : start + self.batch_size])
            ref, ref_mask = self._embed(references[start : start + self.batch_size])
            sim = torch.bmm(cand, ref.transpose(1, 2))  # (batch, cand tokens, ref tokens)
            sim = sim.masked_fill(~ref_mask[:, None, :], -2.0).masked_fill(
                ~cand_mask[:, :, None], -2.0
            )
            best_for_cand = sim.max(dim=2).values  # each candidate token's best reference match
            best_for_ref = sim.max(dim=1).values
            n_cand = cand_mask.sum(dim=1).clamp(min=1)
            n_ref = ref_mask.sum(dim=1).clamp(min=1)
            precision = (best_for_cand * cand_mask).sum(dim=1) / n_cand
            recall = (best_for_ref * ref_mask).sum(dim=1) / n_ref
            # A blank candidate has no tokens: nothing of the reference is recalled.
            precision = torch.where(cand_mask.any(dim=1), precision, torch.zeros_like(precision))
            recall = torch.where(cand_mask.any(dim=1), recall, torch.zeros_like(recall))
            f1 = torch.where(
                precision + recall > 0,
                2 * precision * recall / (precision + recall),
                torch.zeros_like(precision),
            )
            for p, r, f in zip(precision.tolist(), recall.tolist(), f1.tolist(), strict=True):
                out.append(
                    (
                        {"bertscore_f1": f, "bertscore_precision": p, "bertscore_recall": r},
                        {},
                    )
                )
        return out
