"""Fuzz the import's parsing and de-identification with mutated bytes of real files: whatever
the bytes, the only failure is UnsafeDicomError, quickly, and what passes is de-identified."""

from __future__ import annotations

import datetime as dt
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from reviewapp.imaging.ingest.deid import dataset_to_bytes, deidentify, residual_phi
from reviewapp.imaging.ingest.dicom_safety import (
    UnsafeDicomError,
    read_untrusted,
    read_untrusted_bytes,
)
from tests.imaging.deid_builders import CT_FILES, CXR_J2K

SECRET = b"fuzz-secret"
_SEEDS = {
    "ct": CT_FILES[0].read_bytes(),
    "cxr_j2k": CXR_J2K.read_bytes(),
    "mr_implicit": Path(
        str(get_testdata_file("MR_small_implicit.dcm", download=False))
    ).read_bytes(),
}


def _regions(data: bytes) -> tuple[int, int]:
    """Where the data set starts (after the meta header) and where its pixel values start."""
    meta_length = struct.unpack_from("<I", data, 140)[0]
    at = data.rfind(b"\xe0\x7f\x10\x00")
    return 144 + meta_length, (at + 12 if at > 0 else len(data))


Mutation = tuple[str, int, int]  # kind, offset, argument


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, tuple[Mutation, ...], int | None]:
    """A seed file and edits to it, kept small so a failing example prints readably."""
    name = draw(st.sampled_from(sorted(_SEEDS)))
    data_start, pixels = _regions(_SEEDS[name])
    edits = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["byte", "word", "short", "delete", "insert"]))
        # Mostly the data set's elements; sometimes the preamble and meta header too.
        low = draw(st.sampled_from([data_start, data_start, data_start, 0]))
        offset = draw(st.integers(min_value=low, max_value=pixels - 1))
        if kind == "word":
            # Lengths and tags are where parsers break: write extreme 32-bit values.
            argument = draw(st.sampled_from([0, 1, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, 0xE000FFFE]))
        else:
            argument = draw(st.integers(min_value=0, max_value=0xFFFF))
        edits.append((kind, offset, argument))
    size = len(_SEEDS[name])
    cut = draw(st.none() | st.integers(min_value=0, max_value=size).map(lambda n: size - n))
    return name, tuple(edits), cut


def _apply(name: str, edits: tuple[Mutation, ...], cut: int | None) -> bytes:
    data = bytearray(_SEEDS[name])
    for kind, offset, argument in edits:
        if offset >= len(data) - 4:
            continue
        if kind == "byte":
            data[offset] = argument & 0xFF
        elif kind == "word":
            struct.pack_into("<I", data, offset, argument)
        elif kind == "short":
            struct.pack_into("<H", data, offset, argument)
        elif kind == "delete":
            del data[offset : offset + 1 + argument % 16]
        else:
            data[offset:offset] = argument.to_bytes(2, "little") * (1 + argument % 8)
    return bytes(data if cut is None else data[:cut])


def _import_one(data: bytes) -> str | None:
    """What the import does with one file, as far as these modules go; the refusal or None."""
    try:
        ds = read_untrusted_bytes(data)
        result = deidentify(ds, secret=SECRET)
        leaks = residual_phi(result.dataset) + residual_phi(result.dataset, original=ds)
        written = dataset_to_bytes(result.dataset)
        # What we write must itself pass our own reader.
        read_untrusted_bytes(written)
    except UnsafeDicomError as exc:
        return exc.reason
    assert leaks == []
    return None


def _refusal(read: Callable[[Any], object], source: object) -> str | None:
    try:
        read(source)
    except UnsafeDicomError as exc:
        return exc.reason
    return None


@settings(
    max_examples=150,
    deadline=dt.timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@example(case=("ct", (("byte", 350, 0),), None))  # Specific Character Set moved to group 0000
@given(case=mutations())
def test_mutated_real_files_only_ever_raise_unsafe_dicom_error(
    case: tuple[str, tuple[Mutation, ...], int | None],
) -> None:
    reason = _import_one(_apply(*case))
    assert reason is None or (reason.strip() and "\n" not in reason)


@settings(max_examples=100, deadline=dt.timedelta(seconds=5), database=None)
@given(tail=st.binary(max_size=512))
def test_random_bytes_after_a_valid_meta_header_are_refused_cleanly(tail: bytes) -> None:
    data_start, _ = _regions(_SEEDS["ct"])
    assert _import_one(_SEEDS["ct"][:data_start] + tail) is not None


@settings(max_examples=20, deadline=dt.timedelta(seconds=5), database=None)
@given(case=mutations())
def test_the_path_reader_agrees_with_the_bytes_reader(
    case: tuple[str, tuple[Mutation, ...], int | None],
) -> None:
    data = _apply(*case)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.dcm"
        path.write_bytes(data)
        assert _refusal(read_untrusted, path) == _refusal(read_untrusted_bytes, data)


def test_a_stray_command_group_element_is_dropped_not_fatal() -> None:
    # Found by the fuzz test: (0008,0005) turned into (0000,0005) made the output unwritable.
    assert _import_one(_apply("ct", (("byte", 350, 0),), None)) is None
