"""One Optuna study per cell: creation (idempotent), loading, trial counts."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from hpo.cells import CampaignCell, campaign_cells
from hpo.config import Campaign
from objectives.registry import DIRECTIONS

__all__ = [
    "CellProgress",
    "create_studies",
    "direction",
    "open_campaign_storage",
    "open_created_storage",
    "progress",
]

log = logging.getLogger(__name__)


def direction(metric: str) -> str:
    """Optimisation direction of a selection metric."""
    return DIRECTIONS[metric]


def open_campaign_storage(campaign: Campaign):
    """The campaign's Optuna storage (journal file by default); creates an absent journal."""
    from storage.urls import open_storage

    return open_storage(campaign.storage, run_dir=campaign.run_dir, campaign=str(campaign.path))


def open_created_storage(campaign: Campaign):
    """The storage of a campaign that was created; UsageError (and nothing on disk) otherwise.

    For the commands that only read (status, export, dashboard, report): a campaign that
    was never created is said so, instead of getting an empty journal.
    """
    from hpo.errors import UsageError
    from storage.addresses import JOURNAL_SCHEME, parse_journal_path, scheme

    missing = UsageError(
        f"campaign {campaign.name} has no studies yet in {campaign.storage}: "
        f"run `hpo create {campaign.path}` first"
    )
    if scheme(campaign.storage) == JOURNAL_SCHEME:
        path = parse_journal_path(campaign.storage, run_dir=campaign.run_dir)
        if not path.is_file() or path.stat().st_size == 0:
            raise missing
    storage = open_campaign_storage(campaign)
    if not any(s.study_name.startswith(f"{campaign.name}.") for s in storage.get_all_studies()):
        raise missing
    return storage


def _study_attrs(cc: CampaignCell) -> dict:
    c = cc.campaign
    return {
        "campaign": c.name,
        "campaign_file": str(c.path),
        "cell": {"key": cc.key, **cc.point.to_dict()},
        "target_trials": c.search.n_trials,
        "objective": cc.objective,
        "metrics": list(cc.metrics),
        "repetitions": c.search.repetitions,
        "sampler": c.search.sampler,
    }


def create_studies(campaign: Campaign, storage=None) -> list[optuna.Study]:
    """Create (or load) one study per cell; running it twice changes nothing."""
    storage = storage or open_campaign_storage(campaign)
    studies = []
    for cc in campaign_cells(campaign):
        want = direction(cc.objective)
        study = optuna.create_study(
            storage=storage, study_name=cc.study_name, direction=want, load_if_exists=True
        )
        if study.direction.name.lower() != want:
            raise ValueError(
                f"study {cc.study_name} exists with direction {study.direction.name.lower()}; "
                f"its objective {cc.objective!r} needs {want} (use a new campaign name)"
            )
        attrs = _study_attrs(cc)
        fresh = "cell" not in study.user_attrs
        for key, value in attrs.items():
            if study.user_attrs.get(key) != value:
                study.set_user_attr(key, value)
        if study.metric_names != [cc.objective]:
            study.set_metric_names([cc.objective])
        if fresh:
            _save_note(study, cc.describe())
        studies.append(study)
        log.info("%s study %s", "created" if fresh else "found", cc.study_name)
    return studies


def _save_note(study: optuna.Study, text: str) -> None:
    try:
        from optuna_dashboard import save_note
    except ImportError:  # the dashboard is optional for the service itself
        return
    save_note(study, text)


@dataclass
class CellProgress:
    """Trial counts of one cell and the best value per metric so far."""

    study_name: str
    target: int
    complete: int
    running: int
    waiting: int
    failed: int
    best: dict[str, float]

    @property
    def done(self) -> bool:
        return self.complete >= self.target


def progress(campaign: Campaign, storage=None) -> list[CellProgress]:
    """Per cell: trials complete / running / waiting / failed and best metrics."""
    storage = storage or open_campaign_storage(campaign)
    out = []
    for cc in campaign_cells(campaign):
        try:
            study = optuna.load_study(study_name=cc.study_name, storage=storage)
        except KeyError:
            out.append(CellProgress(cc.study_name, campaign.search.n_trials, 0, 0, 0, 0, {}))
            continue
        trials = study.get_trials(deepcopy=False)
        count = {s: 0 for s in TrialState}
        for t in trials:
            count[t.state] += 1
        best: dict[str, float] = {}
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        for m in cc.metrics:
            values = [t.user_attrs.get(m) for t in done if t.user_attrs.get(m) is not None]
            values = [v for v in values if v == v]  # nan (no truth, or unmeasurable) is no best
            if values:
                best[m] = (max if DIRECTIONS[m] == "maximize" else min)(values)
        out.append(
            CellProgress(
                cc.study_name,
                campaign.search.n_trials,
                count[TrialState.COMPLETE],
                count[TrialState.RUNNING],
                count[TrialState.WAITING],
                count[TrialState.FAIL],
                best,
            )
        )
    return out
