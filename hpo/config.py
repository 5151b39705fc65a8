"""Campaigns: one TOML file, validated completely before anything runs.

Every error names the dotted field, what it must be and what was given::

    ConfigError: quickstart.toml: search.n_trials: must be an integer >= 1, got 0

Sections: ``[campaign]`` (name, run_dir, storage, seed), ``[data]``,
``[grid]``, ``[search]`` (with optional ``[search.fixed.<CLF>]`` and
``[search.space.<CLF>]`` tables), ``[final]``, ``[slurm]``, the optional
``[bumphunt]`` (the sliding-window bump hunt, :mod:`hpo.bumphunt`) and ``[report]``
(the figures' mplhep style and experiment label, :mod:`hpo.plots`). See
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
``grid.channels`` entry, their baselines (IsolationForest, FlowDensity, the cuts MET,
HT, NObjects and, on the synthetic set only, BkgDensity) one cell per channel in
their mode ``"baseline"``. Without ``grid.classifiers`` a DarkMachines campaign runs
all of those that apply; its campaigns default to their methods' own metrics
(the objective ``perturb_auc``, ``val_loss`` and the truth oracles ``auc``,
``eps_s_1e-2`` ...).

``[campaign] seed`` is the default of ``data.seed`` and ``search.seed``.

``[slurm] proxy``: how the array's workers reach the storage -- ``"none"`` (directly),
``"job"`` (``hpo launch`` starts a gRPC storage proxy job for a PostgreSQL storage) or
``"grpc://host:port"`` (a proxy the user runs); see :mod:`hpo.proxy`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterator
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
    "ReportConfig",
    "SearchConfig",
    "SlurmConfig",
    "load_campaign",
    "run_dir_undone_on_error",
    "writable_run_dir",
]

from hpo.pruners import PRUNERS, resolve_pruner
from objectives.darkmachines.cells import CHANNEL_NAMES
from objectives.devices import DEVICES
from objectives.regions import DEFAULT_REGION, Region
from objectives.registry import DIRECTIONS, MODES, ORACLES, get_method, method_names
from objectives.unsupervised.params import BACKBONES
from storage.addresses import GRPC_SCHEME, POSTGRES_SCHEME, check_url, redact
from storage.errors import StorageError
from workers.slurm import TIME_RULE, valid_time

#: The built-in methods of ``grid.classifiers`` (the registry's; other packages add theirs).
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
#: What the bump hunt does with a negative delta_sys (it lowers N_b and so raises Z):
#: "zero" applies 0 in its place (its size still enters sigma_sys), "apply" applies it.
NEGATIVE_DELTA_SYS = ("zero", "apply")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: ``[report] experiment``: whose plot style and label the figures carry ("none": no label).
EXPERIMENTS = ("none", "ATLAS", "CMS", "LHCb", "ALICE")


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
        "classifiers": (
            _distinct(
                lambda x: isinstance(x, str) and x != "",
                "a non-empty list of distinct method names (see hpo methods): "
                + ", ".join(map(repr, CLASSIFIERS))
                + ", an installed package's or 'module:attribute'",
            ),
            ["HGB"],
        ),
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
        "defaults_margin": (
            _rule(lambda v: _is_num(v) and 0 <= v < math.inf, "a number >= 0"),
            1.0,
        ),
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
        "proxy_tls_cert": (_STR, ""),
        "proxy_tls_key": (_STR, ""),
        "proxy_tls_ca": (_STR, ""),
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
        "negative_delta_sys": (_one_of(NEGATIVE_DELTA_SYS), "zero"),
    },
    "report": {
        "experiment": (_one_of(EXPERIMENTS), "none"),
        "label": (_STR, "Simulation"),
    },
}


#: What each SCHEMA field does, one entry per field (docs/campaign.md prints it beside the
#: field's rule and default; ``tests/test_docs.py`` fails while a field has none).
#: After changing SCHEMA or this table: ``python -m hpo.config_doc > docs/campaign.md``.
DESCRIPTIONS: dict[str, dict[str, str]] = {
    "campaign": {
        "name": "Names the campaign's studies and its default run directory.",
        "run_dir": (
            "Where every output goes, relative to the campaign file; unset: `runs/<name>` "
            "next to the file. `hpo validate` checks that it is (or can become) a writable "
            "folder."
        ),
        "storage": (
            "Where the studies live: `journal:<file>` (relative to `run_dir`; no server), "
            "`postgresql+psycopg2://user@host:port/db` or `grpc://host:port` (a storage "
            "proxy, reached with the campaign's proxy token and `[slurm] proxy_tls_ca`). A "
            "PostgreSQL URL holds no secret: no password (it comes from `$PGPASSWORD` or "
            "`~/.pgpass`) and no parameter whose decoded name contains `password`, `passwd`, "
            "`pwd`, `secret` or `token` (`sslpassword`: use a service file and "
            "`?service=NAME`); its port is a number in 0-65535. See [storage.md](storage.md)."
        ),
        "seed": "The default of `data.seed` and `search.seed`.",
    },
    "data": {
        "source": (
            "`synthetic` (the built-in generator, exact likelihood ratio known), `lhco` (the "
            "LHC Olympics R&D files) or `darkmachines` (DarkMachines-format events for the "
            "unsupervised detectors). See [data.md](data.md) and "
            "[unsupervised.md](unsupervised.md)."
        ),
        "scale": (
            "Size of a synthetic set relative to its full size (the LHCO-like set at 1.0: "
            "the R&D sizes, 1M background and 100k signal events)."
        ),
        "seed": (
            "Seed of the synthetic data, of the DarkMachines training / test split and of "
            "the background flow's training."
        ),
        "region": (
            "The signal region of every cell, in TeV; its short sidebands are 0.2 TeV either "
            "side. Not together with `grid.windows`."
        ),
        "shifted": "Synthetic: CATHODE's correlation test (mJ1 and ΔmJ += 0.1·mjj).",
        "data_file": (
            "lhco, required there: the R&D features file (pandas HDF5: `pxj1 … tau3j2, "
            "label`, GeV)."
        ),
        "extrabkg_file": "lhco, required there: the signal-region-only extra QCD background file.",
        "background_model": (
            "The CATHODE template: `file` reads `samples_file`; `truth` samples the exact "
            "synthetic background (synthetic source, baseline features only); `flow` trains "
            "the conditional MAF background model on the sidebands once per signal amount "
            "and caches it."
        ),
        "samples_file": (
            '`background_model = "file"`, required for CATHODE cells there: `.npy` rows '
            "`[mjj, features…]`, at least as many rows as signal-region data events."
        ),
        "include_delta_r": "Adds ΔR between the two jets as a feature.",
        "n_noise": "Adds this many Gaussian noise features.",
        "background_hp": (
            "Settings of the background flow over the published ones (15 × 128 MAF, Adam "
            "1e-4, batch 256, 100 epochs); a `BackgroundFlow` cell's exported best can be "
            "pasted here. See [density.md](density.md)."
        ),
        "background_file": (
            "darkmachines: the background events file; with `signal_files`, or neither for "
            "the synthetic DarkMachines set."
        ),
        "signal_files": "darkmachines: the signal events files, as a table name = file.",
        "test_fraction": (
            "darkmachines: the share of the background held out as test events (the rest is "
            "the training pool; every signal event is a test event)."
        ),
        "max_objects": (
            "darkmachines: object slots per event (an event with more keeps its highest-pT "
            "objects, and they are counted); `BkgDensity` needs at least the generator's 20."
        ),
        "skip_bad_lines": (
            "darkmachines: skip and count malformed lines (`note:` lines) instead of stopping "
            "at the first one."
        ),
        "apply_cuts": (
            "darkmachines: apply the channel's cuts; false: the files already hold the one "
            "channel of `grid.channels`, which then only labels them."
        ),
    },
    "grid": {
        "classifiers": (
            "The methods. Classifiers `HGB`, `AdaBoost`, `NN` run in every mode and rotation; "
            "the density methods `ANODE`, `R-ANODE`, `BackgroundFlow` give one cell per "
            "signal amount and feature set, mode `density`; the unsupervised `dSVDD`, "
            '`DROCC`, `DDD` need `data.source = "darkmachines"` and give one cell per '
            "backbone and channel, their baselines `IsolationForest`, `FlowDensity`, `MET`, "
            "`HT`, `NObjects` and (synthetic set only) `BkgDensity` one cell per channel, "
            "mode `baseline`; by default there, every one of these that applies. A method "
            "of another package "
            "is named by its entry point (`wsad_hpo.methods`) or as `module:attribute` on "
            "`PYTHONPATH`; `hpo methods` lists what the environment offers. See "
            "[methods.md](methods.md)."
        ),
        "modes": (
            "How a classifier is trained: `IAD` (against simulated signal-region background), "
            "`CWoLa` (against sideband data), `CATHODE` (against background-model samples)."
        ),
        "rotation": (
            "Whether the features get the reference's fixed random rotation (the paper's "
            "separate setting)."
        ),
        "signal": "Injected signal amounts N (signal events added to the data).",
        "feature_sets": (
            "`baseline`: [mJ1, mJ2−mJ1, τ21(J1), τ21(J2)]; the extended N-subjettiness sets "
            "need `tau{N}j{J}_{beta}` columns in an LHCO file."
        ),
        "windows": (
            "The bump hunt's signal-region windows, each a cell of its own: window w = "
            "[3.3, 3.7] + (w − 5)·0.1 TeV. Unset: the one region `data.region` (window 5). "
            "Not together with `data.region`."
        ),
        "backbones": (
            "Unsupervised: the networks (`MLP`; `ParT`, `ParT+pair`); a grid dimension, "
            "never a hyperparameter."
        ),
        "channels": ("Unsupervised: the DarkMachines channels; `all` applies no cuts."),
    },
    "search": {
        "n_trials": (
            "Trials per cell; each cell ends with exactly this many (PRUNED ones count too "
            "unless `count_pruned = false`)."
        ),
        "sampler": (
            "`tpe` is seeded per worker; `random` reproduces the paper (each trial's draw "
            "depends only on the seed, study and trial number)."
        ),
        "seed": "Seed of the samplers.",
        "metrics": (
            "What every trial records and `hpo export` exports. Default: the first method's "
            "metrics (`argos`, `bce`, `max_sic` for classifiers); with "
            '`data.source = "darkmachines"` every metric of the grid\'s methods, label-free '
            "first (`perturb_auc`, `val_loss`, then the truth oracles)."
        ),
        "objective": (
            "The metric that drives the sampler; one of `metrics` (default `perturb_auc` "
            'with `data.source = "darkmachines"`: the detector\'s AUC of generic '
            "perturbations of held-out background against the same events)."
        ),
        "repetitions": (
            "Half-statistics evaluations per trial, each on a 50/50 split seeded by its "
            "index; the trial's value is their mean."
        ),
        "n_startup_trials": "TPE: random trials before the model proposes.",
        "enqueue_defaults": (
            "The method's default hyperparameters are every study's first trial (trial 0), "
            "so a search never ends worse than its starting point by its own objective; "
            "`false` is the paper's search. Defaults outside the space (HGB `max_iter` 200, "
            "`max_depth` None, `max_bins` 255) are left out of the trial's parameters and "
            "keep their value. One defaults trial per study, whatever the workers and restarts."
        ),
        "n_jobs": "CPU threads of one evaluation.",
        "pruner": (
            "`auto`: `wilcoxon` where a trial has repetitions left after `pruner_startup`, "
            "else `none`. `wilcoxon`: a paired signed-rank test against the best trial on the "
            "same repetitions. `halving`: successive halving over repetitions. `none`: the "
            "paper's protocol. See [search.md](search.md#pruning)."
        ),
        "pruner_p": "wilcoxon: prune a trial worse than the best one at this p-value.",
        "pruner_startup": (
            "Repetitions a trial always runs before it may be pruned; below `repetitions` "
            "when a pruner is named."
        ),
        "count_pruned": (
            "Whether PRUNED trials count toward `n_trials` (false: only COMPLETE ones do, so "
            "pruning buys more trials instead of saving CPU)."
        ),
        "argos_min_template": (
            "ARGOS counts only cuts passing at least this many template events. 0 is the "
            "paper's ARGOS; 25 is the rule the truth Max SIC uses for its background. See "
            "[selection.md](selection.md#select-with-an-argos-floor)."
        ),
        "device": (
            "Where the NN, the flows and the unsupervised networks train. `auto` takes a GPU "
            "when torch sees one; `cuda` on a node without one stops `hpo run`, `pipeline`, "
            "`worker` and `final` before any training."
        ),
        "fixed": (
            "Tables `[search.fixed.<METHOD>]`: hyperparameters held fixed, not searched "
            "(e.g. `n_ensemble`), checked by the method's own rules."
        ),
        "space": (
            "Tables `[search.space.<METHOD>]`: replace a hyperparameter's search range "
            "(`type` = `int`, `float` or `categorical`; `low`, `high`, `step`, `log` or "
            "`choices`); the default ranges are the method's own (`hpo methods <name>`). A "
            "hyperparameter cannot be both fixed and searched."
        ),
    },
    "final": {
        "n_runs": "Final runs per cell, hyperparameter source and statistics.",
        "statistics": (
            "Train the final runs on `half` and / or `full` statistics; `hpo select` needs `half`."
        ),
        "defaults": "Also run the method's default hyperparameters (source `default`).",
        "ensemble": (
            "Also average the scores of every completed trial (source `ensemble`; the "
            "unsupervised methods), leaving out those that rank a generic anomaly below "
            "random (DDD: and those out of its AUC band); a run with none left is recorded "
            "as refused, with why, and the others go on."
        ),
        "pick": (
            "Which exported pick a final run trains: `mean`, the trial with the best mean "
            "over repetitions (`hp/<cell>/<metric>/best.json`) in every run; "
            "`per_repetition` (the paper's), run *j* the best trial of repetition *j* "
            "(`run<j>.json`). A run without a repetition of its own uses `best.json`, with a "
            'warning from `hpo validate` and `hpo final` and `"fallback": true` in its record.'
        ),
        "defaults_margin": (
            'With `pick = "mean"` and the defaults trial enqueued: `best.json` is the '
            "defaults trial unless the best trial's mean beats it, in the metric's "
            "direction, by more than this many standard errors of the two trials' paired "
            "per-repetition differences (`0`: the plain best, the paper's). With one "
            "repetition or no complete defaults trial the plain best stands. Not applied "
            'to `pick = "per_repetition"` (one repetition has no standard error). '
            "`best.json` records the decision (`pick_rule`); see "
            "[selection.md](selection.md#the-defaults-unless-a-pick-beats-them-beyond-noise)."
        ),
        "holdout": (
            "Where half-statistics final runs compute the label-free values `hpo select` "
            "compares: `reserved`, on `reserve` of each class that no repetition of the "
            "search holds out (the NN ranks its epochs on other events); `fresh`, on a half "
            "split seeded apart from every repetition (overlapping each by about half); "
            "`search` (the paper's), on repetition *j*'s own split, where a pick's value is "
            "the one it won on. See [selection.md](selection.md#values-no-choice-was-made-on)."
        ),
        "reserve": (
            'With `holdout = "reserved"`: the reserved share of each class, in [0.05, '
            "0.45]. The search's repetitions hold out their half from the other events, so "
            "set it before the search (`hpo export` refuses a reserve changed after it)."
        ),
    },
    "slurm": {
        "partition": '`--partition` of every job (`""`: the cluster\'s default).',
        "account": '`--account` of every job (`""`: none).',
        "time": "Time limit of each worker array task.",
        "final_time": (
            "Time limit of the other jobs (pick-best, finals, select, report, bump hunt)."
        ),
        "cpus_per_task": "`--cpus-per-task` of every job.",
        "gpus_per_task": "`--gres=gpu:N` on the workers and the final runs.",
        "mem": "`--mem` of every job.",
        "array_size": "Tasks in the worker array.",
        "array_parallel": "Array tasks that run at once (`--array=0-(size-1)%parallel`).",
        "signal": (
            "The warning signal before the time limit (`--signal=B:<spec>`): workers "
            "re-queue their trial, the other jobs stop with one line, keeping what they "
            "finished."
        ),
        "setup": "Shell lines each job runs first, e.g. `source .venv/bin/activate`.",
        "extra": "Extra `#SBATCH` lines.",
        "python": "The Python that runs `hpo` in the jobs; unset: the one running `hpo launch`.",
        "proxy": (
            "How the workers reach the storage: `none` (directly), `job` (`hpo launch` first "
            "starts a storage proxy job; PostgreSQL storage only) or `grpc://host:port` (a "
            "proxy you run). Through either proxy the workers send the campaign's token, "
            "`<run_dir>/slurm/proxy.token`, which `hpo launch` writes (mode 0600) and keeps "
            "across launches. See [storage.md](storage.md#grpc-storage-proxy)."
        ),
        "proxy_time": (
            "The proxy job's time limit; `\"\"`: the worker `time` × the array's waves + 10 min."
        ),
        "proxy_tls_cert": (
            'PEM certificate (chain) of the proxy job (`proxy = "job"` only; with '
            "`proxy_tls_key`, both or neither; relative to the campaign file): the proxy then "
            "serves TLS. A proxy you run takes `hpo proxy --tls-cert/--tls-key`. The "
            "certificate must name the node the proxy job runs on (a wildcard such as "
            "`*.cluster.example`)."
        ),
        "proxy_tls_key": "The private key of `proxy_tls_cert` (PEM).",
        "proxy_tls_ca": (
            "The CA the workers, `hpo status` and a `grpc://` campaign storage verify the "
            'proxy\'s certificate with; `""`: `proxy_tls_cert` (a self-signed certificate '
            "is its own CA). Needs `proxy` other than `none` (with a `grpc://` campaign "
            "storage, set `proxy` to the same address); the file must exist."
        ),
    },
    "bumphunt": {
        "folds": (
            "k of the k-fold scan: each unit trains on k − 1 folds and scores the held-out one."
        ),
        "eps_b": "Background efficiencies of the cut and count.",
        "runs": "Runs of the scan, each with its own folds.",
        "hp": (
            "Hyperparameter sources: `default` or metrics of `search.metrics` (the best "
            "exported per window)."
        ),
        "delta_sys": (
            "The background's systematic uncertainty: `closure` (from the grid's signal-0 "
            "series), `mc` (an alternative simulation; not for CWoLa; CATHODE needs "
            '`data.background_model = "truth"`), `sidebands` (CATHODE with background '
            "model `truth` or `flow`), one number > −1 per `eps_b`, or a table of those per "
            "mode. The measured ones need 0 in `grid.signal`. See [bumphunt.md](bumphunt.md)."
        ),
        "mismodelling": (
            "Synthetic: how far the alternative simulation of `mc` moves the background's "
            "latent feature means, × (0.03, 0.03, 0.05, 0.05)."
        ),
        "alt_extrabkg_file": (
            'lhco with `delta_sys = "mc"`, required there: the alternative simulation\'s '
            "extra background (e.g. Herwig); refused for the synthetic source."
        ),
        "retries": "SLURM: how often the combine job resubmits killed bump-hunt tasks.",
        "negative_delta_sys": (
            "What the significance does with a negative measured or given δ_sys: `zero` "
            "applies 0 in its place (N_b is not lowered; |δ_sys| still enters σ_sys), "
            "`apply` applies it as it is (it lowers N_b and can raise Z). The printout and "
            "`results.json` say which rule was applied."
        ),
    },
    "report": {
        "experiment": (
            "`none`: mplhep's ROOT style, no experiment label. `ATLAS`, `CMS`, `LHCb` or "
            "`ALICE`: that experiment's mplhep style and its label on every panel."
        ),
        "label": (
            "The text after the experiment's name (e.g. `Simulation Preliminary`, `Private "
            "work`); refused without `experiment`."
        ),
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
    #: the mean pick replaces the defaults trial only where it is ahead by more than this
    #: many standard errors of the paired per-repetition differences (0: the plain best)
    defaults_margin: float = 1.0
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
    #: the proxy job's TLS certificate and key (PEM; "": plain gRPC, token still required)
    proxy_tls_cert: str = ""
    proxy_tls_key: str = ""
    #: the CA workers verify the proxy's certificate with ("": proxy_tls_cert, self-signed)
    proxy_tls_ca: str = ""


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
    #: a negative delta_sys: "zero" (applied as 0, its size kept in sigma_sys) or "apply"
    negative_delta_sys: str = "zero"


@dataclass(frozen=True)
class ReportConfig:
    """The ``[report]`` section: the figures' style and experiment label.

    ``experiment``: ``"none"`` (mplhep's ROOT style, no label) or an experiment whose
    mplhep style and label every plot gets, with ``label`` after its name
    (``"CMS Simulation"``).
    """

    experiment: str = "none"
    label: str = "Simulation"


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
    #: the ``[report]`` section: the figures' style and experiment label
    report: ReportConfig = ReportConfig()

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
                # a detector runs on the grid's backbones, a baseline in its own mode
                uses_backbones = set(method.modes) <= set(BACKBONES)
                modes = [b for b in g.backbones if b in method.modes] if uses_backbones else []
                points.extend(
                    GridPoint(c, b, False, 0, "objects", DEFAULT_REGION, channel=ch)
                    for b, ch in itertools.product(modes or method.modes, g.channels)
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
def _shown(value: Any) -> str:
    """A field's value for a message, redacted (a URL field may hold a password)."""
    return repr(redact(value)) if isinstance(value, str) else redact(repr(value))


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
            raise _fail(source, f"{name}.{key}", f"must be {expected}, got {_shown(value)}")
        out[key] = value
    return out


def _check_source(raw: dict, sec: dict, source: str) -> None:
    """The data source fits the methods; fields of the other source are refused.

    A DarkMachines campaign defaults to the unsupervised methods and their metrics,
    with the label-free ``perturb_auc`` as the objective.
    """
    from objectives.unsupervised.baselines import SYNTHETIC_ONLY

    d, given = sec["data"], raw.get("data", {})
    dm = d["source"] == DM_SOURCE
    grid = raw.get("grid", {}) if isinstance(raw.get("grid"), dict) else {}
    user_files = d["background_file"] is not None
    if dm and "classifiers" not in grid:  # every detector and baseline that applies
        sec["grid"]["classifiers"] = [
            m for m in method_names("unsupervised") if not (user_files and m in SYNTHETIC_ONLY)
        ]
    sec["grid"]["classifiers"] = _resolve_methods(sec["grid"]["classifiers"], source)
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
    _check_exact_baselines(sec, source)
    if not d["apply_cuts"] and len(sec["grid"]["channels"]) != 1:
        raise _fail(
            source,
            "grid.channels",
            "must hold one channel with data.apply_cuts = false (the files are that "
            f"channel's events), got {sec['grid']['channels']}",
        )
    search = raw.get("search", {}) if isinstance(raw.get("search"), dict) else {}
    if "metrics" not in search:  # every metric of the grid's methods, label-free first
        metrics = [m for c in sec["grid"]["classifiers"] for m in get_method(c).metrics]
        metrics = sorted(dict.fromkeys(metrics), key=lambda m: m in ORACLES)
        sec["search"]["metrics"] = metrics
    if "objective" not in search:
        metrics = sec["search"]["metrics"]
        sec["search"]["objective"] = "perturb_auc" if "perturb_auc" in metrics else metrics[0]


def _check_exact_baselines(sec: dict, source: str) -> None:
    """Baselines with the generator's exact density need its files, read in full."""
    from objectives.darkmachines.synthetic import N_MAX
    from objectives.unsupervised.baselines import SYNTHETIC_ONLY

    d = sec["data"]
    exact = [m for m in sec["grid"]["classifiers"] if m in SYNTHETIC_ONLY]
    if not exact:
        return
    if d["background_file"] is not None:
        raise _fail(
            source,
            "grid.classifiers",
            f"{exact[0]} needs the synthetic DarkMachines set (the generator's exact "
            "background density); drop it, or data.background_file / data.signal_files",
        )
    if d["max_objects"] < sum(N_MAX.values()):
        raise _fail(
            source,
            "data.max_objects",
            f"{exact[0]} needs every object of an event (the generator writes up to "
            f"{sum(N_MAX.values())}): must be >= {sum(N_MAX.values())}, got {d['max_objects']}",
        )


def _method(name: str, source: str, dotted: str):
    """The registry's method ``name`` (built-in, entry point, 'module:attribute') with its
    search space checked; ConfigError naming ``dotted`` and what is wrong otherwise."""
    from hpo.spaces import check_space
    from objectives.errors import HyperparameterError
    from objectives.registry import get_method

    try:
        method = get_method(name)
        check_space(method)
    except HyperparameterError as exc:  # MethodError included: a broken method
        raise _fail(source, dotted, str(exc)) from None
    return method


def _resolve_methods(names: list[str], source: str) -> list[str]:
    """``grid.classifiers`` as registered names ('module:attribute' -> the method's name)."""
    resolved = [_method(n, source, "grid.classifiers").name for n in names]
    twice = sorted({n for n in resolved if resolved.count(n) > 1})
    if twice:
        raise _fail(source, "grid.classifiers", f"names the method {twice[0]!r} twice")
    return resolved


def _resolve(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _validate_per_classifier(search: dict, source: str) -> None:
    from hpo.spaces import validate_fixed, validate_space_overrides

    for table in ("fixed", "space"):
        named = {
            _method(clf, source, f"search.{table}.{clf}").name: e
            for clf, e in search[table].items()
        }
        search[table] = named
    for table in ("fixed", "space"):
        for clf, entries in search[table].items():
            dotted = f"search.{table}.{clf}"
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
        negative_delta_sys=b["negative_delta_sys"],
    )


def _check_proxy_tls(slurm: dict, base: Path, source: str) -> None:
    """The proxy's TLS files: with a proxy, existing, cert and key together (resolved)."""
    given = [k for k in ("proxy_tls_cert", "proxy_tls_key", "proxy_tls_ca") if slurm[k]]
    if given and slurm["proxy"] == "none":
        raise _fail(source, f"slurm.{given[0]}", "needs slurm.proxy ('job' or 'grpc://...')")
    if bool(slurm["proxy_tls_cert"]) != bool(slurm["proxy_tls_key"]):
        missing = "proxy_tls_key" if slurm["proxy_tls_cert"] else "proxy_tls_cert"
        raise _fail(source, f"slurm.{missing}", "is required with the other (the proxy's TLS)")
    if slurm["proxy_tls_cert"] and slurm["proxy"] != "job":
        raise _fail(
            source,
            "slurm.proxy_tls_cert",
            "only for proxy = 'job' (a proxy you run takes --tls-cert/--tls-key; give its "
            "CA as slurm.proxy_tls_ca)",
        )
    for key in given:
        path = _resolve(base, slurm[key])
        if not path.is_file():
            raise _fail(source, f"slurm.{key}", f"{path}: no such file")
        slurm[key] = str(path)


def _report(r: dict, raw: dict, source: str) -> ReportConfig:
    """The validated ``[report]`` section (a label needs an experiment to follow)."""
    if r["experiment"] == "none" and "label" in raw.get("report", {}):
        raise _fail(
            source,
            "report.label",
            "is the text after the experiment's name; set report.experiment "
            "(" + ", ".join(repr(e) for e in EXPERIMENTS[1:]) + ") or drop report.label",
        )
    return ReportConfig(experiment=r["experiment"], label=r["label"])


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


@contextlib.contextmanager
def run_dir_undone_on_error(campaign: Campaign) -> Iterator[None]:
    """Inside, a run directory that did not exist before is removed again, with the empty
    folders made in it and above it, when the block fails (a ``create`` that fails at the
    storage leaves no empty run_dir). A folder that holds a file is kept."""
    made = []
    folder = campaign.run_dir
    while not folder.exists() and folder != folder.parent:
        made.append(folder)
        folder = folder.parent
    try:
        yield
    except BaseException:
        if made:
            for root, _, _ in sorted(os.walk(made[0]), key=lambda w: -len(w[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(root)  # empty folders only
            for parent in made[1:]:
                with contextlib.suppress(OSError):
                    parent.rmdir()
        raise


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
    _check_proxy_tls(sec["slurm"], base, source)
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
            defaults_margin=float(sec["final"]["defaults_margin"]),
            holdout=sec["final"]["holdout"],
            reserve=float(sec["final"]["reserve"]),
        ),
        slurm=SlurmConfig(
            **{k: (tuple(v) if isinstance(v, list) else v) for k, v in sec["slurm"].items()}
        ),
        sha256=hashlib.sha256(text).hexdigest(),
        bumphunt=bumphunt,
        report=_report(sec["report"], raw, source),
    )
