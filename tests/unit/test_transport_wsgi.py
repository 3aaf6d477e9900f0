"""The WSGI transport over a loopback socket, with the real websockets client. No settings."""

from __future__ import annotations

import socket
import threading

import pytest
from websockets.exceptions import ConnectionClosed as ClientClosed
from websockets.sync.client import connect

from django_websocket.connection import WebSocket
from django_websocket.transports.wsgi import accept_socket


class EchoServer:
    """Accept one connection at a time, take it over and echo until the peer closes."""

    def __init__(self, **options):
        self.options = {"max_message_size": 2**20, "compression": "deflate", **options}
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closes: list[tuple[int | None, str | None]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        sock, _ = self.listener.accept()
        with sock:
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(4096)
            head, _, rest = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split()[1]
            headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
            transport = accept_socket(
                sock, path=path, headers=headers, subprotocol=None, read_buffer=rest, **self.options
            )
            ws = WebSocket(transport, ping_interval=None, close_timeout=2)
            for message in ws:
                if message == "close 4000":
                    ws.close(4000, "asked")
                else:
                    ws.send(message)
            ws.finish()
            self.closes.append((ws.close_code, ws.close_reason))
        self.done.set()

    @property
    def uri(self):
        return f"ws://127.0.0.1:{self.port}/echo"


@pytest.fixture
def make_server():
    servers = []

    def make(**options):
        servers.append(EchoServer(**options))
        return servers[-1]

    yield make
    for server in servers:
        server.listener.close()


@pytest.fixture
def server(make_server):
    return make_server()


def test_echo_text_and_binary_over_a_real_socket(server):
    with connect(server.uri) as client:
        client.send("hello")
        assert client.recv(timeout=5) == "hello"
        client.send(b"\x00" * 70_000)
        assert client.recv(timeout=5) == b"\x00" * 70_000
    assert server.done.wait(5)
    assert server.closes == [(1000, "")]


def test_client_close_code_reaches_the_server(server):
    with connect(server.uri) as client:
        client.close(4001, "bye")
    assert server.done.wait(5)
    assert server.closes == [(4001, "bye")]


def test_server_close_reaches_the_client(server):
    with connect(server.uri) as client:
        client.send("close 4000")
        with pytest.raises(ClientClosed) as info:
            client.recv(timeout=5)
        assert info.value.rcvd.code == 4000
    assert server.done.wait(5)
    assert server.closes == [(4000, "asked")]


def test_oversized_message_closes_with_1009(make_server):
    server = make_server(max_message_size=100)
    with connect(server.uri, max_size=None) as client:
        client.send("x" * 101)
        with pytest.raises(ClientClosed) as info:
            client.recv(timeout=5)
        assert info.value.rcvd.code == 1009
    assert server.done.wait(5)
    assert server.closes[0][0] == 1009


def test_nothing_is_written_after_the_close_and_tcp_ends_cleanly(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(
        b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        # A masked close frame, code 1000, pipelined behind the handshake.
        + bytes([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2])
    )
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    sock.close()
    head, _, frames = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    assert frames == bytes([0x88, 0x02, 0x03, 0xE8])  # the echoed close frame and nothing else
    assert server.done.wait(5)
    assert server.closes == [(1000, "")]
