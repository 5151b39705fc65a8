"""Density-based background models: CATHODE's conditional flow and sampler, ANODE, R-ANODE.

Modules, one concept each:

* ``preprocessing`` -- min-max + logit + standardisation, exact inverse;
* ``maf`` -- flow architectures (nflows): affine MAF, RQS spline flow;
* ``training`` -- the minibatch loop keeping the best-validation epochs;
* ``background`` -- :func:`train_background_model` -> ``BackgroundModel`` (p_bkg(x|m),
  sampling, label-free ``val_log_likelihood``);
* ``sampling`` -- SR mjj KDE, SR samples, the atomic samples file + provenance;
* ``cache`` / ``cathode`` -- build-once artifact cache; :func:`cached_background`;
* ``data`` -- sidebands / SR data / test set of a data file and signal amount;
* ``anode`` / ``ranode`` -- the density-ratio detectors, :class:`DensityEvaluation` results;
* ``methods`` -- :func:`evaluate_density_method` for a campaign cell (ANODE / R-ANODE).

Names are imported lazily, so ``import objectives.flows`` does not load torch.
"""

from __future__ import annotations

import importlib

__all__ = [
    "ArtifactCache",
    "BackgroundModel",
    "CachedBackground",
    "DensityEvaluation",
    "FlowPreprocessor",
    "cached_background",
    "evaluate_density_method",
    "fit_anode",
    "fit_ranode",
    "load_region_data",
    "run_anode",
    "run_ranode",
    "sample_signal_region",
    "train_background_model",
    "write_samples",
]

_WHERE = {
    "ArtifactCache": "cache",
    "BackgroundModel": "background",
    "CachedBackground": "cathode",
    "DensityEvaluation": "density",
    "FlowPreprocessor": "preprocessing",
    "cached_background": "cathode",
    "evaluate_density_method": "methods",
    "fit_anode": "anode",
    "fit_ranode": "ranode",
    "load_region_data": "data",
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
