"""The examples of docs/views.rst; tests/test_docs_examples.py runs each of them."""

import json

from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.urls import path

from django_websocket import WebSocketView


class Hello(WebSocketView):
    def on_open(self):
        # self.request, self.args and self.kwargs are set, as in any class-based view.
        self.send(f"hello {self.kwargs['name']}")

    def on_message(self, message):
        if isinstance(message, bytes):
            self.send(f"{len(message)} bytes")
        else:
            self.send(message.upper())

    def on_close(self, code, reason):
        # The connection is closed already: log, clean up, but do not send.
        print(f"{self.kwargs['name']} left: {code} {reason!r}")


class Commands(WebSocketView):
    encoding = "json"  # on_message gets the decoded value; invalid JSON closes with 1007

    def on_message(self, message):
        if message.get("action") == "quit":
            self.close(4000, "bye")  # 1000, or a code of your own in 3000-4999
        else:
            self.send_json({"ok": True, "got": message})


class Chat(WebSocketView):
    subprotocols = ["chat.v2", "chat.v1"]  # the client's first offer found here wins

    def on_open(self):
        self.send(f"speaking {self.websocket.subprotocol}")


class Versioned(WebSocketView):
    def select_subprotocol(self, offered):
        # Pick the highest "api.vN" the client offers, or none.
        versions = [name for name in offered if name.startswith("api.v")]
        return max(versions, key=lambda name: int(name[5:]), default=None)

    def on_open(self):
        self.send(str(self.websocket.subprotocol))


class RoomView(PermissionRequiredMixin, WebSocketView):
    permission_required = "auth.view_user"
    raise_exception = True  # 403 rather than a redirect to the login page

    def dispatch(self, request, *args, **kwargs):
        # Runs before the handshake: whatever it raises or returns refuses it.
        if kwargs["room"] == "secret":
            raise PermissionDenied
        if kwargs["room"] not in {"lobby", "games"}:
            raise Http404("no such room")
        return super().dispatch(request, *args, **kwargs)

    def on_open(self):
        self.send(f"welcome to {self.kwargs['room']}, {self.request.user.username}")


class Tolerant(WebSocketView):
    encoding = "json"

    def on_message(self, message):
        self.send_json({"total": sum(message["numbers"])})

    def on_error(self, exc):
        # Called when a hook raised. The default logs the error and closes with 1011;
        # this one answers and keeps the connection open.
        self.send_json({"error": type(exc).__name__})


class AsyncEcho(WebSocketView):
    async def on_open(self):
        await self.send("ready")

    async def on_message(self, message):
        await self.send(message)


class Uploads(WebSocketView):
    max_message_size = 16 * 2**20  # this view takes messages up to 16 MiB
    ping_interval = 60  # seconds; the other WEBSOCKET_* settings still apply

    def on_message(self, message):
        self.send(f"received {len(message)} bytes")


class Page(WebSocketView):
    def get(self, request, *args, **kwargs):
        # With get(), a plain HTTP request is served; without it, it gets 426.
        return HttpResponse("<script>new WebSocket(location.href.replace('http', 'ws'))</script>")

    def on_message(self, message):
        self.send(json.dumps({"echo": message}))


urlpatterns = [
    path("ws/hello/<str:name>/", Hello.as_view()),
    path("ws/commands/", Commands.as_view()),
    path("ws/chat/", Chat.as_view()),
    path("ws/versioned/", Versioned.as_view()),
    path("ws/rooms/<slug:room>/", RoomView.as_view()),
    path("ws/tolerant/", Tolerant.as_view()),
    path("ws/async-echo/", AsyncEcho.as_view()),
    path("ws/uploads/", Uploads.as_view()),
    # The same view with other settings: as_view() takes the same attributes.
    path("ws/small-uploads/", Uploads.as_view(max_message_size=1024)),
    path("page/", Page.as_view()),
]
