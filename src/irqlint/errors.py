"""Errors the user can act on: reported as one line, exit code 2, never a traceback."""


class InputError(Exception):
    """Bad input or usage: a missing path, a malformed config or baseline, an unusable file."""
