"""``runserver`` that also serves WebSockets.

It is Django's development server (staticfiles' when that app is installed, so
static files keep being served) with a request handler that puts the client socket
in the WSGI environ (:data:`~django_websocket.transports.servers.SOCKET_KEY`) and
writes nothing once a WebSocket took the connection over. Threaded as always; ``--multithreaded``
is accepted for django-websocket 0.3 compatibility. A sync ``WebSocketView``'s
session starts once the response is done and parks between events
(:data:`~django_websocket.transports.servers.DEFER_KEY`): the request's thread
ends, and an idle connection holds none. Open WebSockets are closed with 1001
when the server stops.
"""

from __future__ import annotations

import atexit
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any
from wsgiref import simple_server

from django.apps import apps
from django.core.servers import basehttp

from ...accept import shutdown
from ...meta import EMPTY_BODY
from ...transports.servers import DEFER_KEY, HIJACKED_KEY, READ_BUFFER_KEY, SOCKET_KEY

BaseCommand: Any
if apps.is_installed("django.contrib.staticfiles"):
    from django.contrib.staticfiles.management.commands.runserver import (
        Command as BaseCommand,
    )
else:
    from django.core.management.commands.runserver import Command as BaseCommand

__all__ = ["Command", "WebSocketRequestHandler", "WebSocketWSGIServer"]


class WebSocketServerHandler(basehttp.ServerHandler):
    """Django's handler, except that it writes nothing once a WebSocket took over."""

    environ: dict[str, Any]
    request_handler: Any
    #: A WebSocket upgrade: its session may last hours, so keep less for it.
    upgrade = False

    def setup_environ(self) -> None:
        if self.upgrade:
            # wsgiref copies the process's environment into every environ (gunicorn
            # and ASGI servers do not), and keeps the request handler's environ too.
            self.os_environ = {}
        super().setup_environ()
        if self.upgrade:
            self.base_env = {}  # merged into self.environ: not needed twice

    def finish_response(self) -> None:
        if self.environ.get(HIJACKED_KEY):
            self.request_handler.close_connection = True
            # Logs the 101 and closes the response; no bytes written. wsgiref's close,
            # not Django's, which would drain a request body from the reader that
            # the session closed (read_buffer).
            simple_server.ServerHandler.close(self)
            return
        super().finish_response()


class WebSocketRequestHandler(basehttp.WSGIRequestHandler):
    """Django's request handler, with the socket in the environ for WebSockets."""

    connection: Any  # the client socket (socketserver's name for it)
    server: Any

    def read_buffer(self) -> bytes:
        """Hand over the bytes the buffered reader holds past the request head.

        Called once, when the handshake is accepted and the socket becomes the
        WebSocket's: nothing reads the reader afterwards, so it is closed, which frees
        its buffer (8 KiB an idle connection would keep for hours). The socket
        stays open.
        """
        self.connection.setblocking(False)
        try:
            return self.rfile.read1(65536) or b""
        except OSError:
            return b""
        finally:
            self.connection.setblocking(True)
            self.rfile.close()

    @property
    def timeout(self) -> float | None:  # type: ignore[override]
        """Seconds a client has to send a request head (socketserver applies it)."""
        from django_websocket.conf import settings

        value: float | None = settings.WEBSOCKET_HANDSHAKE_TIMEOUT
        return value

    def handle_one_request(self) -> None:
        # As Django's WSGIRequestHandler.handle_one_request, plus the two environ keys.
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(414)
                return
            if not self.parse_request():
                return
        except TimeoutError:
            # A client that connects and sends no (or half a) request head must not
            # hold a thread and a socket for ever (WEBSOCKET_HANDSHAKE_TIMEOUT).
            self.close_connection = True
            return
        upgrade = "websocket" in self.headers.get("Upgrade", "").lower()
        handler = WebSocketServerHandler(self.rfile, self.wfile, self.get_stderr(), self._environ())
        handler.request_handler = self
        if upgrade:
            handler.upgrade = True
            if not self.headers.get("Content-Length"):
                # No body to read (Django's LimitedStream over the reader otherwise,
                # kept for the session's hours): after a 101 the socket is the session's.
                handler.stdin = EMPTY_BODY
            self.headers = None  # type: ignore[assignment]  # in the environ now: not kept
        try:
            handler.run(self.server.get_app())
        finally:
            start, self._start = self._start, None
            if start is not None:  # a WebSocketView session, parked between events
                self.close_connection = True
                start()  # the socket is the session's now: our close leaves it open

    #: Offer DEFER_KEY: a sync WebSocketView's session then runs parked, on worker
    #: threads. Django's live server gives the test's DB connections to its request
    #: threads only, so :class:`~django_websocket.testing.WebSocketLiveServerTestCase`
    #: keeps each session on its request thread.
    defer_sessions = True
    #: The deferred session to start once the response is done (DEFER_KEY).
    _start: Callable[[], None] | None = None

    def defer(self, start: Callable[[], None]) -> None:
        """Start a session once this thread is done with the response, then end."""
        self._start = start

    def _environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = self.get_environ()
        environ[SOCKET_KEY] = self.connection
        environ[READ_BUFFER_KEY] = self.read_buffer
        if self.defer_sessions:
            environ[DEFER_KEY] = self.defer
        return environ


class WebSocketWSGIServer(basehttp.WSGIServer):
    """Django's development server, handling requests with :class:`WebSocketRequestHandler`."""

    # Many WebSockets may connect at once; Django's default backlog of 10 drops SYNs.
    request_queue_size = 128

    def __init__(self, server_address: Any, handler_class: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(server_address, WebSocketRequestHandler, *args, **kwargs)


class Command(BaseCommand):
    help = BaseCommand.help.rstrip(".") + ", with WebSockets."
    server_cls = WebSocketWSGIServer

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--multithreaded",
            action="store_true",
            help="Accepted for django-websocket 0.3 compatibility: the server is always threaded.",
        )

    def inner_run(self, *args: Any, **options: Any) -> None:
        if not options.get("use_threading", True):
            self.stderr.write(
                "Warning: --nothreading serves one request at a time; a WebSocket "
                "served by an async view or a view function blocks every other "
                "request while it is open (a sync WebSocketView does not)."
            )
        # Before interpreter exit joins worker threads (async views' sessions run there).
        register = getattr(threading, "_register_atexit", atexit.register)
        register(shutdown)
        if threading.current_thread() is threading.main_thread():
            # Without the autoreloader nothing turns SIGTERM into a clean exit.
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        super().inner_run(*args, **options)
