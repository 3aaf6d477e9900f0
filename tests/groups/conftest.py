"""Fixtures of the groups tests: a real Redis, and the project under gunicorn and uvicorn.

* ``redis_server`` (session): ``redis-server`` on a free port. When the executable
  is missing the tests that need it fail if ``CI`` is set (CI must not skip them),
  else they are skipped with the reason.
* ``servers`` (session): one gunicorn gthread process and one uvicorn process of
  ``tests/groups/project`` sharing ``redis_server``. After each test that uses them
  both must still run and must not have logged a traceback.
* ``start_servers(redis_url)``: a pair of its own (stopped at the end of the test).
* ``group``: a fresh group name, so tests on shared servers never see each other.
"""

import os
import uuid

import pytest

from tests.groups.servers import KEEPALIVE, ProjectServer, RedisServer, redis_server_path


def _require_redis():
    executable = redis_server_path()
    if executable is None:
        reason = (
            "redis-server is not installed (Debian package redis-server; or set "
            "DJWS_REDIS_SERVER to its path)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the Redis tests", pytrace=False)
        pytest.skip(reason)
    return executable


@pytest.fixture(scope="session")
def redis_executable():
    return _require_redis()


@pytest.fixture(scope="session")
def redis_server(redis_executable, tmp_path_factory):
    """A Redis of the session, on a free 127.0.0.1 port."""
    server = RedisServer(redis_executable, tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(redis_executable, tmp_path):
    """A Redis of this test alone (it may be stopped and restarted)."""
    server = RedisServer(redis_executable, tmp_path / "redis").start()
    yield server
    server.stop()


class Pair:
    """The gunicorn (gthread) and uvicorn processes sharing one broker."""

    def __init__(self, broker_url, workdir):
        env = {"DJWS_PING_INTERVAL": KEEPALIVE}
        self.gunicorn = ProjectServer("gunicorn", broker_url, workdir, extra_env=env)
        try:
            self.uvicorn = ProjectServer(
                "uvicorn",
                broker_url,
                workdir,
                extra_args=("--ws-ping-interval", KEEPALIVE),
                extra_env=env,
            )
        except BaseException:
            self.gunicorn.stop()
            raise
        self.all = (self.gunicorn, self.uvicorn)
        self.offsets = {server: 0 for server in self.all}

    def mark(self):
        """Remember how much each server has logged so far."""
        self.offsets = {server: len(server.log()) for server in self.all}

    def problems(self):
        """What went wrong since :meth:`mark`: a dead server, a logged traceback."""
        found = []
        for server in self.all:
            if server.process.poll() is not None:
                found.append(f"{server!r} exited with {server.process.returncode}")
            text = server.log()[self.offsets[server] :]
            # websockets' legacy protocol (uvicorn --ws websockets) logs this one when a
            # peer's close frame arrives while a send waits for a full buffer to drain:
            # a bug of that library ("assert waiter is None"), not of ours.
            if text.count("Traceback") > text.count("in _drain_helper"):
                found.append(f"{server!r} logged a traceback:\n{text[-6000:]}")
        return found

    def stop(self):
        for server in self.all:
            server.stop()


@pytest.fixture(scope="session")
def session_pair(redis_server, tmp_path_factory):
    pair = Pair(redis_server.url, tmp_path_factory.mktemp("servers"))
    yield pair
    pair.stop()


@pytest.fixture
def servers(session_pair):
    """The session's gunicorn + uvicorn pair; checked for health after the test."""
    session_pair.mark()
    yield session_pair
    problems = session_pair.problems()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def start_servers(tmp_path):
    """Start a pair of this test's own: ``start_servers(redis_url)``."""
    started = []

    def start(broker_url):
        pair = Pair(broker_url, tmp_path / f"servers-{len(started)}")
        started.append(pair)
        return pair

    yield start
    for pair in started:
        pair.stop()


@pytest.fixture
def group():
    return f"g-{uuid.uuid4().hex[:12]}"
