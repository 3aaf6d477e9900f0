from django_websocket import WebSocketView


class Echo(WebSocketView):
    def on_open(self):
        self.send("welcome")  # the handshake is done: the client is connected

    def on_message(self, message):
        self.send(message)  # str for a text message, bytes for a binary one
