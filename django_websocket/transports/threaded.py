"""An :class:`~.base.AsyncTransport` over a blocking :class:`~.base.Transport`.

It lets ``async def`` views run on WSGI servers: Django runs them on an event loop
of their own, and each blocking call here runs in a worker thread so that loop
stays responsive.
"""

from __future__ import annotations

import asyncio

from ..events import Event, Message
from .base import Transport

__all__ = ["ThreadedTransport"]


class ThreadedTransport:
    """Await a blocking transport's calls in worker threads."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        transport.enable_wake()  # so that wake() can interrupt a receive in its thread

    async def receive(self, timeout: float | None) -> Event | None:
        return await asyncio.to_thread(self.transport.receive, timeout)

    def wake(self) -> None:
        self.transport.wake()

    async def send(self, message: Message) -> None:
        await asyncio.to_thread(self.transport.send, message)

    async def send_close(self, code: int, reason: str) -> None:
        await asyncio.to_thread(self.transport.send_close, code, reason)

    async def ping(self, data: bytes) -> bool:
        return await asyncio.to_thread(self.transport.ping, data)

    async def abort(self) -> None:
        self.transport.abort()

    async def finish(self, timeout: float | None) -> None:
        await asyncio.to_thread(self.transport.finish, timeout)
