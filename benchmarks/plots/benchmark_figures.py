"""Draw the plots of docs/benchmarks.md from the figures its tables report.

Nothing is measured here: the numbers below are the ones the benchmark scripts printed
(each table of docs/benchmarks.md names its script, date and machine). Change them
together with the table, then redraw::

    .venv/bin/python benchmarks/plots/benchmark_figures.py      # writes docs/img/*.png
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
WINDOWS = list(range(1, 10))

#: bumphunt_scan.py, IAD-HGB, scale 0.1, 1 run, eps_B = 1e-3: median Z per window 1-9
SCAN_01 = {
    "N = 0": [0, 0, 0, 0.33, 1.69, 0.10, 0, 0, 1.21],
    "N = 158": [0.60, 0.27, 0.19, 4.74, 3.08, 2.84, 2.10, 0, 0],
    "N = 316": [0, 0, 3.77, 5.91, 6.43, 7.07, 3.04, 0.77, 0],
}
EXACT_01 = {
    "N = 158": [2.4, 2.4, 5.4, 7.8, 8.6, 8.3, 5.9, 2.4, 0.04],
    "N = 316": [3.3, 4.7, 9.4, 12.5, 14.1, 13.2, 8.7, 3.8, 1.5],
}
#: bumphunt_scan.py --scale 0.3 --runs 3, IAD-HGB: median Z in windows 3-7
WINDOWS_03 = [3, 4, 5, 6, 7]
SCAN_03 = {
    "N = 0": [0, 0, 0, 0, 0.58],
    "N = 274": [0.96, 1.62, 4.19, 4.33, 2.81],
    "N = 548": [3.92, 8.80, 10.94, 9.68, 7.43],
}
EXACT_03 = {
    "N = 274": [3.5, 8.2, 10.0, 10.7, 9.1],
    "N = 548": [8.3, 14.0, 16.5, 16.2, 12.5],
}

#: selection_quality.py --argos-min-template 25: max SIC median / exact-LR limit
SELECTION_N = [300, 600, 1000]
SELECTION = {
    "HGB": [0.196, 0.581, 0.757],
    "NN": [0.323, 0.660, 0.818],
    "ARGOS-selected": [0.217, 0.660, 0.804],
    "BCE-selected": [0.322, 0.644, 0.797],
    "truth-selected": [0.321, 0.667, 0.809],
}

#: scale_out.py, no-op objective, 10 trials per worker
PROXY_WORKERS = [64, 256, 512]
PROXY_RATE = [34.5, 26.8, 21.8]  # trials/s
PROXY_LATENCY = [1.4, 6.8, 16.4]  # median ask->tell, s
DIRECT_WORKERS, DIRECT_RATE, DIRECT_LATENCY = 64, 25.6, 1.8

COLOURS = {"N = 0": "0.4", "N = 158": "C0", "N = 316": "C3", "N = 274": "C0", "N = 548": "C3"}


def _save(fig, name: str) -> None:
    fig.tight_layout()
    fig.savefig(IMG / name, dpi=90)
    plt.close(fig)
    print(IMG / name)


def bumphunt() -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    panels = (
        (axes[0], WINDOWS, SCAN_01, EXACT_01, "scale 0.1, 1 run"),
        (axes[1], WINDOWS_03, SCAN_03, EXACT_03, "scale 0.3, 3 runs (median)"),
    )
    for ax, windows, scan, exact, title in panels:
        for label, z in scan.items():
            ax.plot(windows, z, "o-", color=COLOURS[label], label=f"IAD-HGB {label}")
        for label, z in exact.items():
            ax.plot(windows, z, "--", color=COLOURS[label], label=f"exact LR {label}")
        ax.set_xticks(windows)
        ax.set_xlabel("signal-region window (signal at window 5)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    axes[0].set_ylabel(r"median significance Z at $\varepsilon_B$ = 1e-3")
    _save(fig, "bumphunt_significance.png")


def selection() -> None:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    styles = {"HGB": "s:", "NN": "^:", "ARGOS-selected": "o-", "BCE-selected": "d-"}
    for label, values in SELECTION.items():
        ax.plot(SELECTION_N, values, styles.get(label, "k*--"), label=label)
    ax.set_xticks(SELECTION_N)
    ax.set_xlabel("injected signal events N")
    ax.set_ylabel("max SIC median / exact-LR limit")
    ax.set_title("IAD, default hp, ARGOS floor 25", fontsize=10)
    ax.legend(fontsize=8)
    _save(fig, "selection_quality.png")


def scale_out() -> None:
    fig, (rate, latency) = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, proxy, direct, label in (
        (rate, PROXY_RATE, DIRECT_RATE, "trials per second"),
        (latency, PROXY_LATENCY, DIRECT_LATENCY, "median ask→tell (s)"),
    ):
        ax.plot(PROXY_WORKERS, proxy, "o-", label="through one hpo proxy")
        ax.plot([DIRECT_WORKERS], [direct], "s", color="C3", label="direct to PostgreSQL")
        ax.set_xticks(PROXY_WORKERS)
        ax.set_xlabel("workers (no-op trials, 2 shared cores)")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    _save(fig, "scale_out.png")


if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    bumphunt()
    selection()
    scale_out()
