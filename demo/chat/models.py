"""A chat message, kept so that whoever enters a room sees what was said before."""

from django.conf import settings
from django.db import models
from django.db.models import Max

MAX_LENGTH = 1000


class MessageQuerySet(models.QuerySet):
    def recent(self, room, limit=50):
        """Return the last ``limit`` messages of ``room``, oldest first."""
        latest = self.filter(room=room).select_related("user").order_by("-created", "-id")
        return list(reversed(latest[:limit]))

    def recent_rooms(self, limit=10):
        """Return the names of the rooms with the most recent messages."""
        rooms = self.values("room").annotate(last=Max("created")).order_by("-last")
        return [row["room"] for row in rooms[:limit]]


class Message(models.Model):
    room = models.SlugField(max_length=40)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.TextField(max_length=MAX_LENGTH)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = MessageQuerySet.as_manager()

    def __str__(self):
        return f"{self.room} {self.user}: {self.text[:40]}"

    def as_json(self):
        """The message as the browser receives it."""
        return {
            "id": self.pk,
            "user": self.user.get_username(),
            "text": self.text,
            "time": self.created.isoformat(),
        }
