"""The interface between the core (:mod:`django_websocket.connection`) and a transport.

A transport carries one accepted WebSocket connection over some server. The core
calls it from the view's thread (``receive``) and from any thread (``send``,
``send_close``, ``ping``, ``abort``), so implementations make those thread-safe.
"""

from __future__ import annotations

from typing import Protocol

from ..events import Event, Message

__all__ = ["Transport"]


class Transport(Protocol):
    """What the synchronous core needs from a server connection."""

    def receive(self, timeout: float | None) -> Event | None:
        """Return the next event, or ``None`` when ``timeout`` seconds passed first.

        ``timeout=None`` blocks; ``0`` polls. After a :class:`~..events.Close`
        event every further call returns that same ``Close``.
        """

    def send(self, message: Message) -> None:
        """Send one message.

        Raises:
            ConnectionClosed: the connection is gone (the transport saw it).
        """

    def send_close(self, code: int, reason: str) -> None:
        """Send a close frame (start or complete the closing handshake)."""

    def ping(self, data: bytes) -> bool:
        """Send a ping; return ``False`` if the server does keepalive itself."""

    def abort(self) -> None:
        """Drop the connection now, without a closing handshake."""

    def finish(self, timeout: float | None) -> None:
        """Release the connection after the session; wait at most ``timeout`` for TCP close."""
