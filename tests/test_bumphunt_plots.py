"""The bump hunt's figures read well (issue 26 §7) in the field's style (issue 27 §5).

Drawn from a results dict shaped as ``results.json`` (nine windows, two delta_sys
groups, three eps_B), the way ``hpo bumphunt`` draws them:

* the window tick labels of a panel never overlap ("3.1-3.53.2-3.6" ran together);
* no panel's labels reach into another panel (the delta_sys y labels crowded the next);
* delta_sys is shown as ``value ± error`` and "consistent with 0" where it is;
* the experiment label of ``[report]`` is on every panel, and on none by default.
"""

from __future__ import annotations

import itertools

import pytest

from hpo.bumphunt import Window
from hpo.bumphunt_combine import delta_sys_figure, eps_key, significance_figure
from hpo.config import EXPERIMENTS, ReportConfig
from hpo.plots import STYLES, pyplot, save_figure
from objectives.regions import Region

EPS_B = [0.01, 0.001, 0.0001]
GROUPS = ("HGB-norot-baseline", "HGB-rot-baseline")


def _band(v: float) -> dict:
    return {"median": v, "q16": v - 0.3, "q84": v + 0.3, "n": 2}


def _results(groups=GROUPS, eps_b=EPS_B) -> tuple[dict, list[Window]]:
    """Results of two delta_sys groups (rows) at three eps_B (columns) unless told."""
    win = [Window(w, Region.window(w)) for w in range(1, 10)]
    series, delta_sys = {}, {}
    for group in groups:
        clf, rot, fs = group.split("-")
        for n in (0, 300):
            # a bump at 3.5 TeV with signal, up to the top of the panel
            z = [1.0 + (n / 40) * 2.0 ** -abs(w.number - 5) for w in win]
            entries = [
                {"Z": _band(v), "delta_sys_n": _band(0.05), "sigma_stat": _band(0.2)} for v in z
            ]
            series[f"{clf}-IAD-{rot}-N{n}-{fs}"] = {
                "variant": "nominal",
                "signal": n,
                "delta_sys_group": group,
                "delta_sys_note": None if n else "delta_sys is measured on this series",
                "windows": {
                    w.key: {eps_key(e): entry for e in eps_b}
                    for w, entry in zip(win, entries, strict=True)
                },
            }
        delta_sys[group] = {
            "method": "closure",
            "series": f"{clf}-IAD-{rot}-N0-{fs}",
            "values": [-0.113, 0.021, 0.375][: len(eps_b)],
            "errors": [0.21, 0.05, 0.11][: len(eps_b)],
            "consistent_with_zero": [True, True, False][: len(eps_b)],
            "applied": [0.0, 0.021, 0.375][: len(eps_b)],
        }
    results = {
        "mode": "IAD",
        "hp_source": "default",
        "eps_b": list(eps_b),
        "delta_sys": delta_sys,
        "series": series,
        "limit": {},
    }
    return results, win


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _check_layout(fig) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.has_data()]
    for ax in axes:
        labels = [t for t in ax.get_xticklabels() if t.get_text()]
        assert len(labels) == 9
        space = 0.5 * labels[0].get_fontsize() * fig.dpi / 72  # half a letter, in pixels
        ticks = [t.get_window_extent(renderer) for t in labels]
        for a, b in itertools.pairwise(ticks):
            assert b.x0 - a.x1 > space, "window tick labels run together"
    for a, b in itertools.combinations(axes, 2):
        assert not _overlap(a.get_tightbbox(renderer), b.get_tightbbox(renderer)), (
            "one panel's labels reach into another"
        )


@pytest.mark.parametrize("figure", [significance_figure, delta_sys_figure])
def test_panels_and_window_labels_never_overlap(tmp_path, figure):
    results, win = _results(eps_b=EPS_B[:2])  # 2 x 2 panels
    with pyplot(ReportConfig(experiment="CMS")) as plt:
        fig = figure(results, win, plt)
        paths = save_figure(fig, tmp_path, "plot")  # draws the experiment label
        _check_layout(fig)
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_no_legend_covers_data(tmp_path):
    results, win = _results(GROUPS[:1], EPS_B[:2])
    with pyplot(ReportConfig()) as plt:
        fig = significance_figure(results, win, plt)
        save_figure(fig, tmp_path, "plot")
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            legend = ax.get_legend().get_window_extent(renderer)
            for line in ax.get_lines():
                if line.get_label().startswith("_"):  # a reference line across the panel
                    continue
                for x, y in ax.transData.transform(line.get_xydata()):
                    inside = legend.x0 < x < legend.x1 and legend.y0 < y < legend.y1
                    assert not inside, (line.get_label(), x, y)


def test_delta_sys_is_shown_with_its_error():
    results, win = _results()
    with pyplot(ReportConfig()) as plt:
        legend = [t.get_text() for t in delta_sys_figure(results, win, plt).axes[0].texts]
        legend += [
            t.get_text()
            for ax in delta_sys_figure(results, win, plt).axes
            for t in ax.get_legend().get_texts()
        ]
        titles = [
            ax.get_legend().get_title().get_text()
            for ax in significance_figure(results, win, plt).axes
        ]
    assert r"$\delta_\mathrm{sys}$ = -0.113 ± 0.21 (consistent with 0)" in legend
    assert r"$\delta_\mathrm{sys}$ = +0.375 ± 0.11" in legend  # not consistent with 0
    assert any(r"$\delta_\mathrm{sys}$ = -0.113 ± 0.21 (consistent with 0)" in t for t in titles)
    assert any("applied +0" in t for t in titles)


def _label_texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_the_experiment_label_is_on_every_panel_and_none_by_default(tmp_path):
    results, win = _results(GROUPS[:1], EPS_B[:2])
    with pyplot(ReportConfig()) as plt:
        fig = significance_figure(results, win, plt)
        save_figure(fig, tmp_path, "plain")
        assert not any(t.startswith(("CMS", "ATLAS")) for t in _label_texts(fig))
    with pyplot(ReportConfig(experiment="CMS", label="Private work")) as plt:
        assert plt.rcParams["font.size"] == 26  # mplhep's CMS style
        fig = significance_figure(results, win, plt)
        save_figure(fig, tmp_path, "cms")
        texts = _label_texts(fig)
    assert texts.count("CMS") == len(fig.axes) == 2
    assert texts.count("Private work") == 2


def test_every_experiment_has_an_mplhep_style_and_label():
    import mplhep

    assert set(STYLES) == set(EXPERIMENTS)
    for experiment, style in STYLES.items():
        assert hasattr(mplhep.style, style)
        if experiment != "none":
            assert callable(getattr(mplhep, experiment.lower()).label)
