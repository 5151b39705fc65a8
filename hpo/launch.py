"""``hpo launch``: the SLURM job chain of a campaign, rendered and submitted in one go.

1. the worker **array job** (``hpo worker`` in every task, on the shared storage);
2. a **pick-best** job, ``afterany`` on the array: checks that every cell reached
   its target and exports the JSON, failing loudly (and listing the cells) if not;
3. the **final runs**, ``afterok`` on pick-best: one job per hyperparameter
   source (selection metric, plus ``default``) and statistics (half, full);
4. the **selection** across detectors (``hpo select``), ``afterok`` on every final
   job (when the final runs include half statistics).

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

__all__ = ["jobs_file", "launch", "render_chain"]


def jobs_file(campaign: Campaign) -> Path:
    """Where ``hpo launch`` records the job ids."""
    return campaign.run_dir / "slurm" / "jobs.json"


def _options(campaign: Campaign, kind: str, name: str):
    from workers.slurm import SlurmOptions

    s = campaign.slurm
    return SlurmOptions(
        job_name=f"{campaign.name}-{name}",
        partition=s.partition,
        account=s.account,
        time=s.time if kind == "worker" else s.final_time,
        cpus_per_task=s.cpus_per_task,
        mem=s.mem,
        array_size=s.array_size if kind == "worker" else 1,
        array_parallel=min(s.array_parallel, s.array_size) if kind == "worker" else None,
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
    if "half" in campaign.final.statistics:  # label-free values on held-out events
        chain["select"] = (
            "select",
            render_sbatch(
                _options(campaign, "select", "select"), _hpo(campaign, "select"), kind="select"
            ),
        )
    return chain


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
        dep = None
        if kind == "pick-best":
            dep = f"afterany:{jobs['worker']}"
        elif kind == "final":
            dep = f"afterok:{jobs['pick-best']}"
        elif kind == "select":
            finals = [job for n, job in jobs.items() if chain[n][0] == "final"]
            dep = "afterok:" + ":".join(finals)
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
