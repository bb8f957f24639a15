from django.urls import path

from reviewapp.studies import api

urlpatterns = [
    path("protocol-templates", api.ProtocolTemplatesApi.as_view(), name="protocol-templates"),
    path("reader-studies", api.ReaderStudyListApi.as_view(), name="reader-studies"),
    path("reader-studies/<str:study_id>", api.ReaderStudyDetailApi.as_view(), name="reader-study"),
    path("reader-studies/<str:study_id>/cases", api.CasesApi.as_view(), name="reader-study-cases"),
    path(
        "reader-studies/<str:study_id>/cases/<str:case_id>/practice",
        api.CasePracticeApi.as_view(),
        name="reader-study-case-practice",
    ),
    path(
        "reader-studies/<str:study_id>/cases/<str:case_id>/reference",
        api.CaseReferenceApi.as_view(),
        name="reader-study-case-reference",
    ),
    path("reader-studies/<str:study_id>/panel", api.PanelApi.as_view(), name="reader-study-panel"),
    path("reader-studies/<str:study_id>/arms", api.ArmsApi.as_view(), name="reader-study-arms"),
    path(
        "reader-studies/<str:study_id>/assignments",
        api.AssignmentsApi.as_view(),
        name="reader-study-assignments",
    ),
    path(
        "reader-studies/<str:study_id>/status",
        api.StudyStatusApi.as_view(),
        name="reader-study-status",
    ),
    path(
        "reader-studies/<str:study_id>/refresh-reports",
        api.RefreshReportsApi.as_view(),
        name="reader-study-refresh-reports",
    ),
    path(
        "reader-studies/<str:study_id>/steps",
        api.SetupStepsApi.as_view(),
        name="reader-study-steps",
    ),
    path(
        "reader-studies/<str:study_id>/blinding",
        api.BlindingApi.as_view(),
        name="reader-study-blinding",
    ),
    path(
        "reader-studies/<str:study_id>/blinding/acknowledgement",
        api.BlindingAcknowledgementApi.as_view(),
        name="reader-study-blinding-acknowledgement",
    ),
    path(
        "reader-studies/<str:study_id>/progress",
        api.ProgressApi.as_view(),
        name="reader-study-progress",
    ),
    path(
        "reader-studies/<str:study_id>/ratings/<str:assignment_id>/history",
        api.StudyRatingHistoryApi.as_view(),
        name="reader-study-rating-history",
    ),
    path("my/worklist", api.WorklistApi.as_view(), name="my-worklist"),
    path("my/assignments", api.MyAssignmentsApi.as_view(), name="my-assignments"),
    path("my/assignments/<str:assignment_id>", api.MyAssignmentApi.as_view(), name="my-assignment"),
    path("my/assignments/<str:assignment_id>/draft", api.DraftApi.as_view(), name="my-draft"),
    path("my/assignments/<str:assignment_id>/rating", api.MyRatingApi.as_view(), name="my-rating"),
    path(
        "my/assignments/<str:assignment_id>/rating/history",
        api.MyRatingHistoryApi.as_view(),
        name="my-rating-history",
    ),
]
