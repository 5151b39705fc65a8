"""R-ANODE: fit only the signal density on top of a frozen background density.

In the signal region the data are modelled as
``p_data(x | m) = w p_S(x | m) + (1 - w) p_bkg(x | m)`` with p_bkg the
interpolated background model (held fixed; its log-densities are computed once)
and p_S a spline flow (6 RQS transforms of 2 x 64, dropout 0.2, 8 bins, tail
bound 8, AdamW lr 3e-4). The loss is ``-log[w p_S + (1 - w) p_bkg]`` through a
logsumexp. ``w`` is either fixed (a working point of a scan) or learned (a
parameter through a sigmoid, its own learning rate ``w_lr``, no weight decay).
The anomaly score is ``log p_S(x | m) - log p_bkg(x | m)`` with p_S the mean
density of the kept (lowest validation loss) epochs.

Simplification (documented): the signal fraction ``w`` is taken constant across
the SR (the conditional form of the slides' ``w p_S(x|m) p_S(m)`` mixture with
``p_S(m) / p_bkg(m)`` absorbed); a mass-dependent w from a histogram p_bkg(m)
and a signal mass model is a possible extension.

Label-free selection metric: ``val_loss``, the mixture's mean negative
log-likelihood (ensemble p_S) on the held-out 20 % of the SR data, each event's
loss capped at ``VAL_NLL_CAP`` = 100 nats; it also ranks working points w of a scan.

:meth:`RANODEModel.sample_signal` draws from the learned signal density
(the interpretability claim of the slides).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from objectives.errors import HyperparameterError
from objectives.flows.background import seeded_init
from objectives.flows.density import (
    SELECTION,
    BackgroundDensity,
    SRFlowEnsemble,
    build_sr_flow,
)
from objectives.flows.hyperparameters import validate_flow
from objectives.flows.training import VAL_NLL_CAP, adam, split_indices, train_epochs
from objectives.results import EvaluationResult

__all__ = ["RANODEModel", "fit_ranode", "run_ranode"]


class _Mixture(torch.nn.Module):
    """Signal flow plus the signal fraction (a parameter when learned, else a buffer)."""

    def __init__(self, flow: torch.nn.Module, w: float, learn_w: bool) -> None:
        super().__init__()
        self.flow = flow
        logit = torch.tensor(math.log(w) - math.log1p(-w))
        if learn_w:
            self.w_logit = torch.nn.Parameter(logit)
        else:
            self.register_buffer("w_logit", logit)

    def loss(self, z: torch.Tensor, c: torch.Tensor, log_pb: torch.Tensor) -> torch.Tensor:
        log_ps = self.flow.log_prob(z, context=c)
        both = torch.stack(
            [F.logsigmoid(self.w_logit) + log_ps, F.logsigmoid(-self.w_logit) + log_pb]
        )
        return -torch.logsumexp(both, dim=0)


def _mixture_loss(model: _Mixture, z, c, log_pb) -> torch.Tensor:
    return model.loss(z, c, log_pb)


@dataclass
class RANODEModel:
    """A fitted R-ANODE: signal flow ensemble, signal fraction, frozen background."""

    background: BackgroundDensity
    signal_flow: SRFlowEnsemble
    w: float
    learned_w: bool
    val_loss: float
    info: dict

    def log_prob_signal(self, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        """Ensemble log p_S(z | m) in the background model's preprocessed space."""
        return self.signal_flow.log_prob(self.background.preprocessor.transform(x), mjj)

    def score(self, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        """log p_S(x | m) - log p_bkg(x | m) (Jacobians cancel)."""
        pre = self.background.preprocessor
        z = pre.transform(x)
        return self.signal_flow.log_prob(z, mjj) - self.background.log_prob_z(
            z, pre.transform_context(mjj)
        )

    def log_data_ratio(self, scores: np.ndarray) -> np.ndarray:
        """log p_data / p_bkg implied by anomaly scores: log(1 - w + w exp(score))."""
        s = np.asarray(scores, dtype=np.float64)
        return np.logaddexp(np.log1p(-self.w), np.log(self.w) + s)

    def sample_signal(self, mjj: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """x ~ p_S(x | m), one per given mjj, in the original feature units."""
        return self.background.preprocessor.inverse(self.signal_flow.sample(mjj, rng))


def fit_ranode(
    background: BackgroundDensity,
    x_sr: np.ndarray,
    mjj_sr: np.ndarray,
    hp: Mapping | None = None,
    *,
    w: float | None = None,
    w_init: float = 0.01,
    w_lr: float = 3e-3,
    seed: int,
    n_threads: int | None = None,
    device: str = "cpu",
) -> RANODEModel:
    """Fit p_S with ``w`` fixed, or learned from ``w_init`` when ``w`` is None."""
    hp = validate_flow("ANODE", hp, final=True, what="R-ANODE")
    for name, value in (("w", w), ("w_init", w_init)):
        if value is not None and not 0 < value < 1:
            raise HyperparameterError(f"R-ANODE {name!r}: must be in (0, 1), got {value!r}")
    if not w_lr > 0:
        raise HyperparameterError(f"R-ANODE 'w_lr': must be > 0, got {w_lr!r}")
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    pre = background.preprocessor
    z = pre.transform(x_sr)
    mjj_sr = np.asarray(mjj_sr, dtype=np.float64)
    log_pb = background.log_prob_z(z, pre.transform_context(mjj_sr))
    m_mean, m_std = float(mjj_sr.mean()), float(mjj_sr.std()) or 1.0
    c = (mjj_sr - m_mean) / m_std
    tr, va = split_indices(z.shape[0], hp["val_fraction"], seed)
    zt = torch.as_tensor(z, dtype=torch.float32)
    ct = torch.as_tensor(c, dtype=torch.float32).reshape(-1, 1)
    pbt = torch.as_tensor(log_pb, dtype=torch.float32)
    learn = w is None
    with seeded_init(seed):
        model = _Mixture(build_sr_flow(z.shape[1], hp), w_init if learn else w, learn)
    groups = [{"params": model.flow.parameters(), "weight_decay": hp["weight_decay"]}]
    if learn:
        groups.append({"params": [model.w_logit], "weight_decay": 0.0, "lr": w_lr})
    opt = adam(groups, lr=hp["lr"], weight_decay=hp["weight_decay"], decoupled=True)
    hist = train_epochs(
        model,
        _mixture_loss,
        (zt[tr], ct[tr], pbt[tr]),
        (zt[va], ct[va], pbt[va]),
        optimizer=opt,
        batch_size=hp["batch_size"],
        epochs=hp["epochs"],
        n_keep=hp["n_keep"],
        seed=seed,
        name="R-ANODE signal flow",
        device=device,
    )
    w_kept = [float(torch.sigmoid(s["w_logit"])) for s in hist.kept_states]
    flow_states = [
        {k[len("flow.") :]: v for k, v in s.items() if k.startswith("flow.")}
        for s in hist.kept_states
    ]
    ens = SRFlowEnsemble(z.shape[1], hp, flow_states, m_mean, m_std)
    w_final = float(np.mean(w_kept))
    log_ps = ens.log_prob(z[va], mjj_sr[va])
    nll = -np.logaddexp(np.log(w_final) + log_ps, np.log1p(-w_final) + log_pb[va])
    val_loss = float(np.mean(np.minimum(nll, VAL_NLL_CAP)))
    info = {
        "hp": hp,
        "seed": int(seed),
        "w": w_final,
        "w_mode": "learned" if learn else "fixed",
        "w_kept": w_kept,
        "w_init": w_init if learn else None,
        "kept_epochs": hist.kept_epochs,
        "kept_val_losses": hist.kept_val_losses,
        "seconds_fit": round(hist.seconds, 3),
        "n_train": int(tr.size),
        "n_validation": int(va.size),
    }
    return RANODEModel(background, ens, w_final, learn, val_loss, info)


def run_ranode(
    background: BackgroundDensity,
    x_sr: np.ndarray,
    mjj_sr: np.ndarray,
    hp: Mapping | None = None,
    *,
    seed: int,
    x_test: np.ndarray,
    mjj_test: np.ndarray,
    y_test: np.ndarray | None = None,
    w: float | None = None,
    w_init: float = 0.01,
    w_lr: float = 3e-3,
    n_threads: int | None = None,
    device: str = "cpu",
) -> EvaluationResult:
    """Fit R-ANODE and score the test set; truth metrics when ``y_test`` is given."""
    t0 = time.perf_counter()
    model = fit_ranode(
        background,
        x_sr,
        mjj_sr,
        hp,
        w=w,
        w_init=w_init,
        w_lr=w_lr,
        seed=seed,
        n_threads=n_threads,
        device=device,
    )
    scores = model.score(x_test, mjj_test)
    info = {"method": "R-ANODE", **model.info, "seconds_total": round(time.perf_counter() - t0, 3)}
    result = EvaluationResult.from_scores({SELECTION: model.val_loss}, scores, y_test, info)
    result.model = model
    return result
