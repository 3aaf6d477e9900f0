# chat/urls.py: the routing of channels_before/routing.py; include it from mysite/urls.py.
from django.urls import path

from . import views

urlpatterns = [
    path("ws/echo/", views.Echo.as_view()),
    path("ws/chat/<slug:room>/", views.Chat.as_view()),
]
