"""``hpo status``: trials per cell, SLURM job states and where the outputs are."""

from __future__ import annotations

from hpo.config import Campaign

__all__ = ["campaign_status"]


def _journal_warning(campaign: Campaign) -> list[str]:
    """A warning line when the journal holds unreadable records (full scan). A torn tail
    is not mentioned: opening the journal next cuts it and says so (one message)."""
    from storage.addresses import JOURNAL_SCHEME, parse_journal_path, scheme
    from storage.journal import check_journal

    if scheme(campaign.storage) != JOURNAL_SCHEME:
        return []
    path = parse_journal_path(campaign.storage, run_dir=campaign.run_dir)
    if not path.is_file():
        return []
    health = check_journal(path, full=True)
    problem = health.describe(str(campaign.path), torn_tail=False)
    return [f"warning: {problem}"] if problem else []


def campaign_status(campaign: Campaign) -> str:
    """A plain-text status of the campaign."""
    from hpo.launch import recorded_jobs
    from hpo.metric_text import value_text
    from hpo.studies import open_created_storage, progress
    from storage.addresses import redact

    warning = _journal_warning(campaign)  # before opening: opening cuts a torn tail
    rows = progress(campaign, open_created_storage(campaign))
    name_w = max([len(r.study_name) for r in rows] + [5])
    out = [
        f"campaign {campaign.name}  storage {redact(campaign.storage)}  run dir {campaign.run_dir}",
        *warning,
        "",
        f"{'study':<{name_w}}  complete  pruned  running  waiting  failed  best so far",
    ]
    for r in rows:
        best = "  ".join(value_text(m, v, digits=4) for m, v in r.best.items())
        mark = "done" if r.done else ""
        out.append(
            f"{r.study_name:<{name_w}}  {r.counted:>4}/{r.target:<4} {r.pruned:>6} {r.running:>7}  "
            f"{r.waiting:>7}  {r.failed:>6}  {best} {mark}"
        )
    from hpo.proxy import proxy_status

    proxy = proxy_status(campaign)
    if proxy:
        out += ["", *proxy]
    jobs = recorded_jobs(campaign)
    if jobs:
        from workers.slurm import job_states

        try:
            states = job_states(jobs.values())
        except Exception as exc:  # the scheduler may be unreachable from here
            states = {}
            out += ["", f"SLURM: could not read job states ({exc})"]
        out += ["", "SLURM jobs:"]
        for name, job in jobs.items():
            mine = {k: v for k, v in states.items() if k == job or k.startswith(f"{job}_")}
            summary = ", ".join(f"{k}={v}" for k, v in sorted(mine.items())) or "unknown"
            out.append(f"  {name:<24} {job:<10} {summary}")
    out += ["", "outputs:"]
    # local workers log to logs/, SLURM jobs next to their scripts
    logs = ("job logs", "slurm/logs") if jobs else ("worker logs", "logs")
    outputs = [
        ("hp JSON", "hp"),
        ("final runs", "final"),
        ("selection", "select"),
        ("plots", "report"),
    ]
    if campaign.bumphunt is not None:
        outputs.append(("bump hunt", "bumphunt"))
    for label, sub in (*outputs, logs):
        path = campaign.run_dir / sub
        out.append(f"  {label:<20} {path}{'' if path.exists() else '  (not yet)'}")
    return "\n".join(out)
