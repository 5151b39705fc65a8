"""How label-free values are printed: so that what separates candidates shows.

The class-weighted BCE between signal-region data and a template sits at ln 2 for any
detector: at S/B of a few per mille a good classifier lowers it in the fourth decimal
only, so ``0.693`` is all three digits ever show. Tables, progress lines and the
dashboard notes print ``ln2-bce[1e-4]`` = (ln 2 - BCE) x 10^4 instead: larger is
better, 0 is a constant score, and trials differ by whole units. Other metrics print
as they are.

Example:
    >>> value_text("bce", 0.69310)
    'ln2-bce[1e-4]=1.5'
    >>> value_text("argos", 0.16532)
    'argos=0.165'
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = [
    "BCE_SCALE",
    "LN2",
    "band_text",
    "difference_text",
    "label",
    "shown",
    "shown_band",
    "value_text",
]

LN2 = math.log(2.0)
#: BCE is shown as (ln 2 - BCE) times this
BCE_SCALE = 1e4


def label(metric: str) -> str:
    """The name a metric is printed under."""
    return "ln2-bce[1e-4]" if metric == "bce" else metric


def shown(metric: str, value: float | None) -> float | None:
    """The number printed for ``value`` of ``metric`` (BCE: (ln 2 - BCE) x 1e4)."""
    if value is None or metric != "bce":
        return value
    return (LN2 - value) * BCE_SCALE


def _number(metric: str, value: float | None, digits: int = 3) -> str:
    v = shown(metric, value)
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:.1f}" if metric == "bce" else f"{v:.{digits}g}"


def value_text(metric: str, value: float | None, digits: int = 3) -> str:
    """``argos=0.165``, ``ln2-bce[1e-4]=12.3``."""
    return f"{label(metric)}={_number(metric, value, digits)}"


def difference_text(metric: str, difference: float) -> str:
    """A signed difference of two values in printed units (``+0.033``, BCE ``+12.3``)."""
    if metric == "bce":
        return f"{difference * BCE_SCALE:+.1f}"
    return f"{difference:+.3g}"


def shown_band(metric: str, band: Mapping) -> dict:
    """A median / 16-84 % band in printed units (BCE's quantiles swap: larger is better)."""
    if metric != "bce" or not band.get("n"):
        return dict(band)
    return {
        **band,
        "median": shown(metric, band["median"]),
        "q16": shown(metric, band["q84"]),
        "q84": shown(metric, band["q16"]),
    }


def band_text(metric: str, band: Mapping, digits: int = 2) -> str:
    """``0.12 [0.10, 0.14]`` in printed units; ``n/a`` for an empty band."""
    if not band or not band.get("n"):
        return "n/a"
    b = shown_band(metric, band)
    fmt = ".1f" if metric == "bce" else f".{digits}f"
    return f"{b['median']:{fmt}} [{b['q16']:{fmt}}, {b['q84']:{fmt}}]"
