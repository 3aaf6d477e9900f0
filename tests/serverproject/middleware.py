"""A sync-only middleware, as many projects still have (``DJWS_SYNC_MIDDLEWARE=1``).

Django calls an async view behind it through ``async_to_sync`` on a thread; it
records the response it sees, so a test can tell when middleware finished. With
``DJWS_MIDDLEWARE_DB=1`` it also queries the database, on that thread.
"""

import os

from django.contrib.auth.models import User

from .views import record


class SyncOnlyMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if os.environ.get("DJWS_MIDDLEWARE_DB") == "1":
            User.objects.exists()  # opens this thread's DB connection
        response = self.get_response(request)
        record(request, "middleware-response", status=response.status_code)
        return response
