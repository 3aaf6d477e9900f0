"""An idle view keeps no message it has handled (WebSocketView, sync and async).

A loop variable that still names the last message while the loop waits for the
next one keeps that message alive for as long as the connection stays quiet: up
to ``WEBSOCKET_MAX_MESSAGE_SIZE`` per idle connection. Measured with tracemalloc
around one large message through the in-process test client.
"""

import gc
import tracemalloc

import pytest
from django.test import override_settings

from django_websocket.testing import WebSocketClient
from tests.testing.drivers import wait_until

pytestmark = pytest.mark.urls("tests.testing.urls")

SIZE = 2**20


def traced_now():
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.mark.parametrize("path", ["/ws/echo/", "/ws/async-echo/"])
@pytest.mark.parametrize("kind", ["bytes", "str"])
def test_an_idle_view_keeps_no_message(path, kind):
    with (
        override_settings(WEBSOCKET_MAX_MESSAGE_SIZE=2 * SIZE),
        WebSocketClient().connect(path) as ws,
    ):
        ws.send("warm")
        assert ws.receive() == "warm"
        tracemalloc.start()
        try:
            before = traced_now()
            message = b"x" * SIZE if kind == "bytes" else "x" * SIZE  # traced from here
            ws.send(message)
            assert len(ws.receive()) == SIZE
            del message
            # The view echoed it; once its hook returns it waits for the next one.
            wait_until(
                lambda: traced_now() - before < SIZE // 8,
                what="the handled message freed",
            )
        finally:
            tracemalloc.stop()
