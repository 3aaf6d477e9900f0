"""Tests of the demo, written the way you would test WebSocket views in your own project.

``WebSocketClient`` is Django's test ``Client`` (``force_login()``, cookies, ``get()``)
plus ``connect(path)``, which runs the real view, middleware and URL resolver in
process: no server, no socket, the test's database. Each ``connect()`` is one
browser tab; a ``with`` block closes it (1000) and waits for the view to return.

Run them from ``demo/`` with ``python manage.py test``, or from the repository root
with ``python -m pytest`` (``tests/demo/`` runs this file with the demo's settings).
"""

from django.contrib.auth import get_user_model
from django.test import TestCase

from django_websocket.testing import HandshakeRejected, WebSocketClient

from chat.models import Message


def next_event(ws, kind):
    """Return the next JSON event of type ``kind`` from ``ws``, skipping other types.

    Each ``receive_json()`` waits at most the client's timeout (5 s by default) and
    raises ``TimeoutError`` when nothing comes.
    """
    while True:
        event = ws.receive_json()
        if event["type"] == kind:
            return event


class ChatRoomTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.ada = get_user_model().objects.create_user("ada")
        cls.bob = get_user_model().objects.create_user("bob")

    def client_for(self, user):
        """A test client logged in as ``user``, like a browser after the login page."""
        client = WebSocketClient()
        client.force_login(user)
        return client

    def test_two_people_chat_and_see_who_is_here(self):
        with self.client_for(self.ada).connect("/ws/chat/lobby/") as ada:
            self.assertEqual(ada.receive_json(), {"type": "history", "messages": []})
            self.assertEqual(ada.receive_json()["users"], ["ada"])

            with self.client_for(self.bob).connect("/ws/chat/lobby/") as bob:
                # Each side hears of the other through the room's group broadcast:
                # bob's arrival reaches ada; ada's answer reaches bob (after his own list).
                self.assertEqual(next_event(ada, "presence")["users"], ["ada", "bob"])
                self.assertEqual(next_event(bob, "presence")["users"], ["bob"])
                expected = {"type": "presence", "users": ["ada", "bob"], "count": 2}
                self.assertEqual(next_event(bob, "presence"), expected)

                ada.send_json({"text": "Hello, Bob!"})
                message = next_event(bob, "message")
                self.assertEqual(message["user"], "ada")
                self.assertEqual(message["text"], "Hello, Bob!")
                self.assertRegex(message["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d")
                # The sender gets it back too (a group includes the sender's connection).
                self.assertEqual(next_event(ada, "message"), message)

            # bob closed his tab: ada's count goes back to one.
            self.assertEqual(next_event(ada, "presence")["count"], 1)

        self.assertQuerySetEqual(Message.objects.values_list("text", flat=True), ["Hello, Bob!"])

    def test_a_newcomer_gets_the_room_history(self):
        Message.objects.create(room="lobby", user=self.ada, text="first")
        Message.objects.create(room="lobby", user=self.bob, text="second")
        Message.objects.create(room="elsewhere", user=self.bob, text="not here")
        with self.client_for(self.bob).connect("/ws/chat/lobby/") as bob:
            history = bob.receive_json()
        self.assertEqual(history["type"], "history")
        said = [(m["user"], m["text"]) for m in history["messages"]]
        self.assertEqual(said, [("ada", "first"), ("bob", "second")])

    def test_rooms_are_separate(self):
        with (
            self.client_for(self.ada).connect("/ws/chat/lobby/") as ada,
            self.client_for(self.bob).connect("/ws/chat/tea/") as bob,
        ):
            ada.send_json({"text": "for the lobby"})
            next_event(ada, "message")  # broadcast done
            bob.send_json({"text": "for tea"})
            self.assertEqual(next_event(bob, "message")["text"], "for tea")

    def test_what_is_not_a_message_gets_an_error(self):
        with self.client_for(self.ada).connect("/ws/chat/lobby/") as ada:
            ada.send_json({"text": "   "})
            self.assertEqual(next_event(ada, "error")["type"], "error")
            ada.send_json(["not", "a", "message"])
            self.assertEqual(next_event(ada, "error")["type"], "error")
        self.assertFalse(Message.objects.exists())

    def test_the_socket_needs_a_login(self):
        with self.assertRaises(HandshakeRejected) as refused:
            WebSocketClient().connect("/ws/chat/lobby/")
        self.assertEqual(refused.exception.status_code, 403)


class PagesTests(TestCase):
    def test_picking_a_username_logs_in_and_goes_back_to_the_room(self):
        response = self.client.get("/chat/lobby/")
        self.assertRedirects(response, "/login/?next=/chat/lobby/")
        response = self.client.post("/login/", {"username": "ada", "next": "/chat/lobby/"})
        self.assertRedirects(response, "/chat/lobby/")
        self.assertContains(self.client.get("/chat/lobby/"), 'data-socket="/ws/chat/lobby/"')

    def test_the_name_of_a_real_account_is_refused(self):
        get_user_model().objects.create_user("admin", password="a real password")
        response = self.client.post("/login/", {"username": "Admin"})
        self.assertContains(response, "belongs to a real account")

    def test_home_lists_the_rooms(self):
        user = get_user_model().objects.create_user("ada")
        Message.objects.create(room="tea-time", user=user, text="hi")
        response = self.client.get("/")
        self.assertContains(response, 'href="/chat/lobby/"')
        self.assertContains(response, 'href="/chat/tea-time/"')
        response = self.client.get("/chat/", {"room": "Tea Time"})
        self.assertRedirects(response, "/chat/tea-time/", fetch_redirect_response=False)


class SeedExamplesTests(TestCase):
    """The two examples of django-websocket 0.3, unchanged."""

    def test_echo(self):
        with WebSocketClient().connect("/ws/echo/") as ws:
            ws.send("Hello, WebSocket!")
            self.assertEqual(ws.receive(), "Hello, WebSocket!")
            ws.send(b"\x00\x01")
            self.assertEqual(ws.receive(), b"\x00\x01")

    def test_lower_case_over_websocket_and_http(self):
        with WebSocketClient().connect("/lower/") as ws:
            ws.send("Make Me LOWER Case")
            self.assertEqual(ws.receive(), "make me lower case")
        response = self.client.get("/lower/", {"message": "Hello World"})
        self.assertEqual(response.content, b"hello world")
