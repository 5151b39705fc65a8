"""Products a cell needs before its trials run: CATHODE templates, background flows, limits.

Each product is built once into an :class:`~objectives.cache.ArtifactCache` entry
keyed by the hash of everything it depends on (data file hash, signal amount,
seed, region, features, hyperparameters, format version), under a file lock, so
concurrent workers never build it twice and an edit of any input gives a new
entry instead of silently reusing an old one. ``hpo create`` (or the first
worker) builds them; a trial only reads the paths.

* :func:`truth_template` -- samples of the exact synthetic background in the
  signal region: the ideal CATHODE template;
* :func:`background_flow` -- CATHODE's background flow trained outside the
  signal region, with its SR samples (CATHODE template, ANODE, R-ANODE);
* :func:`exact_limit` -- the SIC curve of the exact likelihood ratio on a cell's
  test set: the Neyman-Pearson limit of every method (synthetic data only).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from objectives.cache import ArtifactCache
from objectives.cells import CATHODE_OVERSAMPLING, DataSpec
from objectives.errors import DataError
from objectives.files import file_sha256

__all__ = ["background_flow", "exact_limit", "truth_template"]

log = logging.getLogger(__name__)

#: Bumped when a product's content changes for the same inputs.
FORMAT_VERSION = 1


def _sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as exc:
        raise DataError(f"{path}: data file not found ({exc.strerror or exc})") from exc


def _data_key(data: DataSpec, *, with_test: bool) -> dict:
    fields = {
        "data_sha256": _sha256(data.data_file),
        **data.features.to_dict(),
        "region": data.region.to_dict(),
    }
    if with_test:
        fields["extrabkg_sha256"] = _sha256(data.extrabkg_file)
    return fields


def truth_template(
    data: DataSpec, signal: int, *, seed: int, shifted: bool, cache_dir: Path
) -> Path:
    """Exact-background CATHODE samples for the SR data of ``data`` with ``signal`` injected.

    mjj is resampled from the signal-region data (with the injected signal), the
    features drawn from the synthetic generator's exact p_bkg(x | mjj) (``shifted``:
    the generator's correlated variant), ``CATHODE_OVERSAMPLING`` times as many as
    SR data events. Baseline features only. Returns the ``.npy`` path.
    """
    from objectives.synthetic import SyntheticModel

    if data.features.describe() != "baseline":
        raise ValueError(
            "the exact-background template has the four baseline features only, "
            f"got {data.features.describe()}"
        )
    fields = {
        "format": FORMAT_VERSION,
        **_data_key(data, with_test=False),
        "signal": int(signal),
        "seed": int(seed),
        "generator_shifted": bool(shifted),
        "oversampling": CATHODE_OVERSAMPLING,
    }

    def build(out: Path) -> dict:
        mjj_sr = data.events(signal, with_test=False).sr.mjj
        rng = np.random.default_rng([int(seed), int(signal), 0x7E])
        n = CATHODE_OVERSAMPLING * mjj_sr.size
        mjj = rng.choice(mjj_sr, size=n, replace=True)
        x = SyntheticModel(shifted=shifted).sample_bkg(mjj, rng)
        np.save(out / "samples.npy", np.column_stack([mjj, x]))
        log.info("built the exact-background CATHODE template (%d rows) in %s", n, out)
        return {"n_samples": int(n), "n_sr_data": int(mjj_sr.size)}

    entry = ArtifactCache(cache_dir).get_or_build("truth-template", fields, build)
    return entry.file("samples.npy")


def background_flow(
    data: DataSpec,
    signal: int,
    *,
    seed: int,
    hp: Mapping | None,
    cache_dir: Path,
    n_threads: int | None = None,
    device: str = "cpu",
):
    """The cached CATHODE background flow of ``data`` with ``signal`` injected, in its region.

    Returns a :class:`~objectives.flows.cathode.CachedBackground` (``model_file``,
    ``samples_file``, provenance); trains it on the first call with this key.
    """
    from objectives.flows.cathode import cached_background

    return cached_background(
        cache_dir,
        data.data_file,
        signal=signal,
        seed=seed,
        hp=hp,
        features=data.features,
        region=data.region,
        n_threads=n_threads,
        device=device,
    )


def exact_limit(
    data: DataSpec, signal: int, *, shifted: bool, cache_dir: Path
) -> dict[str, np.ndarray | float]:
    """``{"tpr", "fpr", "sic", "max_sic", "auc"}`` of the exact likelihood ratio on the test set.

    The test set of ``data`` with ``signal`` injected (the same for every mode and
    method of that data); ``shifted``: the generator's correlated variant. Only for
    the synthetic generator's four baseline features.
    """
    from objectives.metrics import roc_auc, sic_curve
    from objectives.synthetic import SyntheticModel

    if data.features.describe() != "baseline":
        raise ValueError(f"no exact likelihood for features {data.features.describe()}")
    fields = {
        "format": FORMAT_VERSION,
        **_data_key(data, with_test=True),
        "signal": int(signal),
        "generator_shifted": bool(shifted),
    }

    def build(out: Path) -> dict:
        test = data.events(signal).test
        lr = SyntheticModel(shifted=shifted).likelihood_ratio(test.x, region=data.region)
        tpr, fpr, sic = sic_curve(lr, test.label)
        np.savez_compressed(out / "limit.npz", tpr=tpr, fpr=fpr, sic=sic)
        return {
            "max_sic": float(sic.max()) if sic.size else float("nan"),
            "auc": float(roc_auc(lr, test.label)),
        }

    entry = ArtifactCache(cache_dir).get_or_build("exact-limit", fields, build)
    with np.load(entry.file("limit.npz")) as z:
        out: dict[str, np.ndarray | float] = {k: z[k] for k in z.files}
    out.update(max_sic=float(entry.manifest["info"]["max_sic"]), auc=entry.manifest["info"]["auc"])
    return out
