"""WebSocket endpoints for Django, written the way a Django developer thinks.

Public API::

    from django_websocket import WebSocketView                          # class-based views
    from django_websocket import broadcast, abroadcast                  # groups
    from django_websocket import accept_websocket, require_websocket   # 0.3 API
    from django_websocket import WebSocket, AsyncWebSocket, ConnectionClosed

See SPEC.md for the contract and the docs for guides.
"""

from __future__ import annotations

from typing import Any

from .events import CloseCode
from .exceptions import (
    ConnectionClosed,
    HandshakeError,
    InvalidState,
    ProtocolError,
    WebSocketError,
)

__version__ = "1.0.0.dev0"

__all__ = [
    "AsyncWebSocket",
    "BrokerError",
    "CloseCode",
    "ConnectionClosed",
    "HandshakeError",
    "InvalidState",
    "ProtocolError",
    "WebSocket",
    "WebSocketError",
    "WebSocketView",
    "abroadcast",
    "abroadcast_json",
    "accept_websocket",
    "broadcast",
    "broadcast_json",
    "require_websocket",
]

# Names importing Django's HTTP machinery load on first use, so that importing the
# package (e.g. from settings.py or for the core alone) needs no configured settings.
_LAZY = {
    "accept_websocket": "decorators",
    "require_websocket": "decorators",
    "WebSocket": "connection",
    "AsyncWebSocket": "connection_async",
    "WebSocketView": "views",
    "broadcast": "groups",
    "abroadcast": "groups",
    "broadcast_json": "groups",
    "abroadcast_json": "groups",
    "BrokerError": "groups",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'django_websocket' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
