"""The runserver command itself: flags, static files, HTTP alongside
WebSockets, binary messages, compression, concurrency, database hygiene, and
``async def`` views under WSGI.
"""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from websockets.exceptions import ConnectionClosedOK, InvalidStatus

from tests.integration.helpers import connect, http_request, retry_until
from tests.integration.rawws import RawWebSocket


def echo_check(server, path="/ws/echo/", message="ping"):
    with connect(server.ws_url(path)) as ws:
        ws.send(message)
        assert ws.recv(timeout=10) == message


# --- the command ---


def test_multithreaded_flag_is_accepted(start_server):
    server = start_server(args=["--multithreaded"])
    echo_check(server)
    assert http_request(server.http_url("/plain/"))[::2] == (200, b"plain ok")


def test_plain_http_view_is_served(server):
    status, headers, body = http_request(server.http_url("/plain/"))
    assert (status, body) == (200, b"plain ok")
    assert headers["Content-Type"].startswith("text/plain")


def test_static_file_is_served(server):
    status, _headers, body = http_request(server.http_url("/static/hello.txt"))
    assert (status, body) == (200, b"hello from staticfiles\n")


def test_unknown_url_gets_404(server):
    assert http_request(server.http_url("/no/such/page/"))[0] == 404


def test_websocket_to_unknown_url_gets_404(server):
    with pytest.raises(InvalidStatus) as rejected, connect(server.ws_url("/no/such/socket/")):
        pass
    assert rejected.value.response.status_code == 404


# --- messages ---


def test_binary_echo_keeps_bytes_and_text_apart(server):
    with connect(server.ws_url("/ws/echo/")) as ws:
        ws.send(b"\x00\x01\xfe\xff")
        reply = ws.recv(timeout=10)
        assert isinstance(reply, bytes) and reply == b"\x00\x01\xfe\xff"
        ws.send("text")
        reply = ws.recv(timeout=10)
        assert isinstance(reply, str) and reply == "text"
        ws.send(b"")
        assert ws.recv(timeout=10) == b""
        ws.send("")
        assert ws.recv(timeout=10) == ""


def test_view_sends_bytes_as_a_binary_message(server):
    with connect(server.ws_url("/ws/bytes/")) as ws:
        assert ws.recv(timeout=10) == b"\x00\x01\xfe\xff"
        assert ws.recv(timeout=10) == "text after bytes"
        with pytest.raises(ConnectionClosedOK):
            ws.recv(timeout=10)


def test_large_message_under_the_limit_round_trips(server):
    payload = bytes(range(256)) * 250  # 64000 bytes, incompressible-ish pattern
    with connect(server.ws_url("/ws/echo/"), compression=None) as ws:
        ws.send(payload)
        assert ws.recv(timeout=10) == payload


# --- compression ---


def test_permessage_deflate_is_negotiated_by_default(server):
    with connect(server.ws_url("/ws/echo/")) as ws:  # the client offers it by default
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in extensions
        ws.send("z" * 60000)
        assert ws.recv(timeout=10) == "z" * 60000


def test_no_compression_when_the_client_does_not_offer_it(server):
    with connect(server.ws_url("/ws/echo/"), compression=None) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send("plain")
        assert ws.recv(timeout=10) == "plain"


def test_no_compression_when_the_setting_is_none(start_server):
    server = start_server(env={"DJWS_COMPRESSION": "none"})
    with connect(server.ws_url("/ws/echo/")) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send("z" * 60000)
        assert ws.recv(timeout=10) == "z" * 60000


# --- concurrency ---


@pytest.mark.timeout(300)
def test_50_connections_of_20_messages_while_http_is_served(server):
    clients, messages = 50, 20
    all_open = threading.Barrier(clients + 1, timeout=90)
    http_done = threading.Event()

    def client(number):
        try:
            with connect(server.ws_url("/ws/echo/"), open_timeout=60) as ws:
                ws.send(f"{number}-hello")
                assert ws.recv(timeout=30) == f"{number}-hello"
                all_open.wait()
                replies = []
                for index in range(messages):
                    ws.send(f"{number}-{index}")
                    replies.append(ws.recv(timeout=30))
                # Stay open until the HTTP requests are done.
                assert http_done.wait(timeout=90), "http requests never finished"
                return replies
        except BaseException:
            all_open.abort()
            raise

    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [pool.submit(client, number) for number in range(clients)]
        try:
            all_open.wait()
            http = [http_request(server.http_url(f"/ws/lower/?message=HTTP{n}")) for n in range(20)]
        finally:
            http_done.set()
        results = [future.result(timeout=120) for future in futures]

    for number, replies in enumerate(results):
        assert replies == [f"{number}-{index}" for index in range(messages)]
    assert [(status, body) for status, _h, body in http] == [
        (200, f"http{n}".encode()) for n in range(20)
    ]


# --- database hygiene ---


def db_status(server):
    status, _headers, body = http_request(server.http_url("/db-status/"))
    assert status == 200, body
    return json.loads(body)


def test_db_view_works_across_many_messages(server):
    with connect(server.ws_url("/ws/db/")) as ws:
        counts = []
        for index in range(50):
            ws.send(f"many-{index}")
            message, _, count = ws.recv(timeout=10).rpartition(":")
            assert message == f"many-{index}"
            counts.append(int(count))
    assert counts == list(range(counts[0], counts[0] + 50))


def test_each_hook_of_a_sync_view_starts_with_its_db_connection_closed(server):
    """close_old_connections() runs around every hook, also when skipped for speed."""
    with connect(server.ws_url("/ws/db-hooks/")) as ws:
        replies = []
        for index in range(5):
            ws.send(f"m{index}")
            replies.append(ws.recv(timeout=10))
    assert replies == [f"m{index}:closed" for index in range(5)]


@pytest.mark.timeout(180)
def test_server_stays_healthy_across_30_db_sessions(server):
    before = db_status(server)
    for session in range(30):
        with connect(server.ws_url("/ws/db/")) as ws:
            for index in range(3):
                ws.send(f"s{session}-{index}")
                assert ws.recv(timeout=10).startswith(f"s{session}-{index}:")
    assert http_request(server.http_url("/plain/"))[::2] == (200, b"plain ok")
    # Finished sessions must not keep sqlite connections open, nor threads running.
    retry_until(
        lambda: (
            db_status(server)["open_sqlite_connections"] <= before["open_sqlite_connections"] + 2
        ),
        what=f"open sqlite connections back near {before['open_sqlite_connections']}",
    )
    retry_until(
        lambda: db_status(server)["threads"] <= before["threads"] + 2,
        what=f"server threads back near {before['threads']}",
    )


# --- async def views under WSGI runserver (Django runs them with async_to_sync) ---


def test_ASYNC_VIEW_under_wsgi_runserver_echo_once(server):
    with connect(server.ws_url("/ws/async-echo-once/")) as ws:
        ws.send("async hello")
        assert ws.recv(timeout=10) == "async hello"
        with pytest.raises(ConnectionClosedOK) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


def test_ASYNC_VIEW_under_wsgi_runserver_async_for(server):
    with connect(server.ws_url("/ws/async-echo/")) as ws:
        for message in ["one", b"two", "three"]:
            ws.send(message)
            assert ws.recv(timeout=10) == message


def test_a_websocket_request_keeps_no_copy_of_the_process_environment(server):
    """wsgiref puts os.environ in every environ; a session may last hours without it."""
    status, _headers, body = http_request(server.http_url("/ws/meta/"))
    assert status == 200
    assert json.loads(body) == {"os_environ": True, "host": f"{server.host}:{server.port}"}
    with connect(server.ws_url("/ws/meta/")) as ws:
        facts = json.loads(ws.recv(timeout=10))
    assert facts == {"os_environ": False, "host": f"{server.host}:{server.port}"}


def test_an_upgrade_that_declares_a_body_ends_without_a_traceback(server):
    """The session closes runserver's request reader: nothing drains it afterwards."""
    line = '"GET /ws/echo/ HTTP/1.1" 101'
    offset = len(server.log())
    with RawWebSocket(server.host, server.port) as raw:
        response = raw.handshake("/ws/echo/", headers={"Content-Length": "2"})
        assert response.status == 101
        raw.send_close(1000)
        _others, close = raw.read_until_close()
        assert close.close_code == 1000
        assert raw.read_to_eof() == b""
    # runserver logs the request once the session is over; a failed drain of the
    # body would raise before that (and log a traceback instead).
    retry_until(lambda: line in server.log()[offset:], what="the 101 logged")
    assert "Traceback" not in server.log()[offset:]
