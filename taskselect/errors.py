"""The one exception type users see: a specific, one-line message about their input."""


class TaskselectError(Exception):
    """Bad input or configuration, reported as one line naming the file, column or parameter."""
