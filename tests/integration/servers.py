"""Start the ``tests/serverproject`` project under one of seven real servers.

Used by ``tests/integration/test_servers.py``. Each server runs as a subprocess on
127.0.0.1 with a free port, ``cwd`` = the repository root and ``PYTHONPATH`` set:

========================  ================================================================
``runserver``             ``python -m django runserver --noreload`` (our command, WSGI)
``gunicorn-gthread``      ``python -m gunicorn -k gthread --threads 32`` on ``wsgi.py``
``gunicorn-gevent``       ``python -m gunicorn -k gevent --worker-connections 100``
``gunicorn-eventlet``     ``python -m gunicorn -k eventlet --worker-connections 100``
``uvicorn``               ``python -m uvicorn ... --ws websockets`` on ``asgi.py``
``daphne``                ``python -m daphne`` on ``asgi.py``
``hypercorn``             ``python -m hypercorn`` on ``asgi.py``
========================  ================================================================

Only ``runserver`` is told ``DJANGO_SETTINGS_MODULE``: the gunicorn and ASGI servers
import ``wsgi.py`` / ``asgi.py`` as a user's project has them, and those set it.

Facts that only the server sees are appended by ``tests.serverproject.views.record``
to ``<events dir>/<key>.jsonl``; :meth:`LiveServer.wait_events` polls them with a
deadline.
"""

import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SETTINGS = "tests.serverproject.settings"
STARTUP_TIMEOUT = 40
SHUTDOWN_TIMEOUT = 30
EVENTS_TIMEOUT = 15
HTTP_TIMEOUT = 10
LOG_TAIL = 12000

#: The user the fixture creates before any server starts (``createsuperuser``).
USERNAME = "alice"
PASSWORD = "correct-horse-battery-staple"

# gunicorn: the worker timeout is a heartbeat of the worker process, not a request
# deadline, for the gthread/gevent/eventlet workers; keep it long anyway so a slow
# CI machine never sees a WebSocket session killed. The graceful timeout bounds
# the shutdown at teardown. No control socket (gunicorn 25): by default every
# gunicorn on the machine shares one at ~/.gunicorn/gunicorn.ctl.
_GUNICORN = "-m gunicorn --timeout 300 --graceful-timeout 10 --no-control-socket"
_WSGI = "tests.serverproject.wsgi"
_ASGI = "tests.serverproject.asgi:application"

#: How each server is started; ``{host}``/``{port}`` are filled in.
COMMANDS = {
    "runserver": "-m django runserver --noreload {host}:{port}",
    "gunicorn-gthread": f"{_GUNICORN} -k gthread --threads 32 -b {{host}}:{{port}} {_WSGI}",
    "gunicorn-gevent": (
        f"{_GUNICORN} -k gevent --worker-connections 100 -b {{host}}:{{port}} {_WSGI}"
    ),
    "gunicorn-eventlet": (
        f"{_GUNICORN} -k eventlet --worker-connections 100 -b {{host}}:{{port}} {_WSGI}"
    ),
    "uvicorn": f"-m uvicorn {_ASGI} --host {{host}} --port {{port}} --ws websockets",
    "daphne": f"-m daphne -b {{host}} -p {{port}} {_ASGI}",
    "hypercorn": f"-m hypercorn -b {{host}}:{{port}} {_ASGI}",
}


def _command(name, port):
    """Return the argv that starts server *name* on *port*."""
    return [sys.executable, *shlex.split(COMMANDS[name].format(host=HOST, port=port))]


#: Every server the integration tests run against, in the order they run.
SERVERS = (
    "runserver",
    "gunicorn-gthread",
    "gunicorn-gevent",
    "gunicorn-eventlet",
    "uvicorn",
    "daphne",
    "hypercorn",
)


def free_port():
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def base_env(db_path):
    """Return the environment shared by every subprocess (no ``DJWS_*`` from outside)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DJWS_") and key != "DJANGO_SETTINGS_MODULE"
    }
    paths = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(PYTHONPATH=os.pathsep.join(paths), PYTHONUNBUFFERED="1", DJWS_TEST_DB=str(db_path))
    return env


def manage(env, *args, extra_env=None):
    """Run ``python -m django ARGS`` with the server project's settings; fail loudly."""
    run_env = dict(env, DJANGO_SETTINGS_MODULE=SETTINGS, **(extra_env or {}))
    result = subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=REPO_ROOT,
        env=run_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def prepare_database(env):
    """Migrate the SQLite file database and create the user the login tests use."""
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(
        env,
        "createsuperuser",
        "--noinput",
        extra_env={
            "DJANGO_SUPERUSER_USERNAME": USERNAME,
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "DJANGO_SUPERUSER_EMAIL": f"{USERNAME}@example.com",
        },
    )


class ServerFailed(Exception):
    """A server did not start, fell over, or did not stop."""


class LiveServer:
    """One server subprocess serving ``tests/serverproject``.

    Attributes: ``name``, ``host``, ``port``, ``events_dir``, ``process``.
    """

    def __init__(self, name, env, workdir, extra_env=None):
        self.name = name
        self.host = HOST
        self.port = free_port()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.events_dir = self.workdir / "events"
        self.events_dir.mkdir(exist_ok=True)
        self.log_path = self.workdir / f"{name}.log"
        self.env = dict(env, DJWS_EVENTS_DIR=str(self.events_dir), **(extra_env or {}))
        if name == "runserver":
            self.env["DJANGO_SETTINGS_MODULE"] = SETTINGS
        self.command = _command(name, self.port)
        self.stopped = False
        #: Set by a test whose server is expected to log a traceback.
        self.traceback_allowed = False
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of pytest does not reach it first
        )
        try:
            self._wait_until_serving()
        except BaseException:
            self._kill()
            raise

    def __repr__(self):
        return f"<LiveServer {self.name} on {self.host}:{self.port}>"

    # --- addresses ---

    def ws_url(self, path, key=None):
        """Return ``ws://host:port/path`` (with ``?key=`` when given)."""
        url = f"ws://{self.host}:{self.port}{path}"
        if key is not None:
            url += ("&" if "?" in path else "?") + f"key={key}"
        return url

    def http_url(self, path):
        return f"http://{self.host}:{self.port}{path}"

    @property
    def origin(self):
        """The server's own origin, as a browser on its pages would send it."""
        return f"http://{self.host}:{self.port}"

    # --- the process ---

    def alive(self):
        return self.process.poll() is None

    def log(self):
        """Return what the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, text=None):
        text = self.log() if text is None else text
        return f"\n--- {self.name} log (tail) ---\n" + text[-LOG_TAIL:]

    def _wait_until_serving(self):
        """Wait (bounded) until the port accepts and ``/plain/`` answers 200."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = None
        while True:
            if not self.alive():
                raise ServerFailed(
                    f"{self.name} exited with {self.process.returncode} before serving; "
                    f"command: {self.command}" + self.log_tail()
                )
            try:
                status, _headers, _body = self.http("GET", "/plain/", timeout=2)
                if status == 200:
                    return
                last = f"status {status}"
            except OSError as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise ServerFailed(
                    f"{self.name} not serving on {self.port} after {STARTUP_TIMEOUT}s "
                    f"(last: {last!r}); command: {self.command}" + self.log_tail()
                )
            time.sleep(0.1)

    def stop(self):
        """Send SIGTERM and wait (bounded). Raise if it was already dead or hangs."""
        if self.stopped:
            return
        self.stopped = True
        was_alive = self.alive()
        try:
            if not was_alive:
                raise ServerFailed(
                    f"{self.name} died before teardown (exit code "
                    f"{self.process.returncode})" + self.log_tail()
                )
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise ServerFailed(
                    f"{self.name} did not exit within {SHUTDOWN_TIMEOUT}s of SIGTERM"
                    + self.log_tail()
                ) from None
        finally:
            self._kill()

    def _kill(self):
        if self.alive():
            self.process.kill()
            self.process.wait(timeout=SHUTDOWN_TIMEOUT)
        self._log_file.close()

    # --- plain HTTP ---

    def http(self, method, path, *, body=None, headers=None, timeout=HTTP_TIMEOUT):
        """Make one request on a fresh connection; return ``(status, headers, body)``.

        Redirects are not followed; the headers are an ``http.client.HTTPMessage``.
        """
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def login(self, username=USERNAME, password=PASSWORD):
        """Log in through Django's ``LoginView``; return the ``Cookie`` header value.

        GET the form (CSRF cookie and token), POST the credentials, expect the 302
        of a successful login and its session cookie.
        """
        status, headers, body = self.http("GET", "/accounts/login/")
        assert status == 200, f"login form: {status} {body[:300]!r}" + self.log_tail()
        cookies = SimpleCookie()
        for value in headers.get_all("Set-Cookie") or []:
            cookies.load(value)
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        assert match and "csrftoken" in cookies, f"no CSRF token in the login form: {body!r}"
        form = urllib.parse.urlencode(
            {
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": match.group(1).decode(),
                "next": "/accounts/done/",
            }
        )
        status, headers, body = self.http(
            "POST",
            "/accounts/login/",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={cookies['csrftoken'].value}",
            },
        )
        assert status == 302, f"login POST: {status} {body[:500]!r}" + self.log_tail()
        for value in headers.get_all("Set-Cookie") or []:
            cookies.load(value)
        assert "sessionid" in cookies, f"no session cookie after login: {headers}"
        return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())

    # --- what the views recorded ---

    def events(self, key):
        """Return the events recorded under *key* so far (a list of dicts)."""
        path = self.events_dir / f"{key}.jsonl"
        try:
            text = path.read_text()
        except FileNotFoundError:
            return []
        # A line being appended right now may be incomplete: only whole lines count.
        return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]

    def wait_events(self, key, until, *, what="events", timeout=EVENTS_TIMEOUT):
        """Poll the events of *key* until ``until(events)`` is true; return them."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events(key)
            if until(events):
                return events
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{what} not recorded under {key!r} within {timeout}s; "
                    f"recorded: {events}" + self.log_tail()
                )
            time.sleep(0.02)

    def wait_event(self, key, name, *, timeout=EVENTS_TIMEOUT):
        """Return the first event called *name* recorded under *key* (bounded wait)."""
        events = self.wait_events(
            key,
            lambda events: any(event["event"] == name for event in events),
            what=f"event {name!r}",
            timeout=timeout,
        )
        return next(event for event in events if event["event"] == name)
