"""URLs of the multi-server test project."""

from django.contrib.auth.views import LoginView
from django.urls import path

from tests.project import views as seed  # the seed examples, word for word
from tests.serverproject import views

urlpatterns = [
    # Plain HTTP.
    path("plain/", views.plain),
    path("accounts/login/", LoginView.as_view()),
    path("accounts/done/", views.login_done),
    # WebSocketView, sync.
    path("ws/echo/", views.Echo.as_view()),
    path("ws/lifecycle/", views.Lifecycle.as_view()),
    path("ws/json/", views.JsonEcho.as_view()),
    path("ws/subprotocol/", views.Subprotocol.as_view()),
    path("ws/protected/", views.Protected.as_view()),
    path("ws/refusing/", views.Refusing.as_view()),
    path("ws/boom/", views.Boom.as_view()),
    path("ws/with-get/", views.WithGet.as_view()),
    path("ws/blocker/", views.Blocker.as_view()),
    path("ws/remembers/", views.Remembers.as_view()),
    # WebSocketView, async.
    path("ws/async-echo/", views.AsyncEcho.as_view()),
    path("ws/async-echo-function/", views.async_echo_function),
    # The seed examples (SPEC section 5).
    path("ws/echo-once/", seed.echo_once),
    path("ws/lower/", seed.lower_case),
]

# The abuse tests (tests/abuse/): slow and dead peers, disconnects, shutdown.
from tests.serverproject import abuse_views  # noqa: E402

urlpatterns += [
    path("abuse/probe/", abuse_views.probe),
    path("ws/abuse/tracked/", abuse_views.Tracked.as_view()),
    path("ws/abuse/async-tracked/", abuse_views.AsyncTracked.as_view()),
    path("ws/abuse/flood/", abuse_views.Flood.as_view()),
    path("ws/abuse/async-flood/", abuse_views.AsyncFlood.as_view()),
]
