"""
WSGI config for the multi-server test project.

It exposes the WSGI callable as a module-level variable named ``application``.
This is Django's own wsgi.py, unchanged: WebSockets need nothing here.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.serverproject.settings")

application = get_wsgi_application()
