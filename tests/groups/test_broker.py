"""The broker layer on its own: ``memory://``, plugging backends, ``broadcast*`` helpers."""

import asyncio
import json
import logging

import pytest
from django.test import override_settings

from django_websocket import BrokerError, abroadcast, abroadcast_json, broadcast, broadcast_json
from django_websocket.groups import get_broker, reset_brokers
from django_websocket.groups.base import Broker, check_group, check_message
from django_websocket.groups.memory import MemoryBroker
from django_websocket.groups.redis import RedisBroker

RECORDING = "tests.groups.test_broker.RecordingBroker"


class Recorder:
    """A member that keeps what it is handed."""

    def __init__(self):
        self.received = []

    def deliver(self, group, message):
        self.received.append((group, message))


class Broken:
    def deliver(self, group, message):
        raise RuntimeError("this member is broken")


class RecordingBroker(MemoryBroker):
    """``memory://`` that also remembers what was published (a plugged-in backend)."""

    instances = []

    def __init__(self, url):
        super().__init__(url)
        self.published = []
        self.closed = False
        RecordingBroker.instances.append(self)

    def publish(self, group, message):
        self.published.append((group, message))
        super().publish(group, message)

    async def apublish(self, group, message):
        self.published.append((group, message))
        await super().apublish(group, message)

    def close(self):
        self.closed = True


class FailingBroker(Broker):
    def publish(self, group, message):
        raise BrokerError("cannot broadcast: nowhere to send")

    async def apublish(self, group, message):
        raise BrokerError("cannot broadcast: nowhere to send")


# --- memory:// ------------------------------------------------------------------


def test_memory_broker_delivers_to_the_members_of_a_group_only():
    broker = MemoryBroker("memory://")
    a, b, outsider = Recorder(), Recorder(), Recorder()
    broker.join("room", a)
    broker.join("room", b)
    broker.join("other", outsider)
    broker.publish("room", "hello")
    broker.publish("room", b"\x00\x01")
    assert a.received == b.received == [("room", "hello"), ("room", b"\x00\x01")]
    assert outsider.received == []
    assert broker.members("room") == 2
    broker.publish("nobody-here", "lost")  # a group without members: nothing happens


def test_memory_broker_leave_and_leave_all():
    broker = MemoryBroker("memory://")
    member = Recorder()
    for group in ("a", "b", "c"):
        broker.join(group, member)
    broker.join("a", member)  # joining twice is joining once
    broker.publish("a", "1")
    assert member.received == [("a", "1")]
    broker.leave("a", member)
    broker.leave("a", member)  # leaving twice, or a group never joined, is harmless
    broker.leave("never", member)
    broker.publish("a", "2")
    broker.publish("b", "3")
    assert member.received == [("a", "1"), ("b", "3")]
    broker.leave_all(member)
    broker.publish("b", "4")
    broker.publish("c", "5")
    assert member.received == [("a", "1"), ("b", "3")]
    assert [broker.members(g) for g in ("a", "b", "c")] == [0, 0, 0]


def test_memory_broker_apublish():
    broker = MemoryBroker("memory://")
    member = Recorder()
    broker.join("room", member)
    asyncio.run(broker.apublish("room", "async hello"))
    assert member.received == [("room", "async hello")]


def test_one_broken_member_does_not_stop_the_others():
    broker = MemoryBroker("memory://")
    before, after = Recorder(), Recorder()
    broker.join("room", before)
    broker.join("room", Broken())
    broker.join("room", after)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("django_websocket")
    logger.addHandler(handler)
    try:
        broker.publish("room", "still delivered")
    finally:
        logger.removeHandler(handler)
    assert before.received == after.received == [("room", "still delivered")]
    assert any("room" in record.getMessage() for record in records)


class LoopRecorder:
    """A member on an event loop: like WebSocketView's, it starts work on the loop."""

    def __init__(self, loop, started):
        self.loop = loop
        self.started = started  # every member's work that has run, in order
        self.received = []
        self.most_pending = 0  # others' work not run yet when this member was handed one

    def deliver(self, group, message):  # pragma: no cover - loop members get enqueue()
        raise AssertionError("a loop member is handed messages on its loop")

    def enqueue(self, group, message):
        self.received.append((group, message))
        pending = len(self.received_by_all) - len(self.started)
        self.most_pending = max(self.most_pending, pending)
        self.received_by_all.append(self)
        self.loop.call_soon(self.started.append, self)  # a task's first step, say


def test_loop_members_are_handed_a_message_in_chunks_the_loop_runs_between():
    """1,000 members' tasks are not all pending at once (see CHUNK): GC stays young."""
    from django_websocket.groups.base import CHUNK

    broker = MemoryBroker("memory://")

    async def main():
        loop = asyncio.get_running_loop()
        started, handed = [], []
        members = [LoopRecorder(loop, started) for _ in range(5 * CHUNK + 3)]
        for member in members:
            member.received_by_all = handed
            broker.join("room", member)
        broker.join("room", Broken())  # a broken member among them changes nothing

        async def all_started(count):
            while len(started) < count:
                await asyncio.sleep(0)

        # From another thread (one callback per loop), then from the loop itself.
        await asyncio.to_thread(broker.publish, "room", "from a thread")
        await all_started(len(members))
        await broker.apublish("room", "from the loop")
        await all_started(2 * len(members))
        return members, started, handed

    members, started, handed = asyncio.run(main())
    expected = [("room", "from a thread"), ("room", "from the loop")]
    assert all(member.received == expected for member in members)
    # Each member was handed the message with less than a chunk of others' work pending.
    assert max(member.most_pending for member in members) < CHUNK
    assert started == handed  # in the order they were handed it


def test_a_member_of_two_groups_gets_broadcasts_in_the_order_they_were_sent():
    """A second broadcast does not overtake the chunks of the first one."""
    from django_websocket.groups.base import CHUNK

    broker = MemoryBroker("memory://")

    async def main():
        loop = asyncio.get_running_loop()
        started, handed = [], []
        members = [LoopRecorder(loop, started) for _ in range(2 * CHUNK)]
        for member in members:
            member.received_by_all = handed
            broker.join("room", member)
        await broker.apublish("room", "probe")  # learn the order room's members are handed
        while len(started) < len(members):
            await asyncio.sleep(0)
        late = handed[CHUNK:]  # past room's first chunk
        for member in late:
            broker.join("user", member)

        await broker.apublish("room", "A")
        await broker.apublish("user", "B")
        while len(started) < len(members) * 2 + len(late):
            await asyncio.sleep(0)
        return late

    late = asyncio.run(main())
    assert len(late) == CHUNK
    assert all(
        [message for _, message in member.received] == ["probe", "A", "B"] for member in late
    )


@pytest.mark.parametrize(
    ("group", "error"),
    [(None, TypeError), (b"bytes", TypeError), ("", ValueError), ("x" * 256, ValueError)],
)
def test_invalid_group_names_are_refused(group, error):
    with pytest.raises(error):
        check_group(group)
    with pytest.raises(error):
        MemoryBroker("memory://").join(group, Recorder())
    with pytest.raises(error):
        broadcast(group, "hello")


def test_messages_are_text_or_bytes():
    assert check_message("text") == "text"
    assert check_message(b"raw") == b"raw"
    assert check_message(bytearray(b"raw")) == b"raw"
    assert check_message(memoryview(b"raw")) == b"raw"
    for wrong in (1, None, {"a": 1}, ["x"]):
        with pytest.raises(TypeError):
            check_message(wrong)
        with pytest.raises(TypeError):
            broadcast("room", wrong)


# --- choosing the backend -----------------------------------------------------------


def test_the_default_is_one_memory_broker_per_process():
    broker = get_broker()
    assert isinstance(broker, MemoryBroker)
    assert broker.url == "memory://"
    assert get_broker() is broker


def test_override_settings_switches_brokers_and_back():
    RecordingBroker.instances.clear()
    with override_settings(WEBSOCKET_BROKER_URL=f"{RECORDING}://anything"):
        plugged = get_broker()
        assert isinstance(plugged, RecordingBroker)
        assert plugged.url == f"{RECORDING}://anything"
        assert get_broker() is plugged
        broadcast("room", "hello")
        assert plugged.published == [("room", "hello")]
    assert plugged.closed  # dropped when the setting changed back
    assert isinstance(get_broker(), MemoryBroker)
    assert get_broker() is not plugged
    with override_settings(WEBSOCKET_BROKER_URL=RECORDING):  # a dotted path alone works too
        assert isinstance(get_broker(), RecordingBroker)
    assert len(RecordingBroker.instances) == 2


def test_a_redis_url_selects_the_redis_broker_without_connecting():
    with override_settings(WEBSOCKET_BROKER_URL="redis://127.0.0.1:1/3"):
        broker = get_broker()
        assert isinstance(broker, RedisBroker)
    with override_settings(WEBSOCKET_BROKER_URL="unix:///nonexistent/redis.sock"):
        assert isinstance(get_broker(), RedisBroker)


def test_reset_brokers_closes_and_forgets():
    with override_settings(WEBSOCKET_BROKER_URL=RECORDING):
        first = get_broker()
        reset_brokers()
        assert first.closed
        assert get_broker() is not first


# --- broadcast, abroadcast, broadcast_json ------------------------------------------


@override_settings(WEBSOCKET_BROKER_URL=RECORDING)
def test_broadcast_helpers_publish_through_the_broker():
    broker = get_broker()
    member = Recorder()
    broker.join("room", member)
    broadcast("room", "text")
    broadcast("room", b"binary")
    broadcast("room", bytearray(b"array"))
    broadcast_json("room", {"a": [1, 2], "b": None})
    asyncio.run(abroadcast("room", "from async"))
    asyncio.run(abroadcast_json("room", ["x"]))
    assert broker.published == [
        ("room", "text"),
        ("room", b"binary"),
        ("room", b"array"),
        ("room", json.dumps({"a": [1, 2], "b": None})),
        ("room", "from async"),
        ("room", '["x"]'),
    ]
    assert [message for _, message in member.received] == [m for _, m in broker.published]
    assert json.loads(member.received[3][1]) == {"a": [1, 2], "b": None}


@override_settings(WEBSOCKET_BROKER_URL="tests.groups.test_broker.FailingBroker")
def test_broker_errors_reach_the_caller():
    with pytest.raises(BrokerError, match="cannot broadcast"):
        broadcast("room", "x")
    with pytest.raises(BrokerError, match="cannot broadcast"):
        broadcast_json("room", {})
    with pytest.raises(BrokerError, match="cannot broadcast"):
        asyncio.run(abroadcast("room", "x"))


def test_broker_error_is_public_and_a_websocket_error():
    from django_websocket import WebSocketError

    assert issubclass(BrokerError, WebSocketError)


def test_delivery_state_does_not_keep_an_event_loop_alive():
    """Async views under WSGI servers run on a loop per connection: none may leak."""
    import gc
    import weakref

    broker = MemoryBroker("memory://")
    loops = []
    for _ in range(3):
        loop = asyncio.new_event_loop()
        member = LoopRecorder(loop, [])
        member.received_by_all = []
        broker.join("room", member)
        loop.run_until_complete(broker.apublish("room", "hello"))
        broker.leave("room", member)
        assert member.received == [("room", "hello")]
        loops.append(weakref.ref(loop))
        loop.close()
        del loop, member
    gc.collect()
    assert [ref() for ref in loops] == [None, None, None]
