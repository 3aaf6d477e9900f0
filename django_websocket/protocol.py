"""Adapt ``websockets``' sans-I/O :class:`~websockets.server.ServerProtocol` to our events.

Framing, masking, control frames, the close handshake bytes and permessage-deflate
are the ``websockets`` package's. This module only:

* completes the opening handshake for a request that the Django edge validated;
* reassembles fragmented messages and decodes text as UTF-8 (the sans-I/O layer
  leaves that to its callers), failing with 1007 on invalid UTF-8;
* turns frames into our typed events (``str``, ``bytes``, :class:`Pong`,
  :class:`Close`), with the close code that describes how the connection ended.

It never touches a socket: callers feed bytes in and write :meth:`data_to_send` out.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Sequence
from typing import cast

from websockets.exceptions import InvalidState as WsInvalidState
from websockets.exceptions import ProtocolError as WsProtocolError
from websockets.extensions.base import ServerExtensionFactory
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import Protocol
from websockets.protocol import State as WsState
from websockets.server import ServerProtocol

from .events import Close, Event, Message, Pong
from .exceptions import HandshakeError, InvalidState

__all__ = ["FrameProtocol"]

#: The request headers ``websockets`` reads to complete the opening handshake.
HANDSHAKE_HEADERS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)

logger = logging.getLogger("django_websocket.protocol")


def _extensions(compression: str | None) -> list[ServerExtensionFactory]:
    if compression is None:
        return []
    if compression != "deflate":
        raise ValueError(f"unsupported compression: {compression!r}")
    # The settings websockets itself uses for servers: a 4 KiB window keeps the
    # memory per connection small at a small cost in ratio.
    return [
        ServerPerMessageDeflateFactory(
            server_max_window_bits=12,
            client_max_window_bits=12,
            compress_settings={"memLevel": 5},
        )
    ]


class _ServerProtocol(ServerProtocol):
    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.CLOSE:
            # RFC 6455 5.4: control frames may arrive between the fragments of a
            # message. A close there ends the connection cleanly (the partial message
            # is dropped); websockets would answer 1002 (Autobahn case 7.1.5).
            self.current_size = None
        super().recv_frame(frame)

    def forget_request(self) -> None:
        """Parse frames with a fresh parser, as ``parse()`` does after the request.

        The parser generator keeps the handshake request (~3 KiB of headers) as a
        local for the whole session; websockets swaps parsers itself (``fail()``).
        """
        self.parser = Protocol.parse(self)
        next(self.parser)

    def fail(self, code: int, reason: str = "") -> None:
        # One reason for 1009 whichever layer noticed (the core says the same), not
        # websockets' "frame exceeds limit of N bytes".
        if code == CloseCode.MESSAGE_TOO_BIG:
            reason = "message too big"
        super().fail(code, reason)


class FrameProtocol:
    """One server-side WebSocket connection's framing, without I/O.

    Args:
        max_message_size: largest incoming message in bytes (``None``: no limit);
            a larger one fails the connection with 1009 before it is buffered.
        compression: ``"deflate"`` to accept permessage-deflate, or ``None``.
    """

    def __init__(self, *, max_message_size: int | None, compression: str | None) -> None:
        self._proto = _ServerProtocol(
            extensions=_extensions(compression),
            max_size=max_message_size,
            logger=logger,
        )
        self._fragments: list[bytes] = []
        self._fragment_text = False
        # A fragmented text message's decoder, and the text decoded so far.
        self._decoder: codecs.IncrementalDecoder | None = None
        self._decoded: list[str] = []
        self.close_event: Close | None = None

    # -- opening handshake -------------------------------------------------

    def accept(
        self, path: str, headers: Sequence[tuple[str, str]], subprotocol: str | None
    ) -> None:
        """Queue the ``101 Switching Protocols`` response for a validated request.

        The request head is fed to ``websockets`` as bytes, its documented sans-I/O
        flow, so it negotiates extensions and then parses frames from where the
        head ended.

        Raises:
            HandshakeError: if ``websockets`` refuses what our validation let through.
        """
        # Only the headers the handshake needs: websockets' parser limits a line to
        # 8 KiB, and a long Cookie the server took must not fail the upgrade.
        head = f"GET {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers if k.lower() in HANDSHAKE_HEADERS
        )
        self._proto.receive_data((head + "\r\n").encode("latin-1", "replace"))
        events = self._proto.events_received()
        if len(events) != 1 or not isinstance(events[0], Request):
            raise HandshakeError(400, "malformed upgrade request")
        response = self._proto.accept(events[0])
        if response.status_code != 101:
            body = (response.body or b"").decode("utf-8", "replace").strip().splitlines()
            raise HandshakeError(response.status_code, body[0] if body else "bad request")
        if subprotocol is not None:
            response.headers["Sec-WebSocket-Protocol"] = subprotocol
        self._proto.send_response(response)
        self._proto.forget_request()

    @property
    def extensions(self) -> list[str]:
        """Names of the negotiated extensions (e.g. ``["permessage-deflate"]``)."""
        return [ext.name for ext in self._proto.extensions]

    # -- incoming ----------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes read from the network; return the events they complete."""
        if self.close_event is not None:
            return []
        if data:
            self._proto.receive_data(data)
        else:
            self._proto.receive_eof()
        events: list[Event] = []
        for frame in self._proto.events_received():
            if not isinstance(frame, Frame):
                continue  # the handshake request, fed in accept()
            opcode = frame.opcode
            data = cast(bytes, frame.data)
            # websockets' parser keeps the last frame as a local until another one
            # arrives: without its payload, an idle connection does not hold its
            # last message (up to the size limit) for as long as it stays open.
            frame.data = b""
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                self._fragments = [data]
                self._fragment_text = opcode is Opcode.TEXT
                self._decoder = None
            elif opcode is Opcode.CONT:
                self._fragments.append(data)
            elif opcode is Opcode.PONG:
                events.append(Pong(bytes(data)))
                continue
            else:  # ping (answered by websockets) or close (handled below)
                continue
            if frame.fin:
                message = self._assemble()
                if message is None:
                    break
                events.append(message)
            elif self._fragment_text and not self._decode_fragment():
                break
        self._check_closed(events)
        return events

    def _decode_fragment(self) -> bool:
        """Decode the text fragment just received; ``False`` if it is not UTF-8.

        A fragmented text message is decoded as it arrives, so that invalid UTF-8
        fails the connection at once rather than when the last fragment comes
        (RFC 6455 8.1; Autobahn 6.4.1-2).
        """
        if self._decoder is None:
            self._decoder = codecs.getincrementaldecoder("utf-8")()
            self._decoded = []
        try:
            self._decoded.append(self._decoder.decode(self._fragments.pop()))
        except UnicodeDecodeError:
            self._proto.fail(CloseCode.INVALID_DATA, "invalid utf-8")
            return False
        return True

    def _assemble(self) -> Message | None:
        fragments, self._fragments = self._fragments, []
        if not self._fragment_text:
            return bytes(fragments[0]) if len(fragments) == 1 else b"".join(fragments)
        try:
            if self._decoder is None:  # one frame: the common case
                return bytes(fragments[0]).decode("utf-8")
            self._decoded.append(self._decoder.decode(fragments[0], final=True))
            return "".join(self._decoded)
        except UnicodeDecodeError as exc:
            # RFC 6455 section 8.1: invalid UTF-8 in a text message fails the connection.
            reason = "invalid utf-8" if self._decoder else f"invalid utf-8 at position {exc.start}"
            self._proto.fail(CloseCode.INVALID_DATA, reason)
            return None
        finally:
            self._decoder = None
            self._decoded = []

    def _check_closed(self, events: list[Event]) -> None:
        """Report how the connection ended, once, when ``websockets`` is done with it."""
        proto = self._proto
        if self.close_event is not None or not (proto.eof_sent or proto.state is WsState.CLOSED):
            return
        if proto.close_rcvd is not None:
            close = Close(proto.close_rcvd.code, proto.close_rcvd.reason)
        elif isinstance(proto.parser_exc, EOFError) or proto.close_sent is None:
            close = Close(CloseCode.ABNORMAL_CLOSURE, "")
        else:
            close = Close(proto.close_sent.code, proto.close_sent.reason)
        self.close_event = close
        events.append(close)

    # -- outgoing ----------------------------------------------------------

    def send_message(self, message: Message) -> None:
        """Queue one message: text for ``str``, binary for ``bytes``."""
        try:
            if isinstance(message, str):
                self._proto.send_text(message.encode("utf-8"))
            else:
                self._proto.send_binary(message)
        except (WsInvalidState, WsProtocolError) as exc:
            raise InvalidState(f"cannot send: {exc}") from exc

    def send_close(self, code: int, reason: str) -> None:
        """Start the closing handshake (RFC 6455 section 7.1.2)."""
        if self._proto.state is WsState.OPEN:
            self._proto.send_close(code, reason)

    def send_ping(self, data: bytes) -> None:
        """Queue a ping frame, allowed while open or closing."""
        if self._proto.state in (WsState.OPEN, WsState.CLOSING):
            self._proto.send_ping(data)

    def data_to_send(self) -> list[bytes]:
        """Return the bytes to write; an empty ``bytes`` asks to half-close TCP."""
        return self._proto.data_to_send()

    @property
    def open(self) -> bool:
        """Whether messages may still be sent."""
        return self._proto.state is WsState.OPEN
