from django.contrib.auth.views import LogoutView
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("login/", views.pick_username, name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("", include("chat.urls")),
    path("echo/", views.echo_page, name="echo_page"),
    path("ws/echo/", views.echo, name="echo"),
    path("lower/", views.lower_case, name="lower_case"),
]
