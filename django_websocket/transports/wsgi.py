"""The WSGI transport: a taken-over client socket, framed by :mod:`..protocol`.

After the handshake the socket belongs to us until :meth:`SocketTransport.finish`;
the server only closes it afterwards, unless we took it (:meth:`~SocketTransport.
take_socket`, our runserver): then we close it. Reads happen on the session's
thread (no reader thread per connection), or the session parks on the reactor
between events; writes may come from any thread and are serialised.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence

from ..events import WAKE, Close, CloseCode, Event, Fifo, Message
from ..exceptions import ConnectionClosed
from ..protocol import FrameProtocol
from .reactor import reactor

__all__ = ["SocketTransport", "accept_socket"]

READ_SIZE = 65536


# getattr: eventlet's green select has no poll (nor its constants).
_POLLIN = sum(getattr(select, name, 0) for name in ("POLLIN", "POLLERR", "POLLHUP"))
_POLLOUT = sum(getattr(select, name, 0) for name in ("POLLOUT", "POLLERR", "POLLHUP"))
# What a non-blocking socket raises when it cannot go on yet; a TLS socket also
# raises SSLWantRead/SSLWantWrite (not BlockingIOError) in the middle of a record.
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class _Waiter:
    """Wait for fds to become readable (or writable); one poll object, reused.

    ``poll`` has no file-descriptor limit, unlike ``select`` (1024); under eventlet,
    whose monkey-patching removes ``poll``, its green ``select`` has no such limit.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.fd = sock.fileno()
        self._fds = [self.fd]
        poll = getattr(select, "poll", None)
        self._poller = poll() if poll is not None else None
        if self._poller is not None:
            self._poller.register(self.fd, _POLLIN)

    def add(self, fd: int) -> None:
        """Also wake up when ``fd`` (an eventfd) is readable."""
        self._fds.append(fd)
        if self._poller is not None:
            self._poller.register(fd, _POLLIN)

    def discard(self, fd: int) -> None:
        if fd in self._fds:
            self._fds.remove(fd)
            if self._poller is not None:
                self._poller.unregister(fd)

    def readable(self, timeout: float | None) -> list[int]:
        """Wait until the socket or an added fd has data or EOF; return the ready fds."""
        if self._poller is not None:
            ms = None if timeout is None else max(timeout, 0.0) * 1000
            return [fd for fd, _ in self._poller.poll(ms)]
        readable, _, _ = select.select(self._fds, [], [], timeout)
        return list(readable)

    def alone(self, timeout: float | None, *, write: bool) -> bool:
        """Wait until the socket is writable (or readable); a poll of its own, for writers.

        Writes come from any thread (groups, shutdown), while the view's thread may
        be waiting in :meth:`readable`.
        """
        poll = getattr(select, "poll", None)
        if poll is not None:
            poller = poll()
            poller.register(self.fd, _POLLOUT if write else _POLLIN)
            return bool(poller.poll(None if timeout is None else max(timeout, 0.0) * 1000))
        fds = [self.fd]
        readable, writable, _ = select.select(
            [] if write else fds, fds if write else [], [], timeout
        )
        return bool(readable or writable)


class SocketTransport:
    """Carry one WebSocket connection over a connected socket.

    Args:
        sock: the client socket, in blocking mode.
        protocol: the connection's framing, already past the opening handshake.
    """

    def __init__(
        self, sock: socket.socket, protocol: FrameProtocol, send_timeout: float | None = None
    ) -> None:
        # Non-blocking: reads wait in our poll (one syscall less than a socket
        # timeout's, which polls again) and writes time out by our own poll.
        sock.setblocking(False)
        self._sock = sock
        self._proto = protocol
        self._send_timeout = send_timeout
        self._waiter = _Waiter(sock)
        # TLS: bytes already decrypted and buffered, which poll() cannot see.
        self._tls_pending = getattr(sock, "pending", None)
        self._write_lock = threading.Lock()  # guards the protocol and socket writes
        self._events: Fifo[Event] = Fifo()
        self._eof = False
        self._write_closed = False
        self._wake_fd: int | None = None
        # A closed eventfd's number may be reused; made with the eventfd (enable_wake).
        self._wake_lock: threading.Lock | None = None
        #: Close the socket at :meth:`finish`: taken from the server (:meth:`take_socket`).
        self._owns_socket = False

    # -- writing (any thread) ----------------------------------------------

    def _flush(self) -> None:
        """Write what the protocol queued; called with the write lock held."""
        for data in self._proto.data_to_send():
            if data:
                self._sendall(data)
            elif not self._write_closed:
                # websockets asks to half-close: the server closes TCP first (RFC 6455 7.1.1).
                self._write_closed = True
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_WR)

    def _sendall(self, data: bytes) -> None:
        """Write all of ``data``; :class:`TimeoutError` if the peer takes none for a while."""
        view = memoryview(data)
        while view:
            try:
                view = view[self._sock.send(view) :]
                continue
            except ssl.SSLWantReadError:  # TLS renegotiation: the peer speaks first
                write = False
            except (BlockingIOError, ssl.SSLWantWriteError):
                write = True
            if not self._waiter.alone(self._send_timeout, write=write):
                raise TimeoutError("send timed out")

    def send(self, message: Message) -> None:
        """Send one message; raise :class:`ConnectionClosed` (1006) if the socket failed."""
        with self._write_lock:
            self._proto.send_message(message)
            try:
                self._flush()
            except TimeoutError as exc:
                # The client stopped reading (its buffers are full): drop it rather
                # than block this thread for ever; part of a frame may be written.
                self.abort()
                raise ConnectionClosed(CloseCode.ABNORMAL_CLOSURE, "send timed out") from exc
            except OSError as exc:
                self._eof = True
                raise ConnectionClosed(CloseCode.ABNORMAL_CLOSURE, "connection lost") from exc

    def send_close(self, code: int, reason: str) -> None:
        """Start the closing handshake; a socket error just ends the connection."""
        with self._write_lock:
            self._proto.send_close(code, reason)
            try:
                self._flush()
            except OSError:
                self._eof = True

    def ping(self, data: bytes) -> bool:
        """Send a ping frame for keepalive."""
        with self._write_lock:
            self._proto.send_ping(data)
            try:
                self._flush()
            except OSError:
                self._eof = True
        return True

    def abort(self) -> None:
        """Drop TCP now; the next :meth:`receive` reports 1006."""
        self._eof = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    # -- reading (the view's thread) -----------------------------------------

    def feed(self, data: bytes) -> None:
        """Process bytes read from the socket (or ``b""`` for EOF)."""
        with self._write_lock:
            self._events.extend(self._proto.receive_data(data))
            try:
                self._flush()  # pongs, close replies
            except OSError:
                self._eof = True
        if not data:
            self._eof = True

    def receive(self, timeout: float | None) -> Event | None:
        """Return the next event, or ``None`` if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._events:
            if self._eof:
                close = self._proto.close_event or Close(CloseCode.ABNORMAL_CLOSURE, "")
                self._proto.close_event = close
                return close
            if self._tls_pending is None or not self._tls_pending():
                remaining = None if deadline is None else deadline - time.monotonic()
                ready = self._waiter.readable(remaining)
                if not ready:
                    return None
                if self._wake_fd is not None and self._wake_fd in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_fd, 8)
                    if self._waiter.fd not in ready:
                        return WAKE
            try:
                data = self._sock.recv(READ_SIZE)
            except ssl.SSLWantWriteError:  # TLS renegotiation: our turn to write
                self._waiter.alone(self._send_timeout, write=True)
                continue
            except _WOULD_BLOCK:
                continue  # a false alarm, or half a TLS record so far
            except OSError:
                data = b""
            self.feed(data)
        return self._events.popleft()

    def enable_wake(self) -> None:
        """Create the eventfd that :meth:`wake` writes to and :meth:`receive` polls."""
        if self._wake_fd is None:
            self._wake_lock = self._wake_lock or threading.Lock()
            if hasattr(os, "eventfd"):
                self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            else:  # not Linux
                self._wake_fd, self._wake_write = os.pipe()
                os.set_blocking(self._wake_fd, False)
            self._waiter.add(self._wake_fd)

    def wake(self) -> None:
        """Interrupt a blocked :meth:`receive` (from any thread)."""
        lock = self._wake_lock
        if lock is None:
            return  # no eventfd: nothing waits for one
        with lock:
            if self._wake_fd is not None:
                os.write(getattr(self, "_wake_write", self._wake_fd), (1).to_bytes(8, "little"))

    def _close_wake(self) -> None:
        lock = self._wake_lock
        if lock is None:
            return
        with lock:
            if self._wake_fd is not None:
                self._waiter.discard(self._wake_fd)
                os.close(self._wake_fd)
                if hasattr(self, "_wake_write"):
                    os.close(self._wake_write)
                self._wake_fd = None

    # -- parking (our runserver: no thread waits for an idle connection) ------------

    def take_socket(self) -> bool:
        """Take the socket from the server, to be parked between events; ``False``: cannot.

        The fd moves to a socket object of ours; the server's is left detached,
        so its later ``shutdown()`` and ``close()`` do nothing. :meth:`finish`
        closes ours. Not possible for a TLS socket (its TLS state is the object's),
        nor where the reactor cannot watch the wake fd (Windows' ``select()``
        takes sockets only, and the wake fd is a pipe there).
        """
        if isinstance(self._sock, ssl.SSLSocket) or sys.platform == "win32":
            return False
        # Before the session can park: a close from another thread must wake it.
        self.enable_wake()
        with self._write_lock:  # no send on the socket object being detached
            sock = socket.socket(fileno=self._sock.detach())
            sock.setblocking(False)
            self._sock = sock
            self._owns_socket = True
        return True

    def park(self, resume: Callable[[], None], timeout: float | None = None) -> bool:
        """Have the reactor call ``resume`` at the next event, instead of a thread waiting.

        The next event: bytes or EOF on the socket, a :meth:`wake`, or ``timeout``
        seconds passing (the connection's next deadline, a keepalive ping).

        Returns:
            ``False`` when an event is there already: receive it instead.
        """
        if self._events or self._eof or (self._tls_pending is not None and self._tls_pending()):
            return False
        self.enable_wake()  # a close or post from another thread must resume us
        assert self._wake_fd is not None
        reactor.park((self._waiter.fd, self._wake_fd), resume, timeout)
        return True

    def finish(self, timeout: float | None) -> None:
        """Half-close, then wait (bounded) for the peer's FIN so TCP ends without a reset."""
        try:
            self._finish(timeout)
        finally:
            if self._owns_socket:
                self._sock.close()

    def _finish(self, timeout: float | None) -> None:
        self._close_wake()
        with self._write_lock:
            if not self._write_closed:
                self._write_closed = True
                try:
                    self._sock.shutdown(socket.SHUT_WR)
                except OSError:
                    self._eof = True
        deadline = time.monotonic() + (timeout if timeout is not None else 10.0)
        while not self._eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._waiter.readable(remaining):
                break
            try:
                if not self._sock.recv(READ_SIZE):
                    break
            except _WOULD_BLOCK:
                continue
            except OSError:
                break


def accept_socket(
    sock: socket.socket,
    *,
    path: str,
    headers: Sequence[tuple[str, str]],
    subprotocol: str | None,
    max_message_size: int | None,
    compression: str | None,
    read_buffer: bytes | Callable[[], bytes] = b"",
    send_timeout: float | None = None,
) -> SocketTransport:
    """Complete the opening handshake on ``sock`` and return its transport.

    ``read_buffer`` is what the server read past the request head, or a callable
    returning it, called once the request is accepted (before the socket is made
    non-blocking): the server's reader is then no longer needed, while a refused
    handshake leaves it for the server's next request on the connection.

    Raises:
        HandshakeError: if ``websockets`` refuses the request.
        OSError: if writing the ``101`` response fails.
    """
    protocol = FrameProtocol(max_message_size=max_message_size, compression=compression)
    protocol.accept(path, headers, subprotocol)
    if callable(read_buffer):  # accepted: the server's reader is done with
        read_buffer = read_buffer()
    # Writes that make no progress for send_timeout fail (a client that stopped reading).
    transport = SocketTransport(sock, protocol, send_timeout)
    with transport._write_lock:
        transport._flush()
    if read_buffer:
        # A client may pipeline frames behind its handshake; the server buffered them.
        transport.feed(read_buffer)
    return transport
