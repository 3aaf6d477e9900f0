"""``request.META`` strings and ASGI scope headers shared between WebSocket connections.

A session keeps its request (``self.request``, and under ASGI ``request.scope``)
for as long as it lasts, hours perhaps; its ``META`` names, and the values that
are the same for every client (host, protocol, the upgrade headers), are then the
same strings for every connection instead of a copy each; likewise the scope's
header pairs. The tables are bounded: made-up header names from clients cannot
grow them. And one empty body stream for every upgrade request.
"""

from __future__ import annotations

import io
from typing import Any, TypeVar

__all__ = ["EMPTY_BODY", "share_headers", "share_meta", "shared_meta"]

T = TypeVar("T")

_SHARED: dict[str, str] = {}
_SHARED_MAX = 512
#: The ``META`` entries whose values repeat across connections (names always do).
#: Not the path, query string or client address: they vary, and a token in a query
#: string must not be kept for the life of the process.
_REPEATING = frozenset(
    {
        "REQUEST_METHOD", "SCRIPT_NAME", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL",
        "SERVER_SOFTWARE", "HTTP_HOST", "HTTP_ORIGIN", "HTTP_UPGRADE", "HTTP_CONNECTION",
        "HTTP_SEC_WEBSOCKET_VERSION", "HTTP_SEC_WEBSOCKET_EXTENSIONS",
        "HTTP_ACCEPT_ENCODING", "HTTP_ACCEPT_LANGUAGE", "HTTP_CACHE_CONTROL", "HTTP_PRAGMA",
    }
)  # fmt: skip


#: The same headers, as names in an ASGI scope (compared lower-cased: uvicorn keeps
#: the client's case).
_REPEATING_HEADERS = frozenset(
    key[5:].lower().replace("_", "-").encode("latin-1")
    for key in _REPEATING
    if key.startswith("HTTP_")
)
#: Their names (``bytes``) and repeating pairs (``tuple``), in one bounded table.
_SHARED_HEADERS: dict[Any, Any] = {}


class _EmptyBody(io.BytesIO):
    """The body of every upgrade request: empty, shared, never closed or written."""

    def close(self) -> None:
        pass  # shared: Django's request.close() closes its stream when a session ends

    def write(self, data: Any) -> int:
        raise io.UnsupportedOperation("an upgrade request has no body to write")


#: One for all sessions rather than a stream each for hours (``request.body`` is b"").
#: After the 101 a WSGI server's socket carries WebSocket frames, not a body.
EMPTY_BODY = _EmptyBody()


def _interned(table: dict[Any, Any], item: T, size: int) -> T:
    """``item``'s equal in ``table``; ``item`` itself, kept there if there is room."""
    found = table.get(item)
    if found is not None:
        return found  # type: ignore[no-any-return]
    if len(table) < _SHARED_MAX and size <= 256:
        table[item] = item
    return item


def _shared(text: str) -> str:
    return _interned(_SHARED, text, len(text))


def _items(meta: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        (
            _shared(key) if type(key) is str else key,
            _shared(value) if key in _REPEATING and type(value) is str else value,
        )
        for key, value in meta.items()
    ]


def shared_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with its names, and the values that repeat, shared between requests."""
    return dict(_items(meta))


def share_meta(meta: dict[str, Any]) -> None:
    """Share ``meta``'s names and repeating values in place (a WSGI server's environ)."""
    items = _items(meta)
    meta.clear()
    meta.update(items)


def share_headers(headers: Any) -> None:
    """Share an ASGI scope's header pairs in place: the repeating ones whole, the rest's names.

    The list stays the server's; each pair is replaced by an equal one.
    """
    if type(headers) is not list:
        return
    for index, pair in enumerate(headers):
        if type(pair) is not tuple or len(pair) != 2:
            continue
        name, value = pair
        if type(name) is not bytes or type(value) is not bytes:
            continue
        if name.lower() in _REPEATING_HEADERS:
            headers[index] = _interned(_SHARED_HEADERS, pair, len(value))
        elif (shared := _interned(_SHARED_HEADERS, name, len(name))) is not name:
            headers[index] = (shared, value)
