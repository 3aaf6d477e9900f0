"""A small Django project that the integration tests serve with runserver."""
