"""Typed values that flow between transports and the core.

A message is a ``str`` (text) or ``bytes`` (binary). The end of a connection is a
:class:`Close`. Transports may also report a :class:`Pong` so the core can track
keepalive.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from websockets.frames import CloseCode

__all__ = ["WAKE", "Close", "CloseCode", "Event", "Message", "Pong", "State", "Wake"]

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
