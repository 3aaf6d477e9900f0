"""Settings, with their defaults, through django-appconf (prefix ``WEBSOCKET_``).

Read them at call time (``settings.WEBSOCKET_MAX_MESSAGE_SIZE``) so that
``override_settings`` works; the core never imports this module and takes the
values as arguments instead.
"""

from __future__ import annotations

from typing import Any

from appconf import AppConf
from django.conf import settings

__all__ = ["WebSocketConf", "settings"]


class WebSocketConf(AppConf):
    """Every ``WEBSOCKET_*`` setting of SPEC section 7."""

    ACCEPT_ALL: bool = False
    ALLOWED_ORIGINS: list[str] | None = None
    MAX_MESSAGE_SIZE: int | None = 1048576
    PING_INTERVAL: float | None = 20
    PING_TIMEOUT: float | None = 20
    COMPRESSION: str | None = "deflate"
    BROKER_URL: str = "memory://"
    MAX_CONNECTIONS: int | None = None
    CLOSE_TIMEOUT: float | None = 10
    #: Seconds a client has to send its request head to our runserver (an addition
    #: to SPEC section 7; gunicorn and the ASGI servers have their own).
    HANDSHAKE_TIMEOUT: float | None = 10

    class Meta:
        prefix = "websocket"

    def configure_compression(self, value: Any) -> Any:
        if value not in (None, "deflate"):
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured("WEBSOCKET_COMPRESSION must be 'deflate' or None")
        return value
