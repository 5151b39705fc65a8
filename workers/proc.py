"""The one place where external commands are run: argv lists, never a shell."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = ["CommandError", "run", "spawn"]

_logger = logging.getLogger(__name__)


class CommandError(RuntimeError):
    """An external command could not be started or exited non-zero."""


def _check_argv(argv: Sequence[str]) -> list[str]:
    if isinstance(argv, str) or not argv or not all(isinstance(a, str | os.PathLike) for a in argv):
        raise TypeError(f"argv must be a non-empty list of strings, got {argv!r}")
    return [os.fspath(a) for a in argv]


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion, capturing stdout/stderr as text.

    Raises:
        CommandError: the program is missing, timed out, or (with ``check``) exited
            non-zero; the message names the program, the exit code and stderr's last line.
    """
    args = _check_argv(argv)
    _logger.debug("run %s", args)
    try:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=None if env is None else dict(env),
            cwd=cwd,
            input=input,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandError(f"command not found: {args[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"{args[0]}: timed out after {timeout} s") from exc
    if check and done.returncode != 0:
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        last = lines[-1] if lines else "(no output)"
        raise CommandError(f"{args[0]} exited with code {done.returncode}: {last}")
    return done


def spawn(
    argv: Sequence[str],
    *,
    stdout: IO[bytes] | int | None = None,
    stderr: IO[bytes] | int | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in the background and return the process (no shell)."""
    args = _check_argv(argv)
    _logger.debug("spawn %s", args)
    try:
        return subprocess.Popen(
            args,
            stdout=stdout,
            stderr=stderr,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=new_session,
        )
    except FileNotFoundError as exc:
        raise CommandError(f"command not found: {args[0]}") from exc
