"""Fixtures for the peer, disconnect and shutdown abuse tests.

``run_server(name, extra_env=..., extra_args=...)`` is a context manager that starts
``tests/serverproject`` under a real server (:class:`tests.integration.servers.LiveServer`)
with extra settings in its environment and extra command-line options, checks that
the server answering on its port is that process, and on exit stops it (SIGTERM,
bounded) and kills what is left of its process group: hypercorn's spawned worker
outlives a parent that was killed. Servers may be started from several threads at
once: each gets a port no other got (``free_port`` alone may hand the same free
port to two threads, and gunicorn keeps retrying a port in use, so the second
server would look started while another one answers).
"""

import contextlib
import json
import os
import signal
import threading

import pytest

from tests.abuse import abuse_env, worker_pid
from tests.integration import servers

_ports_lock = threading.Lock()
_ports_given = set()


def _unique_free_port(free_port=servers.free_port):
    with _ports_lock:
        while (port := free_port()) in _ports_given:
            pass
        _ports_given.add(port)
        return port


#: Held while ``servers.COMMANDS`` is patched for one start (a module-level dict).
_commands_lock = threading.Lock()


def _start(env, workdir, name, extra_env, extra_args):
    if not extra_args:
        return servers.LiveServer(name, env, workdir, extra_env=extra_env)
    with _commands_lock, pytest.MonkeyPatch.context() as patch:
        # After the application argument: argparse (daphne, hypercorn) accepts it.
        patch.setitem(servers.COMMANDS, name, f"{servers.COMMANDS[name]} {extra_args}")
        return servers.LiveServer(name, env, workdir, extra_env=extra_env)


@contextlib.contextmanager
def _running(env, tmp_path_factory, name, *, extra_env=None, extra_args=""):
    server = _start(env, tmp_path_factory.mktemp(name), name, extra_env, extra_args)
    try:
        _status, _headers, body = server.http("GET", "/abuse/probe/")
        assert json.loads(body)["pid"] == worker_pid(server), (
            f"another process answers on {server.name}'s port {server.port}"
        )
        yield server
    finally:
        try:
            if server.alive() and not server.stopped:
                server.stop()
        finally:
            server.stopped = True
            server._kill()
            with contextlib.suppress(ProcessLookupError):  # its own session: pgid == pid
                os.killpg(server.process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def run_server(tmp_path_factory):
    """Return ``run_server(name, *, extra_env=None, extra_args="")``, a context manager."""
    env = abuse_env(tmp_path_factory)

    def run(name, **options):
        return _running(env, tmp_path_factory, name, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(servers, "free_port", _unique_free_port)
        yield run
