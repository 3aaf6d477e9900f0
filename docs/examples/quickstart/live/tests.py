from django.test import SimpleTestCase

from django_websocket.testing import WebSocketClient


class EchoTests(SimpleTestCase):
    def test_echo(self):
        client = WebSocketClient()
        with client.connect("/ws/echo/") as ws:  # runs the view in process: no server
            self.assertEqual(ws.receive(), "welcome")
            ws.send("hello")
            self.assertEqual(ws.receive(), "hello")
            ws.send(b"\x00\x01")
            self.assertEqual(ws.receive(), b"\x00\x01")

    def test_plain_http_gets_426(self):
        response = self.client.get("/ws/echo/")
        self.assertEqual(response.status_code, 426)
