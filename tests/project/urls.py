"""URLs of the integration-test project."""

from django.urls import path

from tests.project import probes, views

urlpatterns = [
    # The seed examples.
    path("ws/echo-once/", views.echo_once),
    path("ws/lower/", views.lower_case),
    # Plain HTTP and the middleware.
    path("plain/", probes.plain),
    path("undecorated/", probes.undecorated),
    path("db-status/", probes.db_status),
    # WebSocket probes.
    path("ws/echo/", probes.echo),
    path("ws/attribute/", probes.attribute_echo),
    path("ws/both/", probes.both),
    path("ws/queue/", probes.queue_report),
    path("ws/read-empty/", probes.read_when_empty),
    path("ws/iterate/", probes.iterate),
    path("ws/wait-loop/", probes.wait_loop),
    path("ws/close/", probes.close_with),
    path("ws/return/", probes.return_now),
    path("ws/bytes/", probes.send_bytes),
    path("ws/db/", probes.db_per_message),
    path("ws/db-hooks/", probes.DBHooks.as_view()),
    path("ws/subprotocol/", probes.subprotocol_report),
    path("ws/async-echo-once/", probes.async_echo_once),
    path("ws/async-echo/", probes.async_echo),
    path("ws/meta/", probes.meta_report),
]
