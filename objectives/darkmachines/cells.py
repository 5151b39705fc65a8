"""DarkMachines events as campaign cells: files, channel, the background split, cached arrays.

A :class:`DMDataSpec` names one background file, the signal files, a channel
(a key of :data:`~objectives.darkmachines.format.CHANNELS`, or ``"all"``: no
selection) and how the files are read; :func:`load_sets` turns it into
:class:`DMSets`:

* the channel's cuts are applied to every file;
* the background is split once, seeded by ``seed``, into a training pool
  (``1 - test_fraction`` of it: what the unsupervised detectors train and
  validate on) and test events (``test_fraction``);
* every signal event is a test event (signals are never trained on); a signal
  with no event in the channel is left out of the test set, and named in
  ``DMSets.info["empty_signals"]``.

A :class:`DMCell` is one grid point of the unsupervised family: method x
backbone x data (its channel). Parsed files are cached per process and, with
``cache_dir`` (a campaign's artifact folder), as ``.npz`` entries of an
:class:`~objectives.cache.ArtifactCache` keyed by the file's SHA-256, the cuts,
``max_objects`` and ``skip_bad_lines``: :func:`build_cache` writes them before
trials run (``hpo create``, every worker at start), so a trial never parses text.

:func:`exact_limits` gives, on synthetic data, the truth metrics and ROC curve
of the generator's exact likelihood ratio per signal (the Neyman-Pearson limit on
that test set: the bound of a classifier that knows the signal) or of the background's
own rarity of an event, in multiplicity and exact density (the signal-agnostic limit of
a detector that must not; :mod:`objectives.unsupervised.bkg_density`).
``DMSets.test_weight`` holds the test events' weights where the metrics use them.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from objectives.darkmachines.format import (
    CHANNELS,
    Cuts,
    ObjectEvents,
    concatenate,
    read_events,
    select,
)
from objectives.errors import DataError

__all__ = [
    "ALL_EVENTS",
    "CHANNEL_NAMES",
    "EXACT_SCORES",
    "DMCell",
    "DMDataSpec",
    "DMSets",
    "ROC_GRID",
    "background_events",
    "build_cache",
    "channel_cuts",
    "exact_limits",
    "load_sets",
    "read_file",
    "split_sizes",
]

log = logging.getLogger(__name__)

#: The channel name that applies no selection.
ALL_EVENTS = "all"
#: Every channel a cell may name: no selection, then the challenge's.
CHANNEL_NAMES = (ALL_EVENTS, *CHANNELS)
#: Bumped when the cached arrays of a file change for the same inputs.
CACHE_VERSION = 1
#: Background efficiencies at which ROC curves are drawn and their medians taken.
ROC_GRID = np.logspace(-5, 0, 101)


def channel_cuts(channel: str) -> Cuts | None:
    """The cuts of ``channel`` (None for ``"all"``); ValueError naming the valid ones."""
    if channel == ALL_EVENTS:
        return None
    if channel not in CHANNELS:
        raise ValueError(
            f"channel: must be one of {', '.join(map(repr, CHANNEL_NAMES))}, got {channel!r}"
        )
    return CHANNELS[channel]


@dataclass(frozen=True)
class DMDataSpec:
    """Where a cell's DarkMachines events come from and how they are read and split.

    Attributes:
        background_file: the background events (training pool and test background).
        signal_files: ``((name, path), ...)``, test signals in this order.
        channel: a key of ``CHANNELS`` or ``"all"``.
        max_objects: object slots per event (more objects: highest pT kept, counted).
        test_fraction: share of the background held out as test events.
        seed: seed of the background's train / test split.
        skip_bad_lines: skip (and count) malformed lines instead of failing.
        apply_cuts: apply the channel's cuts; False when the files already hold one
            channel's events (the challenge's files are per channel): the channel
            is then only a label.
        synthetic: the files come from the synthetic generator (exact limits exist).
        cache_dir: where parsed files are cached (None: parse, cache per process only).
    """

    background_file: Path
    signal_files: tuple[tuple[str, Path], ...]
    channel: str = ALL_EVENTS
    max_objects: int = 20
    test_fraction: float = 0.5
    seed: int = 0
    skip_bad_lines: bool = False
    apply_cuts: bool = True
    synthetic: bool = False
    cache_dir: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "background_file", Path(self.background_file))
        object.__setattr__(
            self, "signal_files", tuple((str(n), Path(p)) for n, p in self.signal_files)
        )
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        channel_cuts(self.channel)
        if not self.signal_files:
            raise ValueError("DMDataSpec.signal_files: needs at least one signal file")
        if not 0 < self.test_fraction < 1:
            raise ValueError(
                f"DMDataSpec.test_fraction: must be in (0, 1), got {self.test_fraction}"
            )

    @property
    def cuts(self) -> Cuts | None:
        return channel_cuts(self.channel) if self.apply_cuts else None

    @property
    def files(self) -> dict[str, Path]:
        """``{"background": path, signal name: path, ...}``."""
        return {"background": self.background_file, **dict(self.signal_files)}

    def describe(self) -> str:
        """``chan<channel>``, e.g. ``chan2a`` or ``chanall``."""
        return f"chan{self.channel}"


@dataclass(frozen=True)
class DMCell:
    """One grid point of the unsupervised family: method x backbone x data (its channel)."""

    classifier: str
    backbone: str
    data: DMDataSpec

    def __post_init__(self) -> None:
        from objectives.registry import get_method

        method = get_method(self.classifier)
        if self.backbone not in method.modes:
            raise ValueError(
                f"{self.classifier} cells have backbone "
                f"{' or '.join(map(repr, method.modes))}, got {self.backbone!r}"
            )

    @property
    def mode(self) -> str:
        """The backbone (the mode of an unsupervised cell)."""
        return self.backbone

    def key(self) -> str:
        """Stable, readable name, e.g. ``dSVDD-ParT-chan2a``."""
        return f"{self.classifier}-{self.backbone}-{self.data.describe()}"

    def to_dict(self) -> dict:
        """JSON-friendly description (paths as strings)."""
        data = {
            f.name: getattr(self.data, f.name) for f in fields(self.data) if f.name != "cache_dir"
        }
        data["background_file"] = str(data["background_file"])
        data["signal_files"] = {n: str(p) for n, p in data["signal_files"]}
        return {"classifier": self.classifier, "backbone": self.backbone, "data": data}


# --- reading ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _parse(path: str, size: int, mtime_ns: int, max_objects: int, skip: bool) -> ObjectEvents:
    return read_events(path, max_objects=max_objects, skip_bad_lines=skip)


def read_file(
    path: Path, cuts: Cuts | None, *, max_objects: int, skip_bad_lines: bool
) -> ObjectEvents:
    """The events of one file passing ``cuts`` (possibly none); a file is parsed once per
    process, whatever the cuts.

    Raises DataError for a missing, empty or malformed file (file, line, problem).
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise DataError(f"{path}: no such file (expected a DarkMachines event file)") from exc
    events = _parse(str(path), st.st_size, st.st_mtime_ns, max_objects, skip_bad_lines)
    return events if cuts is None else select(events, cuts)


_ARRAYS = ("kinematics", "types", "event", "process", "weight", "event_id")


def _cache_fields(spec: DMDataSpec, path: Path) -> dict:
    from objectives.files import file_sha256

    cuts = spec.cuts
    return {
        "format": CACHE_VERSION,
        "file_sha256": file_sha256(path),
        "cuts": None if cuts is None else asdict(cuts),
        "max_objects": spec.max_objects,
        "skip_bad_lines": spec.skip_bad_lines,
    }


def _cached(spec: DMDataSpec, path: Path) -> ObjectEvents:
    """One file's events through the artifact cache (built from a parse when absent)."""
    from objectives.cache import ArtifactCache

    def build(out: Path) -> dict:
        ev = read_file(
            path, spec.cuts, max_objects=spec.max_objects, skip_bad_lines=spec.skip_bad_lines
        )
        np.savez(out / "events.npz", **{name: getattr(ev, name) for name in _ARRAYS})
        return {"n_events": len(ev), "n_skipped": ev.n_skipped, "n_truncated": ev.n_truncated}

    try:
        entry = ArtifactCache(spec.cache_dir).get_or_build(
            "dm-events", _cache_fields(spec, path), build
        )
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    info = entry.manifest["info"]
    with np.load(entry.file("events.npz"), allow_pickle=False) as z:
        arrays = {name: z[name] for name in _ARRAYS}
    return ObjectEvents(
        **arrays,
        mask=arrays["types"] > 0,
        path=path,
        n_skipped=int(info["n_skipped"]),
        n_truncated=int(info["n_truncated"]),
    )


def _events(spec: DMDataSpec, path: Path) -> ObjectEvents:
    if spec.cache_dir is None:
        return read_file(
            path, spec.cuts, max_objects=spec.max_objects, skip_bad_lines=spec.skip_bad_lines
        )
    return _cached(spec, path)


def build_cache(spec: DMDataSpec) -> list[Path]:
    """Parse and cache every file of ``spec`` (no-op for those cached); needs ``cache_dir``."""
    if spec.cache_dir is None:
        raise ValueError("build_cache: DMDataSpec.cache_dir is not set")
    for path in spec.files.values():
        _events(spec, path)
    return list(spec.files.values())


# --- the sets of a cell ----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DMSets:
    """The events of one cell: background training pool, test background, test signals.

    ``test`` concatenates the test background and every non-empty signal;
    ``test_signal[i]`` is the index in ``signals`` of test event ``i`` (-1: background).
    """

    train: ObjectEvents
    test_background: ObjectEvents
    test_signals: dict[str, ObjectEvents]
    info: dict

    @property
    def signals(self) -> tuple[str, ...]:
        return tuple(self.test_signals)

    @functools.cached_property
    def test(self) -> ObjectEvents:
        return concatenate([self.test_background, *self.test_signals.values()])

    @functools.cached_property
    def test_signal(self) -> np.ndarray:
        parts = [np.full(len(self.test_background), -1, np.int64)]
        parts += [np.full(len(ev), k, np.int64) for k, ev in enumerate(self.test_signals.values())]
        return np.concatenate(parts)

    @functools.cached_property
    def test_weight(self) -> np.ndarray | None:
        """The event weights of ``test`` (the files' third field) the truth metrics use.

        None where they would change nothing (every weight equal) or cannot be used
        (a weight <= 0: a weighted efficiency is then undefined); ``info["weights"]``
        says which.
        """
        return self.test.weight.astype(np.float64) if self.info["weights"] == "used" else None


def split_sizes(n: int, test_fraction: float) -> tuple[int, int]:
    """(training pool, test) sizes of ``n`` background events."""
    n_test = int(round(test_fraction * n))
    return n - n_test, n_test


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (pool, test) indices: a seeded share ``test_fraction`` of ``n`` held out."""
    rng = np.random.default_rng(np.random.SeedSequence([0xD4, int(seed)]))
    perm = rng.permutation(n)
    _, n_test = split_sizes(n, test_fraction)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def background_events(spec: DMDataSpec) -> ObjectEvents:
    """The background events of the spec's channel (through the events cache, if any)."""
    return _events(spec, spec.background_file)


@functools.lru_cache(maxsize=8)
def _load_sets(spec: DMDataSpec, cache_dir: Path | None) -> DMSets:
    bkg = _events(spec, spec.background_file)
    pool_idx, test_idx = _split(len(bkg), spec.test_fraction, spec.seed)
    if len(pool_idx) < 4 or len(test_idx) < 1:
        raise DataError(
            f"{spec.background_file}: {len(bkg)} background events in channel {spec.channel}; "
            f"too few to hold out a test share of {spec.test_fraction:g} and train on the rest "
            "(at least 4 training events)"
        )
    signals, empty, skipped = {}, [], {"background": bkg.n_skipped}
    for name, path in spec.signal_files:
        ev = _events(spec, path)
        skipped[name] = ev.n_skipped
        if len(ev):
            signals[name] = ev
        else:
            empty.append(name)
            log.warning("%s: no %s event in channel %s; left out", path, name, spec.channel)
    if not signals:
        raise DataError(
            f"{spec.signal_files[0][1]}: no signal file has an event in channel {spec.channel} "
            f"({', '.join(empty)})"
        )
    test_bkg = bkg.subset(test_idx)
    info = {
        "weights": _weight_use([test_bkg, *signals.values()]),
        "channel": spec.channel,
        "n_background": len(bkg),
        "n_train_pool": int(len(pool_idx)),
        "n_test_background": int(len(test_idx)),
        "n_test_signal": {name: len(ev) for name, ev in signals.items()},
        "empty_signals": empty,
        "n_skipped_lines": skipped,
        "n_truncated": bkg.n_truncated + sum(ev.n_truncated for ev in signals.values()),
        "test_fraction": spec.test_fraction,
        "split_seed": spec.seed,
    }
    return DMSets(bkg.subset(pool_idx), test_bkg, signals, info)


def _weight_use(parts: list[ObjectEvents]) -> str:
    """``"used"``, ``"uniform"`` (all equal: nothing to weight) or why they are ignored."""
    weights = np.concatenate([p.weight for p in parts])
    bad = int(np.count_nonzero(weights <= 0))
    if bad:
        return f"ignored: {bad} test event(s) with weight <= 0"
    return "uniform" if np.all(weights == weights[0]) else "used"


def load_sets(spec: DMDataSpec) -> DMSets:
    """The :class:`DMSets` of ``spec``, computed once per process.

    Raises DataError (naming the file) for a missing or malformed file, a channel
    leaving too few background events, or no signal event in the channel.
    """
    return _load_sets(spec, spec.cache_dir)


#: The exact scores :func:`exact_limits` knows.
EXACT_SCORES = ("likelihood_ratio", "background_density")


def exact_limits(spec: DMDataSpec, score: str = "likelihood_ratio") -> dict[str, dict]:
    """Signal -> truth metrics and ROC curve of an exact score on the test set.

    ``score``: ``"likelihood_ratio"`` (knows the signal: the Neyman-Pearson limit, the
    bound of a supervised classifier) or ``"background_density"`` (how rare the
    background makes an event, in multiplicity and exact density: the signal-agnostic
    limit, BkgDensity, see :mod:`objectives.unsupervised.bkg_density`). ``{"auc",
    "eps_s_1e-2", "eps_s_1e-3", "eps_s_1e-4", "eps_b", "eps_s"}`` per signal (the curve
    on :data:`ROC_GRID`; weighted where the test set's weights are used). Only for the
    synthetic generator's files (``spec.synthetic``); a channel's cuts do not change the
    likelihood ratio's ranking (see :mod:`objectives.darkmachines.synthetic`), and the
    signal-agnostic limit is calibrated on the background that passes them.
    """
    if score not in EXACT_SCORES:
        raise ValueError(f"score: must be one of {', '.join(EXACT_SCORES)}, got {score!r}")
    from objectives.darkmachines.synthetic import DMSyntheticModel
    from objectives.unsupervised.bkg_density import background_rarity, background_tails
    from objectives.unsupervised.metrics import efficiency_curve, truth_metrics

    if not spec.synthetic:
        raise ValueError("exact likelihood ratios exist for the synthetic generator's files only")
    sets = load_sets(spec)
    model = DMSyntheticModel()
    weighted = sets.info["weights"] == "used"
    bkg = sets.test_background
    if score == "background_density":
        tails = background_tails(spec.cuts, cache_dir=spec.cache_dir)
        rarity = background_rarity(model, tails, bkg)
    out = {}
    for name, sig in sets.test_signals.items():
        if score == "likelihood_ratio":  # log LR: the LR's ranking, without overflow
            bkg_s = model.log_prob(bkg, name) - model.log_prob_background(bkg)
            sig_s = model.log_prob(sig, name) - model.log_prob_background(sig)
        else:
            bkg_s, sig_s = rarity, background_rarity(model, tails, sig)
        w = {"w_bkg": bkg.weight, "w_sig": sig.weight} if weighted else {}
        out[name] = truth_metrics(bkg_s, sig_s, **w) | {
            "eps_b": ROC_GRID,
            "eps_s": efficiency_curve(bkg_s, sig_s, ROC_GRID, **w),
        }
    return out
