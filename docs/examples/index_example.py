# The example on the front page of the docs (docs/index.rst); tests/test_docs_examples.py runs it.
from django.contrib.auth.mixins import LoginRequiredMixin
from django.urls import path

from django_websocket import WebSocketView


class Echo(WebSocketView):
    def on_message(self, message):  # str for a text message, bytes for a binary one
        self.send(message)


class Shout(LoginRequiredMixin, WebSocketView):  # no login: the handshake is refused
    encoding = "json"  # on_message gets decoded JSON

    def on_open(self):
        self.send_json({"hello": self.request.user.username})

    def on_message(self, message):
        self.send_json({"shout": message["text"].upper()})


urlpatterns = [path("ws/echo/", Echo.as_view()), path("ws/shout/", Shout.as_view())]
