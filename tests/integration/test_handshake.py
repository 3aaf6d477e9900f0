"""SPEC section 6 (handshake rows) and section 5 (middleware) under runserver.

The rejection tests target ``/ws/both/`` (``csrf_exempt`` + ``accept_websocket``):
a plain request there gets ``200 both http``, so a 400 proves the upgrade itself
was judged bad (not "this view wants a WebSocket").
"""

import base64
import contextlib
import os

import pytest
from websockets.exceptions import InvalidStatus

from tests.integration.helpers import connect, http_request, retry_until
from tests.integration.rawws import RawWebSocket


def raw_upgrade(server, path="/ws/both/", **kwargs):
    with RawWebSocket(server.host, server.port) as raw:
        return raw.handshake(path, **kwargs)


def assert_plain_400(response):
    assert response.status == 400, response
    assert response.headers.get("content-type", "").startswith("text/plain"), response
    reason = response.body.decode().strip()
    assert reason, "the 400 has no reason"
    assert "\n" not in reason, f"the reason is not one line: {reason!r}"


def rejected_status(url, **kwargs):
    with pytest.raises(InvalidStatus) as rejected, connect(url, **kwargs):
        pass
    return rejected.value.response.status_code


# --- controls: the target view works both ways ---


def test_control_plain_get_to_accepting_view_is_served(server):
    assert http_request(server.http_url("/ws/both/"))[::2] == (200, b"both http")


def test_control_plain_post_to_accepting_view_is_served(server):
    status, _headers, body = http_request(server.http_url("/ws/both/"), method="POST", data=b"")
    assert (status, body) == (200, b"both http")


def test_control_valid_raw_upgrade_gets_101(server):
    response = raw_upgrade(server)
    assert response.status == 101
    assert response.headers["upgrade"].lower() == "websocket"
    assert "upgrade" in response.headers["connection"].lower()


# --- SPEC 6: 400 rows ---


def test_missing_key_gets_400_with_one_line_reason(server):
    assert_plain_400(raw_upgrade(server, headers={"Sec-WebSocket-Key": None}))


@pytest.mark.parametrize(
    "key",
    [
        "",
        "not base64 !!",
        base64.b64encode(os.urandom(8)).decode(),  # 8 bytes, not 16
        base64.b64encode(os.urandom(17)).decode(),  # 17 bytes
    ],
    ids=["empty", "not-base64", "8-bytes", "17-bytes"],
)
def test_bad_key_gets_400(server, key):
    assert_plain_400(raw_upgrade(server, headers={"Sec-WebSocket-Key": key}))


@pytest.mark.parametrize("version", ["12", "8", "14"])
def test_other_version_gets_400_with_version_13_header(server, version):
    response = raw_upgrade(server, headers={"Sec-WebSocket-Version": version})
    assert_plain_400(response)
    assert response.headers.get("sec-websocket-version") == "13", response.headers


def test_missing_version_gets_400(server):
    response = raw_upgrade(server, headers={"Sec-WebSocket-Version": None})
    assert_plain_400(response)


def test_post_upgrade_gets_400(server):
    assert_plain_400(raw_upgrade(server, method="POST"))


@pytest.mark.parametrize("connection", [None, "keep-alive"], ids=["absent", "keep-alive"])
def test_upgrade_without_connection_upgrade_gets_400(server, connection):
    assert_plain_400(raw_upgrade(server, headers={"Connection": connection}))


def test_connection_header_with_several_tokens_is_accepted(server):
    response = raw_upgrade(server, headers={"Connection": "keep-alive, Upgrade"})
    assert response.status == 101


def test_bad_upgrade_to_seed_lower_case_gets_400_not_the_http_branch(server):
    response = raw_upgrade(server, "/ws/lower/?message=X", headers={"Sec-WebSocket-Key": None})
    assert_plain_400(response)


# --- SPEC 6: origin ---


def test_foreign_origin_gets_403(server):
    assert rejected_status(server.ws_url("/ws/echo/"), origin="http://evil.example") == 403


@pytest.mark.parametrize(
    "origin", ["same", "localhost", None], ids=["same-origin", "allowed-host", "none"]
)
def test_same_origin_allowed_host_and_no_origin_are_accepted(server, origin):
    if origin == "same":
        origin = f"http://{server.host}:{server.port}"
    elif origin == "localhost":
        origin = f"http://localhost:{server.port}"
    with connect(server.ws_url("/ws/echo/"), origin=origin) as ws:
        ws.send("origin ok")
        assert ws.recv(timeout=10) == "origin ok"


def test_allowed_origins_setting_lets_a_listed_origin_in(start_server):
    server = start_server(env={"DJWS_ALLOWED_ORIGINS": "http://friend.example"})
    with connect(server.ws_url("/ws/echo/"), origin="http://friend.example") as ws:
        ws.send("friend")
        assert ws.recv(timeout=10) == "friend"
    assert rejected_status(server.ws_url("/ws/echo/"), origin="http://evil.example") == 403


# --- SPEC 6: MAX_CONNECTIONS ---


def test_max_connections_refuses_with_503_then_accepts_after_a_close(start_server):
    server = start_server(env={"DJWS_MAX_CONNECTIONS": 2})
    url = server.ws_url("/ws/echo/")
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(connect(url))
        second = stack.enter_context(connect(url))
        for ws in (first, second):
            ws.send("open")
            assert ws.recv(timeout=10) == "open"
        assert rejected_status(url) == 503
        first.close()
        assert first.close_code == 1000

        def try_connect():
            try:
                ws = connect(url)
            except InvalidStatus as rejected:
                assert rejected.response.status_code == 503
                return None
            return stack.enter_context(ws)

        third = retry_until(try_connect, what="a handshake accepted after a close")
        third.send("third")
        assert third.recv(timeout=10) == "third"
        second.send("still here")
        assert second.recv(timeout=10) == "still here"


def test_max_connections_does_not_limit_plain_http(start_server):
    server = start_server(env={"DJWS_MAX_CONNECTIONS": 1})
    with connect(server.ws_url("/ws/echo/")) as ws:
        ws.send("one")
        assert ws.recv(timeout=10) == "one"
        assert http_request(server.http_url("/plain/"))[0] == 200


# --- SPEC 5: middleware ---


def test_middleware_refuses_websocket_to_plain_view_with_400(server):
    assert rejected_status(server.ws_url("/plain/")) == 400


def test_middleware_refuses_websocket_to_undecorated_view_with_400(server):
    assert rejected_status(server.ws_url("/undecorated/")) == 400


def test_accept_websocket_attribute_works_through_middleware(server):
    with connect(server.ws_url("/ws/attribute/")) as ws:
        ws.send("attr")
        assert ws.recv(timeout=10) == "attr"
    status, _headers, body = http_request(server.http_url("/ws/attribute/"))
    assert (status, body) == (200, b"attribute http")


def test_accept_all_makes_an_undecorated_view_accept_websockets(start_server):
    server = start_server(env={"DJWS_ACCEPT_ALL": "1"})
    with connect(server.ws_url("/undecorated/")) as ws:
        ws.send("all")
        assert ws.recv(timeout=10) == "all"
    assert http_request(server.http_url("/undecorated/"))[::2] == (200, b"undecorated http")
