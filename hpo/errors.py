"""Errors a user of the ``hpo`` command line can cause; each is one line and exit code 2."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(ValueError):
    """A command-line argument or the state of a campaign does not allow the command.

    The message names what is wrong and what to do, e.g.
    ``campaign quickstart has no studies yet: run `hpo create quickstart.toml` first``.
    """
