"""ASGI entry point for django_websocket (uvicorn): the two lines of docs/deployment.rst."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproject.settings")

from django_websocket.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
