"""``WebSocketView``: a class-based view that drives the WebSocket loop itself.

It follows Django's :class:`~django.views.generic.View` (``as_view``, ``setup``,
``dispatch``), so mixins such as ``LoginRequiredMixin`` refuse the handshake before
it happens. After the handshake the view calls ``on_open``, ``on_message`` once per
message in order, and ``on_close`` exactly once, however the connection ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections import deque
from collections.abc import Callable, Generator, Sequence
from functools import update_wrapper
from types import CoroutineType
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import classonlymethod
from django.utils.functional import classproperty
from django.views.generic import View

from .accept import (
    OPTION_NAMES,
    Options,
    aaccept,
    accept,
    afinish,
    arelease,
    close_connections,
    finish,
    is_websocket,
    refuse,
    release,
    serve_async,
    serve_sync,
)
from .connection import IDLE, OVERFLOW, Posted, WebSocket
from .connection_async import AsyncWebSocket
from .events import CloseCode, Message
from .exceptions import ConnectionClosed, HandshakeError
from .groups import abroadcast, broadcast, get_broker
from .workers import LINGER

__all__ = ["USE_SETTING", "WebSocketView"]

logger = logging.getLogger("django_websocket")

#: The hooks whose sync/async nature decides the view's (Django's view_is_async rule).
HOOKS = ("on_open", "on_message", "on_close", "on_error", "on_group_message")


class _UseSetting:
    def __repr__(self) -> str:
        return "USE_SETTING"


#: Default of the per-view setting overrides: use the ``WEBSOCKET_*`` setting.
USE_SETTING: Any = _UseSetting()
_INVALID = object()


class WebSocketView(View):
    """Serve a WebSocket with ``on_open`` / ``on_message`` / ``on_close`` hooks.

    Class attributes (each may also be passed to ``as_view()``):
        encoding: ``"json"`` to hand ``on_message`` decoded JSON (invalid JSON
            closes with 1007); ``None`` for ``str``/``bytes``.
        subprotocols: the subprotocols this view speaks; the client's first
            offer found here is selected (override :meth:`select_subprotocol`).
        groups: groups every connection joins on open (before ``on_open``).
        max_group_queue: group messages that may wait for a slow client before
            it is closed with 1013 (Try Again Later), so it never delays others.
        max_message_size, ping_interval, ping_timeout, close_timeout,
        compression, max_connections, allowed_origins: per-view values of the
            ``WEBSOCKET_*`` settings.
    """

    encoding: str | None = None
    subprotocols: Sequence[str] = ()
    groups: Sequence[str] = ()
    #: Group messages that may wait for a slow client; past that it is closed with 1013.
    max_group_queue: int = 256
    max_message_size: int | None = USE_SETTING
    ping_interval: float | None = USE_SETTING
    ping_timeout: float | None = USE_SETTING
    close_timeout: float | None = USE_SETTING
    compression: str | None = USE_SETTING
    max_connections: int | None = USE_SETTING
    allowed_origins: Sequence[str] | None = USE_SETTING

    request: HttpRequest
    _member: _ThreadMember | _LoopMember | None = None
    #: The connection: a :class:`~.connection.WebSocket` in sync views, an
    #: :class:`~.connection_async.AsyncWebSocket` in async ones.
    websocket: Any

    # -- Django's View protocol ------------------------------------------------------

    @classproperty
    def view_is_async(cls) -> bool:  # noqa: N805 (a class property, as in Django)
        """Whether the hooks (and HTTP handlers) are ``async def``; mixing is an error."""
        handlers = [
            getattr(cls, n) for n in HOOKS if getattr(cls, n) is not getattr(WebSocketView, n)
        ]
        handlers += [
            getattr(cls, method)
            for method in cls.http_method_names
            if method != "options" and hasattr(cls, method)
        ]
        kinds = {iscoroutinefunction(handler) for handler in handlers}
        if len(kinds) > 1:
            raise ImproperlyConfigured(
                f"{cls.__name__} hooks and HTTP handlers must either be all sync or all async."  # type: ignore[attr-defined]
            )
        return kinds.pop() if kinds else False

    @classonlymethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        """Return the view function, as Django's ``View.as_view()`` does."""
        if initkwargs.get("encoding", cls.encoding) not in (None, "json"):
            raise ImproperlyConfigured(f"{cls.__name__}.encoding must be 'json' or None.")
        view = super().as_view(**initkwargs)
        if cls.view_is_async:
            view = cls._async_entry(view)
        view.websocket_handler = True  # type: ignore[attr-defined]  # the middleware skips us
        view.accept_websocket = True  # type: ignore[attr-defined]
        return view

    @classmethod
    def _async_entry(cls, view: Callable[..., Any]) -> Callable[..., Any]:
        # A sync dispatch() from a mixin (LoginRequiredMixin...) may touch the
        # session or the database: run it on a thread, then await what it returns.
        sync_dispatch = (
            not iscoroutinefunction(cls.dispatch) and cls.dispatch is not WebSocketView.dispatch
        )

        async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if sync_dispatch:

                def run() -> Any:  # not ``view`` itself: Django marked it a coroutine function
                    return view(request, *args, **kwargs)

                result = await sync_to_async(run)()
            else:
                result = view(request, *args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        update_wrapper(async_view, view)
        return markcoroutinefunction(async_view)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        """Serve a WebSocket request; hand plain HTTP to ``get()`` and friends."""
        if not is_websocket(request):
            return super().dispatch(request, *args, **kwargs)
        if self.view_is_async:
            return self._serve_async(request)
        return self._serve(request)

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        """Answer 426 when the view has no HTTP handlers at all, else 405 as Django does."""
        if any(hasattr(self, m) for m in self.http_method_names if m != "options"):
            return super().http_method_not_allowed(request, *args, **kwargs)
        response = self.upgrade_required(request)
        if self.view_is_async:

            async def func() -> HttpResponse:
                return response

            return func()
        return response

    def upgrade_required(self, request: HttpRequest) -> HttpResponse:
        """Return the ``426 Upgrade Required`` answer to a plain HTTP request."""
        response = HttpResponse(
            "this url accepts websocket requests only\n",
            status=426,
            content_type="text/plain; charset=utf-8",
        )
        if "wsgi.version" not in request.META:  # WSGI forbids hop-by-hop headers (PEP 3333)
            response["Upgrade"] = "websocket"
        return response

    # -- the connection --------------------------------------------------------------

    def get_options(self) -> Options:
        """Return the connection settings: ``WEBSOCKET_*`` with this view's overrides."""
        overrides = {
            name: getattr(self, name)
            for name in OPTION_NAMES
            if getattr(self, name) is not USE_SETTING
        }
        return Options.from_settings(**overrides)

    def select_subprotocol(self, offered: Sequence[str]) -> str | None:
        """Pick the subprotocol: the client's first offer that is in ``subprotocols``."""
        return next((name for name in offered if name in self.subprotocols), None)

    def send(self, message: Message) -> Any:
        """Send text (``str``) or binary (``bytes``); await it in async views."""
        return self.websocket.send(message)

    def send_json(self, obj: Any) -> Any:
        """Send ``obj`` as a JSON text message; await it in async views."""
        return self.websocket.send(json.dumps(obj))

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> Any:
        """Start the closing handshake; await it in async views."""
        return self.websocket.close(code, reason)

    # -- groups ----------------------------------------------------------------------

    def join(self, group: str) -> None:
        """Add this connection to ``group`` (in every process sharing the broker)."""
        broker = get_broker()
        if self._member is None:
            if self.view_is_async:
                self._member = _LoopMember(self)
            else:
                self.websocket.enable_posts()
                self._member = _ThreadMember(self.websocket, self.max_group_queue)
        broker.join(group, self._member)

    def leave(self, group: str) -> None:
        """Remove this connection from ``group``."""
        if self._member is not None:
            get_broker().leave(group, self._member)

    def broadcast(self, group: str, message: Message) -> Any:
        """Send ``message`` to every member of ``group``; await it in async views."""
        return abroadcast(group, message) if self.view_is_async else broadcast(group, message)

    def _join_early(self) -> None:
        """Join ``groups`` as soon as the handshake is accepted, before the session runs.

        Under ASGI the session starts once Django's response path has unwound: a
        client that already has its 101 would miss what is broadcast meanwhile.
        Messages wait until ``on_open`` has run. A failing join (an invalid group
        name) is left to the session's own join, which reports it as before.
        """
        try:
            for group in self.groups:
                self.join(group)
        except Exception:
            pass  # raised again, in the session, by its join
        if isinstance(self._member, _LoopMember):
            self._member.held = True  # no on_group_message before on_open (released there)

    def _leave_groups(self) -> None:
        if self._member is not None:
            get_broker().leave_all(self._member)

    # -- hooks -----------------------------------------------------------------------

    def on_open(self) -> Any:
        """Called once the handshake is done; ``self.request`` and URL args are set."""

    def on_message(self, message: Any) -> Any:
        """Called once per message: ``str`` (text), ``bytes`` (binary) or decoded JSON."""

    def on_close(self, code: int, reason: str) -> Any:
        """Called exactly once after the connection closed, with the close code."""

    def on_error(self, exc: Exception) -> Any:
        """Called when a hook raised: log it and close with 1011 (override to differ)."""
        logger.error("Error in %s", type(self).__qualname__, exc_info=exc)
        return self.close(CloseCode.INTERNAL_ERROR, "internal error")

    def on_group_message(self, group: str, message: Message) -> Any:
        """Called for each message broadcast to a group this connection joined."""
        return self.send(message)

    # -- the loop (sync) -------------------------------------------------------------

    def _decode(self, message: Message) -> Any:
        if self.encoding != "json":
            return message
        try:
            return json.loads(message)
        except ValueError:
            self.websocket.close(CloseCode.INVALID_DATA, "invalid json")
            return _INVALID

    def _guard(self, hook: Callable[..., Any], *args: Any) -> bool:
        """Run a sync hook with fresh DB connections; route an exception to ``on_error``."""
        close_connections()
        try:
            hook(*args)
            return True
        except ConnectionClosed:
            return False  # the client left while the hook sent: not an error, the loop ends
        except Exception as exc:
            try:
                self.on_error(exc)
            except Exception:
                logger.exception("Error in %s.on_error", type(self).__qualname__)
                self.websocket.close(CloseCode.INTERNAL_ERROR, "internal error")
            return False
        finally:
            close_connections()

    def _serve(self, request: HttpRequest) -> HttpResponse:
        try:
            self.websocket = websocket = accept(
                request, select_subprotocol=self.select_subprotocol, options=self.get_options()
            )
        except HandshakeError as exc:
            return refuse(exc)
        self._join_early()
        return serve_sync(request, websocket, self._run, self._steps, self._leave_groups)

    def _run(self) -> None:
        """The connection's loop on this thread, blocking between events (WSGI)."""
        websocket: WebSocket = self.websocket
        try:
            if self._open():
                while (event := websocket.next_event()) is not None:
                    self._handle(event)
                    # Not named while the loop waits: an idle connection would
                    # keep its last message (up to the size limit) alive.
                    event = None
        finally:
            self._end()

    def _steps(self) -> Generator[None, None, None]:
        """The connection's loop as a generator that yields when there is nothing to do.

        Under ASGI and on our runserver it is resumed on a worker thread at each
        event, so an idle connection holds no thread (:func:`.accept.serve_sync`).
        """
        websocket: WebSocket = self.websocket
        try:
            if self._open():
                while (event := websocket.next_event(block=False, linger=LINGER)) is not None:
                    if event is IDLE:
                        yield
                    else:
                        self._handle(event)
                    event = None  # not kept alive while idle (see _run)
        finally:
            self._end()

    def _open(self) -> bool:
        for group in self.groups:
            self.join(group)  # joined already (_join_early): only reports a failure
        return self._guard(self.on_open)

    def _handle(self, event: Any) -> None:
        """Hand one event of :meth:`.WebSocket.next_event` to its hook."""
        if event is OVERFLOW:
            self.websocket.close(CloseCode.TRY_AGAIN_LATER, "too slow for group messages")
        elif isinstance(event, Posted):
            self._guard(self.on_group_message, *event.item)
        elif (decoded := self._decode(event)) is not _INVALID:
            self._guard(self.on_message, decoded)

    def _end(self) -> None:
        websocket: WebSocket = self.websocket
        self._leave_groups()
        try:
            finish(websocket, release=False)
            self._guard(self.on_close, websocket.close_code, websocket.close_reason)
        finally:
            release(websocket)  # after on_close: a shutdown waits for it

    # -- the loop (async) ------------------------------------------------------------

    async def _aguard(self, hook: Callable[..., Any], *args: Any) -> bool:
        """Run a hook (awaiting it if async); route an exception to ``on_error``."""
        try:
            result = hook(*args)
            if result is not None and inspect.isawaitable(result):
                await result
            return True
        except Exception as exc:
            await self._afailed(exc)
            return False

    async def _afailed(self, exc: Exception) -> None:
        """A hook raised ``exc``: hand it to ``on_error``, unless the client just left."""
        if isinstance(exc, ConnectionClosed):
            return  # the client left while the hook sent: not an error, the loop ends
        try:
            result = self.on_error(exc)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("Error in %s.on_error", type(self).__qualname__)
            await self.websocket.close(CloseCode.INTERNAL_ERROR, "internal error")

    async def _serve_async(self, request: HttpRequest) -> HttpResponse:
        try:
            self.websocket = websocket = await aaccept(
                request, select_subprotocol=self.select_subprotocol, options=self.get_options()
            )
        except HandshakeError as exc:
            return refuse(exc)
        self._join_early()
        return await serve_async(
            request, websocket, self._session_async(websocket), self._leave_groups
        )

    async def _session_async(self, websocket: AsyncWebSocket) -> HttpResponse:
        try:
            for group in self.groups:
                self.join(group)  # joined already (_join_early): only reports a failure
            opened = await self._aguard(self.on_open)
            if opened and isinstance(self._member, _LoopMember):
                self._member.release()
            if opened:
                on_message, decode = self.on_message, self.encoding == "json"
                while (message := await websocket.wait()) is not None:
                    if decode:
                        try:
                            message = json.loads(message)
                        except ValueError:
                            await websocket.close(CloseCode.INVALID_DATA, "invalid json")
                            message = None
                            continue
                    # _aguard(on_message, message), inline: it runs per message.
                    try:
                        result = on_message(message)
                        message = None  # not kept alive while the loop waits (see _serve)
                        if result is not None and (
                            result.__class__ is CoroutineType or inspect.isawaitable(result)
                        ):
                            await result
                    except Exception as exc:
                        message = None  # not kept alive through on_error
                        await self._afailed(exc)
                    result = None
        finally:
            self._leave_groups()
            if isinstance(self._member, _LoopMember):
                await self._member.stop()
            try:
                response = await afinish(websocket, release=False)
                await self._aguard(self.on_close, websocket.close_code, websocket.close_reason)
            finally:
                await arelease(websocket)  # after on_close: a shutdown waits for it
        return response


class _ThreadMember:
    """A sync view's connection in groups: messages are posted to its own thread."""

    def __init__(self, websocket: WebSocket, limit: int) -> None:
        self.websocket = websocket
        self.limit = limit

    def deliver(self, group: str, message: Message) -> None:
        self.websocket.post((group, message), self.limit)


class _LoopMember:
    """An async view's connection in groups: a task on its loop sends in order."""

    def __init__(self, view: WebSocketView) -> None:
        self.view = view
        self.loop = asyncio.get_running_loop()
        self.queue: deque[tuple[str, Message]] = deque()
        self.task: asyncio.Task[None] | None = None
        self.stopped = False
        #: Queue without sending until release() (joined before on_open ran).
        self.held = False

    def deliver(self, group: str, message: Message) -> None:
        self.loop.call_soon_threadsafe(self.enqueue, group, message)

    def enqueue(self, group: str, message: Message) -> None:
        """Queue a group message for sending; on the member's loop only."""
        websocket = self.view.websocket
        if self.stopped or websocket.closed:
            return
        if len(self.queue) >= self.view.max_group_queue:
            self.queue.clear()
            self.loop.create_task(
                websocket.close(CloseCode.TRY_AGAIN_LATER, "too slow for group messages")
            )
            return
        self.queue.append((group, message))
        if not self.held and (self.task is None or self.task.done()):
            self.task = self.loop.create_task(self._drain())

    def release(self) -> None:
        """Start sending what was queued while held; on the member's loop only."""
        self.held = False
        if self.queue and not self.stopped and (self.task is None or self.task.done()):
            self.task = self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self.queue and not self.view.websocket.closed:
                group, message = self.queue.popleft()
                await self.view._aguard(self.view.on_group_message, group, message)
        finally:
            self.task = None  # a done task kept until the next message would outlive GC gen 0

    async def stop(self) -> None:
        self.stopped = True
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
