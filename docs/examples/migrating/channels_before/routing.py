# routing.py with Channels, for docs/migrating.rst. Not run: Channels is not installed.
from django.urls import re_path

from chat import consumers

websocket_urlpatterns = [
    re_path(r"ws/echo/$", consumers.EchoConsumer.as_asgi()),
    re_path(r"ws/chat/(?P<room>\w+)/$", consumers.ChatConsumer.as_asgi()),
]
