"""One project, seven real servers: ``WebSocketView`` and friends everywhere (issue 3).

Every test runs once per server in :data:`tests.integration.servers.SERVERS`; the
server's name is the parameter id, so ``-k uvicorn`` (or ``-k gunicorn``) selects
servers. Each server starts once for this module (see ``tests/integration/servers.py``)
and serves ``tests/serverproject`` through its unchanged ``wsgi.py`` or the
two-line ``asgi.py``.

What a refused handshake looks like to the client, per server
--------------------------------------------------------------

A view that refuses a WebSocket handshake (``LoginRequiredMixin``,
``PermissionDenied``, ``Http404``, an ``HttpResponse`` from ``dispatch``, a bad
``Origin``, the middleware's 400) answers with an HTTP status. Whether the client
sees that status depends on the server:

===================  ===========================  =====================================
server               client sees                  why
===================  ===========================  =====================================
runserver            the view's status            we own the socket (WSGI)
gunicorn-gthread     the view's status            we own the socket (WSGI)
gunicorn-gevent      the view's status            we own the socket (WSGI)
gunicorn-eventlet    the view's status            we own the socket (WSGI)
uvicorn              the view's status            ASGI ``websocket.http.response``
hypercorn            the view's status            ASGI ``websocket.http.response``
daphne               ``403`` always               no ``websocket.http.response``: the
                                                  library closes with 1008 before
                                                  accepting and logs the real status;
                                                  daphne answers that with
                                                  "403 Access denied"
===================  ===========================  =====================================

So on daphne a login redirect (302), a 404 or the middleware's 400 all reach the
client as 403, and the test checks that the real status was logged instead.

What the ASGI servers cannot carry
----------------------------------

Under ASGI the server does the framing, so some facts never reach the library. Each
row below was checked against a bare ASGI application (no django_websocket code):

=========  ================================================================  =============
server     limitation                                                        table below
=========  ================================================================  =============
hypercorn  ``websocket.disconnect`` never carries the client's close code    ``REPORTS_
           or reason: 1006 after a client's close, 1000 after the            CLIENT_CLOSE``
           application's own close (hypercorn 0.18)
hypercorn  an invalid UTF-8 text frame drops TCP without a close frame       ``SENDS_1007``
daphne     no close reasons either way: ``websocket.disconnect`` has no      ``CARRIES_
           ``reason`` and close frames go out without one                    REASONS``
daphne     autobahn cannot send close codes other than 1000 and 3000-4999;   ``client_code``
           the library sends 1000 instead of 1007/1009/1011 (and logs it)
daphne     an invalid UTF-8 text frame resets TCP without a close frame      ``SENDS_1007``
uvicorn    after an invalid UTF-8 text frame the client gets 1007 but the    ``TELLS_
           application's ``websocket.disconnect`` says 1006                  APP_1007``
=========  ================================================================  =============

These change what the *client* sees or what ``on_close`` is told about the
*client's* close. They do not excuse ``on_close`` after a close the server itself
started (4000, 1007, 1009, 1011): the library knows the code it closed with, so
``on_close`` must get it on every server.

Facts only the server sees (``on_open`` ran, the code ``on_close`` got, when a blocking
view started and ended) come from the views' own records, polled with a deadline.
No test sleeps to synchronise and none asserts on elapsed time.
"""

import json
import os
import random
import string
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from websockets.exceptions import ConnectionClosed

from tests.integration import rawws
from tests.integration.helpers import connect
from tests.integration.servers import SERVERS, USERNAME, LiveServer, base_env, prepare_database

TIMEOUT = 10

#: Servers that can send the view's own HTTP status when refusing a handshake.
SENDS_REAL_STATUS = {
    "runserver": True,
    "gunicorn-gthread": True,
    "gunicorn-gevent": True,
    "gunicorn-eventlet": True,
    "uvicorn": True,
    "hypercorn": True,
    "daphne": False,
}
assert set(SENDS_REAL_STATUS) == set(SERVERS)

#: What a server that cannot send the real status answers instead (daphne).
STATUS_WITHOUT_EXTENSION = 403

#: Servers that tell the application the client's close code and reason (not hypercorn).
REPORTS_CLIENT_CLOSE = {name: name != "hypercorn" for name in SERVERS}

#: Servers that carry close reasons to the application and to the client (not daphne).
CARRIES_REASONS = {name: name != "daphne" for name in SERVERS}

#: Servers that answer an invalid UTF-8 text frame with a 1007 close frame.
SENDS_1007 = {name: name not in ("daphne", "hypercorn") for name in SERVERS}

#: Servers that tell the application 1007 after an invalid UTF-8 text frame: the WSGI
#: ones, where the library does the framing itself.
TELLS_APP_1007 = {name: name.startswith(("runserver", "gunicorn")) for name in SERVERS}

#: The close codes daphne (autobahn) can send; the library sends 1000 for the others.
DAPHNE_SENDABLE = range(3000, 5000)


def client_code(server, code):
    """Return the close code the client receives when the view closes with *code*."""
    if server.name == "daphne" and code != 1000 and code not in DAPHNE_SENDABLE:
        return 1000
    return code


def reason(server, text):
    """Return the close reason that survives the trip through *server*."""
    return text if CARRIES_REASONS[server.name] else ""


def on_close_after_client_close(server, code, text):
    """Return the ``(code, reason)`` that ``on_close`` gets after the client's close."""
    if not REPORTS_CLIENT_CLOSE[server.name]:
        return 1006, ""
    return code, reason(server, text)


# --- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def servers_env(tmp_path_factory):
    """The environment of every server: a migrated SQLite file database with a user."""
    env = base_env(tmp_path_factory.mktemp("servers-db") / "db.sqlite3")
    prepare_database(env)
    return env


@pytest.fixture(scope="module", params=SERVERS)
def running_server(request, servers_env, tmp_path_factory):
    """One server per parameter, started once for the module, stopped with SIGTERM."""
    server = LiveServer(request.param, servers_env, tmp_path_factory.mktemp(request.param))
    yield server
    server.stop()  # raises if the server had died before teardown or does not exit


@pytest.fixture
def ws_server(running_server):
    """The module's server; after each test it must be alive with no new traceback."""
    server = running_server
    offset = len(server.log())
    server.traceback_allowed = False
    yield server
    new_log = server.log()[offset:]
    problems = []
    if not server.alive():
        problems.append(f"{server.name} fell over (exit code {server.process.returncode})")
    if not server.traceback_allowed and "Traceback" in new_log:
        problems.append(f"{server.name} logged a Traceback")
    if problems:
        pytest.fail("; ".join(problems) + server.log_tail(new_log))


# --- helpers ----------------------------------------------------------------------


def new_key():
    return uuid.uuid4().hex


def expect_close(ws):
    """Read until the server closes; return the close frame it sent (code, reason)."""
    for _ in range(1000):
        try:
            ws.recv(timeout=TIMEOUT)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, f"no close frame received: {closed!r}"
            return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("the server kept sending and never closed")


def refused(server, path, headers=None):
    """Send a handshake that must be refused; return the HTTP response (status, headers).

    A hand-made handshake, not the ``websockets`` client: that one follows redirects,
    and the login refusal is a redirect.
    """
    with rawws.RawWebSocket(server.host, server.port, timeout=TIMEOUT) as raw:
        response = raw.handshake(path, headers=headers)
    assert response.status != 101, f"{path} was accepted"
    return response


def check_refusal(server, response, status, path, offset):
    """Check a refusal per the table at the top of this module."""
    if SENDS_REAL_STATUS[server.name]:
        assert response.status == status
    else:
        assert response.status == STATUS_WITHOUT_EXTENSION
        logged = server.log()[offset:]
        assert any(
            str(status) in line and path.split("?")[0] in line for line in logged.splitlines()
        ), f"the refusal's real status {status} was not logged" + server.log_tail(logged)


def random_text(size):
    return "".join(random.choices(string.ascii_letters + string.digits, k=size))


# --- echo ---------------------------------------------------------------------------


def test_echo_text_and_bytes(ws_server):
    with connect(ws_server.ws_url("/ws/echo/")) as ws:
        ws.send("hello")
        reply = ws.recv(timeout=TIMEOUT)
        assert isinstance(reply, str) and reply == "hello"
        ws.send(b"\x00\x01\xfe\xff")
        reply = ws.recv(timeout=TIMEOUT)
        assert isinstance(reply, bytes) and reply == b"\x00\x01\xfe\xff"
        ws.send("ünïcödé ✓")
        assert ws.recv(timeout=TIMEOUT) == "ünïcödé ✓"


def test_echo_binary_70kb(ws_server):
    payload = os.urandom(70 * 1024)  # over the 64 KiB setting; Echo allows 200 000
    with connect(ws_server.ws_url("/ws/echo/")) as ws:
        ws.send(payload)
        reply = ws.recv(timeout=TIMEOUT)
    assert isinstance(reply, bytes) and reply == payload


def test_echo_50_messages_in_order(ws_server):
    messages = [f"message {i}" for i in range(50)]
    with connect(ws_server.ws_url("/ws/echo/")) as ws:
        for message in messages:
            ws.send(message)
        replies = [ws.recv(timeout=TIMEOUT) for _ in messages]
    assert replies == messages


def test_a_burst_of_sends_arrives_in_order_before_the_close(ws_server):
    """A sync view's sends are not awaited one by one under ASGI (a send window)."""
    with connect(ws_server.ws_url("/ws/lifecycle/")) as ws:
        ws.send("burst 300")
        replies = [ws.recv(timeout=TIMEOUT) for _ in range(300)]
        assert replies == [f"b{index}" for index in range(300)]
        assert expect_close(ws)[0] == 4000  # daphne drops close reasons


def test_the_request_body_is_empty_and_takes_no_frames(ws_server):
    """After the 101 the socket carries frames: ``request.body`` reads none of them."""
    with connect(ws_server.ws_url("/ws/lifecycle/")) as ws:
        ws.send("body")
        assert ws.recv(timeout=TIMEOUT) == "b''"
        ws.send("after")
        assert ws.recv(timeout=TIMEOUT) == "after"


# --- lifecycle ------------------------------------------------------------------------


def test_on_open_is_called(ws_server):
    key = new_key()
    with connect(ws_server.ws_url("/ws/echo/", key)) as ws:
        opened = ws_server.wait_event(key, "open")
        assert opened["path"] == "/ws/echo/"
        ws.send("after open")
        assert ws.recv(timeout=TIMEOUT) == "after open"


def test_on_close_gets_the_clients_code(ws_server):
    key = new_key()
    with connect(ws_server.ws_url("/ws/lifecycle/", key)) as ws:
        ws.send("ping")
        assert ws.recv(timeout=TIMEOUT) == "ping"
        ws.close(4001, "client")
    closed = ws_server.wait_event(key, "close")
    expected = on_close_after_client_close(ws_server, 4001, "client")
    assert (closed["code"], closed["reason"]) == expected
    events = [event["event"] for event in ws_server.events(key)]
    assert events == ["open", "close"]


def test_on_close_after_a_server_close(ws_server):
    key = new_key()
    with connect(ws_server.ws_url("/ws/lifecycle/", key)) as ws:
        ws.send("close 4000")
        assert expect_close(ws) == (4000, reason(ws_server, "server"))
    closed = ws_server.wait_event(key, "close")
    assert closed["code"] == 4000  # the code the view closed with, on every server
    events = [event["event"] for event in ws_server.events(key)]
    assert events == ["open", "close"]


def test_on_close_after_an_abrupt_tcp_drop(ws_server):
    key = new_key()
    with rawws.RawWebSocket(ws_server.host, ws_server.port, timeout=TIMEOUT) as raw:
        response = raw.handshake(f"/ws/lifecycle/?key={key}")
        assert response.status == 101
        raw.send_text("ping")
        frame = raw.read_frame()
        assert (frame.opcode, frame.payload) == (rawws.OP_TEXT, b"ping")
        # Leaving the block closes the TCP socket: no close frame was ever sent.
    closed = ws_server.wait_event(key, "close")
    assert closed["code"] == 1006
    events = [event["event"] for event in ws_server.events(key)]
    assert events == ["open", "close"]


# --- async hooks ----------------------------------------------------------------------


def test_async_hooks_echo_and_lifecycle(ws_server):
    key = new_key()
    with connect(ws_server.ws_url("/ws/async-echo/", key)) as ws:
        assert ws_server.wait_event(key, "open")["path"] == "/ws/async-echo/"
        ws.send("async text")
        assert ws.recv(timeout=TIMEOUT) == "async text"
        ws.send(b"\x00async\xff")
        assert ws.recv(timeout=TIMEOUT) == b"\x00async\xff"
        ws.close(4002, "async client")
    closed = ws_server.wait_event(key, "close")
    expected = on_close_after_client_close(ws_server, 4002, "async client")
    assert (closed["code"], closed["reason"]) == expected


# --- JSON -------------------------------------------------------------------------------


def test_json_echo(ws_server):
    values = [{"a": [1, 2.5, "x"], "b": None, "c": True}, [1, "two"], "text", 42]
    with connect(ws_server.ws_url("/ws/json/")) as ws:
        for value in values:
            ws.send(json.dumps(value))
            assert json.loads(ws.recv(timeout=TIMEOUT)) == value


def test_invalid_json_closes_with_1007(ws_server):
    key = new_key()
    with connect(ws_server.ws_url("/ws/json/", key)) as ws:
        ws.send('{"valid": true}')
        assert json.loads(ws.recv(timeout=TIMEOUT)) == {"valid": True}
        ws.send("{not json")
        code, _reason = expect_close(ws)
    assert code == client_code(ws_server, 1007)
    assert ws_server.wait_event(key, "close")["code"] == 1007


# --- subprotocols -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "selected"),
    [
        (["chat.v1"], "chat.v1"),
        (["chat.v1", "chat.v2"], "chat.v1"),  # the client's first one the view speaks
        (["chat.v3", "chat.v2"], "chat.v2"),
        (None, None),
    ],
    ids=["v1", "v1-v2", "v3-v2", "none"],
)
def test_subprotocol_is_negotiated(ws_server, offered, selected):
    with connect(ws_server.ws_url("/ws/subprotocol/"), subprotocols=offered) as ws:
        assert ws.subprotocol == selected
        assert ws.recv(timeout=TIMEOUT) == str(selected)


# --- refusing the handshake ---------------------------------------------------------


def test_login_required_refuses_an_anonymous_client(ws_server):
    offset = len(ws_server.log())
    response = refused(ws_server, "/ws/protected/")
    check_refusal(ws_server, response, 302, "/ws/protected/", offset)
    if SENDS_REAL_STATUS[ws_server.name]:
        assert response.headers["location"] == "/accounts/login/?next=/ws/protected/"


def test_login_required_accepts_a_logged_in_client(ws_server):
    cookie = ws_server.login()
    with connect(ws_server.ws_url("/ws/protected/"), additional_headers={"Cookie": cookie}) as ws:
        assert ws.recv(timeout=TIMEOUT) == f"hello {USERNAME}"
        ws.send("secret")
        assert ws.recv(timeout=TIMEOUT) == "secret"


@pytest.mark.parametrize(
    ("how", "status"),
    [("permission", 403), ("404", 404), ("response", 418)],
    ids=["PermissionDenied", "Http404", "HttpResponse"],
)
def test_dispatch_refuses_before_the_handshake(ws_server, how, status):
    if how == "permission":
        ws_server.traceback_allowed = True  # Django logs PermissionDenied with its traceback
    offset = len(ws_server.log())
    path = f"/ws/refusing/?refuse={how}"
    response = refused(ws_server, path)
    check_refusal(ws_server, response, status, "/ws/refusing/", offset)
    # The same view accepts when dispatch lets it through.
    with connect(ws_server.ws_url("/ws/refusing/")) as ws:
        ws.send("through")
        assert ws.recv(timeout=TIMEOUT) == "through"


def test_origin_not_allowed_gets_403(ws_server):
    response = refused(ws_server, "/ws/echo/", headers={"Origin": "http://evil.example"})
    assert response.status == 403
    with connect(ws_server.ws_url("/ws/echo/"), origin=ws_server.origin) as ws:
        ws.send("same origin")
        assert ws.recv(timeout=TIMEOUT) == "same origin"


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-WebSocket-Key": "abc"},
        {"Sec-WebSocket-Key": "not base64 at all, and long enough!"},
        {"Sec-WebSocket-Version": "8"},
    ],
    ids=["short-key", "garbage-key", "version-8"],
)
def test_a_bad_key_or_version_is_refused_on_every_server(ws_server, headers):
    # Checked by the library under ASGI too: hypercorn takes any key, daphne version 8.
    offset = len(ws_server.log())
    response = refused(ws_server, "/ws/echo/", headers=headers)
    if response.status == 400:
        return  # the server's own 400 (uvicorn, daphne for keys), or ours
    check_refusal(ws_server, response, 400, "/ws/echo/", offset)


def test_middleware_refuses_a_websocket_to_a_plain_view(ws_server):
    offset = len(ws_server.log())
    response = refused(ws_server, "/plain/")
    check_refusal(ws_server, response, 400, "/plain/", offset)
    status, _headers, body = ws_server.http("GET", "/plain/")
    assert (status, body) == (200, b"plain ok")


# --- errors -----------------------------------------------------------------------------


def test_on_error_closes_with_1011_and_the_server_keeps_serving(ws_server):
    ws_server.traceback_allowed = True  # the default on_error logs the exception
    key = new_key()
    with connect(ws_server.ws_url("/ws/boom/", key)) as ws:
        ws.send("explode")
        code, _reason = expect_close(ws)
    assert code == client_code(ws_server, 1011)
    assert ws_server.wait_event(key, "close")["code"] == 1011
    assert "boom on 'explode'" in ws_server.log()
    with connect(ws_server.ws_url("/ws/echo/")) as ws:
        ws.send("still serving")
        assert ws.recv(timeout=TIMEOUT) == "still serving"


def test_oversize_message_closes_with_1009(ws_server):
    key = new_key()
    with connect(ws_server.ws_url("/ws/lifecycle/", key), compression=None) as ws:
        ws.send("small")
        assert ws.recv(timeout=TIMEOUT) == "small"
        ws.send(random_text(70 * 1024))  # WEBSOCKET_MAX_MESSAGE_SIZE is 65536
        code, _reason = expect_close(ws)
    assert code == client_code(ws_server, 1009)
    assert ws_server.wait_event(key, "close")["code"] == 1009


def test_invalid_utf8_text_closes_with_1007(ws_server):
    key = new_key()
    with rawws.RawWebSocket(ws_server.host, ws_server.port, timeout=TIMEOUT) as raw:
        assert raw.handshake(f"/ws/lifecycle/?key={key}").status == 101
        raw.send_text("valid")
        frame = raw.read_frame()
        assert (frame.opcode, frame.payload) == (rawws.OP_TEXT, b"valid")
        raw.send_frame(rawws.OP_TEXT, b"bad \xff\xfe utf-8")
        if SENDS_1007[ws_server.name]:
            _others, close = raw.read_until_close()
            assert close.close_code == 1007
        else:  # the server drops TCP without a close frame (see the table above)
            assert raw.read_to_eof() == b""
    closed = ws_server.wait_event(key, "close")
    if TELLS_APP_1007[ws_server.name]:
        assert closed["code"] == 1007
    events = [event["event"] for event in ws_server.events(key)]
    assert events == ["open", "close"]


# --- plain HTTP to a WebSocketView --------------------------------------------------------


def test_plain_get_to_a_websocket_view_gets_426(ws_server):
    status, _headers, _body = ws_server.http("GET", "/ws/echo/")
    assert status == 426


def test_view_with_get_serves_plain_http_and_websockets(ws_server):
    status, _headers, body = ws_server.http("GET", "/ws/with-get/")
    assert (status, body) == (200, b"plain")
    with connect(ws_server.ws_url("/ws/with-get/")) as ws:
        ws.send("upgrade too")
        assert ws.recv(timeout=TIMEOUT) == "upgrade too"


# --- the seed examples ------------------------------------------------------------------


def test_seed_echo_once(ws_server):
    with connect(ws_server.ws_url("/ws/echo-once/")) as ws:
        ws.send("Hello")
        assert ws.recv(timeout=TIMEOUT) == "Hello"
        assert expect_close(ws)[0] == 1000


def test_seed_lower_case(ws_server):
    with connect(ws_server.ws_url("/ws/lower/")) as ws:
        for message in ["HeLLo", "WORLD", "ÄÖÜ"]:
            ws.send(message)
            assert ws.recv(timeout=TIMEOUT) == message.lower()
    status, _headers, body = ws_server.http("GET", "/ws/lower/?message=HeLLo")
    assert (status, body) == (200, b"hello")


# --- concurrency --------------------------------------------------------------------------


def test_16_blocking_sync_views_are_in_flight_at_once(ws_server):
    """Each view blocks 0.3 s in sync code; all 16 must have started before any ended."""
    keys = [new_key() for _ in range(16)]
    with ExitStack() as stack:
        sockets = [
            stack.enter_context(connect(ws_server.ws_url("/ws/blocker/", key))) for key in keys
        ]
        for ws in sockets:
            ws.send("block")
        replies = [ws.recv(timeout=TIMEOUT) for ws in sockets]
    assert replies == ["done"] * 16
    starts, ends, pids = [], [], set()
    for key in keys:
        events = ws_server.wait_events(
            key, lambda events: [e["event"] for e in events] == ["start", "end"]
        )
        starts.append(events[0]["at"])
        ends.append(events[1]["at"])
        pids.update(event["pid"] for event in events)
    assert len(pids) == 1  # one process, so its monotonic clock orders the records
    assert max(starts) < min(ends), "a sync view waited for another to finish"


def test_50_connections_of_20_messages(ws_server):
    def session(number):
        expected = [f"c{number}-m{i}" for i in range(20)]
        with connect(ws_server.ws_url("/ws/echo/"), open_timeout=60) as ws:
            for message in expected:
                ws.send(message)
            return [ws.recv(timeout=TIMEOUT) for _ in expected] == expected

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(session, range(50)))
    assert results == [True] * 50
