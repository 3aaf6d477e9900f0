"""SPEC section 6 (after the handshake): close codes, keepalive, shutdown, and
the rule that nothing follows a WebSocket session on the socket.

Bad bytes are written by hand with :mod:`tests.integration.rawws`.
"""

import contextlib

import pytest
from websockets.exceptions import ConnectionClosed

from tests.integration.helpers import connect, new_key
from tests.integration.rawws import (
    OP_BINARY,
    OP_CONTINUATION,
    OP_PING,
    OP_TEXT,
    RawWebSocket,
)


def open_raw(server, path="/ws/echo/", timeout=10.0):
    raw = RawWebSocket(server.host, server.port, timeout=timeout)
    response = raw.handshake(path)
    assert response.status == 101, response
    assert "sec-websocket-extensions" not in response.headers
    return raw


def finish_after_server_close(raw):
    """Read up to the server's close frame, answer it, return (frames, close, rest)."""
    others, close = raw.read_until_close()
    with contextlib.suppress(OSError):  # the server may already have dropped TCP
        raw.send_close(close.close_code if close.close_code != 1005 else 1000)
    return others, close, raw.read_to_eof()


# --- 1009 ---


@pytest.mark.parametrize("compression", ["deflate", None])
def test_message_over_max_size_closes_with_1009(server, compression):
    limit = 65536  # WEBSOCKET_MAX_MESSAGE_SIZE in tests/project/settings.py
    with connect(server.ws_url("/ws/echo/"), compression=compression, max_size=None) as ws:
        ws.send("a" * limit)
        assert ws.recv(timeout=10) == "a" * limit
        ws.send("b" * (limit + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None, closed.value
    assert closed.value.rcvd.code == 1009


def test_binary_message_over_max_size_closes_with_1009(server):
    with connect(server.ws_url("/ws/echo/"), max_size=None) as ws:
        ws.send(bytes(65537))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_max_message_size_applies_to_the_reassembled_message(server):
    with open_raw(server) as raw:
        raw.send_frame(OP_TEXT, b"c" * 40000, fin=False)
        raw.send_frame(OP_CONTINUATION, b"c" * 40000, fin=True)
        _others, close, _rest = finish_after_server_close(raw)
    assert close.close_code == 1009


# --- 1007 ---


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xfe", b"caf\xc3", b"\xed\xa0\x80"],
    ids=["invalid-bytes", "truncated", "surrogate"],
)
def test_invalid_utf8_in_text_message_closes_with_1007(server, payload):
    with open_raw(server) as raw:
        raw.send_frame(OP_TEXT, payload)
        others, close, _rest = finish_after_server_close(raw)
    assert others == []
    assert close.close_code == 1007


def test_invalid_utf8_split_over_fragments_closes_with_1007(server):
    with open_raw(server) as raw:
        raw.send_frame(OP_TEXT, b"ok \xc3", fin=False)
        raw.send_frame(OP_CONTINUATION, b"(", fin=True)
        _others, close, _rest = finish_after_server_close(raw)
    assert close.close_code == 1007


def test_valid_utf8_split_over_fragments_is_one_message(server):
    with open_raw(server) as raw:
        raw.send_frame(OP_TEXT, b"caf" + b"\xc3", fin=False)
        raw.send_frame(OP_CONTINUATION, b"\xa9!", fin=True)
        frame = raw.read_frame()
        assert (frame.opcode, frame.payload.decode()) == (OP_TEXT, "café!")
        raw.send_close(1000)
        raw.read_until_close()
        assert raw.read_to_eof() == b""


# --- 1002 ---

PROTOCOL_VIOLATIONS = {
    "unmasked-frame": dict(opcode=OP_TEXT, payload=b"hi", mask=False),
    "reserved-opcode-0x3": dict(opcode=0x3, payload=b"hi"),
    "reserved-opcode-0xb": dict(opcode=0xB, payload=b""),
    "rsv1-without-extension": dict(opcode=OP_TEXT, payload=b"hi", rsv1=True),
    "rsv2": dict(opcode=OP_BINARY, payload=b"hi", rsv2=True),
    "continuation-without-start": dict(opcode=OP_CONTINUATION, payload=b"hi"),
    "fragmented-ping": dict(opcode=OP_PING, payload=b"hi", fin=False),
    "ping-over-125-bytes": dict(opcode=OP_PING, payload=b"p" * 126),
}


@pytest.mark.parametrize("frame", PROTOCOL_VIOLATIONS.values(), ids=PROTOCOL_VIOLATIONS.keys())
def test_protocol_violation_closes_with_1002(server, frame):
    frame = dict(frame)
    with open_raw(server) as raw:
        raw.send_frame(frame.pop("opcode"), frame.pop("payload"), **frame)
        others, close, _rest = finish_after_server_close(raw)
    assert others == []
    assert close.close_code == 1002


def test_new_text_message_inside_a_fragmented_one_closes_with_1002(server):
    with open_raw(server) as raw:
        raw.send_frame(OP_TEXT, b"first half", fin=False)
        raw.send_frame(OP_TEXT, b"not a continuation", fin=True)
        _others, close, _rest = finish_after_server_close(raw)
    assert close.close_code == 1002


def test_ping_from_client_gets_pong_with_same_payload(server):
    with open_raw(server) as raw:
        raw.send_frame(OP_PING, b"are you there")
        frame = raw.read_frame()
        assert (frame.opcode, frame.payload) == (0xA, b"are you there")
        raw.send_text("still echoing")
        frame = raw.read_frame()
        assert (frame.opcode, frame.payload) == (OP_TEXT, b"still echoing")
        raw.send_close(1000)
        raw.read_until_close()


# --- keepalive: 1006 ---


@pytest.mark.timeout(60)
def test_no_pong_within_ping_timeout_drops_connection_and_view_sees_1006(start_server):
    server = start_server(
        env={"DJWS_PING_INTERVAL": "0.5", "DJWS_PING_TIMEOUT": "0.5", "DJWS_CLOSE_TIMEOUT": "1"}
    )
    key = new_key()
    frames = []
    with RawWebSocket(server.host, server.port, timeout=30) as raw:
        assert raw.handshake(f"/ws/iterate/?key={key}").status == 101
        try:  # read (so TCP flows) but never answer a ping, until the server drops us
            while True:
                frames.append(raw.read_frame())
        except (EOFError, ConnectionResetError):
            pass
    assert any(frame.opcode == OP_PING for frame in frames), frames
    record = server.wait_record(key)
    assert record["iteration_ended"] is True, record
    assert record["closed"] is True, record
    assert record["close_code"] == 1006, record


def test_answered_pings_keep_the_connection_open(start_server):
    server = start_server(env={"DJWS_PING_INTERVAL": "0.2", "DJWS_PING_TIMEOUT": "2"})
    with RawWebSocket(server.host, server.port, timeout=15) as raw:
        assert raw.handshake("/ws/echo/").status == 101
        pings = 0
        while pings < 5:  # answer five keepalive pings, then check the echo still works
            frame = raw.read_frame()
            assert frame.opcode == OP_PING, frame
            raw.send_frame(0xA, frame.payload)
            pings += 1
        raw.send_text("alive")
        while (frame := raw.read_frame()).opcode == OP_PING:
            raw.send_frame(0xA, frame.payload)
        assert (frame.opcode, frame.payload) == (OP_TEXT, b"alive")
        raw.send_close(1000)
        while (frame := raw.read_frame()).opcode != 0x8:
            pass
        assert frame.close_code == 1000


# --- shutdown: 1001 ---


@pytest.mark.timeout(60)
def test_sigint_closes_open_websockets_with_1001(start_server):
    server = start_server()
    with connect(server.ws_url("/ws/echo/")) as ws, connect(server.ws_url("/ws/lower/")) as other:
        ws.send("before")
        assert ws.recv(timeout=10) == "before"
        other.send("OTHER")
        assert other.recv(timeout=10) == "other"
        server.interrupt()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=20)
        with pytest.raises(ConnectionClosed) as other_closed:
            other.recv(timeout=20)
    assert closed.value.rcvd is not None, closed.value
    assert closed.value.rcvd.code == 1001
    assert other_closed.value.rcvd is not None and other_closed.value.rcvd.code == 1001
    assert server.stop() == 0


# --- nothing after the session ---


def test_nothing_follows_a_client_initiated_close(server):
    with open_raw(server) as raw:
        raw.send_text("hi")
        frame = raw.read_frame()
        assert (frame.opcode, frame.payload, frame.masked) == (OP_TEXT, b"hi", False)
        raw.send_close(1000, "done")
        others, close = raw.read_until_close()
        assert others == []
        assert close.close_code == 1000
        assert raw.read_to_eof() == b""


def test_nothing_follows_a_server_initiated_close(server):
    with open_raw(server, "/ws/echo-once/") as raw:
        raw.send_text("once")
        frame = raw.read_frame()
        assert (frame.opcode, frame.payload) == (OP_TEXT, b"once")
        others, close, rest = finish_after_server_close(raw)
    assert others == []
    assert close.close_code == 1000
    assert rest == b""


def test_nothing_follows_a_session_that_ended_with_an_error_close(server):
    with open_raw(server) as raw:
        raw.send_frame(OP_TEXT, b"\xff")
        _others, close, rest = finish_after_server_close(raw)
    assert close.close_code == 1007
    assert rest == b""
