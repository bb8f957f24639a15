"""ASGI entry point: HTTP through Django, websockets through Channels with the session user and
an Origin check against ALLOWED_HOSTS (a page on another site cannot open our sockets)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from reviewapp.imaging.dicomweb.fastpath import FramesFastPath  # noqa: E402
from reviewapp.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Frame requests already authorised moments ago skip the Django stack (see fastpath).
        "http": FramesFastPath(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
