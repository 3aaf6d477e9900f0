"""Settings of the ``runserver`` that serves :mod:`tests.testing.urls` in the parity tests.

``tests/project/settings.py`` (env-driven limits, a file database) with the parity
settings on top; ``DJWS_MAX_CONNECTIONS`` and the other
environment-driven limits not in the parity settings still apply.
"""

import os

from tests.project.settings import *  # noqa: F403
from tests.testing.parity_settings import PARITY_SETTINGS

globals().update(PARITY_SETTINGS)

#: Where :func:`tests.testing.views.record` writes for the tests to read.
TESTING_EVENTS_DIR = os.environ.get("DJWS_EVENTS_DIR")
