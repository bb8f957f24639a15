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

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Collate
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from reviewapp.imaging.dicomweb.reader_view import READER_VISIBLE_JSON_KEYS, READER_VISIBLE_KEYWORDS
from reviewapp.imaging.models import Instance, Series, Study

MAX_LIMIT = 1000
CONTROL_PARAMS = frozenset({"limit", "offset", "includefield", "fuzzymatching"})
ONLINE = "ONLINE"


class QueryError(ValueError):
    """A query parameter cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class Query:
    filters: Q
    limit: int
    offset: int
    ignored: list[str]  # attributes the server does not match on (reported in a Warning)
    include: frozenset[str] = frozenset()  # tags (8 hex digits) asked for by includefield
    include_all: bool = False
    fuzzy: bool = False  # fuzzymatching=true: not offered, so reported in a Warning
    # The client asked for no limit or one above the server's: a full page is then the
    # server's cut, and PS3.18 wants the client told that more results exist.
    limit_is_servers: bool = True


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
        lookup = "iregex" if case_insensitive else "regex"
        return Q(**{f"{field}__{lookup}": _wildcard_pattern(value)})

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


def _time(field: str) -> Matcher:
    """TM match on a text column: a time (HH, HHMM, HHMMSS[.F]) or a range A-B, either end
    open. Compared as text in the C collation, which orders digit strings as times."""

    def parse(text: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3])([0-5]\d([0-5]\d(\.\d{1,6})?)?)?", text):
            raise QueryError(f'"{text}" is not a time (use HHMMSS, HHMM, HH or a range A-B)')
        return text

    def match(value: str) -> Q:
        start, dash, end = value.strip().replace(":", "").partition("-")
        column = Collate(F(field), "C")
        if not dash:
            # A partial time names a whole hour or minute.
            return Q(GreaterThanOrEqual(column, parse(start))) & Q(
                LessThanOrEqual(column, parse(start) + "~")
            )
        q = Q()
        if start:
            q &= Q(GreaterThanOrEqual(column, parse(start)))
        if end:
            # "~" sorts after every digit and ".": 1200 covers 12:00:00 to 12:00:59.999999.
            q &= Q(LessThanOrEqual(column, parse(end) + "~"))
        return q

    return match


def _in_any_header(instances_path: str, json_path: str) -> Callable[[str], Matcher]:
    """Match an attribute the archive keeps only in instance headers (ReferringPhysicianName):
    a row matches when one of its available instances does."""

    def for_outer(outer: str) -> Matcher:
        def match(value: str) -> Q:
            pattern = _wildcard_pattern(value)
            headers = Instance.objects.filter(
                **{instances_path: OuterRef(outer), "status": Instance.Status.AVAILABLE},
                **{f"dicom_json__{json_path}__iregex": pattern},
            )
            return Q(Exists(headers))

        return match

    return for_outer


def _wildcard_pattern(value: str) -> str:
    return (
        "^"
        + "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in value)
        + "$"
    )


def _integer(field: str) -> Matcher:
    def match(value: str) -> Q:
        try:
            return Q(**{field: int(value)})
        except ValueError as exc:
            raise QueryError(f'"{value}" is not an integer') from exc

    return match


def _modality_in_study(field: str) -> Matcher:
    def match(value: str) -> Q:
        q = Q()
        for modality in re.split(r"[,\\]", value):
            if modality.strip():
                q |= Q(**{f"{field}__regex": rf"(^|\\){re.escape(modality.strip())}(\\|$)"})
        return q

    return match


_REFERRING_PHYSICIAN = "00080090__Value__0__Alphabetic"


def study_keys(prefix: str = "") -> dict[str, Matcher]:
    """Study match keys on ``Study`` rows reached through ``prefix`` (``"study__"`` from a
    series): the study level of every search, as PS3.18 10.6.1.2 asks."""
    return {
        "StudyInstanceUID": _exact_or_list(f"{prefix}study_instance_uid"),
        # The patient's name is the pseudonym, as in every stored header.
        "PatientName": _wildcard(f"{prefix}patient_pseudonym", case_insensitive=True),
        "PatientID": _wildcard(f"{prefix}patient_pseudonym"),
        "AccessionNumber": _wildcard(f"{prefix}accession_pseudonym"),
        "StudyDate": _date(f"{prefix}study_date"),
        "StudyTime": _time(f"{prefix}study_time"),
        "ModalitiesInStudy": _modality_in_study(f"{prefix}modalities"),
        "StudyDescription": _wildcard(f"{prefix}description", case_insensitive=True),
        "ReferringPhysicianName": _in_any_header("series__study", _REFERRING_PHYSICIAN)(
            f"{prefix}pk"
        ),
    }


def series_keys(prefix: str = "") -> dict[str, Matcher]:
    return {
        "SeriesInstanceUID": _exact_or_list(f"{prefix}series_instance_uid"),
        "Modality": _exact_or_list(f"{prefix}modality"),
        "SeriesNumber": _integer(f"{prefix}series_number"),
        "SeriesDescription": _wildcard(f"{prefix}description", case_insensitive=True),
        "BodyPartExamined": _wildcard(f"{prefix}body_part", case_insensitive=True),
    }


STUDY_KEYS: dict[str, Matcher] = study_keys()
# Series of one study, and series of every study (/series), which match study keys too.
SERIES_KEYS: dict[str, Matcher] = {**study_keys("study__"), **series_keys()}
INSTANCE_KEYS: dict[str, Matcher] = {
    **study_keys("series__study__"),
    **series_keys("series__"),
    "SOPInstanceUID": _exact_or_list("sop_instance_uid"),
    "SOPClassUID": _exact_or_list("sop_class_uid"),
    "InstanceNumber": _integer("instance_number"),
}


# Attributes of QIDO results that describe the query's answer rather than any header: the
# retrieve URL, the modalities of a study and the counts of series and instances.
_QIDO_RESULT_KEYS = frozenset(
    {"00080056", "00080061", "00081190", "00201206", "00201208", "00201209"}
)


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
    include, include_all = _includefield_parse(params.get("includefield", []))
    asked_limit = params.get("limit")
    return Query(
        filters,
        _count(params, "limit", MAX_LIMIT),
        _count(params, "offset", 0),
        ignored,
        include=include,
        include_all=include_all,
        fuzzy=_boolean(params, "fuzzymatching"),
        limit_is_servers=not asked_limit or _count(params, "limit", MAX_LIMIT) == MAX_LIMIT,
    )


def _includefield_parse(values: list[str]) -> tuple[frozenset[str], bool]:
    """includefield values (repeated or comma-separated) -> (tags, whether ``all``)."""
    tags: set[str] = set()
    include_all = False
    for value in values:
        for name in (item.strip() for item in value.split(",")):
            if not name:
                continue
            if name == "all":
                include_all = True
                continue
            keyword = _keyword(name)
            if keyword is None:
                raise QueryError(f'includefield "{name}" is neither a DICOM keyword nor a tag')
            tags.add(f"{tag_for_keyword(keyword):08X}")
    return frozenset(tags), include_all


def _boolean(params: Mapping[str, list[str]], name: str) -> bool:
    values = params.get(name)
    if not values:
        return False
    if values[-1] not in ("true", "false"):
        raise QueryError(f'{name} "{values[-1]}" is neither true nor false')
    return values[-1] == "true"


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


def query_apply(queryset: QuerySet, query: Query) -> tuple[list[Any], bool]:
    """The page of rows the query asks for, and whether the server's limit cut it short."""
    rows = list(queryset.filter(query.filters)[query.offset : query.offset + query.limit + 1])
    cut = len(rows) > query.limit
    return rows[: query.limit], cut and query.limit_is_servers


def query_warnings(query: Query, *, cut: bool) -> list[str]:
    """The Warning header values of a search answer (PS3.18 QIDO-RS response)."""
    warnings = []
    if query.ignored:
        names = ", ".join(sorted(set(query.ignored)))
        warnings.append(
            f'299 radreview "The following attributes are not supported for matching: {names}"'
        )
    if query.fuzzy:
        warnings.append(
            '299 radreview "The fuzzymatching parameter is not supported. Only literal '
            'matching has been performed."'
        )
    if cut:
        warnings.append(
            '299 radreview "The number of results exceeded the maximum supported by the '
            'server. Additional results can be requested."'
        )
    return warnings


# What ``includefield=all`` adds at each level, from the header of one instance of the row:
# the attributes of the Patient and General Study modules at the study level, of the
# General Series module at the series level; at the instance level, the whole header.
_STUDY_LEVEL = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
    "StudyDescription",
    "StudyInstanceUID",
    "TimezoneOffsetFromUTC",
)
_SERIES_LEVEL = (
    "Modality",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDate",
    "SeriesTime",
    "SeriesDescription",
    "BodyPartExamined",
    "ProtocolName",
    "Laterality",
    "PatientPosition",
    "FrameOfReferenceUID",
    "Manufacturer",
    "ManufacturerModelName",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "RequestAttributesSequence",
)
# Required return attributes (PS3.18 Tables 10.6.3-3, -4, -5) that only headers hold;
# returned empty where the header has no value, as their type 2 says.
_REQUIRED_FROM_HEADER = {
    "study": ("PatientBirthDate", "ReferringPhysicianName", "StudyID", "TimezoneOffsetFromUTC"),
    "series": (
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "TimezoneOffsetFromUTC",
    ),
    "instance": ("TimezoneOffsetFromUTC",),
}
_OPTIONAL = frozenset({"TimezoneOffsetFromUTC"})  # only when the header has one


def _tag(keyword: str) -> str:
    return f"{tag_for_keyword(keyword):08X}"


_LEVEL_TAGS = {
    "study": tuple(_tag(k) for k in _STUDY_LEVEL),
    "series": tuple(_tag(k) for k in _SERIES_LEVEL),
}


def result_complete(
    result: dict[str, Any], *, header: dict[str, Any] | None, level: str, query: Query
) -> dict[str, Any]:
    """Add to a result what comes from a stored header: required attributes the archive rows
    do not hold, and what includefield asked for (keys already answered are kept)."""
    header = header or {}
    wanted = [(_tag(k), k not in _OPTIONAL) for k in _REQUIRED_FROM_HEADER[level]]
    if query.include_all:
        tags = _LEVEL_TAGS.get(level) or tuple(header)
        wanted += [(tag, False) for tag in tags]
    wanted += [(tag, True) for tag in sorted(query.include)]
    completed = dict(result)
    for tag, even_empty in wanted:
        if tag in completed:
            continue
        if tag in header:
            completed[tag] = header[tag]
        elif even_empty:
            completed[tag] = {"vr": _vr(tag)}
    return dict(sorted(completed.items()))


def _vr(tag: str) -> str:
    try:
        return str(dictionary_VR(int(tag, 16))).split(" or ")[0]
    except KeyError:
        return "UN"


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


def study_attributes(study: Study) -> dict[str, Any]:
    """The study-level attributes the archive row holds: a study's result, and the study
    part of a series or instance found across studies."""
    return {
        "00080020": _attr("DA", _date_text(study.study_date)),
        "00080030": _attr("TM", study.study_time),
        "00080050": _attr("SH", study.accession_pseudonym),
        "00080061": _attr("CS", study.modalities),
        "00081030": _attr("LO", study.description),
        # The patient's name in every stored header is the pseudonym (deid.py).
        "00100010": _attr("PN", study.patient_pseudonym),
        "00100020": _attr("LO", study.patient_pseudonym),
        "00100040": _attr("CS", study.patient_sex),
        "0020000D": _attr("UI", study.study_instance_uid),
    }


def series_attributes(series: Series) -> dict[str, Any]:
    return {
        "00080060": _attr("CS", series.modality),
        "0008103E": _attr("LO", series.description),
        "00180015": _attr("CS", series.body_part),
        "0020000D": _attr("UI", series.study.study_instance_uid),
        "0020000E": _attr("UI", series.series_instance_uid),
        "00200011": _attr("IS", series.series_number),
    }


def study_json(study: Study, *, retrieve_url: str) -> dict[str, Any]:
    return {
        **study_attributes(study),
        "00080056": _attr("CS", ONLINE),
        "00081190": _attr("UR", retrieve_url),
        "00201206": _attr("IS", getattr(study, "series_count", None)),
        "00201208": _attr("IS", getattr(study, "instance_count", None)),
    }


def series_json(series: Series, *, retrieve_url: str, with_study: bool = False) -> dict[str, Any]:
    return {
        **(study_attributes(series.study) if with_study else {}),
        **series_attributes(series),
        "00081190": _attr("UR", retrieve_url),
        "00201209": _attr("IS", getattr(series, "instance_count", None)),
    }


def instance_json(
    instance: Instance, *, retrieve_url: str, with_series: bool = False, with_study: bool = False
) -> dict[str, Any]:
    return {
        **(study_attributes(instance.series.study) if with_study else {}),
        **(series_attributes(instance.series) if with_series else {}),
        "00080016": _attr("UI", instance.sop_class_uid),
        "00080018": _attr("UI", instance.sop_instance_uid),
        "00080056": _attr("CS", ONLINE),
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
