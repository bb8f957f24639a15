"""Reports tests import studies through the archive's own fixtures."""

from tests.imaging.conftest import (  # noqa: F401
    archive_dirs,
    imported_ct_study,
    imported_cxr_studies,
)
