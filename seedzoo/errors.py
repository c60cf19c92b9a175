"""The root of seedzoo's user-facing errors.

Every error seedzoo raises for something the user can fix derives from `SeedzooError`, so a caller (and
the CLI, which prints one line for it) can tell a refusal with a remedy from a bug. Each subclass also
keeps the built-in base it had (`ValueError`, `FileNotFoundError`, ...) so existing `except` clauses hold.
"""

from __future__ import annotations


class SeedzooError(Exception):
    """A problem with the user's input, files or environment; the message names the fix."""
