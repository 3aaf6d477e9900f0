"""Views of the groups test project: group members, sync and async, and HTTP senders.

A member (``/ws/sync/<group>/`` or ``/ws/async/<group>/``) joins ``<group>`` and
answers ``"joined"``; then each text message it gets is a command:

==================  ==========================================================
``ping``            answer ``pong`` (the connection still works)
``bcast:TEXT``      broadcast ``TEXT`` to the group (``error:...`` if it fails)
``bcastb:TEXT``     broadcast ``TEXT`` as bytes
``join:G``          join ``G`` too, answer ``joined:G``
``leave:G``         leave ``G``, answer ``left:G``
``quit``            close the connection (1000) from the server side
anything else       answer ``echo:...``
==================  ==========================================================
"""

import asyncio
import gc
import os
import sys

from django.http import HttpResponse

from django_websocket import BrokerError, WebSocketView, abroadcast, broadcast
from django_websocket.groups import get_broker


def _payloads(request):
    """The messages ``/broadcast/`` sends: ``?text=`` once, or ``count`` padded to ``size``."""
    text = request.GET["text"]
    count = int(request.GET.get("count", "1"))
    size = int(request.GET.get("size", "0"))
    binary = request.GET.get("binary") == "1"
    for index in range(count):
        message = text if count == 1 and not size else f"{text}:{index}:"
        message = message.ljust(size, ".")
        yield message.encode() if binary else message


def broadcast_view(request):
    """Broadcast from a plain (sync) HTTP view; 503 with the reason if the broker is down."""
    group = request.GET["group"]
    sent = 0
    try:
        for message in _payloads(request):
            broadcast(group, message)
            sent += 1
    except BrokerError as exc:
        return HttpResponse(f"{exc}\n", status=503, content_type="text/plain")
    return HttpResponse(f"sent {sent}\n", content_type="text/plain")


async def abroadcast_view(request):
    """Broadcast from an ``async def`` HTTP view with ``abroadcast``."""
    group = request.GET["group"]
    sent = 0
    try:
        for message in _payloads(request):
            await abroadcast(group, message)
            sent += 1
    except BrokerError as exc:
        return HttpResponse(f"{exc}\n", status=503, content_type="text/plain")
    return HttpResponse(f"sent {sent}\n", content_type="text/plain")


def members(request):
    """Answer how many of this process's connections are in ``?group=``."""
    return HttpResponse(str(get_broker().members(request.GET["group"])), content_type="text/plain")


def gc_freeze(request):
    """Collect, then move every object to the permanent generation (``bench/fanout.py``)."""
    gc.collect()
    gc.freeze()
    return HttpResponse(str(gc.get_freeze_count()), content_type="text/plain")


def pid(request):
    """Answer the serving process's id (a gunicorn worker's, not the arbiter's)."""
    return HttpResponse(str(os.getpid()), content_type="text/plain")


def _log_close(view, code, reason):
    """Say in the server's log how a member's connection ended (for failure reports)."""
    group = getattr(view, "group", "?")
    print(f"member of {group} closed: {code} {reason!r}", file=sys.stderr, flush=True)


class Member(WebSocketView):
    """A sync group member driven by commands (see the module docstring)."""

    def on_close(self, code, reason):
        _log_close(self, code, reason)

    def on_open(self):
        self.group = self.kwargs["group"]
        self.join(self.group)
        self.send("joined")

    def on_message(self, message):
        if not isinstance(message, str):
            self.send(message)
            return
        command, _, argument = message.partition(":")
        if message == "ping":
            self.send("pong")
        elif command in ("bcast", "bcastb"):
            payload = argument.encode() if command == "bcastb" else argument
            try:
                self.broadcast(self.group, payload)
            except BrokerError as exc:
                self.send(f"error:{exc}")
        elif command == "join":
            self.join(argument)
            self.send(f"joined:{argument}")
        elif command == "leave":
            self.leave(argument)
            self.send(f"left:{argument}")
        elif message == "quit":
            self.close()
        else:
            self.send(f"echo:{message}")


class AsyncMember(WebSocketView):
    """:class:`Member` with ``async def`` hooks: runs on the event loop under ASGI."""

    async def on_close(self, code, reason):
        _log_close(self, code, reason)

    async def on_open(self):
        self.group = self.kwargs["group"]
        self.join(self.group)
        await self.send("joined")

    async def on_message(self, message):
        if not isinstance(message, str):
            await self.send(message)
            return
        command, _, argument = message.partition(":")
        if message == "ping":
            await self.send("pong")
        elif command in ("bcast", "bcastb"):
            payload = argument.encode() if command == "bcastb" else argument
            try:
                await self.broadcast(self.group, payload)
            except BrokerError as exc:
                await self.send(f"error:{exc}")
        elif command == "join":
            self.join(argument)
            await self.send(f"joined:{argument}")
        elif command == "leave":
            self.leave(argument)
            await self.send(f"left:{argument}")
        elif message == "quit":
            await self.close()
        else:
            await self.send(f"echo:{message}")


class Declared(WebSocketView):
    """Joins the groups of the ``groups`` attribute before ``on_open``."""

    groups = ["news", "sports"]

    def on_open(self):
        self.send("joined")


class AsyncDeclared(WebSocketView):
    """:class:`Declared`, async."""

    groups = ["news", "sports"]

    async def on_open(self):
        await self.send("joined")


class Filtered(WebSocketView):
    """Overrides ``on_group_message``: drops ``secret...``, tags and upper-cases text."""

    groups = ["news", "sports"]

    def on_open(self):
        self.send("joined")

    def on_group_message(self, group, message):
        if isinstance(message, str):
            if message.startswith("secret"):
                return
            message = f"{group}|{message.upper()}"
        self.send(message)


class AsyncFiltered(WebSocketView):
    """:class:`Filtered`, async."""

    groups = ["news", "sports"]

    async def on_open(self):
        await self.send("joined")

    async def on_group_message(self, group, message):
        if isinstance(message, str):
            if message.startswith("secret"):
                return
            message = f"{group}|{message.upper()}"
        await self.send(message)


#: In-process tests only: ``STALLS[group]`` is set to let a Stalling view go on.
STALLS = {}


class Stalling(WebSocketView):
    """A member whose ``on_group_message`` blocks until the test sets ``STALLS[group]``.

    With ``max_group_queue = 4`` it falls behind after a few broadcasts: the
    server-side picture of a client that stops reading.
    """

    max_group_queue = 4

    def on_open(self):
        self.join(self.kwargs["group"])
        self.send("joined")

    def on_group_message(self, group, message):
        STALLS[group].wait(10)
        self.send(message)


class AsyncStalling(WebSocketView):
    """:class:`Stalling`, async (the wait runs on a thread, not on the loop)."""

    max_group_queue = 4

    async def on_open(self):
        self.join(self.kwargs["group"])
        await self.send("joined")

    async def on_group_message(self, group, message):
        await asyncio.to_thread(STALLS[group].wait, 10)
        await self.send(message)
