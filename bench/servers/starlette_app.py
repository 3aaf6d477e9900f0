"""Starlette: a ``WebSocketEndpoint`` echo, served by uvicorn (``starlette_app:app``)."""

import os

from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.routing import WebSocketRoute


class BytesEcho(WebSocketEndpoint):
    encoding = "bytes"

    async def on_receive(self, websocket, data):
        await websocket.send_bytes(data)


class TextEcho(WebSocketEndpoint):
    encoding = "text"

    async def on_receive(self, websocket, data):
        await websocket.send_text(data)


Echo = TextEcho if os.environ.get("BENCH_OPCODE") == "text" else BytesEcho
app = Starlette(routes=[WebSocketRoute("/ws/echo/", Echo)])
