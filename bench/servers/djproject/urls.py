"""URLs of the benchmark project (django_websocket views)."""

from django.urls import path

from djproject.views import AsyncEcho, SyncEcho

urlpatterns = [
    path("ws/async/", AsyncEcho.as_view()),
    path("ws/sync/", SyncEcho.as_view()),
]
