"""Settings for the multi-server test project (``tests/integration/test_servers.py``).

The same project is served by runserver, gunicorn (gthread, gevent, eventlet) through
the unchanged ``wsgi.py``, and by uvicorn, daphne and hypercorn through ``asgi.py``.
Every limit the tests vary is read from an environment variable, so a test can
start a server subprocess with different settings. ``"none"`` or ``""`` mean ``None``.
"""

import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


def _env_number(name, default):
    """Return the number in the environment variable *name*, or *default*."""
    value = os.environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in ("", "none"):
        return None
    return float(value) if "." in value else int(value)


def _env_text(name, default):
    """Return the text in the environment variable *name* (``"none"`` is None)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return None if value.strip().lower() in ("", "none") else value


def _env_list(name, default):
    """Return the comma-separated list in *name* (``"none"`` is None)."""
    value = _env_text(name, default)
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


SECRET_KEY = "django-websocket-server-tests-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    # Before staticfiles: Django takes a command (runserver) from the first app that has it.
    "django_websocket",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_websocket.middleware.WebSocketMiddleware",
]

if os.environ.get("DJWS_SYNC_MIDDLEWARE") == "1":
    MIDDLEWARE.append("tests.serverproject.middleware.SyncOnlyMiddleware")

ROOT_URLCONF = "tests.serverproject.urls"
WSGI_APPLICATION = "tests.serverproject.wsgi.application"
ASGI_APPLICATION = "tests.serverproject.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# A file database: the server subprocess and the fixture's ``manage.py`` runs share it.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "DJWS_TEST_DB", str(Path(tempfile.gettempdir()) / "djws-servers.sqlite3")
        ),
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/accounts/done/"

# Where views append the facts that only the server can see (see views.record).
DJWS_EVENTS_DIR = os.environ.get(
    "DJWS_EVENTS_DIR", str(Path(tempfile.gettempdir()) / "djws-server-events")
)

WEBSOCKET_MAX_MESSAGE_SIZE = _env_number("DJWS_MAX_MESSAGE_SIZE", 65536)
WEBSOCKET_MAX_CONNECTIONS = _env_number("DJWS_MAX_CONNECTIONS", None)
WEBSOCKET_PING_INTERVAL = _env_number("DJWS_PING_INTERVAL", 20)
WEBSOCKET_PING_TIMEOUT = _env_number("DJWS_PING_TIMEOUT", 20)
WEBSOCKET_CLOSE_TIMEOUT = _env_number("DJWS_CLOSE_TIMEOUT", 5)
WEBSOCKET_COMPRESSION = _env_text("DJWS_COMPRESSION", "deflate")
WEBSOCKET_ALLOWED_ORIGINS = _env_list("DJWS_ALLOWED_ORIGINS", None)
WEBSOCKET_ACCEPT_ALL = os.environ.get("DJWS_ACCEPT_ALL", "") == "1"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(levelname)s %(name)s %(threadName)s: %(message)s"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "plain",
        },
    },
    "loggers": {
        "django_websocket": {
            "handlers": ["stderr"],
            "level": os.environ.get("DJWS_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}

# tests/abuse/test_peers.py: how long a client may take to send its request head.
# The library reads no such setting yet (see that module); set only when asked so
# that a default the library may give it applies everywhere else.
if "DJWS_HANDSHAKE_TIMEOUT" in os.environ:
    WEBSOCKET_HANDSHAKE_TIMEOUT = _env_number("DJWS_HANDSHAKE_TIMEOUT", None)
