"""Parity: the same scenarios through ``WebSocketClient`` and through a real server.

Each scenario runs twice, in process with :class:`~django_websocket.testing.WebSocketClient`
and against a ``runserver`` subprocess with the ``websockets`` client (see
``drivers.py``); both must see the same thing (statuses, refusal bodies and headers,
messages, close codes and reasons, what ``on_close`` got), and that thing is the one
SPEC.md sections 2 and 6 promise.
"""

import pytest
from django.test import override_settings

from django_websocket.connection import registry
from tests.testing.drivers import InProcess, Live, summary
from tests.testing.parity_settings import PARITY_SETTINGS

SIZE = PARITY_SETTINGS["WEBSOCKET_MAX_MESSAGE_SIZE"]
BAD_ORIGIN = "http://evil.example"

TEXT_400_VERSION = b"unsupported sec-websocket-version, only 13 is supported\n"
PLAIN = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
NOT_FOUND = (
    b'\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n'
    b"<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
    b"</body>\n</html>\n"
)
FORBIDDEN = (
    b'\n<!doctype html>\n<html lang="en">\n<head>\n  <title>403 Forbidden</title>\n</head>\n'
    b"<body>\n  <h1>403 Forbidden</h1><p></p>\n</body>\n</html>\n"
)

SCENARIOS = {}
#: Scenarios whose views raise: they run on a server whose log may hold tracebacks.
RAISING = {"error_1011", "async_error_1011"}


def scenario(*expected):
    """Register the decorated function as a scenario that must log ``expected``."""

    def register(function):
        SCENARIOS[function.__name__] = (function, list(expected))
        return function

    return register


# --- messages ---------------------------------------------------------------------------


@scenario(("open", None), ("message", "hello"), ("message", "héllo ✓"))
def echo_text(d):
    ws = d.connect("/ws/echo/")
    ws.send("hello")
    ws.receive()
    ws.send("héllo ✓")
    ws.receive()


@scenario(("open", None), ("message", b"\x00\x01\xfe\xff"), ("message", b""))
def echo_bytes(d):
    ws = d.connect("/ws/echo/")
    ws.send(b"\x00\x01\xfe\xff")
    ws.receive()
    ws.send(b"")
    ws.receive()


@scenario(("open", None), *[("message", f"m{i}") for i in range(5)])
def echo_in_order(d):
    ws = d.connect("/ws/echo/")
    for i in range(5):
        ws.send(f"m{i}")
    for _ in range(5):
        ws.receive()


@scenario(("open", None), ("message", summary("x" * SIZE)), ("message", summary(b"y" * SIZE)))
def echo_at_size_limit(d):
    ws = d.connect("/ws/echo/")
    ws.send("x" * SIZE)
    ws.receive()
    ws.send(b"y" * SIZE)
    ws.receive()


@scenario(("open", None), ("json", {"got": {"a": [1, 2.5, None], "b": "é"}}))
def json_echo(d):
    ws = d.connect("/ws/json/")
    ws.send_json({"a": [1, 2.5, None], "b": "é"})
    ws.receive_json()


@scenario(("open", None), ("message", "hi"), ("message", b"\x01"))
def function_view_echo(d):
    ws = d.connect("/ws/fn/echo/")
    ws.send("hi")
    ws.receive()
    ws.send(b"\x01")
    ws.receive()


@scenario(("http", 200, b"http"), ("open", None), ("message", "websocket"), ("message", "hi"))
def accept_websocket_both(d):
    d.get("/ws/fn/both/")
    ws = d.connect("/ws/fn/both/")
    ws.receive()
    ws.send("hi")
    ws.receive()


@scenario(("open", None), ("message", "hi"), ("message", b"\x02"))
def async_view_echo(d):
    ws = d.connect("/ws/async-echo/")
    ws.send("hi")
    ws.receive()
    ws.send(b"\x02")
    ws.receive()


@scenario(("open", None), ("message", "hi"))
def async_function_view_echo(d):
    ws = d.connect("/ws/fn/async-echo/")
    ws.send("hi")
    ws.receive()


# --- close codes ----------------------------------------------------------------------


@scenario(("open", None), ("message", "x"), ("on_close", 4001, "bye"))
def client_closes_4001(d):
    ws = d.connect(d.keyed("/ws/echo/"))
    ws.send("x")
    ws.receive()
    ws.close(4001, "bye")
    d.on_close()


@scenario(("open", None), ("on_close", 1000, ""))
def client_closes_normally(d):
    ws = d.connect(d.keyed("/ws/echo/"))
    ws.close()
    d.on_close()


@scenario(("open", None), ("closed", 4000, "server"), ("on_close", 4000, "server"))
def server_closes_4000(d):
    ws = d.connect(d.keyed("/ws/echo/"))
    ws.send("close 4000")
    ws.receive()
    d.on_close()


@scenario(("open", None), ("closed", 4000, "server"), ("on_close", 4000, "server"))
def async_server_closes_4000(d):
    ws = d.connect(d.keyed("/ws/async-echo/"))
    ws.send("close 4000")
    ws.receive()
    d.on_close()


@scenario(("open", None), ("message", "first"), ("message", b"second"), ("closed", 1000, ""))
def view_closes_1000(d):
    ws = d.connect("/ws/send-then-return/")
    ws.receive()
    ws.receive()
    ws.receive()


@scenario(("open", None), ("closed", 4003, "bye"))
def function_view_closes_4003(d):
    ws = d.connect("/ws/fn/close/?code=4003")
    ws.receive()


@scenario(
    ("open", None),
    ("closed", 4000, "server"),
    ("closed", 4000, "server"),
    ("send", "connection closed", 4000, "server"),
)
def use_after_server_close(d):
    ws = d.connect("/ws/echo/")
    ws.send("close 4000")
    ws.receive()
    ws.receive()
    ws.try_send("too late")


@scenario(("open", None), ("close", "ok"), ("send", "connection closed", 4002, "done"))
def send_after_client_close(d):
    ws = d.connect("/ws/echo/")
    ws.try_close(4002, "done")
    ws.try_send("too late")


@scenario(("open", None), ("close", "error"), ("close", "error"), ("message", "still open"))
def client_close_with_invalid_code(d):
    ws = d.connect("/ws/echo/")
    ws.try_close(1006, "reserved")
    ws.try_close(4000, "r" * 124)
    ws.send("still open")
    ws.receive()


@scenario(("open", None), ("closed", 1011, "internal error"), ("on_close", 1011, "internal error"))
def error_1011(d):
    ws = d.connect(d.keyed("/ws/echo/"))
    ws.send("boom")
    ws.receive()
    d.on_close()


@scenario(("open", None), ("closed", 1011, "internal error"), ("on_close", 1011, "internal error"))
def async_error_1011(d):
    ws = d.connect(d.keyed("/ws/async-echo/"))
    ws.send("boom")
    ws.receive()
    d.on_close()


@scenario(
    ("open", None), ("closed", 1009, "message too big"), ("on_close", 1009, "message too big")
)
def oversize_text_1009(d):
    ws = d.connect(d.keyed("/ws/echo/"))
    ws.send("x" * (SIZE + 1))
    ws.receive()
    d.on_close()


@scenario(
    ("open", None), ("closed", 1009, "message too big"), ("on_close", 1009, "message too big")
)
def oversize_bytes_1009(d):
    ws = d.connect(d.keyed("/ws/echo/"))
    ws.send(b"x" * (SIZE + 1))
    ws.receive()
    d.on_close()


@scenario(
    ("open", None), ("message", summary("é" * (SIZE // 2))), ("closed", 1009, "message too big")
)
def oversize_multibyte_text_1009(d):
    ws = d.connect("/ws/echo/")
    ws.send("é" * (SIZE // 2))  # SIZE bytes: at the limit
    ws.receive()
    ws.send("é" * (SIZE // 2 + 1))  # SIZE + 2 bytes, fewer than SIZE characters
    ws.receive()


@scenario(("open", None), ("closed", 1007, "invalid json"), ("on_close", 1007, "invalid json"))
def bad_json_1007(d):
    ws = d.connect(d.keyed("/ws/json/"))
    ws.send("{not json")
    ws.receive()
    d.on_close()


# --- subprotocols ------------------------------------------------------------------------


@scenario(("open", "chat.v1"), ("message", "chat.v1"))
def subprotocol_first_offered_supported(d):
    ws = d.connect("/ws/subprotocol/", subprotocols=["chat.v3", "chat.v1", "chat.v2"])
    ws.receive()


@scenario(("open", None), ("message", "None"))
def subprotocol_none_supported(d):
    ws = d.connect("/ws/subprotocol/", subprotocols=["other"])
    ws.receive()


@scenario(("open", None), ("message", "None"))
def subprotocol_none_offered(d):
    ws = d.connect("/ws/subprotocol/")
    ws.receive()


# --- refusals ---------------------------------------------------------------------------


@scenario(
    (
        "refused",
        400,
        {"content-type": PLAIN, "sec-websocket-version": "13"},
        TEXT_400_VERSION,
    )
)
def refuse_400_bad_version(d):
    d.connect("/ws/echo/", headers={"Sec-WebSocket-Version": "8"})


@scenario(("refused", 400, {"content-type": PLAIN}, b"invalid sec-websocket-key header\n"))
def refuse_400_bad_key(d):
    d.connect("/ws/echo/", headers={"Sec-WebSocket-Key": "not-a-key"})


@scenario(
    ("refused", 400, {"content-type": PLAIN}, b"this url does not accept websocket requests\n")
)
def refuse_400_plain_view(d):
    d.connect("/set-cookie/")


@scenario(("refused", 403, {"content-type": PLAIN}, b"origin not allowed\n"))
def refuse_403_origin(d):
    d.connect("/ws/echo/", headers={"Origin": BAD_ORIGIN})


@scenario(("open", None), ("message", "same"))
def same_origin_allowed(d):
    ws = d.connect("/ws/echo/", headers={"Origin": d.same_origin})
    ws.send("same")
    ws.receive()


@scenario(("refused", 404, {"content-type": HTML}, NOT_FOUND))
def refuse_404(d):
    d.connect("/ws/no-such-socket/")


@scenario(("http", 426, b"this url accepts websocket requests only\n"))
def http_426(d):
    d.get("/ws/echo/")


@scenario(("http", 400, b"this url accepts websocket requests only\n"))
def http_400_require_websocket(d):
    d.get("/ws/fn/echo/")


# --- login, cookies, headers ----------------------------------------------------------------


@scenario(
    (
        "refused",
        302,
        {"content-type": HTML, "location": "/accounts/login/?next=/ws/protected/"},
        b"",
    )
)
def login_required_302(d):
    d.connect("/ws/protected/")


@scenario(("refused", 403, {"content-type": HTML}, FORBIDDEN))
def login_required_403(d):
    d.connect("/ws/protected-403/")


@scenario(
    ("http", 200, b"logged in as alice"),
    ("open", None),
    ("message", "hello alice"),
    ("message", "again"),
    ("open", None),
    ("message", "hello alice"),
)
def login_then_accepted(d):
    d.login("alice")
    ws = d.connect("/ws/protected/")
    ws.receive()
    ws.send("again")
    ws.receive()
    ws = d.connect("/ws/protected-403/")
    ws.receive()


@scenario(
    (
        "refused",
        302,
        {"content-type": HTML, "location": "/accounts/login/?next=/ws/async-protected/"},
        b"",
    ),
    ("http", 200, b"logged in as bob"),
    ("open", None),
    ("message", "hello bob"),
)
def async_view_login_required(d):
    d.connect("/ws/async-protected/")
    d.login("bob")
    ws = d.connect("/ws/async-protected/")
    ws.receive()


@scenario(
    ("refused", 403, {"content-type": HTML}, FORBIDDEN),
    ("refused", 404, {"content-type": HTML}, NOT_FOUND),
    ("refused", 418, {"content-type": "text/plain"}, b"i am a teapot"),
    ("open", None),
    ("message", "not refused"),
)
def refuse_in_dispatch(d):
    d.connect("/ws/refusing/?refuse=permission")
    d.connect("/ws/refusing/?refuse=404")
    d.connect("/ws/refusing/?refuse=response")
    ws = d.connect("/ws/refusing/")
    ws.receive()


@scenario(("open", None), ("message", "written"), ("http", 200, b"None"))
def session_written_during_websocket_without_cookie(d):
    """A real server cannot set a cookie after the 101: a session started in a WebSocket
    view is not the client's (it has no cookie for it)."""
    ws = d.connect("/ws/session-writer/")
    ws.receive()
    ws.close()
    d.get("/session/")


@scenario(
    ("http", 200, b"cookie set"),
    ("open", None),
    (
        "json",
        {
            "x_custom": "yes",
            "x_default": None,
            "flavour": "ginger",
            "colour": "red",
            "user": "",
            "secure": False,
            "query": "1",
        },
    ),
)
def cookies_session_and_headers(d):
    d.get("/set-cookie/?flavour=ginger&colour=red")
    ws = d.connect("/ws/info/?q=1", headers={"X-Custom": "yes"})
    ws.receive_json()


# --- the tests ----------------------------------------------------------------------------


def disagreement(seen_in_process, seen_live):
    return (
        "the test client and runserver disagree:\n"
        f"  test client: {seen_in_process!r}\n"
        f"  runserver:   {seen_live!r}"
    )


def run(driver, function):
    try:
        function(driver)
    finally:
        driver.finish()
    return driver.log


@pytest.fixture
def in_process(db):
    with override_settings(**PARITY_SETTINGS):
        yield InProcess()


#: Scenarios where the test client and runserver disagree: library bugs (none known).
KNOWN_BUGS: dict[str, str] = {}


def scenario_params():
    for name in SCENARIOS:
        bug = KNOWN_BUGS.get(name)
        marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
        yield pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize("name", list(scenario_params()))
def test_parity(name, in_process, request):
    function, expected = SCENARIOS[name]
    server = request.getfixturevalue("error_server" if name in RAISING else "server")
    seen_in_process = run(in_process, function)
    seen_live = run(Live(server), function)
    assert seen_in_process == seen_live, disagreement(seen_in_process, seen_live)
    assert seen_in_process == expected


def test_parity_503_over_max_connections(in_process, start_server):
    """With one connection allowed and one open, a second handshake gets 503 on both."""
    server = start_server(env={"DJWS_MAX_CONNECTIONS": 1})

    def over_capacity(d):
        first = d.connect("/ws/echo/")
        d.connect("/ws/echo/")  # refused
        first.send("still here")
        first.receive()
        first.close()
        d.wait_released()
        third = d.connect("/ws/echo/")  # the slot is free again
        third.send("back")
        third.receive()

    with override_settings(WEBSOCKET_MAX_CONNECTIONS=len(registry) + 1):
        seen_in_process = run(in_process, over_capacity)
    seen_live = run(Live(server), over_capacity)
    assert seen_in_process == seen_live, disagreement(seen_in_process, seen_live)
    assert seen_in_process == [
        ("open", None),
        ("refused", 503, {"content-type": PLAIN}, b"too many websocket connections\n"),
        ("message", "still here"),
        ("open", None),
        ("message", "back"),
    ]
