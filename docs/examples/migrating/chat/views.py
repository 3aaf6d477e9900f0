# chat/views.py: the consumers of channels_before/consumers.py as django_websocket views.
import json

from django.contrib.auth.mixins import LoginRequiredMixin

from django_websocket import WebSocketView


class Echo(LoginRequiredMixin, WebSocketView):
    raise_exception = True  # refuse with 403, as the consumer did
    encoding = "json"  # on_message gets decoded JSON, like receive_json()

    def on_open(self):  # the handshake is complete already: no accept()
        self.send_json({"hello": self.request.user.username})

    def on_message(self, message):
        self.send_json(message)

    def on_close(self, code, reason):
        pass


class Chat(WebSocketView):
    encoding = "json"

    def on_open(self):
        self.room = "chat_" + self.kwargs["room"]
        self.join(self.room)  # membership ends by itself when the connection closes

    def on_message(self, message):
        # Every member gets it, this connection included; on_group_message() sends it.
        self.broadcast(self.room, json.dumps({"message": message["message"]}))
