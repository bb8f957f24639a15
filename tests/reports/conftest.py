"""Reports tests import studies through the archive's own fixtures."""

from tests.imaging.conftest import (  # noqa: F401
    imported_ct_study,
    imported_cxr_studies,
)
