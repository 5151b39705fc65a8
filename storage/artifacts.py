"""Artifact store of a run: files and numpy arrays attached to trials or studies.

Artifacts live in ``<run_dir>/artifacts`` (Optuna's ``FileSystemArtifactStore``); the
trial or study records the artifact id, so optuna-dashboard can show them.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact

__all__ = ["artifact_store", "upload_file", "download_file", "upload_array", "read_array"]

Target = optuna.Trial | optuna.trial.FrozenTrial | optuna.Study


def artifact_store(run_dir: Path) -> FileSystemArtifactStore:
    """The artifact store in ``<run_dir>/artifacts`` (created if missing)."""
    base = Path(run_dir) / "artifacts"
    base.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(base)


def upload_file(
    store: FileSystemArtifactStore,
    target: Target,
    path: Path,
    *,
    storage: optuna.storages.BaseStorage | None = None,
    mimetype: str | None = None,
) -> str:
    """Attach the file at ``path`` to a trial or study; returns the artifact id.

    ``storage`` is needed only when ``target`` is a ``FrozenTrial``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"artifact file {path}: does not exist or is not a file")
    return upload_artifact(
        artifact_store=store,
        file_path=str(path),
        study_or_trial=target,
        storage=storage,
        mimetype=mimetype,
    )


def download_file(store: FileSystemArtifactStore, artifact_id: str, dest: Path) -> Path:
    """Copy artifact ``artifact_id`` to ``dest`` (must not exist yet); returns ``dest``."""
    dest = Path(dest)
    download_artifact(artifact_store=store, file_path=str(dest), artifact_id=artifact_id)
    return dest


def upload_array(
    store: FileSystemArtifactStore,
    target: Target,
    name: str,
    array: np.ndarray,
    *,
    storage: optuna.storages.BaseStorage | None = None,
) -> str:
    """Attach ``array`` as ``<name>.npy`` to a trial or study; returns the artifact id."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.npy"
        np.save(path, np.asarray(array), allow_pickle=False)
        return upload_file(store, target, path, storage=storage, mimetype="application/x-npy")


def read_array(store: FileSystemArtifactStore, artifact_id: str) -> np.ndarray:
    """Read back an array stored by :func:`upload_array`."""
    with store.open_reader(artifact_id) as reader:
        return np.load(io.BytesIO(reader.read()), allow_pickle=False)
