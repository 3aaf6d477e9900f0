"""An async view's session under ASGI runs after Django's response path returned.

With a sync-only middleware in the chain, Django calls an async view through
``async_to_sync`` on a thread, which used to stay blocked for the whole session:
a thread per idle connection. The session now runs once the middleware chain has
returned, so middleware sees the response right after the handshake and the
thread goes back to the pool. Real servers, the ``websockets`` client.
"""

import json
from contextlib import ExitStack

import pytest

from tests.abuse import thread_count, worker_pid
from tests.integration.helpers import connect, http_request, new_key
from tests.integration.servers import LiveServer, base_env, manage

ASGI_SERVERS = ("uvicorn", "hypercorn", "daphne")
VIEWS = ("/ws/async-echo/", "/ws/async-echo-function/", "/ws/echo/")
#: Connections held open at once in the thread test.
HELD = 24


@pytest.fixture(scope="module", params=ASGI_SERVERS)
def asgi_server(request, tmp_path_factory):
    env = base_env(tmp_path_factory.mktemp("asgi-sessions-db") / "db.sqlite3")
    manage(env, "migrate", "--noinput", "-v", "0")
    server = LiveServer(
        request.param,
        env,
        tmp_path_factory.mktemp(request.param),
        extra_env={"DJWS_SYNC_MIDDLEWARE": "1", "DJWS_MIDDLEWARE_DB": "1"},
    )
    yield server
    server.stop()


@pytest.mark.parametrize("path", VIEWS)
def test_middleware_returns_before_the_session_ends(asgi_server, path):
    key = new_key()
    with connect(asgi_server.ws_url(path, key)) as ws:
        seen = asgi_server.wait_event(key, "middleware-response")
        assert seen["status"] == 101
        # The session goes on after the middleware returned.
        ws.send("still here")
        assert ws.recv(timeout=10) == "still here"
        assert not any(e["event"] == "close" for e in asgi_server.events(key))
    asgi_server.wait_event(key, "close")
    events = [e["event"] for e in asgi_server.events(key)]
    assert events.index("middleware-response") < events.index("close")


@pytest.mark.parametrize("path", VIEWS)
def test_idle_sessions_hold_no_thread(asgi_server, path):
    pid = worker_pid(asgi_server)
    with connect(asgi_server.ws_url(path)) as warm:  # the pools' first threads
        warm.send("warm")
        assert warm.recv(timeout=10) == "warm"
    before = thread_count(pid)
    with ExitStack() as held:
        for number in range(HELD):
            ws = held.enter_context(connect(asgi_server.ws_url(path)))
            ws.send(str(number))
            assert ws.recv(timeout=10) == str(number)
        added = thread_count(pid) - before
    # One thread per session would add HELD; asyncio's default executor may start
    # a few of its own (it keeps up to cpu_count + 4).
    assert added < HELD // 2, f"{added} threads for {HELD} idle sessions"


def open_db_connections(server):
    status, _headers, body = http_request(server.http_url("/abuse/probe/"))
    assert status == 200, body
    return json.loads(body)["db_connections"]


@pytest.mark.parametrize("path", VIEWS)
def test_the_handshake_threads_db_connection_is_closed_for_the_session(asgi_server, path):
    """The middleware opened a DB connection on the handshake's thread: not kept."""
    before = open_db_connections(asgi_server)
    with ExitStack() as held:
        for number in range(5):
            ws = held.enter_context(connect(asgi_server.ws_url(path)))
            ws.send(str(number))
            assert ws.recv(timeout=10) == str(number)
        during = open_db_connections(asgi_server)
    assert during <= before, f"{during - before} DB connections held by idle sessions"
