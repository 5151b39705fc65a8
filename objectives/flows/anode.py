"""ANODE: anomaly score log p_data(x | m) - log p_bkg(x | m) in the signal region.

A second conditional flow (by default the R-ANODE spline model, the slides'
upgraded ANODE) learns p_data(x | m) on the SR data; p_bkg is the background
model interpolated from the sidebands (ensemble of its kept epochs, densities
averaged). Label-free selection metric: ``val_loss``, the data flow's ensemble
negative log-likelihood on the held-out 20 % of the SR data (lower is better;
in the background model's preprocessed feature space; each event's loss capped at
``VAL_NLL_CAP`` = 100 nats).

Example:
    >>> ev = run_anode(bkg_model, x_sr, m_sr, {"epochs": 50}, seed=0,
    ...                x_test=x_t, mjj_test=m_t, y_test=y_t)  # doctest: +SKIP
    >>> ev.metrics["val_loss"], ev.truth["val_loss"]["max_sic"]  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from objectives.flows.background import flow_loss, seeded_init
from objectives.flows.density import (
    SELECTION,
    BackgroundDensity,
    SRFlowEnsemble,
    build_sr_flow,
)
from objectives.flows.hyperparameters import validate_flow
from objectives.flows.training import VAL_NLL_CAP, adam, split_indices, train_epochs
from objectives.results import EvaluationResult

__all__ = ["ANODEModel", "fit_anode", "run_anode"]


@dataclass
class ANODEModel:
    """A fitted ANODE: the SR data flow next to the fixed background model."""

    background: BackgroundDensity
    data_flow: SRFlowEnsemble
    val_loss: float
    info: dict

    def score(self, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        """log p_data(x | m) - log p_bkg(x | m) (Jacobians cancel)."""
        pre = self.background.preprocessor
        z = pre.transform(x)
        return self.data_flow.log_prob(z, mjj) - self.background.log_prob_z(
            z, pre.transform_context(mjj)
        )

    @staticmethod
    def log_data_ratio(scores: np.ndarray) -> np.ndarray:
        """log p_data / p_bkg implied by anomaly scores: the score itself."""
        return np.asarray(scores, dtype=np.float64)


def fit_anode(
    background: BackgroundDensity,
    x_sr: np.ndarray,
    mjj_sr: np.ndarray,
    hp: Mapping | None = None,
    *,
    seed: int,
    n_threads: int | None = None,
    device: str = "cpu",
) -> ANODEModel:
    """Fit the SR data density p_data(x | m); ``hp`` overrides the published defaults."""
    hp = validate_flow("ANODE", hp, final=True)
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    z = background.preprocessor.transform(x_sr)
    mjj_sr = np.asarray(mjj_sr, dtype=np.float64)
    m_mean, m_std = float(mjj_sr.mean()), float(mjj_sr.std()) or 1.0
    c = (mjj_sr - m_mean) / m_std
    tr, va = split_indices(z.shape[0], hp["val_fraction"], seed)
    zt = torch.as_tensor(z, dtype=torch.float32)
    ct = torch.as_tensor(c, dtype=torch.float32).reshape(-1, 1)
    with seeded_init(seed):
        flow = build_sr_flow(z.shape[1], hp)
    opt = adam(flow.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"], decoupled=True)
    hist = train_epochs(
        flow,
        flow_loss,
        (zt[tr], ct[tr]),
        (zt[va], ct[va]),
        optimizer=opt,
        batch_size=hp["batch_size"],
        epochs=hp["epochs"],
        n_keep=hp["n_keep"],
        seed=seed,
        name="ANODE data flow",
        device=device,
    )
    ens = SRFlowEnsemble(z.shape[1], hp, hist.kept_states, m_mean, m_std)
    val_loss = float(np.mean(np.minimum(-ens.log_prob(z[va], mjj_sr[va]), VAL_NLL_CAP)))
    info = {
        "hp": hp,
        "seed": int(seed),
        "kept_epochs": hist.kept_epochs,
        "kept_val_losses": hist.kept_val_losses,
        "seconds_fit": round(hist.seconds, 3),
        "n_train": int(tr.size),
        "n_validation": int(va.size),
    }
    return ANODEModel(background, ens, val_loss, info)


def run_anode(
    background: BackgroundDensity,
    x_sr: np.ndarray,
    mjj_sr: np.ndarray,
    hp: Mapping | None = None,
    *,
    seed: int,
    x_test: np.ndarray,
    mjj_test: np.ndarray,
    y_test: np.ndarray | None = None,
    n_threads: int | None = None,
    device: str = "cpu",
) -> EvaluationResult:
    """Fit ANODE and score the test set; truth metrics when ``y_test`` is given."""
    t0 = time.perf_counter()
    model = fit_anode(background, x_sr, mjj_sr, hp, seed=seed, n_threads=n_threads, device=device)
    scores = model.score(x_test, mjj_test)
    info = {"method": "ANODE", **model.info, "seconds_total": round(time.perf_counter() - t0, 3)}
    result = EvaluationResult.from_scores({SELECTION: model.val_loss}, scores, y_test, info)
    result.model = model
    return result
