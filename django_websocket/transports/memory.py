"""An in-process transport: a WebSocket connection with no server and no socket.

It carries events between the core and a :class:`MemoryClient` through two
thread-safe queues, for unit tests of the core and for the test client. Like a
real peer, the client echoes the server's close frame.
"""

from __future__ import annotations

import threading

from ..events import WAKE, Close, CloseCode, Event, Message, Pong
from ..exceptions import ConnectionClosed
from .base import Channel

__all__ = ["MemoryClient", "MemoryTransport", "memory_pair"]


class MemoryTransport:
    """The server side of an in-memory connection (see :class:`~.base.Transport`).

    Args:
        auto_pong: answer keepalive pings as a live client would.
        auto_close: echo the server's close frame as a live client would; with
            ``False`` the client echoes when it reads the close, or never.
    """

    def __init__(self, auto_pong: bool = True, auto_close: bool = True) -> None:
        self.to_server = Channel()
        self.to_client = Channel()
        self.auto_pong = auto_pong
        self.auto_close = auto_close
        self.peer_echoed = False
        self.pings_sent = 0
        self.close_sent: Close | None = None
        self.close_received: Close | None = None
        self.aborted = False
        self.finished = False
        self._lock = threading.Lock()

    def receive(self, timeout: float | None) -> Event | None:
        if self.close_received is not None:
            return self.close_received
        event = self.to_server.get(timeout)
        if isinstance(event, Close):
            self.close_received = event
            if self.close_sent is None:  # RFC 6455 5.5.1: echo the peer's close
                self._send_close(event)
        return event

    def _send_close(self, close: Close) -> None:
        with self._lock:
            if self.close_sent is None:
                self.close_sent = close
                self.to_client.put(close)
                if self.auto_close and self.close_received is None:
                    self.peer_echoed = True
                    self.to_server.put(close)

    def send(self, message: Message) -> None:
        if self.close_sent is not None or self.aborted:
            raise ConnectionClosed(CloseCode.ABNORMAL_CLOSURE, "connection lost")
        self.to_client.put(message)

    def send_close(self, code: int, reason: str) -> None:
        self._send_close(Close(code, reason))

    def ping(self, data: bytes) -> bool:
        self.pings_sent += 1
        if self.auto_pong:
            self.to_server.put(Pong(data))
        return True

    def abort(self) -> None:
        self.aborted = True
        self.to_server.put(Close(CloseCode.ABNORMAL_CLOSURE, ""))
        self.to_client.put(Close(CloseCode.ABNORMAL_CLOSURE, ""))

    def finish(self, timeout: float | None) -> None:
        self.finished = True

    def enable_wake(self) -> None:
        pass

    def wake(self) -> None:
        self.to_server.put(WAKE)


class MemoryClient:
    """The client side of an in-memory connection."""

    def __init__(self, transport: MemoryTransport) -> None:
        self.transport = transport
        self.close: Close | None = None

    def send(self, message: Message) -> None:
        """Send a message to the server."""
        self.transport.to_server.put(message)

    def receive(self, timeout: float | None = 5.0) -> Message | Close | None:
        """Return the server's next message or its :class:`Close`; ``None`` on timeout."""
        event = self.transport.to_client.get(timeout)
        if isinstance(event, Close) and self.close is None:
            self.close = event
            if self.transport.close_received is None and not self.transport.peer_echoed:
                self.transport.to_server.put(event)
        return event  # type: ignore[return-value]

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake from the client side."""
        self.close = Close(code, reason)
        self.transport.to_server.put(self.close)

    def drop(self) -> None:
        """Vanish without a close frame, like a TCP reset."""
        self.transport.to_server.put(Close(CloseCode.ABNORMAL_CLOSURE, ""))


def memory_pair(
    auto_pong: bool = True, auto_close: bool = True
) -> tuple[MemoryTransport, MemoryClient]:
    """Return a connected server transport and client."""
    transport = MemoryTransport(auto_pong=auto_pong, auto_close=auto_close)
    return transport, MemoryClient(transport)
