"""``memory://``: groups within one process, no setup."""

from __future__ import annotations

from ..events import Message
from .base import Broker, check_group

__all__ = ["MemoryBroker"]


class MemoryBroker(Broker):
    """Deliver group messages to this process's members only."""

    def publish(self, group: str, message: Message) -> None:
        self.deliver_local(check_group(group), message)

    async def apublish(self, group: str, message: Message) -> None:
        self.deliver_local(check_group(group), message)
