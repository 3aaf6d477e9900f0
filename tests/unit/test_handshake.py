"""Unit tests of handshake validation (handshake.py). No settings."""

from __future__ import annotations

import pytest
from websockets.datastructures import Headers

from django_websocket.exceptions import HandshakeError
from django_websocket.handshake import (
    check_origin,
    is_websocket_request,
    offered_subprotocols,
    select_subprotocol,
    validate_request,
)

GOOD = {
    "Host": "example.com",
    "Upgrade": "websocket",
    "Connection": "keep-alive, Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def headers(**changes):
    values = dict(GOOD)
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    return Headers(values)


def refused(method="GET", **changes) -> HandshakeError:
    with pytest.raises(HandshakeError) as info:
        validate_request(method, headers(**changes))
    return info.value


def test_a_valid_request_passes():
    validate_request("GET", headers())


def test_is_websocket_request_reads_the_upgrade_token_case_insensitively():
    assert is_websocket_request(headers(Upgrade="WebSocket"))
    assert not is_websocket_request(headers(Upgrade=None))
    assert not is_websocket_request(headers(Upgrade="h2c"))


@pytest.mark.parametrize(
    ("method", "changes", "phrase"),
    [
        ("POST", {}, "requires GET"),
        ("GET", {"Connection": "keep-alive"}, "connection: upgrade"),
        ("GET", {"Connection": None}, "connection: upgrade"),
        ("GET", {"Sec-WebSocket-Key": None}, "missing sec-websocket-key"),
        ("GET", {"Sec-WebSocket-Key": "not base64!"}, "invalid sec-websocket-key"),
        ("GET", {"Sec-WebSocket-Key": "c2hvcnQ="}, "invalid sec-websocket-key"),
    ],
)
def test_malformed_requests_get_400_with_a_one_line_reason(method, changes, phrase):
    error = refused(method, **changes)
    assert error.status == 400
    assert phrase in error.reason
    assert "\n" not in error.reason


@pytest.mark.parametrize("version", ["8", "12", "14", None])
def test_other_versions_get_400_naming_version_13(version):
    error = refused(**{"Sec-WebSocket-Version": version})
    assert error.status == 400
    assert error.headers == {"Sec-WebSocket-Version": "13"}


def test_no_origin_is_allowed():
    check_origin(None, host="example.com", allowed_origins=None)


def test_same_origin_is_allowed_by_default():
    check_origin("http://example.com:8000", host="example.com:8000", allowed_origins=None)
    check_origin("https://Example.com", host="example.com", allowed_origins=None)


def test_default_policy_allows_allowed_hosts_and_csrf_trusted_origins():
    check_origin(
        "https://app.example.com",
        host="api.example.com",
        allowed_origins=None,
        allowed_hosts=[".example.com"],
    )
    check_origin(
        "https://front.other.org",
        host="api.example.com",
        allowed_origins=None,
        trusted_origins=["https://*.other.org"],
    )


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "file://", "http://example.com.evil"]
)
def test_default_policy_refuses_other_origins_with_403(origin):
    with pytest.raises(HandshakeError) as info:
        check_origin(
            origin, host="example.com", allowed_origins=None, allowed_hosts=["example.com"]
        )
    assert info.value.status == 403


def test_an_explicit_list_replaces_the_default_policy():
    check_origin("https://a.test", host="example.com", allowed_origins=["https://a.test"])
    with pytest.raises(HandshakeError):
        check_origin("http://example.com", host="example.com", allowed_origins=["https://a.test"])
    check_origin("null", host="example.com", allowed_origins=["*"])


def test_subprotocols_pick_the_clients_first_supported_choice():
    offered = offered_subprotocols(Headers({"Sec-WebSocket-Protocol": "chat.v1, chat.v2"}))
    assert offered == ["chat.v1", "chat.v2"]
    assert select_subprotocol(offered, ["chat.v2", "chat.v1"]) == "chat.v1"
    assert select_subprotocol(offered, ["other"]) is None
    assert offered_subprotocols(Headers()) == []
