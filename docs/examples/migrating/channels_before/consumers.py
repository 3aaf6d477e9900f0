# consumers.py with Channels, for docs/migrating.rst. Not run: Channels is not installed.
import json

from asgiref.sync import async_to_sync
from channels.generic.websocket import JsonWebsocketConsumer, WebsocketConsumer


class EchoConsumer(JsonWebsocketConsumer):
    def connect(self):
        if not self.scope["user"].is_authenticated:
            self.close()  # before accept(): the handshake is refused (403)
            return
        self.accept()
        self.send_json({"hello": self.scope["user"].username})

    def receive_json(self, content):
        self.send_json(content)

    def disconnect(self, close_code):
        pass


class ChatConsumer(WebsocketConsumer):
    def connect(self):
        self.room = "chat_" + self.scope["url_route"]["kwargs"]["room"]
        async_to_sync(self.channel_layer.group_add)(self.room, self.channel_name)
        self.accept()

    def disconnect(self, close_code):
        async_to_sync(self.channel_layer.group_discard)(self.room, self.channel_name)

    def receive(self, text_data=None, bytes_data=None):
        message = json.loads(text_data)["message"]
        async_to_sync(self.channel_layer.group_send)(
            self.room, {"type": "chat.message", "message": message}
        )

    def chat_message(self, event):
        self.send(text_data=json.dumps({"message": event["message"]}))
