"""Clean Descriptors really cleans: a corpus of descriptors written for these tests.

Clean ones come back unchanged; dirty ones come back without their names, dates, times and
identifiers, or not at all when what is left is not plainly radiology. The header the
descriptors come from names the patient Jon Smyth (ID 7788) and the referring physician
Gregory House, as the de-identification sees them.
"""

from __future__ import annotations

import pytest

from reviewapp.imaging.ingest.deid import deidentify, residual_phi
from reviewapp.imaging.ingest.descriptors import clean_descriptor, is_clean_descriptor
from reviewapp.imaging.ingest.dicom_safety import read_untrusted
from tests.imaging.deid_builders import CT_FILES

SECRET = b"descriptor-test-secret"
HEADER_WORDS = frozenset({"jon", "smyth", "7788", "gregory", "house"})

CLEAN = [
    "CHEST PA AND LATERAL",
    "CT CHEST W/O CONTRAST",
    "AXIAL 1.25MM LUNG",
    "CHEST PA/LAT (2 VIEWS)",
    "CT ABD/PELVIS W CONTRAST",
    "MR BRAIN W/WO",
    "MRI L-SPINE W/O",
    "CT CHEST PE PROTOCOL",
    "HRCT LUNG 1mm",
    "T2 FLAIR AX",
    "XR KNEE 3 VIEWS",
    "US ABDOMEN COMPLETE",
    "PORTABLE AP CHEST - ICU",
    "Chest X-ray",
    "Thorax^AThoraxRoutine (Adult)",
    "THORAX",
    "view: PA",
    "LEFT LAT DEC",  # DEC is decubitus here, not December
    "DR CHEST",  # DR is digital radiography here, not a doctor
    "CTA CHEST PE 0.625mm B30f",
    "LOW DOSE CT SCREENING",
    "CT HEAD WITHOUT CONTRAST",
    "No Finding",  # a dataset's label: not PHI (readers never get descriptors)
]
DIRTY = [
    # The findings.
    ("DOB Jan 05 1950 MRN 7788", None),
    ("pt Jon Smyth bed 12", None),
    ("CHEST per Dr Gregory House", "CHEST"),
    # Names after titles and introducers, in any case, with initials.
    ("CHEST PA per Dr Gregory House", "CHEST PA"),
    ("DR SMITH CHEST", "CHEST"),
    ("Dr. Smith", None),
    ("Mrs Jones chest", "chest"),
    ("CT CHEST pt A Bloggs", "CT CHEST"),
    ("CHEST ref J. R. Hartley", "CHEST"),
    ("XR HAND Prof Moriarty", "XR HAND"),
    # Names without a title: not radiology, so dropped.
    ("CHEST Ada Lovelace", None),
    ("CHEST Wilhelmina", None),
    ("JonSmyth CHEST", None),
    # Words of the original header's names and identifiers.
    ("Smyth CHEST", "CHEST"),
    ("CHEST Jon Smyth", "CHEST"),
    ("CHEST House", "CHEST"),
    # Dates in words or digits, and times.
    ("CT CHEST 05/01/2020", "CT CHEST"),
    ("CHEST 1950-01-05", "CHEST"),
    ("CHEST 20200105", "CHEST"),
    ("CT HEAD 5 January 2020", "CT HEAD"),
    ("CHEST 05-JAN-1950", "CHEST"),
    ("CHEST Jan 5th, 2020", "CHEST"),
    ("CHEST 2019", "CHEST"),
    ("CHEST 14:05", "CHEST"),
    ("CHEST PORTABLE 2 pm", "CHEST PORTABLE"),
    ("ThoraxRoutine  8.0.0  B40f", "ThoraxRoutine B40f"),
    # Identifier-like tokens.
    ("ACC 123456 CHEST", "CHEST"),
    ("CHEST ID 7788", "CHEST"),
    ("CHEST MRN: 0012345", "CHEST"),
    ("Room 4A CXR", "CXR"),
    ("WARD B PORTABLE CHEST", "PORTABLE CHEST"),
    ("CHEST bed 12", "CHEST"),
    ("CHEST 1234567", "CHEST"),
    ("CHEST ACCESSION A12345", "CHEST"),
    ("Lung_Dx-A0002", None),
    ("CHEST 99A8812", None),
    # Not plain text, too long, several values, nothing left.
    ("CHEST\nPA", None),
    ("A" * 65, None),
    (["CHEST", "PA"], None),
    ("MRN 7788", None),
    ("   ", None),
]


def test_the_corpus_is_large_enough_to_mean_something() -> None:
    assert len(CLEAN) + len(DIRTY) >= 40


@pytest.mark.parametrize("value", CLEAN)
def test_a_clean_descriptor_is_kept_as_it_is(value: str) -> None:
    assert clean_descriptor(value, identifying_words=HEADER_WORDS) == value
    assert is_clean_descriptor(value)


@pytest.mark.parametrize(("value", "expected"), DIRTY, ids=[repr(v) for v, _ in DIRTY])
def test_a_dirty_descriptor_is_cleaned_or_dropped(value: object, expected: str | None) -> None:
    cleaned = clean_descriptor(value, identifying_words=HEADER_WORDS)
    assert cleaned == expected
    if cleaned is not None:
        # What is kept passes the same check on the way out (residual_phi relies on it).
        assert is_clean_descriptor(cleaned)
        assert clean_descriptor(cleaned) == cleaned


@pytest.mark.parametrize(("value", "expected"), DIRTY[:20], ids=[repr(v) for v, _ in DIRTY[:20]])
def test_import_de_identification_stores_the_cleaned_descriptor(
    value: str, expected: str | None
) -> None:
    ds = read_untrusted(CT_FILES[0])
    ds.PatientName = "Smyth^Jon"
    ds.PatientID = "7788"
    ds.ReferringPhysicianName = "House^Gregory"
    for keyword in ("StudyDescription", "SeriesDescription", "ProtocolName"):
        setattr(ds, keyword, value)
    out = deidentify(ds, secret=SECRET).dataset
    for keyword in ("StudyDescription", "SeriesDescription", "ProtocolName"):
        assert out.get(keyword) == expected, keyword
    assert residual_phi(out) == []
    assert residual_phi(out, original=ds) == []
