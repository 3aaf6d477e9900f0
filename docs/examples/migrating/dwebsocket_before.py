# A dwebsocket view, for docs/migrating.rst. Not run: dwebsocket is not installed.
import json

from django.http import HttpResponse
from dwebsocket import accept_websocket, require_websocket


@require_websocket
def echo_json(request):
    for message in request.websocket:  # bytes, even for a text message
        if message is None:
            break
        data = json.loads(message.decode("utf-8"))
        request.websocket.send(json.dumps({"echo": data}).encode("utf-8"))


@accept_websocket
def poll(request):
    if not request.is_websocket():
        return HttpResponse("connect with a WebSocket")
    while True:
        message = request.websocket.wait(timeout=30)  # None after 30 s of silence
        if message is None:
            break
        request.websocket.send(message)
