"""Test WebSocket views: an in-process client and a live-server test case.

:class:`WebSocketClient` is Django's test :class:`~django.test.Client` (cookies,
``force_login()``, ``login()``, default headers) plus :meth:`~WebSocketClient.connect`,
which runs the real view through the full middleware chain and URL resolver in
process, with no server and no socket, on the same core as production. The view
runs on a thread of its own that shares the test's database connections, so it
sees a ``TestCase``'s data.

:class:`AsyncWebSocketClient` offers the same with ``async with`` and ``await``.
:class:`WebSocketLiveServerTestCase` serves the project over a real socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, cast

from asgiref.sync import sync_to_async
from django.core.servers.basehttp import ThreadedWSGIServer
from django.core.signals import got_request_exception
from django.db import connections
from django.http import HttpResponseBase
from django.test import Client, LiveServerTestCase
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler
from django.utils.functional import classproperty

from .accept import SessionResponse, db_hygiene, shutdown
from .connection import check_close
from .events import Close, CloseCode, Message
from .exceptions import ConnectionClosed, HandshakeError, WebSocketError
from .management.commands.runserver import WebSocketRequestHandler
from .transports.base import AsyncTransport, Transport
from .transports.memory import MemoryClient, memory_pair
from .transports.servers import UPGRADE_KEY
from .transports.threaded import ThreadedTransport

__all__ = [
    "AsyncWebSocketClient",
    "HandshakeRejected",
    "WebSocketClient",
    "WebSocketLiveServerTestCase",
    "WebSocketTestConnection",
]

DEFAULT_TIMEOUT = 5.0


class HandshakeRejected(WebSocketError):
    """The server answered the upgrade with HTTP instead of accepting it.

    Attributes:
        status_code: the HTTP status (400, 403, 404, 426, 503...).
        response: Django's response object.
    """

    def __init__(self, response: HttpResponseBase) -> None:
        self.response = response
        self.status_code = response.status_code
        super().__init__(f"websocket handshake rejected with HTTP {response.status_code}")


class _MemoryUpgrade:
    """The test client's side of the handshake: a memory transport, no socket."""

    server_validated = False  # the request carries real upgrade headers: check them

    def __init__(self) -> None:
        self.transport, self.client = memory_pair()
        self.subprotocol: str | None = None
        self.accepted = threading.Event()
        self.abandoned = False

    def accept(self, subprotocol: str | None) -> Transport:
        if self.abandoned:  # connect() timed out: nobody would ever close this one
            raise HandshakeError(504, "the test client stopped waiting for the handshake")
        self.subprotocol = subprotocol
        self.accepted.set()
        return self.transport

    async def aaccept(self, subprotocol: str | None) -> AsyncTransport:
        return ThreadedTransport(self.accept(subprotocol))


class WebSocketTestConnection:
    """One WebSocket connection to a view, as a test sees it.

    Returned by :meth:`WebSocketClient.connect`; use it as a context manager so the
    connection is closed (1000) and the view has returned when the block ends.
    """

    def __init__(self, client: WebSocketClient, environ: dict[str, Any], timeout: float) -> None:
        self._client = client
        self._environ = environ
        self.timeout = timeout
        self._upgrade = _MemoryUpgrade()
        environ[UPGRADE_KEY] = self._upgrade
        self._peer: MemoryClient = self._upgrade.client
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._exc_info: Any = None
        self.response: HttpResponseBase | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._shared = list(connections.all(initialized_only=True))
        self._thread = threading.Thread(target=self._serve, name="websocket-test-view", daemon=True)

    # -- the view's thread ---------------------------------------------------------

    def _serve(self) -> None:
        db_hygiene.set(False)  # as Django's test client: keep the test's transaction
        for connection in self._shared:
            connections[connection.alias] = connection
        uid = f"websocket-test-{id(self)}"
        got_request_exception.connect(self._store_exc_info, dispatch_uid=uid)
        try:
            self.response = self._client.handler(self._environ)
        except BaseException as exc:  # reported on the test's thread
            self._error = exc
        finally:
            got_request_exception.disconnect(dispatch_uid=uid)
            for connection in self._shared:
                connection.dec_thread_sharing()
            self._done.set()
            self._upgrade.accepted.set()  # wake connect() if the view never accepted

    def _store_exc_info(self, **kwargs: Any) -> None:
        self._exc_info = sys.exc_info()

    # -- the test's thread ------------------------------------------------------------

    def _start(self) -> WebSocketTestConnection:
        for connection in self._shared:
            connection.inc_thread_sharing()
        self._thread.start()
        if not self._upgrade.accepted.wait(self.timeout):
            self._upgrade.abandoned = True
            raise TimeoutError(f"the view neither accepted nor refused within {self.timeout} s")
        if not self._done.is_set():
            return self  # accepted: the view is running
        # The view returned already: it refused, or it accepted and ended at once.
        self._finish()
        if self._error is not None:
            raise self._error
        if self._exc_info is not None and self._client.raise_request_exception:
            raise self._exc_info[1]
        assert self.response is not None
        if isinstance(self.response, SessionResponse):
            return self
        raise HandshakeRejected(self.response)

    def _finish(self) -> None:
        self._thread.join(self.timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the view did not return within {self.timeout} s of the close")
        # Only a refusal's cookies reach a real client: after the 101 nothing is sent.
        response = self.response
        if response is not None and not isinstance(response, SessionResponse):
            self._client.cookies.update(response.cookies)

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the view selected, if any."""
        return self._upgrade.subprotocol

    def send(self, message: Message) -> None:
        """Send a text (``str``) or binary (``bytes``) message to the view.

        Raises:
            ConnectionClosed: the connection is closed.
        """
        if not isinstance(message, (str, bytes)):
            raise TypeError(f"message must be str or bytes, not {type(message).__name__}")
        if self.close_code is not None or self._peer.close is not None:
            close = self._peer.close or Close(CloseCode.ABNORMAL_CLOSURE, "")
            raise ConnectionClosed(close.code, close.reason)
        self._peer.send(message)

    def send_json(self, obj: Any) -> None:
        """Send ``obj`` encoded as JSON in a text message."""
        self.send(json.dumps(obj))

    def receive(self, timeout: float | None = None) -> Message:
        """Return the view's next message.

        Raises:
            ConnectionClosed: the view closed the connection (``code``, ``reason``).
            TimeoutError: nothing came within ``timeout`` seconds (default: the client's).
        """
        if self.close_code is not None:
            raise ConnectionClosed(self.close_code, self.close_reason or "")
        timeout = self.timeout if timeout is None else timeout
        event = self._peer.receive(timeout)
        if event is None:
            raise TimeoutError(f"no message from the view within {timeout} s")
        if isinstance(event, Close):
            self.close_code, self.close_reason = event.code, event.reason
            self._finish()
            raise ConnectionClosed(event.code, event.reason)
        return event

    def receive_json(self, timeout: float | None = None) -> Any:
        """Return the view's next message decoded from JSON."""
        return json.loads(self.receive(timeout))

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection and wait (bounded) for the view to return.

        Raises:
            ValueError: a code or reason a real client may not send.
        """
        check_close(code, reason)
        if self.close_code is None:
            server_close = self._upgrade.transport.close_sent
            if server_close is not None:  # the view closed first
                self.close_code, self.close_reason = server_close.code, server_close.reason
            else:
                self._peer.send_close(code, reason)
                self.close_code, self.close_reason = code, reason
        self._finish()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> WebSocketTestConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class WebSocketClient(Client):
    """Django's test client that can also open WebSocket connections to views.

    Args:
        timeout: default seconds for every wait (handshake, ``receive``, close).
        Other arguments are :class:`django.test.Client`'s.
    """

    def __init__(self, *args: Any, timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout = timeout
        self._connecting: float | None = None

    def connect(
        self,
        path: str,
        headers: Mapping[str, str] | None = None,
        subprotocols: Sequence[str] | None = None,
        *,
        secure: bool = False,
        timeout: float | None = None,
        **extra: Any,
    ) -> WebSocketTestConnection:
        """Open a WebSocket to ``path`` and return the connection once accepted.

        Raises:
            HandshakeRejected: the view (or a middleware) answered with HTTP.
            TimeoutError: the view neither accepted nor refused in time.
        """
        handshake = {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
            "Sec-WebSocket-Version": "13",
        }
        if subprotocols:
            handshake["Sec-WebSocket-Protocol"] = ", ".join(subprotocols)
        handshake.update(headers or {})
        self._connecting = self.timeout if timeout is None else timeout
        try:
            connection = self.generic("GET", path, secure=secure, headers=handshake, **extra)
            return cast(WebSocketTestConnection, connection)
        finally:
            self._connecting = None

    def request(self, **request: Any) -> Any:
        """Serve a plain request as Django's client does; start a connection in ``connect``."""
        if self._connecting is None:
            return super().request(**request)
        environ = self._base_environ(**request)  # type: ignore[attr-defined]
        return WebSocketTestConnection(self, environ, self._connecting)._start()


class AsyncWebSocketTestConnection:
    """The :class:`WebSocketTestConnection` API with coroutines, for ``async def`` tests."""

    def __init__(self, connection: WebSocketTestConnection) -> None:
        self.sync = connection

    subprotocol = property(lambda self: self.sync.subprotocol)
    close_code = property(lambda self: self.sync.close_code)
    close_reason = property(lambda self: self.sync.close_reason)

    async def send(self, message: Message) -> None:
        """Send a text or binary message to the view."""
        self.sync.send(message)

    async def send_json(self, obj: Any) -> None:
        """Send ``obj`` as JSON."""
        self.sync.send_json(obj)

    async def receive(self, timeout: float | None = None) -> Message:
        """Return the view's next message (see :meth:`WebSocketTestConnection.receive`)."""
        return await asyncio.to_thread(self.sync.receive, timeout)

    async def receive_json(self, timeout: float | None = None) -> Any:
        """Return the view's next message decoded from JSON."""
        return json.loads(await self.receive(timeout))

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection and wait (bounded) for the view to return."""
        await asyncio.to_thread(self.sync.close, code, reason)


class _AsyncConnect:
    def __init__(self, client: AsyncWebSocketClient, args: tuple[Any, ...], kwargs: dict[str, Any]):
        self._client, self._args, self._kwargs = client, args, kwargs
        self._connection: AsyncWebSocketTestConnection | None = None

    async def __aenter__(self) -> AsyncWebSocketTestConnection:
        # On the test's own thread (Django's async test methods keep it for sync code),
        # so the view shares the test's database connections, as with the sync client.
        connect = sync_to_async(WebSocketClient.connect, thread_sensitive=True)
        sync = await connect(self._client, *self._args, **self._kwargs)
        self._connection = AsyncWebSocketTestConnection(sync)
        return self._connection

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._connection is not None:
            await self._connection.close()


class AsyncWebSocketClient(WebSocketClient):
    """:class:`WebSocketClient` for ``async def`` tests: ``async with client.connect(...)``.

    ``aforce_login()``, ``alogin()`` and ``alogout()`` exist on every supported Django
    (Django's own client has them from 5.0 on).
    """

    async def aforce_login(self, user: Any, backend: str | None = None) -> None:
        """:meth:`force_login` from async code."""
        await sync_to_async(self.force_login)(user, backend)

    async def alogin(self, **credentials: Any) -> bool:
        """:meth:`login` from async code."""
        return await sync_to_async(self.login)(**credentials)

    async def alogout(self) -> None:
        """:meth:`logout` from async code."""
        await sync_to_async(self.logout)()

    def connect(self, *args: Any, **kwargs: Any) -> _AsyncConnect:  # type: ignore[override]
        """Open a WebSocket; use as ``async with client.connect(path) as ws``."""
        return _AsyncConnect(self, args, kwargs)


class _QuietWebSocketRequestHandler(WebSocketRequestHandler):
    log_message = QuietWSGIRequestHandler.log_message
    # The test's DB connections are shared with request threads only (Django's
    # ThreadedWSGIServer): sessions stay on them, so hooks see the test's database.
    defer_sessions = False


class _LiveServer(ThreadedWSGIServer):
    def __init__(self, address: Any, handler_class: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(address, _QuietWebSocketRequestHandler, *args, **kwargs)


class WebSocketLiveServerThread(LiveServerThread):
    """Django's live server thread, serving WebSockets too."""

    server_class = _LiveServer

    def terminate(self) -> None:
        shutdown()  # close open WebSockets with 1001 before the server stops
        super().terminate()


class WebSocketLiveServerTestCase(LiveServerTestCase):
    """``LiveServerTestCase`` whose server also serves WebSockets.

    ``self.live_server_url`` is ``http://host:port``; ``self.live_ws_url`` is
    ``ws://host:port``.
    """

    server_thread_class = WebSocketLiveServerThread

    @classproperty
    def live_ws_url(cls) -> str:  # noqa: N805
        return "ws" + cls.live_server_url[len("http") :]
