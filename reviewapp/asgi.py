"""ASGI entry point: HTTP through Django on a pool of threads (see core.http_threads), with the
frames fast path in front; websockets through Channels with the session user and an Origin
check against ALLOWED_HOSTS (a page on another site cannot open our sockets)."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
django.setup(set_prefix=False)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from reviewapp.core.body_limits import BodyLimitMiddleware  # noqa: E402
from reviewapp.core.http_threads import ThreadedWSGI  # noqa: E402
from reviewapp.imaging.dicomweb.fastpath import FramesFastPath  # noqa: E402
from reviewapp.routing import websocket_urlpatterns  # noqa: E402

django_http = ThreadedWSGI(WSGIHandler(), threads=settings.WEB_THREADS)

application = ProtocolTypeRouter(
    {
        # Frame requests already authorised moments ago skip the Django stack (see fastpath).
        # Body limits first: nothing behind them reads a byte of a body over its limit.
        "http": BodyLimitMiddleware(FramesFastPath(django_http)),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# Whatever is loaded by now lives as long as the process. Importing every view now (the URL
# patterns) and then freezing takes those ~290k objects out of the collector's sight: a full
# collection walked them all, 150 ms alone and 200-350 ms under load, with every request of
# the worker waiting behind it (the readers benchmark's slowest requests came in such bursts).
get_resolver().url_patterns  # noqa: B018 (the import is the point)
gc.freeze()
