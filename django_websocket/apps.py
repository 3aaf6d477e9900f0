"""The Django app: gives the WebSocket-capable ``runserver`` and a configuration check."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.core import checks

__all__ = ["DjangoWebSocketConfig"]


class DjangoWebSocketConfig(AppConfig):
    name = "django_websocket"
    verbose_name = "WebSockets"

    def ready(self) -> None:
        from . import (
            conf,  # noqa: F401  (registers the WEBSOCKET_* defaults)
            greenlets,
        )
        from .accept import shutdown
        from .transports.servers import install_shutdown_hooks

        checks.register(check_app_order)
        if greenlets.monkey_patched():
            greenlets.install()
        install_shutdown_hooks(shutdown)  # in a gunicorn worker: close WebSockets with 1001


def check_app_order(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when staticfiles' ``runserver`` would shadow ours (the first app wins)."""
    names = [config.name for config in apps.get_app_configs()]
    static = "django.contrib.staticfiles"
    if static in names and names.index(static) < names.index("django_websocket"):
        return [
            checks.Warning(
                "'django_websocket' comes after 'django.contrib.staticfiles' in "
                "INSTALLED_APPS, so runserver will not serve WebSockets.",
                hint="Put 'django_websocket' before 'django.contrib.staticfiles'.",
                id="django_websocket.W001",
            )
        ]
    return []
