"""Validate WebSocket upgrade requests (RFC 6455 section 4.2.1). Pure functions.

Nothing here reads Django settings or touches a socket: the Django edge passes in the
request's method and headers and the configured policy, and gets back either nothing
(valid) or a :class:`~django_websocket.exceptions.HandshakeError` carrying the HTTP
status and a one-line reason to send back.

``headers`` arguments must be case-insensitive mappings, such as Django's
``request.headers`` or ``websockets.datastructures.Headers``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from django.http.request import split_domain_port, validate_host

from .exceptions import HandshakeError

__all__ = [
    "SUPPORTED_VERSION",
    "check_origin",
    "is_websocket_request",
    "offered_subprotocols",
    "select_subprotocol",
    "validate_request",
]

SUPPORTED_VERSION = "13"


def _tokens(value: str | None) -> list[str]:
    """Split a comma-separated header value into lowercase tokens."""
    if not value:
        return []
    return [token.strip().lower() for token in value.split(",") if token.strip()]


def is_websocket_request(headers: Mapping[str, str]) -> bool:
    """Tell whether the request asks to upgrade to WebSocket (``Upgrade: websocket``)."""
    return "websocket" in _tokens(headers.get("Upgrade"))


def validate_request(method: str, headers: Mapping[str, str]) -> None:
    """Check an upgrade request against RFC 6455 section 4.2.1.

    Raises:
        HandshakeError: status 400 with a one-line reason for the first problem
            found; for an unsupported version the error carries the
            ``Sec-WebSocket-Version: 13`` header the RFC asks for (section 4.4).
    """
    if method != "GET":
        raise HandshakeError(400, f"websocket upgrade requires GET, not {method[:16]}")
    if "upgrade" not in _tokens(headers.get("Connection")):
        raise HandshakeError(400, "missing 'connection: upgrade' header")
    validate_version_and_key(headers)


def validate_version_and_key(headers: Mapping[str, str]) -> None:
    """Check ``Sec-WebSocket-Version`` and ``Sec-WebSocket-Key`` (RFC 6455 4.2.1).

    Also run under ASGI, where the server routed the request already: some servers
    let through what the RFC forbids (hypercorn any key, daphne version 8).

    Raises:
        HandshakeError: 400, as :func:`validate_request`.
    """
    version = headers.get("Sec-WebSocket-Version")
    if version is None:
        raise HandshakeError(
            400,
            "missing sec-websocket-version header",
            {"Sec-WebSocket-Version": SUPPORTED_VERSION},
        )
    if version.strip() != SUPPORTED_VERSION:
        raise HandshakeError(
            400,
            "unsupported sec-websocket-version, only 13 is supported",
            {"Sec-WebSocket-Version": SUPPORTED_VERSION},
        )
    key = headers.get("Sec-WebSocket-Key")
    if key is None:
        raise HandshakeError(400, "missing sec-websocket-key header")
    try:
        raw = base64.b64decode(key.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) != 16:
        raise HandshakeError(400, "invalid sec-websocket-key header")


def _origin_matches(origin: str, pattern: str) -> bool:
    """Match an origin against ``scheme://host[:port]``, allowing ``scheme://*.domain``."""
    pattern = pattern.rstrip("/").lower()
    if pattern == "*" or origin == pattern:
        return True
    if "://*." in pattern:
        scheme, _, domain = pattern.partition("://*")
        o_scheme, _, o_netloc = origin.partition("://")
        return o_scheme == scheme and (o_netloc.endswith(domain) or o_netloc == domain[1:])
    return False


def check_origin(
    origin: str | None,
    *,
    host: str,
    allowed_origins: Sequence[str] | None,
    allowed_hosts: Sequence[str] = (),
    trusted_origins: Iterable[str] = (),
) -> None:
    """Refuse a cross-origin upgrade the policy does not allow (SPEC section 7).

    Args:
        origin: the ``Origin`` header, or ``None`` when absent (not a browser:
            always allowed, since only browsers enforce the same-origin policy).
        host: the request's ``Host`` header.
        allowed_origins: ``None`` for the default policy (same origin, hosts in
            ``allowed_hosts``, origins in ``trusted_origins``); else a list of
            origins, where ``"*"`` allows every origin.
        allowed_hosts: Django's effective ``ALLOWED_HOSTS``.
        trusted_origins: Django's ``CSRF_TRUSTED_ORIGINS``.

    Raises:
        HandshakeError: status 403.
    """
    if origin is None:
        return
    origin = origin.strip().lower()
    if allowed_origins is not None:
        if any(_origin_matches(origin, pattern) for pattern in allowed_origins):
            return
        raise HandshakeError(403, "origin not allowed")
    parts = urlsplit(origin)
    if parts.scheme in ("http", "https") and parts.netloc:
        if parts.netloc == host.strip().lower():
            return
        domain, _port = split_domain_port(parts.netloc)
        if domain and validate_host(domain, list(allowed_hosts)):
            return
        if any(_origin_matches(origin, pattern) for pattern in trusted_origins):
            return
    raise HandshakeError(403, "origin not allowed")


def offered_subprotocols(headers: Mapping[str, str]) -> list[str]:
    """Return the subprotocols the client offers, in its order of preference."""
    value = headers.get("Sec-WebSocket-Protocol") or ""
    return [token.strip() for token in value.split(",") if token.strip()]


def select_subprotocol(offered: Sequence[str], supported: Sequence[str]) -> str | None:
    """Pick the first subprotocol the client offers that the server supports."""
    for name in offered:
        if name in supported:
            return name
    return None
