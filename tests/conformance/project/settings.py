"""Settings of the conformance project: echo endpoints and nothing else.

Served by runserver and gunicorn through ``wsgi.py`` and by the ASGI servers
through ``asgi.py``. No database, no middleware: what Autobahn measures is the
WebSocket layer. The only non-default limit is the message size, which Autobahn's
case 9 (messages up to 16 MiB) needs; keepalive and compression keep their
defaults, so cases 12 and 13 run with permessage-deflate as users get it.
"""

SECRET_KEY = "django-websocket-conformance-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django_websocket",  # the WebSocket-capable runserver
]
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict] = {}

ROOT_URLCONF = "tests.conformance.project.urls"
WSGI_APPLICATION = "tests.conformance.project.wsgi.application"
ASGI_APPLICATION = "tests.conformance.project.asgi.application"
USE_TZ = True

# Autobahn's fuzzing client sends no Origin; allow every origin anyway.
WEBSOCKET_ALLOWED_ORIGINS = ["*"]
# Case 9.1.6/9.2.6 send 16 MiB messages; the default limit is 1 MiB.
WEBSOCKET_MAX_MESSAGE_SIZE = 16 * 2**20

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # WARNING, not INFO: websockets logs "connection closed" at INFO for every case.
    "loggers": {"django_websocket": {"handlers": ["console"], "level": "WARNING"}},
}
