# django-websocket 0.3 code, as its README wrote it: it runs unchanged (docs/migrating.rst).
# ruff: noqa: E402, I001
# fmt: off
from django_websocket import require_websocket

@require_websocket
def echo_once(request):
    message = request.websocket.wait()
    request.websocket.send(message)

from django.http import HttpResponse
from django_websocket import accept_websocket

def modify_message(message):
    return message.lower()

@accept_websocket
def lower_case(request):
    if not request.is_websocket():
        message = request.GET['message']
        message = modify_message(message)
        return HttpResponse(message)
    else:
        for message in request.websocket:
            message = modify_message(message)
            request.websocket.send(message)
# fmt: on


# With WebSocketMiddleware in MIDDLEWARE, a view may opt in with an attribute instead.
def shout(request):
    if not request.is_websocket():
        return HttpResponse("connect with a WebSocket")
    for message in request.websocket:
        request.websocket.send(message.upper())


shout.accept_websocket = True
