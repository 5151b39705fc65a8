"""Signal injection and the labelled test set: one definition for every method.

The data of a cell are all background events plus the **first** ``N`` signal
events of the file; the test set is the extra signal-region background not used
as the IAD template plus the signal-region signal events *not* injected (at
most ``MAX_TEST_SIGNAL``). The data layer (:func:`objectives.data.region_data`)
applies it for every method and region.
"""

from __future__ import annotations

import numpy as np

from objectives.errors import DataError

__all__ = [
    "MAX_TEST_SIGNAL",
    "TEMPLATE_FRACTION",
    "inject",
    "n_template",
    "shift",
    "test_signal",
]

#: Share of the extra signal-region background used as the IAD template; the
#: rest is test background (272,858 of ~612k in the reference).
TEMPLATE_FRACTION = 272_858 / 612_858
#: Signal events in the test set at most (the reference uses 20k).
MAX_TEST_SIGNAL = 20_000


def inject(label: np.ndarray, signal: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Masks ``(in_data, injected)``: background plus the first ``signal`` signal events."""
    is_sig = label == 1
    sig_idx = np.flatnonzero(is_sig)
    if signal > sig_idx.size:
        raise DataError(
            f"{source}: cannot inject {signal} signal events, the file holds {sig_idx.size}"
        )
    injected = np.zeros(label.size, dtype=bool)
    injected[sig_idx[:signal]] = True
    return ~is_sig | injected, injected


def test_signal(label: np.ndarray, injected: np.ndarray, sr: np.ndarray) -> np.ndarray:
    """Indices of the test signal: SR signal events not injected, at most MAX_TEST_SIGNAL."""
    return np.flatnonzero((label == 1) & ~injected & sr)[:MAX_TEST_SIGNAL]


def n_template(n_extra_sr: int) -> int:
    """How many of the extra SR background events are the IAD template (the rest: test)."""
    return int(round(TEMPLATE_FRACTION * n_extra_sr))


def shift(mjj: np.ndarray, x: np.ndarray) -> np.ndarray:
    """CATHODE's correlation test: mJ1 and dmJ shifted by +0.1 mjj (a copy)."""
    x = x.copy()
    x[:, 0] += 0.1 * mjj
    x[:, 1] += 0.1 * mjj
    return x
