"""Echo endpoints: every message goes back as it came (text as text, binary as binary)."""

from django_websocket import WebSocketView


class Echo(WebSocketView):
    """A sync view: on WSGI it runs on the server's thread, on ASGI on a thread of its own."""

    def on_message(self, message):
        self.send(message)


class AsyncEcho(WebSocketView):
    """An async view: on ASGI it runs on the event loop."""

    async def on_message(self, message):
        await self.send(message)
