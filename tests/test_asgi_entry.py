"""``asgi.py`` as ``startproject`` writes it, with only the import swapped (SPEC 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Django's generated asgi.py imports before it sets DJANGO_SETTINGS_MODULE.
ASGI_PY = """
import os

from django_websocket.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.project.settings")

application = get_asgi_application()
print(type(application).__name__)
"""


def test_the_generated_asgi_py_works_with_our_import_swapped_in():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", ASGI_PY],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "WebSocketASGIHandler"
