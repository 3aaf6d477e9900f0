"""URLs of the testing-helper tests (``@pytest.mark.urls("tests.testing.urls")``)."""

from django.urls import path

from tests.testing import views

urlpatterns = [
    path("login/", views.log_in),
    path("set-cookie/", views.set_cookie),
    path("session/", views.session_report),
    path("open-connections/", views.open_connections),
    path("ws/echo/", views.Echo.as_view()),
    path("ws/async-echo/", views.AsyncEcho.as_view()),
    path("ws/json/", views.JsonEcho.as_view()),
    path("ws/subprotocol/", views.Subprotocol.as_view()),
    path("ws/protected/", views.Protected.as_view()),
    path("ws/protected-403/", views.ProtectedRaise.as_view()),
    path("ws/async-protected/", views.AsyncProtected.as_view()),
    path("ws/refusing/", views.Refusing.as_view()),
    path("ws/session-writer/", views.SessionWriter.as_view()),
    path("ws/info/", views.RequestInfo.as_view()),
    path("ws/users/", views.Users.as_view()),
    path("ws/stall/", views.Stall.as_view()),
    path("ws/send-then-return/", views.SendThenReturn.as_view()),
    path("ws/fn/echo/", views.echo_function),
    path("ws/fn/both/", views.both_function),
    path("ws/fn/async-echo/", views.async_echo_function),
    path("ws/fn/close/", views.close_function),
]
