"""The ``hpo`` command line: campaigns from creation to report.

Each handler returns an exit code. A user error (bad campaign field, missing
data file, unreachable database, nothing to export) is one line on stderr
and exit code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from pathlib import Path

__all__ = ["main"]

log = logging.getLogger("hpo")

EPILOG = """\
typical session (journal storage, local workers, built-in synthetic data):
  hpo create   examples/quickstart.toml     # one Optuna study per cell (idempotent)
  hpo run      examples/quickstart.toml -w 2  # local workers until every cell has its trials
  hpo export   examples/quickstart.toml     # best hyperparameters per cell and metric -> JSON
  hpo final    examples/quickstart.toml     # picked hp on half and full statistics
  hpo report   examples/quickstart.toml     # plots (PNG + PDF) and a table
or all of it at once:  hpo pipeline examples/quickstart.toml -w 2

on a SLURM cluster (PostgreSQL storage):
  hpo db upgrade examples/cluster.toml; hpo launch examples/cluster.toml [--dry-run]
  hpo status examples/cluster.toml;  hpo dashboard examples/cluster.toml
"""


def _user_errors() -> tuple[type[BaseException], ...]:
    from hpo.config import ConfigError
    from hpo.errors import UsageError
    from hpo.export import ExportError
    from objectives.errors import DataError, HyperparameterError
    from storage.errors import StorageError
    from workers.slurm import SlurmError

    return (
        ConfigError,
        UsageError,
        ExportError,
        DataError,
        HyperparameterError,
        StorageError,
        SlurmError,
    )


def _campaign(args):
    from hpo.config import load_campaign

    return load_campaign(args.campaign)


# ----------------------------------------------------------------------------- handlers
def cmd_validate(args) -> int:
    from hpo.config import writable_run_dir
    from hpo.data import data_files
    from hpo.preflight import check_data
    from storage.addresses import redact

    c = _campaign(args)
    writable_run_dir(c, create=False)
    _print_notes(check_data(c, files_exist=all(p.is_file() for p in data_files(c))))
    print(
        f"{c.path}: valid; {len(c.grid_points())} cells, {c.search.n_trials} trials each, "
        f"storage {redact(c.storage)}, run_dir {c.run_dir}"
    )
    return 0


def _print_notes(notes: list[str]) -> None:
    """What the data check found worth knowing but not wrong, one line each."""
    for note in notes:
        print(f"note: {note}")


def cmd_create(args) -> int:
    from hpo import products
    from hpo.cells import campaign_cells
    from hpo.config import writable_run_dir
    from hpo.data import ensure_data
    from hpo.preflight import check_data
    from hpo.studies import create_studies, open_campaign_storage

    c = _campaign(args)
    check_data(c, files_exist=False)  # the user's files, or the generator's capacity
    writable_run_dir(c)
    storage = open_campaign_storage(c)  # fail fast on an unreachable database
    files = ensure_data(c)
    _print_notes(check_data(c))
    products.resolve(c)  # CATHODE templates, background flows, parsed events: built once
    studies = create_studies(c, storage)
    print(f"campaign {c.name}: {len(studies)} studies in {c.storage} (run dir {c.run_dir})")
    print("data: " + "\n      ".join(str(f) for f in files))
    for cc in campaign_cells(c):
        print(f"  {cc.study_name}")
    return 0


def _format_progress(campaign) -> str:
    from hpo.studies import progress

    rows = progress(campaign)
    done = sum(min(r.complete, r.target) for r in rows)
    total = sum(r.target for r in rows)
    parts = [f"{done}/{total} trials"]
    for r in rows:
        best = " ".join(f"{m}={v:.3g}" for m, v in r.best.items())
        parts.append(
            f"{r.study_name.split('.', 1)[-1]} {r.complete}/{r.target}"
            + (f" [{best}]" if best else "")
        )
    return " | ".join(parts)


def cmd_run(args) -> int:
    from hpo.studies import progress
    from workers.local import run_local

    rc = cmd_create(args)
    if rc:
        return rc
    c = _campaign(args)
    logs = c.run_dir / "logs"

    def argv(i: int) -> list[str]:
        return [sys.executable, "-m", "hpo", "worker", str(c.path), "--worker-id", f"local-{i}"]

    run = run_local(args.workers, argv, lambda: _format_progress(c), log_dir=logs)
    print(_format_progress(c))
    if run.interrupted is not None:
        print(f"hpo: interrupted by {signal.Signals(run.interrupted).name}", file=sys.stderr)
        return run.exit_code
    failed = {i: code for i, code in enumerate(run.codes) if code != 0}
    if not failed:
        return 0
    reasons = {i: _worker_reason(logs / f"worker-{i}.log", code) for i, code in failed.items()}
    if all(r.done for r in progress(c)):  # the others finished and recovered its trials
        for i, reason in reasons.items():
            print(f"hpo: note: worker {i} {reason}; every cell still reached its target")
        return 0
    for reason in dict.fromkeys(reasons.values()):  # one line per distinct reason
        print(f"hpo: error: {reason} (logs in {logs})", file=sys.stderr)
    return run.exit_code


def _worker_reason(log_file: Path, code: int) -> str:
    """The worker's own one-line error from its log, or how it ended."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in reversed(lines):
        if line.startswith("hpo: error: "):
            return line.removeprefix("hpo: error: ")
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _worker_id() -> str:
    job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if job and task:
        return f"slurm-{job}_{task}"
    if os.environ.get("SLURM_JOB_ID"):
        return f"slurm-{os.environ['SLURM_JOB_ID']}"
    return f"{socket.gethostname()}-{os.getpid()}"


def cmd_worker(args) -> int:
    from hpo import products
    from hpo.cells import campaign_cells
    from hpo.data import ensure_data
    from hpo.errors import UsageError
    from hpo.objective import make_objective
    from hpo.preflight import check_data
    from hpo.samplers import make_sampler
    from hpo.studies import create_studies, open_campaign_storage
    from objectives.errors import DataError, HyperparameterError
    from workers.worker import EXIT_FATAL, EXIT_REPEATED_ERROR, run_worker

    # until run_worker installs its handlers, a stop signal ends the worker before it
    # takes a trial (SLURM's early time-limit warning can arrive during start-up)
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    c = _campaign(args)
    worker_id = args.worker_id or _worker_id()
    storage = open_campaign_storage(c)
    ensure_data(c)
    # a file replaced after `hpo create` stops the worker here, not in trials
    check_data(c, cached=True)
    # templates and background flows before the first trial (each built once, by one worker)
    products.resolve(c, worker_id=worker_id)
    create_studies(c, storage)
    cells = campaign_cells(c)
    if args.cell:
        known = {cc.key for cc in cells} | {cc.study_name for cc in cells}
        for name in args.cell:
            if name not in known:
                raise UsageError(f"--cell {name}: no such cell in {c.path}")
        cells = [cc for cc in cells if cc.key in args.cell or cc.study_name in args.cell]
    targets = {cc.study_name: c.search.n_trials for cc in cells}

    def sampler_factory(study_name: str):
        return make_sampler(
            c.search.sampler,
            seed=c.search.seed,
            study_name=study_name,
            worker_id=worker_id,
            n_startup_trials=c.search.n_startup_trials,
        )

    log.info(
        "worker %s: %d cells, target %d trials each", worker_id, len(targets), c.search.n_trials
    )
    summary = run_worker(
        storage,
        targets,
        make_objective(c),
        sampler_factory=sampler_factory,
        worker_id=worker_id,
        fatal=(DataError, HyperparameterError),
    )
    if summary.exit_code in (EXIT_FATAL, EXIT_REPEATED_ERROR):
        print(f"hpo: error: {summary.message}", file=sys.stderr, flush=True)
    return summary.exit_code


def _writable_folder(path: Path, flag: str) -> Path:
    """``path`` made and proven writable, or a one-line UsageError naming ``flag``."""
    import tempfile

    from hpo.errors import UsageError

    try:
        path.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(dir=path, prefix=".write-probe-"))
    except OSError as exc:
        raise UsageError(f"{flag} {path}: not a writable folder ({exc.strerror or exc})") from None
    return path


def cmd_export(args) -> int:
    from hpo.export import export_campaign

    c = _campaign(args)
    yaml_dir = _writable_folder(Path(args.yaml).resolve(), "--yaml") if args.yaml else None
    written = export_campaign(c, yaml_dir=yaml_dir, require_complete=args.require_complete)
    print(f"exported {len(written)} hyperparameter files to {c.run_dir / 'hp'}")
    if args.yaml:
        print(f"reference YAML layout in {Path(args.yaml).resolve()}")
    return 0


def cmd_final(args) -> int:
    from hpo.final import run_final

    c = _campaign(args)
    tty = sys.stderr.isatty()

    def show(done: int, total: int, what: str) -> None:
        # in place on a terminal; plain lines in a log file (a SLURM job's, say)
        line = f"[final {done}/{total}] {what}"
        print(f"\r\033[K{line}" if tty else line, end="" if tty else "\n", file=sys.stderr)
        sys.stderr.flush()

    summaries = run_final(
        c, cells=args.cell, sources=args.source, statistics=args.statistics, progress=show
    )
    if tty:
        print(file=sys.stderr)
    print(f"{len(summaries)} summaries under {c.run_dir / 'final'}")
    return 0


def cmd_report(args) -> int:
    from hpo.report import make_report

    c = _campaign(args)
    out = make_report(c)
    print(out.table)
    print(f"plots in {out.folder}")
    return 0


def cmd_pipeline(args) -> int:
    for step in (cmd_run, cmd_export, cmd_final, cmd_report):
        rc = step(args)
        if rc:
            return rc
    c = _campaign(args)
    print(
        f"\nhyperparameters: {c.run_dir / 'hp'}\nfinal summaries: {c.run_dir / 'final'}"
        f"\nplots:           {c.run_dir / 'report'}"
    )
    return 0


def cmd_status(args) -> int:
    from hpo.status import campaign_status

    print(campaign_status(_campaign(args)))
    return 0


def cmd_launch(args) -> int:
    from hpo.launch import launch

    c = _campaign(args)
    print(launch(c, dry_run=args.dry_run))
    return 0


def cmd_dashboard(args) -> int:
    from hpo.dashboard import serve

    return serve(_campaign(args), host=args.host, port=args.port, expose=args.expose)


def cmd_repair(args) -> int:
    from hpo.errors import UsageError
    from storage.addresses import JOURNAL_SCHEME, parse_journal_path, scheme
    from storage.journal import rewrite_journal

    c = _campaign(args)
    if scheme(c.storage) != JOURNAL_SCHEME:
        raise UsageError(f"hpo repair rewrites journal files; {c.name} uses {c.storage}")
    path = parse_journal_path(c.storage, run_dir=c.run_dir)
    if not path.is_file():
        raise UsageError(f"{path}: no journal (the campaign was never created)")
    print(rewrite_journal(path).describe())
    return 0


def cmd_db_upgrade(args) -> int:
    from storage.postgres import upgrade

    c = _campaign(args)
    print(upgrade(c.storage))
    return 0


# ----------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """Argument errors as one line ``hpo: error: ...`` and exit code 2 (no usage dump)."""

    def error(self, message: str):
        self.exit(2, f"hpo: error: {self.prog}: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="hpo",
        description="Hyperparameter optimisation of weakly supervised anomaly detectors "
        "(IAD / CWoLa / CATHODE classifiers; ANODE / R-ANODE density methods; dSVDD / "
        "DROCC / DDD unsupervised detectors on DarkMachines events) with label-free "
        "selection metrics (ARGOS, BCE; val_loss for density and unsupervised methods).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def add(name: str, func, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        sp.add_argument("campaign", help="campaign TOML file")
        return sp

    add("validate", cmd_validate, "check a campaign file and print its grid size")
    add("create", cmd_create, "create one study per cell (idempotent) and the synthetic data")
    sp = add("run", cmd_run, "run N local worker processes with a progress display")
    sp.add_argument(
        "-w", "--workers", type=_positive_int, default=2, help="worker processes (default 2)"
    )
    sp = add(
        "worker",
        cmd_worker,
        "pull trials until every (or each --cell) study has its target of complete trials",
    )
    sp.add_argument("--cell", action="append", help="only this cell (key or study name); repeat")
    sp.add_argument("--worker-id", help="worker label (default: SLURM task or host-pid)")
    sp = add("export", cmd_export, "export the best hyperparameters per cell and metric as JSON")
    sp.add_argument("--yaml", metavar="DIR", help="also write the reference's YAML layout here")
    sp.add_argument(
        "--require-complete",
        action="store_true",
        help="fail unless every cell reached its target of complete trials",
    )
    sp = add("final", cmd_final, "train the picked hyperparameters on half and full statistics")
    sp.add_argument("--cell", action="append", help="only this cell; repeat")
    sp.add_argument(
        "--source",
        action="append",
        help="hyperparameter source: a selection metric, 'default' or 'ensemble' "
        "(every completed trial averaged; needs final.ensemble); repeat",
    )
    sp.add_argument("--statistics", action="append", choices=["half", "full"])
    add("report", cmd_report, "plots (PNG + PDF) and a table from the final summaries")
    sp = add("pipeline", cmd_pipeline, "create, run, export, final and report in one go")
    sp.add_argument(
        "-w", "--workers", type=_positive_int, default=2, help="worker processes (default 2)"
    )
    sp.set_defaults(yaml=None, require_complete=False, cell=None, source=None, statistics=None)
    add("status", cmd_status, "trials per cell, SLURM job states and where the outputs are")
    add(
        "repair",
        cmd_repair,
        "rewrite a damaged journal from its valid records (stop the workers first; "
        "the original is kept as a backup)",
    )
    sp = add("launch", cmd_launch, "submit the SLURM chain: worker array, pick-best, final runs")
    sp.add_argument("--dry-run", action="store_true", help="print scripts and sbatch commands")
    sp = add("dashboard", cmd_dashboard, "serve optuna-dashboard on the campaign's storage")
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sp.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    sp.add_argument(
        "--expose",
        action="store_true",
        help="allow a non-loopback --host (the dashboard has no authentication)",
    )
    db = sub.add_parser("db", help="storage maintenance")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbsub.add_parser("upgrade", help="apply Optuna's schema migrations to the storage")
    up.add_argument("campaign", help="campaign TOML file")
    up.set_defaults(func=cmd_db_upgrade)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hpo`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("numexpr").setLevel(logging.WARNING)  # "defaulting to N threads"
    import optuna

    optuna.logging.set_verbosity(optuna.logging.DEBUG if args.debug else optuna.logging.WARNING)
    if args.debug:
        return args.func(args)
    try:
        return args.func(args)
    except _user_errors() as exc:
        print(f"hpo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hpo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
