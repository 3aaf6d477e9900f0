"""Unit tests of the framing adapter (protocol.py), fed by websockets' client protocol."""

from __future__ import annotations

import gc
import tracemalloc

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State as WsState
from websockets.uri import parse_uri

from django_websocket.events import Close, CloseCode, Pong
from django_websocket.exceptions import HandshakeError
from django_websocket.protocol import FrameProtocol


def connect(max_message_size=1024, compression=None, subprotocol=None):
    """Return a server FrameProtocol and a websockets ClientProtocol after the handshake."""
    client = ClientProtocol(parse_uri("ws://example.com/chat"))
    request = client.connect()
    server = FrameProtocol(max_message_size=max_message_size, compression=compression)
    server.accept("/chat", list(request.headers.raw_items()), subprotocol)
    for data in server.data_to_send():
        client.receive_data(data)
    assert client.state is WsState.OPEN
    client.events_received()  # the handshake response
    return server, client


def pump(client, server):
    """Move the client's pending bytes to the server; return the server's events."""
    events = []
    for data in client.data_to_send():
        events += server.receive_data(data)
    return events


def test_text_and_binary_messages_become_str_and_bytes():
    server, client = connect()
    client.send_text("héllo".encode())
    client.send_binary(b"\x00\xff")
    assert pump(client, server) == ["héllo", b"\x00\xff"]


def test_fragmented_messages_are_reassembled():
    server, client = connect()
    client.send_text(b"ab", fin=False)
    client.send_continuation(b"cd", fin=False)
    assert pump(client, server) == []
    client.send_continuation(b"ef", fin=True)
    assert pump(client, server) == ["abcdef"]


def test_invalid_utf8_fails_with_1007():
    server, client = connect()
    client.send_text(b"\xff\xfe")
    events = pump(client, server)
    assert events == [Close(CloseCode.INVALID_DATA, "invalid utf-8 at position 0")]
    sent = b"".join(server.data_to_send())
    assert sent.startswith(b"\x88")  # a close frame, then EOF


def test_invalid_utf8_in_a_first_fragment_fails_before_the_message_ends():
    server, client = connect()
    client.send_text(b"ok \xff", fin=False)
    assert pump(client, server) == [Close(CloseCode.INVALID_DATA, "invalid utf-8")]


def test_a_character_split_between_fragments_is_decoded_whole():
    server, client = connect()
    encoded = "é€😀".encode()
    for index, byte in enumerate(encoded):
        if index == 0:
            client.send_text(bytes([byte]), fin=False)
        else:
            client.send_continuation(bytes([byte]), fin=index == len(encoded) - 1)
    assert pump(client, server) == ["é€😀"]


def test_a_truncated_character_at_the_end_of_a_fragmented_message_fails_with_1007():
    server, client = connect()
    client.send_text(b"ab", fin=False)
    client.send_continuation("€".encode()[:2], fin=True)
    assert pump(client, server) == [Close(CloseCode.INVALID_DATA, "invalid utf-8")]


def test_oversized_message_fails_with_1009_even_when_fragmented():
    server, client = connect(max_message_size=10)
    client.send_binary(b"x" * 6, fin=False)
    client.send_continuation(b"x" * 6, fin=True)
    events = pump(client, server)
    assert [event.code for event in events if isinstance(event, Close)] == [
        CloseCode.MESSAGE_TOO_BIG
    ]


def test_unmasked_frame_fails_with_1002():
    server, _ = connect()
    unmasked = Frame(Opcode.TEXT, b"hi").serialize(mask=False)
    events = server.receive_data(unmasked)
    assert events[-1].code == CloseCode.PROTOCOL_ERROR


def test_client_close_is_reported_with_its_code_and_echoed():
    server, client = connect()
    client.send_close(4001, "bye")
    assert pump(client, server) == [Close(4001, "bye")]
    echo = server.data_to_send()
    assert echo[0][:1] == b"\x88" and echo[-1] == b""  # close frame, then half-close


def test_eof_without_close_frame_is_1006():
    server, _ = connect()
    assert server.receive_data(b"") == [Close(CloseCode.ABNORMAL_CLOSURE, "")]


def test_pongs_are_reported_and_pings_answered():
    server, client = connect()
    client.send_ping(b"p")
    client.send_pong(b"q")
    assert pump(client, server) == [Pong(b"q")]
    client.receive_data(b"".join(server.data_to_send()))
    assert [f.opcode for f in client.events_received()] == [Opcode.PONG]


def test_server_messages_and_close_reach_the_client():
    server, client = connect()
    server.send_message("hi")
    server.send_message(b"\x01")
    server.send_close(4000, "done")
    client.receive_data(b"".join(server.data_to_send()))
    frames = client.events_received()
    assert [(f.opcode, bytes(f.data)) for f in frames[:2]] == [
        (Opcode.TEXT, b"hi"),
        (Opcode.BINARY, b"\x01"),
    ]
    assert frames[2].opcode is Opcode.CLOSE
    assert not server.open


def test_subprotocol_header_is_set():
    client = ClientProtocol(parse_uri("ws://example.com/"), subprotocols=["chat.v2"])
    request = client.connect()
    server = FrameProtocol(max_message_size=None, compression=None)
    server.accept("/", list(request.headers.raw_items()), "chat.v2")
    for data in server.data_to_send():
        client.receive_data(data)
    assert client.subprotocol == "chat.v2"


def test_deflate_is_negotiated_when_offered():
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    client = ClientProtocol(
        parse_uri("ws://example.com/"), extensions=[ClientPerMessageDeflateFactory()]
    )
    request = client.connect()
    server = FrameProtocol(max_message_size=None, compression="deflate")
    server.accept("/", list(request.headers.raw_items()), None)
    assert server.extensions == ["permessage-deflate"]
    for data in server.data_to_send():
        client.receive_data(data)
    client.send_text(("compressible " * 100).encode())
    assert pump(client, server) == ["compressible " * 100]


def test_a_request_websockets_refuses_raises_handshake_error():
    server = FrameProtocol(max_message_size=None, compression=None)
    with pytest.raises(HandshakeError) as info:
        server.accept("/", [("Host", "x"), ("Upgrade", "websocket")], None)
    assert info.value.status in (400, 426)


@pytest.mark.parametrize("send", ["send_text", "send_binary"])
def test_a_received_message_is_not_kept_once_handed_over(send):
    """websockets' parser keeps its last frame; an idle connection must not keep the payload."""
    size = 2**20
    server, client = connect(max_message_size=2 * size)
    getattr(client, send)(b"x" * size)
    data = b"".join(client.data_to_send())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        events = server.receive_data(data)
        assert len(events[0]) == size
        del events, data
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < size // 8, f"{kept} bytes kept after a {size}-byte message"
