"""The seed issue's two examples, word for word (SPEC section 5).

Copied from ``tests/project/views.py``; lint and format are off for them.
"""
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
