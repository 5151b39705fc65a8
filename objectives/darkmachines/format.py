"""The DarkMachines anomaly-score-challenge text format: streaming reader, writer, channel cuts.

The challenge files (arXiv:2105.14027, SciPost Phys. 12, 043 (2022)) hold one
event per line, every field terminated by ``;`` (the last one included)::

    event ID;process ID;event weight;MET;METphi;obj1,E1,pt1,eta1,phi1;obj2,E2,pt2,eta2,phi2;

with object types ``j`` (jet), ``b`` (b-jet), ``e-``, ``e+``, ``m-``, ``m+``
(muons) and ``g`` (photon), and energies / momenta in MeV. A line may carry any
number of objects (none included). Rules this reader enforces:

* whitespace around fields and around the comma-separated values is ignored
  (the format's description writes ``obj1, E1, pt1``); blank lines are not events
  and are passed over;
* the text is ASCII; a file starting with a byte order mark (an editor's "UTF-8 with
  BOM", or UTF-16) is reported as such ("BOM"), any other non-ASCII line as not ASCII;
* every line must end with ``;`` -- a line without it is reported as truncated;
* an object field has exactly five values ``type,E,pt,eta,phi``; the type is one of
  :data:`OBJECT_TYPES`; every number is finite; E and pt are > 0; MET is >= 0.

A line breaking a rule raises :class:`~objectives.errors.DataError` naming the file,
the line number and the problem; with ``skip_bad_lines=True`` such lines are
skipped, counted in :attr:`ObjectEvents.n_skipped` and reported in one logging
warning. Files ending in ``.gz`` are read through gzip.

Array layout (a contract other code relies on): objects sorted by pT,
descending, padded to ``max_objects``; see :class:`ObjectEvents`. Event-level
features (:data:`EVENT_FEATURES`) are computed from *every* object on the line,
before any truncation to ``max_objects``; logarithms of GeV quantities are
floored at 1 MeV (``log(1e-3)``), so an event without jets has
``log_ht = log(1e-3)``.

Channel selections (:data:`CHANNELS`) are :class:`Cuts`, applied by
:func:`select` or by the reader's ``cuts`` option (same code, same result).

Example:
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = os.path.join(d, "ev.csv")
    >>> _ = write_events(p, [EventRecord("1", "ttbar", 1.0, 52000.0, 0.3,
    ...                                  (("j", 90000.0, 60000.0, 0.5, 1.0),
    ...                                   ("m+", 40000.0, 35000.0, -0.2, -2.0)))])
    >>> ev = read_events(p)
    >>> len(ev), ev.types[0, :3].tolist(), ev.mask[0, :3].tolist()
    (1, [1, 6, 0], [True, True, False])
"""

from __future__ import annotations

import codecs
import gzip
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np

from objectives.errors import DataError

__all__ = [
    "CHANNELS",
    "EVENT_FEATURES",
    "OBJECT_TYPES",
    "Cuts",
    "EventRecord",
    "ObjectCount",
    "ObjectEvents",
    "concatenate",
    "events_from_records",
    "format_line",
    "object_features",
    "passes",
    "read_events",
    "select",
    "write_events",
]

log = logging.getLogger(__name__)

OBJECT_TYPES = ("j", "b", "e-", "e+", "m-", "m+", "g")
#: Type code in :attr:`ObjectEvents.types`: index in OBJECT_TYPES + 1 (0 = padding).
TYPE_CODE = {t: i + 1 for i, t in enumerate(OBJECT_TYPES)}
EVENT_FEATURES = ("log_met", "met_phi", "log_ht", "n_j", "n_b", "n_e", "n_mu", "n_gamma")
#: Kinematic columns of :attr:`ObjectEvents.kinematics`.
KINEMATICS = ("log_e", "log_pt", "eta", "phi")
#: Floor (GeV) of the quantities whose logarithm is taken (1 MeV).
LOG_FLOOR_GEV = 1e-3
MEV_PER_GEV = 1000.0
#: Significant digits written by :func:`write_events` (relative rounding <= 5e-9).
DIGITS = 9

# Object kinds a Cuts requirement may count, as sets of type codes.
KINDS = {
    "jet": (TYPE_CODE["j"], TYPE_CODE["b"]),  # (b-)jets, as the challenge counts them
    "light_jet": (TYPE_CODE["j"],),
    "bjet": (TYPE_CODE["b"],),
    "lepton": tuple(TYPE_CODE[t] for t in ("e-", "e+", "m-", "m+")),
    "electron": (TYPE_CODE["e-"], TYPE_CODE["e+"]),
    "muon": (TYPE_CODE["m-"], TYPE_CODE["m+"]),
    "photon": (TYPE_CODE["g"],),
}

_CHUNK = 100_000  # events parsed before their lists become arrays


class EventRecord(NamedTuple):
    """One event as written in a file: MeV and radians, objects as (type, E, pt, eta, phi)."""

    event_id: str
    process: str
    weight: float
    met: float  # MeV
    met_phi: float
    objects: tuple[tuple[str, float, float, float, float], ...]


@dataclass(frozen=True, eq=False)
class ObjectEvents:
    """Events of one or more DarkMachines files as padded arrays (objects sorted by pT, desc).

    Attributes:
        kinematics: (n, max_objects, 4) float32: log(E/GeV), log(pT/GeV), eta, phi; 0 padded.
        types: (n, max_objects) int8: 0 = padding, 1..7 = index in OBJECT_TYPES + 1.
        mask: (n, max_objects) bool, True = real object.
        event: (n, len(EVENT_FEATURES)) float32, from every object of the line.
        process: (n,) str, the process ID field.
        weight: (n,) float64.
        event_id: (n,) str.
        path: the file read (None for a concatenation of several files).
        n_skipped: malformed lines skipped by the read (``skip_bad_lines=True``).
        n_truncated: events of the read with more than max_objects objects (the
            highest-pT ones kept). :meth:`subset` keeps both counts of the read.
    """

    kinematics: np.ndarray
    types: np.ndarray
    mask: np.ndarray
    event: np.ndarray
    process: np.ndarray
    weight: np.ndarray
    event_id: np.ndarray
    path: Path | None
    n_skipped: int = 0
    n_truncated: int = 0

    def __len__(self) -> int:
        return len(self.weight)

    @property
    def max_objects(self) -> int:
        """Number of object slots per event."""
        return self.types.shape[1]

    def subset(self, index) -> ObjectEvents:
        """The events selected by ``index`` (boolean mask, integer array or slice)."""
        return ObjectEvents(
            kinematics=self.kinematics[index],
            types=self.types[index],
            mask=self.mask[index],
            event=self.event[index],
            process=self.process[index],
            weight=self.weight[index],
            event_id=self.event_id[index],
            path=self.path,
            n_skipped=self.n_skipped,
            n_truncated=self.n_truncated,
        )


def object_features(ev: ObjectEvents) -> np.ndarray:
    """(n, max_objects, 11) float32: one-hot type (7, in OBJECT_TYPES order) + the 4 kinematics.

    Padded slots are all zeros.
    """
    onehot = np.eye(len(OBJECT_TYPES) + 1, dtype=np.float32)[ev.types.astype(np.intp)][..., 1:]
    kin = np.where(ev.mask[..., None], ev.kinematics, 0).astype(np.float32)
    return np.concatenate([onehot, kin], axis=-1)


def concatenate(parts: Sequence[ObjectEvents]) -> ObjectEvents:
    """Join events of several reads (same max_objects); counts add, path kept only if shared."""
    parts = list(parts)
    if not parts:
        raise ValueError("concatenate: no parts given")
    widths = {p.max_objects for p in parts}
    if len(widths) != 1:
        raise ValueError(f"concatenate: parts differ in max_objects: {sorted(widths)}")
    paths = {p.path for p in parts}
    return ObjectEvents(
        kinematics=np.concatenate([p.kinematics for p in parts]),
        types=np.concatenate([p.types for p in parts]),
        mask=np.concatenate([p.mask for p in parts]),
        event=np.concatenate([p.event for p in parts]),
        process=np.concatenate([p.process for p in parts]),
        weight=np.concatenate([p.weight for p in parts]),
        event_id=np.concatenate([p.event_id for p in parts]),
        path=paths.pop() if len(paths) == 1 else None,
        n_skipped=sum(p.n_skipped for p in parts),
        n_truncated=sum(p.n_truncated for p in parts),
    )


# --- cuts ------------------------------------------------------------------------------


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class ObjectCount:
    """Require at least ``n`` objects of ``kind`` with pT >= ``min_pt`` GeV.

    ``kind`` is one of ``jet`` (j or b, the challenge's "(b-)jets"), ``light_jet``,
    ``bjet``, ``lepton`` (e and mu of either charge), ``electron``, ``muon``, ``photon``.
    """

    kind: str
    n: int
    min_pt: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"ObjectCount.kind: must be one of {', '.join(KINDS)}, got {self.kind!r}"
            )
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 0:
            raise ValueError(f"ObjectCount.n: must be an integer >= 0, got {self.n!r}")
        if not _is_number(self.min_pt) or self.min_pt < 0:
            raise ValueError(f"ObjectCount.min_pt: must be a number >= 0, got {self.min_pt!r}")


@dataclass(frozen=True)
class Cuts:
    """An event selection; every requirement must hold (GeV; ``>=``).

    Attributes:
        min_met: missing transverse energy.
        min_ht: HT, the scalar sum of jet and b-jet pT (every jet on the line).
        min_met_over_ht: MET / HT (an event with HT = 0 passes any value).
        objects: object-count requirements, counted among the (at most
            max_objects) highest-pT objects kept in the arrays.
    """

    min_met: float = 0.0
    min_ht: float = 0.0
    min_met_over_ht: float = 0.0
    objects: tuple[ObjectCount, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("min_met", "min_ht", "min_met_over_ht"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                raise ValueError(f"Cuts.{name}: must be a number >= 0, got {value!r}")
        if not isinstance(self.objects, tuple) or not all(
            isinstance(o, ObjectCount) for o in self.objects
        ):
            raise ValueError(f"Cuts.objects: must be a tuple of ObjectCount, got {self.objects!r}")


#: The challenge's analysis channels, as recalled from arXiv:2105.14027 (Sec. 3):
#: 1 (hadronic activity + large MET, e.g. gluinos/squarks/stops): HT >= 600, MET >= 200,
#: MET/HT >= 0.2, >= 4 (b-)jets with pT >= 50 and >= 1 (b-)jet with pT >= 200;
#: 2a (electroweak multi-lepton): MET >= 50, >= 3 leptons with pT >= 15;
#: 2b (two leptons): MET >= 50, HT >= 50, >= 2 leptons with pT >= 15;
#: 3 (inclusive high-HT): HT >= 600, MET >= 100.
#: The numbers could not be checked against the paper's text in this code base's
#: reference search (only the qualitative description "chan1: >= 4 jets, high HT;
#: chan2a: 3 leptons, MET; chan2b: 2 leptons, MET, HT; chan3: HT, MET" was found in
#: public analysis code): verify them against Sec. 3 of the paper before quoting results.
#: A second search (issue 13) found the paper's abstract pages but not Sec. 3 either; it
#: did confirm the names: the challenge's result files (bostdiek/DarkMachines-
#: UnsupervisedChallenge, data/*.csv, column Chan) call the channels 1, 2a, 2b and 3.
CHANNELS: dict[str, Cuts] = {
    "1": Cuts(
        min_met=200.0,
        min_ht=600.0,
        min_met_over_ht=0.2,
        objects=(ObjectCount("jet", 4, 50.0), ObjectCount("jet", 1, 200.0)),
    ),
    "2a": Cuts(min_met=50.0, objects=(ObjectCount("lepton", 3, 15.0),)),
    "2b": Cuts(min_met=50.0, min_ht=50.0, objects=(ObjectCount("lepton", 2, 15.0),)),
    "3": Cuts(min_met=100.0, min_ht=600.0),
}


def passes(ev: ObjectEvents, cuts: Cuts) -> np.ndarray:
    """(n,) bool: which events pass ``cuts``.

    Comparisons are made on the stored float32 logarithms with a relative
    tolerance of 1e-6, so a value equal to a threshold passes.
    """
    tol = 1e-6
    log_met = ev.event[:, 0].astype(np.float64)
    log_ht = ev.event[:, 2].astype(np.float64)
    no_jets = log_ht <= math.log(LOG_FLOOR_GEV) + tol

    def at_least(log_x: np.ndarray, threshold: float) -> np.ndarray:
        return np.ones(len(log_x), bool) if threshold <= 0 else log_x >= math.log(threshold) - tol

    ok = at_least(log_met, cuts.min_met) & at_least(log_ht, cuts.min_ht)
    if cuts.min_met_over_ht > 0:
        ok &= no_jets | (log_met - log_ht >= math.log(cuts.min_met_over_ht) - tol)
    for req in cuts.objects:
        of_kind = np.isin(ev.types, KINDS[req.kind]) & ev.mask
        if req.min_pt > 0:
            of_kind &= ev.kinematics[..., 1] >= math.log(req.min_pt) - tol
        ok &= np.sum(of_kind, axis=1) >= req.n
    return ok


def select(ev: ObjectEvents, cuts: Cuts) -> ObjectEvents:
    """The events passing ``cuts`` (possibly none)."""
    return ev.subset(passes(ev, cuts))


# --- writing ---------------------------------------------------------------------------


def _check_token(value: str, what: str) -> str:
    text = str(value)
    if not text.strip() or any(c in text for c in ";,\n\r"):
        raise ValueError(f"{what}: must be non-empty without ';', ',' or newlines, got {text!r}")
    return text


def format_line(record: EventRecord) -> str:
    """One event as a line of the format (with its newline)."""
    g = f"{{:.{DIGITS}g}}".format
    head = (
        f"{_check_token(record.event_id, 'event_id')};{_check_token(record.process, 'process')};"
        f"{g(record.weight)};{g(record.met)};{g(record.met_phi)};"
    )
    parts = [head]
    for obj in record.objects:
        kind, e, pt, eta, phi = obj
        if kind not in TYPE_CODE:
            raise ValueError(f"object type: must be one of {', '.join(OBJECT_TYPES)}, got {kind!r}")
        parts.append(f"{kind},{g(e)},{g(pt)},{g(eta)},{g(phi)};")
    parts.append("\n")
    return "".join(parts)


def write_events(path: str | os.PathLike, records: Iterable[EventRecord]) -> Path:
    """Write ``records`` (any iterable, consumed once) as a DarkMachines file, atomically.

    The lines go to a temporary file next to ``path`` that replaces it at the end,
    so readers never see a half-written file. Returns the path.
    """
    from objectives.files import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="ascii", newline="\n") as out:
        for record in records:
            out.write(format_line(record))
    return path


def events_from_records(records: Iterable[EventRecord], *, max_objects: int = 20) -> ObjectEvents:
    """Records as :class:`ObjectEvents`, through the text format (the numbers rounded as a
    file holds them, parsed by the reader's own code): what :func:`read_events` returns for
    a file of these records, without the file. Raises ValueError on a malformed record."""
    chunk = _Chunk()
    for record in records:
        try:
            chunk.add(format_line(record).strip())
        except _LineError as exc:
            raise ValueError(f"event {record.event_id}: {exc}") from None
    if not len(chunk):
        return _empty(None, max_objects)
    ev, truncated = chunk.build(None, max_objects)
    return _with_counts(ev, None, 0, int(truncated.sum()))


# --- reading ---------------------------------------------------------------------------


class _LineError(ValueError):
    """A rule of the format broken by one line (message without file and line)."""


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _LineError(f"{what}: not a number: {text.strip()!r}") from None
    if not math.isfinite(value):
        raise _LineError(f"{what}: must be finite, got {text.strip()!r}")
    return value


class _Chunk:
    """Parsed events of one chunk, as Python lists (turned into arrays by :meth:`build`)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.procs: list[str] = []
        self.head: list[tuple[float, float, float]] = []  # weight, MET MeV, METphi
        self.counts: list[int] = []
        self.objs: list[tuple[int, float, float, float, float]] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, text: str) -> None:
        """Parse one non-blank line (raises _LineError)."""
        if not text.endswith(";"):
            raise _LineError("line does not end with ';' (truncated line or missing ';')")
        fields_ = text[:-1].split(";")
        if len(fields_) < 5:
            raise _LineError(
                f"expected at least 5 ';'-terminated fields (event ID; process ID; weight; "
                f"MET; METphi), got {len(fields_)}"
            )
        event_id, process = fields_[0].strip(), fields_[1].strip()
        if not event_id:
            raise _LineError("empty event ID")
        if not process:
            raise _LineError("empty process ID")
        weight = _number(fields_[2], "event weight")
        met = _number(fields_[3], "MET")
        if met < 0:
            raise _LineError(f"MET: must be >= 0, got {fields_[3].strip()!r}")
        met_phi = _number(fields_[4], "METphi")
        objs = []
        for k, obj in enumerate(fields_[5:], start=1):
            values = obj.split(",")
            if len(values) != 5:
                hint = "; missing ';' between objects?" if len(values) > 5 else ""
                raise _LineError(
                    f"object {k} {obj.strip()!r}: expected 5 comma-separated values "
                    f"(type,E,pt,eta,phi), got {len(values)}{hint}"
                )
            kind = values[0].strip()
            code = TYPE_CODE.get(kind)
            if code is None:
                raise _LineError(
                    f"object {k}: unknown object type {kind!r} "
                    f"(expected one of {', '.join(OBJECT_TYPES)})"
                )
            e = _number(values[1], f"object {k} energy")
            pt = _number(values[2], f"object {k} pt")
            if e <= 0 or pt <= 0:
                raise _LineError(f"object {k}: energy and pt must be > 0, got {e:g}, {pt:g}")
            eta = _number(values[3], f"object {k} eta")
            phi = _number(values[4], f"object {k} phi")
            objs.append((code, e, pt, eta, phi))
        self.ids.append(event_id)
        self.procs.append(process)
        self.head.append((weight, met, met_phi))
        self.counts.append(len(objs))
        self.objs.extend(objs)

    def build(self, path: Path | None, max_objects: int) -> tuple[ObjectEvents, np.ndarray]:
        """(events, per-event truncated flag)."""
        n = len(self.ids)
        counts = np.asarray(self.counts, dtype=np.int64)
        head = np.asarray(self.head, dtype=np.float64).reshape(n, 3)
        objs = np.asarray(self.objs, dtype=np.float64).reshape(-1, 5)
        code = objs[:, 0].astype(np.int8)
        e_gev, pt_gev = objs[:, 1] / MEV_PER_GEV, objs[:, 2] / MEV_PER_GEV
        owner = np.repeat(np.arange(n), counts)
        order = np.lexsort((-pt_gev, owner))  # by event, then pT descending (stable)
        starts = np.cumsum(counts) - counts
        rank = np.arange(len(order)) - np.repeat(starts, counts)
        keep = rank < max_objects
        src, row, slot = order[keep], owner[order][keep], rank[keep]

        kin = np.zeros((n, max_objects, 4), dtype=np.float32)
        kin[row, slot, 0] = np.log(e_gev[src])
        kin[row, slot, 1] = np.log(pt_gev[src])
        kin[row, slot, 2] = objs[src, 3]
        kin[row, slot, 3] = objs[src, 4]
        types = np.zeros((n, max_objects), dtype=np.int8)
        types[row, slot] = code[src]

        def count(*kinds: str) -> np.ndarray:
            sel = np.isin(code, [TYPE_CODE[k] for k in kinds])
            return np.bincount(owner[sel], minlength=n)

        is_jet = np.isin(code, KINDS["jet"])
        ht = np.bincount(owner[is_jet], weights=pt_gev[is_jet], minlength=n)
        event = np.column_stack(
            [
                np.log(np.maximum(head[:, 1] / MEV_PER_GEV, LOG_FLOOR_GEV)),
                head[:, 2],
                np.log(np.maximum(ht, LOG_FLOOR_GEV)),
                count("j"),
                count("b"),
                count("e-", "e+"),
                count("m-", "m+"),
                count("g"),
            ]
        ).astype(np.float32)
        ev = ObjectEvents(
            kinematics=kin,
            types=types,
            mask=types > 0,
            event=event,
            process=np.asarray(self.procs, dtype=str),
            weight=head[:, 0].copy(),
            event_id=np.asarray(self.ids, dtype=str),
            path=path,
        )
        return ev, counts > max_objects


def _not_ascii(raw: bytes, lineno: int) -> str:
    """Why a line is not ASCII: a byte order mark (an editor's "UTF-8 with BOM") or not."""
    if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
        return (
            "starts with a UTF-8 byte order mark (BOM); the format is plain ASCII text: "
            "save the file without a BOM"
        )
    if lineno == 1 and raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return (
            "starts with a UTF-16 byte order mark (BOM): the file is UTF-16 text; the "
            "format is plain ASCII: save it as ASCII"
        )
    return "not ASCII text"


def _empty(path: Path | None, max_objects: int) -> ObjectEvents:
    return ObjectEvents(
        kinematics=np.zeros((0, max_objects, 4), np.float32),
        types=np.zeros((0, max_objects), np.int8),
        mask=np.zeros((0, max_objects), bool),
        event=np.zeros((0, len(EVENT_FEATURES)), np.float32),
        process=np.zeros(0, dtype=str),
        weight=np.zeros(0),
        event_id=np.zeros(0, dtype=str),
        path=path,
    )


def read_events(
    path: str | os.PathLike,
    *,
    max_objects: int = 20,
    cuts: Cuts | None = None,
    skip_bad_lines: bool = False,
    limit: int | None = None,
) -> ObjectEvents:
    """Read a DarkMachines file line by line into :class:`ObjectEvents` (arrays built in chunks).

    Args:
        path: the text file (``.gz`` read through gzip).
        max_objects: object slots per event; an event with more objects keeps the
            ``max_objects`` highest-pT ones and is counted in ``n_truncated``.
        cuts: keep only events passing these cuts (:func:`select`, applied per chunk).
        skip_bad_lines: skip and count malformed lines instead of raising.
        limit: return at most this many events (after cuts); reading stops once found.

    Raises:
        DataError: missing file, malformed line (file, line number, problem), or no
            event left (empty file, everything skipped, nothing passing the cuts).
    """
    path = Path(path)
    if not isinstance(max_objects, int) or isinstance(max_objects, bool) or max_objects < 1:
        raise ValueError(f"max_objects: must be an integer >= 1, got {max_objects!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit: must be an integer >= 1 or None, got {limit!r}")
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected a DarkMachines event file)")

    parts: list[ObjectEvents] = []
    n_kept = n_read = n_skipped = n_truncated = 0
    first_bad: str | None = None
    chunk = _Chunk()

    def flush() -> None:
        nonlocal n_kept, n_truncated, chunk
        if not len(chunk):
            return
        ev, truncated = chunk.build(path, max_objects)
        chunk = _Chunk()
        if cuts is not None:
            ok = passes(ev, cuts)
            ev, truncated = ev.subset(ok), truncated[ok]
        if limit is not None and n_kept + len(ev) > limit:
            ev, truncated = ev.subset(slice(0, limit - n_kept)), truncated[: limit - n_kept]
        n_kept += len(ev)
        n_truncated += int(truncated.sum())
        parts.append(ev)

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        for lineno, raw in enumerate(stream, start=1):
            try:
                text = raw.decode("ascii").strip()
            except UnicodeDecodeError:
                text = None
            if text == "":
                continue
            try:
                if text is None:
                    raise _LineError(_not_ascii(raw, lineno))
                chunk.add(text)
                n_read += 1
            except _LineError as exc:
                if not skip_bad_lines:
                    raise DataError(f"{path}, line {lineno}: {exc}") from None
                n_skipped += 1
                first_bad = first_bad or f"line {lineno}: {exc}"
            if len(chunk) >= _CHUNK or (
                limit is not None and cuts is None and n_kept + len(chunk) >= limit
            ):
                flush()
                if limit is not None and n_kept >= limit:
                    break
        flush()

    if n_skipped:
        log.warning(
            "%s: skipped %d malformed line(s) (skip_bad_lines=True); first: %s",
            path,
            n_skipped,
            first_bad,
        )
    if n_truncated:
        log.info(
            "%s: %d event(s) had more than max_objects=%d objects (highest-pT ones kept)",
            path,
            n_truncated,
            max_objects,
        )
    if n_kept == 0:
        if n_read == 0:
            why = "no valid event lines" if n_skipped else "no events (empty file)"
            raise DataError(f"{path}: {why}")
        raise DataError(f"{path}: none of the {n_read} events read passes the cuts {cuts}")
    ev = concatenate(parts) if len(parts) > 1 else parts[0]
    return _with_counts(ev, path, n_skipped, n_truncated)


def _with_counts(
    ev: ObjectEvents, path: Path | None, n_skipped: int, n_truncated: int
) -> ObjectEvents:
    values = {f.name: getattr(ev, f.name) for f in fields(ev)}
    values.update(path=path, n_skipped=n_skipped, n_truncated=n_truncated)
    return ObjectEvents(**values)
