"""A hand-made WebSocket client over a plain socket.

The ``websockets`` client refuses to send bad bytes (an unmasked frame, invalid
UTF-8, a reserved opcode), so the tests that need them write HTTP and frames by
hand with this module (RFC 6455 sections 4 and 5).
"""

import base64
import hashlib
import os
import socket
import struct
from dataclasses import dataclass, field

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def new_key():
    """Return a fresh ``Sec-WebSocket-Key``: base64 of 16 random bytes."""
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key):
    """Return the ``Sec-WebSocket-Accept`` the server owes for *key*."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def close_payload(code, reason=""):
    """Return the payload of a close frame."""
    return struct.pack("!H", code) + reason.encode()


def build_frame(opcode, payload=b"", *, fin=True, mask=True, rsv1=False, rsv2=False, rsv3=False):
    """Return the bytes of one frame (masked, as a client must, unless told)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0)
    first |= (0x10 if rsv3 else 0) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not mask:
        return header + payload
    masking_key = os.urandom(4)
    masked = bytes(byte ^ masking_key[i % 4] for i, byte in enumerate(payload))
    return header + masking_key + masked


@dataclass
class HTTPResponse:
    status: int
    reason: str
    headers: dict = field(default_factory=dict)  # lower-case name -> value
    body: bytes = b""


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes
    masked: bool

    @property
    def close_code(self):
        if self.opcode != OP_CLOSE:
            raise ValueError("not a close frame")
        if len(self.payload) < 2:
            return 1005
        return struct.unpack("!H", self.payload[:2])[0]

    @property
    def close_reason(self):
        return self.payload[2:].decode("utf-8", "replace")


class RawWebSocket:
    """One TCP connection, driven by hand. Every read is bounded by *timeout*."""

    def __init__(self, host, port, timeout=10.0):
        self.host = host
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self.sock.close()

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    # --- bytes ---

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self):
        """Read more bytes into the buffer; False at EOF."""
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def _take(self, size):
        while len(self.buffer) < size:
            if not self._fill():
                raise EOFError(f"eof after {len(self.buffer)} of {size} bytes")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_to_eof(self):
        """Return every byte the server sends until it closes TCP."""
        try:
            while self._fill():
                pass
        except ConnectionResetError:
            pass
        data, self.buffer = self.buffer, b""
        return data

    # --- HTTP ---

    def request(self, path, *, method="GET", headers=None, body=b""):
        """Send a request: a valid upgrade unless *headers* change it.

        A header whose value is None is left out. Returns the ``Sec-WebSocket-Key``
        that was sent (or None).
        """
        base = {
            "Host": f"{self.host}:{self.port}",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": new_key(),
            "Sec-WebSocket-Version": "13",
        }
        for name, value in (headers or {}).items():
            base[name] = value
        if body or method not in ("GET", "HEAD"):
            base.setdefault("Content-Length", str(len(body)))
        lines = [f"{method} {path} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in base.items() if value is not None]
        self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return base.get("Sec-WebSocket-Key")

    def read_response(self):
        """Read the response head (and body unless it is a 101)."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise EOFError(f"eof before the end of the response head: {self.buffer!r}")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        _version, status, *reason = status_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        response = HTTPResponse(int(status), reason[0] if reason else "", headers)
        if response.status == 101:
            return response
        if "content-length" in headers:
            response.body = self._take(int(headers["content-length"]))
        else:
            response.body = self.read_to_eof()
        return response

    def handshake(self, path, **kwargs):
        """Send an upgrade and return the response; check the accept on a 101."""
        key = self.request(path, **kwargs)
        response = self.read_response()
        if response.status == 101 and key is not None:
            assert response.headers.get("sec-websocket-accept") == accept_for(key)
        return response

    # --- frames ---

    def send_frame(self, opcode, payload=b"", **kwargs):
        self.send_raw(build_frame(opcode, payload, **kwargs))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode())

    def send_close(self, code=1000, reason=""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    def read_frame(self):
        """Read one frame from the server (raises EOFError at EOF)."""
        first, second = self._take(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._take(8))
        masked = bool(second & 0x80)
        masking_key = self._take(4) if masked else b""
        payload = self._take(length)
        if masked:
            payload = bytes(byte ^ masking_key[i % 4] for i, byte in enumerate(payload))
        return Frame(bool(first & 0x80), (first >> 4) & 0x7, first & 0x0F, payload, masked)

    def read_until_close(self):
        """Read frames up to and including a close frame; return (others, close)."""
        others = []
        while True:
            frame = self.read_frame()
            if frame.opcode == OP_CLOSE:
                return others, frame
            others.append(frame)
