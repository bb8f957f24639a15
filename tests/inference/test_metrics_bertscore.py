"""BERTScore from a local directory: a tiny random-weight BERT built and saved here, never
downloaded; values equal a plain per-token computation; a broken directory names its gap."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from inference.metrics import MetricError, metric_create

WORDS = [
    "findings",
    "impression",
    "the",
    "lungs",
    "are",
    "clear",
    "no",
    "pleural",
    "effusion",
    "or",
    "pneumothorax",
    "heart",
    "size",
    "is",
    "normal",
    "small",
    "left",
    "basilar",
    "atelectasis",
    "mild",
    "cardiomegaly",
    ".",
    ",",
]
REFERENCE = "the lungs are clear . no pleural effusion or pneumothorax ."
CANDIDATE = "mild cardiomegaly . small left pleural effusion ."


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-bert")
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def plain_bertscore(directory: Path, candidate: str, reference: str) -> tuple[float, float]:
    tokenizer = BertTokenizerFast.from_pretrained(directory, local_files_only=True)
    model = BertModel.from_pretrained(directory, local_files_only=True).eval()

    def embed(text: str) -> torch.Tensor:
        encoded = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**encoded).last_hidden_state[0]
        return hidden[1:-1]  # drop [CLS] and [SEP]

    cand, ref = embed(candidate), embed(reference)
    sims = [[float(torch.nn.functional.cosine_similarity(c, r, dim=0)) for r in ref] for c in cand]
    precision = sum(max(row) for row in sims) / len(cand)
    recall = sum(max(col) for col in zip(*sims, strict=True)) / len(ref)
    return precision, recall


def test_bertscore_equals_the_plain_greedy_matching(tiny_bert: Path) -> None:
    metric = metric_create("bertscore", {"model_dir": str(tiny_bert), "batch_size": 2})
    results = metric.score([(CANDIDATE, REFERENCE), (REFERENCE, REFERENCE), (REFERENCE, None)])
    precision, recall = plain_bertscore(tiny_bert, CANDIDATE, REFERENCE)
    values = results[0]["values"]
    assert values["bertscore_precision"] == pytest.approx(precision, abs=1e-5)
    assert values["bertscore_recall"] == pytest.approx(recall, abs=1e-5)
    assert values["bertscore_f1"] == pytest.approx(
        2 * precision * recall / (precision + recall), abs=1e-5
    )
    assert results[1]["values"]["bertscore_f1"] == pytest.approx(1.0, abs=1e-5)
    assert results[2]["reason"] == "reference_missing"
    assert metric.describe()["params"]["layer"] == 2


def test_directory_without_weights_fails_naming_the_missing_file(
    tiny_bert: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
        (broken / name).write_bytes((tiny_bert / name).read_bytes())
    metric = metric_create("bertscore", {"model_dir": str(broken)})
    with pytest.raises(MetricError, match=r"no weights: expected one of model\.safetensors") as e:
        metric.score([(CANDIDATE, REFERENCE)])
    assert e.value.code == "metric_model_missing_file"


def test_directory_without_config_fails_naming_config_json(tmp_path: Path) -> None:
    metric = metric_create("bertscore", {"model_dir": str(tmp_path)})
    with pytest.raises(MetricError, match=r"no config\.json"):
        metric.score([(CANDIDATE, REFERENCE)])


def test_missing_directory_is_not_downloaded(tmp_path: Path) -> None:
    metric = metric_create("bertscore", {"model_dir": str(tmp_path / "bert-base-uncased")})
    with pytest.raises(MetricError, match="never downloaded"):
        metric.score([(CANDIDATE, REFERENCE)])
