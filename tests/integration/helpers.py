"""Small client-side helpers shared by the integration tests."""

import time
import urllib.error
import urllib.request
import uuid

from websockets.sync.client import connect as _connect

# No proxy: the servers under test listen on 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

TIMEOUT = 10


def new_key():
    """Return a fresh events key for ``?key=``."""
    return uuid.uuid4().hex


def connect(url, **kwargs):
    """Open a ``websockets`` sync client connection with bounded timeouts."""
    kwargs.setdefault("open_timeout", TIMEOUT)
    kwargs.setdefault("close_timeout", TIMEOUT)
    kwargs.setdefault("proxy", None)
    return _connect(url, **kwargs)


def http_request(url, *, method="GET", data=None, headers=None, timeout=TIMEOUT):
    """Return ``(status, headers, body bytes)``; an HTTP error status is not raised."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def retry_until(function, *, timeout=TIMEOUT, interval=0.05, what="condition"):
    """Call *function* until it returns a true value or *timeout* passes.

    Returns that value; raises AssertionError with the last exception or value
    at the deadline. Polling with a deadline, not a sleep to wait for something.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = function()
        except Exception as exc:  # reported at the deadline
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout}s; last: {last!r}")
        time.sleep(interval)
