"""The frame index: the byte ranges it records must give back exactly pydicom's frames."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames

from reviewapp.imaging.ingest.dicom_index import FrameIndexError, index_stored_file
from tests.conftest import SAMPLES

CT_SLICE = SAMPLES / "ct" / "lung_pet_ct_dx_A0002_thorax" / "1-01.dcm"
CXR_J2K = SAMPLES / "cxr" / "nema_wg04_RG1_chest_PA_J2KI.dcm"
CXR_JPEG = SAMPLES / "cxr" / "siim_nihcxr14_chest_PA_jpeg.dcm"


def _frames_from_ranges(path: Path, ranges: list[list[tuple[int, int]]]) -> list[bytes]:
    data = path.read_bytes()
    return [
        b"".join(data[offset : offset + length] for offset, length in frame) for frame in ranges
    ]


def _expected_frames(ds: Dataset, frames: int) -> list[bytes]:
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        return list(generate_frames(ds.PixelData, number_of_frames=frames))
    size = len(ds.PixelData) // frames
    return [ds.PixelData[i * size : (i + 1) * size] for i in range(frames)]


@pytest.mark.parametrize(
    "path",
    [
        CT_SLICE,
        CXR_J2K,
        CXR_JPEG,
        Path(get_testdata_file("rtdose.dcm")),  # implicit VR, 15 native frames
        Path(get_testdata_file("rtdose_rle.dcm")),  # RLE, one fragment per frame
        Path(get_testdata_file("rtdose_expb.dcm")),  # big endian native frames
        Path(get_testdata_file("SC_rgb_rle_2frame.dcm")),
    ],
    ids=lambda p: p.name,
)
def test_ranges_give_back_pydicoms_frames(path: Path) -> None:
    ds = pydicom.dcmread(path)
    index = index_stored_file(path, ds)
    frames = int(ds.get("NumberOfFrames", 1))
    assert index.number_of_frames == frames
    assert _frames_from_ranges(path, index.frame_ranges) == _expected_frames(ds, frames)


def test_a_frame_split_over_fragments_is_served_whole() -> None:
    # The shared JPEG 2000 radiograph stores its single frame in 11 fragments.
    ds = pydicom.dcmread(CXR_J2K)
    index = index_stored_file(CXR_J2K, ds)
    assert len(index.frame_ranges) == 1
    assert len(index.frame_ranges[0]) > 1
    (frame,) = _frames_from_ranges(CXR_J2K, index.frame_ranges)
    assert frame.startswith(b"\xff\x4f\xff\x51")


def _multiframe(tmp_path: Path, frames: list[bytes], pixel_data: bytes, **extra: bytes) -> Path:
    ds = pydicom.dcmread(CXR_JPEG)
    ds.NumberOfFrames = len(frames)
    ds.PixelData = pixel_data
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    path = tmp_path / "multi.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _fake_jpeg_frames() -> list[bytes]:
    return [b"\xff\xd8" + bytes([i]) * 36 + b"\xff\xd9" for i in range(3)]


def test_fragments_are_grouped_by_the_basic_offset_table(tmp_path: Path) -> None:
    frames = _fake_jpeg_frames()
    path = _multiframe(tmp_path, frames, encapsulate(frames, fragments_per_frame=2, has_bot=True))
    index = index_stored_file(path, pydicom.dcmread(path))
    assert [len(ranges) for ranges in index.frame_ranges] == [2, 2, 2]
    assert _frames_from_ranges(path, index.frame_ranges) == frames


def test_fragments_without_offset_table_are_grouped_at_start_markers(tmp_path: Path) -> None:
    frames = _fake_jpeg_frames()
    path = _multiframe(tmp_path, frames, encapsulate(frames, fragments_per_frame=3, has_bot=False))
    index = index_stored_file(path, pydicom.dcmread(path))
    assert _frames_from_ranges(path, index.frame_ranges) == frames


def test_extended_offset_table_is_honoured(tmp_path: Path) -> None:
    frames = _fake_jpeg_frames()
    pixel_data, offsets, lengths = encapsulate_extended(frames)
    path = _multiframe(
        tmp_path,
        frames,
        pixel_data,
        ExtendedOffsetTable=offsets,
        ExtendedOffsetTableLengths=lengths,
    )
    index = index_stored_file(path, pydicom.dcmread(path))
    assert _frames_from_ranges(path, index.frame_ranges) == frames
    assert "7FE00001" not in index.dicom_json


def test_header_json_leaves_out_bulk_data_and_keeps_the_header() -> None:
    ds = pydicom.dcmread(CT_SLICE)
    header = index_stored_file(CT_SLICE, ds).dicom_json
    assert "7FE00010" not in header
    assert header["00080018"]["Value"] == [ds.SOPInstanceUID]
    assert header["00280010"]["Value"] == [ds.Rows]
    assert header["00083002"]["Value"] == [ds.file_meta.TransferSyntaxUID]
    assert all("InlineBinary" not in value for value in header.values())


def test_zero_pixel_spacing_is_dropped_from_the_header() -> None:
    # "0\0" makes Cornerstone render the image black; no spacing at all renders correctly.
    ds = pydicom.dcmread(CXR_J2K)
    assert [float(v) for v in ds.PixelSpacing] == [0.0, 0.0]
    header = index_stored_file(CXR_J2K, ds).dicom_json
    assert "00280030" not in header
    ct = pydicom.dcmread(CT_SLICE)
    assert index_stored_file(CT_SLICE, ct).dicom_json["00280030"]["Value"] == [
        float(v) for v in ct.PixelSpacing
    ]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("image_dfl.dcm", "deflated"),
        ("rtplan.dcm", "no Pixel Data"),
    ],
)
def test_unindexable_files_are_refused_with_a_reason(name: str, reason: str) -> None:
    path = Path(get_testdata_file(name))
    with pytest.raises(FrameIndexError, match=reason):
        index_stored_file(path, pydicom.dcmread(path))


def test_truncated_native_pixel_data_is_refused(tmp_path: Path) -> None:
    ds = pydicom.dcmread(CT_SLICE)
    ds.PixelData = ds.PixelData[:1000]
    path = tmp_path / "short.dcm"
    ds.save_as(path)
    with pytest.raises(FrameIndexError, match="fewer than 1 frame"):
        index_stored_file(path, pydicom.dcmread(path))


def test_offset_table_that_disagrees_with_the_frame_count_is_refused(tmp_path: Path) -> None:
    frames = _fake_jpeg_frames()
    path = _multiframe(tmp_path, frames, encapsulate(frames, fragments_per_frame=2, has_bot=True))
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 4
    ds.save_as(path)
    with pytest.raises(FrameIndexError, match="offset table lists 3 frames, not 4"):
        index_stored_file(path, pydicom.dcmread(path))
