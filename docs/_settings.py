"""The smallest Django settings that let Sphinx's autodoc import django_websocket."""

SECRET_KEY = "docs-build-not-secret"
INSTALLED_APPS = [
    "django_websocket",
    "django.contrib.auth",
    "django.contrib.contenttypes",
]
DATABASES: dict = {}
USE_TZ = True
