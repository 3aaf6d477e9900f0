"""ASGI entry point of the demo: ``uvicorn demo.asgi:application`` (run from ``demo/``).

Django's own ``asgi.py`` with one import changed: HTTP is served as by Django's ASGI
handler, WebSockets by the same views that ``runserver`` serves over WSGI.
"""

import os

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from django_websocket.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

application = get_asgi_application()

if settings.DEBUG:
    # Serve /static/ as runserver does (uvicorn, daphne and hypercorn do not).
    application = ASGIStaticFilesHandler(application)
