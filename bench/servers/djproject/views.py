"""django_websocket echoes: the async and the sync ``WebSocketView``."""

from django_websocket import WebSocketView


class AsyncEcho(WebSocketView):
    async def on_message(self, message):
        await self.send(message)


class SyncEcho(WebSocketView):
    def on_message(self, message):
        self.send(message)
