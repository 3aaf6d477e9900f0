"""The ASGI transport: WebSocket events from an ASGI server, which does the framing.

:class:`ASGIConnection` is what the ASGI entry point hands to the Django edge for
one ``websocket`` scope: it completes or refuses the handshake. After acceptance,
:class:`ASGITransport` carries events for ``async def`` views on the event loop,
and :class:`ASGIThreadTransport` carries them for sync views, with a task on the
loop receiving for them: to a view function's thread, or to a ``WebSocketView``
session parked between events (:mod:`django_websocket.workers`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, MutableMapping
from typing import Any

from ..events import WAKE, Close, CloseCode, Event, Message
from ..exceptions import ConnectionClosed
from .base import Channel
from .servers import asgi_close_code

__all__ = ["ASGIConnection", "ASGIThreadTransport", "ASGITransport"]

logger = logging.getLogger("django_websocket")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Unread messages a sync view's receiver task holds before it stops reading.
MAX_QUEUE = 64
# Seconds a sync view's thread waits for the event loop to run a send for it.
LOOP_TIMEOUT = 10.0
# Seconds between a waiting sync view's checks that the server's loop still runs.
SLICE = 1.0
# Messages a sync view may have sent that the server has not taken yet: its thread
# goes on without waiting for each send, and waits (bounded) beyond this many.
SEND_WINDOW = 16


# asyncio.current_task(loop), as cheap as this Python allows: it runs twice per
# message. Before 3.12 the function is Python code (~0.2 us) over a dict of C tasks.
_tasks = getattr(asyncio.tasks, "_current_tasks", None)
_task_of: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None] = (
    _tasks.get if sys.version_info < (3, 12) and isinstance(_tasks, dict) else asyncio.current_task
)
del _tasks


def _still_cancelling(task: asyncio.Task[Any] | None) -> bool:
    """Take back our own cancel(); return whether someone else cancelled ``task`` too."""
    if task is None or not hasattr(task, "uncancel"):  # Python 3.10: cannot tell
        return False
    remaining: int = task.uncancel()
    return remaining > 0


class ASGITransport:
    """Carry one accepted connection over ASGI ``receive``/``send`` (an AsyncTransport)."""

    #: ASGI servers send keepalive pings themselves (and an app cannot).
    server_keepalive = True

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._loop = asyncio.get_running_loop()
        self._pending: asyncio.Future[dict[str, Any]] | None = None
        self._close: Close | None = None
        self._close_code = asgi_close_code(send)
        # The task awaiting the server's receive() directly (no timeout), and
        # whether wake() cancelled it (then the CancelledError is ours, not a stop).
        self._waiter: asyncio.Task[Any] | None = None
        self._woken = False
        self._wakeup: asyncio.Future[Any] | None = None  # wake() of a timed receive
        #: Seconds a send may wait for the server (a client that stopped reading);
        #: ``None``: no limit. Set from WEBSOCKET_CLOSE_TIMEOUT by aaccept().
        self.send_timeout: float | None = None
        self._sender: asyncio.Task[Any] | None = None
        self._send_started = 0.0
        self._send_timed_out = False

    def watch_sends(self, timeout: float | None) -> None:
        """Drop the connection when a send waits more than ``timeout`` seconds."""
        self.send_timeout = timeout
        if timeout is not None:
            _SendWatch.of(asyncio.get_running_loop()).add(self)

    def _event(self, message: dict[str, Any]) -> Event | None:
        """The event of a non-message ASGI event (receive() handles messages inline)."""
        if message.get("type") == "websocket.disconnect":
            code = message.get("code", CloseCode.NO_STATUS_RCVD)
            # daphne sends "code": None when the connection was lost.
            code = CloseCode.ABNORMAL_CLOSURE if code is None else int(code)
            self._close = Close(code, message.get("reason") or "")
            return self._close
        return None  # nothing a connection needs (unknown or extension events)

    def direct(self) -> Receive | None:
        """The server's ``receive`` for the caller to await itself; ``None`` if not now.

        The fast path of an async view's ``wait()`` (no timeout, no receive pending
        from a timed one): awaited in the caller's own coroutine, it saves a
        coroutine per message, and the frame an idle session would keep for hours.
        The caller hands the message to :meth:`received`, or an exception to
        :meth:`interrupted`. Only one task may use it at a time.
        """
        if self._close is not None or self._pending is not None:
            return None
        self._waiter = _task_of(self._loop)
        return self._receive

    def received(self, message: dict[str, Any]) -> Event | None:
        """The event of a server message (from :meth:`direct`); ``None`` if none for us."""
        self._waiter, self._woken = None, False
        if message["type"] == "websocket.receive":  # per message: no method call
            text: str | None = message.get("text")
            if text is not None:
                return text
            data = message.get("bytes")
            return data if data.__class__ is bytes else bytes(data or b"")
        return self._event(message)

    def interrupted(self, exc: BaseException) -> bool:
        """Whether ``exc``, raised awaiting :meth:`direct`, was only our :meth:`wake`.

        Then the caller returns as woken; otherwise it re-raises ``exc``.
        """
        woken, waiter = self._woken, self._waiter
        self._waiter, self._woken = None, False
        return isinstance(exc, asyncio.CancelledError) and woken and not _still_cancelling(waiter)

    async def receive(self, timeout: float | None) -> Event | None:
        while self._close is None:
            if timeout is None and (receive := self.direct()) is not None:
                # The fast path: no task, no timer per message.
                try:
                    message = await receive()
                except BaseException as exc:
                    if not self.interrupted(exc):
                        raise
                    return None  # woken: the caller looks at its deadlines again
            else:
                # Keep one receive() outstanding across timeouts: cancelling it could lose an event.
                if self._pending is None:
                    self._pending = asyncio.ensure_future(self._receive())
                self._wakeup = asyncio.get_running_loop().create_future()
                try:
                    done, _ = await asyncio.wait(
                        {self._pending, self._wakeup},
                        timeout=timeout,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    self._wakeup = None
                if self._pending not in done:
                    return None
                message = self._pending.result()
                self._pending = None
            event = self.received(message)
            if event is not None:
                return event
        return self._close

    async def send(self, message: Message) -> None:
        key = "text" if isinstance(message, str) else "bytes"
        if self.send_timeout is not None:
            # Watched, not timed per message: _send_watch cancels a send that has
            # waited longer (a client that stopped reading).
            self._sender = _task_of(self._loop)
            self._send_started = time.monotonic()
        try:
            await self._send({"type": "websocket.send", key: message})
        except asyncio.CancelledError:
            if not self._send_timed_out or _still_cancelling(self._sender):
                raise
            raise ConnectionClosed(CloseCode.ABNORMAL_CLOSURE, "send timed out") from None
        except Exception as exc:  # servers raise their own types when the peer is gone
            raise ConnectionClosed(CloseCode.ABNORMAL_CLOSURE, "connection lost") from exc
        finally:
            self._sender = None

    def _check_send(self, now: float) -> None:
        """Cancel a send that waited longer than :attr:`send_timeout` (see _SendWatch)."""
        sender, timeout = self._sender, self.send_timeout
        if sender is not None and timeout is not None and now - self._send_started > timeout:
            self._send_timed_out = True
            self._close = self._close or Close(CloseCode.ABNORMAL_CLOSURE, "send timed out")
            sender.cancel()
            self.wake()  # a view waiting for a message (a group member's sends are a task's)

    async def send_close(self, code: int, reason: str) -> None:
        if self._close_code is not None and self._close_code(code) != code:
            logger.warning(
                "This ASGI server cannot send close code %s; sending %s.",
                code,
                self._close_code(code),
            )
            code = self._close_code(code)
        try:
            # A plain int: daphne (autobahn) rejects an IntEnum such as CloseCode.
            await self._send({"type": "websocket.close", "code": int(code), "reason": reason})
        except Exception:  # already gone: the disconnect event will tell
            self._close = self._close or Close(CloseCode.ABNORMAL_CLOSURE, "")

    async def ping(self, data: bytes) -> bool:
        return False  # ASGI servers do keepalive themselves

    def wake(self) -> None:
        # The servers' receive() waits on an asyncio.Queue (uvicorn, daphne,
        # hypercorn) or on websockets' recv(), which cancelling does not lose
        # messages from; a close is under way anyway when this is called.
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        if self._waiter is not None and not self._woken:
            self._woken = True
            self._waiter.cancel()

    async def abort(self) -> None:
        self._close = self._close or Close(CloseCode.ABNORMAL_CLOSURE, "")
        await self.finish(None)

    async def finish(self, timeout: float | None) -> None:
        self.send_timeout = None
        _SendWatch.discard(self)
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


class ASGIThreadTransport:
    """Carry an ASGI connection to a sync view on another thread (a blocking Transport).

    A task on the event loop receives into a thread-safe channel (pausing at
    :data:`MAX_QUEUE` unread messages). Sends go into an outbox that a task on the
    loop empties in order; the view's thread waits only when :data:`SEND_WINDOW`
    of them are not yet sent (a thread hand-off per message otherwise dominated a
    sync view's echo). A failed send is reported by the next one.
    """

    server_keepalive = True

    def __init__(self, transport: ASGITransport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._channel = Channel()
        self._room = asyncio.Event()
        self._room.set()
        self._closed: Close | None = None
        #: Seconds a send may wait for the server (a client that stopped reading
        #: blocks it); then the connection is dropped. Set from CLOSE_TIMEOUT.
        self.send_timeout: float | None = LOOP_TIMEOUT
        self._window = threading.BoundedSemaphore(SEND_WINDOW)
        self._send_error: ConnectionClosed | None = None
        self._outbox: list[Message | Close] = []  # the loop's side only
        self._sender: asyncio.Task[None] | None = None
        self._stopped = False  # nothing more is sent (dropped, shut down)
        self._pump = asyncio.run_coroutine_threadsafe(self._receive_events(), loop)
        _loop_watch.add(self)

    async def _receive_events(self) -> None:
        try:
            while True:
                if len(self._channel) >= MAX_QUEUE:
                    self._room.clear()
                    await self._room.wait()
                    continue
                event = await self._transport.receive(None)
                self._channel.put(event)  # type: ignore[arg-type]
                if isinstance(event, Close):
                    return
        except BaseException:
            # Cancelled (the server is shutting down) or broken: the view's thread
            # must not wait forever for an event that will never come.
            self._channel.put(Close(CloseCode.ABNORMAL_CLOSURE, ""))
            raise

    def _run(self, coroutine: Awaitable[Any], timeout: float | None = LOOP_TIMEOUT) -> Any:
        """Run ``coroutine`` on the loop and wait for it, but not forever.

        A server that is shutting down may stop its loop with this connection still
        open; the view's thread must then end instead of waiting for ever.

        Raises:
            ConnectionClosed: the loop did not run it within ``timeout`` seconds.
        """
        if not self._loop.is_running():
            coroutine.close()  # type: ignore[attr-defined]
            self._closed = self._closed or Close(CloseCode.ABNORMAL_CLOSURE, "server stopped")
            raise ConnectionClosed(CloseCode.ABNORMAL_CLOSURE, "server stopped")
        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(
            coroutine,  # type: ignore[arg-type]
            self._loop,
        )
        try:
            self._wait(lambda t: bool(concurrent.futures.wait([future], t).done), timeout)
        except ConnectionClosed:
            future.cancel()
            raise
        return future.result()

    def _wait(self, ready: Callable[[float], bool], timeout: float | None) -> None:
        """Call ``ready(seconds)`` in slices until it is true, but not forever.

        In slices: a server that stops its loop (daphne at shutdown) never runs what
        this thread waits for.

        Raises:
            ConnectionClosed: not ready within ``timeout`` seconds, or the loop stopped.
        """
        deadline = time.monotonic() + (LOOP_TIMEOUT if timeout is None else timeout)
        while not ready(min(SLICE, max(deadline - time.monotonic(), 0.0))):
            running = self._loop.is_running()
            if running and time.monotonic() < deadline:
                continue
            self._closed = self._closed or Close(CloseCode.ABNORMAL_CLOSURE, "")
            reason = "send timed out" if running else "server loop stopped"
            raise ConnectionClosed(CloseCode.ABNORMAL_CLOSURE, reason)

    def receive(self, timeout: float | None) -> Event | None:
        if self._closed is not None:
            return self._closed
        # If the server stops its loop at shutdown without telling the connection
        # (daphne), _loop_watch puts a Close here: no wake-ups of this thread meanwhile.
        event = self._channel.get(timeout)
        if event is None:
            return None
        if not self._room.is_set() and len(self._channel) < MAX_QUEUE // 2:
            self._loop.call_soon_threadsafe(self._room.set)
        if isinstance(event, Close):
            self._closed = event
        return event

    def gone(self, close: Close) -> None:
        """End the connection from the loop's side: the next receive returns ``close``."""
        self._pump.cancel()
        self._channel.put(close)

    def loop_stopped(self) -> None:
        """Called by :data:`_loop_watch` when the server's loop no longer runs."""
        self._channel.put(Close(CloseCode.ABNORMAL_CLOSURE, "server stopped"))

    def watch_sends(self, timeout: float | None) -> None:
        """Drop the connection when a send waits more than ``timeout`` seconds."""
        self.send_timeout = timeout  # a full outbox, for this thread
        # The send under way, for the loop: a view that sends seldom never fills it.
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self._loop.call_soon_threadsafe(self._transport.watch_sends, timeout)

    def send(self, message: Message) -> None:
        error = self._send_error
        if error is not None:
            raise ConnectionClosed(error.code, error.reason)
        if self._stopped:
            raise ConnectionClosed(CloseCode.ABNORMAL_CLOSURE, "connection dropped")
        self._reserve()
        try:
            self._loop.call_soon_threadsafe(self._post, message)
        except RuntimeError:  # the loop closed meanwhile
            self._window.release()
            raise ConnectionClosed(CloseCode.ABNORMAL_CLOSURE, "server stopped") from None

    def _reserve(self) -> None:
        """Take a place in the send window; wait (not for ever) while it is full.

        Raises:
            ConnectionClosed: the server took no message for :attr:`send_timeout`
                seconds (a client that stopped reading), or its loop stopped.
        """
        try:
            self._wait(lambda t: self._window.acquire(timeout=t), self.send_timeout)
        except ConnectionClosed:
            if self._loop.is_running():
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self.stop_sending)
            raise
        if not self._loop.is_running():
            self._window.release()
            self._closed = self._closed or Close(CloseCode.ABNORMAL_CLOSURE, "server stopped")
            raise ConnectionClosed(CloseCode.ABNORMAL_CLOSURE, "server stopped")

    def _post(self, item: Message | Close) -> None:
        """Queue a message or close frame for the server (on the loop)."""
        if self._stopped:
            if not isinstance(item, Close):
                self._window.release()
            return
        self._outbox.append(item)
        if self._sender is None or self._sender.done():
            self._sender = self._loop.create_task(self._send_outbox())

    async def _send_outbox(self) -> None:
        try:
            while self._outbox:
                item = self._outbox.pop(0)
                if isinstance(item, Close):
                    await self._transport.send_close(item.code, item.reason)
                    continue
                try:
                    await self._transport.send(item)
                except ConnectionClosed as exc:
                    self._send_error = exc
                finally:
                    self._window.release()
        finally:
            self._sender = None

    def stop_sending(self) -> None:
        """Drop what the outbox holds and send nothing more (on the loop)."""
        self._stopped = True
        for item in self._outbox:
            if not isinstance(item, Close):
                self._window.release()
        self._outbox.clear()
        if self._sender is not None:
            self._sender.cancel()  # its send's place in the window is given back there

    def send_close(self, code: int, reason: str) -> None:
        # Not awaited: from another thread (shutdown closing every connection) it must
        # not wait for this one's closing handshake. Through the outbox, the frame
        # follows the messages sent before it.
        if self._loop.is_running():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._post, Close(code, reason))

    def ping(self, data: bytes) -> bool:
        return False

    def abort(self) -> None:
        self._closed = self._closed or Close(CloseCode.ABNORMAL_CLOSURE, "")
        if self._loop.is_running():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.stop_sending)  # nothing more is sent
        self.finish(None)

    def finish(self, timeout: float | None) -> None:
        _loop_watch.discard(self)
        if not self._loop.is_running():
            return
        self._loop.call_soon_threadsafe(self._pump.cancel)
        with contextlib.suppress(ConnectionClosed):
            # _finish waits up to ``timeout`` for the outbox, then for the close.
            self._run(self._finish(timeout), None if timeout is None else 2 * timeout + SLICE)

    async def _finish(self, timeout: float | None) -> None:
        """Send what the outbox holds (bounded by ``timeout``), then finish."""
        sender = self._sender
        if sender is not None:
            await asyncio.wait({sender}, timeout=timeout)
        self.stop_sending()
        await self._transport.finish(timeout)

    def enable_wake(self) -> None:
        pass

    def wake(self) -> None:
        self._channel.put(WAKE)

    def park(self, resume: Callable[[], None], timeout: float | None = None) -> bool:
        """Call ``resume`` when the next event arrives; ``False`` if one is there.

        ``timeout`` is ignored: the server does keepalive, so an open connection
        has no deadline of its own.
        """
        return self._channel.park(resume)


class _SendWatch:
    """Per event loop: once a second, cancel the sends that waited too long.

    One timer per loop rather than one per message keeps the send path cheap.
    """

    _watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SendWatch] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self) -> None:
        # Nothing that refers to the loop (a timer handle does): it is this object's
        # key in a WeakKeyDictionary. Its methods run on the loop.
        self._transports: weakref.WeakSet[ASGITransport] = weakref.WeakSet()
        self._scheduled = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _SendWatch:
        watch = cls._watches.get(loop)
        if watch is None:
            watch = cls._watches[loop] = cls()
        return watch

    def add(self, transport: ASGITransport) -> None:
        self._transports.add(transport)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(SLICE, self._check)

    @classmethod
    def discard(cls, transport: ASGITransport) -> None:
        """Stop watching ``transport`` (on its loop)."""
        watch = cls._watches.get(asyncio.get_running_loop())
        if watch is not None:
            watch._transports.discard(transport)

    def _check(self) -> None:
        self._scheduled = False
        now = time.monotonic()
        for transport in list(self._transports):
            transport._check_send(now)
        if self._transports:
            self._scheduled = True
            asyncio.get_running_loop().call_later(SLICE, self._check)


class _LoopWatch:
    """One thread per process that tells sync views when their server's loop stopped.

    A server may stop its event loop at shutdown with connections still open
    (daphne); their views' threads would wait for ever. Checking every
    :data:`SLICE` seconds in one thread, rather than in each view's thread, keeps
    thousands of idle connections from waking up (and fighting for the GIL).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transports: weakref.WeakSet[ASGIThreadTransport] = weakref.WeakSet()
        self._thread: threading.Thread | None = None

    def add(self, transport: ASGIThreadTransport) -> None:
        with self._lock:
            self._transports.add(transport)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="django-websocket-loop-watch", daemon=True
                )
                self._thread.start()

    def discard(self, transport: ASGIThreadTransport) -> None:
        with self._lock:
            self._transports.discard(transport)

    def _watch(self) -> None:
        while True:
            time.sleep(SLICE)
            with self._lock:
                if not self._transports:
                    self._thread = None  # the next add() starts another
                    return
                stopped = [t for t in self._transports if not t._loop.is_running()]
                for transport in stopped:
                    self._transports.discard(transport)
            for transport in stopped:
                transport.loop_stopped()


_loop_watch = _LoopWatch()


class ASGIConnection:
    """One ``websocket`` scope before the handshake: accept it or refuse it.

    The ASGI entry point puts it in ``request.META`` under
    :data:`~django_websocket.transports.servers.UPGRADE_KEY`.
    """

    server_validated = True  # ASGI servers validate the upgrade before the app sees it

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.loop = asyncio.get_running_loop()
        self.accepted = False
        self.responded = False
        self.thread_transport: ASGIThreadTransport | None = None
        #: A view's deferred session (serve_async, serve_sync), to run once Django's
        #: response path unwound, and its connection (released without running it
        #: if the server stops first).
        self.session: Coroutine[Any, Any, object] | None = None
        self.abandoned: Callable[[], object] | None = None
        self.websocket: Any = None

    @property
    def can_send_status(self) -> bool:
        """Whether the server supports the ``websocket.http.response`` extension."""
        return "websocket.http.response" in (self.scope.get("extensions") or {})

    async def aaccept(self, subprotocol: str | None) -> ASGITransport:
        """Send ``websocket.accept`` and return the connection's transport."""
        self.accepted = self.responded = True
        message: dict[str, Any] = {"type": "websocket.accept"}
        if subprotocol is not None:
            message["subprotocol"] = subprotocol
        await self.send(message)
        return ASGITransport(self.receive, self.send)

    def accept(self, subprotocol: str | None) -> ASGIThreadTransport:
        """Accept from a sync view's thread; return a blocking transport."""
        future = asyncio.run_coroutine_threadsafe(self.aaccept(subprotocol), self.loop)
        self.thread_transport = ASGIThreadTransport(future.result(), self.loop)
        return self.thread_transport

    def defer(
        self,
        session: Coroutine[Any, Any, object],
        websocket: Any,
        abandoned: Callable[[], object] | None = None,
    ) -> None:
        """Keep a view's ``session`` for the entry point (``serve_async``, ``serve_sync``).

        ``abandoned`` is called if the session never starts (the server cancelled).
        """
        self.session, self.websocket, self.abandoned = session, websocket, abandoned

    async def cancelled(self) -> None:
        """The server cancelled the connection (it is shutting down): end the session.

        The client gets 1001 if the server still sends; a sync view's thread, blocked
        waiting for an event the server will never deliver, is woken with that close.
        """
        if self.thread_transport is not None:
            self.thread_transport.stop_sending()  # the close below comes last
        if self.accepted:
            with contextlib.suppress(Exception):
                await self.send({"type": "websocket.close", "code": int(CloseCode.GOING_AWAY)})
        if self.thread_transport is not None:
            self.thread_transport.gone(Close(CloseCode.GOING_AWAY, "server shutting down"))

    async def refuse(
        self, status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes
    ) -> None:
        """Refuse the handshake with an HTTP response, or close 1008 where impossible."""
        self.responded = True
        if self.can_send_status:
            await self.send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": list(headers),
                }
            )
            await self.send({"type": "websocket.http.response.body", "body": body})
            return
        logger.warning(
            "WebSocket handshake for %s refused with HTTP %s; this server cannot send an "
            "HTTP status here, so the connection is closed with 1008.",
            self.scope.get("path", "?"),
            status,
        )
        await self.send({"type": "websocket.close", "code": CloseCode.POLICY_VIOLATION})
