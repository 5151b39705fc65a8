"""A build-once artifact cache shared by every trial and worker, on any node.

An entry is a directory ``<root>/<name>-<key>/`` holding the artifacts and a
``MANIFEST.json`` with the sha256 and size of each file; the key is a hash of
the JSON of the fields that determine the content (dataset hash, signal
amount, seed, hyperparameters, ...). :meth:`ArtifactCache.get_or_build` takes
a ``filelock.FileLock`` on the key, so when several processes ask at once one
builds and the others wait, then find it built. Builds happen in a temporary
directory renamed into place; an entry whose manifest is missing or whose
files do not match their checksums (partial or corrupted) is removed and
rebuilt. The root must be on a file system all workers share (the campaign's
artifact folder) and that supports locks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from objectives.files import atomic_write_text, file_sha256

__all__ = ["MANIFEST", "ArtifactCache", "CacheEntry", "cache_key"]

log = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"


def cache_key(fields: Mapping) -> str:
    """Stable 20-hex-digit key of JSON-serialisable ``fields`` (order-independent)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class CacheEntry:
    """A verified cache entry: its directory, manifest and whether this call built it."""

    path: Path
    manifest: dict
    built: bool

    def file(self, name: str) -> Path:
        return self.path / name


class ArtifactCache:
    """Directory of build-once entries under ``root`` (created on demand)."""

    def __init__(self, root: str | Path, *, lock_timeout: float = -1) -> None:
        self.root = Path(root)
        self.lock_timeout = lock_timeout

    def entry_dir(self, name: str, fields: Mapping) -> Path:
        return self.root / f"{name}-{cache_key(fields)}"

    def verify(self, path: Path) -> dict | None:
        """The manifest if every listed file exists with its size and checksum, else None."""
        try:
            manifest = json.loads((path / MANIFEST).read_text())
            files = manifest["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        for fname, meta in files.items():
            f = path / fname
            try:
                if f.stat().st_size != meta["size"] or file_sha256(f) != meta["sha256"]:
                    log.warning("cache: %s does not match its checksum", f)
                    return None
            except OSError:
                log.warning("cache: %s is missing", f)
                return None
        return manifest

    def get_or_build(
        self, name: str, fields: Mapping, build: Callable[[Path], Mapping | None]
    ) -> CacheEntry:
        """The verified entry for ``fields``, built once by ``build(tmp_dir)`` if absent or bad.

        ``build`` writes its artifacts into the directory it is given and may return
        extra JSON-able provenance, stored in the manifest under ``"info"``.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.entry_dir(name, fields)
        with FileLock(str(final) + ".lock", timeout=self.lock_timeout):
            manifest = self.verify(final) if final.exists() else None
            if manifest is not None:
                return CacheEntry(final, manifest, built=False)
            if final.exists():
                log.warning("cache: %s is partial or corrupted; rebuilding", final)
                shutil.rmtree(final)
            tmp = self.root / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                t0 = time.perf_counter()
                info = build(tmp) or {}
                files = {
                    f.name: {"sha256": file_sha256(f), "size": f.stat().st_size}
                    for f in sorted(tmp.iterdir())
                    if f.is_file() and f.name != MANIFEST
                }
                manifest = {
                    "name": name,
                    "key": cache_key(fields),
                    "fields": json.loads(json.dumps(dict(fields), default=str)),
                    "files": files,
                    "info": json.loads(json.dumps(dict(info), default=str)),
                    "seconds_build": round(time.perf_counter() - t0, 3),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
                atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
                os.replace(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            log.info("cache: built %s in %.1f s", final, manifest["seconds_build"])
            return CacheEntry(final, manifest, built=True)
