"""Torch methods on a device (issue 14 §5): "auto" | "cpu" | "cuda", the same draws everywhere.

The NN, the flows and the unsupervised detectors' networks (MLP, ParT) train on the device
and return on the CPU.

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


@pytest.mark.parametrize("backbone", ["MLP", "ParT", "ParT+pair"])
def test_detector_networks_compute_on_the_device_of_their_inputs(backbone):
    """No tensor of a forward pass, a backward pass or DROCC's adversarial ascent is made
    on the CPU when the network and its inputs are elsewhere. Checked on torch's meta
    device, which refuses to mix with CPU tensors as CUDA does; the numbers on a GPU are
    the CUDA test's below."""
    from objectives.unsupervised._train import Scaler, build, minibatches
    from objectives.unsupervised.drocc import LogitNet, SearchSpace, adversarial_negatives
    from objectives.unsupervised.params import validate
    from objectives.unsupervised.toy import toy_events

    train = toy_events(64, max_objects=6, seed=1)
    hp = validate("DROCC", {"backbone": backbone})
    scaler = Scaler.fit(train)
    gen = torch.Generator().manual_seed(0)
    net = build(LogitNet, hp, train, scaler, gen, device="meta")
    idx = next(minibatches(len(train), 16, gen, "meta"))
    batch = scaler.inputs(train).to("meta").take(idx)
    logits = net(*batch)
    assert logits.device.type == "meta" and logits.shape == (16,)
    logits.sum().backward()
    assert all(p.grad.device.type == "meta" for p in net.parameters() if p.grad is not None)
    net.eval()
    space = SearchSpace.of(scaler, train)
    neg = adversarial_negatives(
        net, batch, space=space, radius=1.0, gamma=2.0, steps=2, step_size=0.1, generator=gen
    )
    assert neg.objects.device.type == "meta" and neg.event.device.type == "meta"


def test_nn_and_background_flow_compute_on_the_device_of_their_inputs():
    """The NN (with its generator-drawn dropout) and the CATHODE background MAF, on the meta
    device as above. (The spline flows' binning needs real values: the CUDA test's.)"""
    from objectives.classifiers.mlp import _build_net
    from objectives.flows.maf import build_maf

    x, context = torch.randn(32, 4).to("meta"), torch.randn(32, 1).to("meta")
    net = _build_net(4, [8, 8], 0.2, torch.Generator().manual_seed(0)).to("meta")
    out = net.train()(x)
    out.sum().backward()
    flow = build_maf(4, n_blocks=2, hidden=8).to("meta").train()
    log_prob = flow.log_prob(x, context=context)
    log_prob.sum().backward()
    assert out.device.type == log_prob.device.type == "meta"
    assert flow.eval().sample(3, context=context[:2]).device.type == "meta"


@pytest.mark.parametrize("method", ["dSVDD", "DROCC", "DDD"])
def test_detectors_are_deterministic_and_auto_is_the_cpu_here(method):
    from objectives.unsupervised.detector import fit
    from objectives.unsupervised.toy import toy_events

    train, val = toy_events(200, max_objects=6, seed=1), toy_events(80, max_objects=6, seed=2)
    test = toy_events(50, max_objects=6, seed=3, anomalous=True)
    hp = {"epochs": 2, "backbone": "ParT"}
    if method == "DROCC":
        hp["only_ce_epochs"] = 1  # then one epoch with adversarial negatives
    if method == "DDD":
        hp.update(sigmas=[1.0], p_drops=[0.2], p_adds=[0.0], auc_band=[0.5, 1.0])
    runs = [fit(method, train, val, hp, seed=4, device=d) for d in ("cpu", "cpu", "auto")]
    np.testing.assert_array_equal(runs[0].score(test), runs[1].score(test))
    if not CUDA:
        np.testing.assert_array_equal(runs[0].score(test), runs[2].score(test))
    with pytest.raises(HyperparameterError, match="device 'tpu'"):
        fit(method, train, val, hp, seed=4, device="tpu")


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


@NEEDS_CUDA
@pytest.mark.parametrize("method", ["dSVDD", "DROCC", "DDD"])
def test_detectors_give_the_same_scores_on_cpu_and_gpu(method):
    """Same draws on both (CPU generators); ParT's attention sums in another order on a
    GPU, so the standardised scores agree to 1e-2 and rank alike. The networks' own scores
    (``calibration = "none"``): a conformal p-value steps by 1/(k + 1) where a near-tie swaps."""
    from objectives.unsupervised.detector import fit
    from objectives.unsupervised.toy import toy_events

    train, val = toy_events(400, max_objects=6, seed=1), toy_events(200, max_objects=6, seed=2)
    test = toy_events(200, max_objects=6, seed=3, anomalous=True)
    hp = {"epochs": 2, "backbone": "ParT+pair", "calibration": "none"}
    if method == "DROCC":
        hp["only_ce_epochs"] = 1
    if method == "DDD":
        hp.update(sigmas=[1.0], p_drops=[0.2], p_adds=[0.0], auc_band=[0.5, 1.0])
    cpu = fit(method, train, val, hp, seed=4, device="cpu").score(test)
    on_gpu = fit(method, train, val, hp, seed=4, device="cuda")
    nets = [m.net for m in getattr(on_gpu, "members", getattr(on_gpu, "models", [on_gpu]))]
    assert all(p.device.type == "cpu" for net in nets for p in net.parameters())  # returned
    gpu = on_gpu.score(test)
    assert np.max(np.abs(cpu - gpu)) < 1e-2
    assert np.corrcoef(cpu, gpu)[0, 1] > 0.999
