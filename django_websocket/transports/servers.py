"""Per-server facts for taking a WSGI connection over: one table, nothing scattered.

A WSGI server that serves WebSockets with django_websocket must let us find the
client's socket in the WSGI environ, and must write nothing after the application
returns when we have taken the socket over. Each :class:`Server` row says how.

Our own ``runserver`` uses the documented keys :data:`SOCKET_KEY`,
:data:`READ_BUFFER_KEY` and :data:`HIJACKED_KEY`; another server can do the same.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ASGI_KEY",
    "HIJACKED_KEY",
    "READ_BUFFER_KEY",
    "SERVERS",
    "SOCKET_KEY",
    "Server",
    "find_server",
]

Environ = MutableMapping[str, Any]

#: The connected client socket (``socket.socket`` or a green equivalent).
SOCKET_KEY = "django_websocket.socket"
#: Optional callable returning bytes the server read past the request head.
READ_BUFFER_KEY = "django_websocket.read_buffer"
#: Set to ``True`` by us once the socket is ours: the server must write nothing more.
HIJACKED_KEY = "django_websocket.hijacked"
#: The :class:`~.asgi.ASGIConnection` of a request that came as an ASGI ``websocket`` scope.
ASGI_KEY = "django_websocket.asgi"


def _environ_socket(key: str) -> Callable[[Environ], Any]:
    return lambda environ: environ.get(key)


def _mark_hijacked(environ: Environ) -> None:
    environ[HIJACKED_KEY] = True


@dataclass(frozen=True)
class Server:
    """How one WSGI server hands us its socket and is told the response is sent.

    Attributes:
        name: for logs and errors.
        get_socket: returns the client socket from the environ, or ``None``.
        hijacked: called once the socket is taken over, before the app returns.
    """

    name: str
    get_socket: Callable[[Environ], Any]
    hijacked: Callable[[Environ], None] = _mark_hijacked

    def read_buffer(self, environ: Environ) -> bytes:
        """Return bytes the server already read from the socket past the request head."""
        reader = environ.get(READ_BUFFER_KEY)
        return reader() if reader is not None else b""


SERVERS: tuple[Server, ...] = (Server("django_websocket", _environ_socket(SOCKET_KEY)),)


def find_server(environ: Environ) -> tuple[Server, socket.socket] | None:
    """Return the server row and client socket for this environ, if any server matches."""
    for server in SERVERS:
        sock = server.get_socket(environ)
        if sock is not None:
            return server, sock
    return None
