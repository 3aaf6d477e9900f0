#!/usr/bin/env python
"""Run the demo project's management commands (``make demo`` runs it from the repo root)."""

import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    try:
        import django_websocket  # noqa: F401
    except ImportError:
        # Not installed (``make demo`` installs it editable): use the checkout.
        sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
