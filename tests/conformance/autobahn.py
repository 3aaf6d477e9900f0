#!/usr/bin/env python3
"""Run Autobahn TestSuite's fuzzing client against our echo endpoints on real servers.

Usage (from the repository root, with the project's virtualenv)::

    .venv/bin/python tests/conformance/autobahn.py                       # cases 1-7, 9, 10
    .venv/bin/python tests/conformance/autobahn.py --servers runserver,uvicorn
    .venv/bin/python tests/conformance/autobahn.py --servers runserver --cases "12.*,13.*"
    .venv/bin/python tests/conformance/autobahn.py --servers all --paths /echo/,/aecho/

What it does:

1. Creates (once; later runs reuse it) a Python 2.7 virtualenv with
   ``autobahntestsuite`` and its pinned dependencies (``requirements-py27.txt``) under
   ``.venv-autobahn/``. Autobahn TestSuite is Python 2 code; the interpreter is found
   in ``$AUTOBAHN_PYTHON2``, then ``$(pyenv root)/versions/2.7*``, then ``python2.7``
   on ``PATH``.
2. For each server: starts it as a subprocess (with this interpreter,
   ``sys.executable``) serving ``tests/conformance/project``, writes a fuzzingclient
   spec with one agent per path, runs ``wstest -m fuzzingclient``, stops the server.
3. Reads ``index.json`` and prints, per server and path, the count of each result
   (OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED, FAILED) and the ids of the cases
   that are not OK, with the case's expectation and what was observed for FAILED ones.

Exit status: 0 when no case FAILED, 1 when one did, 2 when the harness itself could
not run (no Python 2.7, a server that did not start, no report). Only FAILED gates:
NON-STRICT results legitimately flip between runs (they depend on how TCP segments
arrive). Reports (HTML and JSON) and server logs are kept in ``--outdir``
(``tests/artifacts/autobahn/<server>/`` by default).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
REQUIREMENTS = HERE / "requirements-py27.txt"
DEFAULT_CACHE = REPO_ROOT / ".venv-autobahn"
DEFAULT_OUTDIR = REPO_ROOT / "tests" / "artifacts" / "autobahn"
DEFAULT_CASES = "1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*"
DEFAULT_SERVERS = "runserver,gunicorn-gthread,uvicorn,hypercorn"
DEFAULT_PATHS = "/echo/"
SETTINGS = "tests.conformance.project.settings"
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60
SHUTDOWN_TIMEOUT = 20
#: Results in the order they are printed (Autobahn's ``behavior`` values).
BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")

_WSGI = "tests.conformance.project.wsgi"
_ASGI = "tests.conformance.project.asgi:application"
_GUNICORN = "-m gunicorn --timeout 300 --graceful-timeout 5 --log-level warning"
#: How each server is started (arguments of ``python``); ``{host}``/``{port}`` filled in.
SERVERS = {
    "runserver": "-m django runserver --noreload {host}:{port}",
    "gunicorn-gthread": f"{_GUNICORN} -k gthread --threads 32 -b {{host}}:{{port}} {_WSGI}",
    "gunicorn-gevent": f"{_GUNICORN} -k gevent -b {{host}}:{{port}} {_WSGI}",
    "gunicorn-eventlet": f"{_GUNICORN} -k eventlet -b {{host}}:{{port}} {_WSGI}",
    "uvicorn": f"-m uvicorn {_ASGI} --host {{host}} --port {{port}} --ws websockets",
    "uvicorn-sansio": f"-m uvicorn {_ASGI} --host {{host}} --port {{port}} --ws websockets-sansio",
    "uvicorn-wsproto": f"-m uvicorn {_ASGI} --host {{host}} --port {{port}} --ws wsproto",
    "hypercorn": f"-m hypercorn -b {{host}}:{{port}} {_ASGI}",
    # daphne's default limits are 1 MiB per message and per frame (case 9 sends 16 MiB);
    # raise them to WEBSOCKET_MAX_MESSAGE_SIZE, as the other servers' defaults are.
    "daphne": (
        f"-m daphne --websocket-max-message-size {16 * 2**20} "
        f"--websocket-max-frame-size {16 * 2**20} -b {{host}} -p {{port}} {_ASGI}"
    ),
}
#: The module each server needs in this interpreter.
SERVER_MODULES = {
    "runserver": "django",
    "gunicorn-gthread": "gunicorn",
    "gunicorn-gevent": "gevent",
    "gunicorn-eventlet": "eventlet",
    "uvicorn": "uvicorn",
    "uvicorn-sansio": "uvicorn",
    "uvicorn-wsproto": "wsproto",
    "hypercorn": "hypercorn",
    "daphne": "daphne",
}


class HarnessError(Exception):
    """The harness could not produce a report (not a conformance failure)."""


# --------------------------------------------------------------------------- the 2.7 env


def _log(message: str) -> None:
    print(f"[autobahn] {message}", file=sys.stderr, flush=True)


def _is_python27(candidate: str) -> bool:
    try:
        result = subprocess.run(
            [candidate, "-c", "import sys; assert sys.version_info[:2] == (2, 7)"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def find_python27() -> str | None:
    """Return a CPython 2.7 interpreter, or ``None`` (see the module docstring)."""
    candidates = []
    if os.environ.get("AUTOBAHN_PYTHON2"):
        candidates.append(os.environ["AUTOBAHN_PYTHON2"])
    pyenv_root = os.environ.get("PYENV_ROOT")
    if not pyenv_root and shutil.which("pyenv"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            pyenv_root = subprocess.run(
                ["pyenv", "root"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
    if pyenv_root:
        found = glob.glob(os.path.join(pyenv_root, "versions", "2.7*", "bin", "python2.7"))
        candidates += sorted(found, reverse=True)
    candidates += [p for p in (shutil.which("python2.7"),) if p]
    return next((c for c in candidates if _is_python27(c)), None)


def _run_logged(args: list[str], log: Path, **kwargs) -> None:
    """Run a setup command, appending its output to *log*; raise HarnessError on failure."""
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(map(str, args))}\n".encode())
        out.flush()
        result = subprocess.run(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs
        )
    if result.returncode:
        tail = log.read_text(errors="replace")[-4000:]
        raise HarnessError(f"{args[0]} failed ({result.returncode}); log {log}:\n{tail}")


def _env_stamp(python2: str) -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(os.path.realpath(python2).encode())
    return digest.hexdigest()


def ensure_wstest(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """Return the ``wstest`` executable, creating its Python 2.7 env on first use.

    The env lives in ``cache_dir/py27``; a stamp (the requirements' hash and the
    interpreter) makes later calls return at once. A lock serialises concurrent
    callers; an interrupted install is redone from scratch.

    Raises:
        HarnessError: no Python 2.7 interpreter, or an install step failed.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    env_dir = cache_dir / "py27"
    wstest = env_dir / "bin" / "wstest"
    stamp = env_dir / ".installed"
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and wstest.exists():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                recorded = json.loads(stamp.read_text())
                python2 = recorded["python2"]
                if os.path.exists(python2) and recorded["hash"] == _env_stamp(python2):
                    return wstest
        python2 = find_python27()
        if python2 is None:
            raise HarnessError(
                "no Python 2.7 interpreter: set AUTOBAHN_PYTHON2, or install one with "
                "`pyenv install 2.7.18`"
            )
        _log(f"creating the Autobahn TestSuite env in {env_dir} (Python 2.7: {python2})")
        log = cache_dir / "install.log"
        log.write_text("")
        shutil.rmtree(env_dir, ignore_errors=True)
        env = dict(
            os.environ,
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PIP_NO_PYTHON_VERSION_WARNING="1",
            VIRTUALENV_NO_PERIODIC_UPDATE="1",
        )
        # virtualenv 20.22 dropped Python 2 targets; it runs from a Python 3 venv of its own.
        bootstrap = cache_dir / "bootstrap"
        virtualenv = bootstrap / "bin" / "virtualenv"
        if not virtualenv.exists():
            shutil.rmtree(bootstrap, ignore_errors=True)
            _run_logged([sys.executable, "-m", "venv", str(bootstrap)], log, env=env)
            _run_logged(
                [str(bootstrap / "bin" / "python"), "-m", "pip", "install", "virtualenv<20.22"],
                log,
                env=env,
            )
        _run_logged([str(virtualenv), "-p", python2, str(env_dir)], log, env=env)
        # --no-deps: every package is pinned, and pip 20.3's legacy resolver would
        # otherwise pick versions that do not run on 2.7 for unpinned ones.
        pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--no-deps"]
        try:
            _run_logged([*pip, "--prefer-binary", "-r", str(REQUIREMENTS)], log, env=env)
        except HarnessError:
            # wsaccel is the only package built from source (a C compiler is needed);
            # the suite runs without it, only slower.
            _log(f"install failed, retrying without wsaccel (slower); see {log}")
            pinned = [
                line
                for line in REQUIREMENTS.read_text().splitlines()
                if not line.strip().lower().startswith("wsaccel")
            ]
            fallback = cache_dir / "requirements-no-wsaccel.txt"
            fallback.write_text("\n".join(pinned) + "\n")
            _run_logged([*pip, "--prefer-binary", "-r", str(fallback)], log, env=env)
        _run_logged([str(wstest), "--help"], log, env=env)
        stamp.write_text(json.dumps({"hash": _env_stamp(python2), "python2": python2}) + "\n")
        _log("Autobahn TestSuite env ready")
        return wstest


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJWS_")}
    paths = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        PYTHONPATH=os.pathsep.join(paths),
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE=SETTINGS,
    )
    env.update(extra or {})
    return env


class Server:
    """One server subprocess serving the conformance project; a context manager."""

    def __init__(self, name: str, log_path: Path, env: dict[str, str] | None = None) -> None:
        if name not in SERVERS:
            raise HarnessError(f"unknown server {name!r}; known: {', '.join(SERVERS)}")
        self.name = name
        self.port = free_port()
        self.log_path = log_path
        self.env = server_env(env)
        args = SERVERS[name].format(host=HOST, port=self.port).split()
        self.command = [sys.executable, *args]
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.stop_seconds: float | None = None

    def __enter__(self) -> Server:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_until_listening()
        except BaseException:
            self.stop()
            self._log.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self._log.close()

    def url(self, path: str) -> str:
        return f"ws://{HOST}:{self.port}{path}"

    def log_tail(self, size: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-size:].decode("utf-8", "replace")
        return ""

    def _wait_until_listening(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(
                    f"{self.name} exited with {self.process.returncode} at start-up:\n"
                    f"{self.log_tail()}"
                )
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 1):
                return
            time.sleep(0.1)
        raise HarnessError(
            f"{self.name} did not listen within {STARTUP_TIMEOUT}s:\n{self.log_tail()}"
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGINT for runserver, SIGTERM for the others; SIGKILL after a timeout."""
        process = self.process
        if process is None or process.poll() is not None:
            if process is not None:
                self.exit_code = process.returncode
            return
        process.send_signal(signal.SIGINT if self.name == "runserver" else signal.SIGTERM)
        started = time.monotonic()
        try:
            self.exit_code = process.wait(SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            _log(f"{self.name} did not exit within {SHUTDOWN_TIMEOUT}s of its signal: killed")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own session: only its workers
            self.exit_code = process.wait()
        self.stop_seconds = time.monotonic() - started


def missing_servers(names: list[str]) -> list[str]:
    """Return the servers whose module this interpreter cannot import."""
    import importlib.util

    return [n for n in names if importlib.util.find_spec(SERVER_MODULES[n]) is None]


# --------------------------------------------------------------------------- results


@dataclasses.dataclass
class CaseResult:
    case: str
    behavior: str
    behavior_close: str
    close_code: int | None
    duration_ms: int
    details: dict  # the per-case JSON report (description, expectation, result, ...)


@dataclasses.dataclass
class AgentResult:
    """What one server/path pair got."""

    server: str
    path: str
    agent: str
    cases: list[CaseResult]
    wstest_seconds: float
    report_dir: Path
    server_log: Path
    server_tracebacks: int = 0

    @property
    def counts(self) -> Counter:
        return Counter(c.behavior for c in self.cases)

    def ids(self, behavior: str) -> list[str]:
        return [c.case for c in self.cases if c.behavior == behavior]

    @property
    def failed(self) -> list[CaseResult]:
        return [c for c in self.cases if c.behavior == "FAILED"]

    @property
    def close_issues(self) -> list[CaseResult]:
        """Cases whose close was not OK (wrong code, unclean, ...), whatever ``behavior``."""
        return [c for c in self.cases if c.behavior_close not in ("OK", "INFORMATIONAL")]


def _case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split(".") if part.isdigit())


def read_report(report_dir: Path, agent: str) -> list[CaseResult]:
    """Parse ``index.json`` (and each case's JSON) for *agent*."""
    index_path = report_dir / "index.json"
    if not index_path.exists():
        raise HarnessError(f"wstest wrote no report ({index_path} missing)")
    index = json.loads(index_path.read_text())
    if agent not in index or not index[agent]:
        raise HarnessError(f"no results for {agent!r} in {index_path}")
    results = []
    for case_id in sorted(index[agent], key=_case_key):
        entry = index[agent][case_id]
        details = {}
        report_file = entry.get("reportfile")
        if report_file and (report_dir / report_file).exists():
            with contextlib.suppress(ValueError):
                details = json.loads((report_dir / report_file).read_text())
        results.append(
            CaseResult(
                case=case_id,
                behavior=entry.get("behavior", "?"),
                behavior_close=entry.get("behaviorClose", "?"),
                close_code=entry.get("remoteCloseCode"),
                duration_ms=int(entry.get("duration") or 0),
                details=details,
            )
        )
    return results


def _agent_name(server: str, path: str) -> str:
    return f"{server}{path.rstrip('/').replace('/', '-')}" if path.strip("/") else server


def _run_wstest(
    wstest: Path, spec_path: Path, report_dir: Path, timeout: float, verbose: bool
) -> str:
    """Run ``wstest -m fuzzingclient``; return its output (also in ``wstest.log``).

    A shared lock on the env keeps :func:`ensure_wstest` (in another process) from
    recreating it under a running suite.
    """
    cache_dir = wstest.parents[2]  # <cache>/py27/bin/wstest
    command = [str(wstest), "-m", "fuzzingclient", "-s", str(spec_path)]
    with open(cache_dir / ".lock", "a") as lock, open(report_dir / "wstest.log", "wb") as log:
        fcntl.flock(lock, fcntl.LOCK_SH)
        process = subprocess.Popen(
            command,
            cwd=report_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            process.kill()

        watchdog = threading.Timer(timeout, expire)
        watchdog.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                if verbose:
                    sys.stdout.write(line.decode("utf-8", "replace"))
                    sys.stdout.flush()
            returncode = process.wait()
        finally:
            watchdog.cancel()
            if process.poll() is None:  # interrupted (Ctrl-C): do not leave it running
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if timed_out.is_set():
            raise HarnessError(f"wstest did not finish within {timeout}s")
    output = (report_dir / "wstest.log").read_text(errors="replace")
    if returncode:
        raise HarnessError(f"wstest exited with {returncode}:\n{output[-3000:]}")
    return output


def _check_complete(wstest_log: str, reported: int, report_dir: Path) -> None:
    """Fail unless every planned case has a result (wstest exits 0 when cases are lost)."""
    match = re.search(r"will run (\d+) test cases against (\d+) servers", wstest_log)
    if match is None:
        raise HarnessError(f"wstest did not start the cases; see {report_dir / 'wstest.log'}")
    planned = int(match.group(1)) * int(match.group(2))
    if reported != planned:
        errors = [line for line in wstest_log.splitlines() if "failed (" in line]
        raise HarnessError(
            f"{reported} of {planned} case results in {report_dir / 'index.json'}; wstest said:\n"
            + "\n".join(errors[:5])
        )


def run_server(
    server: str,
    *,
    wstest: Path,
    cases: list[str],
    paths: list[str],
    outdir: Path,
    exclude: list[str] = (),  # type: ignore[assignment]
    timeout: float = 3600,
    verbose: bool = False,
    env: dict[str, str] | None = None,
) -> list[AgentResult]:
    """Run the fuzzing client against *server* (one agent per path); return the results."""
    report_dir = Path(outdir) / server
    shutil.rmtree(report_dir, ignore_errors=True)
    report_dir.mkdir(parents=True)
    log_path = report_dir / "server.log"
    agents = {path: _agent_name(server, path) for path in paths}
    with Server(server, log_path, env) as srv:
        spec = {
            "outdir": str(report_dir),
            "servers": [{"agent": agents[p], "url": srv.url(p)} for p in paths],
            "cases": cases,
            "exclude-cases": list(exclude),
            "exclude-agent-cases": {},
            # wstest gives a handshake 5 s by default; a loaded CI machine once stalled
            # longer between two cases (9.4.5 -> 9.4.6, ~40 ms each otherwise) and the
            # case was reported FAILED, its handshake unanswered. Conformance, not speed.
            "options": {"openHandshakeTimeout": 30},
        }
        spec_path = report_dir / "fuzzingclient.json"
        spec_path.write_text(json.dumps(spec, indent=2))
        started = time.monotonic()
        wstest_log = _run_wstest(wstest, spec_path, report_dir, timeout, verbose)
        seconds = time.monotonic() - started
        if not srv.alive():
            raise HarnessError(f"{server} died during the run:\n{srv.log_tail()}")
    results = {path: read_report(report_dir, agents[path]) for path in paths}
    _check_complete(wstest_log, sum(len(r) for r in results.values()), report_dir)
    log_text = log_path.read_text(errors="replace")
    return [
        AgentResult(
            server=server,
            path=path,
            agent=agents[path],
            cases=results[path],
            wstest_seconds=seconds,
            report_dir=report_dir,
            server_log=log_path,
            server_tracebacks=log_text.count("Traceback (most recent call last)"),
        )
        for path in paths
    ]


# --------------------------------------------------------------------------- printing


def _one_line(value: object, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_failure(case: CaseResult) -> str:
    """Return what the case expected and what was observed, for a FAILED case."""
    d = case.details
    lines = [
        f"  {case.case}: {_one_line(d.get('description', ''))}",
        f"      expected: {_one_line(d.get('expectation', ''))}",
        f"      observed: {_one_line(d.get('result', ''))}; close: {case.behavior_close}"
        f" (code {case.close_code}) - {_one_line(d.get('resultClose', ''))}",
    ]
    return "\n".join(lines)


def format_result(result: AgentResult, details: bool = True) -> str:
    counts = result.counts
    total = len(result.cases)
    case_seconds = sum(c.duration_ms for c in result.cases) / 1000
    lines = [
        f"== {result.server} {result.path}  ({total} cases, wstest {result.wstest_seconds:.1f} s,"
        f" cases {case_seconds:.1f} s; report {result.report_dir / 'index.html'})",
        "   " + "  ".join(f"{b} {counts.get(b, 0)}" for b in BEHAVIORS),
    ]
    other = sorted(set(counts) - set(BEHAVIORS))
    if other:
        lines.append("   other: " + ", ".join(f"{b} {counts[b]}" for b in other))
    for behavior in ("NON-STRICT", "UNIMPLEMENTED", "FAILED", *other):
        ids = result.ids(behavior)
        if ids:
            lines.append(f"   {behavior}: {' '.join(ids)}")
    close_issues = [c for c in result.close_issues if c.behavior != "FAILED"]
    if close_issues:
        lines.append(
            "   close not OK: "
            + " ".join(f"{c.case}({c.behavior_close},{c.close_code})" for c in close_issues)
        )
    if result.server_tracebacks:
        lines.append(
            f"   server log: {result.server_tracebacks} traceback(s) in {result.server_log}"
        )
    if details and result.failed:
        lines.append("   FAILED cases:")
        lines += [describe_failure(c) for c in result.failed]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Autobahn TestSuite (fuzzingclient) against django_websocket echo views."
    )
    parser.add_argument(
        "--servers",
        default=DEFAULT_SERVERS,
        help=f"comma-separated, or 'all' ({', '.join(SERVERS)}); default: %(default)s",
    )
    parser.add_argument(
        "--cases", default=DEFAULT_CASES, help="comma-separated case patterns; default: %(default)s"
    )
    parser.add_argument("--exclude-cases", default="", help="comma-separated case patterns")
    parser.add_argument(
        "--paths",
        default=DEFAULT_PATHS,
        help="endpoints, one agent each: /echo/ (sync view), /aecho/ (async); default: %(default)s",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the servers (repeatable), e.g. WEBSOCKETS_MAX_FRAGMENTS=0",
    )
    parser.add_argument("--outdir", type=Path, default=DEFAULT_OUTDIR)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per server run")
    parser.add_argument("--verbose", action="store_true", help="show wstest's output")
    parser.add_argument(
        "--setup-only", action="store_true", help="create the Python 2.7 env and exit"
    )
    args = parser.parse_args(argv)

    servers = list(SERVERS) if args.servers == "all" else _split(args.servers)
    unknown = [s for s in servers if s not in SERVERS]
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; known: {', '.join(SERVERS)}")
    extra_env = {}
    for item in args.server_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--server-env needs NAME=VALUE, not {item!r}")
        extra_env[name] = value
    try:
        wstest = ensure_wstest(args.cache_dir)
        if args.setup_only:
            print(wstest)
            return 0
        missing = missing_servers(servers)
        if missing:
            raise HarnessError(
                f"not installed in {sys.executable}: {', '.join(missing)} "
                f"(pip install {' '.join(SERVER_MODULES[m] for m in missing)})"
            )
        results: list[AgentResult] = []
        for server in servers:
            _log(f"{server}: cases {args.cases}")
            started = time.monotonic()
            batch = run_server(
                server,
                wstest=wstest,
                cases=_split(args.cases),
                paths=_split(args.paths),
                outdir=args.outdir,
                exclude=_split(args.exclude_cases),
                timeout=args.timeout,
                verbose=args.verbose,
                env=extra_env,
            )
            _log(f"{server}: done in {time.monotonic() - started:.1f} s")
            for result in batch:
                print(format_result(result), flush=True)
            results += batch
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = {r.agent: r.ids("FAILED") for r in results if r.failed}
    print()
    if failed:
        print("FAILED: " + "; ".join(f"{a}: {' '.join(ids)}" for a, ids in failed.items()))
        return 1
    print(f"no case FAILED ({len(results)} agent(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
