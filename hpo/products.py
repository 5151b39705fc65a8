"""What a campaign's cells need built before trials run, resolved once per process.

CATHODE cells need a template (the user's samples file, the exact synthetic
background, or samples of a trained background flow); ANODE and R-ANODE cells
need the trained background flow (and its samples: the template of their ARGOS);
unsupervised cells need their DarkMachines
files parsed into arrays for their channel. They are built by
:mod:`objectives.templates` and :mod:`objectives.darkmachines.cells` into caches
under ``<run_dir>/artifacts`` keyed by everything they depend on.
:func:`resolve` builds (or verifies) them and remembers the paths per process:
``hpo create`` and every worker call it at start, so
``CampaignCell.cell()`` inside a trial is a dictionary lookup; no trial trains a
flow or hashes a file. Several workers starting together build different
products first (the order is rotated by worker), and never the same one twice
(file locks).

The bump hunt's systematic measurements train cells that are not grid points:
:func:`variant_spec` gives their data (the alternative simulation's template for
``delta_sys = "mc"``, CATHODE on the sidebands for ``"sidebands"``), building
what they need into the same caches.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

from hpo.config import Campaign, GridPoint
from hpo.data import data_spec

__all__ = [
    "VARIANTS",
    "CellProducts",
    "background_dir",
    "dm_limits",
    "limit",
    "resolve",
    "templates_dir",
    "variant_spec",
]

log = logging.getLogger(__name__)

_RESOLVED: dict[tuple, dict[GridPoint, CellProducts]] = {}
#: The bump hunt's delta_sys measurements that train cells of their own.
VARIANTS = ("mc", "sidebands")


@dataclass(frozen=True)
class CellProducts:
    """Paths a cell's trials read: its CATHODE template and / or its background flow."""

    samples_file: Path | None = None
    background_model: Path | None = None


def background_dir(campaign: Campaign) -> Path:
    """Where the campaign's background flows are cached (CATHODE, ANODE, R-ANODE share them)."""
    return campaign.run_dir / "artifacts" / "background_models"


def templates_dir(campaign: Campaign) -> Path:
    """Where exact-background templates and exact-likelihood limits are cached."""
    return campaign.run_dir / "artifacts" / "templates"


def _needs(campaign: Campaign, point: GridPoint) -> tuple[str | None, bool]:
    """(CATHODE template kind or None, whether the background flow is needed)."""
    from objectives.registry import get_method

    flow = get_method(point.classifier).needs_background_flow
    template = campaign.data.background_model if point.mode == "CATHODE" else None
    return template, flow or template == "flow"


def _build(campaign: Campaign, point: GridPoint, n_threads: int | None) -> CellProducts:
    from objectives import templates
    from objectives.registry import DENSITY_MODE

    data = data_spec(campaign, point)
    if point.channel is not None:  # unsupervised: the parsed events of the channel
        from objectives.darkmachines.cells import build_cache

        build_cache(data)
        return CellProducts()
    template, flow = _needs(campaign, point)
    samples = model = None
    if flow:
        built = templates.background_flow(
            data,
            point.signal,
            seed=campaign.data.seed,
            hp=campaign.data.background_hp,
            cache_dir=background_dir(campaign),
            n_threads=n_threads,
            device=campaign.search.device,
        )
        model = built.model_file
        # the flow's SR samples: the CATHODE template, and that of ANODE / R-ANODE's ARGOS
        density = point.mode == DENSITY_MODE
        samples = built.samples_file if template == "flow" or density else None
    if template == "truth":
        samples = templates.truth_template(
            data,
            point.signal,
            seed=campaign.data.seed,
            shifted=campaign.data.shifted,
            cache_dir=templates_dir(campaign),
        )
    elif template == "file":
        samples = campaign.data.samples_file
    return CellProducts(samples_file=samples, background_model=model)


def resolve(
    campaign: Campaign, *, worker_id: str = "", n_threads: int | None = None
) -> dict[GridPoint, CellProducts]:
    """Grid point -> products, building what is missing; cached per process and campaign.

    Cells sharing a product (same signal, features, region) resolve to one cache entry.
    ``worker_id`` rotates the order, so workers starting together build different
    products first.
    """
    memo = (str(campaign.path), campaign.sha256, str(campaign.run_dir))
    if memo in _RESOLVED:
        return _RESOLVED[memo]
    points = campaign.grid_points()
    if worker_id and points:
        start = zlib.crc32(worker_id.encode()) % len(points)
        points = points[start:] + points[:start]
    out: dict[GridPoint, CellProducts] = {}
    for point in points:
        template, flow = _needs(campaign, point)
        needed = template is not None or flow or point.channel is not None
        out[point] = _build(campaign, point, n_threads) if needed else CellProducts()
    _RESOLVED[memo] = out
    return out


def limit(campaign: Campaign, point: GridPoint) -> dict | None:
    """The exact-likelihood limit of a cell's test set, or None where no exact likelihood exists.

    None on real data, for features beyond the four baseline ones (noise, Delta R,
    extended sets) and for unsupervised cells (see :func:`dm_limits`). Built once
    into the templates cache.
    """
    from objectives.templates import exact_limit

    if point.channel is not None:
        return None
    data = data_spec(campaign, point)
    if campaign.data.source != "synthetic" or data.features.describe() != "baseline":
        return None
    return exact_limit(
        data, point.signal, shifted=campaign.data.shifted, cache_dir=templates_dir(campaign)
    )


def variant_spec(campaign: Campaign, point: GridPoint, variant: str, *, n_threads=None):
    """The ``DataSpec`` of a delta_sys measurement on background-only grid point ``point``.

    ``"mc"``: IAD against the alternative simulation's extra background, CATHODE
    against exact samples of the alternative simulation's background; ``"sidebands"``:
    CATHODE trained on the short-sideband data against background-model samples
    there (exact ones, or from a flow trained outside the window and its sidebands).
    """
    from dataclasses import replace

    from hpo.data import alternative_file
    from objectives import templates

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    d = campaign.data
    base = data_spec(campaign, point)

    def exact(spec, mismodelling: float = 0.0):
        return templates.truth_template(
            spec,
            point.signal,
            seed=d.seed,
            shifted=d.shifted,
            cache_dir=templates_dir(campaign),
            mismodelling=mismodelling,
        )

    if variant == "mc" and point.mode == "IAD":
        return replace(base, extrabkg_file=alternative_file(campaign))
    if variant == "mc":  # CATHODE, exact template (checked by the config)
        return replace(base, samples_file=exact(base, campaign.bumphunt.mismodelling))
    sidebands = replace(base, train_on="sidebands")
    if d.background_model == "truth":
        samples = exact(sidebands)
    else:
        samples = templates.sideband_flow_template(
            sidebands,
            point.signal,
            seed=d.seed,
            hp=d.background_hp,
            cache_dir=background_dir(campaign),
            n_threads=n_threads,
        )
    return replace(sidebands, samples_file=samples)


_DM_LIMITS: dict[tuple, dict | None] = {}


def dm_limits(campaign: Campaign, channel: str, score: str = "likelihood_ratio") -> dict | None:
    """Per signal, an exact score's truth metrics and ROC curve on a channel's test set
    (synthetic DarkMachines data only; None otherwise). Computed once per process.

    ``score``: ``"likelihood_ratio"`` (the supervised bound) or ``"background_density"``
    (``-log p_bkg``, the signal-agnostic limit)."""
    from hpo.data import dm_spec
    from objectives.darkmachines.cells import exact_limits

    memo = (campaign.sha256, str(campaign.run_dir), channel, score)
    if memo not in _DM_LIMITS:
        spec = dm_spec(campaign, channel)
        _DM_LIMITS[memo] = exact_limits(spec, score) if spec.synthetic else None
    return _DM_LIMITS[memo]
