"""Typed values that flow between transports and the core.

A message is a ``str`` (text) or ``bytes`` (binary). The end of a connection is a
:class:`Close`. Transports may also report a :class:`Pong` so the core can track
keepalive.
"""

from __future__ import annotations

import enum
from typing import Generic, NamedTuple, TypeVar

from websockets.frames import CloseCode

__all__ = ["WAKE", "Close", "CloseCode", "Event", "Fifo", "Message", "Pong", "State", "Wake"]

Message = str | bytes


class Close(NamedTuple):
    """The connection ended with this code and reason (RFC 6455 section 7.1.5)."""

    code: int
    reason: str = ""


class Pong(NamedTuple):
    """The peer answered a ping with this payload."""

    data: bytes


class Wake:
    """Another thread posted something for the connection's owner (see ``WebSocket.post``)."""

    def __repr__(self) -> str:
        return "WAKE"


#: The one :class:`Wake` event.
WAKE = Wake()

Event = str | bytes | Close | Pong | Wake


class State(enum.Enum):
    """Where a connection is in its life (RFC 6455 sections 4 and 7)."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


T = TypeVar("T")


class Fifo(Generic[T]):
    """A first-in first-out queue for a connection's usually empty queues.

    An empty ``collections.deque`` takes ~0.6 KiB, a list ~60 B; but a list's
    ``pop(0)`` moves every item, and a client may pack ten thousand tiny frames in
    one read. So: a list and the index of its head.
    """

    __slots__ = ("_head", "_items")

    def __init__(self) -> None:
        self._items: list[T | None] = []
        self._head = 0

    def append(self, item: T) -> None:
        self._items.append(item)

    def extend(self, items: list[T]) -> None:
        self._items.extend(items)

    def popleft(self) -> T:
        """Remove and return the oldest item; :class:`IndexError` if there is none."""
        items, head = self._items, self._head
        item = items[head]
        items[head] = None  # a big message is not kept alive
        head += 1
        if head == len(items):
            items.clear()
            head = 0
        elif head >= 64 and head * 2 >= len(items):
            del items[:head]  # keep the list from growing for ever
            head = 0
        self._head = head
        return item  # type: ignore[return-value]

    def clear(self) -> None:
        self._items.clear()
        self._head = 0

    def __len__(self) -> int:
        return len(self._items) - self._head

    def __bool__(self) -> bool:
        return len(self._items) > self._head
