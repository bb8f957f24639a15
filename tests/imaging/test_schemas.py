"""The imaging JSONFields' schemas: what the import stores passes, a malformed frame index or
header is refused with a message naming the field and the place, never a header value."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from reviewapp.imaging import schemas
from reviewapp.imaging.models import Instance
from tests.imaging.conftest import CT_FILES, CXR_J2K, CXR_JPEG, import_files

pytestmark = pytest.mark.django_db


def _field_check(field: str, value) -> None:
    """What the admin and model forms run: the field's own validators."""
    Instance._meta.get_field(field).run_validators(value)


def test_imported_instances_indexes_and_headers_match_their_schemas(archive_dirs: Path) -> None:
    _, outcomes = import_files([CXR_JPEG, CXR_J2K, *CT_FILES[:3]])
    # A quarantined file (burned-in annotation) is stored too, with its index and header.
    assert {o.status for o in outcomes} <= {"imported", "quarantined"}
    assert Instance.objects.count() == 5
    for instance in Instance.objects.all():
        assert instance.frame_ranges
        assert instance.dicom_json
        _field_check("frame_ranges", instance.frame_ranges)
        _field_check("dicom_json", instance.dicom_json)


def test_a_malformed_frame_index_is_refused(archive_dirs: Path) -> None:
    for bad, place in (
        ([[[-1, 10]]], "0/0/0: must be at least 0"),
        ([[[0, 10, 5]]], "0/0: must have at most 2 items"),
        ([[]], "0: must have at least 1 items"),
    ):
        with pytest.raises(ValidationError) as caught:
            _field_check("frame_ranges", bad)
        assert caught.value.error_list[0].code == "invalid_frame_ranges"
        assert f"frame_ranges does not match its schema: {place}" in caught.value.messages[0]


def test_a_malformed_header_is_refused_without_repeating_its_values(archive_dirs: Path) -> None:
    name = {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}
    for bad, place in (
        ({"00100010": {"Value": ["Doe^Jane"]}}, "00100010: 'vr' is a required property"),
        ({"00100010": {**name, "Patient": "Doe^Jane"}}, "00100010: Additional properties"),
        ({"0040A730": {"vr": "SQ", "Value": ["Doe^Jane"]}}, "0040A730/Value/0: must be of"),
    ):
        with pytest.raises(ValidationError) as caught:
            schemas.dicom_json_validate(bad)
        assert caught.value.error_list[0].code == "invalid_dicom_json"
        assert f"dicom_json does not match its schema: {place}" in caught.value.messages[0]
        assert "Doe^Jane" not in caught.value.messages[0]
    with pytest.raises(ValidationError, match="must match"):
        _field_check("dicom_json", {"0010001g": name})
