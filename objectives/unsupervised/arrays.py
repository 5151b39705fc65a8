"""Plain event arrays for the unsupervised detectors, and the DarkMachines column layout.

The detectors work on three arrays, never on a file format:

* ``objects`` ``(n, P, F)`` float32: per object a one-hot type (``F - 4``
  columns, ``OBJECT_TYPES`` order) followed by the four kinematics
  ``log(E/GeV), log(pT/GeV), eta, phi``; zero where padded;
* ``mask`` ``(n, P)`` bool: True for a real object (objects sorted by pT, descending);
* ``event`` ``(n, E)`` float32: ``EVENT_FEATURES`` (``log_met, met_phi, log_ht``
  and the object counts) for the DarkMachines layout; the backbones accept any ``E``.

``EventArrays.from_events`` reads any object with the attributes
``kinematics``, ``types``, ``mask`` and ``event`` (the event sets of
``objectives.darkmachines.format``) by duck typing, so this package never
imports the file-format module.

Example:
    >>> import numpy as np
    >>> a = EventArrays(np.zeros((2, 3, 11)), np.zeros((2, 3), bool), np.zeros((2, 8)))
    >>> len(a), a.max_objects, str(a.objects.dtype)
    (2, 3, 'float32')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from objectives.errors import DataError

__all__ = [
    "EVENT_FEATURES",
    "HT_TYPES",
    "KINEMATICS",
    "LOG_FLOOR_GEV",
    "N_EVENT_CONTINUOUS",
    "N_KINEMATICS",
    "OBJECT_TYPES",
    "ORIGINS",
    "EventArrays",
    "count_columns",
]

#: Object types in one-hot order (index + 1 is the ``types`` code of the format module).
OBJECT_TYPES = ("j", "b", "e-", "e+", "m-", "m+", "g")
#: The last ``N_KINEMATICS`` object columns, in this order.
KINEMATICS = ("log_e", "log_pt", "eta", "phi")
N_KINEMATICS = len(KINEMATICS)
#: Event columns of the DarkMachines layout; the first ``N_EVENT_CONTINUOUS`` are continuous.
EVENT_FEATURES = ("log_met", "met_phi", "log_ht", "n_j", "n_b", "n_e", "n_mu", "n_gamma")
N_EVENT_CONTINUOUS = 3
#: Where the networks' standardised inputs have their origin (``_train.Scaler.fit``): the
#: mean background event, or the empty event (energies and object counts not centred).
ORIGINS = ("mean", "empty")
#: Object types whose pT enters HT (jets and b-jets), as in ``objectives.darkmachines.format``.
HT_TYPES = ("j", "b")
#: Floor (GeV) of quantities whose log is taken (1 MeV, as in the format module):
#: an event without jets has ``log_ht = log(1e-3)``.
LOG_FLOOR_GEV = 1e-3
# Which count column (index into EVENT_FEATURES) each object type adds to.
_COUNT_OF_TYPE = {"j": 3, "b": 4, "e-": 5, "e+": 5, "m-": 6, "m+": 6, "g": 7}


def count_columns() -> np.ndarray:
    """Event column of each type's count, indexed by type code 1..7 (entry 0 unused: -1)."""
    return np.array([-1] + [_COUNT_OF_TYPE[t] for t in OBJECT_TYPES], dtype=np.int64)


@dataclass(frozen=True)
class EventArrays:
    """Events as plain arrays: ``objects (n, P, F)``, ``mask (n, P)``, ``event (n, E)``.

    Arrays are converted to float32 / bool; padded object rows are zeroed so
    that whatever a caller left there can never reach a network. Raises
    ``DataError`` for inconsistent shapes or non-finite values.
    """

    objects: np.ndarray
    mask: np.ndarray
    event: np.ndarray

    def __post_init__(self) -> None:
        objects = np.asarray(self.objects, dtype=np.float32)
        mask = np.asarray(self.mask).astype(bool, copy=False)
        event = np.asarray(self.event, dtype=np.float32)
        if objects.ndim != 3 or objects.shape[2] <= N_KINEMATICS:
            raise DataError(
                f"EventArrays: objects must have shape (n, P, F) with F > {N_KINEMATICS} "
                f"(one-hot type + {', '.join(KINEMATICS)}), got {objects.shape}"
            )
        if mask.shape != objects.shape[:2]:
            raise DataError(
                f"EventArrays: mask must have shape {objects.shape[:2]}, got {mask.shape}"
            )
        if event.ndim != 2 or event.shape[0] != objects.shape[0]:
            raise DataError(
                f"EventArrays: event must have shape ({objects.shape[0]}, E), got {event.shape}"
            )
        if not (np.isfinite(objects).all() and np.isfinite(event).all()):
            raise DataError("EventArrays: objects and event must be finite (no nan / inf)")
        if (objects[~mask] != 0).any():
            objects = np.where(mask[..., None], objects, np.float32(0))
        object.__setattr__(self, "objects", objects)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "event", event)

    # -- shapes ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.objects.shape[0]

    @property
    def max_objects(self) -> int:
        """P, the number of object slots."""
        return self.objects.shape[1]

    @property
    def n_types(self) -> int:
        """Number of one-hot type columns (``F - 4``)."""
        return self.objects.shape[2] - N_KINEMATICS

    @property
    def kinematics(self) -> np.ndarray:
        """``(n, P, 4)`` view: log E, log pT, eta, phi."""
        return self.objects[..., -N_KINEMATICS:]

    @property
    def type_codes(self) -> np.ndarray:
        """``(n, P)`` int: 0 for padding, 1.. for the one-hot column + 1."""
        onehot = self.objects[..., : self.n_types]
        return np.where(self.mask, onehot.argmax(axis=-1) + 1, 0)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_events(cls, ev: Any) -> EventArrays:
        """Arrays from an event set with ``kinematics``, ``types``, ``mask``, ``event``.

        ``types`` codes 1..7 become the one-hot columns (``OBJECT_TYPES`` order),
        followed by the four kinematics, as ``object_features`` of the format module.
        """
        try:
            kin = np.asarray(ev.kinematics, dtype=np.float32)
            types = np.asarray(ev.types)
            mask = np.asarray(ev.mask).astype(bool)
            event = np.asarray(ev.event, dtype=np.float32)
        except AttributeError as exc:
            raise DataError(
                f"EventArrays.from_events: {type(ev).__name__} lacks {exc.name!r} "
                "(need kinematics, types, mask, event)"
            ) from exc
        if kin.ndim != 3 or kin.shape[2] != N_KINEMATICS or types.shape != kin.shape[:2]:
            raise DataError(
                f"EventArrays.from_events: kinematics must be (n, P, 4) and types (n, P), "
                f"got {kin.shape} and {types.shape}"
            )
        codes = np.arange(1, len(OBJECT_TYPES) + 1)
        if ((types != 0) != mask).any() or not np.isin(types, np.arange(len(codes) + 1)).all():
            raise DataError(
                "EventArrays.from_events: types must be 1..7 where mask is True, 0 elsewhere"
            )
        onehot = (types[..., None] == codes).astype(np.float32)
        return cls(np.concatenate([onehot, kin], axis=-1), mask, event)

    def take(self, index: Any) -> EventArrays:
        """The events at ``index`` (an index array, a slice or a boolean mask)."""
        return EventArrays(self.objects[index], self.mask[index], self.event[index])

    @staticmethod
    def concat(parts: Sequence[EventArrays]) -> EventArrays:
        """Events of ``parts`` one after another (same P, F and E)."""
        return EventArrays(
            np.concatenate([p.objects for p in parts]),
            np.concatenate([p.mask for p in parts]),
            np.concatenate([p.event for p in parts]),
        )
