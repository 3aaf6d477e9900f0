"""Channels echoes: ``AsyncWebsocketConsumer`` and the sync ``WebsocketConsumer``."""

from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer


class AsyncEcho(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)


class SyncEcho(WebsocketConsumer):
    def receive(self, text_data=None, bytes_data=None):
        self.send(text_data=text_data, bytes_data=bytes_data)
