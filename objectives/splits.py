"""How a cell's events are split between training and the label-free score, as a value.

* ``Split.half(run)``: the paper's **half statistics**: a stratified 50/50 split,
  seeded by ``run``; the model trains on one half, the label-free metrics are
  computed on the other (an unbiased score to compare different models);
* ``Split.full(run)``: **full statistics**: train on everything; the label-free
  metrics are computed on the training set (there is no held-out half);
* ``Split.kfold(fold, k, run)``: stratified ``k``-fold cross validation, seeded by
  ``(run, k)``: train on the other ``k - 1`` folds, score the held-out fold ``fold``
  (the bump hunt's scheme: every event is scored by a model that never saw it).

Label-free values that compare *picked* models (the final runs ``hpo select`` reads)
must come from events no choice was made on. Two more kinds give them:

* ``Split.fresh(run)``: a half split drawn with seeds no repetition of a search uses.
  Its held-out half still overlaps each repetition's by about half, so the events a
  trial won on are partly scored again;
* ``Split.reserved(run, reserve)``: a fixed fraction ``reserve`` of each class (the
  *reserved* events, the same for every run) that a search's repetitions never hold
  out (``Split.half(run, reserve=reserve)`` draws its held-out half from the other
  events). The model trains on half of the events drawn from the others, makes its
  own choices (the NN's epoch ranking) on the rest of them, and its label-free values
  are computed on the reserved events only: nothing was chosen on them, neither by the
  search nor by the model.

k-fold and the bump hunt's reference (seed 001): there, signal-region data and the
template are each shuffled and cut into ``k`` folds with ``array_split``; fold
number ``f`` holds out fold ``(k - 1 - f) mod k`` and trains on the other ``k - 1``.
Here each class (1 = data, 0 = template) is permuted and cut with ``array_split``
on its own, with a seed of its own ``(run, k, label)``, and fold ``f`` holds out
fold ``f``: the same scheme up to the numbering of the folds. Two differences: the
reference shuffles once with a fixed seed and varies only the classifier seed
over its runs, while here every run is also a new partition; and because each
class has its own seed, the data folds of a run do not depend on the template
(IAD, CWoLa and CATHODE cells of one region hold out the same data events).

Repetition ``run`` uses the same split and the same model seed in every trial,
as in the paper, so trials are paired per repetition.

Example:
    >>> import numpy as np
    >>> y = np.array([0, 0, 0, 0, 1, 1])
    >>> train, held = Split.kfold(0, 2, run=0).indices(y)
    >>> sorted(np.concatenate([train, held])) == list(range(6))
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["STATISTICS", "Split"]

#: The kinds of split; "half" and "full" are the paper's statistics settings, "fresh" and
#: "reserved" are half-statistics splits for out-of-sample final runs.
STATISTICS = ("half", "full", "kfold", "fresh", "reserved")
#: Kinds that train on half of the events: half statistics.
HALF_KINDS = ("half", "fresh", "reserved")


@dataclass(frozen=True)
class Split:
    """One way of splitting a labelled set: ``kind`` with its ``run`` (and ``fold`` of ``k``)."""

    kind: str
    run: int = 0
    fold: int = 0
    k: int = 1
    #: fraction of each class that no repetition holds out ("half", "reserved")
    reserve: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in STATISTICS:
            raise ValueError(f"split must be one of {', '.join(STATISTICS)}, got {self.kind!r}")
        for name in ("run", "fold", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"split {name} must be an integer >= 0, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.kind == "kfold" and not (self.k >= 2 and 0 <= self.fold < self.k):
            raise ValueError(
                f"k-fold split needs k >= 2 and 0 <= fold < k, got {self.fold}/{self.k}"
            )
        reserve = self.reserve
        if isinstance(reserve, bool) or not isinstance(reserve, int | float | np.floating):
            raise ValueError(f"split reserve must be a number, got {reserve!r}")
        object.__setattr__(self, "reserve", float(reserve))
        if self.kind == "reserved" and not 0 < self.reserve < 0.5:
            raise ValueError(f"a reserved split needs 0 < reserve < 0.5, got {reserve!r}")
        if self.kind == "half" and not 0 <= self.reserve < 0.5:
            raise ValueError(f"a half split needs 0 <= reserve < 0.5, got {reserve!r}")
        if self.kind not in ("half", "reserved") and self.reserve:
            raise ValueError(f"a {self.kind} split reserves no events, got reserve {reserve!r}")

    @classmethod
    def half(cls, run: int = 0, reserve: float = 0.0) -> Split:
        """The paper's half statistics; with ``reserve`` its held-out half avoids the
        reserved events (:meth:`reserved` scores them)."""
        return cls("half", run, reserve=reserve)

    @classmethod
    def fresh(cls, run: int = 0) -> Split:
        """A half split seeded apart from every :meth:`half` split (a new draw)."""
        return cls("fresh", run)

    @classmethod
    def reserved(cls, run: int, reserve: float) -> Split:
        """Train on half, choose on the rest of the unreserved events, score the reserved."""
        return cls("reserved", run, reserve=reserve)

    @classmethod
    def full(cls, run: int = 0) -> Split:
        return cls("full", run)

    @classmethod
    def kfold(cls, fold: int, k: int, run: int = 0) -> Split:
        return cls("kfold", run, fold, k)

    @classmethod
    def of(cls, split: Split | str, run: int = 0) -> Split:
        """``split`` itself, or ``Split.half(run)`` / ``Split.full(run)`` for the strings."""
        if isinstance(split, Split):
            return split
        if split not in ("half", "full"):
            raise ValueError(f"statistics must be 'half' or 'full' (or a Split), got {split!r}")
        return cls(split, run)

    @property
    def statistics(self) -> str:
        """``"half"`` (every half-statistics kind), ``"full"`` or ``"kfold"``."""
        return "half" if self.kind in HALF_KINDS else self.kind

    @property
    def holds_out(self) -> bool:
        """Whether label-free metrics are computed on events the model did not train on."""
        return self.kind != "full"

    def describe(self) -> str:
        if self.kind == "kfold":
            return f"fold {self.fold} of {self.k}, run {self.run}"
        if self.kind == "fresh":
            return f"half statistics on a fresh split, run {self.run}"
        share = f"the reserved {self.reserve:g} of events"
        if self.kind == "reserved":
            return f"half statistics scored on {share}, run {self.run}"
        reserved = f", {share} never held out" if self.reserve else ""
        return f"{self.kind} statistics, run {self.run}{reserved}"

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "run": self.run, "fold": self.fold, "k": self.k}
        return {**out, "reserve": self.reserve} if self.reserve else out

    def model_seed(self) -> int:
        """Seed of the model; the same in every trial for the same split (paired repetitions)."""
        words = [0xC0FFEE, self.run, STATISTICS.index(self.kind)]
        if self.kind == "kfold":
            words += [self.fold, self.k]
        return int(np.random.SeedSequence(words).generate_state(1)[0])

    def indices(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sorted ``(train, held_out)`` indices of a labelled set ``y``.

        Stratified: each class is split on its own, so class fractions are kept.
        ``full``: both are every index. ``half`` / ``fresh``: disjoint halves covering
        every index (the odd event of a class goes to training); with a ``reserve`` the
        held-out half is drawn from the unreserved events. ``reserved``: training is half
        of the events (drawn from the unreserved ones), held out are the reserved events.
        ``kfold``: the held-out fold and the other ``k - 1`` folds; over
        ``fold = 0 .. k-1`` the held-out folds are disjoint and cover every index.
        """
        train, _, held = self._parts(np.asarray(y))
        return train, held

    def choice_indices(self, y: np.ndarray) -> np.ndarray:
        """Sorted indices a model may make its own choices on (the NN's epoch ranking).

        The held-out events, except for ``reserved``: the unreserved events it does not
        train on, so that its label-free values (on the reserved events) are out of sample.
        """
        return self._parts(np.asarray(y))[1]

    def _reserved_part(self, idx: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray]:
        """``(reserved, rest)`` of one class's indices: the same in every run."""
        rng = np.random.default_rng(np.random.SeedSequence([0x8E5E, int(label)]))
        idx = idx[rng.permutation(idx.size)]
        n_reserved = int(np.floor(self.reserve * idx.size + 0.5))
        return idx[:n_reserved], idx[n_reserved:]

    def _parts(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sorted ``(train, choice, held_out)`` indices (see :meth:`indices`)."""
        if self.kind == "full":
            every = np.arange(y.size)
            return every, every, every
        seeds = {"half": 0x5A11, "fresh": 0xF8E5, "reserved": 0x8E5E8}
        if self.kind in seeds:  # one generator over the classes, as the paper's half split
            rng = np.random.default_rng(np.random.SeedSequence([seeds[self.kind], self.run]))
        train, choice, held = [], [], []
        for label in np.unique(y):
            idx = np.flatnonzero(y == label)
            if self.kind == "kfold":  # one seed per class: data folds independent of templates
                words = [0xF01D, self.run, self.k, int(label)]
                rng = np.random.default_rng(np.random.SeedSequence(words))
                folds = np.array_split(idx[rng.permutation(idx.size)], self.k)
                held.append(folds[self.fold])
                train.extend(f for i, f in enumerate(folds) if i != self.fold)
                continue
            n_train = (idx.size + 1) // 2
            reserved, idx = self._reserved_part(idx, label) if self.reserve else (idx[:0], idx)
            idx = idx[rng.permutation(idx.size)]
            if self.kind == "reserved":
                train.append(idx[:n_train])
                choice.append(idx[n_train:])
                held.append(reserved)
            else:  # half / fresh: the held-out half from the unreserved events
                cut = idx.size - (reserved.size + idx.size) // 2
                train += [reserved, idx[:cut]]
                held.append(idx[cut:])
        train, held = np.sort(np.concatenate(train)), np.sort(np.concatenate(held))
        choice = np.sort(np.concatenate(choice)) if self.kind == "reserved" else held
        return train, choice, held

    def weak_indices(
        self, n_data: int, n_template: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`indices` of a weakly supervised set, per part.

        The set is ``n_data`` data events (label 1) followed by ``n_template`` template
        events (label 0), as a classifier cell's training set is built; returns
        ``(data_train, data_held, template_train, template_held)``, each indexing its
        own part. A density method that trains on the data part alone and scores the
        held-out events of both parts sees exactly the events a classifier of the same
        template holds out.
        """
        y = np.concatenate([np.ones(n_data, np.int8), np.zeros(n_template, np.int8)])
        train, held = self.indices(y)
        return (
            train[train < n_data],
            held[held < n_data],
            train[train >= n_data] - n_data,
            held[held >= n_data] - n_data,
        )
