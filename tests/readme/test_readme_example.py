"""The README's example, as written there: a login-protected chat view and its test."""

from __future__ import annotations

import pytest
from django.contrib.auth.mixins import LoginRequiredMixin
from django.urls import path

from django_websocket import WebSocketView
from django_websocket.testing import HandshakeRejected, WebSocketClient


class Chat(LoginRequiredMixin, WebSocketView):  # refused before the handshake
    def on_open(self):
        self.join("room-" + self.kwargs["room"])

    def on_message(self, message):  # str for text, bytes for binary
        self.broadcast("room-" + self.kwargs["room"], f"{self.request.user}: {message}")


urlpatterns = [path("ws/chat/<room>/", Chat.as_view())]

pytestmark = pytest.mark.urls(__name__)


def test_chat(admin_user):
    client = WebSocketClient()
    client.force_login(admin_user)
    with client.connect("/ws/chat/lobby/") as ws:
        ws.send("hi")
        assert ws.receive() == "admin: hi"


def test_chat_reaches_every_member_and_refuses_anonymous_users(admin_user, django_user_model):
    anonymous = WebSocketClient()
    with pytest.raises(HandshakeRejected) as refused:
        anonymous.connect("/ws/chat/lobby/")
    assert refused.value.status_code == 302  # LoginRequiredMixin's redirect to the login page
    other = django_user_model.objects.create_user("bob")
    first, second = WebSocketClient(), WebSocketClient()
    first.force_login(admin_user)
    second.force_login(other)
    with first.connect("/ws/chat/lobby/") as a, second.connect("/ws/chat/lobby/") as b:
        # Each connection joins in on_open, after the handshake: its own message coming
        # back proves its on_open ran (hooks run in order on its thread).
        a.send("ping")
        assert receive_until(a, "admin: ping")
        b.send("hello")
        assert receive_until(a, "bob: hello")
        assert receive_until(b, "bob: hello")


def receive_until(ws, expected, limit=10):
    """Skip what other members said earlier; return True once ``expected`` arrives."""
    return any(ws.receive() == expected for _ in range(limit))
