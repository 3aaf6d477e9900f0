"""WSGI entry point of the demo (used by ``runserver``; a WSGI server can serve it too)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

application = get_wsgi_application()
