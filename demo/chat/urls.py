from django.urls import path, register_converter

from . import views


class RoomConverter:
    """A room name: lower-case letters, digits, ``-`` and ``_``, at most 40."""

    regex = "[-a-z0-9_]{1,40}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(RoomConverter, "room")

urlpatterns = [
    path("chat/", views.go_to_room, name="go_to_room"),
    path("chat/<room:room>/", views.room, name="room"),
    path("ws/chat/<room:room>/", views.ChatSocket.as_view(), name="chat_socket"),
]
