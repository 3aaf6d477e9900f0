"""Groups and broadcast (SPEC section 3).

``broadcast(group, message)`` sends to every connection that joined ``group``, in
every process sharing the broker: ``WEBSOCKET_BROKER_URL = "memory://"`` (one
process, the default) or ``"redis://host:port/db"``. A dotted path to a
:class:`~.base.Broker` subclass, optionally followed by ``://...``, plugs another
backend. The broker is created on first use and dropped when the setting changes.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from ..conf import settings
from ..events import Message
from .base import Broker, BrokerError, check_message

__all__ = [
    "Broker",
    "BrokerError",
    "abroadcast",
    "abroadcast_json",
    "broadcast",
    "broadcast_json",
    "get_broker",
    "reset_brokers",
]

BACKENDS = {
    "memory": "django_websocket.groups.memory.MemoryBroker",
    "redis": "django_websocket.groups.redis.RedisBroker",
    "rediss": "django_websocket.groups.redis.RedisBroker",
    "unix": "django_websocket.groups.redis.RedisBroker",
}

_brokers: dict[str, Broker] = {}
_lock = threading.Lock()


def get_broker() -> Broker:
    """Return this process's broker for ``WEBSOCKET_BROKER_URL`` (created once)."""
    url = settings.WEBSOCKET_BROKER_URL
    broker = _brokers.get(url)
    if broker is None:
        with _lock:
            broker = _brokers.get(url)
            if broker is None:
                scheme, sep, _ = url.partition("://")
                backend = BACKENDS.get(scheme) if sep else None
                broker = _brokers[url] = import_string(backend or scheme)(url)
    return broker


def reset_brokers() -> None:
    """Close and forget every broker (on ``setting_changed``, e.g. ``override_settings``)."""
    with _lock:
        brokers = list(_brokers.values())
        _brokers.clear()
    for broker in brokers:
        broker.close()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "WEBSOCKET_BROKER_URL":
        reset_brokers()


setting_changed.connect(_on_setting_changed, dispatch_uid="django_websocket.groups")


def broadcast(group: str, message: Message) -> None:
    """Send ``message`` (``str``: text, ``bytes``: binary) to every member of ``group``.

    Raises:
        BrokerError: the backend is unreachable.
    """
    get_broker().publish(group, check_message(message))


async def abroadcast(group: str, message: Message) -> None:
    """:func:`broadcast` for async code."""
    await get_broker().apublish(group, check_message(message))


def broadcast_json(group: str, obj: Any) -> None:
    """Broadcast ``obj`` as a JSON text message."""
    broadcast(group, json.dumps(obj))


async def abroadcast_json(group: str, obj: Any) -> None:
    """Broadcast ``obj`` as a JSON text message, from async code."""
    await abroadcast(group, json.dumps(obj))
