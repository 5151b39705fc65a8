"""Shared set-up of the benchmarks: the full-size synthetic data and its cells."""

from __future__ import annotations

from pathlib import Path

from objectives.cells import Cell, DataSpec
from objectives.synthetic import SyntheticSpec, write_synthetic

OUT = Path(__file__).resolve().parent / "out"


def synthetic_cell(
    classifier: str,
    mode: str,
    signal: int,
    *,
    scale: float = 1.0,
    shifted: bool = False,
    seed: int = 0,
    samples_file=None,
) -> Cell:
    """A cell on the synthetic set of this scale (generated once into benchmarks/out)."""
    files = write_synthetic(SyntheticSpec(scale=scale, shifted=shifted, seed=seed), OUT / "data")
    return Cell(classifier, mode, signal, False, DataSpec(*files, samples_file=samples_file))


def exact_limit_max_sic(cell: Cell, shifted: bool = False) -> float:
    """Max SIC of the exact likelihood ratio on the cell's test set."""
    from objectives.metrics import max_sic
    from objectives.synthetic import SyntheticModel

    test = cell.data.events(cell.signal).test
    lr = SyntheticModel(shifted=shifted).likelihood_ratio(test.x, region=cell.data.region)
    return float(max_sic(lr, test.label))
