from django.urls import path

from live.views import Echo

urlpatterns = [
    # ... the URLs that startproject wrote (admin/) stay here ...
    path("ws/echo/", Echo.as_view()),
]
