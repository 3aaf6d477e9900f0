"""Django's own wsgi.py, unchanged: runserver and gunicorn serve WebSockets from it."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.conformance.project.settings")

application = get_wsgi_application()
