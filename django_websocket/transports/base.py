"""The interface between the core (:mod:`django_websocket.connection`) and a transport.

A transport carries one accepted WebSocket connection over some server. The core
calls it from the view's thread (``receive``) and from any thread (``send``,
``send_close``, ``ping``, ``abort``), so implementations make those thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..events import Event, Message

__all__ = ["AsyncTransport", "Channel", "DirectTransport", "Transport", "Upgrade"]


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

    def enable_wake(self) -> None:
        """Prepare :meth:`wake`; called on the receiving thread before it may block."""

    def wake(self) -> None:
        """Make a blocked (or the next) :meth:`receive` return :data:`~..events.WAKE`."""


class Upgrade(Protocol):
    """An in-process way to complete the handshake (ASGI, the test client).

    Attributes:
        server_validated: the server already validated the upgrade request
            (ASGI servers do), so its headers need not be checked again.
    """

    server_validated: bool

    def accept(self, subprotocol: str | None) -> Transport:
        """Complete the handshake from a sync view's thread; return a blocking transport."""

    async def aaccept(self, subprotocol: str | None) -> AsyncTransport:
        """Complete the handshake from async code; return an async transport."""


class AsyncTransport(Protocol):
    """What the asynchronous core needs: :class:`Transport` with coroutines."""

    async def receive(self, timeout: float | None) -> Event | None:
        """Return the next event, or ``None`` when ``timeout`` seconds passed first."""

    async def send(self, message: Message) -> None:
        """Send one message; raise ``ConnectionClosed`` if the connection is gone."""

    async def send_close(self, code: int, reason: str) -> None:
        """Send a close frame."""

    async def ping(self, data: bytes) -> bool:
        """Send a ping; return ``False`` if the server does keepalive itself."""

    async def abort(self) -> None:
        """Drop the connection now."""

    async def finish(self, timeout: float | None) -> None:
        """Release the connection after the session."""

    def wake(self) -> None:
        """Make a pending :meth:`receive` return soon (``None`` or an event).

        Called on the event loop when the connection's deadlines changed under a
        receive that is already waiting (a close started by another task).
        """


class DirectTransport(AsyncTransport, Protocol):
    """An :class:`AsyncTransport` whose server ``receive`` the caller may await itself.

    See :meth:`~django_websocket.transports.asgi.ASGITransport.direct`.
    """

    def direct(self) -> Callable[[], Awaitable[dict[str, Any]]] | None:
        """The server's receive to await now, or ``None`` (use :meth:`receive`)."""

    def received(self, message: dict[str, Any]) -> Event | None:
        """The event of what the receive returned (``None``: nothing for the connection)."""

    def interrupted(self, exc: BaseException) -> bool:
        """Whether ``exc`` from the receive was only :meth:`wake` (else re-raise it)."""


class Channel:
    """A thread-safe FIFO of events whose ``get`` blocks with a timeout."""

    def __init__(self) -> None:
        self._items: list[Event] = []
        self._ready = threading.Condition()
        self._resume: Callable[[], None] | None = None

    def put(self, item: Event) -> None:
        with self._ready:
            self._items.append(item)
            self._ready.notify()
            resume, self._resume = self._resume, None
        if resume is not None:
            resume()

    def park(self, resume: Callable[[], None]) -> bool:
        """Call ``resume()`` at the next :meth:`put` (no thread waits in :meth:`get`).

        Returns:
            ``False``, and nothing is kept, when an item is already there.
        """
        with self._ready:
            if self._items:
                return False
            self._resume = resume
            return True

    def __len__(self) -> int:
        return len(self._items)

    def get(self, timeout: float | None) -> Event | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while not self._items:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._ready.wait(remaining)
            return self._items.pop(0)
