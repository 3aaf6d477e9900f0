"""``WebSocketClient``: the in-process test client, tested with pytest-django.

Every wait here is bounded by the client's timeout (5 s unless a test says less);
a test that would hang fails with ``TimeoutError`` instead.
"""

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import override_settings

from django_websocket import ConnectionClosed
from django_websocket.connection import registry
from django_websocket.events import CloseCode
from django_websocket.exceptions import WebSocketError
from django_websocket.testing import HandshakeRejected, WebSocketClient
from tests.testing.drivers import wait_until
from tests.testing.views import EVENTS

pytestmark = pytest.mark.urls("tests.testing.urls")

FAST_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"


def on_close(key):
    """Return ``(code, reason)`` the view's ``on_close`` got; check it ran exactly once."""
    facts = [event for event in EVENTS.get(key, []) if event["event"] == "close"]
    assert len(facts) == 1, f"on_close ran {len(facts)} times"
    return facts[0]["code"], facts[0]["reason"]


@pytest.fixture
def client():
    return WebSocketClient()


# --- messages ------------------------------------------------------------------------------------


def test_echo_text_and_bytes(client):
    with client.connect("/ws/echo/") as ws:
        ws.send("hello")
        assert ws.receive() == "hello"
        ws.send(b"\x00\xff")
        assert ws.receive() == b"\x00\xff"
        ws.send("")
        assert ws.receive() == ""


def test_send_json_and_receive_json(client):
    with client.connect("/ws/json/") as ws:
        ws.send_json({"n": [1, 2], "s": "é"})
        assert ws.receive_json() == {"got": {"n": [1, 2], "s": "é"}}


def test_send_refuses_what_is_not_a_message(client):
    with client.connect("/ws/echo/") as ws, pytest.raises(TypeError, match="str or bytes"):
        ws.send(42)


def test_function_views(client):
    with client.connect("/ws/fn/echo/") as ws:
        ws.send("fn")
        assert ws.receive() == "fn"
    with client.connect("/ws/fn/async-echo/") as ws:
        ws.send(b"async fn")
        assert ws.receive() == b"async fn"
    assert client.get("/ws/fn/both/").content == b"http"
    with client.connect("/ws/fn/both/") as ws:
        assert ws.receive() == "websocket"


def test_async_view(client, key):
    with client.connect(f"/ws/async-echo/?key={key}") as ws:
        ws.send("async")
        assert ws.receive() == "async"
    assert on_close(key) == (1000, "")


def test_query_string_and_secure(client):
    with client.connect("/ws/info/?q=search", secure=True) as ws:
        info = ws.receive_json()
    assert info["query"] == "search"
    assert info["secure"] is True


# --- close codes ---------------------------------------------------------------------------------


def test_client_close_code_reaches_on_close(client, key):
    ws = client.connect(f"/ws/echo/?key={key}")
    ws.close(4001, "bye")
    assert (ws.close_code, ws.close_reason) == (4001, "bye")
    assert on_close(key) == (4001, "bye")  # the view has returned when close() returns


def test_leaving_the_block_closes_with_1000(client, key):
    with client.connect(f"/ws/echo/?key={key}") as ws:
        assert ws.close_code is None
    assert ws.close_code == 1000
    assert on_close(key) == (1000, "")


def test_server_close_raises_connection_closed(client, key):
    with client.connect(f"/ws/echo/?key={key}") as ws:
        ws.send("close 4000")
        with pytest.raises(ConnectionClosed) as closed:
            ws.receive()
        assert (closed.value.code, closed.value.reason) == (4000, "server")
        assert (ws.close_code, ws.close_reason) == (4000, "server")
        with pytest.raises(ConnectionClosed) as again:
            ws.receive()
        assert again.value.code == 4000
        with pytest.raises(ConnectionClosed) as send:
            ws.send("too late")
        assert send.value.code == 4000
    assert on_close(key) == (4000, "server")
    assert ws.close_code == 4000  # leaving the block does not overwrite the server's code


def test_view_that_returns_closes_with_1000(client):
    with client.connect("/ws/send-then-return/") as ws:
        assert ws.receive() == "first"
        assert ws.receive() == b"second"
        with pytest.raises(ConnectionClosed) as closed:
            ws.receive()
    assert closed.value.code == CloseCode.NORMAL_CLOSURE


def test_on_error_closes_with_1011(client, key):
    with client.connect(f"/ws/echo/?key={key}") as ws:
        ws.send("boom")
        with pytest.raises(ConnectionClosed) as closed:
            ws.receive()
    assert (closed.value.code, closed.value.reason) == (1011, "internal error")
    assert on_close(key) == (1011, "internal error")


def test_async_on_error_closes_with_1011(client, key):
    with client.connect(f"/ws/async-echo/?key={key}") as ws:
        ws.send("boom")
        with pytest.raises(ConnectionClosed) as closed:
            ws.receive()
    assert closed.value.code == 1011
    assert on_close(key) == (1011, "internal error")


@override_settings(WEBSOCKET_MAX_MESSAGE_SIZE=16)
def test_oversize_message_closes_with_1009(client, key):
    with client.connect(f"/ws/echo/?key={key}") as ws:
        ws.send("x" * 16)
        assert ws.receive() == "x" * 16
        ws.send(b"x" * 17)
        with pytest.raises(ConnectionClosed) as closed:
            ws.receive()
    assert closed.value.code == 1009
    assert on_close(key)[0] == 1009


def test_bad_json_closes_with_1007(client, key):
    with client.connect(f"/ws/json/?key={key}") as ws:
        ws.send("{not json")
        with pytest.raises(ConnectionClosed) as closed:
            ws.receive()
    assert (closed.value.code, closed.value.reason) == (1007, "invalid json")
    assert on_close(key) == (1007, "invalid json")


# --- refusals ------------------------------------------------------------------------------------


def test_bad_version_is_refused_with_400(client):
    with pytest.raises(HandshakeRejected) as rejected:
        client.connect("/ws/echo/", headers={"Sec-WebSocket-Version": "8"})
    assert rejected.value.status_code == 400
    assert rejected.value.response["Sec-WebSocket-Version"] == "13"
    assert isinstance(rejected.value, WebSocketError)
    assert "400" in str(rejected.value)


def test_websocket_to_a_plain_view_is_refused_with_400(client):
    with pytest.raises(HandshakeRejected) as rejected:
        client.connect("/session/")
    assert rejected.value.status_code == 400


def test_foreign_origin_is_refused_with_403(client):
    with pytest.raises(HandshakeRejected) as rejected:
        client.connect("/ws/echo/", headers={"Origin": "http://evil.example"})
    assert rejected.value.status_code == 403
    with client.connect("/ws/echo/", headers={"Origin": "http://testserver"}) as ws:
        ws.send("same origin")
        assert ws.receive() == "same origin"
    with (
        override_settings(WEBSOCKET_ALLOWED_ORIGINS=["http://evil.example"]),
        client.connect("/ws/echo/", headers={"Origin": "http://evil.example"}) as ws,
    ):
        ws.send("allowed now")
        assert ws.receive() == "allowed now"


def test_unknown_path_is_refused_with_404(client):
    with pytest.raises(HandshakeRejected) as rejected:
        client.connect("/ws/nowhere/")
    assert rejected.value.status_code == 404


def test_plain_request_gets_426(client):
    assert client.get("/ws/echo/").status_code == 426
    assert client.post("/ws/echo/").status_code == 426


def test_refusals_in_dispatch(client):
    for refuse, status in (("permission", 403), ("404", 404), ("response", 418)):
        with pytest.raises(HandshakeRejected) as rejected:
            client.connect(f"/ws/refusing/?refuse={refuse}")
        assert rejected.value.status_code == status


def test_exception_before_the_handshake_is_raised_as_django_client_does():
    with pytest.raises(RuntimeError, match="crash before the handshake"):
        WebSocketClient().connect("/ws/refusing/?refuse=crash")
    with pytest.raises(HandshakeRejected) as rejected:
        WebSocketClient(raise_request_exception=False).connect("/ws/refusing/?refuse=crash")
    assert rejected.value.status_code == 500


def test_over_max_connections_is_refused_with_503(client):
    with override_settings(WEBSOCKET_MAX_CONNECTIONS=len(registry) + 1):
        first = client.connect("/ws/echo/")
        with pytest.raises(HandshakeRejected) as rejected:
            client.connect("/ws/echo/")
        assert rejected.value.status_code == 503
        first.send("first is still open")
        assert first.receive() == "first is still open"
        first.close()
        with client.connect("/ws/echo/") as ws:  # its slot is free again
            ws.send("next")
            assert ws.receive() == "next"


# --- login, cookies, headers ---------------------------------------------------------------------


def test_login_required_then_force_login(client, db):
    with pytest.raises(HandshakeRejected) as rejected:
        client.connect("/ws/protected/")
    assert rejected.value.status_code == 302
    assert rejected.value.response["Location"] == "/accounts/login/?next=/ws/protected/"
    with pytest.raises(HandshakeRejected) as rejected:
        client.connect("/ws/protected-403/")
    assert rejected.value.status_code == 403

    client.force_login(User.objects.create_user("alice"))
    for path in ("/ws/protected/", "/ws/protected-403/", "/ws/async-protected/"):
        with client.connect(path) as ws:
            assert ws.receive() == "hello alice"

    client.logout()
    with pytest.raises(HandshakeRejected):
        client.connect("/ws/protected/")


@override_settings(PASSWORD_HASHERS=[FAST_HASHER])
def test_login_with_a_password(client, db):
    User.objects.create_user("bob", password="s3cret-pw")
    assert client.login(username="bob", password="s3cret-pw")
    with client.connect("/ws/protected/") as ws:
        assert ws.receive() == "hello bob"
        ws.send("echo")
        assert ws.receive() == "echo"


def test_cookies_and_session_are_carried(client, db):
    client.get("/set-cookie/?flavour=ginger&colour=red")
    with client.connect("/ws/info/") as ws:
        info = ws.receive_json()
    assert (info["flavour"], info["colour"]) == ("ginger", "red")
    client.cookies["flavour"] = "set by the test"
    with client.connect("/ws/info/") as ws:
        assert ws.receive_json()["flavour"] == "set by the test"


def test_default_and_per_call_headers_reach_the_view():
    client = WebSocketClient(headers={"X-Default": "everywhere"})
    with client.connect("/ws/info/", headers={"X-Custom": "this call"}) as ws:
        info = ws.receive_json()
    assert (info["x_default"], info["x_custom"]) == ("everywhere", "this call")
    with client.connect("/ws/info/", HTTP_X_CUSTOM="as environ") as ws:
        assert ws.receive_json()["x_custom"] == "as environ"


def test_subprotocol_selection(client):
    with client.connect("/ws/subprotocol/", subprotocols=["chat.v3", "chat.v1", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v1"
        assert ws.receive() == "chat.v1"
    with client.connect("/ws/subprotocol/", subprotocols=["other"]) as ws:
        assert ws.subprotocol is None
        assert ws.receive() == "None"
    with client.connect("/ws/subprotocol/") as ws:
        assert ws.subprotocol is None


# --- the database --------------------------------------------------------------------------------


def test_the_view_sees_the_tests_data_and_the_test_sees_the_views(client, db):
    User.objects.create_user("carol")
    with client.connect("/ws/users/") as ws:
        ws.send("list")
        assert ws.receive_json() == ["carol"]
        ws.send("create dave")
        assert ws.receive() == "dave"
    assert User.objects.filter(username="dave").exists()


# --- never a hang --------------------------------------------------------------------------------


def test_receive_timeout_names_the_timeout(client):
    with client.connect("/ws/echo/") as ws:
        with pytest.raises(TimeoutError, match=r"0\.05 s"):
            ws.receive(timeout=0.05)
        ws.send("still fine")
        assert ws.receive() == "still fine"


def test_the_clients_timeout_is_the_default_wait():
    with (
        WebSocketClient(timeout=0.05).connect("/ws/echo/") as ws,
        pytest.raises(TimeoutError, match=r"0\.05 s"),
    ):
        ws.receive()


def test_a_view_that_never_answers_the_handshake_times_out(key, release):
    with pytest.raises(TimeoutError, match=r"0\.1 s"):
        WebSocketClient().connect(f"/ws/stall/?where=dispatch&key={key}", timeout=0.1)


def test_a_view_that_does_not_return_after_the_close_times_out(key, release):
    ws = WebSocketClient().connect(f"/ws/stall/?where=close&key={key}")
    ws.timeout = 0.1  # the wait for the view to return after the close
    with pytest.raises(TimeoutError, match=r"0\.1 s"):
        ws.close()
    release.set()
    ws.close()  # now the view returns: close() waits for it (bounded) again
    assert [event["event"] for event in EVENTS[key]] == ["open", "close", "closed"]


def recorded(key, event):
    return any(e["event"] == event for e in EVENTS.get(key, []))


def test_a_view_that_accepts_after_the_handshake_timed_out_is_refused(key, release):
    """connect() gave up: a late accept is refused, so nothing stays open or counted."""
    before = len(registry)
    try:
        with pytest.raises(TimeoutError):
            WebSocketClient().connect(f"/ws/stall/?where=dispatch-accept&key={key}", timeout=0.1)
        release.set()  # the view tries to accept now, with nobody on the other side
        wait_until(lambda: recorded(key, "dispatched"), what="the late handshake")
        assert [e["status"] for e in EVENTS[key] if e["event"] == "dispatched"] == [504]
        assert not recorded(key, "open")
        assert len(registry) == before
    finally:
        registry.close_all(CloseCode.GOING_AWAY, "test cleanup", timeout=5)


def test_a_handshake_timeout_unshares_the_tests_db_connections(db, key, release):
    default = connections["default"]
    assert not default.allow_thread_sharing
    with pytest.raises(TimeoutError):
        WebSocketClient().connect(f"/ws/stall/?where=dispatch&key={key}", timeout=0.1)
    release.set()  # the view refuses (409) now and its thread ends
    wait_until(
        lambda: not default.allow_thread_sharing, timeout=1, what="the DB connection unshared"
    )
