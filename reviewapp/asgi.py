"""ASGI entry point, served by uvicorn (``runner.web_command``; tests serve it the same way).

- HTTP: body limits first (core.body_limits), then a stop for streams whose client went away
  (core.disconnect), then Django's own WSGI handler through a2wsgi, a maintained
  WSGI-to-ASGI bridge that runs each request start to finish in one thread of a fixed pool
  and streams the body to Django as Django reads it. Django's ASGI handler was the other
  choice: it spools the whole body before dispatch and hops between the loop and a thread
  for every middleware hook (docs/decisions/0001-serving.md).
- websockets: Channels with the session user and an Origin check on scheme, host and port.
"""

import gc
import os
from concurrent.futures import ThreadPoolExecutor

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
django.setup(set_prefix=False)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from reviewapp.core.body_limits import BodyLimitMiddleware  # noqa: E402
from reviewapp.core.disconnect import DisconnectWatch, StopWhenClientGone  # noqa: E402
from reviewapp.core.events import thread_loop_keep  # noqa: E402
from reviewapp.core.websocket import OriginValidator  # noqa: E402
from reviewapp.core.wsgi_send import WSGIBridge  # noqa: E402
from reviewapp.routing import websocket_urlpatterns  # noqa: E402

# A Django response is an iterable of bytes, which its stubs do not say.
# A streamed response stops when its client goes away (core/disconnect.py).
django_http = WSGIBridge(
    StopWhenClientGone(WSGIHandler()),  # type: ignore[arg-type]
    workers=settings.WEB_THREADS,
)
# The same pool, with an event loop kept per thread for channel-layer events (core.events):
# a2wsgi starts its threads lazily, so nothing of the pool it made has run yet.
django_http.executor = ThreadPoolExecutor(
    max_workers=settings.WEB_THREADS, thread_name_prefix="http", initializer=thread_loop_keep
)

application = ProtocolTypeRouter(
    {
        # Body limits first: nothing behind them reads a byte of a body over its limit.
        "http": BodyLimitMiddleware(DisconnectWatch(django_http)),
        "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Whatever is loaded by now lives as long as the process. Importing every view now (the URL
# patterns) and then freezing takes those ~290k objects out of the collector's sight: a full
# collection walked them all, 150 ms alone and 200-350 ms under load, with every request of
# the worker waiting behind it (the readers benchmark's slowest requests came in such bursts).
get_resolver().url_patterns  # noqa: B018 (the import is the point)
gc.freeze()
