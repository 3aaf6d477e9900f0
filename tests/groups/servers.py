"""Real processes for the groups tests: a Redis server and the project under real servers.

* :class:`RedisServer`: ``redis-server`` on a free 127.0.0.1 port, no persistence;
  ``stop()`` kills it, ``start()`` starts it again on the same port.
* :class:`ProjectServer`: ``tests/groups/project`` under gunicorn (gthread or gevent
  worker, ``wsgi.py`` unchanged) or uvicorn (``asgi.py``), with ``DJWS_BROKER_URL``.
* :func:`manage`: ``python -m django ...`` with the project's settings, in a plain
  process of its own.
* :class:`Member`: a WebSocket client (``websockets``' sync client) of a member view.

Every wait polls with a deadline; nothing sleeps to synchronise.
"""

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SETTINGS = "tests.groups.project.settings"
STARTUP_TIMEOUT = 40
SHUTDOWN_TIMEOUT = 20
HTTP_TIMEOUT = 30
RECEIVE_TIMEOUT = 10
LOG_TAIL = 8000

#: Keepalive pings every 60 s, ours (WSGI) and uvicorn's: no test lasts that long, so a
#: ping never ends a connection that the behaviour under test should have ended
#: (a slow member must be dropped by the close timeout, not by a keepalive timer).
KEEPALIVE = "60"

_GUNICORN = (
    "-m gunicorn -k gthread --threads 64 --workers 1 --timeout 300 --graceful-timeout 5 "
    "--log-level info -b {host}:{port} tests.groups.project.wsgi"
)
_UVICORN = (
    "-m uvicorn tests.groups.project.asgi:application --host {host} --port {port} "
    "--ws websockets --log-level info"
)
_GEVENT = (
    "-m gunicorn -k gevent --worker-connections 200 --workers 1 --timeout 300 "
    "--graceful-timeout 5 --log-level info -b {host}:{port} tests.groups.project.wsgi"
)
COMMANDS = {"gunicorn": _GUNICORN, "gevent": _GEVENT, "uvicorn": _UVICORN}


def free_port():
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_until(predicate, timeout, what):
    """Poll ``predicate()`` until it returns a true value (returned); fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


def redis_server_path():
    """Return the ``redis-server`` executable (``$DJWS_REDIS_SERVER`` if set), or ``None``."""
    configured = os.environ.get("DJWS_REDIS_SERVER")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )


def base_env(broker_url):
    """The environment of every subprocess: the repository importable, the broker URL."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DJWS_")
        and key != "DJANGO_SETTINGS_MODULE"
        or key in ("DJWS_PING_INTERVAL", "DJWS_PING_TIMEOUT")
    }
    paths = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(PYTHONPATH=os.pathsep.join(paths), PYTHONUNBUFFERED="1", DJWS_BROKER_URL=broker_url)
    return env


def manage(broker_url, *args, timeout=60):
    """Run ``python -m django ARGS`` in a plain process; return the CompletedProcess."""
    env = dict(base_env(broker_url), DJANGO_SETTINGS_MODULE=SETTINGS)
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def rss_kib(pid):
    """Return the resident set size of process ``pid`` in KiB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


class RedisServer:
    """``redis-server`` on 127.0.0.1: no RDB, no AOF, logs in ``workdir``."""

    def __init__(self, executable, workdir, port=None):
        self.executable = executable
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process = None
        self.starts = 0

    @property
    def url(self):
        return f"redis://{HOST}:{self.port}/0"

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def start(self):
        """Start it (again, on the same port) and wait until it answers PING."""
        assert not self.alive(), "redis-server is already running"
        self.starts += 1
        self.log_path = self.workdir / f"redis-{self.starts}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    self.executable,
                    "--port", str(self.port),
                    "--bind", HOST,
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.workdir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_until(self._pong, STARTUP_TIMEOUT, f"redis-server answering PING on {self.port}")
        return self

    def _pong(self):
        if not self.alive():
            raise AssertionError(
                f"redis-server exited with {self.process.returncode}:\n"
                + self.log_path.read_text(errors="replace")[-LOG_TAIL:]
            )
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        """Kill it (SIGKILL: Redis "goes away") and wait until the port is closed."""
        if self.alive():
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=SHUTDOWN_TIMEOUT)


class ProjectServer:
    """The groups project under ``kind`` (``"gunicorn"`` (gthread), ``"gevent"`` or
    ``"uvicorn"``), one worker process.

    Attributes: ``kind``, ``port``, ``process``, ``pid`` (the process serving
    requests: gunicorn's worker, not its arbiter). ``extra_args`` are appended to
    the command line (the last value of an option wins); ``extra_env`` to its
    environment (``DJWS_PING_INTERVAL``...).
    """

    def __init__(self, kind, broker_url, workdir, extra_args=(), extra_env=None):
        self.kind = kind
        self.host = HOST
        self.port = free_port()
        self.broker_url = broker_url
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{kind}-{self.port}.log"
        command = [sys.executable, *COMMANDS[kind].format(host=HOST, port=self.port).split()]
        command += extra_args  # later options win: e.g. ("--threads", "1100")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**base_env(broker_url), **(extra_env or {})},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self.pid = int(wait_until(self._serving, STARTUP_TIMEOUT, f"{kind} serving"))
        except BaseException:
            self.stop()
            raise

    def __repr__(self):
        return f"<{self.kind} on {self.port}>"

    def _serving(self):
        if self.process.poll() is not None:
            raise AssertionError(f"{self.kind} exited early" + self.log_tail())
        try:
            status, body = self.http("/pid/", timeout=2)
        except OSError:
            return None
        return body if status == 200 else None

    def log(self):
        return self.log_path.read_text(errors="replace")

    def log_tail(self):
        return f"\n--- {self.kind} log (tail) ---\n" + self.log()[-LOG_TAIL:]

    def ws_url(self, path):
        return f"ws://{self.host}:{self.port}{path}"

    def http(self, path, timeout=HTTP_TIMEOUT):
        """GET ``path`` on a fresh connection; return ``(status, body text)``."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    def members(self, group):
        """How many of this process's connections are in ``group``."""
        status, body = self.http(f"/members/?group={group}")
        assert status == 200, body
        return int(body)

    def rss_kib(self):
        return rss_kib(self.pid)

    def stop(self):
        """SIGTERM, then wait (bounded); kill if it hangs. Return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=SHUTDOWN_TIMEOUT)
        self._log.close()
        return self.process.returncode


class Member:
    """A client connected to a member view; the view has joined when this returns."""

    def __init__(self, server, path, name=None, **options):
        self.server = server
        self.name = name or f"{server.kind}{path}"
        options = {
            "open_timeout": 10,
            "close_timeout": 5,
            "compression": None,  # padded messages must cost their size on the wire
            "max_size": None,
            "proxy": None,
            **options,
        }
        # __enter__: websockets >= 17.1 wants its context-manager protocol; close() ends it.
        self.ws = connect(server.ws_url(path), **options).__enter__()
        self.expect("joined")

    def __repr__(self):
        return f"<Member {self.name}>"

    def send(self, message):
        self.ws.send(message)

    def recv(self, timeout=RECEIVE_TIMEOUT):
        try:
            return self.ws.recv(timeout=timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.name}: nothing received within {timeout} s" + self.server.log_tail()
            ) from None

    def expect(self, expected, timeout=RECEIVE_TIMEOUT):
        """Receive the next message and check it is ``expected``."""
        message = self.recv(timeout)
        assert message == expected, f"{self.name}: got {message!r}, expected {expected!r}"
        return message

    def ping(self):
        """Round-trip a command: the connection is open and its view is serving it."""
        self.send("ping")
        self.expect("pong")

    def close(self):
        with contextlib.suppress(ConnectionClosed):
            self.ws.close()
