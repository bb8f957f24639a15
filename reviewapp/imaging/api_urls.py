from django.urls import path

from reviewapp.imaging import api

urlpatterns = [
    path("studies", api.StudyListApi.as_view(), name="api-study-list"),
    path("studies/<uuid:public_id>", api.StudyDetailApi.as_view(), name="api-study-detail"),
    path("import-batches", api.ImportBatchCreateApi.as_view(), name="api-import-batch-create"),
    path("dataset-imports", api.DatasetImportCreateApi.as_view(), name="api-dataset-import-create"),
    path(
        "import-batches/<uuid:public_id>",
        api.ImportBatchDetailApi.as_view(),
        name="api-import-batch-detail",
    ),
]
