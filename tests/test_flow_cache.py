"""The build-once artifact cache and the cached CATHODE background, with real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from objectives.cache import MANIFEST, ArtifactCache, cache_key

TINY = {"n_blocks": 2, "hidden": 16, "epochs": 2, "n_keep": 2, "lr": 1e-3, "batch_size": 512}


def _build_counting(marker):
    def build(out):
        with open(marker, "a") as fh:
            fh.write("built\n")
        (out / "a.bin").write_bytes(b"x" * 1000)
        (out / "b.txt").write_text("hello")
        return {"note": "ok"}

    return build


def test_cache_builds_once_and_reuses(tmp_path):
    cache = ArtifactCache(tmp_path / "cache")
    marker = tmp_path / "marker"
    first = cache.get_or_build("thing", {"k": 1}, _build_counting(marker))
    again = cache.get_or_build("thing", {"k": 1}, _build_counting(marker))
    other = cache.get_or_build("thing", {"k": 2}, _build_counting(marker))
    assert first.built and not again.built and other.built
    assert again.path == first.path != other.path
    assert marker.read_text().count("built") == 2
    assert again.manifest["info"] == {"note": "ok"}
    assert set(again.manifest["files"]) == {"a.bin", "b.txt"}
    assert cache_key({"a": 1, "b": 2}) == cache_key({"b": 2, "a": 1})


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete_file", "delete_manifest"])
def test_corrupted_or_partial_entry_is_detected_and_rebuilt(tmp_path, damage):
    cache = ArtifactCache(tmp_path)
    marker = tmp_path / "marker"
    entry = cache.get_or_build("thing", {"k": 1}, _build_counting(marker))
    target = entry.file("a.bin")
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:500])
    elif damage == "flip":
        target.write_bytes(b"y" + target.read_bytes()[1:])
    elif damage == "delete_file":
        target.unlink()
    else:
        entry.file(MANIFEST).unlink()
    assert cache.verify(entry.path) is None
    rebuilt = cache.get_or_build("thing", {"k": 1}, _build_counting(marker))
    assert rebuilt.built and marker.read_text().count("built") == 2
    assert rebuilt.file("a.bin").read_bytes() == b"x" * 1000
    assert cache.verify(rebuilt.path) is not None


def test_failed_build_leaves_nothing_behind(tmp_path):
    cache = ArtifactCache(tmp_path)

    def broken(out):
        (out / "half.bin").write_bytes(b"partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cache.get_or_build("thing", {"k": 1}, broken)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


_WORKER = textwrap.dedent(
    """
    import json, logging, sys, time
    import torch
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from objectives.flows.cathode import cached_background
    cache_dir, data_file, hp = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    bg = cached_background(cache_dir, data_file, signal=100, seed=5, hp=hp, n_samples=2000)
    print(json.dumps({"built": bg.built, "samples": str(bg.samples_file)}))
    """
)


@pytest.fixture(scope="module")
def synthetic_files(tmp_path_factory):
    from objectives.synthetic import SyntheticSpec, write_synthetic

    return write_synthetic(SyntheticSpec(scale=0.02), tmp_path_factory.mktemp("syn"))


@pytest.mark.slow
def test_two_processes_asking_at_once_train_the_background_once(tmp_path, synthetic_files):
    data_file, _ = synthetic_files
    argv = [
        sys.executable,
        "-c",
        _WORKER,
        str(tmp_path / "cache"),
        str(data_file),
        json.dumps(TINY),
    ]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    trainings = sum(err.count("background flow: val log-likelihood") for _, err in outs)
    assert trainings == 1
    assert sorted(r["built"] for r in results) == [False, True]
    assert results[0]["samples"] == results[1]["samples"]


def test_cached_background_writes_samples_and_provenance(tmp_path, synthetic_files):
    import torch

    from objectives.cells import read_samples
    from objectives.flows.cathode import cached_background
    from objectives.flows.sampling import provenance_path

    torch.set_num_threads(1)
    data_file, _ = synthetic_files
    bg = cached_background(tmp_path, data_file, signal=100, seed=5, hp=TINY, n_samples=1500)
    assert bg.built
    mjj, x = read_samples(bg.samples_file, 4)  # the reader of CATHODE mode accepts it
    assert x.shape == (1500, 4) and np.all((mjj > 3.3) & (mjj < 3.7))
    prov = json.loads(provenance_path(bg.samples_file).read_text())
    for key in ("data_sha256", "signal", "seed", "epochs_kept", "validation_losses", "versions"):
        assert key in prov
    assert prov["signal"] == 100 and prov["hyperparameters"]["n_blocks"] == 2
    assert len(prov["epochs_kept"]) == 2
    model = bg.load_model()
    assert np.all(np.isfinite(model.log_prob(x[:10], mjj[:10])))
    # a truncated samples file is detected and rebuilt, bit-identical (seeded)
    original = bg.samples_file.read_bytes()
    bg.samples_file.write_bytes(original[: len(original) // 2])
    again = cached_background(tmp_path, data_file, signal=100, seed=5, hp=TINY, n_samples=1500)
    assert again.built and again.samples_file.read_bytes() == original
    reuse = cached_background(tmp_path, data_file, signal=100, seed=5, hp=TINY, n_samples=1500)
    assert not reuse.built


_SLOW_BUILDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from objectives.cache import ArtifactCache
    root, marker = sys.argv[1], sys.argv[2]
    def build(out):
        with open(marker, "a") as fh:
            fh.write("built\\n")
        time.sleep(2.0)  # long enough that the other process asks while this one builds
        (out / "model.bin").write_bytes(b"m" * 100)
    entry = ArtifactCache(root).get_or_build("bg", {"k": 1}, build)
    print(entry.built, (entry.path / "model.bin").read_bytes() == b"m" * 100)
    """
)


def test_concurrent_requests_wait_for_the_single_builder(tmp_path):
    marker = tmp_path / "marker"
    argv = [sys.executable, "-c", _SLOW_BUILDER, str(tmp_path / "cache"), str(marker)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outs = sorted(p.communicate(timeout=60)[0].split() for p in procs)
    assert all(p.returncode == 0 for p in procs)
    assert marker.read_text().count("built") == 1
    assert outs == [["False", "True"], ["False", "True"], ["True", "True"]]


def test_density_method_runs_on_a_cell_with_its_background_flow(tmp_path, synthetic_files):
    import dataclasses

    import torch

    from objectives.cells import Cell, DataSpec
    from objectives.errors import DataError
    from objectives.evaluate import evaluate
    from objectives.templates import background_flow

    torch.set_num_threads(1)
    data = DataSpec(*synthetic_files)
    flow = background_flow(data, 100, seed=1, hp=TINY, cache_dir=tmp_path)
    cell = Cell(
        "R-ANODE",
        "density",
        100,
        False,
        dataclasses.replace(data, background_model=flow.model_file),
    )
    sr_hp = {"epochs": 1, "n_keep": 1, "n_transforms": 2, "hidden": 16}
    ev = evaluate(sr_hp, cell, "full")
    assert ev.scores["val_loss"].shape == (ev.info["n_test_background"] + ev.info["n_test_signal"],)
    assert set(ev.truth["val_loss"]) == {"max_sic", "auc"}
    assert np.isfinite(ev.metrics["val_loss"]) and 0 < ev.info["w"] < 1
    assert ev.info["background_model"] == str(flow.model_file)
    with pytest.raises(DataError, match="needs a trained background flow"):
        evaluate(sr_hp, dataclasses.replace(cell, data=data), "full")
