"""Settings of the groups test project (``tests/groups``).

Served by gunicorn (gthread, ``wsgi.py`` unchanged) and uvicorn (``asgi.py``) in
subprocesses that share one Redis: ``WEBSOCKET_BROKER_URL`` comes from the
environment variable ``DJWS_BROKER_URL`` (default ``memory://``).
"""

import os
import tempfile
from pathlib import Path

SECRET_KEY = "django-websocket-groups-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django_websocket",
    "tests.groups.project",  # the broadcast_message management command
]

MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django_websocket.middleware.WebSocketMiddleware",
]

ROOT_URLCONF = "tests.groups.project.urls"
WSGI_APPLICATION = "tests.groups.project.wsgi.application"

# Unused by the views, but Django's close_old_connections() runs around sync hooks.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(Path(tempfile.gettempdir()) / "djws-groups-unused.sqlite3"),
    }
}

USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

WEBSOCKET_BROKER_URL = os.environ.get("DJWS_BROKER_URL", "memory://")
WEBSOCKET_MAX_MESSAGE_SIZE = 1 << 20
WEBSOCKET_CLOSE_TIMEOUT = 2
WEBSOCKET_PING_INTERVAL = float(os.environ.get("DJWS_PING_INTERVAL", "20"))
WEBSOCKET_PING_TIMEOUT = float(os.environ.get("DJWS_PING_TIMEOUT", "20"))

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
        "django_websocket": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}

if os.environ.get("DJWS_GC_LOG"):  # bench/fanout.py --gc-log: report long collections
    import gc
    import sys
    import time

    _gc_started = {}

    def _gc_timer(phase, info):
        if phase == "start":
            _gc_started["t"] = time.perf_counter()
        elif "t" in _gc_started:
            took = (time.perf_counter() - _gc_started.pop("t")) * 1000
            if took > 5:
                print(
                    f"gc: generation {info['generation']} took {took:.1f} ms "
                    f"({info['collected']} collected)",
                    file=sys.stderr,
                    flush=True,
                )

    gc.callbacks.append(_gc_timer)
