"""Campaigns: one TOML file, validated completely before anything runs.

Every error names the dotted field, what it must be and what was given::

    ConfigError: quickstart.toml: search.n_trials: must be an integer >= 1, got 0

Sections: ``[campaign]`` (name, run_dir, storage, seed), ``[data]``,
``[grid]``, ``[search]`` (with optional ``[search.fixed.<CLF>]`` and
``[search.space.<CLF>]`` tables), ``[final]`` and ``[slurm]``. See
``examples/quickstart.toml`` for a commented campaign.

``grid.classifiers`` may also name the density methods ANODE, R-ANODE and
BackgroundFlow (``objectives.methods``): each gives one cell per signal amount
and feature set, with mode ``"density"`` (modes and rotation do not apply).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Campaign",
    "ConfigError",
    "DataConfig",
    "FinalConfig",
    "GridConfig",
    "SearchConfig",
    "SlurmConfig",
    "load_campaign",
]

from objectives.methods import DENSITY_MODE, METHODS, is_density

#: Every method of ``grid.classifiers``: the classifiers and the density methods.
CLASSIFIERS = METHODS
MODES = ("IAD", "CWoLa", "CATHODE")
METRICS = ("argos", "bce", "max_sic")
SAMPLERS = ("tpe", "random")
FEATURE_SETS = ("baseline", "extended10", "extended12", "extended56")
SOURCES = ("synthetic", "lhco")
BACKGROUND_MODELS = ("file", "truth", "flow")
STORAGE_SCHEMES = ("journal:", "postgresql+psycopg2://", "postgresql://")
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


def _int_at_least(lo: int) -> tuple[Check, str]:
    return _rule(lambda v: _is_int(v) and v >= lo, f"an integer >= {lo}")


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

SCHEMA: dict[str, dict[str, tuple[tuple[Check, str], Any]]] = {
    # field: (rule, default); default REQUIRED means the field must be given
    "campaign": {
        "name": (_NAME, "REQUIRED"),
        "run_dir": (_NONEMPTY, None),
        "storage": (
            _rule(
                lambda v: isinstance(v, str) and v.startswith(STORAGE_SCHEMES),
                "a URL starting with " + " or ".join(STORAGE_SCHEMES),
            ),
            "journal:optuna.journal",
        ),
        "seed": (_int_at_least(0), 0),
    },
    "data": {
        "source": (_one_of(SOURCES), "synthetic"),
        "scale": (_rule(lambda v: _is_num(v) and 0 < v <= 1, "a number in (0, 1]"), 1.0),
        "seed": (_int_at_least(0), 0),
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
    },
    "grid": {
        "classifiers": (_list_of(CLASSIFIERS), ["HGB"]),
        "modes": (_list_of(MODES), ["IAD"]),
        "rotation": (
            _rule(
                lambda v: (
                    isinstance(v, list)
                    and len(v) > 0
                    and all(isinstance(x, bool) for x in v)
                    and len(set(v)) == len(v)
                ),
                "a non-empty list of distinct booleans",
            ),
            [False],
        ),
        "signal": (
            _rule(
                lambda v: (
                    isinstance(v, list)
                    and len(v) > 0
                    and all(_is_int(x) and x >= 0 for x in v)
                    and len(set(v)) == len(v)
                ),
                "a non-empty list of distinct integers >= 0",
            ),
            [1000],
        ),
        "feature_sets": (_list_of(FEATURE_SETS), ["baseline"]),
    },
    "search": {
        "n_trials": (_int_at_least(1), 100),
        "sampler": (_one_of(SAMPLERS), "tpe"),
        "seed": (_int_at_least(0), 0),
        "metrics": (_list_of(METRICS), list(METRICS)),
        "objective": (_one_of(METRICS), "argos"),
        "repetitions": (_int_at_least(1), 10),
        "n_startup_trials": (_int_at_least(0), 10),
        "n_jobs": (_int_at_least(1), 1),
        "fixed": (_rule(lambda v: isinstance(v, dict), "a table of per-classifier tables"), {}),
        "space": (_rule(lambda v: isinstance(v, dict), "a table of per-classifier tables"), {}),
    },
    "final": {
        "n_runs": (_int_at_least(1), 10),
        "statistics": (_list_of(("half", "full")), ["half", "full"]),
        "defaults": (_BOOL, True),
    },
    "slurm": {
        "partition": (_STR, ""),
        "account": (_STR, ""),
        "time": (
            _rule(
                lambda v: (
                    isinstance(v, str) and bool(re.match(r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$", v))
                ),
                "a SLURM time like '02:00:00' or '30'",
            ),
            "02:00:00",
        ),
        "final_time": (
            _rule(
                lambda v: (
                    isinstance(v, str) and bool(re.match(r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$", v))
                ),
                "a SLURM time like '02:00:00' or '30'",
            ),
            "04:00:00",
        ),
        "cpus_per_task": (_int_at_least(1), 2),
        "mem": (
            _rule(
                lambda v: isinstance(v, str) and bool(re.match(r"^\d+[KMGT]?$", v)),
                "a memory size like '8G'",
            ),
            "8G",
        ),
        "array_size": (_int_at_least(1), 10),
        "array_parallel": (_int_at_least(1), 10),
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


@dataclass(frozen=True)
class GridConfig:
    classifiers: tuple[str, ...]
    modes: tuple[str, ...]
    rotation: tuple[bool, ...]
    signal: tuple[int, ...]
    feature_sets: tuple[str, ...]


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
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)
    space: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class FinalConfig:
    n_runs: int
    statistics: tuple[str, ...]
    defaults: bool


@dataclass(frozen=True)
class SlurmConfig:
    partition: str
    account: str
    time: str
    final_time: str
    cpus_per_task: int
    mem: str
    array_size: int
    array_parallel: int
    signal: str
    setup: tuple[str, ...]
    extra: tuple[str, ...]
    python: str | None


@dataclass(frozen=True)
class GridPoint:
    """One cell of the grid before data paths are resolved."""

    classifier: str
    mode: str
    rotation: bool
    signal: int
    feature_set: str


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

    def grid_points(self) -> list[GridPoint]:
        """Every cell of the grid, in a stable order."""
        g = self.grid
        points = []
        for c in g.classifiers:
            if is_density(c):  # one cell per signal amount and feature set
                grid = itertools.product((DENSITY_MODE,), (False,), g.signal, g.feature_sets)
            else:
                grid = itertools.product(g.modes, g.rotation, g.signal, g.feature_sets)
            points.extend(GridPoint(c, m, r, s, f) for m, r, s, f in grid)
        return points


# ----------------------------------------------------------------------------- loading
def _fail(source: str, dotted: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {dotted}: {message}")


def _section(raw: dict, name: str, source: str) -> dict[str, Any]:
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
            out[key] = default
            continue
        value = table[key]
        if not check(value):
            raise _fail(source, f"{name}.{key}", f"must be {expected}, got {value!r}")
        out[key] = value
    return out


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
    from objectives.flows.hyperparameters import BACKGROUND_DEFAULTS, validate

    try:
        validate(hp, BACKGROUND_DEFAULTS, "background flow")
    except HyperparameterError as exc:
        raise _fail(source, "data.background_hp", str(exc)) from None


def load_campaign(path: str | Path) -> Campaign:
    """Read and fully validate a campaign TOML file."""
    path = Path(path).expanduser().resolve()
    source = str(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{source}: campaign file not found") from None
    try:
        raw = tomllib.loads(text.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    unknown = sorted(set(raw) - set(SCHEMA))
    if unknown:
        raise ConfigError(
            f"{source}: [{unknown[0]}]: unknown section; valid sections are "
            + ", ".join(f"[{s}]" for s in SCHEMA)
        )
    sec = {name: _section(raw, name, source) for name in SCHEMA}
    base = path.parent

    c, d, s = sec["campaign"], sec["data"], sec["search"]
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
    else:
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
    _validate_per_classifier(s, source)
    _validate_background_hp(d["background_hp"], source)

    run_dir = _resolve(base, c["run_dir"]) if c["run_dir"] else (base / "runs" / c["name"])
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
        ),
        grid=GridConfig(**{k: tuple(v) for k, v in sec["grid"].items()}),
        search=SearchConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in s.items()}),
        final=FinalConfig(
            n_runs=sec["final"]["n_runs"],
            statistics=tuple(sec["final"]["statistics"]),
            defaults=sec["final"]["defaults"],
        ),
        slurm=SlurmConfig(
            **{k: (tuple(v) if isinstance(v, list) else v) for k, v in sec["slurm"].items()}
        ),
        sha256=hashlib.sha256(text).hexdigest(),
    )
