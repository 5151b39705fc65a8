"""The one result type of an evaluation, for every method (a leaf module: numpy only).

``metrics[m]`` is metric ``m`` of the ensemble selected by ``m`` (the NN averages
the epochs that ``m`` ranks best; every other method has one ensemble, so its
selections share one score array); ``truth[m]`` the max SIC and AUC of that
ensemble on the labelled test set (NaN without truth), ``scores[m]`` its test
scores, ``curves[m]`` its SIC curve ``(tpr, fpr, sic)``, computed once here so no
caller recomputes it. Max SIC is the truth oracle: never available on real data.
``held_out`` (classifiers, under a split that holds events out) keeps the scores of
the held-out part of the training set with their data / template labels: what the
bump hunt's cut and count reads.

A test set with several signals (the unsupervised family on DarkMachines data)
also names them: ``signals`` and ``test_signal`` (per test event the index of
its signal in ``signals``, -1 for background; ``y_test`` is then 0 / 1 for
background / any signal), and ``per_signal[name]`` holds that signal's truth
(AUC and signal efficiency at fixed background efficiencies); ``truth[m]`` then
holds their means over the signals. ``test_weight`` holds the event weights the
truth metrics used (None: unweighted), ``parts`` the test scores of named parts of a
detector (Deep SVDD's members, one per latent dimension).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["EvaluationResult", "HeldOut", "SicCurve", "score_truth"]


@dataclass(frozen=True)
class SicCurve:
    """TPR, FPR and SIC = TPR / sqrt(FPR) by increasing FPR (points with a reliable FPR)."""

    tpr: np.ndarray
    fpr: np.ndarray
    sic: np.ndarray

    @property
    def max_sic(self) -> float:
        return float(self.sic.max()) if self.sic.size else float("nan")

    def downsampled(self, n: int = 200) -> np.ndarray:
        """At most ``n`` evenly spaced points as a (3, m) array (for trial artifacts)."""
        if self.tpr.size == 0:
            return np.zeros((3, 0))
        idx = np.unique(np.linspace(0, self.tpr.size - 1, n).astype(int))
        return np.stack([self.tpr[idx], self.fpr[idx], self.sic[idx]])


@dataclass(frozen=True)
class HeldOut:
    """Scores of the events a model did not train on (half statistics, k-fold).

    ``index``: their rows in the cell's training set (data rows first, then the
    template's); ``label``: 1 = signal-region data, 0 = template; ``scores``:
    selection -> score of each row (the ensemble that selection picks).
    """

    index: np.ndarray = field(repr=False)
    label: np.ndarray = field(repr=False)
    scores: dict[str, np.ndarray] = field(repr=False)

    def of(self, selection: str) -> tuple[np.ndarray, np.ndarray]:
        """``(data scores, template scores)`` of one selection."""
        s = self.scores[selection]
        return s[self.label == 1], s[self.label == 0]


def score_truth(scores: np.ndarray, y_test: np.ndarray | None) -> tuple[dict[str, float], SicCurve]:
    """``({"max_sic", "auc"}, SicCurve)`` of test scores; NaN and an empty curve without truth."""
    from objectives.metrics import roc_auc, sic_curve

    if y_test is None or np.unique(y_test).size < 2:
        empty = np.empty(0)
        return {"max_sic": float("nan"), "auc": float("nan")}, SicCurve(empty, empty, empty)
    curve = SicCurve(*sic_curve(scores, y_test))
    return {"max_sic": curve.max_sic, "auc": float(roc_auc(scores, y_test))}, curve


@dataclass
class EvaluationResult:
    """Every metric of one training, the test scores and curves, and what the run used."""

    metrics: dict[str, float]
    truth: dict[str, dict[str, float]]
    scores: dict[str, np.ndarray] = field(repr=False)
    curves: dict[str, SicCurve] = field(default_factory=dict, repr=False)
    info: dict = field(default_factory=dict)
    #: truth labels of the test set the scores belong to (None without truth)
    y_test: np.ndarray | None = field(default=None, repr=False)
    #: the fitted model, where a method's direct API returns it (never stored)
    model: object = field(default=None, repr=False)
    #: held-out scores with their data / template labels (classifiers; None otherwise)
    held_out: HeldOut | None = field(default=None, repr=False)
    #: names of the signals of a multi-signal test set (empty otherwise)
    signals: tuple[str, ...] = ()
    #: per test event: index into ``signals``, -1 for background (None without signals)
    test_signal: np.ndarray | None = field(default=None, repr=False)
    #: signal name -> its truth metrics ({"auc", "eps_s_1e-2", ...})
    per_signal: dict[str, dict[str, float]] = field(default_factory=dict)
    #: per test event: the weight the truth metrics gave it (None: unweighted)
    test_weight: np.ndarray | None = field(default=None, repr=False)
    #: test scores of named parts of the detector, each standardised like the whole
    #: (dSVDD: one per latent dimension, "d5", "d8", ...; empty for most methods)
    parts: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def from_scores(
        cls,
        label_free: dict[str, float],
        scores: np.ndarray | None,
        y_test: np.ndarray | None,
        info: dict,
        *,
        oracle: bool = True,
    ) -> EvaluationResult:
        """A method with one ensemble: every selection shares ``scores``.

        ``label_free`` holds the method's label-free metrics; ``max_sic`` (the truth
        oracle) is added when ``oracle``. ``scores`` None: no anomaly score (NaN truth).
        """
        truth, curve = score_truth(scores, y_test if scores is not None else None)
        metrics = dict(label_free)
        if oracle:
            metrics["max_sic"] = truth["max_sic"]
        return cls(
            metrics=metrics,
            truth={m: dict(truth) for m in metrics},
            scores={} if scores is None else {m: scores for m in metrics},
            curves={} if scores is None else {m: curve for m in metrics},
            info=info,
            y_test=y_test if scores is not None else None,
        )

    def summary(self) -> dict:
        """JSON-friendly metrics and provenance (no arrays)."""
        out = {"metrics": self.metrics, "truth": self.truth, "info": self.info}
        if self.per_signal:
            out["per_signal"] = self.per_signal
        return out
