"""The broker interface and this process's group membership.

A broker moves group messages between processes (or not, for ``memory://``);
whichever it is, delivery to this process's members goes through
:meth:`Broker.deliver_local`, which never blocks: each member queues the message
for its own connection (see ``WebSocketView``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections import deque
from typing import Any, Protocol

from ..events import Message
from ..exceptions import WebSocketError

__all__ = ["Broker", "BrokerError", "Member", "check_group", "check_message"]

logger = logging.getLogger("django_websocket")


class BrokerError(WebSocketError):
    """The groups backend cannot deliver a broadcast (e.g. Redis is unreachable)."""


class Member(Protocol):
    """A connection in one or more groups.

    A member served on an event loop may also have ``loop`` and
    ``enqueue(group, message)`` (called on that loop): :meth:`Broker.deliver_local`
    then hands all of a loop's members a message in one callback.
    """

    def deliver(self, group: str, message: Message) -> None:
        """Queue ``message`` for the connection; must never block."""


def check_group(group: object) -> str:
    """Return ``group`` if it is a valid group name.

    Raises:
        TypeError: not a ``str``.
        ValueError: empty or longer than 255 characters.
    """
    if not isinstance(group, str):
        raise TypeError(f"group must be str, not {type(group).__name__}")
    if not 0 < len(group) <= 255:
        raise ValueError("group name must have 1 to 255 characters")
    return group


def check_message(message: object) -> Message:
    """Return ``message`` as ``str`` or ``bytes``.

    Raises:
        TypeError: neither text nor bytes-like.
    """
    if isinstance(message, (bytearray, memoryview)):
        return bytes(message)
    if not isinstance(message, (str, bytes)):
        raise TypeError(f"message must be str or bytes, not {type(message).__name__}")
    return message


# Members of one loop handed a message per callback. Each gets a task; in chunks,
# the loop runs and frees them before the next ones are made. A thousand pending
# tasks at once would survive Python's young GC generations into the old one,
# whose full collection (~200 ms with 1,000 connections) was the fan-out's tail.
CHUNK = 64


class _LoopDelivery:
    """Hands broadcasts to one event loop's members: in order, CHUNK members a callback.

    A later broadcast never starts before an earlier one reached every member, so a
    member of two groups gets their messages in the order they were broadcast.
    """

    _of: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopDelivery] = (
        weakref.WeakKeyDictionary()
    )
    _lock = threading.Lock()

    def __init__(self) -> None:
        # No reference to the loop: it is this object's key in a WeakKeyDictionary
        # (async views under WSGI servers run on a loop per connection).
        self.pending: deque[tuple[list[Any], str, Message]] = deque()
        self.next = 0  # the next member of pending[0]
        self.busy = False  # running, or scheduled to run

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _LoopDelivery:
        with cls._lock:
            delivery = cls._of.get(loop)
            if delivery is None:
                delivery = cls._of[loop] = cls()
            return delivery

    def add(self, members: list[Any], group: str, message: Message) -> None:
        """Queue a broadcast for ``members``; on the loop."""
        self.pending.append((members, group, message))
        if not self.busy:
            self.busy = True
            self.run()

    def run(self) -> None:
        budget = CHUNK
        try:
            while self.pending and budget:
                members, group, message = self.pending[0]
                end = min(self.next + budget, len(members))
                for member in members[self.next : end]:
                    try:
                        member.enqueue(group, message)
                    except Exception:  # one broken member must not stop the others
                        logger.exception("Error delivering a message to group %r", group)
                budget -= end - self.next
                if end == len(members):
                    self.pending.popleft()
                    self.next = 0
                else:
                    self.next = end
        finally:
            if self.pending:
                asyncio.get_running_loop().call_soon(self.run)
            else:
                self.busy = False


class Broker:
    """Group membership for this process, and publishing through a backend.

    Args:
        url: the ``WEBSOCKET_BROKER_URL`` the backend was chosen by.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._groups: dict[str, set[Member]] = {}
        self._lock = threading.Lock()

    def join(self, group: str, member: Member) -> None:
        """Add ``member`` to ``group`` in this process."""
        with self._lock:
            self._groups.setdefault(check_group(group), set()).add(member)

    def leave(self, group: str, member: Member) -> None:
        """Remove ``member`` from ``group``."""
        with self._lock:
            members = self._groups.get(group)
            if members is not None:
                members.discard(member)
                if not members:
                    del self._groups[group]

    def leave_all(self, member: Member) -> None:
        """Remove ``member`` from every group (its connection closed)."""
        with self._lock:
            for group in [g for g, members in self._groups.items() if member in members]:
                self._groups[group].discard(member)
                if not self._groups[group]:
                    del self._groups[group]

    def members(self, group: str) -> int:
        """Return how many of this process's connections are in ``group``."""
        with self._lock:
            return len(self._groups.get(group, ()))

    def deliver_local(self, group: str, message: Message) -> None:
        """Hand ``message`` to every member of ``group`` in this process.

        Members on event loops get it in one callback per loop (on the caller's own
        loop, at once), not one cross-thread wake-up per member.
        """
        with self._lock:
            members = list(self._groups.get(group, ()))
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for member in members:
            loop = getattr(member, "loop", None)
            if loop is not None:
                by_loop.setdefault(loop, []).append(member)
                continue
            try:
                member.deliver(group, message)
            except Exception:  # one broken member must not stop the others
                logger.exception("Error delivering a message to group %r", group)
        if not by_loop:
            return
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, batch in by_loop.items():
            delivery = _LoopDelivery.of(loop)
            if loop is current:
                delivery.add(batch, group, message)
                continue
            # RuntimeError: that loop is closed, its connections are gone.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(delivery.add, batch, group, message)

    def publish(self, group: str, message: Message) -> None:
        """Send ``message`` to every member of ``group`` in every process."""
        raise NotImplementedError

    async def apublish(self, group: str, message: Message) -> None:
        """:meth:`publish` for async code."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the backend's resources (threads, connections)."""
