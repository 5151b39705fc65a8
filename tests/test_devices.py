"""Torch methods on a device (issue 14 §5): "auto" | "cpu" | "cuda", the same draws everywhere.

CI is CPU-only: the GPU comparison skips with its reason where torch sees no CUDA device
and runs wherever one is available (a GPU machine with the CUDA build of torch).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from objectives.devices import resolve_device
from objectives.errors import HyperparameterError
from workers.slurm import SlurmOptions, render_sbatch

CUDA = torch.cuda.is_available()
NEEDS_CUDA = pytest.mark.skipif(not CUDA, reason="torch sees no CUDA device on this machine")


def _toy(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=1.0, size=n) > 0.8).astype(int)
    return X, y


def test_device_names_and_the_cuda_error():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if CUDA else "cpu")
    with pytest.raises(HyperparameterError, match="device 'tpu': must be one of auto, cpu, cuda"):
        resolve_device("tpu")
    if not CUDA:
        with pytest.raises(HyperparameterError, match="torch sees no CUDA device here"):
            resolve_device("cuda")


def test_nn_on_auto_equals_cpu_here_and_is_deterministic():
    from objectives.classifiers import make_classifier

    X, y = _toy()
    hp = {"epochs": 3, "n_best_epochs": 2, "dropout": 0.2, "layers": [16, 16]}
    runs = [
        make_classifier("NN", hp, seed=5, device=device).fit(X, y).predict_proba(X)
        for device in ("cpu", "cpu", "auto")
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    if not CUDA:
        np.testing.assert_array_equal(runs[0], runs[2])


def test_gpus_per_task_requests_a_gres():
    text = render_sbatch(SlurmOptions(gpus_per_task=1), ["hpo", "worker", "c.toml"])
    assert "#SBATCH --gres=gpu:1" in text.splitlines()
    assert "--gres" not in render_sbatch(SlurmOptions(), ["true"])
    with pytest.raises(ValueError, match="SlurmOptions.gpus_per_task"):
        SlurmOptions(gpus_per_task=-1)


@NEEDS_CUDA
def test_nn_and_flow_give_the_same_results_on_cpu_and_gpu():
    """Tolerance: the same draws (weights, batches, dropout masks come from CPU generators);
    only float arithmetic differs, so scores agree to 1e-2 and their ranking nearly fully."""
    from objectives.classifiers import make_classifier
    from objectives.flows.background import train_background_model

    X, y = _toy()
    hp = {"epochs": 3, "n_best_epochs": 2, "dropout": 0.2, "layers": [32, 32]}
    cpu = make_classifier("NN", hp, seed=5, device="cpu").fit(X, y).predict_proba(X)
    gpu = make_classifier("NN", hp, seed=5, device="cuda").fit(X, y).predict_proba(X)
    assert np.max(np.abs(cpu - gpu)) < 1e-2
    assert np.corrcoef(cpu, gpu)[0, 1] > 0.999

    rng = np.random.default_rng(1)
    mjj = rng.uniform(2.5, 4.5, 5000)
    x = np.column_stack([rng.normal(mjj * 0.1, 0.05), rng.gamma(2.0, 0.1, 5000)])
    flow_hp = {"n_blocks": 2, "hidden": 16, "epochs": 2, "n_keep": 1, "batch_size": 512}
    a = train_background_model(x, mjj, flow_hp, seed=3, device="cpu")
    b = train_background_model(x, mjj, flow_hp, seed=3, device="cuda")
    assert abs(a.val_log_likelihood - b.val_log_likelihood) < 1e-2
