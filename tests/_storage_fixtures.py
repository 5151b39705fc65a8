"""Backend-parametrised storage URL for the storage and worker tests."""

from __future__ import annotations

import uuid

import optuna
import pytest

BACKENDS = ["journal", pytest.param("postgres", marks=pytest.mark.postgres)]


def make_url(backend: str, tmp_path, request) -> str:
    if backend == "journal":
        return f"journal://{tmp_path}/optuna.journal"
    return request.getfixturevalue("postgres_url")


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def delete_quietly(storage, name: str) -> None:
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass
