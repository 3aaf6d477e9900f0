"""Sphinx configuration: ``sphinx-build docs docs/_build``."""

import re
from pathlib import Path

_init = Path(__file__).resolve().parent.parent / "django_websocket" / "__init__.py"
_match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', _init.read_text(), re.MULTILINE)

project = "django-websocket"
author = "django-websocket contributors"
copyright = "django-websocket contributors"
release = _match.group(1) if _match else "unknown"
version = ".".join(release.split(".")[:2])

extensions: list[str] = []
templates_path: list[str] = []
exclude_patterns = ["_build"]
html_theme = "alabaster"
