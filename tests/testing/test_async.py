"""``AsyncWebSocketClient`` in ``async def`` tests run by pytest-asyncio."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from django_websocket import ConnectionClosed
from django_websocket.testing import AsyncWebSocketClient, HandshakeRejected
from tests.testing.views import EVENTS

pytestmark = [pytest.mark.urls("tests.testing.urls"), pytest.mark.asyncio]


@pytest.fixture
def client():
    return AsyncWebSocketClient()


@pytest.mark.parametrize("path", ["/ws/echo/", "/ws/async-echo/", "/ws/fn/async-echo/"])
async def test_echo(client, path):
    async with client.connect(path) as ws:
        await ws.send("hi")
        assert await ws.receive() == "hi"
        await ws.send(b"\x00")
        assert await ws.receive() == b"\x00"
    assert ws.close_code == 1000


async def test_json(client):
    async with client.connect("/ws/json/") as ws:
        await ws.send_json([1, "two"])
        assert await ws.receive_json() == {"got": [1, "two"]}


async def test_close_codes(client, key):
    async with client.connect(f"/ws/async-echo/?key={key}") as ws:
        await ws.close(4001, "bye")
    assert (ws.close_code, ws.close_reason) == (4001, "bye")
    assert [(e["code"], e["reason"]) for e in EVENTS[key] if e["event"] == "close"] == [
        (4001, "bye")
    ]
    async with client.connect("/ws/async-echo/") as ws:
        await ws.send("close 4000")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive()
    assert (closed.value.code, closed.value.reason) == (4000, "server")


async def test_refusals(client):
    for path, headers, status in [
        ("/ws/echo/", {"Sec-WebSocket-Version": "8"}, 400),
        ("/ws/echo/", {"Origin": "http://evil.example"}, 403),
        ("/ws/nowhere/", None, 404),
        ("/ws/protected/", None, 302),
    ]:
        with pytest.raises(HandshakeRejected) as rejected:
            async with client.connect(path, headers=headers):
                pass
        assert rejected.value.status_code == status


async def test_subprotocol(client):
    async with client.connect("/ws/subprotocol/", subprotocols=["chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert await ws.receive() == "chat.v2"


async def test_receive_timeout_names_the_timeout(client):
    async with client.connect("/ws/async-echo/") as ws:
        with pytest.raises(TimeoutError, match=r"0\.05 s"):
            await ws.receive(timeout=0.05)


async def test_the_event_loop_keeps_running_while_waiting(client):
    """A receive waits in a thread: other tasks run meanwhile."""
    async with client.connect("/ws/async-echo/") as ws:
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.05)
        ticker.cancel()
    assert ticks > 1


@pytest.mark.django_db(transaction=True)
async def test_login_with_the_database(client):
    user = await sync_to_async(User.objects.create_user)("gina")
    await client.aforce_login(user)
    async with client.connect("/ws/async-protected/") as ws:
        assert await ws.receive() == "hello gina"
    async with client.connect("/ws/users/") as ws:
        await ws.send("create hugo")
        assert await ws.receive() == "hugo"
    assert await User.objects.filter(username="hugo").aexists()
