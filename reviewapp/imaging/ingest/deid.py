"""De-identification on import: DICOM PS3.15 Annex E.

Profile: the Basic Application Level Confidentiality Profile with the Retain Patient
Characteristics, Clean Descriptors and Retain Longitudinal Temporal Information with Modified
Dates options. The per-attribute action codes (D, Z, X, U, Z/D, X/Z, X/D, X/Z/D, X/Z/U*) are
the standard's Table E.1-1 as shipped by ``dicom-anonymizer`` (release 2026c of the standard);
this module applies them with rules of its own where that library falls short for us (it walks
only the top level, remaps UIDs at random and blanks dates). ``dicognito`` was not chosen:
it randomises per run and works from heuristics by VR, not from the standard's table;
``deid`` works from recipes of its own and is built for pixel-cleaning pipelines.

How each action is carried out, and the decisions behind it:

* Every action applies at every nesting depth: the walk visits each sequence item.
* UIDs: every UI value anywhere, except well-known UIDs from the standard's registry (SOP
  classes, transfer syntaxes, coding schemes) and SOP Class UID attributes, becomes
  ``2.25.<int>`` from an HMAC-SHA256 keyed with the installation's secret. The same source
  UID always maps to the same output, so two batches of one study land in one study, and
  nobody without the secret can link output UIDs to source UIDs.
* Patient ID and Patient's Name become ``P-<16 hex>``, keyed from the original Patient ID;
  Accession Number becomes ``A<15 hex>`` (SH allows 16 characters), empty stays empty. A file
  with no Patient ID is keyed by its StudyInstanceUID so unrelated anonymous studies do not
  collapse into one pseudonymous patient.
* Dates (DA and the date part of DT, at any depth) are shifted back by 1 to 365 whole days,
  derived from the keyed hash of the patient key, so every date of one patient moves by the
  same amount and intervals between studies survive. Birth date and time are emptied (age
  is kept). A date that cannot be parsed is emptied. Times of day (TM, the time part of DT)
  are kept: the shift is whole days, so times alone identify nobody, and readers need them
  to order acquisitions.
* Retain Patient Characteristics: sex, age, size, weight, pregnancy and smoking status and
  sex neutered are kept. Ethnic group and the free-text clinical fields the option "cleans"
  (allergies, medical alerts, history) are removed: cleaning free text is not reliable.
* Clean Descriptors: Study, Series, Protocol, Requested and Performed Procedure
  descriptions are cleaned by the rule in ``descriptors.py``: names, dates, times and
  identifiers (and any word of the original's names and identifiers) are removed, and when
  in doubt (a word that is not radiology vocabulary, nothing left, odd characters, over 64
  characters) the descriptor is removed whole. Every other descriptor and all free text
  (LT, ST, UT) is removed: free text can carry the original report, which would also break
  blinding. Readers never receive descriptors at all (``dicomweb/reader_view.py``).
* Stricter than the table: all private elements (and their creators), group lengths,
  trailing padding, whole overlay groups, elements of unknown VR (UN) and the preamble
  are dropped; every person name not otherwise handled is emptied; D and Z actions on
  sequences empty the sequence.
* The file meta is rebuilt, and Patient Identity Removed, De-identification Method (and its
  code sequence) and Longitudinal Temporal Information Modified are set.

``residual_phi`` re-applies these rules as checks on the output, at any depth; the import
refuses a file for which it reports anything.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pydicom
from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from pydicom._uid_dict import UID_dictionary
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID
from pydicom.valuerep import PersonName

from reviewapp.imaging.ingest.descriptors import clean_descriptor, is_clean_descriptor
from reviewapp.imaging.ingest.dicom_safety import (
    MAX_SEQUENCE_DEPTH,
    UnsafeDicomError,
    quiet_pydicom,
)

STANDARD_EDITION = "dicomfields_2026c"
_CATEGORY_CODES = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}


def _load_table() -> tuple[dict[int, str], list[tuple[int, int, int, int, str]]]:
    table = dicom_anonymization_database_selector(STANDARD_EDITION)
    exact: dict[int, str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for category, code in _CATEGORY_CODES.items():
        for entry in table[category]:
            if len(entry) == 2:
                exact[entry[0] << 16 | entry[1]] = code
            else:
                group, element, group_mask, element_mask = entry
                masked.append((group, element, group_mask, element_mask, code))
    return exact, masked


BASIC_PROFILE, _MASKED_ACTIONS = _load_table()

RETAINED_PATIENT_CHARACTERISTICS = frozenset(
    {
        "PatientSex",
        "PatientAge",
        "PatientSize",
        "PatientWeight",
        "PregnancyStatus",
        "SmokingStatus",
        "PatientSexNeutered",
    }
)
CLEANED_DESCRIPTORS = frozenset(
    {
        "StudyDescription",
        "SeriesDescription",
        "ProtocolName",
        "RequestedProcedureDescription",
        "PerformedProcedureStepDescription",
    }
)
KEPT_UID_KEYWORDS = frozenset(
    {
        "SOPClassUID",
        "ReferencedSOPClassUID",
        "MediaStorageSOPClassUID",
        "TransferSyntaxUID",
        "ReferencedSOPClassUIDInFile",
        "ReferencedTransferSyntaxUIDInFile",
        "AffectedSOPClassUID",
        "RequestedSOPClassUID",
        "ImplementationClassUID",
    }
)
_BIRTH_KEYWORDS = frozenset({"PatientBirthDate", "PatientBirthTime", "PatientBirthDateTime"})
_FREE_TEXT_VRS = frozenset({"LT", "ST", "UT"})
_STRING_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT", "AS"})
_NUMBER_STRING_VRS = frozenset({"DS", "IS"})
_BINARY_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"})
_BYTES_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_TEXT_VRS = frozenset({"AE", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT", "UI", "OB", "UN"})
DUMMY = "REMOVED"

PATIENT_PSEUDONYM = re.compile(r"^P-[0-9A-F]{16}$")
ACCESSION_PSEUDONYM = re.compile(r"^A[0-9A-F]{15}$")
_WORD = re.compile(r"[A-Za-z0-9]+")
# Attributes whose words must not reappear in a kept descriptor.
_IDENTIFYING_KEYWORDS = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "AccessionNumber",
    "StudyID",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "PatientAddress",
    "PhysiciansOfRecord",
    "ScheduledPerformingPhysicianName",
)

DEIDENTIFICATION_METHOD = [
    "PS3.15 E.1 Basic Profile",
    "Retain Patient Characteristics",
    "Clean Descriptors",
    "Modified Dates",
    "radreview",
]
DEIDENTIFICATION_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113108", "Retain Patient Characteristics Option"),
    ("113105", "Clean Descriptors Option"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
)
_ADDED_BY_US = frozenset(
    {
        "PatientIdentityRemoved",
        "DeidentificationMethod",
        "DeidentificationMethodCodeSequence",
        "LongitudinalTemporalInformationModified",
    }
)


@dataclass(frozen=True)
class DeidResult:
    dataset: Dataset  # the de-identified copy
    original_patient_id: str
    original_accession: str
    original_study_uid: str
    patient_pseudonym: str
    accession_pseudonym: str
    date_shift_days: int


def installation_secret() -> bytes:
    """Return the per-installation de-identification key (settings.RADREVIEW_DEID_SECRET)."""
    secret = settings.RADREVIEW_DEID_SECRET
    if not secret:
        raise ImproperlyConfigured("RADREVIEW_DEID_SECRET must be set to de-identify images")
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def _digest(secret: bytes, purpose: bytes, value: str) -> bytes:
    # The purpose prefix keeps the UID, patient, accession and date-shift hashes of one value
    # unrelated to each other.
    return hmac.new(secret, purpose + b"\x00" + value.encode("utf-8"), hashlib.sha256).digest()


def pseudonymize_uid(uid: str, *, secret: bytes) -> str:
    """Map a UID to ``2.25.<int>`` with a keyed hash: stable, unlinkable without the key."""
    # 128 bits, as PS3.5 B.2 expects of a UUID-derived UID; at most 39 digits, so the result
    # stays within the 64-character UI limit.
    number = int.from_bytes(_digest(secret, b"uid", uid.strip())[:16], "big")
    return f"2.25.{number}"


def patient_pseudonym(patient_key: str, *, secret: bytes) -> str:
    """Return the pseudonymous Patient ID for a patient key."""
    return "P-" + _digest(secret, b"patient", patient_key)[:8].hex().upper()


def accession_pseudonym(accession: str, *, secret: bytes) -> str:
    """Return the pseudonymous Accession Number ("" for none)."""
    if not accession:
        return ""
    return "A" + _digest(secret, b"accession", accession).hex().upper()[:15]


def date_shift_days(patient_key: str, *, secret: bytes) -> int:
    """Return the patient's date shift: -365 to -1 days."""
    return -(int.from_bytes(_digest(secret, b"dateshift", patient_key)[:4], "big") % 365 + 1)


def _patient_key(ds: Dataset) -> str:
    patient_id = str(ds.get("PatientID", "") or "").strip()
    if patient_id:
        return "id:" + patient_id
    return "study:" + str(ds.get("StudyInstanceUID", "") or "").strip()


def action_for(tag: int) -> str | None:
    """Return the Annex E basic profile action code for ``tag``, or None if not listed."""
    code = BASIC_PROFILE.get(tag)
    if code is not None:
        return code
    group, element = tag >> 16, tag & 0xFFFF
    for want_group, want_element, group_mask, element_mask, masked_code in _MASKED_ACTIONS:
        if group & group_mask == want_group & group_mask and (
            element & element_mask == want_element & element_mask
        ):
            return masked_code
    return None


def _is_kept_uid(keyword: str, value: str) -> bool:
    # A dictionary lookup, not UID(value): constructing a UID validates it and logs the value.
    return keyword in KEPT_UID_KEYWORDS or value in UID_dictionary


def _identifying_words(ds: Dataset) -> frozenset[str]:
    words: set[str] = set()
    for keyword in _IDENTIFYING_KEYWORDS:
        value = ds.get(keyword)
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            words.update(w.lower() for w in _WORD.findall(str(item)) if len(w) >= 3)
    return frozenset(words)


def _shift_date(value: str, days: int) -> str:
    return (dt.datetime.strptime(value, "%Y%m%d").date() + dt.timedelta(days=days)).strftime(
        "%Y%m%d"
    )


def _shift_value(value: str, vr: str, days: int) -> str:
    value = value.strip()
    if not value:
        return ""
    if vr == "DA":
        return _shift_date(value, days)
    # DT: YYYYMMDD is required to shift; the time and offset that follow are kept.
    return _shift_date(value[:8], days) + value[8:]


def _shift_element(elem: DataElement, days: int) -> None:
    raw = elem.value
    values = [raw] if raw is None or isinstance(raw, str | bytes) else list(raw)
    try:
        shifted = [_shift_value(str(v), elem.VR, days) for v in values]
    except ValueError:
        # A date we cannot read is one we cannot shift: drop it rather than keep it.
        elem.value = ""
        return
    shifted = [v for v in shifted if v]
    elem.value = shifted[0] if len(shifted) == 1 else (shifted or "")


def _empty(elem: DataElement) -> None:
    if elem.VR == "SQ":
        elem.value = Sequence()
    elif elem.VR in _BYTES_VRS:
        elem.value = b""
    elif elem.VR in _BINARY_NUMBER_VRS:
        elem.value = None
    else:
        elem.value = ""


def _dummy(elem: DataElement) -> None:
    if elem.VR in _STRING_VRS and elem.VR not in ("AS", "UR"):
        elem.value = DUMMY
    elif elem.VR in _NUMBER_STRING_VRS:
        elem.value = "0"
    elif elem.VR in _BINARY_NUMBER_VRS:
        elem.value = 0
    else:
        _empty(elem)


def _remap_uids(elem: DataElement, secret: bytes) -> None:
    raw = elem.value
    if raw is None or raw == "":
        return
    if isinstance(raw, str):
        elem.value = (
            raw if _is_kept_uid(elem.keyword, raw) else pseudonymize_uid(raw, secret=secret)
        )
        return
    elem.value = [
        v if _is_kept_uid(elem.keyword, str(v)) else pseudonymize_uid(str(v), secret=secret)
        for v in raw
    ]


@dataclass
class _Context:
    secret: bytes
    days: int
    patient: str
    identifying_words: frozenset[str]


def _iter_datasets(ds: Dataset) -> Iterator[tuple[Dataset, str, int]]:
    """Yield every data set (the root and each sequence item) without recursion."""
    stack: list[tuple[Dataset, str, int]] = [(ds, "", 0)]
    while stack:
        current, path, depth = stack.pop()
        if depth > MAX_SEQUENCE_DEPTH:
            raise UnsafeDicomError(f"sequences nested more than {MAX_SEQUENCE_DEPTH} deep")
        yield current, path, depth
        for elem in current:
            if elem.VR == "SQ" and elem.value:
                for index, item in enumerate(elem.value):
                    stack.append((item, f"{path}{elem.keyword or elem.tag}[{index}].", depth + 1))


def _always_removed(elem: DataElement) -> bool:
    """Private elements, group lengths, trailing padding, overlays (the profile removes their
    data, and an overlay without data is malformed), elements of unknown VR (no one can
    say what they hold) and command, meta and directory groups, which have no place in a
    stored data set."""
    tag = elem.tag
    return (
        tag.is_private
        or tag.element == 0
        or tag.group in (0x0000, 0x0002, 0x0004)
        or int(tag) == 0xFFFCFFFC
        or (0x6000 <= tag.group <= 0x60FF)
        or elem.VR == "UN"
    )


def _deidentify_element(parent: Dataset, elem: DataElement, ctx: _Context) -> None:
    tag = int(elem.tag)
    keyword = elem.keyword
    if _always_removed(elem):
        del parent[elem.tag]
        return
    if keyword in RETAINED_PATIENT_CHARACTERISTICS or keyword in _ADDED_BY_US:
        return
    if keyword in CLEANED_DESCRIPTORS:
        cleaned = clean_descriptor(elem.value, identifying_words=ctx.identifying_words)
        if cleaned is None:
            del parent[elem.tag]
        else:
            elem.value = cleaned
        return
    if keyword in ("PatientID", "PatientName"):
        elem.value = ctx.patient
        return
    if keyword == "AccessionNumber":
        elem.value = accession_pseudonym(str(elem.value or "").strip(), secret=ctx.secret)
        return
    action = action_for(tag)
    if keyword in _BIRTH_KEYWORDS:
        _empty(elem)
        return
    if elem.VR in ("DA", "DT"):
        _shift_element(elem, ctx.days)
        return
    if elem.VR == "TM" and action is not None:
        return
    if elem.VR == "UI":
        if action == "X":
            del parent[elem.tag]
        else:
            _remap_uids(elem, ctx.secret)
        return
    if action == "X":
        del parent[elem.tag]
    elif action in ("Z", "X/Z"):
        _empty(elem)
    elif action in ("D", "Z/D", "X/D", "X/Z/D"):
        _dummy(elem)
    elif action is None:
        if elem.VR in _FREE_TEXT_VRS:
            del parent[elem.tag]
        elif elem.VR == "PN":
            _empty(elem)
    # "U" is handled with all UIDs above; "X/Z/U*" keeps the sequence, whose items the walk
    # de-identifies like any other data set.


def _add_method(ds: Dataset) -> None:
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
    codes = Sequence()
    for value, meaning in DEIDENTIFICATION_CODES:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = codes
    ds.LongitudinalTemporalInformationModified = "MODIFIED"


def _check_depth(ds: Dataset) -> None:
    for _ in _iter_datasets(ds):
        pass


@quiet_pydicom()
def deidentify(ds: Dataset, *, secret: bytes) -> DeidResult:
    """Return a de-identified copy of ``ds`` and the identifiers it replaced."""
    if not secret:
        raise ValueError("a de-identification secret is required")
    _check_depth(ds)  # before deepcopy, which recurses
    original_patient_id = str(ds.get("PatientID", "") or "").strip()
    original_accession = str(ds.get("AccessionNumber", "") or "").strip()
    original_study_uid = str(ds.get("StudyInstanceUID", "") or "").strip()
    key = _patient_key(ds)
    ctx = _Context(
        secret=secret,
        days=date_shift_days(key, secret=secret),
        patient=patient_pseudonym(key, secret=secret),
        identifying_words=_identifying_words(ds),
    )
    out = copy.deepcopy(ds)
    for current, _path, _depth in _iter_datasets(out):
        for elem in list(current):
            _deidentify_element(current, elem, ctx)
    if "PatientID" not in out:
        out.PatientID = ctx.patient
    _add_method(out)
    transfer_syntax = None
    if getattr(ds, "file_meta", None) is not None:
        transfer_syntax = ds.file_meta.get("TransferSyntaxUID")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = out.get("SOPClassUID", "")
    meta.MediaStorageSOPInstanceUID = out.get("SOPInstanceUID", "")
    if transfer_syntax:
        meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    out.file_meta = meta
    out.preamble = b"\x00" * 128
    return DeidResult(
        dataset=out,
        original_patient_id=original_patient_id,
        original_accession=original_accession,
        original_study_uid=original_study_uid,
        patient_pseudonym=ctx.patient,
        accession_pseudonym=accession_pseudonym(original_accession, secret=secret),
        date_shift_days=ctx.days,
    )


def _is_empty(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bytes):
        return not value.strip(b"\x00 ")
    if isinstance(value, str | PersonName):
        return not str(value).strip()
    if isinstance(value, list | tuple | Sequence):
        return all(_is_empty(v) for v in value)
    return False


def _element_residue(elem: DataElement) -> bool:
    """Whether ``elem`` (already in a de-identified data set) still looks identifying."""
    tag = int(elem.tag)
    keyword = elem.keyword
    value = elem.value
    if _always_removed(elem):
        return True
    if keyword in RETAINED_PATIENT_CHARACTERISTICS or keyword in _ADDED_BY_US:
        return False
    if keyword in CLEANED_DESCRIPTORS:
        return not is_clean_descriptor(value)
    if keyword in ("PatientID", "PatientName"):
        return not (_is_empty(value) or PATIENT_PSEUDONYM.match(str(value)))
    if keyword == "AccessionNumber":
        return not (_is_empty(value) or ACCESSION_PSEUDONYM.match(str(value)))
    if keyword in _BIRTH_KEYWORDS:
        return not _is_empty(value)
    action = action_for(tag)
    if elem.VR in ("DA", "DT"):
        return False  # shifted; only a comparison with the original can tell (see tests)
    if elem.VR == "TM" and action is not None:
        return False
    if elem.VR == "UI":
        if action == "X":
            return True
        values = [value] if isinstance(value, str) else list(value or [])
        return any(
            str(v) and not str(v).startswith("2.25.") and not _is_kept_uid(keyword, str(v))
            for v in values
        )
    if action == "X":
        return True
    if action in ("Z", "X/Z"):
        return not _is_empty(value)
    if action in ("D", "Z/D", "X/D", "X/Z/D"):
        return not (_is_empty(value) or value in (DUMMY, "0", 0))
    if action is None:
        return elem.VR in _FREE_TEXT_VRS or (elem.VR == "PN" and not _is_empty(value))
    return False


def _original_identifiers(original: Dataset) -> tuple[frozenset[str], frozenset[str]]:
    """Patient identity strings and replaceable UIDs of ``original``, to look for in output."""
    texts: set[str] = set()
    uids: set[str] = set()
    for current, _path, _depth in _iter_datasets(original):
        for elem in current:
            if elem.VR == "UI":
                values = [elem.value] if isinstance(elem.value, str) else list(elem.value or [])
                uids.update(str(v) for v in values if v and not _is_kept_uid(elem.keyword, v))
                continue
            is_identity = (
                elem.tag.group == 0x0010 and elem.keyword not in RETAINED_PATIENT_CHARACTERISTICS
            ) or elem.keyword in ("AccessionNumber", "OtherPatientIDs", "IssuerOfPatientID")
            if not is_identity or elem.VR not in _STRING_VRS | {"DA", "DT"}:
                continue
            values = [elem.value] if not isinstance(elem.value, list) else elem.value
            for value in values:
                text = str(value or "").strip()
                if elem.VR == "PN":
                    # Each name component alone (family, given) is as identifying as the whole.
                    texts.update(p.strip() for p in re.split(r"[\^=]", text) if len(p.strip()) >= 3)
                if len(text) >= 3:
                    texts.add(text)
    return frozenset(texts), frozenset(uids)


def _leaks(elem: DataElement, texts: frozenset[str], uids: frozenset[str]) -> bool:
    value = elem.value
    # Numbers, coded strings and pixels cannot carry a name or an identifier in a form a
    # string comparison could find; comparing them would only refuse good files.
    if value is None or elem.VR not in _TEXT_VRS or int(elem.tag) >> 16 == 0x7FE0:
        return False
    values = list(value) if isinstance(value, list | tuple) else [value]
    for item in values:
        if elem.VR == "UI":
            if str(item) in uids:
                return True
            continue
        if isinstance(item, bytes):
            if any(t.encode("utf-8", "ignore") in item for t in texts if len(t) >= 6):
                return True
            continue
        text = str(item)
        if text.strip() in texts or any(t in text for t in texts if len(t) >= 6):
            return True
        # Short names count as whole words only ("Doe" in "Jane Doe", not in "Doesn't").
        if {w.lower() for w in _WORD.findall(text)} & {t.lower() for t in texts if len(t) < 6}:
            return True
    return False


@quiet_pydicom()
def residual_phi(ds: Dataset, *, original: Dataset | None = None) -> list[str]:
    """Keywords of identifying attributes still present anywhere in ``ds`` (should be []).

    Without ``original`` the check is by rule (what the profile leaves in each attribute).
    With the data set ``ds`` was made from, it also looks everywhere in ``ds`` (any attribute,
    any depth, binary values too) for the original's patient identity and replaceable UIDs.
    """
    found: list[str] = []
    texts: frozenset[str] = frozenset()
    uids: frozenset[str] = frozenset()
    try:
        if original is not None:
            texts, uids = _original_identifiers(original)
        for current, path, _depth in _iter_datasets(ds):
            for elem in current:
                if _element_residue(elem) or _leaks(elem, texts, uids):
                    name = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
                    found.append(path + name)
    except UnsafeDicomError as exc:
        found.append(exc.reason)
    if getattr(ds, "preamble", None) and any(ds.preamble):
        found.append("preamble")
    return found


@quiet_pydicom()
def dataset_to_bytes(ds: Dataset) -> bytes:
    """Serialise a de-identified data set as a Part 10 file, or raise UnsafeDicomError."""
    buffer = io.BytesIO()
    try:
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    except Exception as exc:
        # Values pydicom accepted on reading may still be unwritable (hostile input that got
        # this far): refuse the file rather than fail the import.
        raise UnsafeDicomError(
            f"cannot write the de-identified file ({type(exc).__name__})"
        ) from exc
    return buffer.getvalue()
