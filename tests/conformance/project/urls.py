"""``/echo/`` (sync view) and ``/aecho/`` (async view)."""

from django.urls import path

from tests.conformance.project import views

urlpatterns = [
    path("echo/", views.Echo.as_view()),
    path("aecho/", views.AsyncEcho.as_view()),
]
