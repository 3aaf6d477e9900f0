"""Two ways to run one scenario: the in-process test client and a real server.

A scenario is a function of a driver. Each driver writes what its client saw into
``driver.log`` as plain tuples, so the parity tests compare the two logs:

* ``("http", status, body)``: a plain HTTP GET.
* ``("open", subprotocol)`` / ``("refused", status, headers, body)``: a handshake.
* ``("message", data)``: a received message; ``("closed", code, reason)``: the
  server's close, seen by a receive.
* ``("on_close", code, reason)``: what the view's ``on_close`` was called with.

:class:`InProcess` drives :class:`~django_websocket.testing.WebSocketClient`;
:class:`Live` drives a ``runserver`` subprocess with the ``websockets`` client (and
``tests/integration/rawws.py`` for handshakes that client refuses to send).
"""

import contextlib
import hashlib
import http.cookiejar
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from websockets.exceptions import ConnectionClosed as ClientConnectionClosed
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from django_websocket import ConnectionClosed
from django_websocket.testing import HandshakeRejected, WebSocketClient
from tests.integration.rawws import RawWebSocket
from tests.testing import views

TIMEOUT = 5
#: Response headers that say something about the refusal (others are the server's own).
REFUSAL_HEADERS = ("content-type", "location", "sec-websocket-version", "upgrade")
#: Handshake headers the ``websockets`` client will not let a test change.
RAW_HEADERS = {"sec-websocket-version", "sec-websocket-key", "upgrade", "connection"}


def wait_until(predicate, timeout=TIMEOUT, what="the condition"):
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds (a bounded wait)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.005)


def summary(message):
    """Return ``message``, or a short stand-in for a long one (readable diffs)."""
    if len(message) <= 64:
        return message
    digest = hashlib.sha1(message.encode() if isinstance(message, str) else message)
    return f"<{type(message).__name__} of length {len(message)}, sha1 {digest.hexdigest()[:12]}>"


def refusal(status, headers, body):
    """Return the log entry of a refused handshake."""
    wanted = {name.lower(): value for name, value in headers if name.lower() in REFUSAL_HEADERS}
    return ("refused", status, wanted, body)


class Driver:
    """What both drivers share: the log, the key, the paths."""

    origin = None

    def __init__(self):
        self.log = []
        self.key = uuid.uuid4().hex
        self.connections = []

    def keyed(self, path):
        """Return ``path`` with ``key=`` added to its query string."""
        return f"{path}{'&' if '?' in path else '?'}key={self.key}"

    def login(self, username):
        """Log in through the ``/login/`` view (a GET any client can do)."""
        self.get(f"/login/?username={username}")

    def finish(self):
        """Close whatever the scenario left open."""
        for connection in self.connections:
            connection.dispose()


class Attempts:
    """``try_send`` / ``try_close``: log how an operation that may fail went."""

    closed_errors = ()

    def _attempt(self, label, function, *args):
        try:
            function(*args)
        except self.closed_errors as closed:
            code, reason = self.closed_facts(closed)
            self.driver.log.append((label, "connection closed", code, reason))
        except Exception:
            self.driver.log.append((label, "error"))
        else:
            self.driver.log.append((label, "ok"))

    def try_send(self, message):
        self._attempt("send", self.send, message)

    def try_close(self, code, reason=""):
        self._attempt("close", self.close, code, reason)


class InProcessConnection(Attempts):
    closed_errors = (ConnectionClosed,)

    def __init__(self, driver, ws):
        self.driver, self.ws = driver, ws

    @staticmethod
    def closed_facts(closed):
        return int(closed.code), closed.reason

    def send(self, message):
        self.ws.send(message)

    def send_json(self, obj):
        self.ws.send_json(obj)

    def receive(self):
        try:
            message = self.ws.receive(timeout=TIMEOUT)
        except ConnectionClosed as closed:
            self.driver.log.append(("closed", *self.closed_facts(closed)))
            return None
        self.driver.log.append(("message", summary(message)))
        return message

    def receive_json(self):
        message = self.receive()
        if message is not None:
            self.driver.log[-1] = ("json", json.loads(message))

    def close(self, code=1000, reason=""):
        self.ws.close(code, reason)

    def dispose(self):
        self.ws.close()


class InProcess(Driver):
    """The scenario through :class:`WebSocketClient`, no server, no socket."""

    name = "test client"
    same_origin = "http://testserver"

    def __init__(self):
        super().__init__()
        self.client = WebSocketClient(timeout=TIMEOUT)

    def get(self, path):
        response = self.client.get(path)
        self.log.append(("http", response.status_code, response.content))

    def connect(self, path, headers=None, subprotocols=None):
        try:
            ws = self.client.connect(path, headers=headers, subprotocols=subprotocols)
        except HandshakeRejected as rejected:
            response = rejected.response
            self.log.append(refusal(response.status_code, response.items(), response.content))
            return None
        self.log.append(("open", ws.subprotocol))
        connection = InProcessConnection(self, ws)
        self.connections.append(connection)
        return connection

    def wait_released(self):
        """Nothing to wait for: the test client's ``close()`` returns once the session ended."""

    def on_close(self):
        """Log the view's ``on_close``: it has run once the connection is closed."""
        facts = [e for e in views.EVENTS.get(self.key, []) if e["event"] == "close"]
        assert len(facts) == 1, f"on_close ran {len(facts)} times"
        self.log.append(("on_close", int(facts[0]["code"]), facts[0]["reason"]))


class LiveConnection(Attempts):
    closed_errors = (ClientConnectionClosed,)

    def __init__(self, driver, ws):
        self.driver, self.ws = driver, ws

    @staticmethod
    def closed_facts(closed):
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (1006, "")

    def send(self, message):
        self.ws.send(message)

    def send_json(self, obj):
        self.ws.send(json.dumps(obj))

    def receive(self):
        try:
            message = self.ws.recv(timeout=TIMEOUT)
        except ClientConnectionClosed as closed:
            self.driver.log.append(("closed", *self.closed_facts(closed)))
            return None
        self.driver.log.append(("message", summary(message)))
        return message

    def receive_json(self):
        message = self.receive()
        if message is not None:
            self.driver.log[-1] = ("json", json.loads(message))

    def close(self, code=1000, reason=""):
        self.ws.close(code, reason)

    def dispose(self):
        self.ws.close()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 302 is an outcome to compare, not a hop to follow


class Live(Driver):
    """The scenario against a real ``runserver``, over real sockets."""

    name = "runserver"

    def __init__(self, server):
        super().__init__()
        self.server = server
        self.stack = contextlib.ExitStack()
        self.same_origin = server.url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(self.cookies),
            _NoRedirects(),
        )

    def get(self, path):
        try:
            with self.opener.open(self.server.http_url(path), timeout=TIMEOUT) as response:
                self.log.append(("http", response.status, response.read()))
        except urllib.error.HTTPError as error:
            with error:
                self.log.append(("http", error.code, error.read()))

    def _headers(self, headers):
        headers = dict(headers or {})
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.cookies)
        if cookie:
            headers["Cookie"] = cookie
        return headers

    def connect(self, path, headers=None, subprotocols=None):
        headers = self._headers(headers)
        if RAW_HEADERS & {name.lower() for name in headers}:
            return self._raw_connect(path, headers)
        # Our own socket: the client does not follow a redirect then, and a 302 is
        # an outcome to compare (it raises ValueError from the InvalidStatus).
        sock = socket.create_connection((self.server.host, self.server.port), TIMEOUT)
        try:
            ws = connect(
                self.server.ws_url(path),
                sock=sock,
                additional_headers=headers,
                subprotocols=subprotocols,
                open_timeout=TIMEOUT,
                close_timeout=TIMEOUT,
                proxy=None,
            )
            ws = self.stack.enter_context(ws)  # ``with connect(...)``, as websockets wants
        except (InvalidStatus, ValueError) as error:
            rejected = error if isinstance(error, InvalidStatus) else error.__cause__
            if not isinstance(rejected, InvalidStatus):
                raise
            response = rejected.response
            self.log.append(
                refusal(response.status_code, response.headers.raw_items(), response.body)
            )
            return None
        self.log.append(("open", ws.subprotocol))
        connection = LiveConnection(self, ws)
        self.connections.append(connection)
        return connection

    def _raw_connect(self, path, headers):
        with RawWebSocket(self.server.host, self.server.port, timeout=TIMEOUT) as raw:
            raw.request(path, headers=headers)
            response = raw.read_response()
        assert response.status != 101, "rawws handshakes are for refusals only"
        self.log.append(refusal(response.status, response.headers.items(), response.body))

    def wait_released(self):
        """Wait (bounded poll) until the server counts no connection.

        The client's ``close()`` returns when the server closed the socket; the
        server gives the connection's ``MAX_CONNECTIONS`` slot back a moment later,
        after ``on_close``, so a handshake right away may still get 503.
        """

        def released():
            url = self.server.http_url("/open-connections/")
            with self.opener.open(url, timeout=TIMEOUT) as response:
                return response.read() == b"0"

        wait_until(released, what="the server released every connection")

    def on_close(self):
        """Log the view's ``on_close``, which the server records in a file (bounded poll)."""
        path = Path(self.server.events_dir) / f"{self.key}.close.json"
        wait_until(path.exists, what="on_close recorded")
        facts = json.loads(path.read_text())
        self.log.append(("on_close", facts["code"], facts["reason"]))

    def finish(self):
        with self.stack:
            super().finish()
