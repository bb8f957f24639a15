"""QIDO-RS: match keys from the query string, and DICOM JSON results from archive rows.

Readers get results and match keys cut to the reader's allow-list (reader_view.py): a match
key is an oracle too (``StudyDescription=No*`` answering one study or none would tell the
descriptor), so the keys readers may not see are ignored for them, with the usual Warning.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from pydicom.datadict import keyword_for_tag, tag_for_keyword

from reviewapp.imaging.dicomweb.reader_view import READER_VISIBLE_JSON_KEYS, READER_VISIBLE_KEYWORDS
from reviewapp.imaging.models import Instance, Series, Study

MAX_LIMIT = 1000
CONTROL_PARAMS = frozenset({"limit", "offset", "includefield", "fuzzymatching"})


class QueryError(ValueError):
    """A query parameter cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class Query:
    filters: Q
    limit: int
    offset: int
    ignored: list[str]  # attributes the server does not match on (reported in a Warning)


Matcher = Callable[[str], Q]


def _exact_or_list(field: str) -> Matcher:
    # UID match keys may carry a comma- or backslash-separated list (PS3.18 8.3.4.1).
    def match(value: str) -> Q:
        values = [v.strip() for v in re.split(r"[,\\]", value) if v.strip()]
        return Q(**{f"{field}__in": values}) if len(values) > 1 else Q(**{field: value.strip()})

    return match


def _wildcard(field: str, *, case_insensitive: bool = False) -> Matcher:
    def match(value: str) -> Q:
        if "*" not in value and "?" not in value:
            return Q(**{f"{field}__iexact" if case_insensitive else field: value})
        pattern = "".join(
            ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in value
        )
        lookup = "iregex" if case_insensitive else "regex"
        return Q(**{f"{field}__{lookup}": f"^{pattern}$"})

    return match


def _date(field: str) -> Matcher:
    def parse(text: str) -> dt.date:
        try:
            return dt.datetime.strptime(text, "%Y%m%d").date()
        except ValueError as exc:
            raise QueryError(f'"{text}" is not a date (use YYYYMMDD or a range A-B)') from exc

    def match(value: str) -> Q:
        start, dash, end = value.strip().partition("-")
        if not dash:
            return Q(**{field: parse(start)})
        q = Q()
        if start:
            q &= Q(**{f"{field}__gte": parse(start)})
        if end:
            q &= Q(**{f"{field}__lte": parse(end)})
        return q

    return match


def _integer(field: str) -> Matcher:
    def match(value: str) -> Q:
        try:
            return Q(**{field: int(value)})
        except ValueError as exc:
            raise QueryError(f'"{value}" is not an integer') from exc

    return match


def _modality_in_study(value: str) -> Q:
    q = Q()
    for modality in re.split(r"[,\\]", value):
        if modality.strip():
            q |= Q(modalities__regex=rf"(^|\\){re.escape(modality.strip())}(\\|$)")
    return q


STUDY_KEYS: dict[str, Matcher] = {
    "StudyInstanceUID": _exact_or_list("study_instance_uid"),
    "PatientID": _wildcard("patient_pseudonym"),
    "AccessionNumber": _wildcard("accession_pseudonym"),
    "StudyDate": _date("study_date"),
    "ModalitiesInStudy": _modality_in_study,
    "StudyDescription": _wildcard("description", case_insensitive=True),
}
SERIES_KEYS: dict[str, Matcher] = {
    "SeriesInstanceUID": _exact_or_list("series_instance_uid"),
    "Modality": _exact_or_list("modality"),
    "SeriesNumber": _integer("series_number"),
    "SeriesDescription": _wildcard("description", case_insensitive=True),
    "BodyPartExamined": _wildcard("body_part", case_insensitive=True),
    "StudyInstanceUID": _exact_or_list("study__study_instance_uid"),
}
INSTANCE_KEYS: dict[str, Matcher] = {
    "SOPInstanceUID": _exact_or_list("sop_instance_uid"),
    "SOPClassUID": _exact_or_list("sop_class_uid"),
    "InstanceNumber": _integer("instance_number"),
    "SeriesInstanceUID": _exact_or_list("series__series_instance_uid"),
    "StudyInstanceUID": _exact_or_list("series__study__study_instance_uid"),
}


# Attributes of QIDO results that describe the query's answer rather than any header: the
# retrieve URL, the modalities of a study and the counts of series and instances.
_QIDO_RESULT_KEYS = frozenset({"00080061", "00081190", "00201206", "00201208", "00201209"})


def reader_match_keys(keys: dict[str, Matcher]) -> dict[str, Matcher]:
    """The match keys a reader may use: those on attributes the reader can see."""
    return {
        keyword: matcher
        for keyword, matcher in keys.items()
        if keyword in READER_VISIBLE_KEYWORDS or keyword == "ModalitiesInStudy"
    }


def reader_result(result: dict[str, Any]) -> dict[str, Any]:
    """A QIDO result as a reader receives it: no descriptor, name, id, date or time."""
    return {
        key: value
        for key, value in result.items()
        if key in READER_VISIBLE_JSON_KEYS or key in _QIDO_RESULT_KEYS
    }


def _keyword(name: str) -> str | None:
    """The DICOM keyword for a match key given as a keyword or as 8 hex digits."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        try:
            return keyword_for_tag(int(name, 16)) or None
        except (ValueError, KeyError):
            return None
    return name if tag_for_keyword(name) is not None else None


def query_parse(params: Mapping[str, list[str]], keys: dict[str, Matcher]) -> Query:
    """Turn a QIDO query string into filters; unknown attributes raise, unsupported ones are
    reported back."""
    filters = Q()
    ignored: list[str] = []
    for name, values in params.items():
        if name in CONTROL_PARAMS:
            continue
        keyword = _keyword(name)
        if keyword is None:
            raise QueryError(f'"{name}" is neither a DICOM keyword nor a tag')
        matcher = keys.get(keyword)
        if matcher is None:
            ignored.append(keyword)
            continue
        for value in values:
            if value not in ("", "*"):
                filters &= matcher(value)
    return Query(filters, _count(params, "limit", MAX_LIMIT), _count(params, "offset", 0), ignored)


def _count(params: Mapping[str, list[str]], name: str, default: int) -> int:
    values = params.get(name)
    if not values:
        return default
    try:
        number = int(values[-1])
    except ValueError as exc:
        raise QueryError(f'{name} "{values[-1]}" is not a whole number') from exc
    if number < 0:
        raise QueryError(f"{name} must not be negative")
    return min(number, MAX_LIMIT) if name == "limit" else number


def query_apply(queryset: QuerySet, query: Query) -> list[Any]:
    return list(queryset.filter(query.filters)[query.offset : query.offset + query.limit])


def _attr(vr: str, value: Any) -> dict[str, Any]:
    if value in (None, ""):
        return {"vr": vr}
    if vr == "PN":
        return {"vr": vr, "Value": [{"Alphabetic": value}]}
    if vr == "CS" and isinstance(value, str) and "\\" in value:
        return {"vr": vr, "Value": value.split("\\")}
    return {"vr": vr, "Value": [value]}


def _date_text(value: dt.date | None) -> str | None:
    return value.strftime("%Y%m%d") if value else None


def study_json(study: Study, *, retrieve_url: str) -> dict[str, Any]:
    return {
        "00080020": _attr("DA", _date_text(study.study_date)),
        "00080030": _attr("TM", study.study_time),
        "00080050": _attr("SH", study.accession_pseudonym),
        "00080061": _attr("CS", study.modalities),
        "00081030": _attr("LO", study.description),
        "00081190": _attr("UR", retrieve_url),
        "00100020": _attr("LO", study.patient_pseudonym),
        "00100040": _attr("CS", study.patient_sex),
        "0020000D": _attr("UI", study.study_instance_uid),
        "00201206": _attr("IS", getattr(study, "series_count", None)),
        "00201208": _attr("IS", getattr(study, "instance_count", None)),
    }


def series_json(series: Series, *, retrieve_url: str) -> dict[str, Any]:
    return {
        "00080060": _attr("CS", series.modality),
        "0008103E": _attr("LO", series.description),
        "00081190": _attr("UR", retrieve_url),
        "00180015": _attr("CS", series.body_part),
        "0020000D": _attr("UI", series.study.study_instance_uid),
        "0020000E": _attr("UI", series.series_instance_uid),
        "00200011": _attr("IS", series.series_number),
        "00201209": _attr("IS", getattr(series, "instance_count", None)),
    }


def instance_json(instance: Instance, *, retrieve_url: str) -> dict[str, Any]:
    return {
        "00080016": _attr("UI", instance.sop_class_uid),
        "00080018": _attr("UI", instance.sop_instance_uid),
        "00081190": _attr("UR", retrieve_url),
        "00083002": _attr("UI", instance.transfer_syntax_uid),
        "0020000D": _attr("UI", instance.series.study.study_instance_uid),
        "0020000E": _attr("UI", instance.series.series_instance_uid),
        "00200013": _attr("IS", instance.instance_number),
        "00280008": _attr("IS", instance.number_of_frames),
        "00280010": _attr("US", instance.rows),
        "00280011": _attr("US", instance.columns),
        "00280100": _attr("US", instance.bits_allocated),
    }
