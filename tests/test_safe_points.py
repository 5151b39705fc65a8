"""Every training loop reaches a safe point at the end of each epoch / ensemble member.

A stop signal takes effect at ``objectives.safepoints.safe_point()`` (issue 26 §8); here
a counting check stands in for the workers' stop flag.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from objectives import safepoints
from objectives.classifiers import make_classifier
from objectives.flows.training import adam, train_epochs
from objectives.unsupervised import fit as fit_detector
from objectives.unsupervised.toy import toy_events

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Stop(BaseException):
    """What the installed check raises (the workers raise WorkerInterrupted)."""


@pytest.fixture
def calls(monkeypatch) -> list[int]:
    """Safe points reached, counted (the check installed for the test only)."""
    seen: list[int] = []
    monkeypatch.setattr(safepoints, "_check", lambda: seen.append(1))
    return seen


def _toy(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(n) < 0.5).astype(np.int8)
    return rng.normal(size=(n, 3)) + y[:, None], y


@pytest.mark.parametrize(
    ("name", "hp", "expected"),
    [
        ("NN", {"epochs": 3, "n_best_epochs": 1, "batch_size": 64}, 3),  # one per epoch
        ("HGB", {"n_ensemble": 3, "max_iter": 5}, 3),  # one per member
        ("AdaBoost", {"n_ensemble": 2, "n_estimators": 3}, 2),
    ],
)
def test_classifiers(calls, name, hp, expected):
    make_classifier(name, hp, seed=0).fit(*_toy())
    assert len(calls) == expected


def test_flow_training_epochs(calls):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 3)
    data = [torch.randn(200, 3)]

    def loss(m, x):
        return (m(x) ** 2).sum(1)

    train_epochs(
        model,
        loss,
        data,
        data,
        optimizer=adam(model.parameters(), lr=1e-3, weight_decay=0.0),
        batch_size=50,
        epochs=4,
        n_keep=1,
        seed=0,
    )
    assert len(calls) == 4


def test_unsupervised_detector_epochs(calls):
    hp = {"epochs": 3, "only_ce_epochs": 1, "ascent_steps": 1, "batch_size": 64}
    fit_detector(
        "DROCC",
        toy_events(200, max_objects=6, seed=1),
        toy_events(60, max_objects=6, seed=2),
        hp,
        seed=0,
    )
    assert len(calls) == 3


def test_a_stop_ends_the_fit_at_the_first_epoch_end(monkeypatch):
    seen: list[int] = []

    def stop() -> None:
        seen.append(1)
        raise Stop

    monkeypatch.setattr(safepoints, "_check", stop)
    with pytest.raises(Stop):
        make_classifier("NN", {"epochs": 50, "batch_size": 64}, seed=0).fit(*_toy())
    assert len(seen) == 1
