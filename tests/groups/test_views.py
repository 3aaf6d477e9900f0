"""``WebSocketView`` groups through the in-process test client (``memory://``).

Each test runs against the sync and the async flavour of the same view.
"""

import threading

import pytest
from django.test import override_settings

from django_websocket import ConnectionClosed, abroadcast, broadcast, broadcast_json
from django_websocket.groups import get_broker
from django_websocket.testing import AsyncWebSocketClient, WebSocketClient
from tests.groups.project.views import STALLS
from tests.groups.test_broker import RECORDING, RecordingBroker

pytestmark = [pytest.mark.urls("tests.groups.project.urls"), pytest.mark.timeout(60)]

KINDS = ["sync", "async"]
TRY_AGAIN_LATER = 1013


@pytest.fixture
def client():
    return WebSocketClient(timeout=5)


def member(client, kind, group):
    ws = client.connect(f"/ws/{kind}/{group}/")
    assert ws.receive() == "joined"
    return ws


def ping(ws):
    """The next message is the answer to ``ping``: nothing else was waiting before it."""
    ws.send("ping")
    assert ws.receive() == "pong"


@pytest.mark.parametrize("kind", KINDS)
def test_broadcast_from_a_plain_function_reaches_the_member(client, kind, group):
    with member(client, kind, group) as ws:
        broadcast(group, "text stays text")
        broadcast(group, b"\x00bytes stay bytes\xff")
        assert ws.receive() == "text stays text"
        assert ws.receive() == b"\x00bytes stay bytes\xff"


@pytest.mark.parametrize("kind", KINDS)
def test_broadcast_json(client, kind, group):
    with member(client, kind, group) as ws:
        broadcast_json(group, {"event": "news", "items": [1, 2, 3], "ok": True})
        assert ws.receive_json() == {"event": "news", "items": [1, 2, 3], "ok": True}


@pytest.mark.parametrize("kind", KINDS)
def test_every_member_gets_every_message_in_order_sender_included(client, kind, group):
    with (
        member(client, "sync", group) as a,
        member(client, "async", group) as b,
        member(client, kind, group) as sender,
    ):
        for index in range(20):
            sender.send(f"bcast:message {index}")
        sender.send("bcastb:binary")
        for ws in (a, b, sender):
            assert [ws.receive() for _ in range(20)] == [f"message {i}" for i in range(20)]
            assert ws.receive() == b"binary"


@pytest.mark.parametrize("kind", KINDS)
def test_join_and_leave(client, kind, group):
    other = f"{group}-other"
    with member(client, kind, group) as ws:
        ws.send(f"join:{other}")
        assert ws.receive() == f"joined:{other}"
        assert get_broker().members(other) == 1
        broadcast(other, "to other")
        assert ws.receive() == "to other"
        ws.send(f"leave:{other}")
        assert ws.receive() == f"left:{other}"
        assert get_broker().members(other) == 0
        broadcast(other, "not for me")
        broadcast(group, "still in the first group")
        assert ws.receive() == "still in the first group"
        ping(ws)


@pytest.mark.parametrize("kind", KINDS)
def test_only_members_receive(client, kind, group):
    with member(client, kind, group) as ws, member(client, kind, f"{group}-x") as outsider:
        broadcast(group, "for members")
        assert ws.receive() == "for members"
        ping(outsider)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("how", ["client closes", "view closes", "client drops"])
def test_membership_ends_when_the_connection_closes(client, kind, how, group):
    broker = get_broker()
    ws = member(client, kind, group)
    ws.send(f"join:{group}-b")
    assert ws.receive() == f"joined:{group}-b"
    assert broker.members(group) == 1 and broker.members(f"{group}-b") == 1
    if how == "client closes":
        ws.close()
    elif how == "view closes":
        ws.send("quit")
        with pytest.raises(ConnectionClosed):
            ws.receive()
    else:
        ws._peer.drop()  # TCP gone, no close frame
        with pytest.raises(ConnectionClosed):
            ws.receive()
    ws.close()  # waits (bounded) until the view has returned
    assert broker.members(group) == 0 and broker.members(f"{group}-b") == 0
    broadcast(group, "nobody listens")  # no error with no members


@pytest.mark.parametrize("path", ["/ws/declared/", "/ws/async-declared/"])
def test_the_groups_attribute_is_joined_before_on_open(client, path):
    broker = get_broker()
    before = broker.members("news"), broker.members("sports")
    with client.connect(path) as ws:
        assert ws.receive() == "joined"  # sent by on_open: the groups were joined already
        assert (broker.members("news"), broker.members("sports")) == (before[0] + 1, before[1] + 1)
        broadcast("news", "n")
        broadcast("sports", "s")
        assert [ws.receive(), ws.receive()] == ["n", "s"]
    assert (broker.members("news"), broker.members("sports")) == before


@pytest.mark.parametrize("path", ["/ws/filtered/", "/ws/async-filtered/"])
def test_on_group_message_filters_and_transforms(client, path):
    with client.connect(path) as ws:
        assert ws.receive() == "joined"
        broadcast("news", "secret: dropped")
        broadcast("news", "hello")
        broadcast("sports", "secret too")
        broadcast("sports", "goal")
        broadcast("sports", b"raw bytes")
        assert ws.receive() == "news|HELLO"
        assert ws.receive() == "sports|GOAL"
        assert ws.receive() == b"raw bytes"


@pytest.mark.parametrize("kind", KINDS)
def test_override_settings_switches_the_broker_views_use(client, kind, group):
    with override_settings(WEBSOCKET_BROKER_URL=RECORDING):
        broker = get_broker()
        assert isinstance(broker, RecordingBroker)
        with member(client, kind, group) as ws:
            assert broker.members(group) == 1
            ws.send("bcast:recorded")
            assert ws.receive() == "recorded"
            assert broker.published == [(group, "recorded")]
        assert broker.members(group) == 0


@pytest.mark.parametrize("kind", ["stalling", "async-stalling"])
def test_a_member_that_falls_behind_is_closed_with_1013_the_others_get_everything(
    client, kind, group
):
    """``max_group_queue = 4``: the stalled member is closed, the others are not delayed."""
    STALLS[group] = release = threading.Event()
    try:
        stalled = client.connect(f"/ws/{kind}/{group}/")
        assert stalled.receive() == "joined"
        with member(client, "sync", group) as a, member(client, "async", group) as b:
            for index in range(12):
                broadcast(group, f"m{index}")
            for ws in (a, b):  # while the stalled view is stuck
                assert [ws.receive() for _ in range(12)] == [f"m{i}" for i in range(12)]
            release.set()
            received = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    received.append(stalled.receive())
            assert closed.value.code == TRY_AGAIN_LATER
            assert received == [f"m{i}" for i in range(len(received))]  # a prefix, in order
            stalled.close()
            assert get_broker().members(group) == 2
            broadcast(group, "after")
            assert a.receive() == b.receive() == "after"
    finally:
        release.set()
        STALLS.pop(group, None)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_abroadcast_from_async_code_reaches_members(kind, group):
    async with AsyncWebSocketClient(timeout=5).connect(f"/ws/{kind}/{group}/") as ws:
        assert await ws.receive() == "joined"
        await abroadcast(group, "from a coroutine")
        await abroadcast(group, b"bytes from a coroutine")
        assert await ws.receive() == "from a coroutine"
        assert await ws.receive() == b"bytes from a coroutine"
