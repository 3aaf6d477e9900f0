"""The load generator of ``bench/run.py``: WebSocket clients that cost the server, not us.

Two clients with the same interface, both callback-driven (no task per connection,
nothing awaited per message):

``picows``  picows' client (Cython; frames parsed and masked in C), when installed.
``raw``     a minimal RFC 6455 client on ``asyncio.Protocol`` (``bench/fanout.py``'s
            ``RawMember`` idea, for echo): it skips over payload bytes without
            copying them, and sends one pre-masked frame again and again, so that
            masking costs it nothing per message. (RFC 6455 5.3 wants a fresh masking
            key per frame; no server can tell, and each still unmasks every frame.)

A connection echoes request/response: it sends one message, waits for the whole
echo, records the round-trip time and sends the next, ``count`` times. Neither
client offers ``permessage-deflate``, so no server compresses, whatever its
settings.

The measurements (``echo``, ``handshakes``, ``idle_memory``) return plain dicts; the
CPU shares are of one core (100 = one core busy all the time).
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import resource
import string
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "CLIENTS",
    "ProcessTree",
    "RawConnection",
    "echo",
    "handshakes",
    "idle_memory",
    "make_payload",
    "percentile",
    "quiesce",
]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
OPCODES = {"binary": 0x2, "text": 0x1}
OPEN_TIMEOUT = 30  # seconds for a TCP connection, then for the handshake


def make_payload(size: int) -> bytes:
    """Return ``size`` bytes of ASCII letters: valid as a text or a binary message."""
    rng = random.Random(size)
    return "".join(rng.choices(string.ascii_letters, k=size)).encode()


def _mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    size = len(payload)
    keys = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keys, "big")).to_bytes(size, "big")


def client_frame(opcode: int, payload: bytes) -> bytes:
    """Return one masked, unfragmented client frame (RFC 6455 5.2)."""
    key = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, 0x80 | size])
    elif size < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    return head + key + _mask(payload, key)


# --- clients -------------------------------------------------------------------------


class _Echoer:
    """What both clients share: the request/response loop, run from the callbacks."""

    expected = 0
    remaining = 0
    sent_at = 0.0
    rtts: list[float] | None = None
    done: asyncio.Future[None] | None = None

    def _send_message(self) -> None:
        raise NotImplementedError

    def start_echo(self, count: int, rtts: list[float] | None = None) -> asyncio.Future[None]:
        """Echo the payload ``count`` times; the future is done after the last echo."""
        self.done = asyncio.get_running_loop().create_future()
        self.remaining = count
        self.rtts = rtts
        self.sent_at = time.perf_counter()
        self._send_message()
        return self.done

    def _message(self, size: int) -> None:
        now = time.perf_counter()
        done = self.done
        if done is None or done.done():
            return
        if size != self.expected:
            done.set_exception(RuntimeError(f"echo of {size} bytes, sent {self.expected}"))
            return
        if self.rtts is not None:
            self.rtts.append(now - self.sent_at)
        self.remaining -= 1
        if self.remaining:
            self.sent_at = now
            self._send_message()
        else:
            done.set_result(None)

    def _lost(self, exc: BaseException | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost during echo: {exc}"))


def upgrade_request(host: str, port: int, path: str) -> bytes:
    """A WebSocket opening handshake request with a fresh key."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class RawConnection(asyncio.Protocol, _Echoer):
    """A minimal RFC 6455 client: handshake, frame headers, ping, close."""

    name = "raw"

    def __init__(self, host: str, port: int, path: str) -> None:
        self.request = upgrade_request(host, port, path)
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.upgraded = False
        self.pending = b""  # an incomplete frame header (or control frame)
        self.skip = 0  # payload bytes of the current data frame still to come
        self.fin = False
        self.size = 0  # payload bytes of the current message so far
        self.frame = b""
        self.close_sent = False

    @classmethod
    async def open(cls, host: str, port: int, path: str) -> RawConnection:
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(lambda: cls(host, port, path), host, port), OPEN_TIMEOUT
        )
        try:
            await asyncio.wait_for(connection.opened, OPEN_TIMEOUT)
        except asyncio.TimeoutError:
            connection.abort()
            raise ConnectionError(f"no handshake response within {OPEN_TIMEOUT} s") from None
        return connection

    def set_payload(self, payload: bytes, opcode: str) -> None:
        self.expected = len(payload)
        self.frame = client_frame(OPCODES[opcode], payload)

    def _send_message(self) -> None:
        assert self.transport is not None
        self.transport.write(self.frame)

    # -- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)
        self._lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.head.startswith(b"HTTP/1.1 101"):
                status = bytes(self.head[: self.head.find(b"\r\n")]).decode(errors="replace")
                if not self.opened.done():
                    self.opened.set_exception(ConnectionError(f"handshake refused: {status}"))
                assert self.transport is not None
                self.transport.close()
                return
            data = bytes(self.head[end + 4 :])
            self.upgraded = True
            if not self.opened.done():  # not when open() gave up (timeout, cancelled)
                self.opened.set_result(None)
            if not data:
                return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        if self.pending:
            data = self.pending + data
            self.pending = b""
        n = len(data)
        i = 0
        while i < n:
            if self.skip:  # payload bytes: counted, never copied
                if n - i < self.skip:
                    self.skip -= n - i
                    return
                i += self.skip
                self.skip = 0
                if self.fin:
                    self._message(self.size)
                continue
            if n - i < 2:
                self.pending = data[i:]
                return
            b0, b1 = data[i], data[i + 1]
            length, start = b1 & 0x7F, i + 2
            if length == 126:
                start = i + 4
                if n < start:
                    self.pending = data[i:]
                    return
                length = int.from_bytes(data[i + 2 : start], "big")
            elif length == 127:
                start = i + 10
                if n < start:
                    self.pending = data[i:]
                    return
                length = int.from_bytes(data[i + 2 : start], "big")
            opcode = b0 & 0x0F
            if opcode & 0x08:  # a control frame (RFC 6455 5.5): whole, at most 125 bytes
                if n < start + length:
                    self.pending = data[i:]
                    return
                self._control(opcode, data[start : start + length])
                i = start + length
                continue
            if opcode:  # the first frame of a message
                self.size = 0
            self.size += length
            self.fin = bool(b0 & 0x80)
            self.skip = length
            i = start
            if not length and self.fin:
                self._message(self.size)

    def _control(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode == 0x9:  # ping: pong with the same payload (RFC 6455 5.5.3)
            self.transport.write(client_frame(0xA, payload))
        elif opcode == 0x8:  # close: answer it once, then close the TCP connection
            if not self.close_sent:
                self.close_sent = True
                self.transport.write(client_frame(0x8, payload[:2]))
            self.transport.close()

    async def close(self, timeout: float = 10) -> None:
        """Start (or finish) the closing handshake; abort after ``timeout``."""
        if self.closed.done() or self.transport is None:
            return
        if not self.close_sent:
            self.close_sent = True
            self.transport.write(client_frame(0x8, (1000).to_bytes(2, "big")))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except asyncio.TimeoutError:
            self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _picows_class() -> Any:
    """Return the picows connection class, or raise ImportError."""
    from picows import WSCloseCode, WSListener, WSMsgType, ws_connect

    data_types = (WSMsgType.BINARY, WSMsgType.TEXT, WSMsgType.CONTINUATION)
    msg_types = {"binary": WSMsgType.BINARY, "text": WSMsgType.TEXT}

    class PicowsConnection(WSListener, _Echoer):  # type: ignore[misc]
        """picows' client as an echoer: frames arrive whole, unmasked in C."""

        name = "picows"

        def __init__(self) -> None:
            super().__init__()
            self.transport: Any = None
            self.size = 0
            self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        @classmethod
        async def open(cls, host: str, port: int, path: str) -> PicowsConnection:
            _, listener = await ws_connect(
                cls,
                f"ws://{host}:{port}{path}",
                websocket_handshake_timeout=OPEN_TIMEOUT,
                enable_auto_pong=True,
                max_frame_size=1 << 24,
            )
            return listener  # type: ignore[no-any-return]

        def set_payload(self, payload: bytes, opcode: str) -> None:
            self.expected = len(payload)
            self.payload = payload
            self.msg_type = msg_types[opcode]

        def _send_message(self) -> None:
            self.transport.send(self.msg_type, self.payload)

        def on_ws_connected(self, transport: Any) -> None:
            self.transport = transport

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            msg_type = frame.msg_type
            if msg_type in data_types:
                if msg_type is not WSMsgType.CONTINUATION:
                    self.size = 0
                self.size += frame.payload_size
                if frame.fin:
                    self._message(self.size)
            elif msg_type is WSMsgType.CLOSE:
                if not transport.is_close_frame_sent:
                    transport.send_close(frame.get_close_code())
                transport.disconnect()

        def on_ws_disconnected(self, transport: Any) -> None:
            if not self.closed.done():
                self.closed.set_result(None)
            self._lost(None)

        async def close(self, timeout: float = 10) -> None:
            if self.closed.done():
                return
            if not self.transport.is_close_frame_sent:
                self.transport.send_close(WSCloseCode.OK)
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), timeout)
            except asyncio.TimeoutError:
                self.abort()

        def abort(self) -> None:
            self.transport.disconnect(graceful=False)

    return PicowsConnection


def _available_clients() -> dict[str, Callable[[], Any]]:
    return {"picows": _picows_class, "raw": lambda: RawConnection}


CLIENTS = _available_clients()


def get_client(name: str) -> Any:
    """Return the connection class ``name`` (``auto``: picows if it imports, else raw)."""
    if name == "auto":
        try:
            return _picows_class()
        except ImportError:
            return RawConnection
    return CLIENTS[name]()


# --- measuring -----------------------------------------------------------------------


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float:
    """Return the ``q``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


class ProcessTree:
    """A server process and its descendants (gunicorn's arbiter and worker): CPU, RSS."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def pids(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, ()))
        return found

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
        return total

    def rss_kib(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB
            except OSError:
                continue
        return total

    def threads(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                total += len(os.listdir(f"/proc/{pid}/task"))
            except OSError:
                continue
        return total


class CPUMeter:
    """CPU shares of the load generator and the server over a measured interval."""

    def __init__(self, server: ProcessTree) -> None:
        self.server = server

    def __enter__(self) -> CPUMeter:
        self.start = (time.perf_counter(), self_cpu(), self.server.cpu_seconds())
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.start[0]
        self.wall = wall
        self.client_cpu = 100 * (self_cpu() - self.start[1]) / wall
        self.server_cpu = 100 * (self.server.cpu_seconds() - self.start[2]) / wall

    def shares(self) -> dict[str, float]:
        """The interval's length and the CPU shares, as the results record them."""
        return {"seconds": self.wall, "client_cpu": self.client_cpu, "server_cpu": self.server_cpu}


async def open_many(
    client: Any, host: str, port: int, path: str, count: int, concurrency: int
) -> list[Any]:
    """Open ``count`` connections, at most ``concurrency`` handshakes at a time."""
    connections: list[Any] = []

    async def one() -> None:
        connections.append(await client.open(host, port, path))

    errors = await run_limited(one, count, concurrency)
    if errors:
        await close_all(connections)
        raise RuntimeError(f"{len(errors)}/{count} connections failed: {errors[0]!r}")
    return connections


async def run_limited(
    work: Callable[[], Awaitable[None]], count: int, concurrency: int
) -> list[BaseException]:
    """Run ``work()`` ``count`` times, ``concurrency`` at a time; return the errors."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            await work()

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    return [r for r in results if isinstance(r, BaseException)]


async def close_all(connections: Iterable[Any], timeout: float = 10) -> None:
    await asyncio.gather(*(c.close(timeout) for c in connections), return_exceptions=True)


async def echo(
    client: Any,
    host: str,
    port: int,
    path: str,
    *,
    server: ProcessTree,
    connections: int,
    messages: int,
    size: int,
    opcode: str,
    warmup: int = 20,
) -> dict[str, Any]:
    """``connections`` clients echo ``messages`` messages of ``size`` bytes each, at once.

    Returns messages/s (echoed messages, all connections, per second of wall time),
    MiB/s one way, round-trip percentiles (ms), and the CPU shares.
    """
    payload = make_payload(size)
    conns = await open_many(client, host, port, path, connections, 50)
    try:
        for conn in conns:
            conn.set_payload(payload, opcode)
        if warmup:
            await asyncio.gather(*(conn.start_echo(warmup) for conn in conns))
        rtts: list[float] = []
        with CPUMeter(server) as meter:
            await asyncio.gather(*(conn.start_echo(messages, rtts) for conn in conns))
    finally:
        await close_all(conns)
    total = connections * messages
    return {
        "msgs_per_s": total / meter.wall,
        "mib_per_s": total * size / meter.wall / (1 << 20),
        "p50_ms": 1000 * percentile(rtts, 50),
        "p99_ms": 1000 * percentile(rtts, 99),
        **meter.shares(),
    }


async def handshakes(
    client: Any,
    host: str,
    port: int,
    path: str,
    *,
    server: ProcessTree,
    count: int,
    concurrency: int,
) -> dict[str, Any]:
    """Open and close ``count`` connections, ``concurrency`` at a time.

    One handshake is: TCP connect, upgrade request, 101 response, then the closing
    handshake (close frame each way). Returns handshakes/s and the CPU shares.
    """

    async def one() -> None:
        conn = await client.open(host, port, path)
        await conn.close()

    with CPUMeter(server) as meter:
        errors = await run_limited(one, count, concurrency)
    if errors:
        raise RuntimeError(f"{len(errors)}/{count} handshakes failed: {errors[0]!r}")
    return {"handshakes_per_s": count / meter.wall, **meter.shares()}


async def quiesce(server: ProcessTree, timeout: float = 60, busy: float = 5.0) -> float:
    """Wait until the server uses under ``busy`` % of a core for 0.5 s (bounded).

    A phase must not start while the server still tears down the last one's
    connections (flask-sock needs seconds for 2,000 of them, refusing handshakes
    meanwhile). Return the seconds waited.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = server.cpu_seconds()
        await asyncio.sleep(0.5)
        if 100 * (server.cpu_seconds() - before) / 0.5 < busy:
            break
    return time.monotonic() - started


async def _settled_rss(server: ProcessTree, timeout: float = 5) -> int:
    """Wait until the server's RSS stops moving (bounded); return it in KiB."""
    deadline = time.monotonic() + timeout
    previous = server.rss_kib()
    while True:
        await asyncio.sleep(0.5)
        current = server.rss_kib()
        if abs(current - previous) <= max(64, previous // 500) or time.monotonic() > deadline:
            return current
        previous = current


async def idle_memory(
    client: Any,
    host: str,
    port: int,
    path: str,
    *,
    server: ProcessTree,
    count: int,
    baseline: int,
    opcode: str,
) -> dict[str, Any]:
    """Server memory per idle connection (KiB): RSS growth of its process tree.

    ``baseline`` connections are opened first and kept (each echoes one message),
    then the RSS is read; then ``count`` more, each echoing one message so that its
    handler runs, and the RSS is read again once it settles. The difference over
    ``count`` leaves out one-time costs (imports, pools, the first allocations).
    """
    payload = make_payload(64)
    kept: list[Any] = []
    try:
        kept += await open_many(client, host, port, path, baseline, 50)
        for conn in kept:
            conn.set_payload(payload, opcode)
        await asyncio.gather(*(conn.start_echo(1) for conn in kept))
        before = await _settled_rss(server)
        threads_before = server.threads()
        more = await open_many(client, host, port, path, count, 50)
        kept += more
        for conn in more:
            conn.set_payload(payload, opcode)
        await asyncio.gather(*(conn.start_echo(1) for conn in more))
        after = await _settled_rss(server)
        threads_after = server.threads()
    finally:
        await close_all(kept)
    return {
        "kib_per_conn": (after - before) / count,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "threads_per_conn": (threads_after - threads_before) / count,
    }
