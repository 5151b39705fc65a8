"""Provenance stamps and atomic writes for every file a user consumes."""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "stamp"]


@functools.cache
def _git_revision() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def stamp() -> dict[str, Any]:
    """Package, Optuna and git versions plus a UTC timestamp."""
    from importlib.metadata import PackageNotFoundError, version

    import optuna

    try:
        pkg = version("wsad-hpo")
    except PackageNotFoundError:
        pkg = "unknown"
    return {
        "package": "wsad-hpo",
        "package_version": pkg,
        "optuna_version": optuna.__version__,
        "git_revision": _git_revision(),
        "written_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Atomic text write (UTF-8)."""
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> Path:
    """Atomic, pretty JSON write (NaN written as null)."""
    return atomic_write_text(path, json.dumps(_nan_to_none(obj), indent=2, sort_keys=True) + "\n")


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _nan_to_none(obj.item())
    return obj
