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


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path) -> str:
    """A fresh storage URL of each backend (journal always; PostgreSQL via deploy/postgres.sh)."""
    return make_url(request.param, tmp_path, request)


@pytest.fixture
def study(url):
    """An empty study on that storage, deleted afterwards."""
    from storage.urls import open_storage

    storage = open_storage(url)
    name = unique_name()
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    yield study
    delete_quietly(storage, name)
