"""A sync-only middleware, as many projects still have (``DJWS_SYNC_MIDDLEWARE=1``).

Django calls an async view behind it through ``async_to_sync`` on a thread; it
records the response it sees, so a test can tell when middleware finished.
"""

from .views import record


class SyncOnlyMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        record(request, "middleware-response", status=response.status_code)
        return response
