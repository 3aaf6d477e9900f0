"""The line-up of ``bench/run.py``: the servers it compares, how each starts, what it needs.

Each is a minimal echo (``bench/servers/``) in ONE process (gunicorn: one worker,
plus its arbiter), bound to 127.0.0.1 on a free port, optionally pinned to a CPU
with ``taskset``. Settings common to all: no access log, compression off
(``permessage-deflate`` is also never offered by the client), other options at
their defaults. Every uvicorn runs with the same ``--ws`` and ``--loop``.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SERVERS", "Server", "ServerSpec", "free_port", "missing_modules"]

REPO_ROOT = Path(__file__).resolve().parents[1]
APPS_DIR = Path(__file__).resolve().parent / "servers"
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60
LOG_TAIL = 4000
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ServerSpec:
    """One server of the comparison.

    ``kind`` chooses the command line (websockets, uvicorn, gunicorn, runserver,
    daphne); ``app`` is its target; ``path`` the echo's URL path; ``family`` is
    ``ours``, ``reference`` or ``peer``; ``threaded``: a thread per connection.
    """

    name: str
    label: str
    family: str
    kind: str
    app: str
    path: str
    requires: tuple[str, ...]
    threaded: bool = False
    notes: str = ""
    extra_args: tuple[str, ...] = field(default=())


def _spec(*args: Any, **kwargs: Any) -> tuple[str, ServerSpec]:
    spec = ServerSpec(*args, **kwargs)
    return spec.name, spec


DJANGO = ("django", "django_websocket")
SERVERS: dict[str, ServerSpec] = dict(
    [
        _spec(
            "websockets", "websockets (asyncio API)", "reference", "websockets",
            "websockets_echo.py", "/", ("websockets",),
        ),
        _spec(
            "ours-async-uvicorn", "ours: async view, uvicorn", "ours", "uvicorn",
            "djproject.asgi:application", "/ws/async/", (*DJANGO, "uvicorn"),
        ),
        _spec(
            "ours-sync-uvicorn", "ours: sync view, uvicorn", "ours", "uvicorn",
            "djproject.asgi:application", "/ws/sync/", (*DJANGO, "uvicorn"), threaded=True,
        ),
        _spec(
            "ours-gthread", "ours: sync view, gunicorn gthread", "ours", "gunicorn",
            "djproject.wsgi:application", "/ws/sync/", (*DJANGO, "gunicorn"), threaded=True,
        ),
        _spec(
            "ours-runserver", "ours: sync view, runserver", "ours", "runserver",
            "djproject.settings", "/ws/sync/", DJANGO, threaded=True,
        ),
        _spec(
            "starlette-uvicorn", "Starlette endpoint, uvicorn", "peer", "uvicorn",
            "starlette_app:app", "/ws/echo/", ("starlette", "uvicorn"),
        ),
        _spec(
            "channels-async-uvicorn", "Channels async, uvicorn", "peer", "uvicorn",
            "djproject.channels_asgi:application", "/ws/async/", ("django", "channels", "uvicorn"),
        ),
        _spec(
            "channels-sync-uvicorn", "Channels sync, uvicorn", "peer", "uvicorn",
            "djproject.channels_asgi:application", "/ws/sync/", ("django", "channels", "uvicorn"),
        ),
        _spec(
            "channels-async-daphne", "Channels async, daphne", "peer", "daphne",
            "djproject.channels_asgi:application", "/ws/async/", ("django", "channels", "daphne"),
        ),
        _spec(
            "channels-sync-daphne", "Channels sync, daphne", "peer", "daphne",
            "djproject.channels_asgi:application", "/ws/sync/", ("django", "channels", "daphne"),
        ),
        _spec(
            "flask-sock-gthread", "flask-sock, gunicorn gthread", "peer", "gunicorn",
            "flask_app:app", "/ws/echo/", ("flask", "flask_sock", "gunicorn"), threaded=True,
        ),
    ]
)  # fmt: skip


def missing_modules(spec: ServerSpec) -> list[str]:
    """The modules ``spec`` needs that this interpreter cannot import."""
    return [name for name in spec.requires if importlib.util.find_spec(name) is None]


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def command(spec: ServerSpec, port: int, options: Any) -> list[str]:
    """The command line that serves ``spec`` on ``port``.

    ``options`` has ``loop``, ``uvicorn_ws`` and ``threads`` (gunicorn's ``--threads``
    and ``--worker-connections``: enough for every idle connection).
    """
    python = sys.executable
    if spec.kind == "websockets":
        return [python, str(APPS_DIR / spec.app), "--host", HOST, "--port", str(port),
                "--loop", options.loop]  # fmt: skip
    if spec.kind == "uvicorn":
        return [
            python, "-m", "uvicorn", spec.app, "--host", HOST, "--port", str(port),
            "--ws", options.uvicorn_ws, "--loop", options.loop, "--ws-per-message-deflate",
            "false", "--no-access-log", "--log-level", "warning", "--backlog", "4096",
        ]  # fmt: skip
    if spec.kind == "gunicorn":
        threads = str(options.threads)
        return [
            python, "-m", "gunicorn", "-k", "gthread", "--workers", "1", "--threads", threads,
            "--worker-connections", str(options.threads + 100), "--bind", f"{HOST}:{port}",
            "--backlog", "4096", "--timeout", "300", "--graceful-timeout", "3",
            "--log-level", "warning", spec.app,
        ]  # fmt: skip
    if spec.kind == "runserver":
        return [python, "-m", "django", "runserver", "--noreload", f"{HOST}:{port}"]
    if spec.kind == "daphne":
        return [python, "-m", "daphne", "-b", HOST, "-p", str(port), "--websocket_timeout",
                "-1", "-v", "0", spec.app]  # fmt: skip
    raise ValueError(f"unknown server kind {spec.kind!r}")


def environment(options: Any) -> dict[str, str]:
    """The servers' environment: the apps importable, the Django project's settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJWS_", "PYTEST_")) and key != "DJANGO_SETTINGS_MODULE"
    }
    paths = [str(APPS_DIR), str(REPO_ROOT)]
    paths += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        PYTHONPATH=os.pathsep.join(paths),
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="djproject.settings",
        BENCH_OPCODE=options.opcode,
    )
    return env


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the harness dies, even by SIGKILL (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Server:
    """A running server: ``port``, ``pid`` (the process started), ``log_path``."""

    def __init__(self, spec: ServerSpec, options: Any, logdir: Path, cpu: int | None) -> None:
        self.spec = spec
        self.port = free_port()
        self.log_path = logdir / f"{spec.name}-{self.port}.log"
        argv = command(spec, self.port, options)
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu), *argv]  # taskset execs: same pid
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            cwd=APPS_DIR,
            env=environment(options),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-LOG_TAIL:]

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(
                f"{self.spec.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM its process group; SIGKILL what is left of it after ``timeout``."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        # gunicorn's worker may outlive its arbiter for a moment: the whole group goes.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)
        self._log.close()
