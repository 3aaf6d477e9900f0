"""ASGI entry point of the groups test project (uvicorn)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.groups.project.settings")

from django_websocket.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
