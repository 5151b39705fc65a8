"""``hpo launch``: the SLURM job chain of a campaign, rendered and submitted in one go.

0. with ``[slurm] proxy = "job"``: the **storage proxy** job (``hpo proxy``), which the
   array waits for (``after``: it has started); see :mod:`hpo.proxy`;
1. the worker **array job** (``hpo worker`` in every task, on the shared storage, or
   through the proxy: ``--proxy-file`` / ``--proxy``);
2. a **pick-best** job, ``afterany`` on the array: checks that every cell reached
   its target and exports the JSON, failing loudly (and listing the cells) if not;
3. the **final runs**, ``afterok`` on pick-best: one job per hyperparameter
   source (selection metric, plus ``default``) and statistics (half, full);
4. the **selection** across detectors (``hpo select``), ``afterok`` on every final
   job (when the final runs include half statistics);
5. a **report** job, ``afterany`` on every final job (and the selection): plots and
   table, SIC plots attached to the studies for the dashboard;
6. with a ``[bumphunt]`` section, the **bump-hunt array** (``afterok`` on pick-best):
   one task per (signal-region window, fold), ``hpo bumphunt --slurm-task``;
7. the bump hunt's **combine** job, ``afterany`` on that array: the cut and count,
   results and plots once every unit exists; otherwise it submits the tasks that
   left units missing again, with a new combine job after them
   (:func:`resubmit_bumphunt`, at most ``[bumphunt] retries`` times).

The scripts are plain files in ``<run_dir>/slurm/`` that a user can read and
resubmit by hand; the job ids are recorded in ``<run_dir>/slurm/jobs.json``.
``hpo launch --resume`` re-submits only what did not complete (a failed final job, a
cancelled report, a worker array whose cells are still short of trials), with its
dependencies on the jobs still pending, and records the new ids (the old ones in
``history``).
"""

from __future__ import annotations

import datetime as _dt
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from hpo.config import Campaign
from objectives.files import atomic_write_json, atomic_write_text

__all__ = [
    "ChainJob",
    "address_file",
    "jobs_file",
    "launch",
    "recorded_jobs",
    "render_chain",
    "resubmit_bumphunt",
    "resume",
]


@dataclass(frozen=True)
class ChainJob:
    """One job of the chain: its kind, script and what it waits for."""

    kind: str
    script: str
    #: (dependency type, names of the upstream jobs) or None
    after: tuple[str, tuple[str, ...]] | None = None


def jobs_file(campaign: Campaign) -> Path:
    """Where ``hpo launch`` records the job ids."""
    return campaign.run_dir / "slurm" / "jobs.json"


def address_file(campaign: Campaign) -> Path:
    """Where the storage proxy job (``hpo proxy``) writes its address for the workers."""
    return campaign.run_dir / "slurm" / "proxy.json"


def _proxy_time(campaign: Campaign) -> str:
    """``[slurm] proxy_time``, or long enough for every wave of the array (in minutes)."""
    from workers.slurm import time_minutes

    s = campaign.slurm
    if s.proxy_time:
        return s.proxy_time
    waves = -(-s.array_size // min(s.array_parallel, s.array_size))
    return str(time_minutes(s.time) * waves + 10)


def _options(campaign: Campaign, kind: str, name: str):
    from workers.slurm import SlurmOptions

    s = campaign.slurm
    setup = s.setup
    if kind == "worker" and s.proxy != "none":  # workers need no database password
        setup = (*s.setup, "unset PGPASSWORD")
    times = {"worker": s.time, "proxy": _proxy_time(campaign)}
    size = 1
    if kind == "worker":
        size = s.array_size
    elif kind == "bumphunt":
        from hpo.bumphunt import tasks

        size = len(tasks(campaign))
    return SlurmOptions(
        job_name=f"{campaign.name}-{name}",
        partition=s.partition,
        account=s.account,
        time=times.get(kind, s.final_time),
        cpus_per_task=s.cpus_per_task,
        gpus_per_task=s.gpus_per_task if kind in ("worker", "final") else 0,
        mem=s.mem,
        array_size=size,
        array_parallel=min(s.array_parallel, size) if size > 1 else None,
        log_dir=str(campaign.run_dir / "slurm" / "logs"),
        chdir=str(campaign.run_dir),
        signal=s.signal,
        setup=setup,
        extra=s.extra,
    )


def _hpo(campaign: Campaign, *args: str) -> list[str]:
    python = campaign.slurm.python or sys.executable
    return [python, "-m", "hpo", *args, str(campaign.path)]


def _worker_args(campaign: Campaign) -> list[str]:
    proxy = campaign.slurm.proxy
    if proxy == "job":
        return ["worker", "--proxy-file", str(address_file(campaign))]
    return ["worker"] if proxy == "none" else ["worker", "--proxy", proxy]


def render_chain(campaign: Campaign) -> dict[str, ChainJob]:
    """name -> job for every job of the chain, in submission order."""
    from hpo.cells import final_sources
    from workers.slurm import render_sbatch

    def job(kind: str, name: str, args: list[str], after=None) -> ChainJob:
        script = render_sbatch(_options(campaign, kind, name), _hpo(campaign, *args), kind=kind)
        return ChainJob(kind, script, after)

    chain: dict[str, ChainJob] = {}
    if campaign.slurm.proxy == "job":
        args = ["proxy", "--host", "0.0.0.0", "--address-file", str(address_file(campaign))]
        chain["proxy"] = job("proxy", "proxy", [*args, "--until-workers-end"])
    chain |= {
        # the array starts once the proxy has (it waits for the proxy's address file)
        "worker": job(
            "worker", "worker", _worker_args(campaign), ("after", ("proxy",)) if chain else None
        ),
        "pick-best": job(
            "pick-best", "pick-best", ["export", "--require-complete"], ("afterany", ("worker",))
        ),
    }
    for src in final_sources(campaign):
        for stat in campaign.final.statistics:
            name = f"final-{src}-{stat}"
            args = ["final", "--source", src, "--statistics", stat]
            chain[name] = job("final", name, args, ("afterok", ("pick-best",)))
    finals = tuple(name for name, j in chain.items() if j.kind == "final")
    before_report = finals
    if "half" in campaign.final.statistics:  # label-free values on held-out events
        chain["select"] = job("select", "select", ["select"], ("afterok", finals))
        before_report = (*finals, "select")
    chain["report"] = job("report", "report", ["report"], ("afterany", before_report))
    if campaign.bumphunt is not None:
        chain["bumphunt"] = job(
            "bumphunt", "bumphunt", ["bumphunt", "--slurm-task"], ("afterok", ("pick-best",))
        )
        chain["bumphunt-combine"] = job(
            "combine",
            "bumphunt-combine",
            ["bumphunt", "--combine", "--resubmit"],
            ("afterany", ("bumphunt",)),
        )
    return chain


def _dependency(job: ChainJob, ids: dict[str, str], live: set[str]) -> str | None:
    """``type:id:id`` on the upstream jobs that have not finished (None when all have)."""
    if job.after is None:
        return None
    kind, upstream = job.after
    waiting = [ids[name] for name in upstream if name in live]
    return f"{kind}:{':'.join(waiting)}" if waiting else None


def _write_scripts(campaign: Campaign, chain: dict[str, ChainJob]) -> dict[str, Path]:
    folder = campaign.run_dir / "slurm"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    return {
        name: atomic_write_text(folder / f"{name}.sbatch", j.script) for name, j in chain.items()
    }


def _prepare(campaign: Campaign) -> None:
    """What ``hpo create`` does up front: the data checked, the studies made."""
    from hpo.data import ensure_data
    from hpo.preflight import check_data
    from hpo.studies import create_studies

    check_data(campaign, files_exist=False)
    ensure_data(campaign)
    check_data(campaign, record=True)
    create_studies(campaign)


def launch(campaign: Campaign, *, dry_run: bool = False) -> str:
    """Write the scripts, submit the chain (unless ``dry_run``) and describe what happened."""
    from workers.slurm import sbatch_argv, submit

    chain = render_chain(campaign)
    if not dry_run:
        _prepare(campaign)
    paths = _write_scripts(campaign, chain)
    lines: list[str] = []
    jobs: dict[str, str] = {}
    for name, job in chain.items():
        placeholders = {n: f"<{n}>" for n in chain}
        dep = _dependency(job, jobs if not dry_run else placeholders, set(chain))
        if dry_run:
            argv = sbatch_argv(paths[name], dependency=None)[:-1]
            if dep:
                argv += [f"--dependency={dep}", "--kill-on-invalid-dep=yes"]
            lines += [
                f"# ---- {paths[name]}",
                job.script,
                "$ " + shlex.join([*argv, str(paths[name])]),
                "",
            ]
            continue
        jobs[name] = submit(paths[name], dependency=dep)
        lines.append(
            f"submitted {name:<24} job {jobs[name]:<10} "
            f"$ {shlex.join(sbatch_argv(paths[name], dependency=dep))}"
        )
    if not dry_run:
        _record(campaign, jobs, history=[])
        folder = campaign.run_dir / "slurm"
        lines.append(f"job ids in {jobs_file(campaign)}; logs in {folder / 'logs'}")
        lines.append(f"watch with: hpo status {campaign.path}")
    return "\n".join(lines)


def _record(campaign: Campaign, jobs: dict[str, str], history: list[dict]) -> None:
    atomic_write_json(
        jobs_file(campaign),
        {"jobs": jobs, "history": history, "scripts": str(campaign.run_dir / "slurm")},
    )


def _cells_complete(campaign: Campaign) -> bool:
    from hpo.studies import open_created_storage, progress

    return all(r.done for r in progress(campaign, open_created_storage(campaign)))


def resume(campaign: Campaign) -> str:
    """Re-submit the jobs of the last launch that did not complete; record the new ids.

    A job that completed is kept unless something it depends on is re-submitted (its
    output would be stale: the report after re-run finals, say).
    """
    from hpo.errors import UsageError
    from workers.slurm import job_finished, job_states, submit

    path = jobs_file(campaign)
    if not path.exists():
        raise UsageError(f"{campaign.name} was never launched: run `hpo launch {campaign.path}`")
    recorded = json.loads(path.read_text())
    jobs, history = dict(recorded["jobs"]), list(recorded.get("history", []))
    chain = render_chain(campaign)
    paths = _write_scripts(campaign, chain)
    states = job_states(jobs.values())

    def completed(name: str) -> bool:
        mine = [s for k, s in states.items() if k == jobs[name] or k.startswith(f"{jobs[name]}_")]
        if name == "worker":  # a task may end at its time limit: what counts is the studies
            return job_finished(states, jobs[name]) and _cells_complete(campaign)
        if name == "proxy":  # it serves the array: needed again when the array is
            return _cells_complete(campaign)
        if not mine:  # the scheduler forgot it (MinJobAge): its outputs tell
            return _outputs_exist(campaign, name)
        return all(s == "COMPLETED" for s in mine)

    live = {n for n in jobs if n in chain and not job_finished(states, jobs[n])}
    lines, redone = [], set()
    for name, job in chain.items():
        upstream_redone = job.after is not None and bool(set(job.after[1]) & redone)
        if name in live or (name in jobs and completed(name) and not upstream_redone):
            continue
        redone.add(name)
        dep = _dependency(job, jobs, live)
        new = submit(paths[name], dependency=dep)
        old = jobs.get(name)
        history.append(
            {
                "job": name,
                "old": old,
                "new": new,
                "at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            }
        )
        jobs[name] = new
        live.add(name)
        was = f"(was {old}, {_state(states, old)})" if old else "(not submitted before)"
        lines.append(f"resubmitted {name:<24} job {new:<10} {was}")
    _record(campaign, jobs, history)
    if not lines:
        return f"nothing to resubmit: every job of {campaign.name} completed or is still queued"
    return "\n".join([*lines, f"job ids in {jobs_file(campaign)}"])


def _outputs_exist(campaign: Campaign, name: str) -> bool:
    """Whether the outputs of chain job ``name`` are all on disk (for a forgotten job)."""
    from hpo.cells import campaign_cells

    root = campaign.run_dir
    cells = campaign_cells(campaign)
    if name == "pick-best":
        return all(
            (root / "hp" / cc.key / m / "best.json").exists() for cc in cells for m in cc.metrics
        )
    if name.startswith("final-"):
        src, stat = name.removeprefix("final-").rsplit("-", 1)
        wanted = [cc for cc in cells if src == "default" or src in cc.metrics]
        return all(
            (root / "final" / cc.key / src / stat / "summary.json").exists() for cc in wanted
        )
    if name == "select":
        from hpo.select import select_dir, selection_groups

        return all(
            (select_dir(campaign, g.name) / "summary.json").exists()
            for g in selection_groups(campaign)
        )
    if name == "bumphunt":
        from hpo.bumphunt import missing_units

        return not missing_units(campaign)
    if name == "bumphunt-combine":
        from hpo.bumphunt_combine import combined

        return combined(campaign)
    return (root / "report" / "max_sic_vs_signal.png").exists()


def _state(states: dict[str, str], job_id: str) -> str:
    mine = sorted({s for k, s in states.items() if k == job_id or k.startswith(f"{job_id}_")})
    return "/".join(mine) or "unknown to the scheduler"


def recorded_jobs(campaign: Campaign) -> dict[str, str]:
    """The job ids of the last launch (empty if never launched)."""
    path = jobs_file(campaign)
    return json.loads(path.read_text())["jobs"] if path.exists() else {}


def resubmit_bumphunt(campaign: Campaign) -> str | None:
    """Submit the bump-hunt tasks with missing units again, and a combine job after them.

    None when no unit is missing. Run by the combine job: the tasks go out as the
    same array script for those task ids only (``sbatch --array=3,7``), each
    resuming from its finished units. UsageError (listing the units) once
    ``[bumphunt] retries`` resubmissions have been made.
    """
    from hpo.bumphunt import missing_units
    from hpo.errors import UsageError
    from workers.slurm import submit

    missing = missing_units(campaign)
    if not missing:
        return None
    jobs = recorded_jobs(campaign)
    retries = sum(1 for name in jobs if name.startswith("bumphunt-retry"))
    n_units = sum(len(u) for u in missing.values())
    if retries >= campaign.bumphunt.retries:
        from hpo.bumphunt_combine import describe_missing

        raise UsageError(
            f"{describe_missing(missing)}\nafter {retries} resubmission(s) "
            f"([bumphunt] retries = {campaign.bumphunt.retries})"
        )
    chain = render_chain(campaign)
    scripts = _write_scripts(campaign, {n: chain[n] for n in ("bumphunt", "bumphunt-combine")})
    ids = ",".join(str(t) for t in sorted(missing))
    array = f"{ids}%{min(campaign.slurm.array_parallel, len(missing))}"
    n = retries + 1
    jobs[f"bumphunt-retry{n}"] = submit(scripts["bumphunt"], array=array)
    jobs[f"bumphunt-combine-retry{n}"] = submit(
        scripts["bumphunt-combine"], dependency=f"afterany:{jobs[f'bumphunt-retry{n}']}"
    )
    path = jobs_file(campaign)
    history = json.loads(path.read_text()).get("history", []) if path.exists() else []
    _record(campaign, jobs, history)
    return (
        f"{n_units} bump-hunt units missing in tasks {sorted(missing)}: resubmitted them as "
        f"job {jobs[f'bumphunt-retry{n}']} (array {array}) with combine job "
        f"{jobs[f'bumphunt-combine-retry{n}']} after it (retry {n} of "
        f"{campaign.bumphunt.retries})"
    )
