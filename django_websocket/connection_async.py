"""The protocol core for ``async def`` code: :class:`AsyncWebSocket`.

The same state machine, queue, limits and deadlines as the synchronous
:class:`~django_websocket.connection.WebSocket` (both build on
:class:`~django_websocket.connection.BaseWebSocket`), driven by coroutines over an
:class:`~django_websocket.transports.base.AsyncTransport`. Under ASGI it runs on
the event loop with no thread per connection.

``wait()`` awaits the transport directly. ``read()``/``count_messages()`` cannot
await, so the first call starts a background task that keeps receiving into the
queue, up to ``max_queue`` messages (then it stops reading: the server applies
back-pressure to the client).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from .connection import BaseWebSocket
from .events import Close, CloseCode, Event, Message, State
from .exceptions import ConnectionClosed, InvalidState
from .transports.base import AsyncTransport, DirectTransport

__all__ = ["AsyncWebSocket"]

logger = logging.getLogger("django_websocket")

# For the per-message checks: an enum member read from its class costs ~45 ns on
# Python 3.11, a module global ~5.
_OPEN, _CLOSED = State.OPEN, State.CLOSED


class AsyncWebSocket(BaseWebSocket):
    """A server-side WebSocket connection for ``async def`` views.

    Coroutines: ``wait``, ``send``, ``close``, ``finish`` and ``async for``.
    Plain methods (never block): ``read``, ``count_messages``, ``has_messages``.
    Create it on the event loop that will use it.

    Args:
        transport: the server connection, already past the opening handshake.
        pump: start the background receiver now (for the 0.3 ``read()`` API).
        max_queue: how many unread messages the background receiver holds.
        **options: see :class:`~django_websocket.connection.BaseWebSocket`.
    """

    def __init__(
        self, transport: AsyncTransport, *, pump: bool = False, max_queue: int = 64, **options: Any
    ) -> None:
        super().__init__(**options)
        self._transport = transport
        if getattr(transport, "server_keepalive", False):
            # The server pings (ASGI): with no timer of ours, wait() awaits the
            # server's receive() directly, the fast path.
            self._ping_interval = None
        #: The transport, if it lets wait() await the server's receive itself (ASGI).
        self._direct: DirectTransport | None = (
            transport if callable(getattr(transport, "direct", None)) else None  # type: ignore[assignment]
        )
        self._loop = asyncio.get_running_loop()
        self._max_queue = max_queue
        self._pump_task: asyncio.Task[None] | None = None
        # Only the background receiver (read() API) needs these: made with it.
        self._arrived: asyncio.Event
        self._room: asyncio.Event
        self._receiving = False
        if pump:
            self._start_pump()

    # -- receiving -------------------------------------------------------------

    async def _receive(self, timeout: float | None) -> None:
        """Take one event from the transport, or handle the deadline that passed."""
        await self._apply(await self._transport.receive(timeout))

    async def _apply(self, event: Event | None) -> None:
        """Queue a message, apply an event, or handle the deadline that passed (None)."""
        if event is None:
            due = self._due()
            if isinstance(due, Close):
                await self._transport.abort()
                self._set_closed(due)
            elif due:
                self._pinged(await self._transport.ping(os.urandom(4)))
            return
        fail = self._handle(event)
        if fail is not None:
            await self.close(*fail)

    async def _pump(self) -> None:
        try:
            while self._state is not State.CLOSED:
                if len(self._messages) >= self._max_queue:
                    self._room.clear()
                    await self._room.wait()
                    continue
                await self._receive(self._next_timeout())
                self._arrived.set()
        except ConnectionClosed as exc:
            self._set_closed(Close(exc.code, exc.reason))
        finally:
            self._arrived.set()

    def _start_pump(self) -> None:
        if self._pump_task is None and not self._receiving and self._state is not State.CLOSED:
            self._arrived = asyncio.Event()
            self._room = asyncio.Event()
            self._room.set()
            self._pump_task = self._loop.create_task(self._pump())

    def _pop(self) -> Message:
        message = self._messages.popleft()
        if (
            self._pump_task is not None
            and not self._room.is_set()
            and len(self._messages) < self._max_queue // 2
        ):
            self._room.set()
        return message

    async def wait(self) -> Message | None:
        """Wait for a message and return it; ``None`` once closed."""
        # Per message, so no calls that can be spared: ``_items`` is empty exactly
        # when the Fifo is, and with no deadline pending there is no timeout.
        while not self._messages._items:
            if self._state is _CLOSED:
                return None
            if self._pump_task is not None and not self._pump_task.done():
                self._arrived.clear()
                await self._arrived.wait()
                continue
            self._receiving = True
            try:
                if (
                    self._ping_interval is None
                    and self._ping_sent_at is None
                    and self._close_deadline is None
                ):
                    timeout = None  # no deadline (the ASGI server does keepalive)
                else:
                    timeout = self._next_timeout()
                direct = self._direct if timeout is None else None
                receive = direct.direct() if direct is not None else None
                if direct is not None and receive is not None:
                    # Awaited here, not in a transport coroutine: see ASGITransport.direct.
                    try:
                        event = direct.received(await receive())
                    except BaseException as exc:
                        if not direct.interrupted(exc):
                            raise
                        event = None  # woken: look at the deadlines again
                else:
                    event = await self._transport.receive(timeout)
            finally:
                self._receiving = False
            # The common case, kept short (it runs per message): a message well
            # within the size limit while open goes straight to the caller.
            kind = event.__class__
            if (kind is str or kind is bytes) and self._state is _OPEN:
                limit = self._max_message_size
                if limit is None or len(event) <= (limit if kind is bytes else limit >> 2):  # type: ignore[arg-type]
                    if self._ping_interval is not None:
                        self._last_seen = time.monotonic()
                    return event  # type: ignore[return-value]
            await self._apply(event)
        return self._pop()

    def read(self) -> Message | None:
        """Return a queued message or ``None``; never blocks (not a coroutine)."""
        self._start_pump()
        return self._pop() if self._messages else None

    def count_messages(self) -> int:
        """Return how many received messages are queued, without consuming them."""
        self._start_pump()
        return len(self._messages)

    def has_messages(self) -> bool:
        """Return whether a received message is queued."""
        return self.count_messages() > 0

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while (message := await self.wait()) is not None:
            yield message
            del message  # not kept alive while waiting for the next one

    # -- sending ---------------------------------------------------------------

    async def send(self, message: Message | bytearray | memoryview) -> None:
        """Send a message: text for ``str``, binary for bytes-like.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            TypeError: ``message`` is neither text nor bytes.
        """
        if message.__class__ is not str and message.__class__ is not bytes:
            message = self._checked(message)
        if self._state is not _OPEN:
            raise self._closed_error()
        try:
            await self._transport.send(message)
        except InvalidState as exc:
            raise self._closed_error() from exc
        except ConnectionClosed as exc:
            self._set_closed(Close(exc.code, exc.reason))
            raise

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake; does nothing if already closing or closed."""
        if self._begin_close(code, reason):
            # A receive already waiting (in wait() or the pump) was armed before this
            # close deadline existed: wake it so it times out on it.
            self._transport.wake()
            await self._transport.send_close(code, reason)

    def close_from_any_thread(self, code: int, reason: str) -> None:
        """Schedule :meth:`close` on the connection's event loop."""

        def schedule() -> None:
            self._loop.create_task(self.close(code, reason))

        self._loop.call_soon_threadsafe(schedule)

    async def abandon(self, close: Close) -> None:
        """End a connection whose session never ran: the server cancelled it first.

        Nothing more is received or sent; ``close`` is what it reports.
        """
        self._set_closed(close)
        if self._pump_task is not None:
            self._pump_task.cancel()
        self._messages.clear()
        await self._transport.abort()

    async def finish(self) -> None:
        """End the session: close with 1000 if still open, await the handshake, release."""
        if self._state is State.OPEN:
            await self.close()
        while self._state is not State.CLOSED:
            if self._pump_task is not None and not self._pump_task.done():
                self._messages.clear()
                self._room.set()
                self._arrived.clear()
                await self._arrived.wait()
            else:
                await self._receive(self._next_timeout())
        self._messages.clear()
        await self._transport.finish(self._close_timeout)
