from django.apps import AppConfig


class GroupsProjectConfig(AppConfig):
    """The groups test project as an app: it provides ``broadcast_message``."""

    name = "tests.groups.project"
    label = "groups_project"  # not "project": tests.project has that label
