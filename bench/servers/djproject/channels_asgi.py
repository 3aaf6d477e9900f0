"""ASGI entry point for Channels (uvicorn, daphne), as Channels' tutorial writes it.

No channel layer (``CHANNEL_LAYERS`` unset) and no ``AuthMiddlewareStack``: the
django_websocket project runs no middleware either.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproject.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from djproject.consumers import AsyncEcho, SyncEcho  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                path("ws/async/", AsyncEcho.as_asgi()),
                path("ws/sync/", SyncEcho.as_asgi()),
            ]
        ),
    }
)
