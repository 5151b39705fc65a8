"""One Optuna study per cell: creation (idempotent), loading, trial counts.

With ``search.enqueue_defaults`` (the default) creation also enqueues the method's
defaults as each study's first trial, once (:mod:`hpo.defaults_trial`).
"""

from __future__ import annotations

import logging
import warnings
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
    "ensure_studies",
    "preload",
    "open_campaign_storage",
    "open_created_storage",
    "progress",
]

log = logging.getLogger(__name__)


def direction(metric: str) -> str:
    """Optimisation direction of a selection metric."""
    return DIRECTIONS[metric]


def open_campaign_storage(campaign: Campaign):
    """The campaign's Optuna storage (journal file by default); creates an absent journal.
    A ``grpc://`` storage is reached with the campaign's proxy token (and TLS CA)."""
    from hpo.proxy_access import tls_ca, token_file
    from storage.urls import open_storage

    return open_storage(
        campaign.storage,
        run_dir=campaign.run_dir,
        campaign=str(campaign.path),
        token_file=token_file(campaign),
        tls_ca=tls_ca(campaign),
    )


def open_created_storage(campaign: Campaign):
    """The storage of a campaign that was created; UsageError (and nothing on disk) otherwise.

    For the commands that only read (status, export, dashboard, report): a campaign that
    was never created is said so, instead of getting an empty journal. Looks up the
    campaign's own study names (the first one normally answers), never the storage's
    whole list of studies: a database may hold many campaigns.
    """
    from hpo.errors import UsageError
    from storage.addresses import JOURNAL_SCHEME, parse_journal_path, redact, scheme

    missing = UsageError(
        f"campaign {campaign.name} has no studies yet in {redact(campaign.storage)}: "
        f"run `hpo create {campaign.path}` first"
    )
    if scheme(campaign.storage) == JOURNAL_SCHEME:
        path = parse_journal_path(campaign.storage, run_dir=campaign.run_dir)
        if not path.is_file() or path.stat().st_size == 0:
            raise missing
    storage = open_campaign_storage(campaign)
    for cc in campaign_cells(campaign):
        try:
            storage.get_study_id_from_name(cc.study_name)
            return storage
        except KeyError:
            continue
    raise missing


def _study_attrs(cc: CampaignCell) -> dict:
    c = cc.campaign
    return {
        "campaign": c.name,
        "campaign_file": str(c.path),
        "cell": {"key": cc.key, **cc.point.to_dict()},
        "target_trials": cc.target_trials,
        "objective": cc.objective,
        "metrics": list(cc.metrics),
        "repetitions": c.search.repetitions,
        "sampler": c.search.sampler,
    }


def create_studies(campaign: Campaign, storage=None, cells=None) -> list[optuna.Study]:
    """Create (or load) one study per cell (or per cell of ``cells``); idempotent."""
    storage = storage or open_campaign_storage(campaign)
    studies = []
    for cc in campaign_cells(campaign) if cells is None else cells:
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
            with warnings.catch_warnings():  # experimental in Optuna, stable in use
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([cc.objective])
        if fresh:
            _save_note(study, cc.describe())
        if campaign.search.enqueue_defaults and cc.target_trials:  # none if it runs no trial
            _enqueue_defaults(study, cc)
        studies.append(study)
        log.info("%s study %s", "created" if fresh else "found", cc.study_name)
    return studies


def _enqueue_defaults(study: optuna.Study, cc: CampaignCell) -> None:
    from hpo.defaults_trial import enqueue_defaults
    from hpo.spaces import space_for

    clf, search = cc.point.classifier, cc.campaign.search
    fixed = search.fixed.get(clf, {})
    space = space_for(clf, search.space.get(clf), fixed)
    if enqueue_defaults(study, clf, space, fixed):
        log.info("%s: the method's defaults enqueued as a trial", cc.study_name)


def ensure_studies(campaign: Campaign, storage) -> int:
    """Create the campaign's studies that do not exist yet; returns how many it created.

    What a worker needs at start: one listing call when the campaign was created (a
    worker of a 252-cell campaign thus makes one round trip here, not thousands).
    """
    existing = {s.study_name for s in storage.get_all_studies()}
    missing = [cc for cc in campaign_cells(campaign) if cc.study_name not in existing]
    if missing:
        create_studies(campaign, storage, cells=missing)
    return len(missing)


def preload(storage, study_names) -> int:
    """Read every trial of these studies once, the collector paused; returns how many.

    A worker's first look at its cells reads all of them (into the PostgreSQL or proxy
    client's trial cache; a journal holds them already); later looks read what changed.
    """
    from storage.bulk_read import bulk_read

    with bulk_read():
        return sum(
            len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
            for name in study_names
        )


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
    pruned: int = 0
    #: PRUNED trials count toward the target (``search.count_pruned``)
    count_pruned: bool = False

    @property
    def counted(self) -> int:
        """Trials that count toward the target."""
        return self.complete + (self.pruned if self.count_pruned else 0)

    @property
    def done(self) -> bool:
        return self.counted >= self.target


def progress(campaign: Campaign, storage=None) -> list[CellProgress]:
    """Per cell: trials complete / running / waiting / failed and best metrics.

    Counts and metric values only (``storage.summaries``): on PostgreSQL two queries for
    the whole campaign instead of every trial of every study.
    """
    from storage.bulk_read import bulk_read
    from storage.summaries import summaries

    storage = storage or open_campaign_storage(campaign)
    cells = campaign_cells(campaign)
    metrics = sorted({m for cc in cells for m in cc.metrics})
    with bulk_read():
        found = summaries(storage, [cc.study_name for cc in cells], metrics)
    out = []
    for cc in cells:
        summary = found.get(cc.study_name)
        if summary is None:
            out.append(CellProgress(cc.study_name, cc.target_trials, 0, 0, 0, 0, {}))
            continue
        best: dict[str, float] = {}
        for m in cc.metrics:
            # nan (no truth, or unmeasurable) is no best
            values = [v for v in summary.values[m] if v is not None and v == v]
            if values:
                best[m] = (max if DIRECTIONS[m] == "maximize" else min)(values)
        count = summary.counts
        out.append(
            CellProgress(
                cc.study_name,
                cc.target_trials,
                count[TrialState.COMPLETE],
                count[TrialState.RUNNING],
                count[TrialState.WAITING],
                count[TrialState.FAIL],
                best,
                pruned=count[TrialState.PRUNED],
                count_pruned=campaign.search.count_pruned,
            )
        )
    return out
