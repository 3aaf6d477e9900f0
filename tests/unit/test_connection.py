"""Unit tests of the core (connection.py) over the in-memory transport. No settings."""

from __future__ import annotations

import threading

import pytest

from django_websocket.connection import ConnectionRegistry, WebSocket, check_close
from django_websocket.events import Close, CloseCode, State
from django_websocket.exceptions import ConnectionClosed
from django_websocket.transports.memory import memory_pair


def make(**options):
    transport, client = memory_pair(
        auto_pong=options.pop("auto_pong", True), auto_close=options.pop("auto_close", True)
    )
    options.setdefault("ping_interval", None)
    return WebSocket(transport, **options), transport, client


def test_wait_returns_messages_in_order_then_none_once_closed():
    ws, _, client = make()
    client.send("a")
    client.send(b"b")
    client.send_close(4001, "bye")
    assert ws.wait() == "a"
    assert ws.wait() == b"b"
    assert ws.wait() is None
    assert ws.wait() is None
    assert (ws.closed, ws.close_code, ws.close_reason) == (True, 4001, "bye")
    assert client.receive() == Close(4001, "bye")  # the close is echoed


def test_read_never_blocks_and_returns_none_when_nothing_is_queued():
    ws, _, client = make()
    assert ws.read() is None
    client.send("x")
    assert ws.read() == "x"
    assert ws.read() is None


def test_count_and_has_messages_do_not_consume():
    ws, _, client = make()
    assert ws.count_messages() == 0
    assert not ws.has_messages()
    for text in ("1", "2", "3"):
        client.send(text)
    assert ws.count_messages() == 3
    assert ws.has_messages()
    assert ws.count_messages() == 3
    assert [ws.read(), ws.read(), ws.read(), ws.read()] == ["1", "2", "3", None]


def test_iteration_ends_when_the_client_closes():
    ws, _, client = make()
    client.send("a")
    client.send("b")
    client.send_close()
    assert list(ws) == ["a", "b"]
    assert ws.close_code == CloseCode.NORMAL_CLOSURE


def test_wait_blocks_until_a_message_arrives_from_another_thread():
    ws, _, client = make()
    started = threading.Event()
    result = []

    def reader():
        started.set()
        result.append(ws.wait())

    thread = threading.Thread(target=reader)
    thread.start()
    started.wait(5)
    client.send("late")
    thread.join(5)
    assert result == ["late"]


def test_send_delivers_text_and_binary():
    ws, _, client = make()
    ws.send("text")
    ws.send(b"\x00bin")
    ws.send(bytearray(b"ba"))
    assert [client.receive(), client.receive(), client.receive()] == ["text", b"\x00bin", b"ba"]


def test_send_rejects_other_types():
    ws, _, _ = make()
    with pytest.raises(TypeError, match="str or bytes"):
        ws.send(42)


def test_send_after_close_raises_connection_closed_with_the_code():
    ws, _, client = make()
    client.send_close(4002, "gone")
    assert ws.wait() is None
    with pytest.raises(ConnectionClosed) as info:
        ws.send("late")
    assert (info.value.code, info.value.reason) == (4002, "gone")


def test_server_close_starts_handshake_and_peer_echo_completes_it():
    ws, transport, client = make()
    ws.close(4000, "done")
    assert ws.state is State.CLOSING and ws.closed
    assert client.receive() == Close(4000, "done")  # the client echoes it
    ws.finish()
    assert ws.state is State.CLOSED
    assert ws.close_code == 4000
    assert transport.finished


def test_close_is_idempotent_and_validates_codes():
    ws, _, _ = make()
    with pytest.raises(ValueError, match="invalid close code"):
        ws.close(1006)
    with pytest.raises(ValueError, match="123 bytes"):
        ws.close(1000, "x" * 124)
    ws.close()
    ws.close(4000)  # already closing: no second close frame


def test_finish_closes_with_1000_when_still_open():
    ws, transport, client = make(auto_close=False)
    received = []
    peer = threading.Thread(target=lambda: received.append(client.receive()))
    peer.start()
    ws.finish()  # returns once the client, reading on its thread, echoed the close
    peer.join(5)
    assert received == [Close(CloseCode.NORMAL_CLOSURE, "")]
    assert ws.close_code == CloseCode.NORMAL_CLOSURE
    assert transport.finished


def test_close_timeout_drops_a_peer_that_never_answers():
    ws, transport, _ = make(close_timeout=0.05, auto_close=False)
    ws.close()  # this client never reads, so never echoes
    ws.finish()
    assert transport.aborted
    assert ws.close_code == CloseCode.ABNORMAL_CLOSURE


def test_oversized_message_closes_with_1009():
    ws, _, client = make(max_message_size=4)
    client.send("12345")
    client.send(b"ok")  # discarded: after our close frame data is ignored
    assert ws.wait() is None
    assert client.receive() == Close(CloseCode.MESSAGE_TOO_BIG, "message too big")


def test_size_limit_counts_utf8_bytes():
    ws, _, client = make(max_message_size=4)
    client.send("éé")  # 4 bytes
    assert ws.wait() == "éé"
    client.send("ééé")  # 6 bytes, 3 characters
    assert ws.wait() is None
    assert ws.close_code == CloseCode.MESSAGE_TOO_BIG


def test_keepalive_pings_when_idle_and_keeps_a_live_peer():
    ws, transport, client = make(ping_interval=0.01, ping_timeout=5)
    assert ws.read() is None
    threading.Timer(0.1, client.send, ["after pings"]).start()
    assert ws.wait() == "after pings"
    assert transport.pings_sent >= 1
    assert not ws.closed


def test_keepalive_drops_a_peer_that_never_pongs_with_1006():
    ws, transport, _ = make(ping_interval=0.01, ping_timeout=0.05, auto_pong=False)
    assert ws.wait() is None
    assert transport.aborted
    assert ws.close_code == CloseCode.ABNORMAL_CLOSURE
    assert ws.close_reason == "keepalive ping timeout"


def test_abrupt_drop_reports_1006():
    ws, _, client = make()
    client.drop()
    assert ws.wait() is None
    assert ws.close_code == CloseCode.ABNORMAL_CLOSURE


def test_check_close_accepts_application_codes():
    check_close(1000, "")
    check_close(3000, "")
    check_close(4999, "ok")
    with pytest.raises(ValueError):
        check_close(5000, "")
    with pytest.raises(ValueError):
        check_close(1005, "")


def test_registry_limits_and_close_all():
    registry = ConnectionRegistry()
    assert registry.reserve(2) and registry.reserve(2)
    assert not registry.reserve(2)
    registry.release()
    assert registry.reserve(2)
    ws, _, client = make()
    registry.add(ws)

    def session():
        assert ws.wait() is None
        registry.discard(ws)

    thread = threading.Thread(target=session)
    thread.start()
    assert registry.close_all(CloseCode.GOING_AWAY, "bye", timeout=5) == 0
    thread.join(5)
    assert ws.close_code == CloseCode.GOING_AWAY
    assert client.receive() == Close(CloseCode.GOING_AWAY, "bye")
