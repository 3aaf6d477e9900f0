"""Settings of the benchmark's Django project: django_websocket and Channels echoes.

DEBUG off, no middleware, no database, no logging of requests: the minimal project
each library needs. ``WEBSOCKET_COMPRESSION = None``: no permessage-deflate under WSGI
(under ASGI the server's option decides; bench/run.py turns it off there too).
"""

SECRET_KEY = "django-websocket-bench-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["django_websocket"]  # before staticfiles, were it installed
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "djproject.urls"
WSGI_APPLICATION = "djproject.wsgi.application"
ASGI_APPLICATION = "djproject.asgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

WEBSOCKET_COMPRESSION = None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        # runserver logs every request at INFO on "django.server": no access log.
        "django.server": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "django_websocket": {"handlers": ["stderr"], "level": "WARNING"},
    },
}
