"""Per-server facts for taking a WSGI connection over: one table, nothing scattered.

A WSGI server that serves WebSockets with django_websocket must let us find the
client's socket in the WSGI environ, and must write nothing after the application
returns when we have taken the socket over. Each :class:`Server` row says how.

Our own ``runserver`` uses the documented keys :data:`SOCKET_KEY`,
:data:`READ_BUFFER_KEY`, :data:`HIJACKED_KEY` and :data:`DEFER_KEY`; another
server can do the same.
"""

from __future__ import annotations

import io
import signal
import socket
import sys
import threading
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFER_KEY",
    "HIJACKED_KEY",
    "READ_BUFFER_KEY",
    "SERVERS",
    "SOCKET_KEY",
    "Server",
    "UPGRADE_KEY",
    "asgi_close_code",
    "find_server",
    "install_shutdown_hooks",
]

Environ = MutableMapping[str, Any]

#: The connected client socket (``socket.socket`` or a green equivalent).
SOCKET_KEY = "django_websocket.socket"
#: Optional callable returning bytes the server read past the request head.
READ_BUFFER_KEY = "django_websocket.read_buffer"
#: Set to ``True`` by us once the socket is ours: the server must write nothing more.
HIJACKED_KEY = "django_websocket.hijacked"
#: Optional callable ``defer(start)``: the server calls ``start()`` on the request's
#: thread once it is done with the response (Django's response path has unwound),
#: and from then on writes nothing. The transport has detached the fd from the
#: server's socket object (whose ``close()`` then does nothing) and closes it when
#: its session ends. A sync ``WebSocketView`` then runs parked between events, on
#: no thread of its own (our runserver offers it; not for TLS sockets, nor on Windows).
DEFER_KEY = "django_websocket.defer"
#: An in-process :class:`~.base.Upgrade` that completes the handshake for this request:
#: the ASGI entry point's :class:`~.asgi.ASGIConnection`, or the test client's.
UPGRADE_KEY = "django_websocket.upgrade"


def _environ_socket(key: str) -> Callable[[Environ], Any]:
    return lambda environ: environ.get(key)


def _mark_hijacked(environ: Environ) -> None:
    environ[HIJACKED_KEY] = True


def _our_read_buffer(environ: Environ) -> bytes:
    reader = environ.get(READ_BUFFER_KEY)
    return reader() if reader is not None else b""


def _gunicorn_read_buffer(environ: Environ) -> bytes:
    """Return what gunicorn's parser read past the request head.

    gunicorn puts those bytes back in its ``Unreader``'s ``buf`` (a ``BytesIO``);
    a version with ``take_buffered()`` hands them over itself.
    """
    body = environ.get("wsgi.input")
    unreader = getattr(getattr(body, "reader", None), "unreader", None)
    take = getattr(unreader, "take_buffered", None)
    if take is not None:
        return bytes(take())
    buffer = getattr(unreader, "buf", None)
    if not isinstance(buffer, io.BytesIO):
        return b""
    data = buffer.getvalue()
    unreader.buf = io.BytesIO()  # type: ignore[union-attr]  # taken: gunicorn reads no more
    return data


@dataclass(frozen=True)
class Server:
    """How one WSGI server hands us its socket and is told the response is sent.

    Attributes:
        name: for logs and errors.
        get_socket: returns the client socket from the environ, or ``None``.
        read_buffer: returns bytes the server read from the socket past the
            request head (a client may pipeline frames behind its handshake).
        hijacked: called once the socket is taken over, before the app returns.
    """

    name: str
    get_socket: Callable[[Environ], Any]
    read_buffer: Callable[[Environ], bytes] = _our_read_buffer
    hijacked: Callable[[Environ], None] = _mark_hijacked


SERVERS: tuple[Server, ...] = (
    # Our runserver, or any server that follows the documented keys.
    Server("django_websocket", _environ_socket(SOCKET_KEY)),
    # gunicorn (gthread, gevent, eventlet, sync workers): after the session the
    # transport has shut the socket's write side, so gunicorn's attempt to write a
    # response fails with EPIPE, which it ignores, and it closes the connection.
    Server("gunicorn", _environ_socket("gunicorn.socket"), _gunicorn_read_buffer),
)


def _daphne_close_code(code: int) -> int:
    # daphne closes through autobahn, which raises for any code but 1000 and
    # 3000-4999 (the close frame is then never sent): send 1000 instead.
    return code if code == 1000 or 3000 <= code <= 4999 else 1000


#: ASGI servers that cannot send every close code, by the module of their ``send``.
ASGI_CLOSE_CODES: dict[str, Callable[[int], int]] = {"daphne.server": _daphne_close_code}


def asgi_close_code(send: Any) -> Callable[[int], int] | None:
    """Return how this ASGI server's ``send`` maps close codes, if it must."""
    func = getattr(send, "func", send)  # daphne's send is a functools.partial
    return ASGI_CLOSE_CODES.get(getattr(func, "__module__", ""))


def _spawn(func: Callable[[], None]) -> None:
    """Start ``func`` in the background from a signal handler.

    Under gevent (eventlet) a thread is a greenlet, and starting one inside a signal
    handler raises ``BlockingSwitchOutError``: schedule a greenlet instead.
    """
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and gevent_monkey.is_module_patched("threading"):
        sys.modules["gevent"].spawn(func)
        return
    eventlet_patcher = sys.modules.get("eventlet.patcher")
    if eventlet_patcher is not None and eventlet_patcher.is_monkey_patched("thread"):
        sys.modules["eventlet"].spawn(func)
        return
    threading.Thread(target=func, name="django-websocket-shutdown").start()


def _is_gunicorn_worker_handler(handler: Any) -> bool:
    owner = getattr(handler, "__self__", None)
    return owner is not None and type(owner).__module__.startswith("gunicorn.workers")


def install_shutdown_hooks(shutdown: Callable[[], None]) -> bool:
    """Run ``shutdown`` (close WebSockets with 1001) when a gunicorn worker is told to stop.

    gunicorn installs its worker's signal handlers before it loads the application,
    so when Django's apps are ready in a worker we chain ours in front of them:
    ``shutdown`` starts on a thread of its own while gunicorn's handler runs as before.

    Returns:
        Whether hooks were installed (only in a gunicorn worker's main thread).
    """
    installed = False
    for signum in (signal.SIGTERM, signal.SIGQUIT, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not _is_gunicorn_worker_handler(previous):
            continue

        def handler(sig: int, frame: Any, previous: Any = previous) -> None:
            _spawn(shutdown)
            previous(sig, frame)

        try:
            signal.signal(signum, handler)
        except ValueError:  # not the main thread (eventlet's looks like another one)
            return installed
        if signum == signal.SIGTERM:
            signal.siginterrupt(signum, False)  # as gunicorn wants: requests go on
        installed = True
    return installed


def find_server(environ: Environ) -> tuple[Server, socket.socket] | None:
    """Return the server row and client socket for this environ, if any server matches."""
    for server in SERVERS:
        sock = server.get_socket(environ)
        if sock is not None:
            return server, sock
    return None
