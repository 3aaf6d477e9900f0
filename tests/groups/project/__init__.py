"""The groups test project: also a Django app (for the ``broadcast_message`` command)."""
