"""Provenance of every file a user consumes: versions, git revision, time, data hashes.

Files are written through :mod:`objectives.files` (one atomic writer).
"""

from __future__ import annotations

import datetime as _dt
import functools
import subprocess
from pathlib import Path
from typing import Any

__all__ = [
    "campaign_provenance",
    "data_provenance",
    "methods_provenance",
    "source_sha256",
    "stamp",
]


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


def data_provenance(campaign) -> dict[str, Any]:
    """The campaign's data files and their SHA-256 (None for a file that does not exist).

    LHCO sources: ``data_file`` / ``extrabkg_file`` with their hashes; DarkMachines:
    ``files`` = ``{name: {"path", "sha256"}}`` (``background`` and every signal).
    """
    from hpo.data import data_files, dm_files
    from objectives.files import file_sha256

    def sha(path: Path) -> str | None:
        try:
            return file_sha256(path)
        except OSError:
            return None

    if campaign.data.darkmachines:
        files = dm_files(campaign)
        return {"files": {k: {"path": str(p), "sha256": sha(p)} for k, p in files.items()}}
    data, extra = data_files(campaign)
    return {
        "data_file": str(data),
        "data_sha256": sha(data),
        "extrabkg_file": str(extra),
        "extrabkg_sha256": sha(extra),
    }


def source_sha256(path: Path) -> str:
    """SHA-256 of a module's source: the file itself, or for a package (``__init__.py``)
    every ``.py`` file under its folder, each path with its content's hash."""
    import hashlib

    from objectives.files import file_sha256

    if path.name != "__init__.py":
        return file_sha256(path)
    lines = [
        f"{p.relative_to(path.parent).as_posix()} {file_sha256(p)}\n"
        for p in sorted(path.parent.rglob("*.py"))
    ]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def methods_provenance(campaign) -> dict[str, dict[str, Any]]:
    """Where each method of ``grid.classifiers`` came from.

    ``{"kind": "built-in"}`` for ours; for another package's: the target, its installed
    distribution and version, or -- for a module found on PYTHONPATH that no installed
    distribution holds -- its source file and :func:`source_sha256` (the whole package
    where the method's module is one).
    """
    from objectives.registry import origin

    out = {}
    for name in campaign.grid.classifiers:
        where = origin(name)
        entry = where.to_dict()
        if where.kind == "built-in":
            entry.pop("target", None)
        elif where.distribution is None and where.file:
            try:
                entry["sha256"] = source_sha256(Path(where.file))
            except OSError:
                entry["sha256"] = None
        out[name] = entry
    return out


def campaign_provenance(campaign) -> dict[str, Any]:
    """The campaign file and its hash, the data files and theirs, the methods' origins,
    and :func:`stamp`."""
    return {
        "campaign": campaign.name,
        "campaign_file": str(campaign.path),
        "campaign_sha256": campaign.sha256,
        **data_provenance(campaign),
        "methods": methods_provenance(campaign),
        **stamp(),
    }
