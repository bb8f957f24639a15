"""Reads behind DICOMweb, each with the permission check built in.

Readers see only the studies of their assignments; a study they may not see is reported as
missing (404), never as forbidden, so its existence is not revealed. Of a header, readers get
only the attributes display needs (reader_view.py); coordinators, analysts and admins get the
full de-identified header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet, TextField
from django.db.models.functions import Cast

from reviewapp.imaging.dicomweb.reader_view import reader_json_text
from reviewapp.imaging.models import Instance, Series, Study
from reviewapp.imaging.selectors import dicom_header_is_full_for, studies_visible_to

AVAILABLE = Instance.Status.AVAILABLE
User = AbstractBaseUser | AnonymousUser


@dataclass(frozen=True)
class FrameSource:
    file_name: str  # storage name of the stored file
    transfer_syntax_uid: str
    frame_ranges: list[list[list[int]]]


def _restrict(queryset: QuerySet, *, user: User, study_path: str) -> QuerySet:
    # One rule for who sees which study, shared with every other interface to the archive.
    visible = studies_visible_to(user=user)
    return queryset.filter(**{f"{study_path}__in": visible.values("pk")})


def dicomweb_header_is_full(*, user: User) -> bool:
    """Whether ``user`` gets full headers (staff) or the reader's view of them."""
    return dicom_header_is_full_for(user=user)


def dicomweb_studies(*, user: User) -> QuerySet[Study]:
    """Studies ``user`` may search, with their available series and instance counts."""
    studies = Study.objects.annotate(
        series_count=Count("series", filter=Q(series__instances__status=AVAILABLE), distinct=True),
        instance_count=Count("series__instances", filter=Q(series__instances__status=AVAILABLE)),
    ).order_by("id")
    return _restrict(studies, user=user, study_path="pk")


def dicomweb_series(*, user: User, study_uid: str | None) -> QuerySet[Series]:
    """Series ``user`` may search (of one study, or of all visible studies)."""
    series = Series.objects.select_related("study").annotate(
        instance_count=Count("instances", filter=Q(instances__status=AVAILABLE))
    )
    if study_uid is not None:
        series = series.filter(study__study_instance_uid=study_uid)
    return _restrict(series, user=user, study_path="study").order_by(
        "study_id", "series_number", "id"
    )


def dicomweb_instances(
    *,
    user: User,
    study_uid: str | None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> QuerySet[Instance]:
    """Available instances ``user`` may see, narrowed to a study, series or one instance."""
    instances = Instance.objects.filter(status=AVAILABLE).select_related("series__study")
    if study_uid is not None:
        instances = instances.filter(series__study__study_instance_uid=study_uid)
    if series_uid is not None:
        instances = instances.filter(series__series_instance_uid=series_uid)
    if sop_uid is not None:
        instances = instances.filter(sop_instance_uid=sop_uid)
    return _restrict(instances, user=user, study_path="series__study").order_by(
        "series__study_id",
        "series__series_number",
        "series_id",
        "position",
        "instance_number",
        "id",
    )


def dicomweb_headers(*, rows: list[Study] | list[Series]) -> dict[int, dict[str, Any]]:
    """The stored header of one available instance of each study or series in ``rows`` (rows
    a selector above returned), by row id: where the attributes of a search result that the
    archive rows do not hold are read from, in one query."""
    if not rows:
        return {}
    group = "series__study_id" if isinstance(rows[0], Study) else "series_id"
    headers = (
        Instance.objects.filter(status=AVAILABLE, **{f"{group}__in": [row.pk for row in rows]})
        .order_by(group, "id")
        .distinct(group)
        .values_list(group, "dicom_json")
    )
    return dict(headers)


def dicomweb_representative_instance(
    *, user: User, study_uid: str, series_uid: str | None, sop_uid: str | None
) -> Instance | None:
    """The instance whose image stands for a study, series or instance (its thumbnail): the
    middle instance of the series (of the study's first series); None if nothing visible."""
    instances = dicomweb_instances(
        user=user, study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid
    )
    if series_uid is None:
        first = instances.values_list("series_id", flat=True).first()
        if first is None:
            return None
        instances = instances.filter(series_id=first)
    count = instances.count()
    return instances[count // 2] if count else None


@dataclass(frozen=True)
class MetadataRow:
    sop_uid: str
    stamp: str  # changes whenever the stored header does
    json_text: str  # DICOM JSON object of the instance, as this user may see it
    series_uid: str
    study_uid: str
    transfer_syntax_uid: str


def dicomweb_metadata(
    *, user: User, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> list[MetadataRow]:
    """The DICOM JSON of each visible instance: the full header for staff, the reader's view
    (reader_view.py) for everyone else.

    Staff get the database's text, sent without decoding and encoding.
    """
    rows = (
        dicomweb_instances(user=user, study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid)
        .select_related(None)
        .annotate(json_text=Cast("dicom_json", TextField()))
        .values_list(
            "sop_instance_uid",
            "updated_at",
            "json_text",
            "series__series_instance_uid",
            "series__study__study_instance_uid",
            "transfer_syntax_uid",
        )
    )
    shown = (lambda text: text) if dicom_header_is_full_for(user=user) else reader_json_text
    return [
        MetadataRow(sop, updated.isoformat(), shown(text), series, study, syntax)
        for sop, updated, text, series, study, syntax in rows
    ]


def frame_source_get(
    *, user: User, study_uid: str, series_uid: str, sop_uid: str
) -> FrameSource | None:
    """Where the frames of one visible instance lie, in one indexed query; None if not visible."""
    return frame_sources_get(
        user=user, study_uid=study_uid, series_uid=series_uid, sop_uids=[sop_uid]
    ).get(sop_uid)


def frame_sources_get(
    *, user: User, study_uid: str, series_uid: str, sop_uids: list[str]
) -> dict[str, FrameSource]:
    """Where the frames of each visible instance of ``sop_uids`` lie, by SOP Instance UID, in
    one query; the instances not visible (or not in that series) are left out."""
    rows = (
        _restrict(
            Instance.objects.filter(
                sop_instance_uid__in=sop_uids,
                series__series_instance_uid=series_uid,
                series__study__study_instance_uid=study_uid,
                status=AVAILABLE,
            ),
            user=user,
            study_path="series__study",
        )
        .order_by()
        .values_list("sop_instance_uid", "file", "transfer_syntax_uid", "frame_ranges")
    )
    return {sop: FrameSource(name, syntax, ranges) for sop, name, syntax, ranges in rows}
