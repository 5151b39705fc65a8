"""A small torch MLP classifier whose prediction averages its best epochs.

Reference setting (arXiv:2511.14832): hidden layers [64, 64, 64], ReLU, sigmoid
output, class-weighted BCE, Adam (lr 1e-3, beta1 0.9, weight decay 0), no
dropout, batch 128, 100 epochs (20 during a search). After every epoch the
weights are kept and the validation ARGOS and BCE recorded; the prediction is
the mean output of the ``n_best_epochs`` (10) epochs ranked best by the chosen
selection metric.

Everything random (initialisation, shuffling, dropout) draws from one seeded
``torch.Generator``; global RNG state is neither read nor changed.
"""

from __future__ import annotations

import logging
import math
from typing import Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from objectives.classifiers._params import RULES, Estimator, check_inputs
from objectives.classifiers.outputs import best_epochs as _rank_epochs
from objectives.devices import torch_threads
from objectives.metrics import argos, balanced_weights, weighted_bce
from objectives.safepoints import safe_point

__all__ = ["MLPClassifier"]

log = logging.getLogger(__name__)

_D = {k: r.default for k, r in RULES["NN"].items()}
_CHUNK = 8192  # rows per forward pass at prediction time (activations stay in cache)


class _Dropout(nn.Module):
    """Inverted dropout drawing its mask from a given generator."""

    def __init__(self, p: float, generator: torch.Generator) -> None:
        super().__init__()
        self.p = p
        self.generator = generator

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return h
        # drawn on the CPU generator whatever the device: the same masks on a GPU
        keep = (torch.rand(h.shape, generator=self.generator) >= self.p).to(h.device)
        return h * keep / (1.0 - self.p)


def _build_net(
    n_in: int, layers: list[int], dropout: float, generator: torch.Generator
) -> nn.Sequential:
    """Linear-ReLU(-dropout) blocks and a 1-unit logit layer, torch's default init, seeded."""
    mods: list[nn.Module] = []
    width = n_in
    for n_out in layers:
        mods += [nn.Linear(width, n_out, device="meta"), nn.ReLU()]
        if dropout > 0:
            mods.append(_Dropout(dropout, generator))
        width = n_out
    mods.append(nn.Linear(width, 1, device="meta"))
    net = nn.Sequential(*mods).to_empty(device="cpu")
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            bound = 1.0 / math.sqrt(m.in_features)
            nn.init.uniform_(m.bias, -bound, bound, generator=generator)
    return net


class MLPClassifier(Estimator):
    """Torch MLP; ``predict_proba`` is the mean of the best epochs by a selection metric.

    ``fit(X, y, sample_weight, validation=(X_val, y_val, w_val))`` ranks epochs
    on the validation set, or on the training set itself when ``validation`` is
    None. Classes are balanced by weights (``sample_weight`` kept within each
    class).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(400, 2)); y = (X[:, 0] > 0).astype(int)
        >>> clf = MLPClassifier(epochs=3, n_best_epochs=2, seed=0).fit(X, y)
        >>> clf.epoch_predictions(X).shape, clf.predict_proba(X, selection="bce").shape
        ((3, 400), (400,))
    """

    name = "NN"
    selection_dependent = True

    def __init__(
        self,
        *,
        layers: list[int] | None = None,  # None -> [64, 64, 64]
        lr: float = _D["lr"],
        batch_size: int = _D["batch_size"],
        dropout: float = _D["dropout"],
        weight_decay: float = _D["weight_decay"],
        beta1: float = _D["beta1"],
        epochs: int = _D["epochs"],
        n_best_epochs: int = _D["n_best_epochs"],
        seed: int = 0,
        n_jobs: int = 1,
        device: str = "cpu",
        argos_min_template: int = 0,
    ) -> None:
        self.layers = list(_D["layers"]) if layers is None else list(layers)
        self.lr = lr
        self.batch_size = batch_size
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.beta1 = beta1
        self.epochs = epochs
        self.n_best_epochs = n_best_epochs
        self.seed = seed
        self.n_jobs = n_jobs
        #: where the network trains ("auto", "cpu", "cuda"); predictions return to numpy
        self.device = device
        #: the ARGOS that ranks epochs counts cuts with at least this many template events
        self.argos_min_template = argos_min_template

    # -- training ---------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, validation=None) -> Self:
        """Train ``epochs`` epochs, keeping every epoch's weights and validation metrics."""
        hp = self._hyperparameters()
        X, y, sample_weight = check_inputs(X, y, sample_weight)
        if validation is None:
            Xv, yv, wv = X, y, sample_weight
        else:
            if len(validation) != 3:
                raise ValueError("fit: validation must be (X_val, y_val, w_val) or None")
            Xv, yv, wv = check_inputs(*validation, where="fit validation")
        from objectives.devices import resolve_device

        where = resolve_device(self.device)
        generator = torch.Generator().manual_seed(int(self.seed))
        with torch_threads(self.n_jobs):
            net = _build_net(X.shape[1], hp["layers"], hp["dropout"], generator).to(where)
            opt = torch.optim.Adam(
                net.parameters(),
                lr=hp["lr"],
                betas=(hp["beta1"], 0.999),
                weight_decay=hp["weight_decay"],
            )
            Xt = torch.as_tensor(X, dtype=torch.float32, device=where)
            yt = torch.as_tensor(y, dtype=torch.float32, device=where)
            wt = torch.as_tensor(
                balanced_weights(y, sample_weight), dtype=torch.float32, device=where
            )
            Xvt = (
                Xt if validation is None else torch.as_tensor(Xv, dtype=torch.float32, device=where)
            )
            states, hist_argos, hist_bce = [], [], []
            bs = hp["batch_size"]
            for epoch in range(hp["epochs"]):
                net.train()
                perm = torch.randperm(Xt.shape[0], generator=generator).to(where)
                Xs, ys, ws = Xt[perm], yt[perm], wt[perm]
                for start in range(0, Xs.shape[0], bs):
                    logits = net(Xs[start : start + bs]).squeeze(1)
                    loss = F.binary_cross_entropy_with_logits(
                        logits, ys[start : start + bs], weight=ws[start : start + bs]
                    )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                pv = _predict(net, Xvt)
                hist_argos.append(argos(pv, yv, wv, min_template=self.argos_min_template))
                hist_bce.append(weighted_bce(pv, yv, wv))
                states.append(
                    {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
                )
                log.debug(
                    "NN epoch %d/%d: argos %.4g, bce %.4g",
                    epoch + 1,
                    hp["epochs"],
                    hist_argos[-1],
                    hist_bce[-1],
                )
                safe_point()  # a stop signal ends the fit at the end of an epoch
        self.net_ = net.to("cpu")
        self.epoch_states_ = states
        self.validation_history_ = {"argos": np.array(hist_argos), "bce": np.array(hist_bce)}
        return self

    # -- prediction -------------------------------------------------------------------------
    @property
    def validation_history(self) -> dict[str, np.ndarray]:
        """Per-epoch validation metrics: ``{"argos": (n_epochs,), "bce": (n_epochs,)}``."""
        self._check_fitted("validation_history_")
        return self.validation_history_

    def best_epochs(self, selection: str = "argos", values=None) -> np.ndarray:
        """Indices of the ``n_best_epochs`` best epochs, best first (ties: earlier first).

        Ranked by ``validation_history[selection]`` or, when given, by per-epoch
        ``values`` of metric ``selection`` (e.g. the truth max SIC of each row
        of ``epoch_predictions``). Nan ranks last.
        """
        from objectives.registry import get_method

        self._check_fitted("epoch_states_")
        directions = get_method("NN").directions
        if selection not in directions:
            raise ValueError(
                f"unknown selection {selection!r}; valid selections are {', '.join(directions)}"
            )
        if values is None:
            if selection not in self.validation_history_:
                raise ValueError(
                    f"selection {selection!r} needs truth labels: compute it per epoch from "
                    "epoch_predictions(X) and pass it as `values`"
                )
            values = self.validation_history_[selection]
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (len(self.epoch_states_),):
            raise ValueError(f"values must have one entry per epoch ({len(self.epoch_states_)})")
        return _rank_epochs(v, directions[selection], self.n_best_epochs)

    def epoch_predictions(self, X) -> np.ndarray:
        """P(class 1) of every epoch's weights: shape (n_epochs, n), float32."""
        self._check_fitted("epoch_states_")
        return self._predict_epochs(X, range(len(self.epoch_states_)))

    def predict_proba(self, X, selection: str = "argos") -> np.ndarray:
        """Mean P(class 1) of the best epochs by ``selection`` ("argos" or "bce")."""
        best = self.best_epochs(selection)
        return self._predict_epochs(X, best).astype(np.float64).mean(axis=0)

    def _predict_epochs(self, X, epochs) -> np.ndarray:
        X = check_inputs(X, where="predict_proba")
        Xt = torch.as_tensor(X, dtype=torch.float32)
        epochs = list(epochs)
        out = np.empty((len(epochs), X.shape[0]), dtype=np.float32)
        with torch_threads(self.n_jobs):
            for row, e in enumerate(epochs):
                self.net_.load_state_dict(self.epoch_states_[e])
                out[row] = _predict(self.net_, Xt)
        return out


def _predict(net: nn.Module, X: torch.Tensor) -> np.ndarray:
    net.eval()
    with torch.inference_mode():
        parts = [torch.sigmoid(net(X[i : i + _CHUNK])).squeeze(1) for i in range(0, len(X), _CHUNK)]
    return torch.cat(parts).cpu().numpy() if parts else np.empty(0, dtype=np.float32)
