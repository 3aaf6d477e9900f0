"""The protocol core: one WebSocket connection as a view sees it.

:class:`WebSocket` owns everything that makes a WebSocket behave the same on every
server: the connection state, the queue of received messages (``wait``, ``read``,
``count_messages``), the closing handshake with its timeout, keepalive pings and the
message size limit. It drives a transport (:mod:`django_websocket.transports`) that
only moves events, and never learns which server carries them.

:class:`ConnectionRegistry` counts this process's open connections, for
``MAX_CONNECTIONS`` and for closing them all with 1001 when the server stops.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from .events import Close, CloseCode, Event, Fifo, Message, Pong, State
from .exceptions import ConnectionClosed, InvalidState
from .transports.base import Transport

__all__ = [
    "IDLE",
    "OVERFLOW",
    "BaseWebSocket",
    "ConnectionRegistry",
    "Posted",
    "WebSocket",
    "check_close",
    "registry",
]

# Close codes an endpoint may send (RFC 6455 section 7.4; IANA registry).
_SENDABLE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


def check_close(code: int, reason: str) -> None:
    """Reject a close code or reason that may not go in a close frame.

    Raises:
        ValueError: for a reserved or out-of-range code, or a reason over 123 bytes.
    """
    if code not in _SENDABLE_CODES and not 3000 <= code <= 4999:
        raise ValueError(f"invalid close code: {code}")
    if len(reason.encode("utf-8")) > 123:
        raise ValueError("close reason is longer than 123 bytes")


class Posted(NamedTuple):
    """An item another thread posted to the connection (see :meth:`WebSocket.post`)."""

    item: Any


#: :meth:`WebSocket.next_event`'s answer when posts overflowed their limit.
OVERFLOW = object()
#: :meth:`WebSocket.next_event`'s answer, when told not to block, that nothing is ready.
IDLE = object()


def message_size(message: Message, limit: int) -> int:
    """Return the size in bytes of ``message``, encoding text only when it matters."""
    if isinstance(message, str) and len(message) * 4 > limit:
        return len(message.encode("utf-8", "surrogatepass"))
    return len(message)


class BaseWebSocket:
    """What the sync and async connections share: state, queue, deadlines. No I/O.

    Args:
        subprotocol: the negotiated subprotocol, if any.
        ping_interval: seconds of silence before a keepalive ping (``None``: never).
        ping_timeout: seconds to wait for the pong before dropping (``None``: forever).
        close_timeout: seconds to wait for the peer's close frame.
        max_message_size: largest accepted message in bytes (``None``: no limit).
    """

    def __init__(
        self,
        *,
        subprotocol: str | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float | None = 10.0,
        max_message_size: int | None = 2**20,
    ) -> None:
        self.subprotocol = subprotocol
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._max_message_size = max_message_size
        self._messages: Fifo[Message] = Fifo()
        self._state = State.OPEN
        self._close: Close | None = None
        self._close_sent: Close | None = None
        self._state_lock = threading.Lock()
        self._last_seen = time.monotonic()
        self._ping_sent_at: float | None = None
        self._close_deadline: float | None = None

    @property
    def state(self) -> State:
        """Where the connection is: OPEN, CLOSING or CLOSED."""
        return self._state

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or closed (no more sending)."""
        return self._state is not State.OPEN

    @property
    def close_code(self) -> int | None:
        """The close code once closed (1006 when TCP ended without a close frame)."""
        return self._close.code if self._close is not None else None

    @property
    def close_reason(self) -> str | None:
        """The close reason once closed."""
        return self._close.reason if self._close is not None else None

    def close_from_any_thread(self, code: int, reason: str) -> None:
        """Start the closing handshake from a thread that does not own the connection."""
        raise NotImplementedError

    def abort_from_any_thread(self) -> None:
        """Drop a connection whose peer did not finish the closing handshake in time.

        For a connection whose owner may be blocked with no deadline in sight (a
        sync view waiting on its socket until the next ping); others enforce the
        close timeout themselves.
        """

    def _closed_error(self) -> ConnectionClosed:
        close = self._close or self._close_sent or Close(CloseCode.ABNORMAL_CLOSURE, "")
        return ConnectionClosed(close.code, close.reason)

    def _ended(self) -> bool:
        # A method, not an inline test: the state changes under mypy's narrowing.
        return self._state is State.CLOSED

    def _set_closed(self, close: Close) -> None:
        with self._state_lock:
            if self._state is not State.CLOSED:
                self._state = State.CLOSED
                self._close = close

    def _begin_close(self, code: int, reason: str) -> bool:
        """Move OPEN → CLOSING; return whether the caller must send the close frame."""
        check_close(code, reason)
        with self._state_lock:
            if self._state is not State.OPEN:
                return False
            self._state = State.CLOSING
            self._close_sent = Close(code, reason)
            if self._close_timeout is not None:
                self._close_deadline = time.monotonic() + self._close_timeout
            return True

    @staticmethod
    def _checked(message: object) -> Message:
        if isinstance(message, (bytearray, memoryview)):
            return bytes(message)
        if not isinstance(message, (str, bytes)):
            raise TypeError(f"message must be str or bytes, not {type(message).__name__}")
        return message

    def _next_timeout(self) -> float | None:
        """Seconds until the next deadline: close timeout, pong timeout or next ping."""
        deadline = self._close_deadline
        if self._ping_sent_at is not None:
            if self._ping_timeout is not None:
                pong_deadline = self._ping_sent_at + self._ping_timeout
                deadline = pong_deadline if deadline is None else min(deadline, pong_deadline)
        elif self._ping_interval is not None and self._state is State.OPEN:
            ping_at = self._last_seen + self._ping_interval
            deadline = ping_at if deadline is None else min(deadline, ping_at)
        return None if deadline is None else max(deadline - time.monotonic(), 0.0)

    def _due(self) -> Close | bool:
        """Say what a passed deadline asks for: a :class:`Close` to abort with, or ping."""
        now = time.monotonic()
        if self._close_deadline is not None and now >= self._close_deadline:
            # RFC 6455 7.1.1: the peer did not finish the closing handshake in time.
            return Close(CloseCode.ABNORMAL_CLOSURE, "close timeout")
        if self._ping_sent_at is not None:
            if self._ping_timeout is not None and now >= self._ping_sent_at + self._ping_timeout:
                return Close(CloseCode.ABNORMAL_CLOSURE, "keepalive ping timeout")
            return False
        return (
            self._ping_interval is not None
            and self._state is State.OPEN
            and now >= self._last_seen + self._ping_interval
        )

    def _pinged(self, sent: bool) -> None:
        if sent:
            self._ping_sent_at = time.monotonic()
        else:  # the server does keepalive itself
            self._ping_interval = None

    def _handle(self, event: Event) -> Close | None:
        """Apply one event; return a close to send when the peer broke a limit."""
        self._last_seen = time.monotonic()
        if isinstance(event, (str, bytes)):
            if self._state is not State.OPEN:
                return None  # RFC 6455 1.4: data after our close frame is discarded
            limit = self._max_message_size
            if limit is not None and message_size(event, limit) > limit:
                return Close(CloseCode.MESSAGE_TOO_BIG, "message too big")
            self._messages.append(event)
        elif isinstance(event, Close):
            # When we started the closing handshake, the connection ends with our code:
            # ASGI servers report the peer's echo inconsistently (1000, 1005, ...).
            sent = self._close_sent
            self._set_closed(sent if sent is not None and event.code != 1006 else event)
        elif isinstance(event, Pong):
            self._ping_sent_at = None
        return None  # WAKE: nothing to apply, the caller looks at its posts


class WebSocket(BaseWebSocket):
    """A server-side WebSocket connection, for synchronous code.

    The django-websocket 0.3 API (``wait``, ``read``, ``count_messages``,
    ``has_messages``, ``send``, iteration) plus ``close`` and the close details.
    ``send`` and ``close`` may be called from any thread; receiving happens on the
    thread that calls ``wait``/``read``/iterates.

    Args:
        transport: the server connection, already past the opening handshake.
        **options: see :class:`BaseWebSocket`.
    """

    def __init__(self, transport: Transport, **options: Any) -> None:
        super().__init__(**options)
        self._transport = transport
        if getattr(transport, "server_keepalive", False):
            self._ping_interval = None  # the server pings; no timer of ours to re-arm
        self._receive_lock = threading.RLock()
        self._posts: list[Any] = []
        self._posts_enabled = False
        self._overflowed = False

    # -- posts: work other threads hand to the connection's own thread ------------

    def enable_posts(self) -> None:
        """Allow :meth:`post`; call on the receiving thread before it blocks again."""
        if not self._posts_enabled:
            self._transport.enable_wake()
            self._posts_enabled = True

    def post(self, item: Any, limit: int) -> bool:
        """Queue ``item`` for :meth:`next_event` from any thread; never blocks.

        Returns:
            ``False`` when ``limit`` items are already waiting: the item is dropped
            and :meth:`next_event` reports :data:`OVERFLOW` (the owner is too slow).
        """
        if not self._posts_enabled or self._state is State.CLOSED:
            return False
        if len(self._posts) >= limit:
            self._overflowed = True
            self._transport.wake()
            return False
        self._posts.append(item)
        self._transport.wake()
        return True

    def next_event(self, block: bool = True, linger: float = 0.0) -> Any:
        """Return the next posted item, :data:`OVERFLOW`, or client message; ``None`` once closed.

        The loop of a view that also serves groups: posted items come first so a
        busy client cannot starve them. With ``block=False``, an open connection
        with nothing ready within ``linger`` seconds returns :data:`IDLE` (see
        :meth:`park`); a closing one still waits, at most the close timeout.
        """
        with self._receive_lock:
            while True:
                if self._overflowed:
                    self._overflowed = False
                    return OVERFLOW
                if self._posts:
                    return Posted(self._posts.pop(0))
                if self._messages:
                    return self._messages.popleft()
                if self._ended():
                    return None
                if block or self._state is not State.OPEN:
                    self._receive(self._next_timeout())
                elif not self._receive(linger) and self._state is State.OPEN:
                    return IDLE

    @property
    def can_park(self) -> bool:
        """Whether :meth:`park` works: the transport queues events for this thread."""
        return hasattr(self._transport, "park")

    def park(self, resume: Callable[[], None]) -> bool:
        """Have ``resume`` called when the next event arrives, instead of a thread waiting.

        After :meth:`next_event` returned :data:`IDLE`: the caller's thread may go
        and do other work. ``resume`` is called once, from whichever thread
        delivers the event (ASGI: the event loop's; our runserver: its reactor's),
        also when the next deadline (a keepalive ping) passes first.

        Returns:
            ``False`` when an event arrived meanwhile: call :meth:`next_event` again.
        """
        park: Callable[[Callable[[], None], float | None], bool]
        park = self._transport.park  # type: ignore[attr-defined]
        return park(resume, self._next_timeout())

    def take_socket(self) -> bool:
        """Take the socket from the server (closed at :meth:`finish`); ``False``: cannot."""
        take: Callable[[], bool] | None = getattr(self._transport, "take_socket", None)
        return take is not None and take()

    def _receive(self, timeout: float | None) -> bool:
        """Take one event from the transport; return ``False`` if none came in time."""
        event = self._transport.receive(timeout)
        if event is None:
            due = self._due()
            if isinstance(due, Close):
                self._transport.abort()
                self._set_closed(due)
            elif due:
                self._pinged(self._transport.ping(os.urandom(4)))
            return False
        fail = self._handle(event)
        if fail is not None:
            self.close(*fail)
        return True

    def _drain(self) -> None:
        """Queue every event already received, without blocking."""
        if self._state is State.CLOSED or not self._receive_lock.acquire(blocking=False):
            return
        try:
            while not self._ended() and self._receive(0):
                pass
        finally:
            self._receive_lock.release()

    def wait(self) -> Message | None:
        """Block until a message arrives and return it; ``None`` once closed."""
        if self._messages:
            return self._messages.popleft()
        with self._receive_lock:
            while not self._messages:
                if self._state is State.CLOSED:
                    return None
                self._receive(self._next_timeout())
            return self._messages.popleft()

    def read(self) -> Message | None:
        """Return a received message if one is queued, else ``None``; never blocks."""
        if not self._messages:
            self._drain()
        return self._messages.popleft() if self._messages else None

    def count_messages(self) -> int:
        """Return how many received messages are queued, without consuming them."""
        self._drain()
        return len(self._messages)

    def has_messages(self) -> bool:
        """Return whether a received message is queued."""
        return bool(self._messages) or self.count_messages() > 0

    def __iter__(self) -> Iterator[Message]:
        """Yield each message until the client closes the connection."""
        while (message := self.wait()) is not None:
            yield message
            del message  # not kept alive while waiting for the next one

    def send(self, message: Message | bytearray | memoryview) -> None:
        """Send a message: text for ``str``, binary for bytes-like.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            TypeError: ``message`` is neither text nor bytes.
        """
        message = self._checked(message)
        if self._state is not State.OPEN:
            raise self._closed_error()
        try:
            self._transport.send(message)
        except InvalidState as exc:
            raise self._closed_error() from exc
        except ConnectionClosed as exc:
            self._set_closed(Close(exc.code, exc.reason))
            self._wake_owner()
            raise

    def _wake_owner(self) -> None:
        """Have the receiving side look at the state again (sent from another thread).

        A session parked between events (ASGI, runserver) or blocked without a deadline would
        not notice a close started, or a failure seen, by another thread.
        """
        with contextlib.suppress(Exception):  # a transport already finished
            self._transport.wake()

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake; does nothing if already closing or closed.

        Raises:
            ValueError: the code may not be sent, or the reason is too long.
        """
        if self._begin_close(code, reason):
            self._transport.send_close(code, reason)

    def close_from_any_thread(self, code: int, reason: str) -> None:
        """Start the closing handshake; sending is thread-safe. Wake the owner to wait for it."""
        self.close(code, reason)
        self._wake_owner()

    def abort_from_any_thread(self) -> None:
        """Drop TCP: the owner's blocked receive returns, the session ends with 1006."""
        if self._state is not State.CLOSED:
            self._transport.abort()

    def abandon(self, close: Close) -> None:
        """End a connection whose session never ran: its transport was ended already.

        Nothing more is received or sent; ``close`` is what it reports.
        """
        self._set_closed(close)
        self._messages.clear()

    def finish(self) -> None:
        """End the session: close with 1000 if still open, await the handshake, release.

        Called by django_websocket when the view returns; safe to call twice.
        """
        if self._state is State.OPEN:
            self.close()
        with self._receive_lock:
            while self._state is not State.CLOSED:
                self._receive(self._next_timeout())
            self._messages.clear()
        self._transport.finish(self._close_timeout)


#: Seconds :meth:`ConnectionRegistry.close_all` waits for sessions it had to abort.
ABORT_GRACE = 2.0


class ConnectionRegistry:
    """The open connections of this process.

    ``reserve`` counts a connection before its handshake completes, so the
    ``MAX_CONNECTIONS`` check and the increment are one atomic step.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._reserved = 0
        self._connections: set[BaseWebSocket] = set()

    def reserve(self, limit: int | None) -> bool:
        """Count one more connection; return ``False`` if ``limit`` is reached."""
        with self._lock:
            if limit is not None and self._reserved >= limit:
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        """Give back a reservation (the connection ended or never opened)."""
        with self._lock:
            self._reserved -= 1
            self._lock.notify_all()

    def add(self, connection: BaseWebSocket) -> None:
        """Track an open connection so that :meth:`close_all` reaches it."""
        with self._lock:
            self._connections.add(connection)

    def discard(self, connection: BaseWebSocket) -> None:
        """Stop tracking a connection."""
        with self._lock:
            self._connections.discard(connection)
            self._lock.notify_all()

    def __len__(self) -> int:
        return self._reserved

    def close_all(self, code: int, reason: str, timeout: float | None = None) -> int:
        """Start closing every open connection; wait up to ``timeout`` for them to end.

        Returns:
            How many connections were still open when the wait ended.
        """
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            # Shutting down: one connection's failure must not stop the others.
            with contextlib.suppress(Exception):
                connection.close_from_any_thread(code, reason)
        left = self._wait_empty(timeout)
        if left and timeout is not None:
            # RFC 6455 7.1.1: peers that did not answer in time are dropped; then wait
            # (briefly) for their sessions to end so that their on_close runs.
            with self._lock:
                connections = list(self._connections)
            for connection in connections:
                with contextlib.suppress(Exception):
                    connection.abort_from_any_thread()
            left = self._wait_empty(ABORT_GRACE)
        return left

    def _wait_empty(self, timeout: float | None) -> int:
        """Wait until no connection is tracked (at most ``timeout``); return how many are."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._connections:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._lock.wait(remaining)
            return len(self._connections)


#: This process's connections.
registry = ConnectionRegistry()
