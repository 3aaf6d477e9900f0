"""Abuse tests (issue 6): real servers fed bad handshakes, bad frames and bad peers.

Every module here starts ``tests/serverproject`` under real servers
(:mod:`tests.integration.servers`) and attacks them over raw sockets
(:mod:`tests.integration.rawws`). This package holds the small helpers that
``test_handshake_fuzz.py`` and ``test_frames.py`` share: what the kernel knows
about a server process (its worker's pid, threads, resident memory, the TCP
connections it still holds) and the health check those modules run after an
attack. Every wait is a poll with a deadline on something the kernel reports; the
one fixed pause is the 0.2 s between two reads of a thread count that must agree
(no event says "the last thread has exited").
"""

import os
import socket
import time
from pathlib import Path

from tests.integration import rawws
from tests.integration.servers import LiveServer, base_env, manage

#: Seconds a client waits for any answer from a server under attack: "no hang".
ANSWER_TIMEOUT = 5.0
#: Seconds a server gets to let go of connections and threads after an attack.
SETTLE_TIMEOUT = 15.0

#: Servers that run the application in a child of the process we started.
_FORKING = ("gunicorn-", "hypercorn")

#: Threads an ASGI server's process may add for good after the baseline: asyncio's
#: default executor (``asyncio_N``/``uvloop_N`` threads, used through asgiref's
#: ``sync_to_async(thread_sensitive=False)`` when a handshake is refused) starts its
#: threads on first use, up to this many, and keeps them. A thread per connection
#: left behind would add one per session and exceed it within one fuzz run.
ASGI_POOL_THREADS = min(32, (os.cpu_count() or 1) + 4)
_ASGI = ("uvicorn", "hypercorn", "daphne")

#: The one exception a server may log with a traceback during these tests: Django
#: logs ``DisallowedHost`` (a bad ``Host`` header, answered 400) on the
#: ``django.security`` logger with ``exc_info`` when ``DEBUG`` is on, as the server
#: project has it. Anything else is a finding.
EXPECTED_TRACEBACKS = ("django.core.exceptions.DisallowedHost:",)

_ENVIRONMENTS: dict = {}


def abuse_env(tmp_path_factory):
    """Return the servers' environment: a migrated SQLite database, made once per run."""
    root = tmp_path_factory.getbasetemp()
    if root not in _ENVIRONMENTS:
        env = base_env(tmp_path_factory.mktemp("abuse-db") / "db.sqlite3")
        manage(env, "migrate", "--noinput", "-v", "0")
        _ENVIRONMENTS[root] = env
    return _ENVIRONMENTS[root]


def poll(check, *, what, describe=None, timeout=SETTLE_TIMEOUT, interval=0.02):
    """Call ``check()`` until it returns a true value; fail saying ``describe()``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            last = describe() if describe is not None else repr(value)
            raise AssertionError(f"{what}: not true within {timeout}s ({last})")
        time.sleep(interval)


# --- the kernel's view of a server ------------------------------------------------


def _children(pid):
    """Return the pids whose parent is ``pid`` (from ``/proc/*/stat``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process just ended
            continue
        # The command name is in parentheses and may contain spaces: split after it.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def worker_pid(server):
    """Return the pid of the process that runs the application.

    gunicorn's master forks one worker; hypercorn spawns one (next to
    multiprocessing's resource tracker). The other servers are one process.
    """
    if not server.name.startswith(_FORKING):
        return server.process.pid

    def the_worker():
        workers = [
            pid for pid in _children(server.process.pid) if "resource_tracker" not in _cmdline(pid)
        ]
        return workers[0] if len(workers) == 1 else None

    return poll(the_worker, what=f"one worker process of {server.name}")


def thread_count(pid):
    """Return how many threads process ``pid`` has right now."""
    return len(os.listdir(f"/proc/{pid}/task"))


def rss_bytes(pid):
    """Return the resident set size of process ``pid`` (``VmRSS``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


#: TCP states in ``/proc/net/tcp`` in which the server still holds a connection it
#: has not closed: ESTABLISHED, SYN_RECV, CLOSE_WAIT (the peer closed, we did not),
#: LAST_ACK (both closed, ours not yet acknowledged: it ends by itself).
_HELD_STATES = {"01": "ESTABLISHED", "03": "SYN_RECV", "08": "CLOSE_WAIT"}


def held_connections(port, host="127.0.0.1"):
    """Return the states of the connections the server on ``host:port`` still holds."""
    local = "{:08X}:{:04X}".format(int.from_bytes(socket.inet_aton(host), "little"), port)
    states = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] in _HELD_STATES:
            states.append(_HELD_STATES[fields[3]])
    return states


# --- what a server logged ---------------------------------------------------------


def unexpected_tracebacks(text):
    """Return the final line of every traceback in ``text`` not in EXPECTED_TRACEBACKS."""
    lines = text.splitlines()
    found = []
    for index, line in enumerate(lines):
        if not line.startswith("Traceback (most recent call last):"):
            continue
        # The exception line is the first one after the frames that is not indented.
        final = next(
            (later for later in lines[index + 1 :] if later and not later[0].isspace()),
            "<end of log>",
        )
        if not final.startswith(EXPECTED_TRACEBACKS):
            found.append(final)
    return found


# --- a client that behaves ----------------------------------------------------------


def open_echo(server, path="/ws/echo/"):
    """Open a raw WebSocket to ``path`` (101 checked) and return it."""
    raw = rawws.RawWebSocket(server.host, server.port, timeout=ANSWER_TIMEOUT * 2)
    try:
        response = raw.handshake(path)
        assert response.status == 101, f"{server.name}: {path} answered {response}"
    except BaseException:
        raw.close()
        raise
    return raw


def echo_round_trip(raw, text):
    """Send ``text`` and expect it back (answering pings on the way)."""
    raw.send_text(text)
    while True:
        frame = raw.read_frame()
        if frame.opcode == rawws.OP_PING:
            raw.send_frame(rawws.OP_PONG, frame.payload)
            continue
        assert (frame.opcode, frame.payload) == (rawws.OP_TEXT, text.encode()), frame
        return


def close_cleanly(raw):
    """Close with 1000, read the server's close frame, then expect TCP to end."""
    raw.send_close(1000)
    _others, close = raw.read_until_close()
    assert close.close_code == 1000, close
    assert raw.read_to_eof() == b""
    raw.close()


def check_echo(server, text="still serving"):
    """A normal session works: handshake, one echo, a clean close."""
    raw = open_echo(server)
    try:
        echo_round_trip(raw, text)
        close_cleanly(raw)
    finally:
        raw.close()


def check_capacity(server, sessions=32):
    """Hold ``sessions`` echo sessions open at once; each one echoes.

    gunicorn's gthread worker runs 32 threads: a thread stuck in a session that
    should have ended makes the 32nd handshake hang, and the check fail.
    """
    opened = []
    try:
        for _ in range(sessions):
            opened.append(open_echo(server))
        for number, raw in enumerate(opened):
            echo_round_trip(raw, f"session {number}")
        for raw in opened:
            close_cleanly(raw)
    finally:
        for raw in opened:
            raw.close()


class Watched:
    """A started server and the facts the health check compares against.

    ``baseline_threads`` is measured after :func:`check_capacity` ran once:
    gunicorn's gthread worker keeps a pool of 32 threads that grows on first use
    and never shrinks, and 32 sessions at once fill it, so that only a thread left
    behind can raise the count afterwards. The ASGI servers' asyncio executor is
    allowed for separately (:data:`ASGI_POOL_THREADS`).
    """

    def __init__(self, name, env, workdir):
        self.server = LiveServer(name, env, workdir)
        try:
            self.pid = worker_pid(self.server)
            check_capacity(self.server)
            self.settle(idle_keepalive_ok=self.name == "hypercorn")
            self.baseline_threads = self._stable_thread_count()
        except BaseException:
            self.server._kill()
            raise

    def __getattr__(self, name):  # host, port, name, log(), ... of the LiveServer
        return getattr(self.server, name)

    def _stable_thread_count(self):
        """Return the thread count once two reads 0.2 s apart agree."""
        previous = thread_count(self.pid)
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            time.sleep(0.2)
            current = thread_count(self.pid)
            if current == previous:
                return current
            previous = current
        raise AssertionError(f"{self.name}: thread count never settled (last {previous})")

    def settle(self, *, idle_keepalive_ok=False):
        """Wait until the server holds no client connection any more.

        ``idle_keepalive_ok``: do not wait for connections in CLOSE_WAIT (hypercorn
        keeps a keep-alive connection the client closed until its 5 s
        ``keep_alive_timeout``; the startup probe leaves one behind).
        """
        ignored = {"CLOSE_WAIT"} if idle_keepalive_ok else set()
        poll(
            lambda: not set(held_connections(self.port)) - ignored,
            what=f"{self.name} lets go of every connection",
            describe=lambda: f"held: {held_connections(self.port)}",
        )

    def check_alive(self, log_offset):
        """Alive, the same worker process, and no traceback logged since ``log_offset``."""
        server = self.server
        assert server.alive(), f"{server.name} exited" + server.log_tail()
        assert worker_pid(server) == self.pid, (
            f"{server.name}: the worker was replaced (it died)" + server.log_tail()
        )
        logged = server.log()[log_offset:]
        problems = unexpected_tracebacks(logged)
        assert not problems, f"{server.name} logged tracebacks: {problems}" + server.log_tail(
            logged
        )

    def check_recovered(self):
        """Every connection let go, threads back to the baseline, a new echo works."""
        self.settle()
        limit = self.baseline_threads + (ASGI_POOL_THREADS if self.name in _ASGI else 0)
        poll(
            lambda: thread_count(self.pid) <= limit,
            what=f"{self.name} back to at most {limit} threads",
            describe=lambda: f"baseline {self.baseline_threads}, now {thread_count(self.pid)}",
        )
        check_echo(self.server)

    def check_healthy(self, log_offset):
        """:meth:`check_alive` and :meth:`check_recovered`."""
        self.check_alive(log_offset)
        self.check_recovered()
        self.check_alive(log_offset)

    def stop(self):
        """Stop the server once the last session's thread has ended.

        daphne takes 10 s to exit on a SIGTERM that comes while a sync view's
        thread is still finishing its session (the thread waits for the stopped
        event loop until the library's LOOP_TIMEOUT): not what these tests test.
        """
        if self.server.alive():
            self._stable_thread_count()
        self.server.stop()
