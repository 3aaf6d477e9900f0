"""SPEC section 4: ``request.websocket`` in function views, under runserver.

What only the server sees is recorded by the views (``?key=``) and read back
with ``server.wait_record(key)``.
"""

import json

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from tests.integration.helpers import connect, new_key


def test_read_returns_none_at_once_when_nothing_is_queued(server):
    with connect(server.ws_url("/ws/read-empty/")) as ws:
        # Nothing was sent: a reply proves read() did not block waiting for one.
        report = json.loads(ws.recv(timeout=10))
        assert report == {"read": None, "has": False, "count": 0}
        ws.send("after read")
        assert ws.recv(timeout=10) == "after read"


def test_queued_messages_are_counted_without_being_consumed_then_read_in_order(server):
    with connect(server.ws_url("/ws/queue/?n=3")) as ws:
        for message in ["m1", "m2", "m3"]:
            ws.send(message)
        counted = json.loads(ws.recv(timeout=15))
        assert counted == {"count": 3, "has": True, "count_again": 3}
        drained = json.loads(ws.recv(timeout=10))
        assert drained == {"read": ["m1", "m2", "m3"], "count_after": 0, "has_after": False}


def test_iteration_ends_when_the_client_closes(server):
    key = new_key()
    with connect(server.ws_url(f"/ws/iterate/?key={key}")) as ws:
        for message in ["a", "b"]:
            ws.send(message)
            assert ws.recv(timeout=10) == message
    record = server.wait_record(key)
    assert record["iteration_ended"] is True, record
    assert record["received"] == ["a", "b"]
    assert record["closed"] is True
    assert record["close_code"] == 1000


def test_view_sees_the_clients_close_code_and_reason(server):
    key = new_key()
    with connect(server.ws_url(f"/ws/iterate/?key={key}")) as ws:
        ws.send("x")
        assert ws.recv(timeout=10) == "x"
        ws.close(4000, "bye bye")
    record = server.wait_record(key)
    assert (record["close_code"], record["close_reason"]) == (4000, "bye bye"), record


def test_wait_returns_none_once_the_client_closed(server):
    key = new_key()
    with connect(server.ws_url(f"/ws/wait-loop/?key={key}")) as ws:
        ws.send("one")
        assert ws.recv(timeout=10) == "one"
    record = server.wait_record(key)
    assert record["loop_ended"] is True, record
    assert record["received"] == ["one"]
    assert record["wait_again"] == {"value": None}, record
    assert record["closed"] is True
    assert record["close_code"] == 1000


def test_wait_after_iteration_ended_returns_none(server):
    key = new_key()
    with connect(server.ws_url(f"/ws/iterate/?key={key}")):
        pass
    record = server.wait_record(key)
    assert record["wait_after_close"] == {"value": None}, record


def test_read_after_close_returns_none(server):
    key = new_key()
    with connect(server.ws_url(f"/ws/wait-loop/?key={key}")):
        pass
    record = server.wait_record(key)
    assert record["read_after_close"] == {"value": None}, record


def test_send_after_close_raises_connection_closed(server):
    key = new_key()
    with connect(server.ws_url(f"/ws/iterate/?key={key}")) as ws:
        ws.send("last")
        assert ws.recv(timeout=10) == "last"
    record = server.wait_record(key)
    outcome = record["send_after_close"]
    assert outcome.get("is_connection_closed") is True, record


def test_returning_from_the_view_closes_with_1000(server):
    with connect(server.ws_url("/ws/return/")) as ws, pytest.raises(ConnectionClosedOK) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


@pytest.mark.parametrize("code, reason", [(4001, "going away now"), (1000, ""), (1011, "oops")])
def test_close_code_and_reason_from_the_view_reach_the_client(server, code, reason):
    key = new_key()
    url = server.ws_url(f"/ws/close/?code={code}&reason={reason.replace(' ', '+')}&key={key}")
    with connect(url) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None, closed.value
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (code, reason)
    record = server.wait_record(key)
    assert record["closed"] is True, record


def test_subprotocol_is_none_when_none_was_negotiated(server):
    with connect(server.ws_url("/ws/subprotocol/")) as ws:
        assert ws.recv(timeout=10) == "None"
        assert ws.subprotocol is None
