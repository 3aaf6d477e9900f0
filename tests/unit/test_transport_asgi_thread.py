"""Unit tests of ASGIThreadTransport: a sync view's thread over a server's event loop.

The loop runs in a thread of its own, as an ASGI server's does; the test is the
view's thread. The peer is the ASGI ``receive``/``send`` pair of one connection.
No settings, no server.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from django_websocket.events import Close, CloseCode
from django_websocket.exceptions import ConnectionClosed
from django_websocket.transports.asgi import SEND_WINDOW, ASGIThreadTransport, ASGITransport


class Peer:
    """The server side: records what is sent; ``stuck`` makes sends wait for ever."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[dict] | None = None
        self.sent: list[dict] = []
        self.stuck = False
        self.all_sent = threading.Event()
        self.expected = 0

    async def receive(self) -> dict:
        if self.incoming is None:
            self.incoming = asyncio.Queue()
        return await self.incoming.get()

    async def send(self, message: dict) -> None:
        if self.stuck:
            await asyncio.Event().wait()  # a client that stopped reading
        self.sent.append(message)
        if len(self.sent) >= self.expected:
            self.all_sent.set()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop

    async def cancel_the_rest() -> None:
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(cancel_the_rest(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def transport(peer: Peer, loop: asyncio.AbstractEventLoop) -> ASGIThreadTransport:
    async def make() -> ASGIThreadTransport:
        return ASGIThreadTransport(ASGITransport(peer.receive, peer.send), loop)

    return asyncio.run_coroutine_threadsafe(make(), loop).result(5)


def texts(peer: Peer) -> list[object]:
    return [m.get("text", m.get("code")) for m in peer.sent]


def test_sends_go_out_in_order_and_the_close_frame_last(loop):
    peer = Peer()
    peer.expected = 201
    thread_transport = transport(peer, loop)
    for index in range(200):
        thread_transport.send(f"m{index}")  # never waits for the send itself
    thread_transport.send_close(4000, "done")
    assert peer.all_sent.wait(5)
    assert texts(peer) == [f"m{index}" for index in range(200)] + [4000]
    assert thread_transport._window._value == SEND_WINDOW  # every place given back


def test_a_dropped_connection_refuses_sends_at_once_and_leaks_no_window(loop):
    peer = Peer()
    thread_transport = transport(peer, loop)
    thread_transport.send_timeout = 30.0  # a wait for the window would show

    def post_then_stop() -> None:  # a send and an abort scheduled back to back
        thread_transport._post("late")
        thread_transport.stop_sending()

    assert thread_transport._window.acquire(timeout=1)  # what send() takes for "late"
    done = threading.Event()
    loop.call_soon_threadsafe(post_then_stop)
    loop.call_soon_threadsafe(done.set)
    assert done.wait(5)
    with pytest.raises(ConnectionClosed):
        thread_transport.send("after the drop")
    thread_transport.send_close(1000, "")  # ignored, no error
    assert peer.sent == []
    assert thread_transport._window._value == SEND_WINDOW


def test_a_send_to_a_client_that_stopped_reading_ends_the_connection(loop):
    """One stuck send (the window never fills) is dropped after the send timeout."""
    peer = Peer()
    peer.stuck = True
    thread_transport = transport(peer, loop)
    thread_transport.watch_sends(0.2)
    thread_transport.send("never read")
    deadline = time.monotonic() + 10  # the loop's send watch checks once a second
    event = None
    while not isinstance(event, Close) and time.monotonic() < deadline:
        event = thread_transport.receive(1.0)  # None: no event yet (or a wake-up)
    assert event == Close(CloseCode.ABNORMAL_CLOSURE, "send timed out")
    with pytest.raises(ConnectionClosed):
        thread_transport.send("after it")


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are Python 3.12+")
def test_sends_go_out_with_eager_tasks(loop):
    """A sender task that finishes inside create_task() does not block later sends."""
    loop.call_soon_threadsafe(loop.set_task_factory, asyncio.eager_task_factory)
    peer = Peer()
    peer.expected = 3 * SEND_WINDOW
    thread_transport = transport(peer, loop)
    thread_transport.send_timeout = 5.0
    for index in range(3 * SEND_WINDOW):
        thread_transport.send(f"m{index}")
    assert peer.all_sent.wait(5)
    assert texts(peer) == [f"m{index}" for index in range(3 * SEND_WINDOW)]
