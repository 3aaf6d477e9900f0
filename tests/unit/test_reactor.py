"""The reactor that resumes parked runserver sessions, and the socket transport's park.

Real sockets (socketpairs, a loopback connection with the ``websockets`` client);
each ``resume`` sets an event the test waits on. No settings, no server.
"""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from websockets.sync.client import connect

from django_websocket.connection import IDLE, WebSocket
from django_websocket.transports.reactor import Reactor
from django_websocket.transports.wsgi import accept_socket

WAIT = 10.0  # seconds before a test gives up on an event that should come


class Resumed:
    """A ``resume`` callable that records its calls and the thread they came on."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.event = threading.Event()

    def __call__(self) -> None:
        self.calls.append(threading.current_thread().name)
        self.event.set()

    def wait(self) -> None:
        assert self.event.wait(WAIT), "not resumed"


@pytest.fixture
def reactor():
    return Reactor()


def test_bytes_on_a_parked_socket_resume_it_once_on_the_reactors_thread(reactor):
    ours, peer = socket.socketpair()
    with ours, peer:
        resumed = Resumed()
        reactor.park((ours.fileno(),), resumed, None)
        peer.send(b"x")
        resumed.wait()
        # Still readable (nothing read it): a level-triggered watch would fire again.
        other = Resumed()
        reactor.park((peer.fileno(),), other, 0)  # a later round of the loop
        other.wait()
        assert resumed.calls == ["django-websocket-reactor"]


def test_a_socket_readable_already_resumes_at_once(reactor):
    ours, peer = socket.socketpair()
    with ours, peer:
        peer.send(b"x")  # before the park: no event is lost in between
        resumed = Resumed()
        reactor.park((ours.fileno(),), resumed, None)
        resumed.wait()


def test_any_of_the_fds_resumes_and_the_others_are_let_go(reactor):
    ours, peer = socket.socketpair()
    wake_read, wake_write = socket.socketpair()
    with ours, peer, wake_read, wake_write:
        resumed = Resumed()
        reactor.park((ours.fileno(), wake_read.fileno()), resumed, None)
        wake_write.send(b"!")
        resumed.wait()
        # Both fds were unregistered: they can be parked again, by a new entry.
        again = Resumed()
        reactor.park((ours.fileno(), wake_read.fileno()), again, None)
        again.wait()  # the wake byte is still unread
        assert resumed.calls and again.calls


def test_the_deadline_resumes_a_connection_with_nothing_to_read(reactor):
    ours, peer = socket.socketpair()
    with ours, peer:
        later, sooner = Resumed(), Resumed()
        reactor.park((ours.fileno(),), later, WAIT * 10)
        reactor.park((peer.fileno(),), sooner, 0.05)
        sooner.wait()
        assert not later.calls, "a deadline resumes its own entry only"


def test_a_failing_resume_does_not_stop_the_others(reactor):
    ours, peer = socket.socketpair()
    with ours, peer:

        def broken() -> None:
            raise RuntimeError("a session's bug")

        reactor.park((ours.fileno(),), broken, 0)
        resumed = Resumed()
        reactor.park((peer.fileno(),), resumed, 0)
        resumed.wait()


def test_a_closed_fd_resumes_at_once_instead_of_breaking_the_reactor(reactor):
    first = Resumed()
    reactor.park((), first, 0)  # the reactor's own socketpair exists now, not on the closed fd
    first.wait()
    closed = socket.socket()
    fd = closed.fileno()
    closed.close()
    resumed, after = Resumed(), Resumed()
    reactor.park((fd,), resumed, None)
    resumed.wait()
    ours, peer = socket.socketpair()
    with ours, peer:
        reactor.park((ours.fileno(),), after, 0)
        after.wait()


# --- SocketTransport.park / take_socket, with a real client ------------------------


def _accepted(listener: socket.socket) -> tuple[socket.socket, WebSocket]:
    """Accept the handshake of a client (on a thread: the client waits for the 101)."""
    sock, _ = listener.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
    transport = accept_socket(
        sock,
        path=lines[0].split()[1],
        headers=headers,
        subprotocol=None,
        max_message_size=2**20,
        compression=None,
        read_buffer=rest,
    )
    return sock, WebSocket(transport, ping_interval=None, close_timeout=2)


@contextmanager
def connection():
    """Yield ``(client, server socket, server WebSocket)`` over a loopback connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener, ThreadPoolExecutor(1) as pool:
        accepted = pool.submit(_accepted, listener)
        port = listener.getsockname()[1]
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=WAIT) as client:
            server_sock, ws = accepted.result(WAIT)
            yield client, server_sock, ws


def test_a_parked_connection_resumes_at_a_message_and_at_a_close_from_another_thread():
    with connection() as (client, server_sock, ws):
        assert ws.take_socket()
        assert server_sock.fileno() == -1, "the server's socket object is detached"
        server_sock.close()  # what the server does after the app returned: nothing happens

        assert ws.next_event(block=False, linger=0) is IDLE
        resumed = Resumed()
        assert ws.park(resumed)
        client.send("hello")
        resumed.wait()
        assert ws.next_event(block=False, linger=WAIT) == "hello"
        ws.send("still ours")
        assert client.recv(timeout=WAIT) == "still ours"

        assert ws.next_event(block=False, linger=0) is IDLE
        closing = Resumed()
        assert ws.park(closing)
        threading.Thread(target=ws.close_from_any_thread, args=(4000, "bye")).start()
        closing.wait()
        assert ws.next_event(block=False, linger=0) is None  # the client answered the close
        ws.finish()
        assert ws.close_code == 4000
    assert ws._transport._sock.fileno() == -1, "finish closed the socket it took"  # type: ignore[attr-defined]


def test_a_parked_connection_resumes_at_its_keepalive_deadline():
    with connection() as (_client, server_sock, ws):
        ws._ping_interval = 0.05  # type: ignore[attr-defined]  # a ping is due soon
        assert ws.next_event(block=False, linger=0) is IDLE
        resumed = Resumed()
        assert ws.park(resumed)
        seen = ws._last_seen  # type: ignore[attr-defined]
        resumed.wait()  # nothing came from the client: the deadline resumed it
        # The ping goes out now and the client's pong comes back.
        while ws._last_seen == seen:  # type: ignore[attr-defined]
            assert ws.next_event(block=False, linger=0.05) is IDLE
        ws.close()
        ws.finish()
        server_sock.close()


def test_a_close_from_another_thread_before_the_first_park_still_resumes_it():
    with connection() as (_client, server_sock, ws):
        assert ws.take_socket()  # the wake fd exists from here on
        assert ws.next_event(block=False, linger=0) is IDLE
        closer = threading.Thread(target=ws.close_from_any_thread, args=(4001, "early"))
        closer.start()
        closer.join(WAIT)
        resumed = Resumed()
        assert ws.park(resumed)  # the close came first: the park still resumes
        resumed.wait()
        assert ws.next_event(block=False, linger=0) is None
        ws.finish()
        assert ws.close_code == 4001
