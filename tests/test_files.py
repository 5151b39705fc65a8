"""The one atomic writer and the file hash: permissions, failures mid-write, caching."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import numpy as np
import pytest

from objectives.files import atomic_path, atomic_write_json, atomic_write_text, file_sha256


@pytest.fixture
def umask():
    """Set a umask for one test and restore the previous one."""
    saved = os.umask(0o022)
    try:
        yield lambda mask: os.umask(mask)
    finally:
        os.umask(saved)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_results_get_the_users_umask_not_0600(tmp_path, umask, mask, mode):
    """A collaborator in the group reads results exactly as with any other tool."""
    umask(mask)
    for path in (
        atomic_write_json(tmp_path / "a.json", {"x": 1}),
        atomic_write_text(tmp_path / "b.txt", "text"),
    ):
        assert stat.S_IMODE(path.stat().st_mode) == mode
    with atomic_path(tmp_path / "c.npy") as tmp:
        np.save(tmp, np.zeros(3))
    assert stat.S_IMODE((tmp_path / "c.npy").stat().st_mode) == mode


def test_a_failure_mid_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    atomic_write_json(target, {"version": 1})
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_text('{"version": 2, "half')  # half a file written, then the writer fails
        raise RuntimeError("disk full")
    assert json.loads(target.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_json_is_sorted_and_nan_becomes_null(tmp_path):
    path = atomic_write_json(tmp_path / "x.json", {"b": float("nan"), "a": np.float32(0.5)})
    assert path.read_text() == '{\n  "a": 0.5,\n  "b": null\n}\n'


def test_file_hash_is_the_sha256_and_follows_changes(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc" * 1000)
    assert file_sha256(path) == hashlib.sha256(b"abc" * 1000).hexdigest()
    path.write_bytes(b"changed, and longer than before")  # size and mtime change
    assert file_sha256(path) == hashlib.sha256(b"changed, and longer than before").hexdigest()
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "missing")
