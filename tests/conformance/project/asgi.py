"""ASGI entry point for uvicorn, hypercorn and daphne."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.conformance.project.settings")

from django_websocket.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
