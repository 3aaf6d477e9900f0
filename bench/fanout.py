"""Fan-out benchmark: one broadcast to 1,000 group members, delivery latency and rate.

Run from the repository root (redis-server on PATH for the Redis scenarios)::

    .venv/bin/python bench/fanout.py                      # every scenario, 1,000 members
    .venv/bin/python bench/fanout.py --scenarios memory-uvicorn --members 200 --rounds 50
    .venv/bin/python bench/fanout.py --client websockets  # websockets' high-level client

Scenarios (servers run ``tests/groups/project`` in subprocesses, on 127.0.0.1):

``memory-uvicorn``    ``memory://``, one uvicorn process, async view (no thread per member)
``memory-gthread``    ``memory://``, one gunicorn gthread process, sync view (a thread each)
``redis-uvicorn-x2``  ``redis://``, two uvicorn processes, async view, members split evenly
``redis-mixed``       ``redis://``, gunicorn gthread (sync view) + uvicorn (async view)

The load generator is one asyncio process holding every member connection. One
member sends ``bcast:<seq>``; its view broadcasts ``<seq>`` to the group; the latency
of a delivery is the time from just before that send to the arrival of the message
at a member (one clock, the load generator's; see ``--client``). Each round waits for
every member's delivery (bounded) before the next. The rate is deliveries per second
within a round (members / time until the last one got it).

Clients (all asyncio, one process, every member on the same event loop; except with
``kernel``, the load generator's CPU time per message adds to the measured latency):

``kernel``         (default) a minimal RFC 6455 client whose sockets have
                   ``SO_TIMESTAMPNS``: a message's arrival time is when the kernel
                   received its packet, not when the busy load generator got to it
``raw``            the same client on ``asyncio.Protocol``, timestamping a message when
                   the event loop hands its bytes over
``sansio``         websockets' Sans-I/O ``ClientProtocol`` on ``asyncio.Protocol``
``websockets``     ``websockets.asyncio.client`` with one ``recv`` task per member

The CPU columns are the share of one core used during the measured rounds by the
load generator and the server processes (getrusage, /proc/PID/stat); "machine" is
every process on the machine (/proc/stat; 200% = both cores of a 2-core machine),
"load" the 1-minute load average when the rounds started: numbers taken while other
work runs on the machine are not the library's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import socket
import statistics
import struct
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.client import ClientProtocol  # noqa: E402
from websockets.frames import Opcode  # noqa: E402
from websockets.http11 import Response  # noqa: E402
from websockets.uri import parse_uri  # noqa: E402

from tests.groups.servers import (  # noqa: E402
    HOST,
    ProjectServer,
    RedisServer,
    redis_server_path,
)

sys.path.insert(0, str(REPO_ROOT / "bench"))
from loadgen import percentile, self_cpu, upgrade_request  # noqa: E402  (bench/loadgen.py)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CONNECT_CONCURRENCY = 50
ROUND_TIMEOUT = 30.0
GOALS_MS = {"memory": 50.0, "redis": 100.0}

#: name -> (broker, [(server kind, view kind), ...]); members are split evenly.
SCENARIOS = {
    "memory-uvicorn": ("memory", [("uvicorn", "async")]),
    "memory-gthread": ("memory", [("gunicorn", "sync")]),
    "redis-uvicorn-x2": ("redis", [("uvicorn", "async"), ("uvicorn", "async")]),
    "redis-mixed": ("redis", [("gunicorn", "sync"), ("uvicorn", "async")]),
}


# --- clients -------------------------------------------------------------------------


class Recorder:
    """Arrival times per broadcast, and an event when every member has one."""

    def __init__(self, members: int) -> None:
        self.members = members
        self.arrivals: dict[str, list[float]] = {}
        self.complete: dict[str, asyncio.Event] = {}

    def expect(self, seq: str) -> asyncio.Event:
        self.arrivals[seq] = []
        self.complete[seq] = asyncio.Event()
        return self.complete[seq]

    def arrived(self, message: str, when: float) -> None:
        times = self.arrivals.get(message)
        if times is not None:
            times.append(when)
            if len(times) == self.members:
                self.complete[message].set()


class SansIOMember(asyncio.Protocol):
    """A member on websockets' Sans-I/O protocol: no task, timestamps on arrival."""

    def __init__(self, url: str, recorder: Recorder) -> None:
        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        self.request = self.protocol.connect()
        self.recorder = recorder
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    @classmethod
    async def open(cls, url: str, recorder: Recorder) -> SansIOMember:
        loop = asyncio.get_running_loop()
        _, member = await loop.create_connection(lambda: cls(url, recorder), HOST, _port(url))
        await asyncio.wait_for(member.joined, 30)
        return member

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.protocol.send_request(self.request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if event.status_code != 101:
                    self.joined.set_exception(RuntimeError(f"handshake: HTTP {event.status_code}"))
            elif event.opcode is Opcode.TEXT:
                text = event.data.decode()
                if text == "joined" and not self.joined.done():
                    self.joined.set_result(None)
                else:
                    self.recorder.arrived(text, now)
        self._flush()  # pongs, close replies

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(f"connection lost: {exc}"))

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)

    async def send(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RawMember(asyncio.Protocol):
    """A member with a minimal RFC 6455 client: the cheapest way to take deliveries.

    It parses the server's (unmasked) frames itself, answers pings, and timestamps
    each message when its bytes arrive, so that the load generator's own CPU cost per
    message is as small as Python allows and the latency is mostly the server's.
    """

    def __init__(self, url: str, recorder: Recorder) -> None:
        uri = parse_uri(url)
        self.request = upgrade_request(uri.host, uri.port, uri.resource_name)
        self.recorder = recorder
        self.buffer = bytearray()
        self.upgraded = False
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    open = SansIOMember.open
    connection_lost = SansIOMember.connection_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    clock = staticmethod(time.perf_counter)

    def data_received(self, data: bytes) -> None:
        self._data(data, time.perf_counter())

    def _data(self, data: bytes, now: float) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.joined.set_exception(RuntimeError(bytes(buffer[:end]).decode()))
                return
            del buffer[: end + 4]
            self.upgraded = True
        while len(buffer) >= 2:
            opcode, length, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            if opcode == 1:  # text (the server does not fragment these small messages)
                text = payload.decode()
                if text == "joined" and not self.joined.done():
                    self.joined.set_result(None)
                else:
                    self.recorder.arrived(text, now)
            elif opcode == 9:  # ping: answer with a masked pong (RFC 6455 5.5.3)
                self._write(0xA, payload)

    def _write(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None and len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    async def send(self, text: str) -> None:
        self._write(0x1, text.encode())

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


#: Linux: receive timestamps of packets as ancillary data (struct timespec, realtime).
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class KernelTimestampMember(RawMember):
    """:class:`RawMember` that takes each message's arrival time from the kernel.

    The socket has ``SO_TIMESTAMPNS``: ``recvmsg`` tells when the packet reached this
    machine's socket, so the time the load generator takes to get to it is not part
    of the latency (on one core, 1,000 deliveries take it tens of milliseconds).
    The clock is ``time.time()`` (the kernel's CLOCK_REALTIME), for the sends too.
    """

    clock = staticmethod(time.time)

    @classmethod
    async def open(cls, url: str, recorder: Recorder) -> KernelTimestampMember:
        loop = asyncio.get_running_loop()
        member = cls(url, recorder)
        sock = member.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, (HOST, _port(url)))
        member.transport = _SocketWriter(sock)  # type: ignore[assignment]
        await loop.sock_sendall(sock, member.request)
        loop.add_reader(sock.fileno(), member._readable)
        await asyncio.wait_for(member.joined, 30)
        return member

    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(262144, socket.CMSG_SPACE(16))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            data, ancillary = b"", []
            if not self.joined.done():
                self.joined.set_exception(exc)
        if not data:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            return
        when = time.time()
        for level, kind, cdata in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(cdata) >= 16:
                seconds, nanoseconds = struct.unpack("qq", cdata[:16])
                when = seconds + nanoseconds / 1e9
        self._data(data, when)

    async def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


class _SocketWriter:
    """What :class:`RawMember` writes to: a non-blocking socket (small writes only)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)  # a few bytes into an empty buffer: never blocks


class WebsocketsMember:
    """A member on ``websockets.asyncio.client``: one ``recv`` task per connection."""

    def __init__(self, connection, recorder: Recorder) -> None:
        self.connection = connection
        self.recorder = recorder
        self.task = asyncio.create_task(self._receive())

    @classmethod
    async def open(cls, url: str, recorder: Recorder) -> WebsocketsMember:
        connection = await ws_connect(
            url, compression=None, max_size=None, open_timeout=30, proxy=None, ping_interval=None
        )
        if await asyncio.wait_for(connection.recv(), 30) != "joined":
            raise RuntimeError("no 'joined' from the view")
        return cls(connection, recorder)

    async def _receive(self) -> None:
        async for message in self.connection:
            self.recorder.arrived(message, time.perf_counter())

    async def send(self, text: str) -> None:
        await self.connection.send(text)

    async def close(self) -> None:
        self.task.cancel()
        await self.connection.close()


CLIENTS = {
    "kernel": KernelTimestampMember,
    "raw": RawMember,
    "sansio": SansIOMember,
    "websockets": WebsocketsMember,
}


def _port(url: str) -> int:
    return parse_uri(url).port


# --- measuring -----------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def machine_cpu() -> tuple[float, float]:
    """Return (busy, total) CPU seconds of the whole machine so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


async def run_scenario(
    name, servers, members_count, rounds, client_name, warmup, verbose, freeze_servers
):
    group = f"bench-{uuid.uuid4().hex[:8]}"
    recorder = Recorder(members_count)
    client = CLIENTS[client_name]
    urls = []
    for index in range(members_count):
        server, view = servers[index % len(servers)]
        urls.append(server.ws_url(f"/ws/{view}/{group}/"))
    members = []
    semaphore = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_one(url):
        async with semaphore:
            members.append(await client.open(url, recorder))

    started = time.perf_counter()
    await asyncio.gather(*(open_one(url) for url in urls))
    connect_time = time.perf_counter() - started
    # The load generator's own garbage collection must not pause the measurement: its
    # long-lived objects (1,000 connections) are frozen, and rounds allocate little.
    gc.collect()
    gc.freeze()
    if freeze_servers:  # the same in the servers, as a deployment may do after warm-up
        for server, _ in servers:
            status, body = server.http("/gc-freeze/")
            assert status == 200, body
    sender = members[0]
    clock = getattr(client, "clock", time.perf_counter)
    latencies, rates, round_times = [], [], []
    pids = {f"{server.kind}:{server.port}": server.pid for server, _ in servers}
    cpu_before = None
    for round_index in range(warmup + rounds):
        if round_index == warmup:
            cpu_before = (
                self_cpu(),
                {k: cpu_seconds(p) for k, p in pids.items()},
                machine_cpu(),
                os.getloadavg()[0],
            )
            measured_from = time.perf_counter()
        seq = f"r{round_index}-{uuid.uuid4().hex[:6]}"
        done = recorder.expect(seq)
        sent_at = clock()
        await sender.send(f"bcast:{seq}")
        try:
            await asyncio.wait_for(done.wait(), ROUND_TIMEOUT)
        except asyncio.TimeoutError:
            got = len(recorder.arrivals[seq])
            raise RuntimeError(
                f"{name}: round {round_index}: {got}/{members_count} delivered"
            ) from None
        arrivals = recorder.arrivals[seq]
        if round_index >= warmup:
            latencies += [(when - sent_at) * 1000 for when in arrivals]
            span = max(arrivals) - sent_at
            round_times.append(span)
            rates.append(members_count / span)
            if verbose:
                ordered = sorted((when - sent_at) * 1000 for when in arrivals)
                print(
                    f"  round {round_index}: first {ordered[0]:.1f} ms, median "
                    f"{ordered[len(ordered) // 2]:.1f} ms, last {ordered[-1]:.1f} ms",
                    flush=True,
                )
    wall = time.perf_counter() - measured_from
    client_cpu = self_cpu() - cpu_before[0]
    server_cpu = {k: cpu_seconds(p) - cpu_before[1][k] for k, p in pids.items()}
    busy, total = machine_cpu()
    machine_busy = 100 * (busy - cpu_before[2][0]) / wall  # % of one core, all processes
    await asyncio.gather(*(member.close() for member in members), return_exceptions=True)
    return {
        "scenario": name,
        "members": members_count,
        "rounds": rounds,
        "connect_s": connect_time,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "max": max(latencies),
        "rate_median": statistics.median(rates),
        "rate_total": members_count * rounds / sum(round_times),
        "client_cpu": 100 * client_cpu / wall,
        "server_cpu": {k: 100 * v / wall for k, v in server_cpu.items()},
        "machine_busy": machine_busy,
        "load": cpu_before[3],
    }


def start_servers(broker, layout, workdir, redis, extra_env=None, uvicorn_ws="websockets-sansio"):
    url = redis.url if broker == "redis" else "memory://"
    started = []
    try:
        for kind, view in layout:
            extra = (
                ("--threads", "1200", "--worker-connections", "1500", "--log-level", "warning")
                if kind == "gunicorn"
                else ("--log-level", "warning", "--backlog", "4096", "--ws", uvicorn_ws)
            )
            started.append(
                (ProjectServer(kind, url, workdir, extra_args=extra, extra_env=extra_env), view)
            )
    except BaseException:
        for server, _ in started:
            server.stop()
        raise
    return started


def print_table(results, args):
    print()
    print(
        f"Fan-out of one message to N members ({args.client} client, "
        f"{'gc.freeze() in servers, ' if args.server_gc_freeze else ''}"
        f"uvicorn --ws {args.uvicorn_ws}, "
        f"{os.cpu_count()} CPUs; latency = send by a member -> arrival at each member)"
    )
    header = (
        f"{'scenario':<18} {'N':>5} {'rounds':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'deliv/s (med)':>13} {'deliv/s (all)':>13} {'goal p99':>9} {'client CPU':>10} "
        f"{'machine':>8} {'load':>5}  server CPU"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        goal = GOALS_MS[SCENARIOS[r["scenario"]][0]]
        verdict = f"<{goal:.0f} {'ok' if r['p99'] < goal else 'NO'}"
        servers = ", ".join(f"{k} {v:.0f}%" for k, v in r["server_cpu"].items())
        print(
            f"{r['scenario']:<18} {r['members']:>5} {r['rounds']:>6} {r['p50']:>8.1f} "
            f"{r['p99']:>8.1f} {r['max']:>8.1f} {r['rate_median']:>13,.0f} "
            f"{r['rate_total']:>13,.0f} {verdict:>9} {r['client_cpu']:>9.0f}% "
            f"{r['machine_busy']:>7.0f}% {r['load']:>5.1f}  {servers}"
        )
    print()


async def main_async(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    needed = args.members * 2 + 200
    if hard < needed:
        sys.exit(f"ulimit -n is {hard}; {needed} descriptors are needed")
    workdir = Path(tempfile.mkdtemp(prefix="djws-bench-"))
    redis = None
    results = []
    try:
        for name in args.scenarios:
            broker, layout = SCENARIOS[name]
            if broker == "redis" and redis is None:
                executable = redis_server_path()
                if executable is None:
                    sys.exit("redis-server is not installed (Debian package redis-server)")
                redis = RedisServer(executable, workdir / "redis").start()
            env = {"DJWS_GC_LOG": "1"} if args.gc_log else None
            servers = start_servers(broker, layout, workdir, redis, env, args.uvicorn_ws)
            try:
                print(
                    f"{name}: {args.members} members on "
                    + ", ".join(f"{s.kind} ({v} view, pid {s.pid})" for s, v in servers),
                    flush=True,
                )
                results.append(
                    await run_scenario(
                        name,
                        servers,
                        args.members,
                        args.rounds,
                        args.client,
                        args.warmup,
                        args.verbose,
                        args.server_gc_freeze,
                    )
                )
                print(
                    f"  connected in {results[-1]['connect_s']:.1f} s; "
                    f"p50 {results[-1]['p50']:.1f} ms, p99 {results[-1]['p99']:.1f} ms",
                    flush=True,
                )
            finally:
                for server, _ in servers:
                    server.stop()
    finally:
        if redis is not None:
            redis.stop()
    print_table(results, args)
    print(f"server logs: {workdir}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3, help="rounds not measured first")
    parser.add_argument("--verbose", action="store_true", help="print every round")
    parser.add_argument(
        "--gc-log", action="store_true", help="servers log garbage collections over 5 ms"
    )
    parser.add_argument(
        "--uvicorn-ws",
        default="websockets-sansio",
        help="uvicorn's --ws implementation: websockets-sansio (default: what uvicorn's "
        "'auto' picks when websockets is installed, as in bench/run.py), websockets "
        "(the legacy one), wsproto",
    )
    parser.add_argument(
        "--server-gc-freeze",
        action="store_true",
        help="servers run gc.freeze() once every member is connected",
    )
    parser.add_argument("--client", choices=sorted(CLIENTS), default="kernel")
    parser.add_argument(
        "--scenarios",
        type=lambda text: text.split(","),
        default=list(SCENARIOS),
        help="comma-separated, from: " + ", ".join(SCENARIOS),
    )
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
