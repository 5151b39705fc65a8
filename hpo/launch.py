"""``hpo launch``: the SLURM job chain of a campaign, rendered and submitted in one go.

1. the worker **array job** (``hpo worker`` in every task, on the shared storage);
2. a **pick-best** job, ``afterany`` on the array: checks that every cell reached
   its target and exports the JSON, failing loudly (and listing the cells) if not;
3. the **final runs**, ``afterok`` on pick-best: one job per hyperparameter
   source (selection metric, plus ``default``) and statistics (half, full);
4. with a ``[bumphunt]`` section, the **bump-hunt array** (``afterok`` on pick-best):
   one task per (signal-region window, fold), ``hpo bumphunt --slurm-task``;
5. the bump hunt's **combine** job, ``afterany`` on that array: the cut and count,
   results and plots once every unit exists; otherwise it submits the tasks that
   left units missing again, with a new combine job after them
   (:func:`resubmit_bumphunt`, at most ``[bumphunt] retries`` times).

The scripts are plain files in ``<run_dir>/slurm/`` that a user can read and
resubmit by hand; the job ids are recorded in ``<run_dir>/slurm/jobs.json``.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from hpo.config import Campaign
from objectives.files import atomic_write_json, atomic_write_text

__all__ = ["jobs_file", "launch", "recorded_jobs", "render_chain", "resubmit_bumphunt"]


def jobs_file(campaign: Campaign) -> Path:
    """Where ``hpo launch`` records the job ids."""
    return campaign.run_dir / "slurm" / "jobs.json"


def _options(campaign: Campaign, kind: str, name: str):
    from workers.slurm import SlurmOptions

    s = campaign.slurm
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
        time=s.time if kind == "worker" else s.final_time,
        cpus_per_task=s.cpus_per_task,
        mem=s.mem,
        array_size=size,
        array_parallel=min(s.array_parallel, size) if size > 1 else None,
        log_dir=str(campaign.run_dir / "slurm" / "logs"),
        chdir=str(campaign.run_dir),
        signal=s.signal,
        setup=s.setup,
        extra=s.extra,
    )


def _hpo(campaign: Campaign, *args: str) -> list[str]:
    python = campaign.slurm.python or sys.executable
    return [python, "-m", "hpo", *args, str(campaign.path)]


def render_chain(campaign: Campaign) -> dict[str, tuple[str, str]]:
    """name -> (kind, script text) for every job of the chain, in submission order."""
    from workers.slurm import render_sbatch

    chain = {
        "worker": (
            "worker",
            render_sbatch(
                _options(campaign, "worker", "worker"), _hpo(campaign, "worker"), kind="worker"
            ),
        ),
        "pick-best": (
            "pick-best",
            render_sbatch(
                _options(campaign, "pick-best", "pick-best"),
                _hpo(campaign, "export", "--require-complete"),
                kind="pick-best",
            ),
        ),
    }
    from hpo.cells import final_sources

    for src in final_sources(campaign):
        for stat in campaign.final.statistics:
            chain[f"final-{src}-{stat}"] = (
                "final",
                render_sbatch(
                    _options(campaign, "final", f"final-{src}-{stat}"),
                    _hpo(campaign, "final", "--source", src, "--statistics", stat),
                    kind="final",
                ),
            )
    if campaign.bumphunt is not None:
        for name, args in (
            ("bumphunt", ("--slurm-task",)),
            ("combine", ("--combine", "--resubmit")),
        ):
            job = "bumphunt" if name == "bumphunt" else "bumphunt-combine"
            chain[job] = (
                name,
                render_sbatch(
                    _options(campaign, name, job), _hpo(campaign, "bumphunt", *args), kind=name
                ),
            )
    return chain


def _dependency(kind: str, jobs: dict[str, str]) -> str | None:
    """What a job of ``kind`` waits for, given the ids of the jobs submitted before it."""
    if kind == "pick-best":
        return f"afterany:{jobs['worker']}"
    if kind in ("final", "bumphunt"):
        return f"afterok:{jobs['pick-best']}"
    if kind == "combine":
        return f"afterany:{jobs['bumphunt']}"
    return None


def launch(campaign: Campaign, *, dry_run: bool = False) -> str:
    """Write the scripts, submit the chain (unless ``dry_run``) and describe what happened."""
    from hpo.data import ensure_data
    from hpo.studies import create_studies
    from workers.slurm import sbatch_argv, submit

    folder = campaign.run_dir / "slurm"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    chain = render_chain(campaign)
    lines: list[str] = []
    if not dry_run:
        ensure_data(campaign)
        create_studies(campaign)
    jobs: dict[str, str] = {}
    for name, (kind, text) in chain.items():
        path = atomic_write_text(folder / f"{name}.sbatch", text)
        dep = _dependency(kind, jobs)
        if dry_run:
            jobs[name] = f"<{name}>"
            argv = ["sbatch", "--parsable"]
            if dep:
                argv += [f"--dependency={dep}", "--kill-on-invalid-dep=yes"]
            lines += [f"# ---- {path}", text, "$ " + shlex.join([*argv, str(path)]), ""]
        else:
            jobs[name] = submit(path, dependency=dep)
            lines.append(
                f"submitted {name:<24} job {jobs[name]:<10} "
                f"$ {shlex.join(sbatch_argv(path, dependency=dep))}"
            )
    if not dry_run:
        atomic_write_json(jobs_file(campaign), {"jobs": jobs, "scripts": str(folder)})
        lines.append(f"job ids in {jobs_file(campaign)}; logs in {folder / 'logs'}")
        lines.append(f"watch with: hpo status {campaign.path}")
    return "\n".join(lines)


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
    folder = campaign.run_dir / "slurm"
    chain = render_chain(campaign)
    scripts = {}
    for name in ("bumphunt", "bumphunt-combine"):
        scripts[name] = atomic_write_text(folder / f"{name}.sbatch", chain[name][1])
    ids = ",".join(str(t) for t in sorted(missing))
    array = f"{ids}%{min(campaign.slurm.array_parallel, len(missing))}"
    n = retries + 1
    jobs[f"bumphunt-retry{n}"] = submit(scripts["bumphunt"], array=array)
    jobs[f"bumphunt-combine-retry{n}"] = submit(
        scripts["bumphunt-combine"], dependency=f"afterany:{jobs[f'bumphunt-retry{n}']}"
    )
    path = jobs_file(campaign)
    record = json.loads(path.read_text()) if path.exists() else {"scripts": str(folder)}
    record["jobs"] = jobs  # other keys (history) kept
    atomic_write_json(jobs_file(campaign), record)
    return (
        f"{n_units} bump-hunt units missing in tasks {sorted(missing)}: resubmitted them as "
        f"job {jobs[f'bumphunt-retry{n}']} (array {array}) with combine job "
        f"{jobs[f'bumphunt-combine-retry{n}']} after it (retry {n} of "
        f"{campaign.bumphunt.retries})"
    )
