# mysite/asgi.py for uvicorn, daphne or hypercorn (runserver and gunicorn need no asgi.py).
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

from django_websocket.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
