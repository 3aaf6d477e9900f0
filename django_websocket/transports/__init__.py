"""Transports move bytes (WSGI) or events (ASGI) between a server and the core.

They hold no WebSocket semantics: see :mod:`django_websocket.transports.base` for
the interface the core drives.
"""

__all__: list[str] = []
