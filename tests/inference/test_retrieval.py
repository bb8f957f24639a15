from __future__ import annotations

import numpy as np
import pytest

from inference.backends import backend_get
from inference.descriptor import study_descriptor
from inference.types import CorpusEntry, GenerationRequest, InferenceError, StudyInput
from tests.inference.conftest import CXR_J2K, ref_for


def _entry(study: StudyInput, text: str) -> CorpusEntry:
    return CorpusEntry(study.study_key, study.kind, study_descriptor(study), text, "imp " + text)


def test_the_baseline_returns_the_nearest_other_studys_report(
    cxr_study: StudyInput, ct_study: StudyInput
) -> None:
    near = StudyInput("near", "CXR", cxr_study.images)  # same image: distance 0
    far = StudyInput("far", "CXR", (ref_for(CXR_J2K),))
    corpus = (
        _entry(cxr_study, "itself"),
        _entry(far, "far"),
        _entry(near, "near"),
        _entry(ct_study, "a CT"),
    )
    backend = backend_get(kind="retrieval")

    output = backend.generate(GenerationRequest(study=cxr_study, prompt_template="", corpus=corpus))

    assert (output.findings, output.impression) == ("near", "imp near")
    assert output.record["retrieved"] == {"study": "near", "distance": 0.0, "candidates": 3}
    assert output.record["is_baseline"] is True
    assert output.record["label"].startswith("baseline")


def test_the_baseline_never_answers_a_study_with_its_own_report(cxr_study: StudyInput) -> None:
    backend = backend_get(kind="retrieval")
    request = GenerationRequest(
        study=cxr_study, prompt_template="", corpus=(_entry(cxr_study, "itself"),)
    )
    with pytest.raises(InferenceError, match="needs another CXR study"):
        backend.generate(request)


def test_corpus_entries_of_another_descriptor_version_are_ignored(cxr_study: StudyInput) -> None:
    stale = CorpusEntry("old", "CXR", np.zeros(10, dtype=np.float32), "old", "")
    fresh = _entry(StudyInput("new", "CXR", cxr_study.images), "new")
    output = backend_get(kind="retrieval").generate(
        GenerationRequest(study=cxr_study, prompt_template="", corpus=(stale, fresh))
    )
    assert output.findings == "new"
