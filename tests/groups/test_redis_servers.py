"""Groups across processes through a real Redis: a gunicorn gthread process (``wsgi.py``
unchanged) and a uvicorn process (``get_asgi_application()``) share one Redis (and a
gunicorn gevent worker joins them in one test).

Members are connected to each server with a sync view and an async view. Every
broadcast must reach all four members, whichever process it was sent from: a member's
own message, a plain HTTP view (sync and async) on either server, or a separate plain
Python process running a management command.
"""

import pytest
import redis

from tests.groups.servers import KEEPALIVE, Member, ProjectServer, manage, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def members(servers, group):
    """Four members of ``group``: sync and async views on gunicorn and on uvicorn."""
    connected = []
    try:
        for server in servers.all:
            for kind in ("sync", "async"):
                connected.append(Member(server, f"/ws/{kind}/{group}/", f"{server.kind}-{kind}"))
        yield connected
    finally:
        for member in connected:
            member.close()


def expect_everywhere(members, message):
    for member in members:
        member.expect(message)


def test_a_member_message_reaches_every_member_on_both_servers(members):
    for index, sender in enumerate(members):
        text = f"from {sender.name} #{index}"
        sender.send(f"bcast:{text}")
        expect_everywhere(members, text)  # the sender's own connection included


def test_binary_broadcasts_stay_binary(members):
    for sender in (members[0], members[-1]):
        sender.send(f"bcastb:bytes from {sender.name}")
        expect_everywhere(members, f"bytes from {sender.name}".encode())


@pytest.mark.parametrize("endpoint", ["broadcast", "abroadcast"])
def test_a_plain_http_view_on_either_server_reaches_every_member(servers, members, group, endpoint):
    for server in servers.all:
        text = f"{endpoint} via {server.kind}"
        status, body = server.http(f"/{endpoint}/?group={group}&text={text.replace(' ', '+')}")
        assert status == 200, body + server.log_tail()
        expect_everywhere(members, text)


def test_a_management_command_in_another_process_reaches_every_member(redis_server, members, group):
    result = manage(redis_server.url, "broadcast_message", group, "from the command line")
    assert result.returncode == 0, result.stderr
    assert f"sent to {group}" in result.stdout
    expect_everywhere(members, "from the command line")

    result = manage(redis_server.url, "broadcast_message", "--binary", group, "raw")
    assert result.returncode == 0, result.stderr
    expect_everywhere(members, b"raw")


def test_only_members_receive(servers, members, group):
    """A connection in another group, or one that left, gets nothing of ``group``."""
    outsiders = [Member(server, f"/ws/async/{group}-other/", "outsider") for server in servers.all]
    leaver = Member(servers.gunicorn, f"/ws/sync/{group}/", "leaver")
    try:
        leaver.send(f"leave:{group}")
        leaver.expect(f"left:{group}")
        members[1].send("bcast:members only")
        expect_everywhere(members, "members only")
        for client in [*outsiders, leaver]:
            client.ping()  # the next thing it gets is the answer, no group message
    finally:
        for client in [*outsiders, leaver]:
            client.close()


def test_a_member_in_several_groups_gets_each_groups_messages(servers, members, group):
    extra = f"{group}-extra"
    joiner = members[3]  # uvicorn, async
    joiner.send(f"join:{extra}")
    joiner.expect(f"joined:{extra}")
    status, body = servers.gunicorn.http(f"/broadcast/?group={extra}&text=extra")
    assert status == 200, body
    joiner.expect("extra")
    for member in members[:3]:
        member.ping()  # not in the extra group: nothing came before the answer


def redis_clients(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    try:
        return len(client.client_list())
    finally:
        client.close()


@pytest.mark.parametrize("server_kind", ["gunicorn", "uvicorn"])
def test_async_broadcasts_do_not_pile_up_redis_connections(
    redis_server, servers, group, server_kind
):
    """Async code under WSGI runs on a new event loop per request (``async_to_sync``)
    or per WebSocket connection: the Redis connections it opens must not accumulate."""
    server = getattr(servers, server_kind)
    server.http(f"/abroadcast/?group={group}&text=warm-up")
    baseline = redis_clients(redis_server)
    for index in range(30):
        status, body = server.http(f"/abroadcast/?group={group}&text=r{index}")
        assert status == 200, body
    for index in range(10):
        member = Member(server, f"/ws/async/{group}/", f"async member {index}")
        member.send(f"bcast:c{index}")
        member.expect(f"c{index}")
        member.close()
    wait_until(lambda: server.members(group) == 0, 10, "the members' views returning")
    grown = redis_clients(redis_server) - baseline
    assert grown <= 4, (
        f"{server_kind}: {grown} more Redis connections after 30 async HTTP broadcasts "
        f"and 10 async members that broadcast once"
    )


@pytest.fixture
def gevent_server(redis_server, tmp_path):
    """A gunicorn gevent worker on the session's Redis (the listener is a greenlet)."""
    server = ProjectServer(
        "gevent", redis_server.url, tmp_path, extra_env={"DJWS_PING_INTERVAL": KEEPALIVE}
    )
    yield server
    log = server.log()  # before stop(): the shutdown is not what this module tests
    server.stop()
    assert "Traceback" not in log, server.log_tail()


def test_a_gevent_worker_shares_the_groups(servers, members, gevent_server, group):
    local = [
        Member(gevent_server, f"/ws/{kind}/{group}/", f"gevent-{kind}")
        for kind in ("sync", "async")
    ]
    everyone = [*members, *local]
    try:
        for sender in (local[0], local[1], members[3]):
            sender.send(f"bcast:from {sender.name}")
            expect_everywhere(everyone, f"from {sender.name}")
        status, body = gevent_server.http(f"/broadcast/?group={group}&text=gevent+http")
        assert status == 200, body
        expect_everywhere(everyone, "gevent http")
    finally:
        for member in local:
            member.close()
