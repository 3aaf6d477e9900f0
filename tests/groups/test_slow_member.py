"""A member that stops reading never delays the others, and memory stays bounded.

The slow client connects to a member view (sync or async, on gunicorn or uvicorn),
then never reads again: its small receive buffer and the server's socket buffer fill
up, then the view's queue of group messages (``max_group_queue``, 256 by default).
Meanwhile every other member (one of each kind on both servers) receives every
message, in order, chunk after chunk. The policy: the slow member is closed with
1013 (Try Again Later), so its process drops it from the group; the server's memory
(VmRSS) grows by far less than what was broadcast.
"""

import socket
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.groups.servers import Member

pytestmark = pytest.mark.timeout(150)

SIZE = 64 * 1024  # bytes per message: large, so that buffers fill after few of them
CHUNK = 32  # messages broadcast at once; every fast member reads them before the next
#: Messages sent in all (40 MiB per member): the slow member's socket buffers (a few
#: MiB) and its queue of 256 group messages (16 MiB) hold far fewer.
MESSAGES = 640
#: Once its queue overflowed, the slow member is closed with 1013 and, as it does not
#: answer, dropped after WEBSOCKET_CLOSE_TIMEOUT (2 s in the project's settings). This
#: bound is generous, yet far below the servers' keepalive interval (60 s, see
#: servers.KEEPALIVE), which must not be what ends it.
DROP_TIMEOUT = 15
RSS_BOUND_KIB = 100 * 1024
TRY_AGAIN_LATER = 1013


def slow_client(server, path):
    """A member whose socket has a small receive buffer, with no keepalive of its own."""
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    return Member(server, path, f"slow {server.kind}{path}", sock=sock, ping_interval=None)


def drain(member, timeout=30):
    """Read what the slow member still has coming; return (messages, close code or None)."""
    received = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            received.append(member.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        except ConnectionClosed as closed:
            return received, (closed.rcvd.code if closed.rcvd is not None else None)
        except TimeoutError:
            raise AssertionError(
                f"{member.name}: still open {timeout} s after the server dropped it "
                f"from the group; got {len(received)} messages"
            ) from None


@pytest.mark.parametrize(
    ("server_kind", "view_kind"),
    [
        ("gunicorn", "sync"),
        ("gunicorn", "async"),
        ("uvicorn", "sync"),
        ("uvicorn", "async"),
    ],
)
def test_a_slow_member_is_closed_and_never_delays_the_others(
    servers, group, server_kind, view_kind
):
    home = servers.gunicorn if server_kind == "gunicorn" else servers.uvicorn
    fast = [
        Member(server, f"/ws/{kind}/{group}/", f"{server.kind}-{kind}")
        for server in servers.all
        for kind in ("sync", "async")
    ]
    slow = slow_client(home, f"/ws/{view_kind}/{group}/")
    try:
        at_home = home.members(group)
        assert at_home == 3, at_home
        rss_before = rss_peak = home.rss_kib()
        for sent in range(0, MESSAGES, CHUNK):
            status, body = home.http(
                f"/broadcast/?group={group}&text=m{sent}&count={CHUNK}&size={SIZE}"
            )
            assert status == 200, body
            for member in fast:  # every message, in order, to every fast member
                for index in range(CHUNK):
                    message = member.recv()
                    expected = f"m{sent}:{index}:"
                    assert message.startswith(expected) and len(message) == SIZE, (
                        f"{member.name}: got {message[:40]!r}..., expected {expected!r}..."
                    )
            rss_peak = max(rss_peak, home.rss_kib())
        assert rss_peak - rss_before < RSS_BOUND_KIB, (
            f"server RSS {rss_before} -> {rss_peak} KiB while {MESSAGES * SIZE >> 20} MiB "
            f"were broadcast to each member"
        )

        # The slow member is dropped from the group while its client still reads nothing.
        deadline = time.monotonic() + DROP_TIMEOUT
        while home.members(group) != at_home - 1:
            rss_peak = max(rss_peak, home.rss_kib())
            assert time.monotonic() < deadline, (
                f"{server_kind}/{view_kind}: the slow member is still in the group "
                f"{DROP_TIMEOUT} s after {MESSAGES} messages of {SIZE} bytes (its client "
                f"reads nothing); server RSS {rss_before} -> {home.rss_kib()} KiB"
            )
            time.sleep(0.1)
        rss_after = home.rss_kib()

        # The others are still members and still served.
        for member in fast:
            member.ping()

        # What the slow client finally reads: the start of the stream, in order, then
        # the close (its code, if the close frame made it through before TCP ended).
        received, code = drain(slow)
        for position, message in enumerate(received):
            chunk, index = divmod(position, CHUNK)
            assert message.startswith(f"m{chunk * CHUNK}:{index}:"), (position, message[:40])
        print(
            f"\n{server_kind}/{view_kind}: slow member dropped; {MESSAGES} messages "
            f"({MESSAGES * SIZE >> 20} MiB per member) sent; it had read "
            f"{len(received)}; close code {code}; server RSS {rss_before} -> peak "
            f"{rss_peak}, after {rss_after} KiB (+{rss_peak - rss_before} KiB)"
        )
        assert rss_peak - rss_before < RSS_BOUND_KIB, (rss_before, rss_peak)
        # 1013, or no close frame at all if the server had to drop TCP before the close
        # frame could get past the data that fills the buffers.
        assert code in (TRY_AGAIN_LATER, None), f"the slow member was closed with {code}"
    finally:
        slow.close()
        for member in fast:
            member.close()
