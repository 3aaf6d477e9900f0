"""``redis://`` in this process: the test client's views, a real Redis in between."""

import asyncio
import gc
import threading

import pytest
import redis
from django.test import override_settings

from django_websocket import BrokerError, abroadcast, broadcast, broadcast_json
from django_websocket.groups import get_broker
from django_websocket.groups.redis import RedisBroker
from django_websocket.testing import WebSocketClient
from tests.groups.servers import free_port, manage, wait_until

pytestmark = [pytest.mark.urls("tests.groups.project.urls"), pytest.mark.timeout(60)]


@pytest.fixture
def redis_url(redis_server):
    with override_settings(WEBSOCKET_BROKER_URL=redis_server.url):
        yield redis_server.url


def test_members_in_this_process_get_broadcasts_through_redis(redis_url, group):
    assert isinstance(get_broker(), RedisBroker)
    client = WebSocketClient(timeout=10)
    with client.connect(f"/ws/sync/{group}/") as a, client.connect(f"/ws/async/{group}/") as b:
        assert a.receive() == b.receive() == "joined"
        broadcast(group, "through redis")
        broadcast(group, b"\x00binary\xff")
        broadcast_json(group, {"n": 1})
        a.send("bcast:from a member")
        for ws in (a, b):
            assert ws.receive() == "through redis"
            assert ws.receive() == b"\x00binary\xff"
            assert ws.receive_json() == {"n": 1}
            assert ws.receive() == "from a member"
    assert get_broker().members(group) == 0


def test_a_broadcast_from_another_process_reaches_members_here(redis_url, group):
    client = WebSocketClient(timeout=10)
    with client.connect(f"/ws/sync/{group}/") as ws:
        assert ws.receive() == "joined"
        result = manage(redis_url, "broadcast_message", group, "from elsewhere")
        assert result.returncode == 0, result.stderr
        assert ws.receive() == "from elsewhere"


def test_a_group_name_with_any_characters_round_trips(redis_url):
    broker = get_broker()
    received = []
    arrived = threading.Event()

    class Member:
        def deliver(self, group, message):
            received.append((group, message))
            arrived.set()

    name = "room:é/ü*?[x] ünïcode"  # pattern characters must not confuse psubscribe
    member = Member()
    broker.join(name, member)
    try:
        broadcast(name, "ok")
        assert arrived.wait(10)
        assert received == [(name, "ok")]
    finally:
        broker.leave(name, member)


def test_broadcast_raises_broker_error_when_redis_is_unreachable():
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with override_settings(WEBSOCKET_BROKER_URL=url):
        with pytest.raises(BrokerError, match=r"cannot broadcast: Redis at 127\.0\.0\.1:\d+"):
            broadcast("room", "lost")
        with pytest.raises(BrokerError, match="unavailable"):
            asyncio.run(abroadcast("room", "lost"))


def test_redis_broker_close_stops_the_listener(redis_server, group):
    broker = RedisBroker(redis_server.url)

    class Member:
        def deliver(self, group, message):
            pass

    broker.join(group, Member())
    listener = broker._listener
    assert listener is not None and listener.is_alive()
    broker.close()
    wait_until(lambda: not listener.is_alive(), 10, "the listener thread ending")


def test_abroadcast_leaves_no_redis_connection_behind(redis_server, group):
    """Each ``asyncio.run()`` is a new event loop, as for every async view under WSGI
    (``async_to_sync``): connections made for a loop must not outlive it, and closing
    the broker must close them all."""
    counter = redis.Redis.from_url(redis_server.url)
    try:
        baseline = len(counter.client_list())
        with override_settings(WEBSOCKET_BROKER_URL=redis_server.url):
            for index in range(10):
                asyncio.run(abroadcast(group, f"m{index}"))
            during = len(counter.client_list())
        gc.collect()  # an unclosed connection found here warns (ResourceWarning)
        after = len(counter.client_list())
    finally:
        counter.close()
    assert during - baseline <= 2, f"{during - baseline} Redis connections for 10 event loops"
    assert after <= baseline, f"{after - baseline} Redis connections left after the broker closed"
