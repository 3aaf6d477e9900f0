"""Redis goes away while members are connected, then comes back.

Meanwhile a broadcast fails with a clear error (``BrokerError``: an HTTP view answers
503 with it, a member's view gets it, the management command exits non-zero with it),
the WebSocket connections stay open and keep working, and once Redis is back on the
same port each server's listener resubscribes by itself: the next broadcast reaches
every member, with no restart of the Django processes.
"""

import pytest

from tests.groups.servers import Member, manage, wait_until

pytestmark = pytest.mark.timeout(120)

#: The listener retries with a backoff of at most 2 s; allow for a slow machine.
RESUBSCRIBE_TIMEOUT = 20


def test_broadcast_fails_clearly_while_redis_is_down_and_resumes_after(
    own_redis, start_servers, group
):
    pair = start_servers(own_redis.url)
    members = [
        Member(server, f"/ws/{kind}/{group}/", f"{server.kind}-{kind}")
        for server in pair.all
        for kind in ("sync", "async")
    ]
    try:
        members[0].send("bcast:before")
        for member in members:
            member.expect("before")

        own_redis.stop()
        unavailable = f"Redis at 127.0.0.1:{own_redis.port} is unavailable"

        # Plain HTTP views, sync and async, on both servers: 503 with the reason.
        for server in pair.all:
            for endpoint in ("broadcast", "abroadcast"):
                status, body = server.http(f"/{endpoint}/?group={group}&text=lost")
                assert status == 503, f"{server!r} /{endpoint}/: {status} {body}"
                assert "cannot broadcast" in body and unavailable in body, body

        # A member's own broadcast: its view catches BrokerError and tells the client.
        for member in members:
            member.send("bcast:lost")
            message = member.recv()
            assert message.startswith("error:cannot broadcast"), (member, message)
            assert unavailable in message, message

        # A separate process: the command exits non-zero with the reason.
        result = manage(own_redis.url, "broadcast_message", group, "lost")
        assert result.returncode != 0
        assert "cannot broadcast" in result.stderr and unavailable in result.stderr, result.stderr

        # The connections are still open and served.
        for member in members:
            member.ping()

        # Each listener noticed, and says so once.
        for server in pair.all:
            wait_until(
                lambda server=server: "Lost the connection to Redis" in server.log(),
                RESUBSCRIBE_TIMEOUT,
                f"{server!r} logging the lost Redis connection",
            )

        own_redis.start()
        for server in pair.all:
            wait_until(
                lambda server=server: "Reconnected to Redis" in server.log(),
                RESUBSCRIBE_TIMEOUT,
                f"{server!r} resubscribing to Redis" + server.log_tail(),
            )

        # The next broadcast of every kind reaches every member.
        status, body = pair.gunicorn.http(f"/broadcast/?group={group}&text=after+http")
        assert status == 200, body
        for member in members:
            member.expect("after http")
        members[3].send("bcast:after member")
        for member in members:
            member.expect("after member")
        result = manage(own_redis.url, "broadcast_message", group, "after command")
        assert result.returncode == 0, result.stderr
        for member in members:
            member.expect("after command")
        for server in pair.all:
            assert server.log().count("Lost the connection to Redis") == 1, server.log_tail()
    finally:
        for member in members:
            member.close()
    problems = pair.problems()
    assert not problems, "\n".join(problems)
