"""RadGraph F1: the simple / partial / complete rewards on hand-built annotations (known
answers), and entities from a local token-classification model built here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inference.metrics import MetricError, metric_create
from inference.metrics.radgraph import entities_from_bio, radgraph_words, reward
from tests.inference.tiny_models import build_token_classifier


def annotation(*entities: tuple[str, str, list[list[str]]]) -> dict[str, Any]:
    return {
        "entities": {
            str(i): {"tokens": tokens, "label": label, "relations": relations}
            for i, (tokens, label, relations) in enumerate(entities, start=1)
        }
    }


# "Small left pleural effusion. No pneumothorax." in RadGraph's shape, cut down.
REFERENCE = annotation(
    ("effusion", "OBS-DP", [["located_at", "2"]]),
    ("pleural", "ANAT-DP", []),
    ("pneumothorax", "OBS-DA", []),
)
# Same entities, but the effusion is placed at the lung, and an extra anatomy entity.
WRONG_PLACE = annotation(
    ("effusion", "OBS-DP", [["located_at", "4"]]),
    ("pleural", "ANAT-DP", []),
    ("pneumothorax", "OBS-DA", []),
    ("lung", "ANAT-DP", []),
)
# The effusion related to nothing; the pneumothorax called present.
NO_RELATION = annotation(
    ("effusion", "OBS-DP", []),
    ("pleural", "ANAT-DP", []),
    ("pneumothorax", "OBS-DP", []),
)


def test_rewards_known_answers() -> None:
    # simple: 3 of 4 candidate entities match all 3 of the reference's: P 3/4, R 1.
    assert reward(WRONG_PLACE, REFERENCE, "simple") == pytest.approx((6 / 7, 3 / 4, 1.0))
    # partial: the effusion has a relation in both: still 3 of 4.
    assert reward(WRONG_PLACE, REFERENCE, "partial") == pytest.approx((6 / 7, 3 / 4, 1.0))
    # complete: (effusion, located_at, lung) is not (effusion, located_at, pleural): 2 of 4, 2 of 3.
    assert reward(WRONG_PLACE, REFERENCE, "complete") == pytest.approx((4 / 7, 1 / 2, 2 / 3))
    # simple: effusion and pleural match (pneumothorax's label differs): 2 of 3 each way.
    assert reward(NO_RELATION, REFERENCE, "simple") == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    # partial: the effusion without a relation no longer matches the related one: 1 of 3.
    assert reward(NO_RELATION, REFERENCE, "partial") == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert reward(NO_RELATION, REFERENCE, "complete") == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert reward(REFERENCE, REFERENCE, "complete") == (1.0, 1.0, 1.0)


def test_a_report_without_entities_scores_zero_as_the_package_does() -> None:
    assert reward({"entities": {}}, REFERENCE, "simple") == (0.0, 0.0, 0.0)
    assert reward(REFERENCE, {"entities": {}}, "partial") == (0.0, 0.0, 0.0)


def test_words_are_split_as_radgraph_splits_them() -> None:
    assert radgraph_words("Small left-sided effusion, no pneumothorax.\n(Stable)") == [
        "Small", "left-sided", "effusion", ",", "no", "pneumothorax", ".", "(", "Stable", ")",
    ]  # fmt: skip


def test_bio_tags_become_entities() -> None:
    words = ["small", "left", "pleural", "effusion", ",", "no", "pneumothorax"]
    tags = ["B-OBS-DP", "B-ANAT-DP", "I-ANAT-DP", "B-OBS-DP", "O", "O", "I-OBS-DA"]
    entities = entities_from_bio(words, tags)["entities"]
    assert [(e["tokens"], e["label"], e["start_ix"], e["end_ix"]) for e in entities.values()] == [
        ("small", "OBS-DP", 0, 0),
        ("left pleural", "ANAT-DP", 1, 2),
        ("effusion", "OBS-DP", 3, 3),
        ("pneumothorax", "OBS-DA", 6, 6),  # an I tag that continues nothing starts an entity
    ]
    assert all(e["relations"] == [] for e in entities.values())


def test_a_token_classifier_tagging_every_word_gives_word_set_f1(tmp_path: Path) -> None:
    directory = build_token_classifier(tmp_path / "ner", always="B-OBS-DP")
    metric = metric_create("radgraph_f1", {"model_dir": str(directory)})
    results = metric.score(
        [
            ("small left effusion .", "small right effusion ."),
            ("the lungs are clear .", "the lungs are clear ."),
            ("no effusion", " "),
        ]
    )
    # Every word its own OBS-DP entity: {small, left, effusion, .} against
    # {small, right, effusion, .}: 3 of 4 each way.
    assert results[0]["values"] == pytest.approx(
        {"radgraph_simple": 0.75, "radgraph_partial": 0.75, "radgraph_complete": 0.75}
    )
    assert results[1]["values"]["radgraph_complete"] == 1.0
    assert results[2]["reason"] == "reference_empty"
    params = metric.describe()["params"]
    assert params["extractor"] == "token-classification"
    assert params["relations"] == "none"
    assert "model.safetensors:" in params["weights_sha256"]


def test_random_weights_give_rewards_in_range_and_no_relations(tmp_path: Path) -> None:
    directory = build_token_classifier(tmp_path / "ner")
    metric = metric_create("radgraph_f1", {"model_dir": str(directory)})
    (result,) = metric.score([("mild cardiomegaly . no edema .", "heart size is normal .")])
    values = result["values"]
    assert 0.0 <= values["radgraph_simple"] <= 1.0
    # Without relations partial and complete are simple (the documented difference).
    assert values["radgraph_partial"] == values["radgraph_complete"] == values["radgraph_simple"]


def test_a_directory_without_a_tokenizer_names_what_is_missing(tmp_path: Path) -> None:
    directory = build_token_classifier(tmp_path / "ner")
    for name in ("vocab.txt", "tokenizer.json"):
        (directory / name).unlink()
    metric = metric_create("radgraph_f1", {"model_dir": str(directory)})
    with pytest.raises(MetricError) as failure:
        metric.score([("a", "b")])
    assert failure.value.code == "metric_model_missing_file"
    assert "tokenizer" in str(failure.value)
    assert "vocab.txt" in str(failure.value)


def test_a_model_without_bio_tags_is_refused(tmp_path: Path) -> None:
    import json

    directory = build_token_classifier(tmp_path / "ner")
    config = json.loads((directory / "config.json").read_text())
    config["id2label"] = {str(i): f"LABEL_{i}" for i in range(7)}
    config["label2id"] = {f"LABEL_{i}": i for i in range(7)}
    (directory / "config.json").write_text(json.dumps(config))
    metric = metric_create("radgraph_f1", {"model_dir": str(directory)})
    with pytest.raises(MetricError) as failure:
        metric.score([("a", "b")])
    assert failure.value.code == "metric_model_load"
    assert "BIO" in str(failure.value)
