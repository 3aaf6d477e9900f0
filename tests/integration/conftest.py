"""Fixtures that run the test project under a real ``manage.py runserver``.

* ``server``: the session's default runserver (checked after every test: still
  alive, no "Traceback" in what it logged during the test).
* ``start_server(env={...}, args=[...])``: a runserver of its own with extra
  environment (the settings in ``tests/project/settings.py`` read ``DJWS_*``),
  stopped with SIGINT at the end of the test.

A server object has ``host``, ``port``, ``url``, ``ws_url(path)``,
``http_url(path)``, ``log()``, ``wait_record(key)`` (the JSON a view wrote with
``tests.project.views.record``), ``allow_traceback()`` and ``stop()``.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30
SHUTDOWN_TIMEOUT = 20
RECORD_TIMEOUT = 15
LOG_TAIL = 12000


def free_port():
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def project_env(db_path):
    """Return the environment for a ``python -m django`` subprocess."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJWS_")}
    paths = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        DJANGO_SETTINGS_MODULE="tests.project.settings",
        PYTHONPATH=os.pathsep.join(paths),
        PYTHONUNBUFFERED="1",
        DJWS_TEST_DB=str(db_path),
    )
    return env


def _default_sigint():
    # A background job (`make test &`, some CI runners) starts with SIGINT ignored,
    # which the child would inherit: the tests stop runserver with SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class RunServer:
    """One ``python -m django runserver --noreload`` subprocess."""

    def __init__(self, env, args, workdir):
        self.host = HOST
        self.port = free_port()
        self.url = f"http://{self.host}:{self.port}"
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.events_dir = self.workdir / "events"
        self.events_dir.mkdir(exist_ok=True)
        self.log_path = self.workdir / "runserver.log"
        self.env = dict(env, DJWS_EVENTS_DIR=str(self.events_dir))
        self.args = list(args)
        self.traceback_allowed = False
        self.exit_expected = False
        self.signalled = False
        command = [
            sys.executable,
            "-m",
            "django",
            "runserver",
            "--noreload",
            *self.args,
            f"{self.host}:{self.port}",
        ]
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in finish()
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_default_sigint,
        )
        try:
            self._wait_until_listening()
        except BaseException:
            self._terminate()
            raise

    def __repr__(self):
        return f"<RunServer {self.url} args={self.args}>"

    def ws_url(self, path):
        return f"ws://{self.host}:{self.port}{path}"

    def http_url(self, path):
        return f"{self.url}{path}"

    def log(self):
        """Return what the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, text=None):
        text = self.log() if text is None else text
        return "\n--- runserver log (tail) ---\n" + text[-LOG_TAIL:]

    def allow_traceback(self):
        """Do not fail this test because the server logged a traceback."""
        self.traceback_allowed = True

    def alive(self):
        return self.process.poll() is None

    def _wait_until_listening(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if not self.alive():
                raise RuntimeError(
                    f"runserver exited with {self.process.returncode} "
                    f"before listening" + self.log_tail()
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"runserver not listening on {self.port} after "
                    f"{STARTUP_TIMEOUT}s" + self.log_tail()
                )
            time.sleep(0.05)

    def wait_record(self, key, timeout=RECORD_TIMEOUT):
        """Return the facts a view recorded under *key* (poll with a deadline)."""
        path = self.events_dir / f"{key}.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() >= deadline:
                pytest.fail(f"no server record {key!r} within {timeout}s" + self.log_tail())
            time.sleep(0.02)
        return json.loads(path.read_text())

    def interrupt(self):
        """Send SIGINT (Ctrl-C) now; the server is expected to exit."""
        self.exit_expected = True
        self.signalled = True
        self.process.send_signal(signal.SIGINT)

    def stop(self, sig=signal.SIGINT, timeout=SHUTDOWN_TIMEOUT):
        """Send *sig* and wait (bounded) for the exit; return the exit code."""
        self.exit_expected = True
        if self.alive() and not self.signalled:  # a second Ctrl-C would interrupt the exit
            self.signalled = True
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._terminate()
            pytest.fail(f"runserver did not exit within {timeout}s of {sig!r}" + self.log_tail())

    def _terminate(self):
        if self.alive():
            self.process.kill()
        self.process.wait(timeout=SHUTDOWN_TIMEOUT)
        self._log_file.close()

    def problems(self, since=0):
        """Return what is wrong with the server (a list of lines)."""
        found = []
        if not self.alive() and not self.exit_expected:
            found.append(f"runserver fell over (exit code {self.process.returncode})")
        if not self.traceback_allowed and "Traceback" in self.log()[since:]:
            found.append("runserver logged a Traceback")
        return found

    def finish(self):
        """Check the server, stop it with SIGINT; return the problems found."""
        found = self.problems()
        if self.alive():
            self.exit_expected = True
            if not self.signalled:
                self.signalled = True
                self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                found.append(f"runserver did not exit within {SHUTDOWN_TIMEOUT}s of SIGINT")
        self._terminate()
        if not self.traceback_allowed and "Traceback" in self.log():
            found.append("runserver logged a Traceback")
        return sorted(set(found))


@pytest.fixture(scope="session")
def server_env(tmp_path_factory):
    """The environment of every runserver: a migrated SQLite file database."""
    db_path = tmp_path_factory.mktemp("db") / "db.sqlite3"
    env = project_env(db_path)
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
def session_server(server_env, tmp_path_factory):
    server = RunServer(server_env, [], tmp_path_factory.mktemp("server"))
    yield server
    problems = server.finish()
    if problems:
        pytest.fail("; ".join(problems) + server.log_tail())


@pytest.fixture
def server(session_server):
    """The shared runserver; after the test it must be alive with no new traceback."""
    offset = len(session_server.log())
    yield session_server
    problems = session_server.problems(since=offset)
    session_server.traceback_allowed = False
    if problems:
        pytest.fail("; ".join(problems) + session_server.log_tail(session_server.log()[offset:]))


@pytest.fixture
def start_server(server_env, tmp_path):
    """Start a runserver of its own: ``start_server(env={"DJWS_...": ...}, args=[...])``."""
    started = []

    def start(env=None, args=()):
        server_env_here = dict(server_env)
        server_env_here.update({name: str(value) for name, value in (env or {}).items()})
        server = RunServer(server_env_here, args, tmp_path / f"server-{len(started)}")
        started.append(server)
        return server

    yield start
    report = []
    for server in started:
        problems = server.finish()
        if problems:
            report.append(f"{server!r}: " + "; ".join(problems) + server.log_tail())
    if report:
        pytest.fail("\n".join(report))
