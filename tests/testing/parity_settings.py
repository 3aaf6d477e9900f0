"""The settings both sides of the parity tests run with.

A real ``runserver`` gets them through :mod:`tests.testing.server_settings`; the
in-process client through ``override_settings(**PARITY_SETTINGS)``.
"""

PARITY_SETTINGS = {
    "ROOT_URLCONF": "tests.testing.urls",
    "WEBSOCKET_MAX_MESSAGE_SIZE": 4096,
    "WEBSOCKET_ALLOWED_ORIGINS": None,
    "WEBSOCKET_ACCEPT_ALL": False,
    "WEBSOCKET_COMPRESSION": "deflate",
    "LOGIN_URL": "/accounts/login/",
    "DEBUG": False,
}
