"""flask-sock: an echo route, served by gunicorn's gthread worker (``flask_app:app``)."""

from flask import Flask
from flask_sock import Sock

app = Flask(__name__)
# simple-websocket's defaults: no keepalive pings, no size limit. It negotiates
# permessage-deflate only when the client offers it (the benchmark's client does not).
sock = Sock(app)


@sock.route("/ws/echo/")
def echo(ws):
    while True:
        ws.send(ws.receive())
