"""The examples of docs/groups.rst; tests/test_docs_examples.py runs them."""

import json

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from django_websocket import WebSocketView, broadcast_json


class Room(WebSocketView):
    encoding = "json"

    def on_open(self):
        self.name = self.request.GET.get("name", "anonymous")
        self.room = "room-" + self.kwargs["room"]
        self.join(self.room)  # left by itself when the connection closes
        self.broadcast(self.room, json.dumps({"joined": self.name}))

    def on_message(self, message):
        # Every member of the room gets it, in every process, this connection included.
        self.broadcast(self.room, json.dumps({"from": self.name, "text": message["text"]}))


class QuietRoom(Room):
    def on_group_message(self, group, message):
        # Called for each group message before it is sent: filter or transform it here.
        if json.loads(message).get("from") != self.name:  # not my own messages
            self.send(message)


class Announcements(WebSocketView):
    groups = ["announcements"]  # joined before on_open, for every connection


@csrf_exempt  # an example: protect it as any other POST view in real code
@require_POST
def announce(request):
    # From any code: a view, a management command, a Celery task (with a redis:// broker).
    broadcast_json("announcements", {"text": request.POST["text"]})
    return HttpResponse(status=204)


class AsyncRoom(WebSocketView):
    async def on_open(self):
        self.join("async-room")

    async def on_message(self, message):
        await self.broadcast("async-room", message)


urlpatterns = [
    path("ws/rooms/<slug:room>/", Room.as_view()),
    path("ws/quiet/<slug:room>/", QuietRoom.as_view()),
    path("ws/announcements/", Announcements.as_view()),
    path("announce/", announce),
    path("ws/async-room/", AsyncRoom.as_view()),
]
