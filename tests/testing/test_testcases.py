"""The test client under Django's own test cases (run here by pytest-django).

``TestCase``: the view runs inside the test's transaction, so it sees data the test
created and the test sees what the view wrote; ``TransactionTestCase``: the same with
committed data; ``async def`` test methods with :class:`AsyncWebSocketClient`.
"""

from django.contrib.auth.models import User
from django.test import TestCase, TransactionTestCase, override_settings

from django_websocket import ConnectionClosed
from django_websocket.testing import AsyncWebSocketClient, HandshakeRejected, WebSocketClient


@override_settings(ROOT_URLCONF="tests.testing.urls")
class WebSocketClientInTestCase(TestCase):
    client_class = WebSocketClient  # self.client can open WebSockets

    @classmethod
    def setUpTestData(cls):
        cls.alice = User.objects.create_user("alice")

    def test_force_login_with_a_user_of_the_test(self):
        with self.assertRaises(HandshakeRejected) as refused:
            self.client.connect("/ws/protected/")
        self.assertEqual(refused.exception.status_code, 302)
        self.client.force_login(self.alice)
        with self.client.connect("/ws/protected/") as ws:
            self.assertEqual(ws.receive(), "hello alice")

    def test_data_both_ways(self):
        User.objects.create_user("bob")
        with self.client.connect("/ws/users/") as ws:
            ws.send("list")
            self.assertEqual(ws.receive_json(), ["alice", "bob"])
            ws.send("create carol")
            self.assertEqual(ws.receive(), "carol")
        self.assertTrue(User.objects.filter(username="carol").exists())

    def test_views_writes_are_rolled_back(self):
        # Runs in its own transaction: "carol" from the other test is gone.
        self.assertFalse(User.objects.filter(username="carol").exists())

    def test_server_close(self):
        with self.client.connect("/ws/echo/") as ws:
            ws.send("close 4000")
            with self.assertRaises(ConnectionClosed) as closed:
                ws.receive()
        self.assertEqual(closed.exception.code, 4000)

    async def test_async_client_in_an_async_test_method(self):
        client = AsyncWebSocketClient()
        async with client.connect("/ws/async-echo/") as ws:
            await ws.send("async hi")
            self.assertEqual(await ws.receive(), "async hi")
            await ws.send_json({"a": 1})
            self.assertEqual(await ws.receive(), '{"a": 1}')
        self.assertEqual(ws.close_code, 1000)

    async def test_async_client_sees_the_tests_data(self):
        """The view must share the test's DB connection, as with ``WebSocketClient``.

        Fails today: ``AsyncWebSocketClient.connect`` runs ``connect()`` through
        ``asyncio.to_thread``, so the connections it shares with the view are the
        worker thread's (none), not the test's; the view opens its own connection and
        hits "database table is locked: django_session" on the test's transaction.
        """
        client = AsyncWebSocketClient()
        await client.aforce_login(self.alice)
        async with client.connect("/ws/protected/") as ws:
            self.assertEqual(await ws.receive(), "hello alice")
        async with client.connect("/ws/users/") as ws:
            await ws.send("list")
            self.assertEqual(await ws.receive_json(), ["alice"])


@override_settings(ROOT_URLCONF="tests.testing.urls")
class WebSocketClientInTransactionTestCase(TransactionTestCase):
    def test_force_login_and_data_both_ways(self):
        client = WebSocketClient()
        client.force_login(User.objects.create_user("dora"))
        with client.connect("/ws/protected/") as ws:
            self.assertEqual(ws.receive(), "hello dora")
        with client.connect("/ws/users/") as ws:
            ws.send("create erin")
            self.assertEqual(ws.receive(), "erin")
            ws.send("list")
            self.assertEqual(ws.receive_json(), ["dora", "erin"])
        self.assertTrue(User.objects.filter(username="erin").exists())

    async def test_async_client(self):
        client = AsyncWebSocketClient()
        user = await User.objects.acreate(username="fred")
        await client.aforce_login(user)
        async with client.connect("/ws/async-protected/") as ws:
            self.assertEqual(await ws.receive(), "hello fred")
