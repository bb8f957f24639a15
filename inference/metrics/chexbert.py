"""F1CheXbert: label F1 between a candidate and its reference, both labelled by CheXbert.

Decision record. CheXbert (Smit et al. 2020) is a BERT encoder whose [CLS] state feeds 14
linear heads: 13 observations with 4 classes (0 blank, 1 positive, 2 negative, 3 uncertain)
and "No Finding" with 2 (0 blank, 1 positive). The metric as papers report it (Miura et al.
2021, the f1chexbert package, RadEval) labels candidate and reference, counts an observation
present when it is positive *or uncertain* (the package's "rrg" mode; ``uncertain_as_positive``
turns that off), and reports scikit-learn's micro and macro F1 over the 14 observations and over
five of them (Cardiomegaly, Edema, Consolidation, Atelectasis, Pleural Effusion). Over a corpus
we compute the same: an observation present in no candidate and no reference has F1 0 in the
macro average (scikit-learn's ``zero_division=0``, what the published numbers used), so our
corpus figures compare with the papers'. Per report (what the agreement table correlates with
the experts) micro and macro F1 are over the observations present in either report, and a pair
where neither report has any is in full agreement (1), as the rule-based labeler's F1.

The model is rebuilt here (no package, nothing downloaded): the architecture above around a
``transformers`` ``BertModel`` built from the directory's ``config.json``, and the published
checkpoint's state dict. The directory::

    config.json        the encoder's BERT config (bert-base-uncased's for the published model)
    vocab.txt          its tokenizer (or tokenizer.json), lower-casing as bert-base-uncased
    chexbert.pth       the published checkpoint: a dict whose "model_state_dict" holds
                       module.bert.* and module.linear_heads.{0..13}.{weight,bias}
                       (a bare state dict, or keys without "module.", are accepted too)
      or model.safetensors  the same state dict as safetensors

Text is whitespace-collapsed, tokenised with truncation to 512 tokens (as CheXbert's own
labelling script), and the labeler runs without dropout. torch is imported when the model loads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.metrics.base import SCORED, Metric, MetricError, Result, register
from inference.metrics.local_model import (
    TOKENIZER_FILES,
    device_resolve,
    require_directory,
    require_file,
)

# CheXbert's head order (not the CheXpert labeler's column order).
CONDITIONS = (
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
    "No Finding",
)
FIVE = ("Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Pleural Effusion")
CHECKPOINT_FILES = ("chexbert.pth", "model.safetensors")
# Head output class -> label: 1 positive, 0 negative, -1 uncertain, None blank.
CLASS_LABELS: tuple[int | None, ...] = (None, 1, 0, -1)
Label = int | None


def present(labels: dict[str, Label], *, uncertain_as_positive: bool = True) -> np.ndarray:
    """One report's 14 labels as presence (CONDITIONS order)."""
    accepted = (1, -1) if uncertain_as_positive else (1,)
    return np.array([labels.get(c) in accepted for c in CONDITIONS], dtype=bool)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, *, empty: float) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), empty)


def pair_f1(cand: np.ndarray, ref: np.ndarray, columns: Sequence[int]) -> tuple[float, float]:
    """Micro and macro F1 of one pair over the given observation columns; observations absent
    from both reports are left out, and a pair with none present scores 1 (full agreement)."""
    c, r = cand[list(columns)], ref[list(columns)]
    tp, fp, fn = c & r, c & ~r, ~c & r
    if not (c | r).any():
        return 1.0, 1.0
    micro = float(_f1(np.array(tp.sum()), np.array(fp.sum()), np.array(fn.sum()), empty=1.0))
    per = _f1(tp.astype(int), fp.astype(int), fn.astype(int), empty=np.nan)
    return micro, float(np.nanmean(per))


def corpus_f1(cand: np.ndarray, ref: np.ndarray, columns: Sequence[int]) -> tuple[float, float]:
    """Micro and macro F1 over a corpus (rows are pairs), as scikit-learn's classification
    report with ``zero_division=0``: an observation present nowhere has F1 0 in the macro."""
    c, r = cand[:, list(columns)], ref[:, list(columns)]
    tp, fp, fn = (c & r).sum(axis=0), (c & ~r).sum(axis=0), (~c & r).sum(axis=0)
    micro = float(_f1(np.array(tp.sum()), np.array(fp.sum()), np.array(fn.sum()), empty=0.0))
    macro = float(_f1(tp, fp, fn, empty=0.0).mean())
    return micro, macro


ALL_COLUMNS = tuple(range(len(CONDITIONS)))
FIVE_COLUMNS = tuple(CONDITIONS.index(name) for name in FIVE)


def _checkpoint_state(path: Path) -> dict[str, Any]:
    """The checkpoint's state dict with the DataParallel ``module.`` prefix removed."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which, not a traceback
        raise MetricError(
            f"The CheXbert checkpoint {path} could not be read: {type(exc).__name__}.",
            code="metric_model_load",
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("model_state_dict"), dict):
        state = state["model_state_dict"]
    if not isinstance(state, dict):
        raise MetricError(
            f"The CheXbert checkpoint {path} holds no state dict.", code="metric_model_load"
        )
    return {k.removeprefix("module."): v for k, v in state.items()}


def _build_labeler(directory: Path, checkpoint: Path) -> Any:
    import torch
    from transformers import BertConfig, BertModel

    class CheXbertLabeler(torch.nn.Module):
        def __init__(self, config: Any) -> None:
            super().__init__()
            self.bert = BertModel(config)
            size = config.hidden_size
            heads = [torch.nn.Linear(size, 4) for _ in range(13)]
            self.linear_heads = torch.nn.ModuleList([*heads, torch.nn.Linear(size, 2)])

        def forward(self, input_ids: Any, attention_mask: Any) -> list[Any]:
            cls = self.bert(input_ids, attention_mask=attention_mask)[0][:, 0, :]
            return [head(cls) for head in self.linear_heads]

    try:
        config = BertConfig.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise MetricError(
            f"The BERT config in {directory} could not be read: {exc}", code="metric_model_load"
        ) from exc
    model = CheXbertLabeler(config)
    state = _checkpoint_state(checkpoint)
    # Newer transformers keep position_ids out of the state dict; old checkpoints carry it.
    state = {k: v for k, v in state.items() if not k.endswith("embeddings.position_ids")}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that do not match the config
        raise MetricError(
            f"The CheXbert checkpoint {checkpoint} does not fit the config in {directory}: "
            f"{str(exc).splitlines()[0]}",
            code="metric_model_load",
        ) from exc
    missing = [k for k in missing if not k.endswith("embeddings.position_ids")]
    if missing or unexpected:
        shown = ", ".join([*missing[:3], *unexpected[:3]])
        raise MetricError(
            f"The CheXbert checkpoint {checkpoint} does not match the CheXbert architecture "
            f"({len(missing)} weights missing, {len(unexpected)} unexpected: {shown}).",
            code="metric_model_load",
        )
    model.eval()
    return model


@register
class F1CheXbert(Metric):
    name = "f1chexbert"
    version = "1"
    tier = "model"
    value_names = (
        "chexbert_micro_f1_14",
        "chexbert_macro_f1_14",
        "chexbert_micro_f1_5",
        "chexbert_macro_f1_5",
    )
    headline = "chexbert_micro_f1_5"
    batch_pairs = 64  # two BERT passes per pair

    def __init__(
        self,
        *,
        model_dir: str,
        uncertain_as_positive: bool = True,
        batch_size: int = 32,
        device: str = "cpu",
    ) -> None:
        super().__init__(
            model_dir=str(model_dir), uncertain_as_positive=uncertain_as_positive, max_length=512
        )
        self.path = Path(model_dir)
        self.uncertain_as_positive = uncertain_as_positive
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        require_directory(self.path)
        require_file(self.path, ("config.json",), what="config")
        require_file(self.path, TOKENIZER_FILES, what="tokenizer")
        checkpoint = require_file(self.path, CHECKPOINT_FILES, what="CheXbert checkpoint")
        from transformers import AutoTokenizer

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise MetricError(
                f"The tokenizer in {self.path} could not be loaded: {exc}",
                code="metric_model_load",
            ) from exc
        model = _build_labeler(self.path, checkpoint)
        self.device = device_resolve(self.device)
        model.to(self.device)
        self._model = model
        from inference.environment import weight_hashes

        # The checkpoint pins the labels: a stored result says which one made them.
        self.params["checkpoint_sha256"] = weight_hashes(self.path).get(checkpoint.name, "")

    def label(self, texts: Sequence[str]) -> list[dict[str, Label]]:
        """CheXbert's 14 labels of each text: 1 positive, 0 negative, -1 uncertain, None blank."""
        import torch

        self._load()
        out: list[dict[str, Label]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = [re.sub(r"\s+", " ", t).strip() for t in texts[start : start + self.batch_size]]
            encoded = self._tokenizer(
                batch, padding=True, truncation=True, max_length=512, return_tensors="pt"
            )
            with torch.inference_mode():
                heads = self._model(
                    encoded["input_ids"].to(self.device),
                    encoded["attention_mask"].to(self.device),
                )
            classes = torch.stack([h.argmax(dim=1) for h in heads], dim=1).tolist()
            for row in classes:
                out.append({name: CLASS_LABELS[k] for name, k in zip(CONDITIONS, row, strict=True)})
        return out

    def _score_valid(
        self, candidates: list[str], references: list[str]
    ) -> list[tuple[dict[str, float], dict[str, Any]]]:
        labels = self.label([*candidates, *references])
        cand_labels, ref_labels = labels[: len(candidates)], labels[len(candidates) :]
        out = []
        for cand, ref in zip(cand_labels, ref_labels, strict=True):
            c = present(cand, uncertain_as_positive=self.uncertain_as_positive)
            r = present(ref, uncertain_as_positive=self.uncertain_as_positive)
            micro14, macro14 = pair_f1(c, r, ALL_COLUMNS)
            micro5, macro5 = pair_f1(c, r, FIVE_COLUMNS)
            values = {
                "chexbert_micro_f1_14": micro14,
                "chexbert_macro_f1_14": macro14,
                "chexbert_micro_f1_5": micro5,
                "chexbert_macro_f1_5": macro5,
            }
            out.append((values, {"candidate_labels": cand, "reference_labels": ref}))
        return out

    def summarise(self, results: Sequence[Result]) -> dict[str, float | None]:
        """Micro and macro F1 over all scored pairs, as the papers report them."""
        scored = [r["detail"] for r in results if r["status"] == SCORED]
        if not scored:
            return dict.fromkeys(self.value_names)
        flag = self.uncertain_as_positive
        cand = np.array(
            [present(d["candidate_labels"], uncertain_as_positive=flag) for d in scored]
        )
        ref = np.array([present(d["reference_labels"], uncertain_as_positive=flag) for d in scored])
        micro14, macro14 = corpus_f1(cand, ref, ALL_COLUMNS)
        micro5, macro5 = corpus_f1(cand, ref, FIVE_COLUMNS)
        return {
            "chexbert_micro_f1_14": micro14,
            "chexbert_macro_f1_14": macro14,
            "chexbert_micro_f1_5": micro5,
            "chexbert_macro_f1_5": macro5,
        }
