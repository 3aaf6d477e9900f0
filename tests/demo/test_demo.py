"""Run the demo's own tests (``demo/chat/tests.py``) as part of the repository's suite.

They need the demo's settings (its ``chat`` app, URLs and templates), while this
session is configured with ``tests.project.settings`` once and for all, so they run
in a pytest subprocess with ``DJANGO_SETTINGS_MODULE=demo.settings``. pytest-django
finds ``demo/manage.py`` and puts ``demo/`` on ``sys.path``, as it would in a project
of your own; the repository's pytest options (``filterwarnings = error``, timeouts)
apply there too. The tests themselves are plain Django ``TestCase`` classes, so
``python manage.py test`` runs them as well, from ``demo/``.
"""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_TESTS = "demo/chat/tests.py"
TIMEOUT = 100  # seconds for the whole run; each of its tests is bounded by pytest-timeout


def test_the_demo_tests_pass():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="demo.settings", PYTHONDONTWRITEBYTECODE="1")
    env.pop("WEBSOCKET_BROKER_URL", None)  # the demo's tests run on the memory broker
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", DEMO_TESTS],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"the demo's tests failed:\n{output[-12000:]}"
    assert " passed" in output and "skipped" not in output, output[-3000:]
