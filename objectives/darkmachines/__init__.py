"""DarkMachines anomaly-score-challenge data: the text format and a synthetic look-alike.

:mod:`objectives.darkmachines.format` reads and writes the challenge's text files
into padded object arrays (:class:`ObjectEvents`) and applies the channel cuts;
:mod:`objectives.darkmachines.synthetic` writes a synthetic background and
signals in the same format, with an exact likelihood ratio. Only numpy (and
scipy for the synthetic model) are imported.
"""

from objectives.darkmachines.format import (
    CHANNELS,
    EVENT_FEATURES,
    OBJECT_TYPES,
    Cuts,
    EventRecord,
    ObjectCount,
    ObjectEvents,
    concatenate,
    events_from_records,
    object_features,
    passes,
    read_events,
    select,
    write_events,
)
from objectives.darkmachines.synthetic import (
    BACKGROUND_PROCESSES,
    SIGNALS,
    DMSyntheticModel,
    DMSyntheticSpec,
    write_synthetic_darkmachines,
)

__all__ = [
    "BACKGROUND_PROCESSES",
    "CHANNELS",
    "EVENT_FEATURES",
    "OBJECT_TYPES",
    "SIGNALS",
    "Cuts",
    "DMSyntheticModel",
    "DMSyntheticSpec",
    "EventRecord",
    "ObjectCount",
    "ObjectEvents",
    "concatenate",
    "events_from_records",
    "object_features",
    "passes",
    "read_events",
    "select",
    "write_events",
    "write_synthetic_darkmachines",
]
