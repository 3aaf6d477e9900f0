"""Django's own wsgi.py, unchanged: gunicorn serves WebSockets with it as it is."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.groups.project.settings")

application = get_wsgi_application()
