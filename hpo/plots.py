"""Figures written for users: in the field's style (mplhep), each as PNG and PDF.

Every plot of ``hpo report`` and ``hpo bumphunt`` is drawn inside :func:`pyplot`,
which applies the mplhep style of ``[report] experiment`` (ROOT's look for
``"none"``, the default), and saved by :func:`save_figure`, which puts the
experiment's label (``"CMS Simulation"``; none by default) on every panel.
matplotlib and mplhep are imported here only when a figure is drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from hpo.config import ReportConfig

__all__ = ["STYLES", "pyplot", "save_figure", "subplots"]

#: The mplhep style of each ``[report] experiment`` (``"none"``: ROOT's look).
STYLES = {"none": "ROOT", "ATLAS": "ATLAS", "CMS": "CMS", "LHCb": "LHCb2", "ALICE": "ALICE"}
#: One panel's size, relative to the figure size the style's fonts are made for.
PANEL_SCALE = 0.85
#: Legend text relative to the style's: our legends say more than a plot's usual few words.
LEGEND_SCALE = 0.75

#: The label save_figure draws: ``(experiment, text)``, None outside a labelled pyplot.
_LABEL: ContextVar[tuple[str, str] | None] = ContextVar("experiment_label", default=None)


@contextmanager
def pyplot(report: ReportConfig) -> Iterator:
    """``matplotlib.pyplot`` (Agg) in the campaign's style; every figure closed after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    style = getattr(mplhep.style, STYLES[report.experiment])
    label = None if report.experiment == "none" else (report.experiment, report.label)
    token = _LABEL.set(label)
    try:
        with plt.style.context(style):
            size = _points(plt.rcParams["legend.fontsize"]) * LEGEND_SCALE
            plt.rcParams.update({"legend.fontsize": size, "legend.title_fontsize": size})
            yield plt
    finally:
        _LABEL.reset(token)
        plt.close("all")


def _points(size) -> float:
    """A font size (``"small"``, 20, ...) in points under the current style."""
    from matplotlib.font_manager import FontProperties

    return FontProperties(size=size).get_size_in_points()


def subplots(plt, rows: int = 1, cols: int = 1, *, wide: float = 1.0):
    """``(fig, axes[rows][cols])`` sized for the style's fonts (constrained layout).

    Each panel is ``PANEL_SCALE`` of the style's figure size, ``wide`` times as wide.
    """
    width, height = (PANEL_SCALE * v for v in plt.rcParams["figure.figsize"])
    return plt.subplots(
        rows,
        cols,
        figsize=(wide * width * cols, height * rows),
        squeeze=False,
        layout="constrained",
    )


def _draw_label(fig) -> None:
    label = _LABEL.get()
    if label is None:
        return
    import mplhep

    experiment, text = label
    draw = getattr(mplhep, experiment.lower()).label
    for ax in fig.axes:
        if ax.has_data():
            # data=True: the text is the campaign's own ("Simulation" by default)
            draw(text, data=True, rlabel="", loc=0, ax=ax)


def _room_for_legends(fig) -> None:
    """Raise the top of every panel with a legend so the legend covers no data.

    The styles' legends are large: the panel's data keep the range they had, in the
    part of the panel below the legend's height (linear or logarithmic). A panel
    whose y range the plot fixed (a ROC curve's efficiencies) keeps it.
    """
    panels = [
        ax
        for ax in fig.axes
        if ax.get_legend() and ax.get_autoscaley_on() and ax.get_yscale() in ("linear", "log")
    ]
    if not panels:
        return
    fig.canvas.draw()  # lays the figure out: the legends' sizes
    renderer = fig.canvas.get_renderer()
    for ax in panels:
        legend = ax.get_legend().get_window_extent(renderer)
        height = legend.height / ax.get_window_extent(renderer).height
        if height >= 0.9:
            continue
        stretch = 1.0 / (1.0 - height - 0.04)
        bottom, top = ax.get_ylim()
        if ax.get_yscale() == "log":
            ax.set_ylim(bottom, bottom * (top / bottom) ** stretch)
        else:
            ax.set_ylim(bottom, bottom + (top - bottom) * stretch)


def save_figure(fig, folder: Path, name: str) -> list[Path]:
    """Write ``fig`` as ``<folder>/<name>.png`` and ``.pdf``, each atomically; both paths.

    Every panel gets room for its legend, and inside a labelled :func:`pyplot` the
    experiment label.
    """
    from objectives.files import atomic_path

    _draw_label(fig)
    _room_for_legends(fig)
    paths = []
    for ext in ("png", "pdf"):
        path = folder / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight", format=ext)
        paths.append(path)
    return paths
