"""The seed issue's two examples, as written, under a real runserver."""

import pytest
from websockets.exceptions import ConnectionClosedOK

from tests.integration.helpers import connect, http_request


def test_echo_once_echoes_then_closes_with_1000(server):
    with connect(server.ws_url("/ws/echo-once/")) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        with pytest.raises(ConnectionClosedOK) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000


def test_lower_case_over_websocket(server):
    with connect(server.ws_url("/ws/lower/")) as ws:
        for message in ["HeLLo", "WORLD", "already lower", "ÄÖÜ ẞ"]:
            ws.send(message)
            assert ws.recv(timeout=10) == message.lower()


def test_lower_case_over_plain_http(server):
    status, _headers, body = http_request(server.http_url("/ws/lower/?message=HeLLo"))
    assert (status, body) == (200, b"hello")


def test_require_websocket_refuses_plain_http_with_400(server):
    status, _headers, _body = http_request(server.http_url("/ws/echo-once/"))
    assert status == 400


def test_lower_case_session_ends_with_1000_when_client_closes(server):
    with connect(server.ws_url("/ws/lower/")) as ws:
        ws.send("X")
        assert ws.recv(timeout=10) == "x"
        ws.close()
    assert ws.close_code == 1000
