"""ASGI config for the multi-server test project (uvicorn, daphne, hypercorn)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.serverproject.settings")

from django_websocket.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
