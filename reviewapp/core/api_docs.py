"""The API reference pages (Swagger UI and ReDoc) under the site's Content Security Policy.

drf-spectacular's own templates break under our CSP: Swagger UI's start-up script is inline
(blocked by ``script-src 'self'``, so the page stays blank), and ReDoc pulls web fonts from
Google and injects its styles as ``<style>`` elements (blocked by ``style-src 'self'``, so it
fails with "Something went wrong"). Both render here from the sidecar's self-hosted assets
with our own templates; each route widens the policy only as far as its library needs, and
every other page keeps the site's policy unchanged:

- Swagger UI: its one inline script and style carry this response's nonce.
- ReDoc: ``style-src 'unsafe-inline'`` (styled-components writes style elements at run time
  and offers no nonce hook in the standalone bundle); scripts stay ``'self'`` only.
"""

from __future__ import annotations

from csp.constants import NONCE, UNSAFE_INLINE
from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView


@method_decorator(csp_update({"script-src": [NONCE], "style-src": [NONCE]}), name="dispatch")
class ApiDocsView(SpectacularSwaggerView):
    template_name = "core/api_docs.html"


@method_decorator(csp_update({"style-src": [UNSAFE_INLINE]}), name="dispatch")
class ApiRedocView(SpectacularRedocView):
    template_name = "core/api_redoc.html"
