"""Errors raised by the storage package."""

from __future__ import annotations

__all__ = ["StorageError"]


class StorageError(RuntimeError):
    """A storage URL is malformed, unreachable or outdated.

    The message is one line: the (redacted) URL, what failed and what to do.
    The original exception, if any, is chained as ``__cause__``.
    """
