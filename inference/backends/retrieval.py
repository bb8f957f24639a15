"""The image nearest-neighbour retrieval baseline: no weights, CPU only.

It answers each study with the original report of the most similar *other* study of the same
kind in the archive, by the fixed descriptor of :mod:`inference.descriptor`. It is a control
arm for reader studies (how much better than "a plausible report of a similar-looking image"
is the model?), and the record says so in so many words.
"""

from __future__ import annotations

import time

import numpy as np

from inference.descriptor import DESCRIPTOR_VERSION, study_descriptor
from inference.environment import software_versions
from inference.types import CorpusEntry, GenerationOutput, GenerationRequest, InferenceError

BASELINE_LABEL = "baseline: image nearest-neighbour retrieval (not a generative model)"


def nearest(
    query: np.ndarray, corpus: tuple[CorpusEntry, ...], *, kind: str, exclude: str
) -> tuple[CorpusEntry, float]:
    candidates = [e for e in corpus if e.kind == kind and e.study_key != exclude]
    candidates = [e for e in candidates if np.shape(e.descriptor) == np.shape(query)]
    if not candidates:
        raise InferenceError(
            f"The retrieval baseline needs another {kind} study with an original report in "
            "the archive; there is none."
        )
    matrix = np.stack([np.asarray(e.descriptor, dtype=np.float32) for e in candidates])
    distances = np.linalg.norm(matrix - query[None, :], axis=1)
    best = int(np.argmin(distances))
    return candidates[best], float(distances[best])


class RetrievalBackend:
    kind = "retrieval"
    needs_corpus = True

    def generate(self, request: GenerationRequest) -> GenerationOutput:
        started = time.perf_counter()
        study = request.study
        query = study_descriptor(study)
        described = time.perf_counter()
        entry, distance = nearest(query, request.corpus, kind=study.kind, exclude=study.study_key)
        finished = time.perf_counter()
        record = {
            "backend": self.kind,
            "label": BASELINE_LABEL,
            "is_baseline": True,
            "model": {"id": "retrieval-baseline", "descriptor": DESCRIPTOR_VERSION},
            "prompt": None,
            "generation_params": {"metric": "euclidean", "k": 1},
            "seed": request.seed,
            "inputs": {
                "study": study.study_key,
                "sop_instance_uids": [r.sop_instance_uid for r in study.images],
                "preprocessing": {"descriptor": DESCRIPTOR_VERSION},
            },
            "retrieved": {
                "study": entry.study_key,
                "distance": round(distance, 6),
                "candidates": sum(1 for e in request.corpus if e.kind == study.kind),
            },
            "software": software_versions(),
            "device": {"device": "cpu"},
            "timings_s": {
                "describe": round(described - started, 4),
                "search": round(finished - described, 4),
            },
            "tokens": None,
        }
        return GenerationOutput(findings=entry.findings, impression=entry.impression, record=record)
