"""The demo's views: a page with a WebSocket client, and two WebSocket endpoints."""

from django.http import HttpResponse
from django.shortcuts import render

from django_websocket import accept_websocket, require_websocket


def index(request):
    return render(request, "index.html")


@require_websocket
def echo(request):
    for message in request.websocket:
        request.websocket.send(message)


def modify_message(message):
    return message.lower()


# The example from django-websocket 0.3's README, as written there.
@accept_websocket
def lower_case(request):
    if not request.is_websocket():
        message = request.GET["message"]
        message = modify_message(message)
        return HttpResponse(message)
    else:
        for message in request.websocket:
            message = modify_message(message)
            request.websocket.send(message)
