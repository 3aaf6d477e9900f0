"""The ASGI entry point runs an async view's session after the middleware returned.

In process, with an in-test ASGI peer (an ``asyncio.Queue`` behind ``receive()``,
as uvicorn, daphne and hypercorn have): a cancel (the server shutting down) that
lands after the view deferred its session but before the session started must
release the connection without running any of the view's code (``on_open`` never
ran, so no ``on_close`` is owed). The view's request is Django's, over the server's
own ``websocket`` scope. tests/integration/test_asgi_sessions.py covers real servers.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings
from django.urls import get_script_prefix, path
from django.utils import translation

import django_websocket.views
import django_websocket.workers
from django_websocket import WebSocketView
from django_websocket.asgi import get_asgi_application
from django_websocket.connection import registry
from django_websocket.workers import Workers

pytestmark = pytest.mark.asyncio


class Events(list):
    """What the app did, in order; ``until()`` wakes on each new entry."""

    changed: asyncio.Event | None = None

    def append(self, item) -> None:
        super().append(item)
        if self.changed is not None:
            self.changed.set()


events: Events = Events()
sent: Events = Events()  # what the app sent to the client
gate = {"event": None}


class Recorder(WebSocketView):
    async def on_open(self):
        events.append(("open",))
        request = self.request
        events.append(("request", request.scheme, request.scope["type"], request.method))

    async def on_message(self, message):
        await self.send(message)

    async def on_close(self, code, reason):
        events.append(("close", code))


class GateMiddleware:
    """An async middleware that, once the view returned, waits for the test."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response

    async def __call__(self, request):
        response = await self.get_response(request)
        events.append(("middleware", response.status_code))
        if gate["event"] is not None:
            await gate["event"].wait()
        return response


step_var: contextvars.ContextVar[str] = contextvars.ContextVar("step_var", default="unset")
blocked = threading.Event()  # set by a sync hook that then waits for `unblock`
unblock = threading.Event()


async def running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


class SyncRecorder(WebSocketView):
    """A sync view: its hooks run on worker threads, its session parked between events."""

    def on_open(self):
        step_var.set("set in on_open")
        translation.activate("fr")  # an asgiref Local, tagged with this thread

    def on_message(self, message):
        if message == "block":
            blocked.set()
            unblock.wait(10)
        # Before async_to_sync, which would hand asgiref's Locals over by itself.
        language, prefix = translation.get_language(), get_script_prefix()
        on_server_loop = async_to_sync(running_loop)() is self.request.META["test.loop"]
        self.send(f"{message} {step_var.get()} {on_server_loop} {language} {prefix}")


class FreshThreads(Workers):
    """A new thread for every job; the old ones stay alive, so no thread id is reused."""

    def __init__(self) -> None:
        super().__init__(max_idle=0)
        self.release = threading.Event()
        self.done = threading.Semaphore(0)  # released by each job that returned

    def _serve(self, job) -> None:
        job()
        self.done.release()
        self.release.wait(10)


class LoopMiddleware:
    """Notes the server's loop in the request (for SyncRecorder)."""

    def __init__(self, get_response):
        self.get_response = get_response

    async def __call__(self, request):
        request.META["test.loop"] = asyncio.get_running_loop()
        return await self.get_response(request)

    sync_capable = False
    async_capable = True


class BodyReader(WebSocketView):
    async def on_open(self):
        events.append(("body", self.request.body, self.request.read()))

    async def on_close(self, code, reason):
        events.append(("close", code))


class CloserMiddleware:
    """Registers a closer on the response, as Django's own responses do for their files."""

    def __init__(self, get_response):
        self.get_response = get_response

    async def __call__(self, request):
        response = await self.get_response(request)
        response._resource_closers.append(lambda: events.append(("closer",)))
        return response


CloserMiddleware.async_capable, CloserMiddleware.sync_capable = True, False


class Member(WebSocketView):
    groups = ["deferred-lobby"]

    async def on_open(self):
        events.append(("open",))

    async def on_group_message(self, group, message):
        events.append(("group", message))
        await self.send(message)

    async def on_close(self, code, reason):
        events.append(("close", code))


class SyncMember(WebSocketView):
    groups = ["deferred-lobby"]

    def on_open(self):
        events.append(("open",))

    def on_group_message(self, group, message):
        events.append(("group", message))
        self.send(message)

    def on_close(self, code, reason):
        events.append(("close", code))


urlpatterns = [
    path("ws/", Recorder.as_view()),
    path("ws/sync/", SyncRecorder.as_view()),
    path("ws/body/", BodyReader.as_view()),
    path("ws/member/", Member.as_view()),
    path("ws/sync-member/", SyncMember.as_view()),
]

SCOPE = {
    "type": "websocket",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "scheme": "ws",
    "path": "/ws/",
    "raw_path": b"/ws/",
    "query_string": b"",
    "root_path": "",
    "headers": [
        (b"host", b"testserver"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    ],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 80),
    "subprotocols": [],
}


async def start(
    scheme: str = "ws", path: str = "/ws/", sent: list = sent, root_path: str = ""
) -> tuple[asyncio.Queue, asyncio.Task]:
    incoming: asyncio.Queue[dict] = asyncio.Queue()

    async def send(message: dict) -> None:
        sent.append(message)

    incoming.put_nowait({"type": "websocket.connect"})
    app = get_asgi_application()
    scope = dict(SCOPE, scheme=scheme, path=root_path + path, raw_path=path.encode())
    scope["root_path"] = root_path
    return incoming, asyncio.create_task(app(scope, incoming.get, send))


async def until(condition, task: asyncio.Task, what: str) -> None:
    """Wait until ``condition()`` holds; fail if the app ends first or after 10 s."""
    changed = events.changed = sent.changed = asyncio.Event()
    deadline = asyncio.get_running_loop().time() + 10
    while not condition():
        assert not task.done(), f"the app ended before: {what} ({events})"
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"not within 10 s: {what} ({events})"
        changed.clear()
        waiter = asyncio.ensure_future(changed.wait())
        await asyncio.wait({waiter, task}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()


@override_settings(
    ROOT_URLCONF=__name__, MIDDLEWARE=[f"{__name__}.GateMiddleware"], ALLOWED_HOSTS=["*"]
)
async def test_the_session_runs_after_the_middleware_returned():
    events.clear()
    gate["event"] = None
    sent.clear()
    incoming, task = await start()
    await until(lambda: ("open",) in events, task, "on_open ran")
    assert events[:3] == [("middleware", 101), ("open",), ("request", "http", "websocket", "GET")]
    incoming.put_nowait({"type": "websocket.receive", "text": "hi"})
    await until(lambda: any(m.get("text") == "hi" for m in sent), task, "the echo")
    incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 10)
    assert events[-1] == ("close", 1000)
    assert len(registry) == 0


@override_settings(
    ROOT_URLCONF=__name__, MIDDLEWARE=[f"{__name__}.GateMiddleware"], ALLOWED_HOSTS=["*"]
)
async def test_a_cancel_before_the_deferred_session_started_releases_it_unrun():
    """None of the view's code runs after the server cancelled; the slot is given back."""
    events.clear()
    gate["event"] = asyncio.Event()  # never set: the cancel lands in the middleware
    sent.clear()
    try:
        _, task = await start()
        await until(lambda: ("middleware", 101) in events, task, "the view returned")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    finally:
        gate["event"] = None
    assert events == [("middleware", 101)]  # neither on_open nor on_close
    assert {"type": "websocket.close", "code": 1001} in sent
    assert len(registry) == 0


@override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=[], ALLOWED_HOSTS=["*"])
async def test_the_request_of_a_wss_connection_is_secure():
    events.clear()
    sent.clear()
    incoming, task = await start(scheme="wss")
    await until(lambda: ("open",) in events, task, "on_open ran")
    assert ("request", "https", "websocket", "GET") in events
    incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 10)


@override_settings(
    ROOT_URLCONF=__name__, MIDDLEWARE=[f"{__name__}.LoopMiddleware"], ALLOWED_HOSTS=["*"]
)
async def test_a_sync_views_hooks_share_a_context_and_a_blocked_one_stalls_no_other(
    monkeypatch,
):
    """Every step on a new worker thread: context, Locals, loop all carried over."""
    pool = FreshThreads()
    monkeypatch.setattr(django_websocket.workers, "workers", pool)
    monkeypatch.setattr(django_websocket.views, "LINGER", 0.0)  # park after every event
    blocked.clear()
    unblock.clear()
    sent_a, sent_b = Events(), Events()
    incoming_a, task_a = await start(path="/ws/sync/", sent=sent_a, root_path="/app")
    incoming_b, task_b = await start(path="/ws/sync/", sent=sent_b, root_path="/app")
    for _ in range(2):  # both sessions opened and parked: the next steps are new threads
        assert await asyncio.to_thread(pool.done.acquire, True, 10)
    try:
        incoming_a.put_nowait({"type": "websocket.receive", "text": "block"})
        assert await asyncio.to_thread(blocked.wait, 10), "the hook did not run"
        # A's hook is blocked on its worker: B's message is answered all the same.
        incoming_b.put_nowait({"type": "websocket.receive", "text": "hi"})
        sent.changed = None
        sent_b.changed = asyncio.Event()
        reply = {"type": "websocket.send", "text": "hi set in on_open True fr /app/"}
        while reply not in sent_b:
            assert not task_b.done(), sent_b
            await asyncio.wait_for(sent_b.changed.wait(), 10)
            sent_b.changed.clear()
        assert not any(m.get("text", "").startswith("block") for m in sent_a)
    finally:
        unblock.set()
    sent_a.changed = asyncio.Event()
    reply = {"type": "websocket.send", "text": "block set in on_open True fr /app/"}
    while reply not in sent_a:
        await asyncio.wait_for(sent_a.changed.wait(), 10)
        sent_a.changed.clear()
    for incoming in (incoming_a, incoming_b):
        incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    try:
        await asyncio.wait_for(asyncio.gather(task_a, task_b), 10)
    finally:
        pool.release.set()
    assert len(registry) == 0


@override_settings(
    ROOT_URLCONF=__name__, MIDDLEWARE=[f"{__name__}.CloserMiddleware"], ALLOWED_HOSTS=["*"]
)
async def test_closers_and_request_finished_run_when_the_session_ends():
    """The response's closers wait for the session's end, then run; so does request_finished.

    Twice over: the upgrade requests share one empty body (ASGIRequest.close() closes
    its stream when a session ends), which reads as b"" for the next one too.
    """
    from django.core.signals import request_finished

    finished: list = []

    def on_finished(sender, **kwargs):
        finished.append(sender)

    request_finished.connect(on_finished)
    try:
        for _ in range(2):
            events.clear()
            sent.clear()
            finished.clear()
            incoming, task = await start(path="/ws/body/")
            await until(lambda: any(e[0] == "body" for e in events), task, "on_open ran")
            assert ("body", b"", b"") in events
            assert ("closer",) not in events and not finished, "not before the session ends"
            incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
            await asyncio.wait_for(task, 10)
            assert events[-2:] == [("close", 1000), ("closer",)]
            assert len(finished) == 1
    finally:
        request_finished.disconnect(on_finished)


def lobby_members() -> int:
    from django_websocket.groups import get_broker

    return len(get_broker()._groups.get("deferred-lobby", ()))


@pytest.mark.parametrize("url", ["/ws/member/", "/ws/sync-member/"])
@override_settings(
    ROOT_URLCONF=__name__, MIDDLEWARE=[f"{__name__}.GateMiddleware"], ALLOWED_HOSTS=["*"]
)
async def test_a_broadcast_after_the_101_reaches_a_session_not_yet_started(url):
    """The client has its 101 before Django's response path unwound: it is a member by then.

    The group message waits for ``on_open``.
    """
    from django_websocket import abroadcast

    events.clear()
    sent.clear()
    gate["event"] = asyncio.Event()
    try:
        incoming, task = await start(path=url)
        await until(lambda: ("middleware", 101) in events, task, "the view returned")
        assert {"type": "websocket.accept"} in sent, "the client has its 101"
        await abroadcast("deferred-lobby", "early")
        gate["event"].set()
        await until(lambda: ("group", "early") in events, task, "the group message")
    finally:
        gate["event"] = None
    assert events[:3] == [("middleware", 101), ("open",), ("group", "early")]
    assert any(m.get("text") == "early" for m in sent)
    incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 10)
    assert events[-1] == ("close", 1000)
    assert lobby_members() == 0


@pytest.mark.parametrize("url", ["/ws/member/", "/ws/sync-member/"])
@override_settings(
    ROOT_URLCONF=__name__, MIDDLEWARE=[f"{__name__}.GateMiddleware"], ALLOWED_HOSTS=["*"]
)
async def test_a_cancel_before_the_session_started_leaves_its_groups(url):
    events.clear()
    sent.clear()
    gate["event"] = asyncio.Event()  # never set: the cancel lands in the middleware
    try:
        _, task = await start(path=url)
        await until(lambda: ("middleware", 101) in events, task, "the view returned")
        assert lobby_members() == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    finally:
        gate["event"] = None
    assert events == [("middleware", 101)]
    assert lobby_members() == 0
    assert len(registry) == 0
