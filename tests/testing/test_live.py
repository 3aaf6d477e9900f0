"""``WebSocketLiveServerTestCase``: a real server on a free port, a real client."""

import http.cookiejar
import urllib.request

from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings
from websockets.exceptions import ConnectionClosed as ClientConnectionClosed
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from django_websocket.testing import WebSocketLiveServerTestCase

TIMEOUT = 5


@override_settings(ROOT_URLCONF="tests.testing.urls")
class LiveServer(WebSocketLiveServerTestCase):
    def connect(self, path, **kwargs):
        return connect(
            self.live_ws_url + path,
            open_timeout=TIMEOUT,
            close_timeout=TIMEOUT,
            proxy=None,
            **kwargs,
        )

    def test_live_ws_url(self):
        self.assertEqual(self.live_ws_url, "ws" + self.live_server_url[len("http") :])
        self.assertTrue(self.live_ws_url.startswith("ws://"))

    def test_the_test_database_is_in_memory(self):
        self.assertTrue(connection.is_in_memory_db())

    def test_echo(self):
        with self.connect("/ws/echo/") as ws:
            ws.send("live")
            self.assertEqual(ws.recv(timeout=TIMEOUT), "live")
            ws.send(b"\x00\x01")
            self.assertEqual(ws.recv(timeout=TIMEOUT), b"\x00\x01")

    def test_close_codes(self):
        with self.connect("/ws/echo/") as ws:
            ws.send("close 4000")
            with self.assertRaises(ClientConnectionClosed) as closed:
                ws.recv(timeout=TIMEOUT)
        self.assertEqual(closed.exception.rcvd.code, 4000)
        with self.connect("/ws/json/") as ws:
            ws.send("{not json")
            with self.assertRaises(ClientConnectionClosed) as closed:
                ws.recv(timeout=TIMEOUT)
        self.assertEqual(closed.exception.rcvd.code, 1007)

    def test_refusals(self):
        for path, status in (("/ws/nowhere/", 404), ("/ws/protected-403/", 403)):
            with self.assertRaises(InvalidStatus) as refused:
                self.connect(path)
            self.assertEqual(refused.exception.response.status_code, status)

    def test_the_database_is_shared_both_ways(self):
        User.objects.create_user("ivy")
        cookies = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(cookies)
        )
        url = f"{self.live_server_url}/login/?username=ivy"
        with opener.open(url, timeout=TIMEOUT) as response:
            self.assertEqual(response.read(), b"logged in as ivy")
        cookie = "; ".join(f"{c.name}={c.value}" for c in cookies)
        with self.connect("/ws/protected/", additional_headers={"Cookie": cookie}) as ws:
            self.assertEqual(ws.recv(timeout=TIMEOUT), "hello ivy")
        with self.connect("/ws/users/") as ws:
            ws.send("list")
            self.assertEqual(ws.recv(timeout=TIMEOUT), '["ivy"]')
            ws.send("create jack")
            self.assertEqual(ws.recv(timeout=TIMEOUT), "jack")
        self.assertTrue(User.objects.filter(username="jack").exists())
