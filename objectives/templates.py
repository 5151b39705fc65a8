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
  test set: the Neyman-Pearson limit of every method (synthetic data only);
* :func:`exact_scores` -- exact scores of a region's data and extra background:
  the likelihood ratio (the bump hunt's limit), or the nominal-over-alternative
  background ratio (the largest systematic an alternative simulation can show);
* :func:`sideband_flow_template` -- CATHODE's template in the short sidebands from
  a background flow trained outside the window and its sidebands (the bump hunt's
  data-driven systematic, ``delta_sys = "sidebands"``).

The truth template follows the cell's data: samples at the signal region's mjj, or
at the sidebands' (``DataSpec.train_on = "sidebands"``), of the nominal background
or of the alternative simulation (``mismodelling``).
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

__all__ = [
    "background_flow",
    "exact_limit",
    "exact_scores",
    "sideband_flow_template",
    "truth_template",
]

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
    data: DataSpec,
    signal: int,
    *,
    seed: int,
    shifted: bool,
    cache_dir: Path,
    mismodelling: float = 0.0,
) -> Path:
    """Exact-background CATHODE samples for the SR data of ``data`` with ``signal`` injected.

    mjj is resampled from the signal-region data (with the injected signal; the
    sideband data for ``data.train_on = "sidebands"``), the features drawn from the
    synthetic generator's exact p_bkg(x | mjj) (``shifted``: the generator's
    correlated variant; ``mismodelling``: the alternative simulation's background),
    ``CATHODE_OVERSAMPLING`` times as many as data events. Baseline features only.
    Returns the ``.npy`` path.
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
    if data.train_on != "sr":  # keys of the SR template stay those of earlier versions
        fields["train_on"] = data.train_on
    if mismodelling:
        fields["mismodelling"] = float(mismodelling)

    def build(out: Path) -> dict:
        rd = data.events(signal, with_test=False)
        mjj_data = (rd.sr if data.train_on == "sr" else rd.sidebands).mjj
        rng = np.random.default_rng([int(seed), int(signal), 0x7E])
        n = CATHODE_OVERSAMPLING * mjj_data.size
        mjj = rng.choice(mjj_data, size=n, replace=True)
        x = SyntheticModel(shifted=shifted, mismodelling=mismodelling).sample_bkg(mjj, rng)
        np.save(out / "samples.npy", np.column_stack([mjj, x]))
        log.info("built the exact-background CATHODE template (%d rows) in %s", n, out)
        return {"n_samples": int(n), "n_data": int(mjj_data.size)}

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


def sideband_flow_template(
    data: DataSpec,
    signal: int,
    *,
    seed: int,
    hp: Mapping | None,
    cache_dir: Path,
    n_threads: int | None = None,
) -> Path:
    """CATHODE samples in the short sidebands of ``data.region`` from an interpolating flow.

    The background flow is trained outside the window *and* its short sidebands
    (the cached flow of the widened region), so in the sidebands it interpolates
    as it does in the signal region; features are drawn at mjj resampled from the
    sideband data, ``CATHODE_OVERSAMPLING`` times as many. Returns the ``.npy`` path.
    """
    from dataclasses import replace

    from objectives.flows.background import BackgroundModel
    from objectives.regions import Region

    (lo, _), (_, hi) = data.region.sidebands
    widened = replace(data, region=Region((lo, hi)), train_on="sr")
    flow = background_flow(
        widened, signal, seed=seed, hp=hp, cache_dir=cache_dir, n_threads=n_threads
    )
    fields = {
        "format": FORMAT_VERSION,
        **_data_key(data, with_test=False),
        "signal": int(signal),
        "seed": int(seed),
        "flow_sha256": _sha256(flow.model_file),
        "oversampling": CATHODE_OVERSAMPLING,
    }

    def build(out: Path) -> dict:
        mjj_sb = data.events(signal, with_test=False).sidebands.mjj
        rng = np.random.default_rng([int(seed), int(signal), 0x5B])
        n = CATHODE_OVERSAMPLING * mjj_sb.size
        mjj = rng.choice(mjj_sb, size=n, replace=True)
        x = BackgroundModel.load(flow.model_file).sample(mjj, rng)
        np.save(out / "samples.npy", np.column_stack([mjj, x]))
        return {"n_samples": int(n), "n_sideband_data": int(mjj_sb.size)}

    entry = ArtifactCache(cache_dir).get_or_build("sideband-template", fields, build)
    return entry.file("samples.npy")


#: What :func:`exact_scores` computes: the signal likelihood ratio, or the mismodelling ratio.
EXACT_SCORES = ("signal", "mismodelling")


def exact_scores(
    data: DataSpec,
    signal: int,
    *,
    shifted: bool,
    cache_dir: Path,
    score: str = "signal",
    mismodelling: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact scores ``(of the SR data, of the extra background)`` of ``data`` in its region.

    ``score = "signal"``: log p_sig(x | SR) / p_bkg(x | SR), the Neyman-Pearson optimal
    anomaly score; ``"mismodelling"``: log p_bkg(x | SR) / p_alt(x | SR) of the
    alternative simulation ``mismodelling``, the optimal score for the excess of data
    over that simulation. The SR data in the order of ``data.events(signal).sr``;
    the extra background is every event of ``data.extrabkg_file`` in the region (the
    IAD template, then the test background): the largest exact-background sample
    there is, so no mode's template has more events. Synthetic baseline features
    only; each part cached (the extra background's once for every signal amount).
    """
    from objectives.synthetic import SyntheticModel, log_mismodelling_ratio

    if score not in EXACT_SCORES:
        raise ValueError(f"score must be one of {EXACT_SCORES}, got {score!r}")
    if data.features.describe() != "baseline":
        raise ValueError(f"no exact likelihood for features {data.features.describe()}")
    region = data.region

    def log_ratio(x: np.ndarray) -> np.ndarray:
        if score == "mismodelling":
            return log_mismodelling_ratio(x, mismodelling, region, shifted=shifted)
        model = SyntheticModel(shifted=shifted)
        return model.log_prob_sr(x, True, region) - model.log_prob_sr(x, False, region)

    def events(part: str) -> np.ndarray:
        rd = data.events(signal)
        if part == "sr":
            return rd.sr.x
        if rd.iad_template is None:
            raise DataError(rd.info["no_extra_background"])
        return np.concatenate([rd.iad_template.x, rd.test.x[rd.test.label == 0]])

    kind = {"format": FORMAT_VERSION, "score": score, "generator_shifted": bool(shifted)}
    if score == "mismodelling":
        kind["mismodelling"] = float(mismodelling)
    parts = []
    for part in ("sr", "extra_background"):
        fields = {**kind, **_data_key(data, with_test=part != "sr"), "part": part}
        if part == "sr":
            fields["signal"] = int(signal)

        def build(out: Path, part: str = part) -> dict:
            x = events(part)
            np.save(out / "scores.npy", log_ratio(x))
            return {"n": len(x)}

        entry = ArtifactCache(cache_dir).get_or_build("exact-scores", fields, build)
        parts.append(np.load(entry.file("scores.npy")))
    return parts[0], parts[1]
