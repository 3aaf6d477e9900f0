"""The exceptions django_websocket raises, in one tree.

::

    WebSocketError
    ├── ConnectionClosed      the connection is closed; carries ``code`` and ``reason``
    ├── HandshakeError        the upgrade request is refused; carries ``status``
    ├── ProtocolError         the peer broke RFC 6455 (its fault)
    └── InvalidState          the caller used the API at the wrong time (also a RuntimeError)

Foreign exceptions (from ``websockets``, sockets, ASGI servers) are translated at
the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "ConnectionClosed",
    "HandshakeError",
    "InvalidState",
    "ProtocolError",
    "WebSocketError",
]


class WebSocketError(Exception):
    """Base class of every error raised by django_websocket."""


class ConnectionClosed(WebSocketError):
    """Raised when sending on, or reading from, a connection that is closed.

    Attributes:
        code: the close code of the closing handshake (1006 when there was none).
        reason: the close reason, possibly empty.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"connection closed: {code} {reason}".rstrip())


class HandshakeError(WebSocketError):
    """Refuse an upgrade request with an HTTP status and a one-line reason.

    Attributes:
        status: the HTTP status code to answer with (400, 403, 426, 503...).
        reason: a short lowercase phrase, sent as the plain-text body.
        headers: extra response headers (e.g. ``Sec-WebSocket-Version: 13``).
    """

    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})
        super().__init__(f"{status}: {reason}")


class ProtocolError(WebSocketError):
    """Signal that the peer violated the WebSocket protocol."""


class InvalidState(WebSocketError, RuntimeError):
    """Signal that an operation is not allowed in the connection's current state."""
