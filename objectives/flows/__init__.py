"""Density-based background models: CATHODE's conditional flow and sampler, ANODE, R-ANODE.

Modules, one concept each:

* ``preprocessing`` -- min-max + logit + standardisation, exact inverse;
* ``maf`` -- flow architectures (nflows): affine MAF, RQS spline flow;
* ``training`` -- the minibatch loop keeping the best-validation epochs;
* ``background`` -- :func:`train_background_model` -> ``BackgroundModel`` (p_bkg(x|m),
  sampling, label-free ``val_log_likelihood``);
* ``sampling`` -- SR mjj KDE, SR samples, the atomic samples file + provenance;
* ``cathode`` -- :func:`cached_background`, built once in an ``objectives.cache`` entry;
* ``anode`` / ``ranode`` -- the density-ratio detectors;
* ``methods`` -- :func:`evaluate_density`, a campaign cell of ANODE, R-ANODE or the
  background flow (the events come from :mod:`objectives.data`).

Names are imported lazily, so ``import objectives.flows`` does not load torch.
"""

from __future__ import annotations

import importlib

__all__ = [
    "BackgroundModel",
    "CachedBackground",
    "FlowPreprocessor",
    "cached_background",
    "evaluate_density",
    "fit_anode",
    "fit_ranode",
    "run_anode",
    "run_ranode",
    "sample_signal_region",
    "train_background_model",
    "write_samples",
]

_WHERE = {
    "BackgroundModel": "background",
    "CachedBackground": "cathode",
    "FlowPreprocessor": "preprocessing",
    "cached_background": "cathode",
    "evaluate_density": "methods",
    "fit_anode": "anode",
    "fit_ranode": "ranode",
    "run_anode": "anode",
    "run_ranode": "ranode",
    "sample_signal_region": "sampling",
    "train_background_model": "background",
    "write_samples": "sampling",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"objectives.flows.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'objectives.flows' has no attribute {name!r}")
