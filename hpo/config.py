"""Campaigns: one TOML file, validated completely before anything runs.

Every error names the dotted field, what it must be and what was given::

    ConfigError: quickstart.toml: search.n_trials: must be an integer >= 1, got 0

Sections: ``[campaign]`` (name, run_dir, storage, seed), ``[data]``,
``[grid]``, ``[search]`` (with optional ``[search.fixed.<CLF>]`` and
``[search.space.<CLF>]`` tables), ``[final]``, ``[slurm]`` and the optional
``[bumphunt]`` (the sliding-window bump hunt, :mod:`hpo.bumphunt`). See
``examples/quickstart.toml`` for a commented campaign.

``grid.windows`` makes the bump hunt's signal-region windows a grid dimension:
window ``w`` is [3.3, 3.7] + (w - 5) * 0.1 TeV (``Region.window``); without it
every cell has the one region ``data.region`` (default window 5, 3.3-3.7 TeV).

``grid.classifiers`` names methods of the registry (``objectives.registry``):
the classifiers, which run in every mode and rotation of the grid, and the
density methods ANODE, R-ANODE and BackgroundFlow, which give one cell per
signal amount and feature set with mode ``"density"``. The unsupervised
detectors dSVDD, DROCC and DDD need ``data.source = "darkmachines"`` (and the
LHCO methods the other sources); they give one cell per ``grid.backbones`` x
``grid.channels`` entry, and their campaigns default to their own metrics
(``val_loss`` and the truth oracles ``auc``, ``eps_s_1e-2`` ...).

``[campaign] seed`` is the default of ``data.seed`` and ``search.seed``.

``[slurm] proxy``: how the array's workers reach the storage -- ``"none"`` (directly),
``"job"`` (``hpo launch`` starts a gRPC storage proxy job for a PostgreSQL storage) or
``"grpc://host:port"`` (a proxy the user runs); see :mod:`hpo.proxy`.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BumpHuntConfig",
    "Campaign",
    "ConfigError",
    "DataConfig",
    "FinalConfig",
    "GridConfig",
    "SearchConfig",
    "SlurmConfig",
    "load_campaign",
]

from hpo.pruners import PRUNERS, resolve_pruner
from objectives.darkmachines.cells import CHANNEL_NAMES
from objectives.devices import DEVICES
from objectives.regions import DEFAULT_REGION, Region
from objectives.registry import DIRECTIONS, MODES, get_method, method_names
from objectives.unsupervised.params import BACKBONES
from storage.addresses import GRPC_SCHEME, POSTGRES_SCHEME, check_url
from storage.errors import StorageError
from workers.slurm import TIME_RULE, valid_time

#: Every method of ``grid.classifiers`` (the registry's).
CLASSIFIERS = method_names()
#: Every selection metric a method reports (the registry's).
METRICS = tuple(DIRECTIONS)
SAMPLERS = ("tpe", "random")
#: ``final.pick``: which exported pick a final run uses (the paper's: per repetition).
PICKS = ("mean", "per_repetition")
#: ``final.holdout``: where a final half-statistics run computes its label-free values.
HOLDOUTS = ("reserved", "fresh", "search")
FEATURE_SETS = ("baseline", "extended10", "extended12", "extended56")
SOURCES = ("synthetic", "lhco", "darkmachines")
#: The data source of the unsupervised family (DarkMachines-format events).
DM_SOURCE = "darkmachines"
#: Fields of [data] that only a DarkMachines campaign uses, and those it never uses.
DM_FIELDS = (
    "background_file",
    "signal_files",
    "test_fraction",
    "max_objects",
    "skip_bad_lines",
    "apply_cuts",
)
LHCO_FIELDS = (
    "data_file",
    "extrabkg_file",
    "samples_file",
    "shifted",
    "region",
    "include_delta_r",
    "n_noise",
    "background_model",
    "background_hp",
)
BACKGROUND_MODELS = ("file", "truth", "flow")
#: The bump hunt's scan: window numbers (``Region.window``).
WINDOWS = tuple(range(1, 10))
#: How the bump hunt gets delta_sys (besides a list of numbers, one per eps_b).
DELTA_SYS = ("closure", "mc", "sidebands")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ConfigError(ValueError):
    """A campaign field is missing, unknown or invalid; the message names it."""


# ----------------------------------------------------------------------------- rules
Check = Callable[[Any], bool]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _rule(check: Check, expected: str) -> tuple[Check, str]:
    return check, expected


def _int_at_least(lo: int, hi: int = 2**31 - 1) -> tuple[Check, str]:
    """An integer in [lo, hi]; the default bound keeps every count a 32-bit number."""
    return _rule(lambda v: _is_int(v) and lo <= v <= hi, f"an integer in [{lo}, {hi}]")


def _distinct(item: Check, expected: str) -> tuple[Check, str]:
    """A non-empty list of distinct items that each pass ``item``."""

    def check(v: Any) -> bool:
        return isinstance(v, list) and len(v) > 0 and all(map(item, v)) and len(set(v)) == len(v)

    return check, expected


def _one_of(options: tuple[str, ...]) -> tuple[Check, str]:
    return _rule(lambda v: v in options, "one of " + ", ".join(repr(o) for o in options))


def _list_of(options: tuple, *, unique: bool = True) -> tuple[Check, str]:
    def check(v: Any) -> bool:
        return (
            isinstance(v, list)
            and len(v) > 0
            and all(x in options for x in v)
            and (not unique or len(set(v)) == len(v))
        )

    return check, "a non-empty list of distinct values from " + ", ".join(map(repr, options))


_STR = _rule(lambda v: isinstance(v, str), "a string")
_NONEMPTY = _rule(lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string")
_BOOL = _rule(lambda v: isinstance(v, bool), "true or false")
_NAME = _rule(
    lambda v: isinstance(v, str) and bool(NAME_RE.match(v)),
    "a name of letters, digits, '_', '.', '-'",
)
_STR_LIST = _rule(
    lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings"
)

_SLURM_TIME = _rule(lambda v: isinstance(v, str) and valid_time(v), TIME_RULE)


def _is_proxy(v: Any) -> bool:
    if v in ("none", "job"):
        return True
    try:
        return isinstance(v, str) and check_url(v) == GRPC_SCHEME
    except StorageError:
        return False


_PROXY = _rule(_is_proxy, "'none', 'job' (hpo launch starts one) or 'grpc://host:port'")

SCHEMA: dict[str, dict[str, tuple[tuple[Check, str], Any]]] = {
    # field: (rule, default); default REQUIRED means the field must be given
    "campaign": {
        "name": (_NAME, "REQUIRED"),
        "run_dir": (_NONEMPTY, None),
        "storage": (_STR, "journal:optuna.journal"),  # checked by storage.addresses
        "seed": (_int_at_least(0), 0),
    },
    "data": {
        "source": (_one_of(SOURCES), "synthetic"),
        "scale": (_rule(lambda v: _is_num(v) and 0 < v <= 1, "a number in (0, 1]"), 1.0),
        "seed": (_int_at_least(0), "CAMPAIGN_SEED"),
        "region": (
            _rule(
                lambda v: (
                    isinstance(v, list)
                    and len(v) == 2
                    and all(_is_num(x) for x in v)
                    and 0 < v[0] < v[1]
                ),
                "[lo, hi] in TeV with 0 < lo < hi",
            ),
            list(DEFAULT_REGION.sr),
        ),
        "shifted": (_BOOL, False),
        "data_file": (_NONEMPTY, None),
        "extrabkg_file": (_NONEMPTY, None),
        "background_model": (_one_of(BACKGROUND_MODELS), "file"),
        "samples_file": (_NONEMPTY, None),
        "include_delta_r": (_BOOL, False),
        "n_noise": (_int_at_least(0), 0),
        "background_hp": (
            _rule(lambda v: isinstance(v, dict), "a table of background-flow hyperparameters"),
            {},
        ),
        # darkmachines: one background file and the signal files (none: the synthetic set)
        "background_file": (_NONEMPTY, None),
        "signal_files": (
            _rule(
                lambda v: (
                    isinstance(v, dict)
                    and len(v) > 0
                    and all(
                        isinstance(k, str) and bool(NAME_RE.match(k)) and isinstance(p, str) and p
                        for k, p in v.items()
                    )
                ),
                'a non-empty table of signal name = "file" (names of letters, digits, '
                "'_', '.', '-')",
            ),
            None,
        ),
        "test_fraction": (
            _rule(lambda v: _is_num(v) and 0 < v < 1, "a number in (0, 1)"),
            0.5,
        ),
        "max_objects": (_int_at_least(1, 1000), 20),
        "skip_bad_lines": (_BOOL, False),
        "apply_cuts": (_BOOL, True),
    },
    "grid": {
        "classifiers": (_list_of(CLASSIFIERS), ["HGB"]),
        "modes": (_list_of(MODES), ["IAD"]),
        "rotation": (
            _distinct(lambda x: isinstance(x, bool), "a non-empty list of distinct booleans"),
            [False],
        ),
        "signal": (
            _distinct(
                lambda x: _is_int(x) and x >= 0, "a non-empty list of distinct integers >= 0"
            ),
            [1000],
        ),
        "feature_sets": (_list_of(FEATURE_SETS), ["baseline"]),
        "windows": (_list_of(WINDOWS), None),
        "backbones": (_list_of(BACKBONES), ["MLP"]),
        "channels": (_list_of(CHANNEL_NAMES), ["all"]),
    },
    "search": {
        "n_trials": (_int_at_least(1, 1_000_000), 100),
        "sampler": (_one_of(SAMPLERS), "tpe"),
        "seed": (_int_at_least(0), "CAMPAIGN_SEED"),
        "metrics": (_list_of(METRICS), list(get_method("HGB").metrics)),  # the paper's
        "objective": (_one_of(METRICS), "argos"),
        "repetitions": (_int_at_least(1, 1000), 10),
        "n_startup_trials": (_int_at_least(0, 1_000_000), 10),
        "n_jobs": (_int_at_least(1, 1024), 1),
        "pruner": (_one_of(("auto", *PRUNERS)), "auto"),
        "pruner_p": (
            _rule(lambda v: _is_num(v) and 0 < v < 1, "a p-value threshold in (0, 1)"),
            0.1,
        ),
        "pruner_startup": (_int_at_least(1, 1000), 3),
        "count_pruned": (_BOOL, True),
        "argos_min_template": (_int_at_least(0, 1_000_000), 0),
        "enqueue_defaults": (_BOOL, True),
        "device": (_one_of(DEVICES), "auto"),
        "fixed": (_rule(lambda v: isinstance(v, dict), "a table of per-classifier tables"), {}),
        "space": (_rule(lambda v: isinstance(v, dict), "a table of per-classifier tables"), {}),
    },
    "final": {
        "n_runs": (_int_at_least(1, 1000), 10),
        "statistics": (_list_of(("half", "full")), ["half", "full"]),
        "defaults": (_BOOL, True),
        "ensemble": (_BOOL, False),
        "pick": (_one_of(PICKS), "mean"),
        "holdout": (_one_of(HOLDOUTS), "reserved"),
        "reserve": (
            _rule(lambda v: _is_num(v) and 0.05 <= v <= 0.45, "a fraction in [0.05, 0.45]"),
            0.25,
        ),
    },
    "slurm": {
        "partition": (_STR, ""),
        "account": (_STR, ""),
        "time": (_SLURM_TIME, "02:00:00"),
        "final_time": (_SLURM_TIME, "04:00:00"),
        "cpus_per_task": (_int_at_least(1, 1024), 2),
        "gpus_per_task": (_int_at_least(0, 64), 0),
        "mem": (
            _rule(
                lambda v: isinstance(v, str) and bool(re.match(r"^\d+[KMGT]?$", v)),
                "a memory size like '8G'",
            ),
            "8G",
        ),
        "array_size": (_int_at_least(1, 100_000), 10),
        "array_parallel": (_int_at_least(1, 100_000), 10),
        "signal": (
            _rule(
                lambda v: isinstance(v, str) and bool(re.match(r"^(B:)?[A-Z0-9]+@\d+$", v)),
                "a SLURM signal spec like 'USR1@90'",
            ),
            "USR1@90",
        ),
        "setup": (_STR_LIST, []),
        "extra": (_STR_LIST, []),
        "python": (_NONEMPTY, None),
        "proxy": (_PROXY, "none"),
        "proxy_time": (_rule(lambda v: v == "" or _SLURM_TIME[0](v), "'' or " + TIME_RULE), ""),
    },
    "bumphunt": {
        "folds": (_int_at_least(2, 20), 5),
        "eps_b": (
            _distinct(
                lambda x: _is_num(x) and 0 < x < 1,
                "a non-empty list of distinct background efficiencies in (0, 1)",
            ),
            [1e-2, 1e-3, 1e-4],
        ),
        "runs": (_int_at_least(1, 1000), 10),
        "hp": (
            _distinct(
                lambda x: isinstance(x, str),
                "a non-empty list of distinct hyperparameter sources ('default' or a metric)",
            ),
            ["default"],
        ),
        "delta_sys": (
            _rule(
                lambda v: isinstance(v, str | list | dict),
                "'closure', 'mc', 'sidebands', a list of numbers (one per eps_b) "
                "or a table of those per mode",
            ),
            "closure",
        ),
        "mismodelling": (
            _rule(lambda v: _is_num(v) and 0 < v <= 100, "a number in (0, 100]"),
            1.0,
        ),
        "alt_extrabkg_file": (_NONEMPTY, None),
        "retries": (_int_at_least(0, 10), 1),
    },
}


# ----------------------------------------------------------------------------- dataclasses
@dataclass(frozen=True)
class DataConfig:
    source: str
    scale: float
    seed: int
    shifted: bool
    data_file: Path | None
    extrabkg_file: Path | None
    background_model: str
    samples_file: Path | None
    include_delta_r: bool
    n_noise: int
    #: hyperparameters of the background flow (CATHODE samples, ANODE, R-ANODE)
    background_hp: dict[str, Any] = field(default_factory=dict)
    #: the signal region of every cell without grid.windows (default: LHCO 3.3-3.7 TeV)
    region: Region = DEFAULT_REGION
    #: the signal regions of the grid's cells (grid.windows, else ``(region,)``)
    regions: tuple[Region, ...] = (DEFAULT_REGION,)
    #: darkmachines: the background file (None: the synthetic set) and the signal files
    background_file: Path | None = None
    signal_files: tuple[tuple[str, Path], ...] = ()
    test_fraction: float = 0.5
    max_objects: int = 20
    skip_bad_lines: bool = False
    apply_cuts: bool = True

    @property
    def darkmachines(self) -> bool:
        """Whether the campaign's events are DarkMachines-format files (unsupervised cells)."""
        return self.source == DM_SOURCE

    @property
    def extra_range(self) -> tuple[float, float]:
        """The mjj range the synthetic extra background must cover (every cell's SR)."""
        return min(r.sr[0] for r in self.regions), max(r.sr[1] for r in self.regions)


@dataclass(frozen=True)
class GridConfig:
    classifiers: tuple[str, ...]
    modes: tuple[str, ...]
    rotation: tuple[bool, ...]
    signal: tuple[int, ...]
    feature_sets: tuple[str, ...]
    #: bump-hunt windows (``Region.window``); None: the one region ``data.region``
    windows: tuple[int, ...] | None = None
    backbones: tuple[str, ...] = ("MLP",)
    channels: tuple[str, ...] = ("all",)


@dataclass(frozen=True)
class SearchConfig:
    n_trials: int
    sampler: str
    seed: int
    metrics: tuple[str, ...]
    objective: str
    repetitions: int
    n_startup_trials: int
    n_jobs: int
    #: "none" | "wilcoxon" | "halving": stop hopeless trials early over the repetitions
    #: (the file's "auto" is resolved when the campaign loads: hpo.pruners.resolve_pruner)
    pruner: str = "none"
    #: wilcoxon: prune when the trial is worse than the best one at this p-value
    pruner_p: float = 0.1
    #: repetitions a trial always runs before it may be pruned
    pruner_startup: int = 3
    #: whether PRUNED trials count toward n_trials (else only COMPLETE ones do)
    count_pruned: bool = True
    #: ARGOS counts only cuts passing at least this many template events (0: the paper's)
    argos_min_template: int = 0
    #: the method's defaults are every study's first trial (false: the paper's search)
    enqueue_defaults: bool = True
    #: where torch methods train: "auto" (CUDA when present), "cpu" or "cuda"
    device: str = "auto"
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)
    space: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class FinalConfig:
    n_runs: int
    statistics: tuple[str, ...]
    defaults: bool
    #: also average the scores of every completed trial ("ensemble" hp source)
    ensemble: bool = False
    #: "mean": every run uses the pick by the mean over repetitions (best.json);
    #: "per_repetition": run j uses repetition j's pick (run<j>.json; the paper's)
    pick: str = "mean"
    #: events of the half-statistics runs' label-free values: "reserved" (a fraction no
    #: repetition holds out), "fresh" (a new half split), "search" (repetition j's split,
    #: the paper's: a searched source's value is the one it was picked on)
    holdout: str = "reserved"
    #: the fraction of each class reserved with holdout = "reserved"
    reserve: float = 0.25


@dataclass(frozen=True)
class SlurmConfig:
    partition: str
    account: str
    time: str
    final_time: str
    cpus_per_task: int
    gpus_per_task: int
    mem: str
    array_size: int
    array_parallel: int
    signal: str
    setup: tuple[str, ...]
    extra: tuple[str, ...]
    python: str | None
    #: how the array's workers reach the storage: "none" (directly), "job" (a proxy job
    #: started by `hpo launch`) or "grpc://host:port" (a running proxy)
    proxy: str = "none"
    #: time limit of the proxy job ("": the worker time x the array's waves)
    proxy_time: str = ""


@dataclass(frozen=True)
class BumpHuntConfig:
    """The ``[bumphunt]`` section: k-fold scan, cut efficiencies, runs, hp sources, delta_sys.

    ``delta_sys`` maps each mode of the grid to ``"closure"``, ``"mc"``,
    ``"sidebands"`` or a tuple of numbers (one per ``eps_b``).
    """

    folds: int
    eps_b: tuple[float, ...]
    runs: int
    hp: tuple[str, ...]
    delta_sys: dict[str, str | tuple[float, ...]]
    mismodelling: float
    alt_extrabkg_file: Path | None
    retries: int


@dataclass(frozen=True)
class GridPoint:
    """One cell of the grid before data paths are resolved."""

    classifier: str
    mode: str
    rotation: bool
    signal: int
    feature_set: str
    region: Region = DEFAULT_REGION
    #: unsupervised cells: the DarkMachines channel (their mode is the backbone)
    channel: str | None = None

    @property
    def key(self) -> str:
        """``<method>-<mode>-<rot|norot>-N<signal>-<features>`` (+ ``-SR<lo>-<hi>`` off default).

        Unsupervised cells: ``<method>-<backbone>-chan<channel>``.
        """
        if self.channel is not None:
            return f"{self.classifier}-{self.mode}-chan{self.channel}"
        rot = "rot" if self.rotation else "norot"
        key = f"{self.classifier}-{self.mode}-{rot}-N{self.signal}-{self.feature_set}"
        return key if self.region.is_default else f"{key}-{self.region.tag}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (the region only when it is not the default one)."""
        if self.channel is not None:
            return {
                "classifier": self.classifier,
                "mode": self.mode,
                "backbone": self.mode,
                "channel": self.channel,
            }
        out: dict[str, Any] = {
            "classifier": self.classifier,
            "mode": self.mode,
            "rotation": self.rotation,
            "signal": self.signal,
            "feature_set": self.feature_set,
        }
        if not self.region.is_default:
            out["region"] = list(self.region.sr)
        return out


@dataclass(frozen=True)
class Campaign:
    """A validated campaign; paths are absolute."""

    name: str
    path: Path
    run_dir: Path
    storage: str
    seed: int
    data: DataConfig
    grid: GridConfig
    search: SearchConfig
    final: FinalConfig
    slurm: SlurmConfig
    sha256: str
    #: the ``[bumphunt]`` section, None when the campaign has none
    bumphunt: BumpHuntConfig | None = None

    @property
    def regions(self) -> tuple[Region, ...]:
        """The signal regions of the grid (one per window of ``grid.windows``)."""
        return self.data.regions

    def grid_points(self) -> list[GridPoint]:
        """Every cell of the grid, in a stable order (regions innermost)."""
        g = self.grid
        points = []
        for c in g.classifiers:
            method = get_method(c)
            if method.family == "unsupervised":  # backbone x channel, trained on background
                points.extend(
                    GridPoint(c, b, False, 0, "objects", DEFAULT_REGION, channel=ch)
                    for b, ch in itertools.product(g.backbones, g.channels)
                )
                continue
            if method.family == "classifier":
                grid = itertools.product(g.modes, g.rotation, g.signal, g.feature_sets)
            else:  # one cell per signal amount and feature set, in the method's own mode
                grid = itertools.product(method.modes, (False,), g.signal, g.feature_sets)
            points.extend(
                GridPoint(c, m, r, s, f, region) for m, r, s, f in grid for region in self.regions
            )
        return points


# ----------------------------------------------------------------------------- loading
def _fail(source: str, dotted: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {dotted}: {message}")


def _section(raw: dict, name: str, source: str, campaign_seed: int = 0) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise _fail(source, name, f"must be a table, got {type(table).__name__}")
    schema = SCHEMA[name]
    unknown = sorted(set(table) - set(schema))
    if unknown:
        raise _fail(
            source,
            f"{name}.{unknown[0]}",
            "unknown field; valid fields are " + ", ".join(sorted(schema)),
        )
    out: dict[str, Any] = {}
    for key, ((check, expected), default) in schema.items():
        if key not in table:
            if default == "REQUIRED":
                raise _fail(source, f"{name}.{key}", f"is required ({expected})")
            out[key] = campaign_seed if default == "CAMPAIGN_SEED" else default
            continue
        value = table[key]
        if not check(value):
            raise _fail(source, f"{name}.{key}", f"must be {expected}, got {value!r}")
        out[key] = value
    return out


def _check_source(raw: dict, sec: dict, source: str) -> None:
    """The data source fits the methods; fields of the other source are refused.

    A DarkMachines campaign defaults to the unsupervised methods and their metrics
    (``val_loss`` first).
    """
    d, given = sec["data"], raw.get("data", {})
    dm = d["source"] == DM_SOURCE
    grid = raw.get("grid", {}) if isinstance(raw.get("grid"), dict) else {}
    if dm and "classifiers" not in grid:
        sec["grid"]["classifiers"] = list(method_names("unsupervised"))
    for clf in sec["grid"]["classifiers"]:
        if (get_method(clf).family == "unsupervised") != dm:
            need = f"data.source = {DM_SOURCE!r}" if not dm else "data.source 'synthetic' or 'lhco'"
            raise _fail(source, "grid.classifiers", f"method {clf!r} needs {need}")
    foreign = LHCO_FIELDS if dm else DM_FIELDS
    for key in foreign:
        if key in given:
            where = f"data.source = {DM_SOURCE!r}" if not dm else "the LHCO sources"
            raise _fail(source, f"data.{key}", f"does not apply to {where}")
    if not dm:
        return
    if (d["background_file"] is None) != (d["signal_files"] is None):
        missing = "signal_files" if d["signal_files"] is None else "background_file"
        raise _fail(
            source,
            f"data.{missing}",
            "is required with data.background_file / data.signal_files (give both, "
            "or neither for the synthetic DarkMachines set)",
        )
    if "background" in (d["signal_files"] or {}):
        raise _fail(source, "data.signal_files", "'background' names the background file")
    if not d["apply_cuts"] and len(sec["grid"]["channels"]) != 1:
        raise _fail(
            source,
            "grid.channels",
            "must hold one channel with data.apply_cuts = false (the files are that "
            f"channel's events), got {sec['grid']['channels']}",
        )
    search = raw.get("search", {}) if isinstance(raw.get("search"), dict) else {}
    if "metrics" not in search:
        sec["search"]["metrics"] = list(get_method(sec["grid"]["classifiers"][0]).metrics)
    if "objective" not in search:
        sec["search"]["objective"] = "val_loss"


def _resolve(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _validate_per_classifier(search: dict, source: str) -> None:
    from hpo.spaces import validate_fixed, validate_space_overrides

    for table in ("fixed", "space"):
        for clf, entries in search[table].items():
            dotted = f"search.{table}.{clf}"
            if clf not in CLASSIFIERS:
                raise _fail(source, dotted, "unknown classifier; valid: " + ", ".join(CLASSIFIERS))
            if not isinstance(entries, dict):
                raise _fail(source, dotted, "must be a table")
            try:
                if table == "fixed":
                    validate_fixed(clf, entries)
                    both = sorted(set(entries) & set(search["space"].get(clf, {})))
                    if both:
                        raise ValueError(f"{both[0]!r} is both fixed and given a search range")
                else:
                    validate_space_overrides(clf, entries)
            except ValueError as exc:
                raise _fail(source, dotted, str(exc)) from None


def _validate_background_hp(hp: dict, source: str) -> None:
    from objectives.errors import HyperparameterError
    from objectives.flows.hyperparameters import validate_flow

    try:
        validate_flow("BackgroundFlow", hp, final=True, what="background flow")
    except HyperparameterError as exc:
        raise _fail(source, "data.background_hp", str(exc)) from None


def _delta_sys_rule(value: Any, mode: str, sec: dict, n_eps: int) -> str | tuple[float, ...]:
    """One mode's delta_sys setting, checked against the grid and data; ValueError says why."""
    d, grid = sec["data"], sec["grid"]
    if isinstance(value, list):
        if len(value) != n_eps or not all(_is_num(x) and x > -1 for x in value):
            raise ValueError(
                f"a list of delta_sys values must hold one number > -1 per eps_b "
                f"({n_eps}), got {value!r}"
            )
        return tuple(float(x) for x in value)
    if value not in DELTA_SYS:
        raise ValueError(
            "must be 'closure', 'mc', 'sidebands' or a list of numbers (one per eps_b), "
            f"got {value!r}"
        )
    if 0 not in grid["signal"]:
        raise ValueError(
            f"{value!r} measures delta_sys on background-only data: add 0 to grid.signal"
        )
    if value == "mc":
        if mode == "CWoLa":
            raise ValueError(
                "'mc' needs a simulated template; CWoLa trains against sideband data "
                "(use 'closure' or numbers)"
            )
        if mode == "CATHODE" and d["background_model"] != "truth":
            raise ValueError(
                "'mc' for CATHODE samples the alternative simulation's exact background: "
                "it needs data.background_model = 'truth'"
            )
    if value == "sidebands" and (mode != "CATHODE" or d["background_model"] == "file"):
        raise ValueError(
            "'sidebands' trains CATHODE on sideband data against background-model samples "
            "there: it needs mode CATHODE with data.background_model = 'truth' or 'flow'"
        )
    return value


def _bumphunt(b: dict, sec: dict, base: Path, source: str) -> BumpHuntConfig:
    """The validated ``[bumphunt]`` section (cross-checked against the grid and data)."""
    grid, d, s = sec["grid"], sec["data"], sec["search"]
    if not any(get_method(c).family == "classifier" for c in grid["classifiers"]):
        raise _fail(
            source,
            "bumphunt",
            "the bump hunt trains classifiers; add HGB, AdaBoost or NN to grid.classifiers",
        )
    sources = ("default", *s["metrics"])
    for hp in b["hp"]:
        if hp not in sources:
            raise _fail(
                source,
                "bumphunt.hp",
                f"{hp!r} is not a hyperparameter source; valid: " + ", ".join(sources),
            )
    raw = b["delta_sys"]
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - set(grid["modes"]))
        if unknown:
            raise _fail(
                source,
                f"bumphunt.delta_sys.{unknown[0]}",
                "not a mode of grid.modes (" + ", ".join(grid["modes"]) + ")",
            )
    delta_sys = {}
    for mode in grid["modes"]:
        value = raw.get(mode, "closure") if isinstance(raw, dict) else raw
        dotted = f"bumphunt.delta_sys.{mode}" if isinstance(raw, dict) else "bumphunt.delta_sys"
        try:
            delta_sys[mode] = _delta_sys_rule(value, mode, sec, len(b["eps_b"]))
        except ValueError as exc:
            raise _fail(source, dotted, str(exc)) from None
    uses_mc = "mc" in delta_sys.values()
    if d["source"] == "lhco":
        if uses_mc and b["alt_extrabkg_file"] is None:
            raise _fail(
                source,
                "bumphunt.alt_extrabkg_file",
                "is required for delta_sys = 'mc' on LHCO files (the alternative "
                "simulation's extra background, e.g. Herwig)",
            )
    elif b["alt_extrabkg_file"] is not None:
        raise _fail(
            source,
            "bumphunt.alt_extrabkg_file",
            "only applies to data.source = 'lhco' (the synthetic generator writes its own)",
        )
    return BumpHuntConfig(
        folds=b["folds"],
        eps_b=tuple(float(e) for e in b["eps_b"]),
        runs=b["runs"],
        hp=tuple(b["hp"]),
        delta_sys=delta_sys,
        mismodelling=float(b["mismodelling"]),
        alt_extrabkg_file=_resolve(base, b["alt_extrabkg_file"]) if uses_mc else None,
        retries=b["retries"],
    )


def _check_run_dir(run_dir: Path, source: str) -> None:
    """The run directory is a directory or can become one (nothing on its path is a file)."""
    existing = run_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise _fail(source, "campaign.run_dir", f"{existing} exists and is not a directory")


def writable_run_dir(campaign: Campaign, *, create: bool = True) -> Path:
    """Make the run directory (unless not ``create``) and prove it writable.

    ConfigError (one line) otherwise. For the commands that write results; the reading
    commands work on a run directory a collaborator can only read. With ``create=False``
    (``hpo validate``) nothing is left on disk: the nearest existing folder is probed.
    """
    import tempfile

    try:
        if create:
            campaign.run_dir.mkdir(parents=True, exist_ok=True)
        target = campaign.run_dir
        while not target.exists():
            target = target.parent
        probe = tempfile.mkdtemp(dir=target, prefix=".write-probe-")
        os.rmdir(probe)
    except OSError as exc:
        raise _fail(
            str(campaign.path),
            "campaign.run_dir",
            f"{campaign.run_dir} is not a writable directory ({exc.strerror or exc})",
        ) from None
    return campaign.run_dir


def load_campaign(path: str | Path) -> Campaign:
    """Read and fully validate a campaign TOML file."""
    path = Path(path).expanduser().resolve()
    source = str(path)
    if path.is_dir():
        raise ConfigError(f"{source}: is a directory; expected a campaign TOML file")
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{source}: campaign file not found") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the campaign file ({exc.strerror})") from None
    try:
        raw = tomllib.loads(text.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    loose = sorted(k for k, v in raw.items() if not isinstance(v, dict))
    if loose:
        raise ConfigError(
            f"{source}: {loose[0]}: a field outside any section; put it under its section "
            "header, e.g. [campaign] for name, run_dir, storage, seed"
        )
    unknown = sorted(set(raw) - set(SCHEMA))
    if unknown:
        raise ConfigError(
            f"{source}: [{unknown[0]}]: unknown section; valid sections are "
            + ", ".join(f"[{s}]" for s in SCHEMA)
        )
    sec = {"campaign": _section(raw, "campaign", source)}
    seed = sec["campaign"]["seed"]
    sec.update({name: _section(raw, name, source, seed) for name in SCHEMA if name != "campaign"})
    base = path.parent

    c, d, s = sec["campaign"], sec["data"], sec["search"]
    _check_source(raw, sec, source)
    try:
        kind = check_url(c["storage"])
    except StorageError as exc:
        raise _fail(source, "campaign.storage", str(exc)) from None
    if s["pruner"] not in ("auto", "none") and s["pruner_startup"] >= s["repetitions"]:
        raise _fail(
            source,
            "search.pruner_startup",
            f"must be below search.repetitions ({s['repetitions']}) for a pruner to act, "
            f"got {s['pruner_startup']}",
        )
    s["pruner"] = resolve_pruner(s["pruner"], s["repetitions"], s["pruner_startup"])
    if sec["slurm"]["proxy"] == "job" and kind != POSTGRES_SCHEME:
        raise _fail(
            source,
            "slurm.proxy",
            f"'job' proxies a PostgreSQL storage, campaign.storage is {kind!r} "
            "(a journal file cannot be proxied: optuna#6084; a 'grpc://' storage already is one)",
        )
    if s["objective"] not in s["metrics"]:
        raise _fail(
            source,
            "search.objective",
            f"must be one of search.metrics {s['metrics']}, got {s['objective']!r}",
        )
    if d["source"] == "lhco":
        for key in ("data_file", "extrabkg_file"):
            if d[key] is None:
                raise _fail(source, f"data.{key}", "is required when data.source = 'lhco'")
    elif d["source"] == "synthetic":
        for key in ("data_file", "extrabkg_file"):
            if d[key] is not None:
                raise _fail(source, f"data.{key}", "only applies to data.source = 'lhco'")
    if "CATHODE" in sec["grid"]["modes"]:
        if d["background_model"] == "file" and d["samples_file"] is None:
            raise _fail(
                source,
                "data.samples_file",
                "is required for CATHODE cells with data.background_model = 'file' "
                "(or set background_model = 'flow' or 'truth')",
            )
        if d["background_model"] == "truth" and d["source"] != "synthetic":
            raise _fail(
                source,
                "data.background_model",
                "'truth' samples the exact background and needs data.source = 'synthetic'",
            )
        extended = sorted(set(sec["grid"]["feature_sets"]) - {"baseline"})
        if d["background_model"] == "truth" and (extended or d["include_delta_r"] or d["n_noise"]):
            raise _fail(
                source,
                "data.background_model",
                "'truth' samples the four baseline features only; drop "
                + (f"feature set {extended[0]!r}" if extended else "include_delta_r / n_noise")
                + " or use background_model = 'flow'",
            )
    _validate_per_classifier(s, source)
    _validate_background_hp(d["background_hp"], source)
    windows = sec["grid"].pop("windows")
    if windows is not None and "region" in raw.get("data", {}):
        raise _fail(
            source,
            "grid.windows",
            "the windows set every cell's signal region; drop data.region or grid.windows",
        )
    regions = (
        tuple(Region.window(w) for w in windows)
        if windows is not None
        else (Region(tuple(float(v) for v in d["region"])),)
    )
    bumphunt = _bumphunt(sec["bumphunt"], sec, base, source) if "bumphunt" in raw else None
    if sec["final"]["ensemble"] and not any(
        get_method(m).can_ensemble for m in sec["grid"]["classifiers"]
    ):
        raise _fail(
            source,
            "final.ensemble",
            "no method of grid.classifiers averages scores over trials (the unsupervised "
            "methods " + ", ".join(method_names("unsupervised")) + " do)",
        )

    run_dir = _resolve(base, c["run_dir"]) if c["run_dir"] else (base / "runs" / c["name"])
    _check_run_dir(run_dir.resolve(), source)
    return Campaign(
        name=c["name"],
        path=path,
        run_dir=run_dir.resolve(),
        storage=c["storage"],
        seed=c["seed"],
        data=DataConfig(
            source=d["source"],
            scale=float(d["scale"]),
            seed=d["seed"],
            shifted=d["shifted"],
            data_file=_resolve(base, d["data_file"]),
            extrabkg_file=_resolve(base, d["extrabkg_file"]),
            background_model=d["background_model"],
            samples_file=_resolve(base, d["samples_file"]),
            include_delta_r=d["include_delta_r"],
            n_noise=d["n_noise"],
            background_hp=dict(d["background_hp"]),
            region=Region(tuple(float(v) for v in d["region"])),
            background_file=_resolve(base, d["background_file"]),
            signal_files=tuple(
                (name, _resolve(base, f)) for name, f in (d["signal_files"] or {}).items()
            ),
            test_fraction=float(d["test_fraction"]),
            max_objects=d["max_objects"],
            skip_bad_lines=d["skip_bad_lines"],
            apply_cuts=d["apply_cuts"],
            regions=regions,
        ),
        grid=GridConfig(
            **{k: tuple(v) for k, v in sec["grid"].items()},
            windows=None if windows is None else tuple(windows),
        ),
        search=SearchConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in s.items()}),
        final=FinalConfig(
            n_runs=sec["final"]["n_runs"],
            statistics=tuple(sec["final"]["statistics"]),
            defaults=sec["final"]["defaults"],
            ensemble=sec["final"]["ensemble"],
            pick=sec["final"]["pick"],
            holdout=sec["final"]["holdout"],
            reserve=float(sec["final"]["reserve"]),
        ),
        slurm=SlurmConfig(
            **{k: (tuple(v) if isinstance(v, list) else v) for k, v in sec["slurm"].items()}
        ),
        sha256=hashlib.sha256(text).hexdigest(),
        bumphunt=bumphunt,
    )
