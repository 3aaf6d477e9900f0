"""The examples of docs/testing.rst (against the URLs of docs/examples/index_example.py).

tests/test_docs_examples.py runs every one of them.
"""

import pytest
from django.contrib.auth.models import User
from django.test import SimpleTestCase
from websockets.sync.client import connect

from django_websocket import ConnectionClosed
from django_websocket.testing import (
    AsyncWebSocketClient,
    HandshakeRejected,
    WebSocketClient,
    WebSocketLiveServerTestCase,
)


# [pytest]
def test_echo(db):
    client = WebSocketClient()
    with client.connect("/ws/echo/") as ws:
        ws.send("hi")
        assert ws.receive() == "hi"
        ws.send(b"\x00\xff")
        assert ws.receive() == b"\x00\xff"


def test_login_required(db):
    client = WebSocketClient()
    with pytest.raises(HandshakeRejected) as refused:
        client.connect("/ws/shout/")
    assert refused.value.status_code == 302  # LoginRequiredMixin redirects
    client.force_login(User.objects.create_user("ann"))
    with client.connect("/ws/shout/") as ws:
        assert ws.receive_json() == {"hello": "ann"}
        ws.send_json({"text": "hey"})
        assert ws.receive_json() == {"shout": "HEY"}


def test_invalid_json_closes_with_1007(db):
    client = WebSocketClient()
    client.force_login(User.objects.create_user("bob"))
    with client.connect("/ws/shout/") as ws:
        ws.receive_json()
        ws.send("{not json")
        with pytest.raises(ConnectionClosed) as closed:
            ws.receive()
    assert closed.value.code == 1007
    assert ws.close_code == 1007


# [/pytest]


# [http]
def test_plain_http(client):
    assert client.get("/ws/echo/").status_code == 426


def test_origin_refused(db):
    with pytest.raises(HandshakeRejected) as refused:
        WebSocketClient().connect("/ws/echo/", headers={"Origin": "https://evil.example"})
    assert refused.value.status_code == 403


# [/http]


# [async]
class AsyncEchoTests(SimpleTestCase):
    async def test_echo(self):
        client = AsyncWebSocketClient()
        async with client.connect("/ws/echo/") as ws:
            await ws.send("hi")
            self.assertEqual(await ws.receive(), "hi")


# [/async]


# [live]
class LiveEchoTests(WebSocketLiveServerTestCase):
    def test_echo_over_a_real_socket(self):
        with connect(self.live_ws_url + "/ws/echo/") as ws:  # the websockets client
            ws.send("hi")
            self.assertEqual(ws.recv(timeout=5), "hi")


# [/live]
