"""What a generation run hands to ``inference``: ids and file paths, never pixels."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.fields.files import FieldFile

from inference.descriptor import DESCRIPTOR_VERSION, study_descriptor
from inference.types import CorpusEntry, ImageRef, InferenceError, StudyInput, StudyKind
from reviewapp.generation.models import StudyDescriptor
from reviewapp.imaging.models import Instance, Study
from reviewapp.reports.models import Report
from reviewapp.studies.rendering import context_render

CXR_MODALITIES = {"CR", "DX"}


def _kind_of_modalities(modalities: str | set[str]) -> StudyKind | None:
    if isinstance(modalities, str):
        modalities = {m.strip().upper() for m in modalities.split("\\") if m.strip()}
    if "CT" in modalities:
        return "CT"
    if modalities & CXR_MODALITIES:
        return "CXR"
    return None


def study_kind(study: Study) -> StudyKind | None:
    """CT when the study has a CT series, CXR for radiographs, None for anything else."""
    if study.modalities.strip():
        return _kind_of_modalities(study.modalities)
    return _kind_of_modalities(
        {m.upper() for m in study.series.values_list("modality", flat=True) if m}
    )


def _local_path(field: FieldFile) -> Path:
    """A path on this machine; object storage is copied once into a local cache."""
    try:
        return Path(field.path)
    except NotImplementedError:
        cache = Path(settings.DATA_DIR) / "cache" / "dicom"
        cache.mkdir(parents=True, exist_ok=True)
        target = cache / Path(field.name or "unnamed").name
        if not target.exists():
            partial = target.with_suffix(".part")
            with field.open("rb") as source, partial.open("wb") as sink:
                shutil.copyfileobj(source, sink)
            partial.replace(target)
        return target


CONTEXT_FIELDS = ("indication", "technique", "comparison")


def study_input_build(*, study: Study) -> StudyInput:
    """The study's available images, CT slices in position order (its largest CT series)."""
    kind = study_kind(study)
    if kind is None:
        raise InferenceError(
            f"Study {study.public_id} is neither a chest radiograph nor a CT "
            f"(modalities {study.modalities or 'unknown'})."
        )
    instances: QuerySet[Instance] = Instance.objects.filter(
        series__study=study, status=Instance.Status.AVAILABLE
    ).select_related("series")
    if kind == "CT":
        counts: dict[int, int] = {}
        for instance in instances:
            if instance.series.modality.upper() == "CT":
                counts[instance.series_id] = counts.get(instance.series_id, 0) + 1
        if counts:
            instances = instances.filter(series_id=max(counts, key=lambda k: counts[k]))
    else:
        instances = instances.filter(series__modality__in=list(CXR_MODALITIES))
    refs = tuple(
        ImageRef(
            sop_instance_uid=i.sop_instance_uid,
            path=_local_path(i.file),
            series_instance_uid=i.series.series_instance_uid,
            modality=i.series.modality,
            view_position=i.view_position,
            position=i.position,
        )
        for i in instances.order_by("position", "instance_number", "id")
    )
    # The same de-identified text readers see in "Clinical information".
    context = {name: context_render(getattr(study, name)) for name in CONTEXT_FIELDS}
    return StudyInput(study_key=str(study.public_id), kind=kind, images=refs, context=context)


def descriptor_get(*, study: Study) -> StudyDescriptor:
    """The study's retrieval descriptor, computed and stored on first use."""
    existing = StudyDescriptor.objects.filter(study=study, version=DESCRIPTOR_VERSION).first()
    if existing is not None:
        return existing
    study_input = study_input_build(study=study)
    vector = study_descriptor(study_input).astype("<f4")
    descriptor, _ = StudyDescriptor.objects.update_or_create(
        study=study,
        defaults={
            "version": DESCRIPTOR_VERSION,
            "kind": study_input.kind,
            "vector": vector.tobytes(),
        },
    )
    return descriptor


# Per worker process: the described corpus of each kind and the archive state it was built
# from. Rebuilding it (every original report and descriptor row) costs far more than a run.
_corpus_cache: dict[str, tuple[tuple, tuple[CorpusEntry, ...]]] = {}


def _kind_filter(kind: StudyKind) -> Q:
    if kind == "CT":
        return Q(study__modalities__icontains="CT")
    return Q(study__modalities__icontains="CR") | Q(study__modalities__icontains="DX")


def _archive_state(originals: QuerySet[Report]) -> tuple:
    """What the corpus depends on; any report or descriptor added, changed or removed moves it."""
    reports = originals.aggregate(n=Count("id"), latest=Max("updated_at"), top=Max("id"))
    descriptors = StudyDescriptor.objects.filter(version=DESCRIPTOR_VERSION).aggregate(
        n=Count("id"), latest=Max("created_at"), top=Max("id")
    )
    return (*reports.values(), *descriptors.values())


def retrieval_corpus_build(*, kind: StudyKind) -> tuple[CorpusEntry, ...]:
    """Every study of this kind with an original report, described (missing ones computed).

    Studies whose images cannot be read are left out of the corpus rather than failing the run:
    the baseline answers from whatever else the archive holds.
    """
    originals = Report.objects.filter(_kind_filter(kind), kind=Report.Kind.ORIGINAL, is_latest=True)
    state = _archive_state(originals)
    cached = _corpus_cache.get(kind)
    if cached is not None and cached[0] == state:
        return cached[1]
    rows = [
        row
        for row in originals.values_list(
            "study_id", "study__public_id", "study__modalities", "findings", "impression"
        )
        # The modality filter above is a coarse text match; this is the exact rule.
        if _kind_of_modalities(row[2]) == kind
    ]
    vectors = dict(
        StudyDescriptor.objects.filter(
            study_id__in=[r[0] for r in rows], version=DESCRIPTOR_VERSION
        ).values_list("study_id", "vector")
    )
    entries = []
    for study_id, public_id, _, findings, impression in rows:
        vector = vectors.get(study_id)
        if vector is None:
            try:
                vector = descriptor_get(study=Study.objects.get(pk=study_id)).vector
            except InferenceError:
                continue
        entries.append(
            CorpusEntry(
                study_key=str(public_id),
                kind=kind,
                descriptor=np.frombuffer(bytes(vector), dtype="<f4"),
                findings=findings,
                impression=impression,
            )
        )
    corpus = tuple(entries)
    if len(corpus) == len(rows):
        # Cache only a complete corpus: describing changes the state it is keyed by.
        state = _archive_state(originals)
        _corpus_cache[kind] = (state, corpus)
    return corpus
