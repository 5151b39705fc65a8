"""CATHODE background templates built by the service: exact synthetic or a trained flow.

Each template is built once per (campaign data, signal amount) into
``<run_dir>/templates`` under a file lock, so concurrent workers never build
it twice, and written atomically.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
from filelock import FileLock

from hpo.config import Campaign
from hpo.provenance import atomic_write_bytes

__all__ = ["background_dir", "flow_samples", "truth_samples"]

log = logging.getLogger(__name__)


def background_dir(campaign: Campaign) -> Path:
    """Where the campaign's background flows are cached (CATHODE, ANODE, R-ANODE share them)."""
    return campaign.run_dir / "artifacts" / "background_models"


def truth_samples(campaign: Campaign, signal: int) -> Path:
    """Samples of the exact synthetic background in the SR: a perfect CATHODE template.

    mjj is resampled from the signal-region data (with the injected signal),
    the features drawn from the generator's exact p_bkg(x | mjj), four times
    as many as signal-region data events. CATHODE on this template is the
    idealised limit of any background model.
    """
    from hpo.cells import data_files

    out = campaign.run_dir / "templates" / f"truth-N{signal}.npy"
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if out.exists():
            return out
        from objectives.cells import CATHODE_OVERSAMPLING
        from objectives.lhco import load_events
        from objectives.regions import in_sr
        from objectives.synthetic import SyntheticModel

        data_file, _ = data_files(campaign)
        ev = load_events(data_file)
        sig = np.flatnonzero(ev.label == 1)
        in_data = ev.label == 0
        in_data[sig[:signal]] = True
        mjj_sr = ev.mjj[in_data & in_sr(ev.mjj)]
        rng = np.random.default_rng([campaign.data.seed, signal, 0x7E])
        n = CATHODE_OVERSAMPLING * mjj_sr.size
        mjj = rng.choice(mjj_sr, size=n, replace=True)
        x = SyntheticModel(shifted=campaign.data.shifted).sample_bkg(mjj, rng)
        buf = io.BytesIO()
        np.save(buf, np.column_stack([mjj, x]))
        atomic_write_bytes(out, buf.getvalue())
        log.info("wrote exact-background CATHODE template %s (%d rows)", out, n)
    return out


def flow_samples(campaign: Campaign, signal: int, feature_set: str) -> Path:
    """Samples of the conditional flow trained on the sidebands (CATHODE), built once by key.

    Trained with the published settings (15 MADE blocks, 100 epochs) updated by
    ``data.background_hp``; the cache
    in ``<run_dir>/artifacts/background_models`` is keyed by the data hash,
    signal amount, seed and hyperparameters, and built by exactly one process.
    """
    from hpo.cells import data_files
    from objectives.flows import cached_background

    data_file, _ = data_files(campaign)
    built = cached_background(
        background_dir(campaign),
        data_file,
        signal=signal,
        seed=campaign.data.seed,
        hp=campaign.data.background_hp,
        shifted=campaign.data.shifted and campaign.data.source == "lhco",
        feature_set=feature_set,
        include_delta_r=campaign.data.include_delta_r,
        n_noise=campaign.data.n_noise,
    )
    return built.samples_file
