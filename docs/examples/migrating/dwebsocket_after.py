# The dwebsocket view of dwebsocket_before.py with django_websocket (docs/migrating.rst).
import json

from django.http import HttpResponse

from django_websocket import WebSocketView, accept_websocket, require_websocket


@require_websocket
def echo_json(request):
    for message in request.websocket:  # str for a text message; the loop ends on close
        data = json.loads(message)
        request.websocket.send(json.dumps({"echo": data}))  # str: a text message


@accept_websocket
def poll(request):
    if not request.is_websocket():
        return HttpResponse("connect with a WebSocket")
    # wait() takes no timeout: it returns None only once the connection is closed.
    # Idle clients are dropped by keepalive (WEBSOCKET_PING_INTERVAL / _TIMEOUT).
    while (message := request.websocket.wait()) is not None:
        request.websocket.send(message)


# Or, as a class-based view:
class EchoJson(WebSocketView):
    encoding = "json"

    def on_message(self, message):
        self.send_json({"echo": message})
