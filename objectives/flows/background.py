"""The CATHODE/ANODE background model: a conditional MAF p_bkg(x | mjj) from the sidebands.

:func:`train_background_model` fits the preprocessing and the flow on sideband
events (everything outside the SR of the data file, injected signal included),
splits them into training and validation, trains and keeps the ``n_keep``
epochs with the lowest validation loss. The resulting :class:`BackgroundModel`
is an ensemble: its density is the mean of the kept epochs' densities, and each
kept epoch draws an equal share of the samples.

Label-free objective: ``val_log_likelihood``, the mean ensemble log p(x | mjj)
(in the original feature units, Jacobian included) over the sideband validation
events, each event's flow-space log-density floored at ``-VAL_NLL_CAP`` (100
nats) so that a single far-tail event cannot dominate; higher is better. It
needs no labels, so the background model's hyperparameters can be optimised in
a study of their own.

Example:
    >>> result = train_background_model(x_sb, mjj_sb, {"epochs": 5}, seed=0)  # doctest: +SKIP
    >>> result.val_log_likelihood  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from objectives.errors import DataError
from objectives.flows.hyperparameters import validate_flow
from objectives.flows.maf import build_maf
from objectives.flows.preprocessing import FlowPreprocessor
from objectives.flows.training import (
    VAL_NLL_CAP,
    TrainingHistory,
    adam,
    split_indices,
    train_epochs,
)

__all__ = [
    "BackgroundModel",
    "BackgroundTrainingResult",
    "flow_loss",
    "seeded_init",
    "train_background_model",
]

log = logging.getLogger(__name__)

_CHUNK = 65536


@contextlib.contextmanager
def seeded_init(seed: int):
    """Seed torch's global RNG for weight initialisation only; restores it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def flow_loss(flow: torch.nn.Module, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Per-event negative log-likelihood of a conditional nflows Flow."""
    return -flow.log_prob(z, context=c)


def _to_double(state: dict) -> dict:
    return {k: v.double() if v.is_floating_point() else v for k, v in state.items()}


def _logmeanexp(a: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(a, dim=0) - np.log(a.shape[0])


class BackgroundModel:
    """Ensemble of kept MAF epochs plus the preprocessing: p_bkg(x | mjj) and sampling."""

    def __init__(
        self,
        preprocessor: FlowPreprocessor,
        hp: Mapping,
        states: list[dict],
        *,
        kept_epochs: list[int] | None = None,
        val_losses: list[float] | None = None,
    ) -> None:
        if not states:
            raise ValueError("BackgroundModel needs at least one kept state")
        self.preprocessor = preprocessor
        self.hp = dict(hp)
        self.states = states
        self.kept_epochs = list(kept_epochs or [])
        self.val_losses = list(val_losses or [])
        with seeded_init(0):  # weights are overwritten by the kept states
            self.flow = build_maf(
                preprocessor.n_features, n_blocks=self.hp["n_blocks"], hidden=self.hp["hidden"]
            ).double()
        self._loaded = -1
        self._sampler: torch.nn.Module | None = None  # float32 copy: sampling is 2x faster
        self._sampler_loaded = -1

    @property
    def n_members(self) -> int:
        return len(self.states)

    def _member(self, i: int) -> torch.nn.Module:
        if self._loaded != i:
            self.flow.load_state_dict(self.states[i])
            self._loaded = i
        return self.flow.eval()

    def _sampling_member(self, i: int) -> torch.nn.Module:
        if self._sampler is None:
            with seeded_init(0):
                self._sampler = build_maf(
                    self.preprocessor.n_features,
                    n_blocks=self.hp["n_blocks"],
                    hidden=self.hp["hidden"],
                )
        if self._sampler_loaded != i:
            self._sampler.load_state_dict(self.states[i])  # cast to float32 on copy
            self._sampler_loaded = i
        return self._sampler.eval()

    @torch.no_grad()
    def member_log_prob_z(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        """log p_z(z | c) of each kept epoch in the flow's space, shape (members, n)."""
        zt, ct = torch.as_tensor(z, dtype=torch.float64), torch.as_tensor(c, dtype=torch.float64)
        out = np.empty((self.n_members, zt.shape[0]))
        for k in range(self.n_members):
            flow = self._member(k)
            for i in range(0, zt.shape[0], _CHUNK):
                out[k, i : i + _CHUNK] = flow.log_prob(
                    zt[i : i + _CHUNK], context=ct[i : i + _CHUNK]
                ).numpy()
        return out

    def log_prob_z(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Ensemble log p_z(z | c): log of the mean member density."""
        return _logmeanexp(torch.as_tensor(self.member_log_prob_z(z, c))).numpy()

    def log_prob(self, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        """Ensemble log p_bkg(x | mjj) in the original feature units."""
        pre = self.preprocessor
        z, c = pre.transform(x), pre.transform_context(mjj)
        return self.log_prob_z(z, c) + pre.log_abs_det_jacobian(x)

    @torch.no_grad()
    def sample(self, mjj: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One x ~ p_bkg(x | mjj) per given mjj; member k draws the k-th equal share."""
        mjj = np.asarray(mjj, dtype=np.float64)
        c_all = self.preprocessor.transform_context(mjj)
        noise = rng.standard_normal((mjj.size, self.preprocessor.n_features))
        z = np.empty_like(noise)
        for k, part in enumerate(np.array_split(np.arange(mjj.size), self.n_members)):
            flow = self._sampling_member(k)
            for i in range(0, part.size, _CHUNK):
                idx = part[i : i + _CHUNK]
                # nflows' Flow.sample draws from torch's global RNG; we pass our own noise.
                zz, _ = flow._transform.inverse(
                    torch.as_tensor(noise[idx], dtype=torch.float32),
                    context=torch.as_tensor(c_all[idx], dtype=torch.float32),
                )
                z[idx] = zz.numpy()
        return self.preprocessor.inverse(z)

    def save(self, path: str | Path) -> None:
        """Write preprocessing, hyperparameters and kept states to one file, atomically."""
        from objectives.files import atomic_path

        payload = {
            "preprocessor": self.preprocessor.to_dict(),
            "hp": self.hp,
            "states": self.states,
            "kept_epochs": self.kept_epochs,
            "val_losses": self.val_losses,
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | Path) -> BackgroundModel:
        path = Path(path)
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a data error
            raise DataError(f"{path}: not a readable background model ({exc})") from exc
        return cls(
            FlowPreprocessor.from_dict(d["preprocessor"]),
            d["hp"],
            d["states"],
            kept_epochs=d["kept_epochs"],
            val_losses=d["val_losses"],
        )


@dataclass
class BackgroundTrainingResult:
    """A trained background model and its label-free objective."""

    model: BackgroundModel
    val_log_likelihood: float
    history: TrainingHistory = field(repr=False)
    info: dict = field(default_factory=dict)


def train_background_model(
    x: np.ndarray,
    mjj: np.ndarray,
    hp: Mapping | None = None,
    *,
    seed: int,
    n_threads: int | None = None,
    max_steps: int | None = None,
    device: str = "cpu",
) -> BackgroundTrainingResult:
    """Train the CATHODE background flow on sideband events ``x`` (n, d) given ``mjj`` (n,).

    ``hp`` overrides the published defaults (``objectives.flows.hyperparameters``:
    n_blocks, hidden, lr, batch_size, epochs, weight_decay, n_keep, val_fraction); bad
    values raise HyperparameterError.
    """
    hp = validate_flow("BackgroundFlow", hp, final=True, what="background flow")
    x = np.asarray(x, dtype=np.float64)
    mjj = np.asarray(mjj, dtype=np.float64)
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    tr, va = split_indices(x.shape[0], hp["val_fraction"], seed)
    pre = FlowPreprocessor.fit(x[tr], mjj[tr])
    z = torch.as_tensor(pre.transform(x), dtype=torch.float32)
    c = torch.as_tensor(pre.transform_context(mjj), dtype=torch.float32)
    with seeded_init(seed):
        flow = build_maf(x.shape[1], n_blocks=hp["n_blocks"], hidden=hp["hidden"])
    opt = adam(flow.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    t0 = time.perf_counter()
    hist = train_epochs(
        flow,
        flow_loss,
        (z[tr], c[tr]),
        (z[va], c[va]),
        optimizer=opt,
        batch_size=hp["batch_size"],
        epochs=hp["epochs"],
        n_keep=hp["n_keep"],
        seed=seed,
        name="background flow",
        max_steps=max_steps,
        device=device,
    )
    model = BackgroundModel(
        pre,
        hp,
        [
            {k: v.double() if v.is_floating_point() else v for k, v in s.items()}
            for s in hist.kept_states
        ],
        kept_epochs=hist.kept_epochs,
        val_losses=hist.kept_val_losses,
    )
    log_pz = model.log_prob_z(pre.transform(x[va]), pre.transform_context(mjj[va]))
    n_capped = int(np.count_nonzero(log_pz < -VAL_NLL_CAP))
    log_px = np.maximum(log_pz, -VAL_NLL_CAP) + pre.log_abs_det_jacobian(x[va])
    val_ll = float(np.mean(log_px))
    info = {
        "n_train": int(tr.size),
        "n_validation": int(va.size),
        "seconds_train": round(time.perf_counter() - t0, 3),
        "seconds_per_epoch": round(hist.seconds_per_epoch, 3),
        "epochs_run": len(hist.train_loss),
        "kept_epochs": hist.kept_epochs,
        "kept_val_losses": hist.kept_val_losses,
        "n_validation_capped": n_capped,
        "hp": hp,
        "seed": int(seed),
    }
    log.info("background flow: val log-likelihood %.4f, kept epochs %s", val_ll, hist.kept_epochs)
    return BackgroundTrainingResult(model=model, val_log_likelihood=val_ll, history=hist, info=info)
