"""Slow and dead peers on real servers (issue 6; SPEC sections 6 and 7).

Three kinds of bad peer:

* **an unfinished handshake**: a client connects and sends nothing, or half a
  request head, and waits. The server must drop it within its timeout and keep no
  thread or socket for it (runserver, gunicorn gthread).
* **a peer that stops reading** while the view sends 64 KiB messages (its receive
  buffer is 4 KiB; the view would send 32 MiB): the view's send must fail within
  ``WEBSOCKET_CLOSE_TIMEOUT`` (the WSGI transport's send timeout), ``on_close``
  must run with 1006 and the server's resident memory must grow by less than
  16 MiB. A sync and an async view.
* **a peer that stops answering pings** (it never reads again, like a peer that
  vanished without a FIN): the server must drop it within ping interval + ping
  timeout, and ``on_close`` gets 1006. Under WSGI the library pings; under ASGI it
  cannot (ASGI has no ping event) and the server's own keepalive applies: uvicorn
  and daphne run here with a 1 s interval and a 2 s timeout, hypercorn with a 1 s
  interval (it has no pong timeout).

Each kind runs once for all its servers at the same time (a module fixture, so
the module waits for one deadline per kind, not one per server); the tests then
judge each server's facts, and print them (``-s``). Every wait is a poll with a
deadline: the relevant timeout plus :data:`SLACK`. Each expectation a server
does not meet is a strict xfail that says what the server does instead.

What the servers did when these tests were written (2 loaded cores, three runs):

=================  =====================  =============================  ===============
server             unfinished handshake   stops reading (sync and async  stops answering
                                          views): dropped after, RSS     pings: on_close
=================  =====================  =============================  ===============
runserver          never dropped (a       2.05-2.1 s, 31 x 64 KiB        3.0 s, 1006
                   thread each)           sent, RSS +0.2-0.5 MiB
gunicorn gthread   silent: 6.0 s (5 s     2.05 s, 31 sent, +0.2 MiB      3.0 s, 1006
                   data wait + keep-
                   alive); half a head:
                   never
gunicorn gevent    --                     2.0 s, 42 sent, +0.5 MiB       3.0 s, 1006
gunicorn eventlet  --                     2.0 s, 42 sent, +0.5 MiB       3.0 s, 1006
uvicorn            --                     sync 10 s ("server loop        13.0 s, 1006 (a
                                          stopped"); async never; RSS    1011 frame, then
                                          +0.2 MiB                       its 10 s close
                                                                         timeout)
daphne             --                     not dropped; RSS +26-45 MiB    2.8-3.1 s, 1006
                                          for the 32 MiB sent (400 MiB
                                          in 3 s without a limit)
hypercorn          --                     sync 10 s; async never         never
=================  =====================  =============================  ===============

Since fixed in the library (these tests found them): runserver drops an unfinished
handshake after ``WEBSOCKET_HANDSHAKE_TIMEOUT`` (2.0 s here), and a sync view's send
under ASGI, sync or async, gives up after ``WEBSOCKET_CLOSE_TIMEOUT`` ("send timed
out"; an async view's within a second more).
"""

import contextlib
import selectors
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gunicorn.workers.gthread import DEFAULT_WORKER_DATA_TIMEOUT

from tests.abuse import (
    held_connections,
    poll,
    rss_bytes,
    thread_count,
    unexpected_tracebacks,
    worker_pid,
)
from tests.integration import rawws
from tests.integration.servers import SERVERS  # every server, in this order

pytestmark = pytest.mark.timeout(120)

#: Seconds added to every timeout before a test gives up: a loaded machine is slow.
SLACK = 5.0
#: The settings of every server in this module (``tests/serverproject/settings.py``).
HANDSHAKE_TIMEOUT = 2  # WEBSOCKET_HANDSHAKE_TIMEOUT (runserver)
CLOSE_TIMEOUT = 2  # WEBSOCKET_CLOSE_TIMEOUT, also the WSGI transport's send timeout
PING_INTERVAL = 1
PING_TIMEOUT = 2
#: gunicorn's --keep-alive: the gthread worker drops a connection that sent nothing
#: after DEFAULT_WORKER_DATA_TIMEOUT (5 s, not configurable) plus this.
GUNICORN_KEEPALIVE = 1
#: uvicorn's ``websockets`` protocol waits this long (its close_timeout, not
#: configurable) for the TCP close after its keepalive failed the connection.
UVICORN_CLOSE_TIMEOUT = 10

ENV = {
    "DJWS_HANDSHAKE_TIMEOUT": str(HANDSHAKE_TIMEOUT),
    "DJWS_CLOSE_TIMEOUT": str(CLOSE_TIMEOUT),
    "DJWS_PING_INTERVAL": str(PING_INTERVAL),
    "DJWS_PING_TIMEOUT": str(PING_TIMEOUT),
    "GUNICORN_CMD_ARGS": f"--keep-alive {GUNICORN_KEEPALIVE}",
    "UVICORN_WS_PING_INTERVAL": str(PING_INTERVAL),
    "UVICORN_WS_PING_TIMEOUT": str(PING_TIMEOUT),
}
ARGS = {
    "daphne": f"--ping-interval {PING_INTERVAL} --ping-timeout {PING_TIMEOUT}",
    "hypercorn": f"--websocket-ping-interval {PING_INTERVAL}",
}
#: Tracebacks a server may log here: uvicorn's ``websockets`` keepalive crashes
#: (AssertionError in the legacy protocol's drain) when it pings while a send waits.
KNOWN_TRACEBACKS = {"uvicorn": ("AssertionError",)}


@pytest.fixture(scope="module")
def servers(run_server):
    """Start every server of the module at once; return ``{name: LiveServer}``.

    Each gets ``pid``: the process that runs the application (gunicorn's worker).
    """

    def start(name):
        manager = run_server(name, extra_env=ENV, extra_args=ARGS.get(name, ""))
        return manager, manager.__enter__()

    with contextlib.ExitStack() as stack:
        with ThreadPoolExecutor(len(SERVERS)) as pool:
            futures = {name: pool.submit(start, name) for name in SERVERS}
        started, failures = {}, []
        for name, future in futures.items():
            try:
                manager, live = future.result()
            except Exception as exc:  # the others are stopped by the stack
                failures.append(exc)
                continue
            stack.push(manager)
            live.pid = worker_pid(live)
            started[name] = live
        if failures:
            raise failures[0]
        yield started


def in_parallel(function, cases):
    """Run ``function(*case)`` for every case at once; return ``{case: result or exception}``."""
    with ThreadPoolExecutor(len(cases)) as pool:
        futures = {case: pool.submit(function, *case) for case in cases}
    outcome = {}
    for case, future in futures.items():
        try:
            outcome[case] = future.result()
        except Exception as exc:  # re-raised by the case's test
            outcome[case] = exc
    return outcome


def facts_of(outcome, case):
    """Return the facts a case found; re-raise what went wrong running it."""
    facts = outcome[case]
    if isinstance(facts, Exception):
        raise facts
    return facts


def server_holds(server, client_port):
    """Tell whether the server still holds its end of the connection from ``client_port``.

    Read from ``/proc/net/tcp``: the server's socket (local port the server's,
    remote port the client's) in ESTABLISHED, SYN_RECV or CLOSE_WAIT.
    """
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if (
            int(local.rsplit(":", 1)[1], 16) == server.port
            and int(remote.rsplit(":", 1)[1], 16) == client_port
            and state in ("01", "03", "08")
        ):
            return True
    return False


def lets_go(server, client_port):
    """Return whether the server lets go of the connection from ``client_port`` in time."""
    try:
        poll(lambda: not server_holds(server, client_port), what="let go", timeout=SLACK)
    except AssertionError:
        return False
    return True


def read_to_end(raw):
    """Read frames until the server ends TCP; return their opcodes."""
    opcodes = []
    with contextlib.suppress(EOFError, ConnectionResetError):
        while True:
            opcodes.append(raw.read_frame().opcode)
    return opcodes


# --- an unfinished handshake --------------------------------------------------------

#: The first lines of a WebSocket upgrade, without the blank line that ends the head.
HALF_A_HEAD = (
    b"GET /ws/echo/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
)
UNFINISHED_DEADLINE = {
    "runserver": HANDSHAKE_TIMEOUT + SLACK,
    # + 1: the worker's loop looks at expired connections once a second.
    "gunicorn-gthread": DEFAULT_WORKER_DATA_TIMEOUT + GUNICORN_KEEPALIVE + 1 + SLACK,
}


def ended(sock):
    """Read what the server sends; return True once it ended TCP (EOF or reset)."""
    try:
        return not sock.recv(65536)
    except ConnectionResetError:
        return True
    except BlockingIOError:
        return False


def watch_unfinished(server):
    """Open a silent client and a half-a-head client; watch both until the deadline."""
    deadline = UNFINISHED_DEADLINE[server.name]
    threads_before = thread_count(server.pid)
    clients = {}
    try:
        for kind in ("silent", "half"):
            sock = clients[kind] = socket.create_connection((server.host, server.port), timeout=5)
            if kind == "half":
                sock.sendall(HALF_A_HEAD)
            sock.setblocking(False)
        started = time.monotonic()
        facts = {kind: {"dropped_after": None} for kind in clients}
        with selectors.DefaultSelector() as selector:
            for kind, sock in clients.items():
                selector.register(sock, selectors.EVENT_READ, kind)
            while selector.get_map() and (left := started + deadline - time.monotonic()) > 0:
                for key, _events in selector.select(left):
                    if ended(key.fileobj):
                        facts[key.data]["dropped_after"] = round(time.monotonic() - started, 2)
                        selector.unregister(key.fileobj)
        # A handler thread ends a moment after it closed its socket: give it a while.
        settle = time.monotonic() + SLACK
        while (threads_after := thread_count(server.pid)) > threads_before:
            if time.monotonic() > settle:
                break
            time.sleep(0.02)
        for kind, sock in clients.items():
            facts[kind].update(
                held=server_holds(server, sock.getsockname()[1]),
                threads_before=threads_before,
                threads_after=threads_after,
            )
        return facts
    finally:
        for sock in clients.values():
            sock.close()


@pytest.fixture(scope="module")
def unfinished(servers):
    """``{(server, kind): facts}`` for the unfinished handshakes, watched all at once."""
    names = tuple(UNFINISHED_DEADLINE)
    outcome = in_parallel(lambda name: watch_unfinished(servers[name]), [(n,) for n in names])
    results = {}
    for name in names:
        facts = facts_of(outcome, (name,))
        print(f"\n{name}: unfinished handshakes ({UNFINISHED_DEADLINE[name]} s deadline): {facts}")
        results.update({(name, kind): value for kind, value in facts.items()})
    return results


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        pytest.param("runserver", "silent"),
        pytest.param("runserver", "half"),
        pytest.param("gunicorn-gthread", "silent"),
        pytest.param(
            "gunicorn-gthread",
            "half",
            marks=pytest.mark.xfail(
                strict=True,
                reason="gunicorn 25 gthread: once a request head has started to arrive, a "
                "pool thread reads the rest from a blocking socket with no timeout; the "
                "application is never called, the thread is held until the client leaves",
            ),
        ),
    ],
)
def test_unfinished_handshake_is_dropped(unfinished, name, kind):
    facts = unfinished[name, kind]
    assert facts["dropped_after"] is not None, (
        f"{name} still holds a client that sent {kind!r} after "
        f"{UNFINISHED_DEADLINE[name]} s: {facts}"
    )
    assert not facts["held"], f"{name} ended TCP but holds the socket: {facts}"
    if name == "runserver":  # a thread per connection: none may be left
        assert facts["threads_after"] <= facts["threads_before"], facts


# --- a peer that stops reading ------------------------------------------------------

#: The most a flood view sends (64 KiB messages, ``?limit=``): 32 MiB.
FLOOD_LIMIT = 512
#: How much the server's resident memory may grow while the peer does not read.
RSS_GROWTH_LIMIT = 16 * 2**20
FLOOD_DEADLINE = CLOSE_TIMEOUT + SLACK
VIEWS = {"sync": "/ws/abuse/flood/", "async": "/ws/abuse/async-flood/"}
NO_BACKPRESSURE = pytest.mark.xfail(
    strict=True,
    reason="daphne (Twisted/autobahn) has no write backpressure: every send returns at "
    "once and is buffered in the process, whose memory grows by all that the view "
    "sends to a peer that does not read (400 MiB in 3 s without a limit)",
)
FLOOD_CASES = [
    pytest.param("runserver", "sync"),
    pytest.param("runserver", "async"),
    pytest.param("gunicorn-gthread", "sync"),
    pytest.param("gunicorn-gthread", "async"),
    pytest.param("gunicorn-gevent", "sync"),
    pytest.param("gunicorn-eventlet", "sync"),
    pytest.param("uvicorn", "sync"),
    pytest.param("uvicorn", "async"),
    pytest.param("daphne", "sync", marks=NO_BACKPRESSURE),
    pytest.param("daphne", "async", marks=NO_BACKPRESSURE),
    pytest.param("hypercorn", "sync"),
    pytest.param("hypercorn", "async"),
]


def slow_reader(server, path):
    """Open a WebSocket with a 4 KiB receive buffer; return the RawWebSocket."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    sock.settimeout(10)
    sock.connect((server.host, server.port))
    raw = rawws.RawWebSocket.__new__(rawws.RawWebSocket)
    raw.host, raw.port, raw.sock, raw.buffer = server.host, server.port, sock, b""
    try:
        assert raw.handshake(path).status == 101
    except BaseException:
        sock.close()
        raise
    return raw


def flood(server, view):
    """Let the view send to a peer that stops reading; return what happened."""
    key = uuid.uuid4().hex
    with slow_reader(server, f"{VIEWS[view]}?key={key}&limit={FLOOD_LIMIT}") as raw:
        before = rss_bytes(server.pid)
        raw.send_text("flood")  # and never read again
        flooding = server.wait_event(key, "flooding")
        deadline = time.monotonic() + FLOOD_DEADLINE
        facts = {"rss_before": before, "rss_peak": before, "close": None}
        while time.monotonic() < deadline:
            facts["rss_peak"] = max(facts["rss_peak"], rss_bytes(server.pid))
            if facts["rss_peak"] - before >= RSS_GROWTH_LIMIT:
                break
            closes = [event for event in server.events(key) if event["event"] == "close"]
            if closes:
                facts["close"] = closes[0]
                facts["dropped_after"] = round(closes[0]["at"] - flooding["at"], 2)
                break
            time.sleep(0.05)
        facts["rss_after"] = rss_bytes(server.pid)
        if facts["close"] is not None:  # the server ended TCP: the buffered rest, then EOF
            raw.settimeout(SLACK)
            try:
                raw.read_to_eof()
                facts["eof"] = True
            except TimeoutError:
                facts["eof"] = False
        return facts


@pytest.fixture(scope="module")
def floods(servers):
    """``{(server, view): facts}`` for every flood case, run all at once."""
    cases = [tuple(param.values) for param in FLOOD_CASES]
    return in_parallel(lambda name, view: flood(servers[name], view), cases)


@pytest.mark.parametrize(("name", "view"), FLOOD_CASES)
def test_peer_that_stops_reading_is_dropped(floods, name, view):
    facts = facts_of(floods, (name, view))
    before, peak, after = (facts[key] >> 10 for key in ("rss_before", "rss_peak", "rss_after"))
    close = facts["close"] or {}
    print(
        f"\n{name} {view} view: dropped after {facts.get('dropped_after')} s, on_close "
        f"{close.get('code')} {close.get('reason')!r}, {close.get('sent')} x 64 KiB sent; "
        f"RSS KiB before {before}, peak {peak}, after {after}"
    )
    assert peak - before < RSS_GROWTH_LIMIT >> 10, f"RSS grew by {(peak - before) >> 10} MiB"
    assert facts["close"] is not None, f"not dropped within {FLOOD_DEADLINE} s: {facts}"
    assert close["code"] == 1006
    assert close["sent"] < FLOOD_LIMIT
    assert after - before < RSS_GROWTH_LIMIT >> 10
    assert facts["eof"]


# --- a peer that stops answering pings ----------------------------------------------

PING_DEADLINE = PING_INTERVAL + PING_TIMEOUT + SLACK
PING_DEADLINES = {name: PING_DEADLINE for name in SERVERS}
PING_DEADLINES["uvicorn"] += UVICORN_CLOSE_TIMEOUT


def fall_silent(server):
    """Open a session, exchange a message, then neither read nor answer; return the facts."""
    key = uuid.uuid4().hex
    with rawws.RawWebSocket(server.host, server.port, timeout=10) as raw:
        client_port = raw.sock.getsockname()[1]
        assert raw.handshake(f"/ws/abuse/tracked/?key={key}").status == 101
        raw.send_text("hello")
        while (frame := raw.read_frame()).opcode != rawws.OP_TEXT:
            pass  # a keepalive ping may come first; it is not answered
        assert frame.payload.startswith(b"hello ")
        silent_since = time.time()
        try:
            close = server.wait_event(key, "close", timeout=PING_DEADLINES[server.name])
        except AssertionError:
            return {"close": None}
        raw.settimeout(SLACK)
        opcodes = read_to_end(raw)  # the end of TCP, or a timeout error
        return {
            "close": close,
            "after": round(close["at"] - silent_since, 2),
            "opcodes": opcodes,
            "held": not lets_go(server, client_port),
        }


@pytest.fixture(scope="module")
def dead_peers(servers):
    """``{(server,): facts}`` for a peer that falls silent on every server, all at once."""
    return in_parallel(lambda name: fall_silent(servers[name]), [(name,) for name in SERVERS])


@pytest.mark.parametrize(
    "name",
    [
        *SERVERS[:-1],
        pytest.param(
            "hypercorn",
            marks=pytest.mark.xfail(
                strict=True,
                reason="hypercorn 0.18 only sends pings (--websocket-ping-interval) and "
                "never times out a missing pong, and ASGI gives the application no way "
                "to ping: a peer that stops answering is never dropped",
            ),
        ),
    ],
)
def test_peer_that_stops_answering_pings_is_dropped(dead_peers, name):
    facts = facts_of(dead_peers, (name,))
    close = facts["close"] or {}
    print(
        f"\n{name}: on_close({close.get('code')}) {facts.get('after')} s after the peer fell "
        f"silent; the client then read opcodes {facts.get('opcodes')} and the end of TCP; "
        f"connection still held: {facts.get('held')}"
    )
    assert facts["close"] is not None, f"on_close did not run within {PING_DEADLINES[name]} s"
    assert facts["close"]["code"] == 1006
    assert not facts["held"]


# --- afterwards -------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVERS)
def test_servers_stay_healthy(servers, name):
    """Alive, no unknown traceback logged, and no connection left once the clients left."""
    server = servers[name]
    logged = server.log()
    assert server.alive(), f"{name} exited" + server.log_tail()
    problems = [
        line
        for line in unexpected_tracebacks(logged)
        if not line.startswith(KNOWN_TRACEBACKS.get(name, ()))
    ]
    assert not problems, f"{name} logged {problems}" + server.log_tail()
    poll(
        lambda: not held_connections(server.port),
        what=f"{name} lets go of every connection ({held_connections(server.port)})",
        timeout=UVICORN_CLOSE_TIMEOUT + SLACK,
    )
