"""Hostile bytes through the whole import (parse, de-identify, store, index, rows): every file
gets an outcome, the batch never stops, and storage and rows always agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reviewapp.imaging.ingest.services import import_batch_create, import_batch_run
from reviewapp.imaging.ingest.types import IncomingFile
from reviewapp.imaging.models import ImportBatch, Instance
from tests.imaging.conftest import CT_FILES, CXR_JPEG

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SEEDS = [CXR_JPEG.read_bytes(), CT_FILES[0].read_bytes()]


@st.composite
def mutated_dicom(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    # Most damage goes into the header, where the parser and de-identifier live.
    header_end = min(len(data), 4096)
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "header_flip"]))
        if not data:
            break
        if kind == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif kind == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            at = draw(st.integers(0, len(data) - 1))
            data[at : at + draw(st.integers(1, 64))] = b""
        else:
            limit = header_end if kind == "header_flip" else len(data)
            at = draw(st.integers(0, max(min(limit, len(data)) - 1, 0)))
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


def _stored_names() -> set[str]:
    root = Path(default_storage.path("dicom"))
    if not root.exists():
        return set()
    media = Path(default_storage.path(""))
    return {str(p.relative_to(media)) for p in root.rglob("*") if p.is_file()}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(blobs=st.lists(mutated_dicom(), min_size=1, max_size=3))
def test_mutated_files_never_break_a_batch_or_leave_orphans(
    archive_dirs: Path, tmp_path: Path, blobs: list[bytes]
) -> None:
    files = []
    for index, blob in enumerate(blobs):
        path = tmp_path / f"fuzz-{index}.dcm"
        path.write_bytes(blob)
        files.append(IncomingFile(name=path.name, path=path))
    files.append(IncomingFile(name="good.dcm", path=CT_FILES[1]))
    batch = import_batch_create(source=ImportBatch.Source.COMMAND, created_by=None)
    outcomes = import_batch_run(batch=batch, files=files)
    batch.refresh_from_db()

    assert len(outcomes) == len(files)
    assert batch.status == ImportBatch.Status.DONE
    assert batch.files_done == len(files)
    assert outcomes[-1].status in ("imported", "duplicate")
    for outcome in outcomes:
        assert outcome.status in ("imported", "duplicate", "quarantined", "rejected")
        if outcome.status == "rejected":
            assert outcome.reason
            # Hostile input is refused for a stated reason, not by tripping over a bug.
            assert not outcome.reason.startswith("an internal error"), outcome
    # Every stored file has its row and every row its file: nothing half-written remains.
    assert _stored_names() == set(Instance.objects.values_list("file", flat=True))
