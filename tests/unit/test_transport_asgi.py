"""Unit tests of the ASGI transport under AsyncWebSocket, with an in-test ASGI peer.

The peer is an ``asyncio.Queue`` of ASGI events (what uvicorn, daphne and hypercorn
use behind ``receive()``) and a list of what the app sent. No settings, no server.
"""

from __future__ import annotations

import asyncio

import pytest

from django_websocket.connection_async import AsyncWebSocket
from django_websocket.events import CloseCode
from django_websocket.transports.asgi import ASGITransport, _task_of

pytestmark = pytest.mark.asyncio


class Peer:
    """The server side of ASGI ``receive``/``send`` for one connection."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[dict] = asyncio.Queue()
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        return await self.incoming.get()

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    def text(self, text: str) -> None:
        self.incoming.put_nowait({"type": "websocket.receive", "text": text})


def connect(peer: Peer, **options) -> AsyncWebSocket:
    options.setdefault("ping_interval", 20.0)  # ignored: the ASGI server pings
    options.setdefault("close_timeout", 0.2)
    return AsyncWebSocket(ASGITransport(peer.receive, peer.send), **options)


async def test_messages_arrive_in_order_over_the_fast_path():
    peer = Peer()
    ws = connect(peer)
    for text in ("a", "b", "c"):
        peer.text(text)
    assert [await ws.wait() for _ in range(3)] == ["a", "b", "c"]
    peer.incoming.put_nowait({"type": "websocket.disconnect", "code": 4001})
    assert await ws.wait() is None
    assert ws.close_code == 4001


async def test_a_close_from_another_task_ends_a_pending_wait_after_the_close_timeout():
    # A group overflow closes a slow member from another task while its view waits
    # for a message that will never come: the wait must end on the close deadline.
    peer = Peer()
    ws = connect(peer)
    waiting = asyncio.ensure_future(ws.wait())
    await asyncio.sleep(0)  # let the wait reach the server's receive()
    assert not waiting.done()
    await ws.close(CloseCode.TRY_AGAIN_LATER, "too slow")
    assert await asyncio.wait_for(waiting, 5) is None
    assert peer.sent == [{"type": "websocket.close", "code": 1013, "reason": "too slow"}]
    assert ws.close_code == CloseCode.ABNORMAL_CLOSURE  # the peer never answered


async def test_a_close_answered_in_time_ends_the_wait_at_once_with_our_code():
    peer = Peer()
    ws = connect(peer, close_timeout=60)  # the wait must end on the answer, not on this
    waiting = asyncio.ensure_future(ws.wait())
    await asyncio.sleep(0)
    await ws.close(CloseCode.GOING_AWAY)
    peer.incoming.put_nowait({"type": "websocket.disconnect", "code": 1001})
    assert await asyncio.wait_for(waiting, 5) is None
    assert ws.close_code == CloseCode.GOING_AWAY


async def test_a_real_cancel_of_the_waiting_task_is_not_swallowed():
    peer = Peer()
    ws = connect(peer)
    waiting = asyncio.ensure_future(ws.wait())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_binary_payloads_arrive_as_bytes_whatever_type_the_server_used():
    # ASGI says "bytes", but a server may hand over a bytearray or a memoryview;
    # a receive event with neither key is an empty binary message.
    peer = Peer()
    ws = connect(peer)
    for data in (b"ab", bytearray(b"cd"), memoryview(b"ef")):
        peer.incoming.put_nowait({"type": "websocket.receive", "bytes": data})
    peer.incoming.put_nowait({"type": "websocket.receive"})
    received = [await ws.wait() for _ in range(4)]
    assert received == [b"ab", b"cd", b"ef", b""]
    assert {type(message) for message in received} == {bytes}


async def test_the_task_the_transport_records_is_the_current_task():
    # _task_of replaces asyncio.current_task() on the per-message path (the task
    # that wake() cancels, the send the timeout watch cancels): same answer, in
    # this task and in another one.
    loop = asyncio.get_running_loop()

    async def current() -> tuple[asyncio.Task | None, asyncio.Task | None]:
        return _task_of(loop), asyncio.current_task()

    assert _task_of(loop) is asyncio.current_task()
    recorded, actual = await loop.create_task(current())
    assert recorded is actual and actual is not None and actual is not asyncio.current_task()
