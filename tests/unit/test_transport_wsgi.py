"""The WSGI transport over a loopback socket, with the real websockets client. No settings."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest
import trustme
from websockets.exceptions import ConnectionClosed as ClientClosed
from websockets.sync.client import connect

from django_websocket.connection import WebSocket
from django_websocket.transports.wsgi import accept_socket


class EchoServer:
    """Accept one connection at a time, take it over and echo until the peer closes."""

    def __init__(self, tls: ssl.SSLContext | None = None, **options):
        self.tls = tls
        self.options = {"max_message_size": 2**20, "compression": "deflate", **options}
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closes: list[tuple[int | None, str | None]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        sock, _ = self.listener.accept()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True)  # as gunicorn's --certfile
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


def chopping_proxy(target_port: int) -> int:
    """Forward one connection, the client's bytes in 1,000-byte pieces (TCP segments)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def pipe(source: socket.socket, target: socket.socket, size: int) -> None:
        try:
            while data := source.recv(65536):
                for start in range(0, len(data), size):
                    target.sendall(data[start : start + size])
                    time.sleep(0.001)  # each piece its own segment
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def run() -> None:
        with listener:
            client, _ = listener.accept()
        with client, socket.create_connection(("127.0.0.1", target_port)) as server:
            pipes = [
                threading.Thread(target=pipe, args=(client, server, 1000), daemon=True),
                threading.Thread(target=pipe, args=(server, client, 65536), daemon=True),
            ]
            for thread in pipes:
                thread.start()
            for thread in pipes:
                thread.join(30)

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1]


def test_tls_records_that_arrive_in_pieces(make_server):
    """gunicorn --certfile: a non-blocking TLS socket sees half records (SSLWantRead)."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    server = make_server(tls=server_context)
    port = chopping_proxy(server.port)
    uri = f"wss://127.0.0.1:{port}/echo"
    with connect(uri, ssl=client_context, max_size=None, compression=None) as ws:
        for size in (10, 100_000, 10):
            ws.send(b"y" * size)  # 100 KB: seven TLS records, each in many pieces
            assert ws.recv(timeout=10) == b"y" * size
    assert server.done.wait(10)
    assert server.closes == [(1000, "")]
