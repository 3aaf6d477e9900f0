"""URLs of the groups test project."""

from django.urls import path

from tests.groups.project import views

urlpatterns = [
    path("broadcast/", views.broadcast_view),
    path("abroadcast/", views.abroadcast_view),
    path("members/", views.members),
    path("pid/", views.pid),
    path("gc-freeze/", views.gc_freeze),
    path("ws/sync/<str:group>/", views.Member.as_view()),
    path("ws/async/<str:group>/", views.AsyncMember.as_view()),
    path("ws/declared/", views.Declared.as_view()),
    path("ws/async-declared/", views.AsyncDeclared.as_view()),
    path("ws/stalling/<str:group>/", views.Stalling.as_view()),
    path("ws/async-stalling/<str:group>/", views.AsyncStalling.as_view()),
    path("ws/filtered/", views.Filtered.as_view()),
    path("ws/async-filtered/", views.AsyncFiltered.as_view()),
]
