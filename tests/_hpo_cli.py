"""Run the ``hpo`` command line from tests and open what a campaign stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[1]


def hpo(
    *args: str, timeout: float = 600.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m hpo ARGS`` from the repository root; never raises on failure.

    ``SLURM_CONF`` and the rest of the environment (or ``env``) are passed through.
    """
    return subprocess.run(
        [sys.executable, "-m", "hpo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
        env={**(os.environ if env is None else env), "PYTHONWARNINGS": "ignore"},
    )


def run_pipeline(folder: Path, name: str, text: str):
    """Write campaign ``text`` to ``folder/name.toml``, run ``hpo pipeline`` with 2 workers.

    Returns ``(campaign, completed process)``; fails the test if the pipeline fails.
    """
    from hpo.config import load_campaign

    path = folder / f"{name}.toml"
    path.write_text(text)
    proc = hpo("pipeline", str(path), "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load_campaign(path), proc


def studies(campaign) -> dict[str, optuna.Study]:
    """Every cell's study of ``campaign``, by cell key."""
    from hpo.cells import campaign_cells
    from hpo.studies import open_campaign_storage

    storage = open_campaign_storage(campaign)
    return {
        cc.key: optuna.load_study(study_name=cc.study_name, storage=storage)
        for cc in campaign_cells(campaign)
    }


def exported_mean_pick(done: list, record: dict, plain) -> object:
    """The trial ``best.json`` (``record``) must hold, given the plain best trial ``plain``
    found by the test itself: ``plain``, or the defaults trial where the export's rule
    toward the defaults (``final.defaults_margin``) kept it; the rule must have weighed
    the same plain best."""
    rule = record.get("pick_rule")
    if rule is None:  # final.pick = "per_repetition": no rule
        return plain
    assert rule["best_trial"] == plain.number, rule
    if not rule["kept_defaults"]:
        return plain
    return next(t for t in done if t.user_attrs.get("enqueued_as") == "defaults")
