"""De-identification: no basic-profile identifier survives, at any depth, and what a reader
needs (pixels, geometry, patient characteristics, intervals between dates) does."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.core.exceptions import ImproperlyConfigured
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pytest_django.fixtures import Settings

from reviewapp.imaging.ingest.deid import (
    ACCESSION_PSEUDONYM,
    BASIC_PROFILE,
    PATIENT_PSEUDONYM,
    action_for,
    date_shift_days,
    deidentify,
    installation_secret,
    is_clean_descriptor,
    pseudonymize_uid,
    residual_phi,
)
from reviewapp.imaging.ingest.dicom_safety import (
    quarantine_reason,
    read_untrusted,
    read_untrusted_bytes,
)
from tests.imaging.deid_builders import (
    ALL_SAMPLES,
    CT_FILES,
    CXR_J2K,
    CXR_JPEG,
    MARKER_UID_ROOT,
    Markers,
    iter_elements,
    marked_dataset,
    profile_leaf_tags,
    profile_sequence_tags,
    to_bytes,
)

SECRET = b"installation-secret-for-tests"
OTHER_SECRET = b"another-installation"


def _days(a: str, b: str) -> int:
    parse = dt.datetime.strptime
    return (parse(a[:8], "%Y%m%d") - parse(b[:8], "%Y%m%d")).days


def test_the_action_table_is_the_standards_and_is_complete_enough_to_trust() -> None:
    # A few rows checked against PS3.15 Table E.1-1, so a broken table import cannot pass.
    assert action_for(0x00100010) == "Z"  # Patient's Name
    assert action_for(0x00100030) == "Z"  # Patient's Birth Date
    assert action_for(0x00080080) == "X/Z/D"  # Institution Name
    assert action_for(0x0020000D) == "U"  # Study Instance UID
    assert action_for(0x00081140) == "X/Z/U*"  # Referenced Image Sequence
    assert action_for(0x00081030) == "X"  # Study Description
    assert action_for(0x60023000) == "X"  # Overlay Data, repeating group
    assert action_for(0x00280010) is None  # Rows: kept
    assert len(BASIC_PROFILE) > 500
    assert len(profile_leaf_tags()) > 300
    assert len(profile_sequence_tags()) > 30


def test_no_basic_profile_marker_survives_at_any_depth() -> None:
    markers = Markers()
    original = marked_dataset(markers, depth=4)
    assert residual_phi(original), "the check must see the planted identifiers"
    nested = [p for p in residual_phi(original) if p.count("[0].") >= 4]
    assert nested, "the check must reach four levels down"

    result = deidentify(original, secret=SECRET)
    written = to_bytes(result.dataset)

    assert re.findall(rb"MK\d{6}", written) == []
    assert MARKER_UID_ROOT.encode() not in written
    assert residual_phi(result.dataset) == []
    assert residual_phi(result.dataset, original=original) == []
    reread = pydicom.dcmread(io.BytesIO(written))
    assert residual_phi(reread) == []
    marker_dates = set(markers.dates.values())
    for elem in iter_elements(reread):
        if elem.VR in ("DA", "DT"):
            values = [elem.value] if isinstance(elem.value, str) else list(elem.value or [])
            assert not any(str(v)[:8] in marker_dates for v in values), elem.keyword
        if elem.tag in markers.numbers and elem.value not in (None, "", 0, "0"):
            assert elem.value not in markers.numbers[int(elem.tag)], elem.keyword
        assert not elem.tag.is_private
    # The planted chain is still there, four levels deep, and de-identified.
    deepest = reread.ReferencedImageSequence[0].AnatomicRegionSequence[0]
    deepest = deepest.SourceImageSequence[0].DerivationCodeSequence[0]
    assert deepest.ReferencedSOPInstanceUID.startswith("2.25.")
    assert "PatientBirthDate" not in deepest or not deepest.PatientBirthDate


def test_residual_phi_finds_one_identifier_planted_deep_after_deidentification() -> None:
    result = deidentify(read_untrusted(CT_FILES[0]), secret=SECRET)
    ds = result.dataset
    level3 = Dataset()
    level3.OtherPatientIDs = "12345"
    level2 = Dataset()
    level2.DerivationCodeSequence = Sequence([level3])
    level1 = Dataset()
    level1.AnatomicRegionSequence = Sequence([level2])
    ds.ReferencedImageSequence[0].SourceImageSequence = Sequence([level1])
    found = residual_phi(ds)
    assert found == [
        "ReferencedImageSequence[0].SourceImageSequence[0].AnatomicRegionSequence[0]."
        "DerivationCodeSequence[0].OtherPatientIDs"
    ]


def test_uids_map_consistently_across_calls_and_files() -> None:
    first = deidentify(read_untrusted(CT_FILES[0]), secret=SECRET).dataset
    again = deidentify(read_untrusted(CT_FILES[0]), secret=SECRET).dataset
    second = deidentify(read_untrusted(CT_FILES[1]), secret=SECRET).dataset
    source = read_untrusted(CT_FILES[0])

    assert first.SOPInstanceUID == again.SOPInstanceUID
    assert first.StudyInstanceUID == second.StudyInstanceUID
    assert first.SeriesInstanceUID == second.SeriesInstanceUID
    assert first.FrameOfReferenceUID == second.FrameOfReferenceUID
    assert first.SOPInstanceUID != second.SOPInstanceUID
    assert first.StudyInstanceUID == pseudonymize_uid(source.StudyInstanceUID, secret=SECRET)
    assert first.file_meta.MediaStorageSOPInstanceUID == first.SOPInstanceUID
    for uid in (first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID):
        assert re.fullmatch(r"2\.25\.[1-9]\d*", uid)
        assert len(uid) <= 64
    # A reference to another instance of the same series lands on that instance's new UID.
    referenced = source.ReferencedImageSequence[0].ReferencedSOPInstanceUID
    assert first.ReferencedImageSequence[0].ReferencedSOPInstanceUID == pseudonymize_uid(
        referenced, secret=SECRET
    )


def test_a_different_secret_gives_unlinkable_uids_and_pseudonyms() -> None:
    ds = read_untrusted(CT_FILES[0])
    ours = deidentify(ds, secret=SECRET)
    theirs = deidentify(ds, secret=OTHER_SECRET)
    assert ours.dataset.StudyInstanceUID != theirs.dataset.StudyInstanceUID
    assert ours.dataset.SOPInstanceUID != theirs.dataset.SOPInstanceUID
    assert ours.patient_pseudonym != theirs.patient_pseudonym
    assert pseudonymize_uid("1.2.3", secret=SECRET) != pseudonymize_uid(
        "1.2.3", secret=OTHER_SECRET
    )


def test_sop_class_and_transfer_syntax_are_kept() -> None:
    for path in (CT_FILES[0], CXR_J2K, CXR_JPEG):
        source = read_untrusted(path)
        out = deidentify(source, secret=SECRET).dataset
        assert out.SOPClassUID == source.SOPClassUID
        assert out.file_meta.MediaStorageSOPClassUID == source.SOPClassUID
        assert out.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
    # Well-known UIDs nested in sequences (here a referenced SOP class) stay as they are.
    source = read_untrusted(CXR_J2K)
    out = deidentify(source, secret=SECRET).dataset
    assert (
        out.SourceImageSequence[0].ReferencedSOPClassUID
        == source.SourceImageSequence[0].ReferencedSOPClassUID
    )


def test_dates_shift_by_one_amount_per_patient_and_intervals_survive() -> None:
    source = read_untrusted(CXR_J2K)
    result = deidentify(source, secret=SECRET)
    out = result.dataset
    assert -365 <= result.date_shift_days <= -1
    for keyword in ("StudyDate", "SeriesDate", "ContentDate", "InstanceCreationDate"):
        assert _days(out[keyword].value, source[keyword].value) == result.date_shift_days
    # Study 2004 and series 1995 in this file: the gap between them is unchanged.
    assert _days(out.StudyDate, out.SeriesDate) == _days(source.StudyDate, source.SeriesDate)
    # Times of day are kept (see the module docstring for why).
    assert out.StudyTime == source.StudyTime
    assert out.PatientBirthDate == ""
    assert result.date_shift_days == date_shift_days("id:9RG1", secret=SECRET)

    ct = deidentify(read_untrusted(CT_FILES[0]), secret=SECRET)
    other_ct = deidentify(read_untrusted(CT_FILES[5]), secret=SECRET)
    assert ct.date_shift_days == other_ct.date_shift_days  # same patient, same shift
    assert ct.date_shift_days != result.date_shift_days  # another patient, another shift


def test_datetimes_keep_their_time_and_bad_dates_are_dropped() -> None:
    ds = read_untrusted(CT_FILES[0])
    ds.AcquisitionDateTime = "20070425134501.123456+0100"
    ds.SeriesDate = "2007-04-25"  # not a DA: cannot be shifted, so must not be kept
    result = deidentify(ds, secret=SECRET)
    shifted = result.dataset.AcquisitionDateTime
    assert shifted[8:] == "134501.123456+0100"
    assert _days(shifted, "20070425") == result.date_shift_days
    assert result.dataset.SeriesDate == ""


def test_pseudonymous_patient_and_accession_and_what_the_result_reports() -> None:
    source = read_untrusted(CXR_J2K)
    result = deidentify(source, secret=SECRET)
    out = result.dataset
    assert result.original_patient_id == "9RG1"
    assert result.original_accession == "exam Number"
    assert result.original_study_uid == source.StudyInstanceUID
    assert PATIENT_PSEUDONYM.match(out.PatientID)
    assert str(out.PatientName) == out.PatientID == result.patient_pseudonym
    assert ACCESSION_PSEUDONYM.match(out.AccessionNumber)
    assert len(out.AccessionNumber) <= 16
    assert out.AccessionNumber == result.accession_pseudonym
    assert "OtherPatientIDs" not in out
    assert "InstitutionName" not in out or out.InstitutionName in ("", "REMOVED")
    assert out.PatientIdentityRemoved == "YES"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = {item.CodeValue for item in out.DeidentificationMethodCodeSequence}
    assert codes == {"113100", "113105", "113107", "113108"}
    assert out.preamble == b"\x00" * 128
    assert "SourceApplicationEntityTitle" not in out.file_meta
    # The caller's data set is left alone.
    assert source.PatientID == "9RG1"


def test_a_file_without_patient_id_gets_a_pseudonym_per_study() -> None:
    a = read_untrusted(CT_FILES[0])
    b = read_untrusted(CXR_J2K)
    for ds in (a, b):
        del ds.PatientID
    ra, rb = deidentify(a, secret=SECRET), deidentify(b, secret=SECRET)
    assert PATIENT_PSEUDONYM.match(ra.dataset.PatientID)
    assert ra.patient_pseudonym != rb.patient_pseudonym
    assert ra.original_patient_id == ""


def test_patient_characteristics_are_retained() -> None:
    source = read_untrusted(CT_FILES[0])
    source.PatientWeight = "61.5"
    source.PatientSize = "1.62"
    source.EthnicGroup = "EG"
    out = deidentify(source, secret=SECRET).dataset
    assert out.PatientSex == "F"
    assert out.PatientAge == "053Y"
    assert out.PatientWeight == 61.5
    assert out.PatientSize == 1.62
    assert "EthnicGroup" not in out


def test_what_a_radiologist_needs_to_read_the_image_is_kept() -> None:
    source = read_untrusted(CT_FILES[0])
    out = deidentify(source, secret=SECRET).dataset
    for keyword in (
        "Modality",
        "BodyPartExamined",
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "PixelSpacing",
        "SliceThickness",
        "WindowCenter",
        "WindowWidth",
        "RescaleIntercept",
        "RescaleSlope",
        "Rows",
        "Columns",
        "PhotometricInterpretation",
        "InstanceNumber",
        "SeriesNumber",
    ):
        assert out[keyword].value == source[keyword].value, keyword
    cxr = read_untrusted(CXR_JPEG)
    assert deidentify(cxr, secret=SECRET).dataset.ViewPosition == "PA"


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: p.name)
def test_every_sample_deidentifies_and_decodes_to_identical_pixels(path: Path) -> None:
    source = read_untrusted(path)
    result = deidentify(source, secret=SECRET)
    written = to_bytes(result.dataset)
    assert residual_phi(result.dataset) == []
    assert residual_phi(result.dataset, original=source) == []
    assert source.PatientID.encode() not in written
    reread = read_untrusted_bytes(written)
    assert np.array_equal(reread.pixel_array, source.pixel_array)
    assert not [e for e in reread if e.tag.is_private]


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("CHEST PA", "CHEST PA"),
        ("Thorax^AThoraxRoutine (Adult)", "Thorax^AThoraxRoutine (Adult)"),
        ("CT ABDOMEN W/O CONTRAST", "CT ABDOMEN W/O CONTRAST"),
        ("Smith CHEST", "CHEST"),  # a word of the patient's name is removed
        ("CHEST 2021-03-04", "CHEST"),  # a date
        ("CHEST 1234567", "CHEST"),  # an identifier-like number
        ("CHEST\nPA", None),  # control characters
        ("A" * 65, None),  # too long to be a plain descriptor
    ],
)
def test_descriptors_are_kept_only_when_clean(value: str, stored: str | None) -> None:
    ds = read_untrusted(CT_FILES[0])
    ds.PatientName = "Smith^John"
    ds.StudyDescription = value
    ds.SeriesDescription = value
    out = deidentify(ds, secret=SECRET).dataset
    assert out.get("StudyDescription") == stored
    assert out.get("SeriesDescription") == stored
    assert is_clean_descriptor(value, identifying_words=frozenset({"smith"})) is (value == stored)
    assert residual_phi(out, original=ds) == []


def test_free_text_and_unlisted_person_names_are_removed() -> None:
    ds = read_untrusted(CT_FILES[0])
    ds.ImageComments = "Findings: small nodule right upper lobe"
    ds.AdditionalPatientHistory = "smoker"
    ds.add_new(0x00400006, "PN", "Doe^Jane")  # Scheduled Performing Physician's Name
    ds.add_new(0x00181030, "LO", "Protocol of Dr Doe")
    out = deidentify(ds, secret=SECRET).dataset
    assert "ImageComments" not in out
    assert "AdditionalPatientHistory" not in out
    assert not str(out.get("ScheduledPerformingPhysicianName", ""))


def test_burned_in_annotation_decides_quarantine() -> None:
    ct = read_untrusted(CT_FILES[0])
    assert quarantine_reason(ct) is None  # CT with no value: reconstructed slices
    ct.BurnedInAnnotation = "YES"
    assert "Burned In Annotation is YES" in (quarantine_reason(ct) or "")
    cr = read_untrusted(CXR_J2K)
    assert "missing on a CR image" in (quarantine_reason(cr) or "")
    cr.BurnedInAnnotation = "NO"
    assert quarantine_reason(cr) is None
    cr.BurnedInAnnotation = "MAYBE"
    assert "not NO" in (quarantine_reason(cr) or "")
    sc = read_untrusted(CXR_JPEG)
    assert "secondary capture" in (quarantine_reason(sc) or "")
    ct.BurnedInAnnotation = ""
    ct.ImageType = ["DERIVED", "SECONDARY", "SCREEN SAVE"]
    assert "SCREEN SAVE" in (quarantine_reason(ct) or "")
    # The decision survives de-identification (the attribute is kept).
    assert quarantine_reason(deidentify(cr, secret=SECRET).dataset) == quarantine_reason(cr)


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "examples_ybr_color.dcm",
    ],
)
def test_every_transfer_syntax_we_accept_survives_deidentification(name: str) -> None:
    source = read_untrusted(Path(str(get_testdata_file(name, download=False))))
    written = to_bytes(deidentify(source, secret=SECRET).dataset)
    reread = read_untrusted_bytes(written)
    assert reread.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
    assert np.array_equal(reread.pixel_array, source.pixel_array)
    assert residual_phi(reread) == []


def test_overlays_and_elements_of_unknown_meaning_are_removed() -> None:
    ds = read_untrusted(CT_FILES[0])
    ds.add_new(0x60000010, "US", 512)  # Overlay Rows
    ds.add_new(0x60000011, "US", 512)  # Overlay Columns
    ds.add_new(0x60003000, "OW", b"\x01\x00" * 64)  # Overlay Data
    ds.add_new(0x00191234, "UN", b"vendor PHI")  # private
    ds.add_new(0x00770010, "UN", b"unknown group")  # not in any dictionary
    out = deidentify(ds, secret=SECRET).dataset
    assert not [e for e in out if 0x6000 <= e.tag.group <= 0x60FF]
    assert 0x00191234 not in out
    assert 0x00770010 not in out
    out.add_new(0x00770010, "UN", b"unknown group")
    assert residual_phi(out) == ["(0077,0010)"]


def test_residual_phi_given_the_original_finds_its_identity_anywhere() -> None:
    source = read_untrusted(CXR_J2K)
    source.PatientName = "Doe^Jane"
    out = deidentify(source, secret=SECRET).dataset
    assert residual_phi(out, original=source) == []
    # An identifier copied into an attribute the profile keeps, deep in a sequence.
    code = out.SourceImageSequence[0].PurposeOfReferenceCodeSequence[0]
    code.CodeMeaning = "prior of Jane Doe"
    # A source UID that escaped remapping, and the patient id inside a binary value.
    out.SourceImageSequence[0].ReferencedSOPInstanceUID = source.SOPInstanceUID
    out.add_new(0x00181400, "LO", "9RG1")  # Acquisition Device Processing Description
    assert residual_phi(out, original=source) == [
        "AcquisitionDeviceProcessingDescription",
        "SourceImageSequence[0].ReferencedSOPInstanceUID",
        "SourceImageSequence[0].PurposeOfReferenceCodeSequence[0].CodeMeaning",
    ]


def test_the_installation_secret_comes_from_settings(settings: Settings) -> None:
    settings.RADREVIEW_DEID_SECRET = "site-a"
    site_a = installation_secret()
    assert site_a == b"site-a"
    settings.RADREVIEW_DEID_SECRET = ""
    with pytest.raises(ImproperlyConfigured):
        installation_secret()
