"""CATHODE's background template, trained once per (data, signal, seed, hyperparameters).

:func:`cached_background` loads the data file, injects ``signal`` events,
trains the background flow on the sidebands, samples the signal region and
stores the model (``model.pt``) and the samples file (``samples.npy`` with its
``samples.json`` provenance) in an :class:`~objectives.flows.cache.ArtifactCache`
entry under ``cache_dir``. Every later call with the same key, from any
process, reuses the entry; concurrent first calls build it once.

Example:
    >>> bg = cached_background("runs/c1/art", "data.h5", signal=1000, seed=0)  # doctest: +SKIP
    >>> DataSpec(data_file, extrabkg_file, samples_file=bg.samples_file,
    ...          background_model=bg.model_file)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from objectives.data import BASELINE, Features
from objectives.flows.hyperparameters import validate_flow
from objectives.regions import DEFAULT_REGION, Region

__all__ = ["CachedBackground", "cached_background", "package_versions", "samples_beside"]

log = logging.getLogger(__name__)

#: Bumped when the content of an entry changes for the same inputs.
FORMAT_VERSION = 1
#: Samples per SR data event when ``n_samples`` is not given (cells use 4x).
OVERSAMPLING = 4


def package_versions() -> dict[str, str]:
    out = {}
    for pkg in ("wsad-hpo", "torch", "nflows", "numpy", "scikit-learn"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


@dataclass(frozen=True)
class CachedBackground:
    """Paths of a cached background model and its SR samples, with the provenance."""

    model_file: Path
    samples_file: Path
    provenance: dict
    built: bool

    def load_model(self):
        from objectives.flows.background import BackgroundModel

        return BackgroundModel.load(self.model_file)


def samples_beside(model_file: str | Path) -> Path:
    """The signal-region samples stored with a cached background model (``model.pt``)."""
    return Path(model_file).with_name("samples.npy")


def cached_background(
    cache_dir: str | Path,
    data_file: str | Path,
    *,
    signal: int,
    seed: int,
    hp: Mapping | None = None,
    features: Features = BASELINE,
    region: Region = DEFAULT_REGION,
    n_samples: int | None = None,
    n_threads: int | None = None,
    device: str = "cpu",
) -> CachedBackground:
    """The background model and SR samples for this key, built once and then reused.

    The flow trains on the data outside ``region``'s signal region and samples
    inside it. ``n_samples`` defaults to 4x the SR data events. Raises
    HyperparameterError on bad ``hp`` (before anything is trained) and DataError on a
    bad data file.
    """
    from objectives.cache import ArtifactCache
    from objectives.errors import DataError
    from objectives.files import file_sha256

    hp = validate_flow("BackgroundFlow", hp, final=True, what="background flow")
    try:
        data_sha256 = file_sha256(data_file)
    except OSError as exc:
        raise DataError(f"{data_file}: data file not found ({exc.strerror or exc})") from exc
    fields = {
        "format": FORMAT_VERSION,
        "data_sha256": data_sha256,
        "signal": int(signal),
        "seed": int(seed),
        "hp": hp,
        **features.to_dict(),
        "n_samples": n_samples,
    }
    if not region.is_default:  # keys of the default region stay those of earlier versions
        fields["region"] = region.to_dict()

    def build(out: Path) -> dict:
        from objectives.data import region_data
        from objectives.flows.background import train_background_model
        from objectives.flows.sampling import sample_signal_region, write_samples

        rd = region_data(data_file, None, int(signal), features=features, region=region)
        res = train_background_model(
            rd.outside.x, rd.outside.mjj, hp, seed=seed, n_threads=n_threads, device=device
        )
        res.model.save(out / "model.pt")
        n = int(n_samples) if n_samples is not None else OVERSAMPLING * len(rd.sr)
        rng = np.random.default_rng(np.random.SeedSequence([0xCA7, int(seed)]))
        rows = sample_signal_region(res.model, rd.sr.mjj, n, rng, sr=region.sr)
        provenance = {
            **{k: v for k, v in fields.items() if k != "hp"},
            "data_file": str(data_file),
            "hyperparameters": hp,
            "n_samples": n,
            "region": region.to_dict(),
            "n_sideband": len(rd.outside),
            "n_sr_data": len(rd.sr),
            "features": rd.info["features"],
            "epochs_kept": res.history.kept_epochs,
            "validation_losses": res.history.kept_val_losses,
            "val_log_likelihood": res.val_log_likelihood,
            "seconds_train": res.info["seconds_train"],
            "seconds_per_epoch": res.info["seconds_per_epoch"],
            "versions": package_versions(),
        }
        write_samples(out / "samples.npy", rows, provenance)
        return provenance

    entry = ArtifactCache(cache_dir).get_or_build("background", fields, build)
    return CachedBackground(
        model_file=entry.file("model.pt"),
        samples_file=entry.file("samples.npy"),
        provenance=entry.manifest["info"],
        built=entry.built,
    )
