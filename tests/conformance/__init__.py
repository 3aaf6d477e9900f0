"""Autobahn TestSuite conformance harness (``autobahn.py``) and its Django project."""
