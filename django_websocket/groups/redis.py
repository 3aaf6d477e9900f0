"""``redis://host:port/db``: groups across processes and machines via Redis pub/sub.

Every process subscribes once, to a pattern covering all groups, on a listener
thread (a greenlet under gevent/eventlet), and hands each message to its own
members. Publishing uses redis-py's client (from async code, on a small thread pool).
If Redis goes away, open connections stay open; the listener logs one warning,
retries with backoff and logs again when it is back; ``broadcast`` raises
:class:`~.base.BrokerError` meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..events import Message
from .base import Broker, BrokerError, check_group

__all__ = ["RedisBroker"]

logger = logging.getLogger("django_websocket")

PREFIX = "django_websocket:group:"


def _encode(message: Message) -> bytes:
    return b"t" + message.encode("utf-8") if isinstance(message, str) else b"b" + message


def _decode(payload: bytes) -> Message:
    return payload[1:].decode("utf-8") if payload[:1] == b"t" else payload[1:]


class RedisBroker(Broker):
    """Deliver group messages through Redis pub/sub.

    Args:
        url: a redis-py URL, e.g. ``redis://127.0.0.1:6379/0``.
    """

    #: Seconds ``join`` waits for the subscription before going on (Redis down).
    subscribe_timeout = 5.0

    def __init__(self, url: str) -> None:
        super().__init__(url)
        try:
            import redis
        except ImportError as exc:
            raise ImproperlyConfigured(
                "WEBSOCKET_BROKER_URL is a redis:// URL but redis-py is not installed: "
                "pip install 'django-websocket[redis]'"
            ) from exc
        self._redis = redis
        options: dict[str, Any] = {
            "socket_connect_timeout": 5,
            "socket_timeout": 5,
            "health_check_interval": 10,
        }
        self._client = redis.Redis.from_url(url, **options)
        kwargs = self._client.connection_pool.connection_kwargs
        self._where = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="django-websocket-publish"
        )
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self._start_lock = threading.Lock()

    # -- publishing ------------------------------------------------------------

    def _unavailable(self, exc: Exception) -> BrokerError:
        return BrokerError(f"cannot broadcast: Redis at {self._where} is unavailable ({exc})")

    def publish(self, group: str, message: Message) -> None:
        channel = PREFIX + check_group(group)
        try:
            self._client.publish(channel, _encode(message))
        except self._redis.RedisError as exc:
            raise BrokerError(
                f"cannot broadcast: Redis at {self._where} is unavailable ({exc})"
            ) from exc

    async def apublish(self, group: str, message: Message) -> None:
        # On a small pool of this broker's own: an asyncio Redis client would belong
        # to one event loop, and under WSGI every async view runs on a loop of its own.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.publish, group, message)

    # -- receiving -------------------------------------------------------------

    def join(self, group: str, member: Any) -> None:
        super().join(group, member)
        self._start_listener()

    def _start_listener(self) -> None:
        with self._start_lock:
            if self._listener is not None:
                return  # running (or retrying while Redis is down): never wait again
            self._listener = threading.Thread(
                target=self._listen, name="django-websocket-redis", daemon=True
            )
            self._listener.start()
        # A first join followed at once by a broadcast must not miss it.
        self._subscribed.wait(self.subscribe_timeout)

    def _listen(self) -> None:
        backoff, lost = 0.1, False
        while not self._stop.is_set():
            pubsub = self._client.pubsub()
            try:
                pubsub.psubscribe(PREFIX + "*")
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "psubscribe":
                        self._subscribed.set()
                        if lost:
                            logger.warning(
                                "Reconnected to Redis at %s; group messages flow again.",
                                self._where,
                            )
                        backoff, lost = 0.1, False
                    elif message["type"] == "pmessage":
                        group = message["channel"][len(PREFIX) :].decode("utf-8", "replace")
                        self.deliver_local(group, _decode(message["data"]))
            except self._redis.RedisError as exc:
                self._subscribed.clear()
                if not lost:
                    logger.warning(
                        "Lost the connection to Redis at %s (%s): group messages are not "
                        "delivered until it is back; retrying.",
                        self._where,
                        exc,
                    )
                    lost = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):  # the connection is already broken
                    pubsub.close()

    def close(self) -> None:
        self._executor.shutdown(wait=False)
        self._stop.set()
        if self._listener is not None:
            self._listener.join(5)
        self._client.close()
