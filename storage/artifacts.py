"""Artifact store of a run: files (SIC curves, plots) attached to trials or studies.

Artifacts live in ``<run_dir>/artifacts`` (Optuna's ``FileSystemArtifactStore``); the
trial or study records the artifact id, so optuna-dashboard can show them.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

__all__ = ["artifact_store", "upload_file"]

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
