"""The core and the transports work without Django settings (DESIGN.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_unit_tests_pass_without_django_settings_module():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:django",
            "-p",
            "no:cacheprovider",
            "-o",
            "DJANGO_SETTINGS_MODULE=",
            "-W",
            "ignore::pytest.PytestConfigWarning",
            "tests/unit/test_connection.py",
            "tests/unit/test_protocol.py",
            "tests/unit/test_transport_wsgi.py",
            "tests/unit/test_transport_asgi.py",
            "tests/unit/test_handshake.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_importing_the_core_configures_nothing():
    code = (
        "import django_websocket, django_websocket.connection, django_websocket.protocol, "
        "django_websocket.handshake, django_websocket.transports.wsgi, "
        "django_websocket.transports.memory\n"
        "from django.conf import settings\n"
        "assert not settings.configured\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)
