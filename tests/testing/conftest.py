"""Fixtures of the testing-helper tests.

The real-server side of the parity tests reuses ``tests/integration/conftest.py``:
its ``server`` and ``start_server`` fixtures, with ``server_env`` overridden here so
that ``runserver`` serves this directory's views (``tests.testing.server_settings``).
"""

import subprocess
import sys
import threading
import time
import uuid

import pytest

from django_websocket.connection import registry
from tests.integration.conftest import (  # noqa: F401 - fixtures, used by name
    REPO_ROOT,
    RunServer,
    project_env,
    server,
    session_server,
    start_server,
)
from tests.testing import views

LEAK_TIMEOUT = 5


@pytest.fixture(scope="session")
def server_env(tmp_path_factory):
    """The environment of every runserver here: this directory's settings, migrated."""
    env = project_env(tmp_path_factory.mktemp("testing-db") / "db.sqlite3")
    env["DJANGO_SETTINGS_MODULE"] = "tests.testing.server_settings"
    result = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode:
        pytest.fail(f"migrate failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return env


@pytest.fixture(scope="session")
def error_server(server_env, tmp_path_factory):
    """A runserver for the scenarios whose views raise: tracebacks are expected in its log.

    The shared ``server`` fails the session on any traceback it ever logged.
    """
    raising = RunServer(server_env, [], tmp_path_factory.mktemp("error-server"))
    raising.allow_traceback()
    yield raising
    problems = raising.finish()
    if problems:
        pytest.fail("; ".join(problems) + raising.log_tail())


@pytest.fixture
def key():
    """A fresh ``?key=`` for :func:`tests.testing.views.record`."""
    fresh = uuid.uuid4().hex
    yield fresh
    views.EVENTS.pop(fresh, None)


@pytest.fixture
def release(key):
    """The event that releases a :class:`~tests.testing.views.Stall` view with ``?key=``.

    Set at teardown whatever happened, so no stalled view outlives the test for long.
    """
    event = views.STALLS[key] = threading.Event()
    yield event
    event.set()
    views.STALLS.pop(key, None)


@pytest.fixture(autouse=True)
def no_leaked_connections():
    """Every test ends with as many open WebSockets as it started with."""
    before = len(registry)
    yield
    # A live server's session may end just after the client saw the close: bounded poll.
    deadline = time.monotonic() + LEAK_TIMEOUT
    while len(registry) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(registry) <= before, f"{len(registry) - before} websocket(s) outlived the test"
