"""Chat rooms: a page per room (``/chat/<room>/``) and its WebSocket (``/ws/chat/<room>/``).

The socket speaks JSON both ways. The browser sends ``{"text": "..."}``; it receives

* ``{"type": "history", "messages": [...]}`` once connected (the last 50 messages),
* ``{"type": "message", "id", "user", "text", "time"}`` for each new message,
* ``{"type": "presence", "users": [...], "count": n}`` when someone enters or leaves,
* ``{"type": "error", "error": "..."}`` when what it sent was not a message.

Every connection to a room joins the group ``chat-<room>``. A new message is saved,
then broadcast to the group, which delivers it to every connection of the room, in
every server process sharing the broker (``WEBSOCKET_BROKER_URL``).

Who is in the room is known without any shared state, by a group broadcast on join
and leave: a new connection announces itself (``hello``); each connection already
there answers (``here``), so the newcomer learns who was there first; a connection
that closes says ``bye``. Each connection keeps its own list from what it heard and
sends it to its browser whenever it changes. This works as well across processes
(Redis) as in one, and nothing is left behind when a server stops.
"""

import json
import uuid

from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import redirect, render
from django.utils.text import slugify

from django_websocket import WebSocketView

from .models import MAX_LENGTH, Message


@login_required
def room(request, room):
    """The chat page; the browser opens the room's WebSocket from it."""
    return render(request, "chat/room.html", {"room": room})


def go_to_room(request):
    """Open the room typed in the home page's form (``/chat/?room=Tea Time``)."""
    name = slugify(request.GET.get("room", ""))[:40] or "lobby"
    return redirect("room", room=name)


class ChatSocket(LoginRequiredMixin, WebSocketView):
    """One browser tab in one chat room."""

    encoding = "json"  # on_message receives decoded JSON; invalid JSON closes with 1007
    max_message_size = 8192
    raise_exception = True  # refuse an anonymous handshake with 403 (no login redirect)

    def on_open(self):
        self.group = "chat-" + self.kwargs["room"]
        self.username = self.request.user.get_username()
        self.id = uuid.uuid4().hex  # this connection, among all of the room's
        self.present = {self.id: self.username}  # connection id -> username
        self.join(self.group)
        history = Message.objects.recent(self.kwargs["room"])
        self.send_json({"type": "history", "messages": [m.as_json() for m in history]})
        self.send_presence()
        self.publish({"type": "hello", "id": self.id, "user": self.username})

    def on_message(self, message):
        text = message.get("text") if isinstance(message, dict) else None
        if not isinstance(text, str) or not text.strip():
            self.send_json({"type": "error", "error": 'send {"text": "a message"}'})
            return
        saved = Message.objects.create(
            room=self.kwargs["room"], user=self.request.user, text=text.strip()[:MAX_LENGTH]
        )
        self.publish({"type": "message", **saved.as_json()})

    def on_group_message(self, group, message):
        """Forward chat messages to the browser; keep the list of who is here."""
        event = json.loads(message)
        kind = event["type"]
        if kind == "message":
            self.send(message)
        elif kind in ("hello", "here"):
            if kind == "hello" and event["id"] != self.id:
                self.publish({"type": "here", "id": self.id, "user": self.username})
            if event["id"] not in self.present:
                self.present[event["id"]] = event["user"]
                self.send_presence()
        elif kind == "bye" and self.present.pop(event["id"], None) is not None:
            self.send_presence()

    def on_close(self, code, reason):
        self.publish({"type": "bye", "id": self.id})

    def publish(self, event):
        """Broadcast ``event`` as JSON to every connection of the room, this one included."""
        self.broadcast(self.group, json.dumps(event))

    def send_presence(self):
        users = sorted(set(self.present.values()), key=str.casefold)
        self.send_json({"type": "presence", "users": users, "count": len(users)})
