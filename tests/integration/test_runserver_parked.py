"""A sync ``WebSocketView`` on our runserver holds no thread between events.

The request's thread ends once the response is done; the session then runs on
worker threads, parked on the runserver's reactor between events, as under ASGI
(``tests/integration/test_asgi_sessions.py``). Real runserver, the ``websockets``
client; thread and fd counts from ``/proc``.
"""

import json
import os
from contextlib import ExitStack

import pytest

from tests.abuse import thread_count
from tests.integration.helpers import connect, new_key, retry_until
from tests.integration.servers import LiveServer, base_env, manage

#: Connections held open at once. Opened one after another, each session keeps its
#: worker for a short linger after its first message, so a fast machine starts a
#: few workers (12-15 seen) however many sessions there are: HELD is well above that.
HELD = 64


@pytest.fixture(scope="module")
def runserver(tmp_path_factory):
    env = base_env(tmp_path_factory.mktemp("parked-db") / "db.sqlite3")
    manage(env, "migrate", "--noinput", "-v", "0")
    server = LiveServer(
        "runserver",
        env,
        tmp_path_factory.mktemp("parked"),
        extra_env={"DJWS_SYNC_MIDDLEWARE": "1"},
    )
    yield server
    server.stop()


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_idle_sessions_hold_no_thread_and_keep_what_on_open_set(runserver):
    pid = runserver.process.pid
    with connect(runserver.ws_url("/ws/remembers/")) as warm:  # the pool's first threads
        warm.send("warm")
        json.loads(warm.recv(timeout=10))
    before = thread_count(pid)
    with ExitStack() as held:
        sockets = {}
        for _ in range(HELD):
            key = new_key()
            ws = held.enter_context(connect(runserver.ws_url("/ws/remembers/", key)))
            ws.send("first")
            reply = json.loads(ws.recv(timeout=10))
            assert (reply["remembered"], reply["language"]) == (key, "fr")
            sockets[key] = (ws, reply["thread"])
        added = thread_count(pid) - before
        # One thread per session would add HELD; workers idle after parking are
        # reused, so the workers started do not grow with the number of sessions.
        assert added < HELD // 2, f"{added} threads for {HELD} idle sessions"

        for ws, _thread in sockets.values():  # all at once: resumed on several workers
            ws.send("second")
        moved = 0
        for key, (ws, thread) in sockets.items():
            reply = json.loads(ws.recv(timeout=10))
            # What on_open set is there on whichever thread runs the hook now.
            assert (reply["message"], reply["remembered"], reply["language"]) == (
                "second",
                key,
                "fr",
            )
            moved += reply["thread"] != thread
        assert moved, "no session was resumed on another thread: nothing was handed over"


def test_middleware_sees_the_101_before_on_open(runserver):
    key = new_key()
    with connect(runserver.ws_url("/ws/echo/", key)) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
        runserver.wait_event(key, "open")
    runserver.wait_event(key, "close")
    events = [event["event"] for event in runserver.events(key)]
    assert events.index("middleware-response") < events.index("open") < events.index("close")


def test_ended_sessions_close_their_sockets(runserver):
    pid = runserver.process.pid
    with connect(runserver.ws_url("/ws/echo/")) as warm:
        warm.send("warm")
        assert warm.recv(timeout=10) == "warm"
    before = open_fds(pid)
    with ExitStack() as held:
        for number in range(HELD):
            ws = held.enter_context(connect(runserver.ws_url("/ws/echo/")))
            ws.send(str(number))
            assert ws.recv(timeout=10) == str(number)
        assert open_fds(pid) >= before + HELD  # each session's socket (and its wake fd)
    # The server closed none of them itself: each session closed its own at its end.
    retry_until(lambda: open_fds(pid) <= before, what=f"server fds back to {before}")
