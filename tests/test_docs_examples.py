"""Run every code example of the docs (``docs/examples/``), as the pages show it.

The pages include these modules with ``literalinclude``, so what a reader copies is
what runs here: in process, through :class:`~django_websocket.testing.WebSocketClient`
and the URL patterns below, with no server. The "before" code of the migration guide
(dwebsocket, Channels) cannot run without those libraries and is only compiled.
"""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.test import override_settings
from django.urls import include, path

from django_websocket import ConnectionClosed, WebSocketView
from django_websocket.asgi import WebSocketASGIHandler
from django_websocket.testing import HandshakeRejected, WebSocketClient

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
QUICKSTART = EXAMPLES / "quickstart"

# The quickstart is a project of its own (``mysite`` and its app ``live``), imported
# the way its manage.py would: from its own directory.
if str(QUICKSTART) not in sys.path:
    sys.path.insert(0, str(QUICKSTART))

from live import tests as quickstart_tests  # noqa: E402

from docs.examples import testing_examples, views_guide  # noqa: E402
from docs.examples.migrating import dwebsocket_after, zero_three  # noqa: E402

# The migration guide's views, mounted as its text says.
urlpatterns = [
    path("ws/echo-once/", zero_three.echo_once),
    path("ws/lower/", zero_three.lower_case),
    path("ws/shout/", zero_three.shout),
    path("ws/echo-json/", dwebsocket_after.echo_json),
    path("ws/poll/", dwebsocket_after.poll),
    path("ws/echo-json-view/", dwebsocket_after.EchoJson.as_view()),
    path("", include("docs.examples.migrating.chat.urls")),
]

HERE = __name__
GROUPS_LANDED = hasattr(WebSocketView, "join") and hasattr(WebSocketView, "broadcast")


def receive_close(ws):
    """Read until the view closes; return its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(100):
            ws.receive()
    return closed.value.code


# --- the front page -------------------------------------------------------------------


@pytest.mark.urls("docs.examples.index_example")
def test_index_example(db):
    client = WebSocketClient()
    with client.connect("/ws/echo/") as ws:
        ws.send("hi")
        assert ws.receive() == "hi"
    with pytest.raises(HandshakeRejected) as refused:
        client.connect("/ws/shout/")
    assert refused.value.status_code == 302
    client.force_login(User.objects.create_user("ann"))
    with client.connect("/ws/shout/") as ws:
        assert ws.receive_json() == {"hello": "ann"}
        ws.send_json({"text": "hey"})
        assert ws.receive_json() == {"shout": "HEY"}


# --- the quickstart -----------------------------------------------------------------------


@override_settings(ROOT_URLCONF="mysite.urls")
class TestQuickstart(quickstart_tests.EchoTests):
    """The quickstart's own test case, against the quickstart's URLs."""


def test_quickstart_settings_pass_the_system_checks():
    """``manage.py check`` on the quickstart's settings: no W001 about the app order."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join([str(QUICKSTART), str(ROOT)])
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--settings", "mysite.settings"],
        cwd=QUICKSTART,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout, result.stdout + result.stderr


# --- the WebSocketView guide ------------------------------------------------------------

guide = pytest.mark.urls("docs.examples.views_guide")


@guide
def test_guide_hello_and_on_close(db, capsys):
    with WebSocketClient().connect("/ws/hello/ann/") as ws:
        assert ws.receive() == "hello ann"
        ws.send("shout")
        assert ws.receive() == "SHOUT"
        ws.send(b"\x00\x01\x02")
        assert ws.receive() == "3 bytes"
    assert "ann left: 1000 ''" in capsys.readouterr().out


@guide
def test_guide_commands(db):
    with WebSocketClient().connect("/ws/commands/") as ws:
        ws.send_json({"action": "look"})
        assert ws.receive_json() == {"ok": True, "got": {"action": "look"}}
        ws.send_json({"action": "quit"})
        assert receive_close(ws) == 4000
    assert (ws.close_code, ws.close_reason) == (4000, "bye")
    with WebSocketClient().connect("/ws/commands/") as ws:
        ws.send("{not json")
        assert receive_close(ws) == 1007


@guide
@pytest.mark.parametrize(
    ("offered", "selected"),
    [(["chat.v1", "chat.v2"], "chat.v1"), (["chat.v3", "chat.v2"], "chat.v2"), (None, None)],
)
def test_guide_subprotocols(db, offered, selected):
    with WebSocketClient().connect("/ws/chat/", subprotocols=offered) as ws:
        assert ws.subprotocol == selected
        assert ws.receive() == f"speaking {selected}"


@guide
def test_guide_select_subprotocol(db):
    with WebSocketClient().connect("/ws/versioned/", subprotocols=["api.v2", "x", "api.v10"]) as ws:
        assert ws.receive() == "api.v10"
    with WebSocketClient().connect("/ws/versioned/", subprotocols=["x"]) as ws:
        assert ws.receive() == "None"


@guide
def test_guide_refusing(db):
    client = WebSocketClient()
    user = User.objects.create_user("bob")
    for room, status in [("lobby", 403), ("secret", 403), ("nowhere", 404)]:
        with pytest.raises(HandshakeRejected) as refused:
            client.connect(f"/ws/rooms/{room}/")
        assert refused.value.status_code == status, room
    user.user_permissions.add(Permission.objects.get(codename="view_user"))
    client.force_login(user)
    with client.connect("/ws/rooms/lobby/") as ws:
        assert ws.receive() == "welcome to lobby, bob"
    with pytest.raises(HandshakeRejected) as refused:
        client.connect("/ws/rooms/secret/")
    assert refused.value.status_code == 403


@guide
def test_guide_on_error(db):
    with WebSocketClient().connect("/ws/tolerant/") as ws:
        ws.send_json({"numbers": [1, 2, 3]})
        assert ws.receive_json() == {"total": 6}
        ws.send_json({"numbers": [1, "two"]})
        assert ws.receive_json() == {"error": "TypeError"}
        ws.send_json({"numbers": [4]})
        assert ws.receive_json() == {"total": 4}


@guide
def test_guide_async_hooks(db):
    assert views_guide.AsyncEcho.view_is_async
    with WebSocketClient().connect("/ws/async-echo/") as ws:
        assert ws.receive() == "ready"
        ws.send("async")
        assert ws.receive() == "async"


@guide
def test_guide_per_view_settings(db):
    with WebSocketClient().connect("/ws/uploads/") as ws:
        ws.send(b"x" * 2 * 2**20)  # over the project's 1 MiB, under the view's 16 MiB
        assert ws.receive() == f"received {2 * 2**20} bytes"
    with WebSocketClient().connect("/ws/small-uploads/") as ws:
        ws.send(b"x" * 2048)
        assert receive_close(ws) == 1009


@guide
def test_guide_page_serves_http_too(db, client):
    response = client.get("/page/")
    assert response.status_code == 200
    assert client.get("/ws/commands/").status_code == 426
    with WebSocketClient().connect("/page/") as ws:
        ws.send("x")
        assert ws.receive_json() == {"echo": "x"}


# --- the groups page -------------------------------------------------------------------

groups_urls = pytest.mark.urls("docs.examples.groups_examples")


@groups_urls
def test_groups_room(db):
    client = WebSocketClient()
    with client.connect("/ws/rooms/lobby/?name=ann") as ann:
        assert ann.receive_json() == {"joined": "ann"}
        with client.connect("/ws/rooms/lobby/?name=bob") as bob:
            assert bob.receive_json() == {"joined": "bob"}
            assert ann.receive_json() == {"joined": "bob"}
            with client.connect("/ws/rooms/games/?name=eve") as eve:
                assert eve.receive_json() == {"joined": "eve"}
                bob.send_json({"text": "hi"})
                assert ann.receive_json() == {"from": "bob", "text": "hi"}
                assert bob.receive_json() == {"from": "bob", "text": "hi"}
                with pytest.raises(TimeoutError):
                    eve.receive(timeout=0.2)


@groups_urls
def test_groups_on_group_message_filters(db):
    client = WebSocketClient()
    with client.connect("/ws/quiet/lobby/?name=ann") as ann:
        assert ann.receive_json() == {"joined": "ann"}  # no "from": not filtered
        with client.connect("/ws/quiet/lobby/?name=bob") as bob:
            assert bob.receive_json() == {"joined": "bob"}
            assert ann.receive_json() == {"joined": "bob"}
            ann.send_json({"text": "hi"})
            assert bob.receive_json() == {"from": "ann", "text": "hi"}
            with pytest.raises(TimeoutError):
                ann.receive(timeout=0.2)


@groups_urls
def test_groups_announcements_from_a_plain_view(db, client):
    with WebSocketClient().connect("/ws/announcements/") as ws:
        assert client.post("/announce/", {"text": "maintenance at 5"}).status_code == 204
        assert ws.receive_json() == {"text": "maintenance at 5"}


@groups_urls
def test_groups_async_room(db):
    client = WebSocketClient()
    with client.connect("/ws/async-room/") as one, client.connect("/ws/async-room/") as two:
        one.send("hello")
        assert one.receive() == "hello"
        assert two.receive() == "hello"


# --- the testing page ---------------------------------------------------------------------

index_urls = pytest.mark.urls("docs.examples.index_example")


@index_urls
def test_testing_page_pytest_examples(db):
    testing_examples.test_echo(db)
    testing_examples.test_login_required(db)
    testing_examples.test_invalid_json_closes_with_1007(db)
    testing_examples.test_origin_refused(db)


@index_urls
def test_testing_page_plain_http(client):
    testing_examples.test_plain_http(client)


@override_settings(ROOT_URLCONF="docs.examples.index_example")
class TestTestingPageAsync(testing_examples.AsyncEchoTests):
    """The testing page's async test case."""


@override_settings(ROOT_URLCONF="docs.examples.index_example")
class TestTestingPageLiveServer(testing_examples.LiveEchoTests):
    """The testing page's live-server test case."""


# --- the migration guide ------------------------------------------------------------------

migrating = pytest.mark.urls(HERE)


@migrating
def test_zero_three_echo_once(db):
    with WebSocketClient().connect("/ws/echo-once/") as ws:
        ws.send("Hello")
        assert ws.receive() == "Hello"
        assert receive_close(ws) == 1000  # returning from the view closes


@migrating
def test_zero_three_lower_case(db, client):
    with WebSocketClient().connect("/ws/lower/") as ws:
        for message in ["HeLLo", "WORLD"]:
            ws.send(message)
            assert ws.receive() == message.lower()
    assert client.get("/ws/lower/", {"message": "HeLLo"}).content == b"hello"


@migrating
def test_zero_three_attribute_needs_the_middleware(db, client, settings):
    assert "django_websocket.middleware.WebSocketMiddleware" in settings.MIDDLEWARE
    with WebSocketClient().connect("/ws/shout/") as ws:
        ws.send("quiet")
        assert ws.receive() == "QUIET"
    assert client.get("/ws/shout/").content == b"connect with a WebSocket"


@migrating
def test_dwebsocket_after(db, client):
    with WebSocketClient().connect("/ws/echo-json/") as ws:
        ws.send('{"a": 1}')
        assert ws.receive_json() == {"echo": {"a": 1}}
    with WebSocketClient().connect("/ws/poll/") as ws:
        ws.send(b"\x01")
        assert ws.receive() == b"\x01"
    assert client.get("/ws/poll/").content == b"connect with a WebSocket"
    with WebSocketClient().connect("/ws/echo-json-view/") as ws:
        ws.send_json([1, 2])
        assert ws.receive_json() == {"echo": [1, 2]}


@migrating
def test_channels_after_echo(db):
    client = WebSocketClient()
    with pytest.raises(HandshakeRejected) as refused:
        client.connect("/ws/echo/")
    assert refused.value.status_code == 403
    client.force_login(User.objects.create_user("ann"))
    with client.connect("/ws/echo/") as ws:
        assert ws.receive_json() == {"hello": "ann"}
        ws.send_json({"x": [1]})
        assert ws.receive_json() == {"x": [1]}


@migrating
@pytest.mark.skipif(not GROUPS_LANDED, reason="WebSocketView.join/broadcast not there yet")
def test_channels_after_chat(db):
    client = WebSocketClient()
    with (
        client.connect("/ws/chat/lobby/") as alice,
        client.connect("/ws/chat/lobby/") as bob,
        client.connect("/ws/chat/games/") as carol,
    ):
        alice.send_json({"message": "hi"})
        assert alice.receive_json() == {"message": "hi"}
        assert bob.receive_json() == {"message": "hi"}
        with pytest.raises(TimeoutError):
            carol.receive(timeout=0.2)


def test_channels_after_asgi():
    module = importlib.import_module("docs.examples.migrating.asgi")
    assert isinstance(module.application, WebSocketASGIHandler)


@pytest.mark.parametrize(
    "name",
    [
        "migrating/dwebsocket_before.py",
        "migrating/channels_before/consumers.py",
        "migrating/channels_before/routing.py",
        "migrating/channels_before/asgi.py",
    ],
)
def test_before_code_compiles(name):
    source = (EXAMPLES / name).read_text()
    compile(source, name, "exec")
