"""DICOMweb routes (PS3.18), mounted at /dicomweb/."""

from __future__ import annotations

from django.urls import path, register_converter

from reviewapp.imaging.dicomweb import views


class UidConverter:
    # DICOM UIDs: digits and dots, at most 64 characters.
    regex = r"[0-9.]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class FrameListConverter:
    regex = r"[0-9]+(?:,[0-9]+)*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(UidConverter, "uid")
register_converter(FrameListConverter, "frames")

app_name = "dicomweb"

_SERIES = "studies/<uid:study_uid>/series/<uid:series_uid>"
_INSTANCE = f"{_SERIES}/instances/<uid:sop_uid>"

urlpatterns = [
    path("studies", views.StudiesView.as_view(), name="studies"),
    path("studies/<uid:study_uid>", views.StudyRetrieveView.as_view(), name="study"),
    path(
        "studies/<uid:study_uid>/metadata",
        views.StudyMetadataView.as_view(),
        name="study_metadata",
    ),
    path("series", views.AllSeriesSearchView.as_view(), name="all_series_search"),
    path("instances", views.AllInstancesSearchView.as_view(), name="all_instances_search"),
    path("studies/<uid:study_uid>/series", views.SeriesSearchView.as_view(), name="series_search"),
    path(
        "studies/<uid:study_uid>/instances",
        views.StudyInstancesSearchView.as_view(),
        name="study_instances_search",
    ),
    path(_SERIES, views.SeriesRetrieveView.as_view(), name="series"),
    path(f"{_SERIES}/metadata", views.SeriesMetadataView.as_view(), name="series_metadata"),
    path(f"{_SERIES}/first-frames", views.FirstFramesView.as_view(), name="first_frames"),
    path(f"{_SERIES}/instances", views.InstancesSearchView.as_view(), name="instances_search"),
    path(_INSTANCE, views.InstanceRetrieveView.as_view(), name="instance"),
    path(f"{_INSTANCE}/metadata", views.InstanceMetadataView.as_view(), name="instance_metadata"),
    path(f"{_INSTANCE}/frames/<frames:frames>", views.FramesView.as_view(), name="frames"),
    path(f"{_INSTANCE}/bulkdata/<str:tag>", views.BulkDataView.as_view(), name="bulkdata"),
    path(
        f"{_INSTANCE}/frames/<frames:frames>/rendered",
        views.FramesRenderedView.as_view(),
        name="frames_rendered",
    ),
    path(f"{_INSTANCE}/rendered", views.InstanceRenderedView.as_view(), name="instance_rendered"),
    path(f"{_SERIES}/rendered", views.SeriesRenderedView.as_view(), name="series_rendered"),
    path(
        "studies/<uid:study_uid>/rendered", views.StudyRenderedView.as_view(), name="study_rendered"
    ),
    path(f"{_INSTANCE}/thumbnail", views.ThumbnailView.as_view(), name="instance_thumbnail"),
    path(f"{_SERIES}/thumbnail", views.SeriesThumbnailView.as_view(), name="series_thumbnail"),
    path(
        "studies/<uid:study_uid>/thumbnail",
        views.StudyThumbnailView.as_view(),
        name="study_thumbnail",
    ),
    path("wado", views.WadoUriView.as_view(), name="wado_uri"),
]
