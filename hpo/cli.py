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
import sys
import warnings
from pathlib import Path

__all__ = ["main"]

log = logging.getLogger("hpo")

EPILOG = """\
typical session (journal storage, local workers, built-in synthetic data):
  hpo create   examples/quickstart.toml     # one Optuna study per cell (idempotent)
  hpo run      examples/quickstart.toml -w 2  # local workers until every cell has its trials
  hpo export   examples/quickstart.toml     # best hyperparameters per cell and metric -> JSON
  hpo final    examples/quickstart.toml     # picked hp on half and full statistics
  hpo select   examples/quickstart.toml     # best detector per run by ARGOS / BCE / truth
  hpo report   examples/quickstart.toml     # plots (PNG + PDF) and a table
or all of it at once:  hpo pipeline examples/quickstart.toml -w 2

the sliding-window bump hunt ([bumphunt] section, grid.windows):
  hpo bumphunt examples/bumphunt.toml       # every (window, fold, run) unit, then the cut and count

on a SLURM cluster (PostgreSQL storage):
  hpo db upgrade examples/cluster.toml; hpo launch examples/cluster.toml [--dry-run]
  hpo status examples/cluster.toml;  hpo dashboard examples/cluster.toml

what grid.classifiers may name (built-in and installed methods):  hpo methods [--json]
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
    from hpo.cells import campaign_cells
    from hpo.config import writable_run_dir
    from hpo.data import data_files
    from hpo.preflight import check_data
    from storage.addresses import redact

    c = _campaign(args)
    writable_run_dir(c, create=False)
    _check_methods(c)
    _print_notes(check_data(c, files_exist=all(p.is_file() for p in data_files(c))))
    _warn_shared_journal(c)
    from hpo.holdout import pick_fallback_warning
    from hpo.pick_rule import inactive_warning

    if warning := pick_fallback_warning(c):
        print(warning, file=sys.stderr)
    cells = campaign_cells(c)
    rule = inactive_warning(c.search.repetitions, c.final.defaults_margin, c.final.pick)
    if rule and any(cc.searched for cc in cells):
        print(rule, file=sys.stderr)
    print(f"{c.path}: valid; {_what_runs(c)}, storage {redact(c.storage)}, run_dir {c.run_dir}")
    once = [cc.key for cc in cells if not cc.searched]
    if once:
        print(
            f"{len(once)} cell(s) without hyperparameters to search, evaluated once by "
            f"hpo final: {', '.join(once)}"
        )
    if c.bumphunt is not None:
        from hpo.bumphunt import task_units, tasks

        n_tasks = len(tasks(c))
        n_units = sum(len(task_units(c, t)) for t in range(n_tasks))
        sources = ", ".join(c.bumphunt.hp)
        print(
            f"bump hunt: {len(c.regions)} windows x {c.bumphunt.folds} folds = {n_tasks} tasks, "
            f"{n_units} trainings in all ({n_units // n_tasks} per task), "
            f"hyperparameters: {sources}"
        )
        measured = any(isinstance(m, str) for m in c.bumphunt.delta_sys.values())
        if measured and c.bumphunt.runs == 1:
            print(
                "warning: bumphunt.runs = 1: the bootstrap error of the measured delta_sys "
                "resamples events only; the spread between trainings is not in it "
                "(bumphunt.runs >= 2 puts it there)",
                file=sys.stderr,
            )
    return 0


def _what_runs(c) -> str:
    """The cells and the search that really runs (a default-hp bump hunt needs none)."""
    s = c.search
    search = (
        f"{s.n_trials} trials each ({s.sampler}, {s.repetitions} repetitions, pruner {s.pruner})"
    )
    if c.bumphunt is not None and set(c.bumphunt.hp) == {"default"}:
        return (
            f"{len(c.grid_points())} cells; the bump hunt (hpo bumphunt) trains default "
            f"hyperparameters and runs no search; hpo run / pipeline / launch search {search}"
        )
    return f"{len(c.grid_points())} cells, {search}"


def _check_methods(c) -> None:
    """Fit each method from another package on a few synthetic events (MethodError: one line)."""
    from hpo.method_check import check_campaign_methods

    for name in check_campaign_methods(c):
        print(f"method {name}: loaded, checked on synthetic events")


def _warn_shared_journal(c) -> None:
    from storage.addresses import shared_journal_warning

    warning = shared_journal_warning(c.storage, c.run_dir, c.slurm.array_size)
    if warning:
        print(warning, file=sys.stderr)


def _print_notes(notes: list[str]) -> None:
    """What the data check found worth knowing but not wrong, one line each."""
    for note in notes:
        print(f"note: {note}")


def cmd_create(args) -> int:
    from hpo import products
    from hpo.cells import campaign_cells
    from hpo.config import run_dir_undone_on_error, writable_run_dir
    from hpo.data import ensure_data
    from hpo.preflight import check_data
    from hpo.studies import create_studies, open_campaign_storage
    from storage.addresses import redact
    from workers.signals import safe_point

    c = _campaign(args)
    _check_methods(c)
    check_data(c, files_exist=False)  # the user's files, or the generator's capacity
    with run_dir_undone_on_error(c):  # a storage that fails leaves no empty run_dir
        writable_run_dir(c)
        storage = open_campaign_storage(c)  # fail fast on an unreachable database
    files = ensure_data(c)
    safe_point()  # a stop signal ends `create` between its steps (and in flow epochs)
    _print_notes(check_data(c, record=True))
    products.resolve(c)  # CATHODE templates, background flows, parsed events: built once
    safe_point()
    studies = create_studies(c, storage)
    print(f"campaign {c.name}: {len(studies)} studies in {redact(c.storage)} (run dir {c.run_dir})")
    print("data: " + "\n      ".join(str(f) for f in files))
    for cc in campaign_cells(c):
        print(f"  {cc.study_name}")
    return 0


def _format_progress(campaign, storage=None) -> str:
    from hpo.metric_text import value_text
    from hpo.studies import progress

    rows = progress(campaign, storage)
    done = sum(min(r.counted, r.target) for r in rows)
    total = sum(r.target for r in rows)
    parts = [f"{done}/{total} trials"]
    for r in rows:
        best = " ".join(value_text(m, v) for m, v in r.best.items())
        parts.append(
            f"{r.study_name.split('.', 1)[-1]} {r.counted}/{r.target}"
            + (f" [{best}]" if best else "")
        )
    return " | ".join(parts)


def cmd_run(args) -> int:
    from hpo.studies import open_campaign_storage, progress
    from workers.ids import unique_worker_id
    from workers.local import run_local

    c = _campaign(args)
    _check_device(c)  # the workers run here: nothing is created otherwise
    rc = cmd_create(args)
    if rc:
        return rc
    logs = c.run_dir / "logs"
    # unique across processes and hosts: two `hpo run` on one campaign share no id, no
    # sampler seed and no log file
    ids = [unique_worker_id(f"local-{i}") for i in range(args.workers)]

    def argv(i: int) -> list[str]:
        return [sys.executable, "-m", "hpo", "worker", str(c.path), "--worker-id", ids[i]]

    storage = open_campaign_storage(c)
    last = ["starting"]

    def show() -> str:  # the workers ride out a storage outage; so does this display
        try:
            last[0] = _format_progress(c, storage)
        except Exception as exc:  # noqa: BLE001 - a display must never end the run
            return f"{last[0]} | storage unreachable ({type(exc).__name__}), retrying"
        return last[0]

    run = run_local(args.workers, argv, show, log_dir=logs, names=ids.__getitem__)
    print(_format_progress(c, storage))
    if run.interrupted is not None:  # main() says "stopped by ..."
        return run.exit_code
    failed = {i: code for i, code in enumerate(run.codes) if code != 0}
    if not failed:
        return 0
    reasons = {i: _worker_reason(run.logs[i], code) for i, code in failed.items()}
    if all(r.done for r in progress(c, storage)):  # the others finished and recovered its trials
        for i, reason in reasons.items():
            print(f"hpo: note: worker {i} {reason}; every cell still reached its target")
        return 0
    for reason in dict.fromkeys(reasons.values()):  # one line per distinct reason
        print(f"hpo: error: {reason} (logs in {logs})", file=sys.stderr)
    return run.exit_code


def _worker_reason(log_file: Path | None, code: int) -> str:
    """The worker's own one-line error from its log, or how it ended."""
    try:
        lines = log_file.read_text(errors="replace").splitlines() if log_file else []
    except OSError:
        lines = []
    for line in reversed(lines):
        if line.startswith("hpo: error: "):
            return line.removeprefix("hpo: error: ")
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _worker_storage(campaign, args):
    """The campaign's storage, or the proxy of ``--proxy`` / ``--proxy-file`` once it answers
    (with the token of ``--token-file``, TLS verified with ``--tls-ca``; both default to
    the campaign's)."""
    from hpo.proxy import connect
    from hpo.proxy_access import tls_ca, token_file
    from hpo.studies import open_campaign_storage

    if not (args.proxy or args.proxy_file):
        return open_campaign_storage(campaign)
    token = Path(args.token_file).resolve() if args.token_file else token_file(campaign)
    ca = Path(args.tls_ca).resolve() if args.tls_ca else tls_ca(campaign)
    where = {"url": args.proxy} if args.proxy else {"address_file": Path(args.proxy_file).resolve()}
    return connect(**where, patience=args.storage_patience, token=token, ca=ca)


def _check_device(campaign) -> None:
    """``search.device = "cuda"`` on a node whose torch sees no GPU: one error here, before
    any trial or final run (run, pipeline, worker, final; not create / validate / launch:
    a login node has no GPU)."""
    if campaign.search.device == "cuda":
        from objectives.devices import resolve_device

        resolve_device("cuda")


def cmd_worker(args) -> int:
    import optuna

    from hpo import products
    from hpo.cells import campaign_cells
    from hpo.data import ensure_data
    from hpo.errors import UsageError
    from hpo.objective import make_objective
    from hpo.preflight import check_data
    from hpo.pruners import make_pruner
    from hpo.samplers import make_sampler
    from hpo.studies import ensure_studies, preload
    from objectives.errors import DataError, HyperparameterError
    from workers.ids import unique_worker_id, worker_label
    from workers.worker import EXIT_FATAL, EXIT_REPEATED_ERROR, run_worker

    # a stop signal during start-up (SLURM's early time-limit warning) ends it at the next
    # safe point (main() handles the signals), before it takes a trial
    c = _campaign(args)
    _check_device(c)
    worker_id = args.worker_id or unique_worker_id(worker_label())
    storage = _worker_storage(c, args)
    ensure_data(c)
    # a file replaced after `hpo create` stops the worker here, not in trials
    check_data(c, cached=True, record=True)
    # templates and background flows before the first trial (each built once, by one worker)
    products.resolve(c, worker_id=worker_id)
    ensure_studies(c, storage)
    cells = campaign_cells(c)
    if args.cell:
        known = {cc.key for cc in cells} | {cc.study_name for cc in cells}
        for name in args.cell:
            if name not in known:
                raise UsageError(f"--cell {name}: no such cell in {c.path}")
        cells = [cc for cc in cells if cc.key in args.cell or cc.study_name in args.cell]
    targets = {cc.study_name: cc.target_trials for cc in cells}
    preload(storage, targets)

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

    def pruner_factory(study_name: str):
        s = c.search
        return make_pruner(s.pruner, p_threshold=s.pruner_p, startup=s.pruner_startup)

    try:
        summary = run_worker(
            storage,
            targets,
            make_objective(c),
            sampler_factory=sampler_factory,
            worker_id=worker_id,
            storage_patience=args.storage_patience,
            fatal=(DataError, HyperparameterError),
            pruner_factory=pruner_factory,
            count_pruned=c.search.count_pruned,
        )
    except optuna.exceptions.StorageInternalError as exc:  # waited out storage_patience
        print(f"hpo: error: storage unreachable, worker gave up: {exc}", file=sys.stderr)
        return EXIT_REPEATED_ERROR
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
    from hpo.final import FinalError, FinalIncomplete, final_groups, run_final, run_units

    c = _campaign(args)
    _check_device(c)
    show, tty = _progress_printer("final")

    filters = [
        *(a for cell in args.cell or () for a in ("--cell", cell)),
        *(a for src in args.source or () for a in ("--source", src)),
        *(a for st in args.statistics or () for a in ("--statistics", st)),
    ]
    if args.claim:  # one of the processes of `hpo final -w N`: trains, no summaries
        groups = final_groups(c, args.cell, args.source, args.statistics)
        run_units(c, groups, progress=show)
        return 0

    def argv(i: int) -> list[str]:
        return [sys.executable, "-m", "hpo", "final", str(c.path), "--claim", *filters]

    from hpo.holdout import holdout_text

    print(holdout_text(c), flush=True)
    try:
        summaries = run_final(
            c,
            cells=args.cell,
            sources=args.source,
            statistics=args.statistics,
            progress=show,
            workers=args.workers,
            worker_argv=argv,
        )
    except FinalError as exc:
        print(f"hpo: error: {exc}", file=sys.stderr)
        return 1
    except FinalIncomplete as exc:
        print(f"hpo: error: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    if tty:
        print(file=sys.stderr)
    print(f"{len(summaries)} summaries under {c.run_dir / 'final'}")
    return 0


def _progress_printer(what: str):
    """``show(done, total, text)``: in place on a terminal, plain lines in a log file."""
    tty = sys.stderr.isatty()

    def show(done: int, total: int, text: str) -> None:
        line = f"[{what} {done}/{total}] {text}"
        print(f"\r\033[K{line}" if tty else line, end="" if tty else "\n", file=sys.stderr)
        sys.stderr.flush()

    return show, tty


def cmd_bumphunt(args) -> int:
    from hpo.bumphunt import run_tasks, slurm_task
    from hpo.bumphunt_combine import combine, summary
    from hpo.config import writable_run_dir
    from hpo.errors import UsageError
    from hpo.preflight import check_data

    c = _campaign(args)
    if c.bumphunt is None:
        raise UsageError(f"{c.path}: no [bumphunt] section; the campaign has no bump hunt")
    show, tty = _progress_printer("bumphunt")
    if not args.combine:
        writable_run_dir(c)
        check_data(c, files_exist=False)
        tasks = [slurm_task()] if args.slurm_task else args.task
        ran = run_tasks(c, tasks, progress=show)
        if tty and ran:
            print(file=sys.stderr)
        if tasks is not None:  # one task of the scan (SLURM): the combine job follows
            print(f"bump hunt: {ran} units run in task(s) {tasks}")
            return 0
    if args.resubmit:
        from hpo.launch import resubmit_bumphunt

        done = resubmit_bumphunt(c)
        if done is not None:
            print(done)
            return 0
    written = combine(c)
    print(summary(c))
    print(f"{len(written)} files under {c.run_dir / 'bumphunt'}")
    return 0


def cmd_select(args) -> int:
    from hpo.select import describe, run_select

    c = _campaign(args)
    for summary in run_select(c):
        print(describe(summary))
    print(f"selection summaries under {c.run_dir / 'select'}")
    return 0


def cmd_report(args) -> int:
    from hpo.report import make_report

    c = _campaign(args)
    out = make_report(c)
    print(out.table)
    print(f"plots in {out.folder}")
    return 0


def _select_step(args) -> int:
    """``hpo select`` as a pipeline stage: skipped (with a note) without half statistics."""
    c = _campaign(args)
    if "half" not in c.final.statistics:
        print("hpo: note: no detector selection: final.statistics has no 'half'")
        return 0
    return cmd_select(args)


def cmd_pipeline(args) -> int:
    c = _campaign(args)
    steps = [cmd_run, cmd_export, cmd_final, _select_step, cmd_report]
    if c.bumphunt is not None:
        steps.append(cmd_bumphunt)
    for step in steps:
        rc = step(args)
        if rc:
            return rc
    print(
        f"\nhyperparameters: {c.run_dir / 'hp'}\nfinal summaries: {c.run_dir / 'final'}"
        f"\nselection:       {c.run_dir / 'select'}\nplots:           {c.run_dir / 'report'}"
        + (f"\nbump hunt:       {c.run_dir / 'bumphunt'}" if c.bumphunt is not None else "")
    )
    return 0


def cmd_methods(args) -> int:
    from hpo.catalog import catalog, format_json, format_text

    rows = catalog(args.names)
    print(format_json(rows) if args.json else format_text(rows))
    return 0


def cmd_status(args) -> int:
    from hpo.status import campaign_status

    print(campaign_status(_campaign(args)))
    return 0


def cmd_launch(args) -> int:
    from hpo.launch import launch

    c = _campaign(args)
    _warn_shared_journal(c)
    _check_methods(c)  # before anything is submitted
    if args.resume:
        from hpo.launch import resume

        print(resume(c))
        return 0
    print(launch(c, dry_run=args.dry_run))
    return 0


def cmd_proxy(args) -> int:
    from hpo.errors import UsageError
    from hpo.proxy import serve

    c = _campaign(args)
    address = Path(args.address_file).resolve() if args.address_file else None
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key: give both (the proxy's TLS) or neither")
    cert = args.tls_cert or c.slurm.proxy_tls_cert
    key = args.tls_key or c.slurm.proxy_tls_key
    return serve(
        c,
        host=args.host,
        port=args.port,
        advertise=args.advertise,
        threads=args.threads,
        address=address,
        until_workers_end=args.until_workers_end,
        expose=args.expose,
        token=Path(args.token_file).resolve() if args.token_file else None,
        tls=(Path(cert).resolve(), Path(key).resolve()) if cert else None,
    )


def cmd_dashboard(args) -> int:
    from hpo.dashboard import serve

    return serve(_campaign(args), host=args.host, port=args.port, expose=args.expose)


def cmd_repair(args) -> int:
    from hpo.errors import UsageError
    from storage.addresses import JOURNAL_SCHEME, parse_journal_path, redact, scheme
    from storage.journal import rewrite_journal

    c = _campaign(args)
    if scheme(c.storage) != JOURNAL_SCHEME:
        raise UsageError(f"hpo repair rewrites journal files; {c.name} uses {redact(c.storage)}")
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


def _number(convert, expected: str, ok):
    """An argparse type: ``convert`` the text, then check it (one message shape)."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {value}")
        return value

    return parse


_positive_int = _number(int, "a whole number >= 1", lambda v: v >= 1)
_positive_float = _number(float, "a number > 0", lambda v: v > 0)
_port = _number(int, "a port number in 0..65535", lambda v: 0 <= v <= 65535)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="hpo",
        description="Hyperparameter optimisation of weakly supervised anomaly detectors "
        "(IAD / CWoLa / CATHODE classifiers; ANODE / R-ANODE density methods; dSVDD / "
        "DROCC / DDD unsupervised detectors on DarkMachines events) with label-free "
        "selection metrics (ARGOS, BCE; val_loss for density methods, perturb_auc for "
        "unsupervised ones).",
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
    sp.add_argument(
        "--worker-id",
        help="worker id, unique per process (default: the SLURM task or 'worker', then "
        "@host-pid-random)",
    )
    sp.add_argument(
        "--storage-patience",
        type=_positive_float,
        default=300.0,
        metavar="S",
        help="seconds a storage (or proxy) outage is waited out before giving up (300)",
    )
    via = sp.add_mutually_exclusive_group()
    via.add_argument("--proxy", metavar="URL", help="reach the storage through this grpc:// proxy")
    via.add_argument(
        "--proxy-file",
        metavar="PATH",
        help="reach the storage through the proxy whose address `hpo proxy` writes here",
    )
    sp.add_argument(
        "--token-file",
        metavar="PATH",
        help="the proxy's token (owner-only file; default <run_dir>/slurm/proxy.token)",
    )
    sp.add_argument(
        "--tls-ca",
        metavar="PEM",
        help="verify the proxy's TLS certificate with this CA (default: [slurm] proxy_tls_ca "
        "or proxy_tls_cert; none: plain gRPC)",
    )
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
    sp.add_argument(
        "-w",
        "--workers",
        type=_positive_int,
        default=1,
        help="train independent final runs in this many processes (default 1)",
    )
    sp.add_argument("--claim", action="store_true", help=argparse.SUPPRESS)
    add(
        "select",
        cmd_select,
        "pick the best detector per final run and group by ARGOS / BCE (label-free) and truth",
    )
    add("report", cmd_report, "plots (PNG + PDF) and a table from the final summaries")
    sp = add(
        "bumphunt",
        cmd_bumphunt,
        "the sliding-window bump hunt: train every (window, fold, run) unit not done yet, "
        "then the cut and count, results.json and plots",
    )
    how = sp.add_mutually_exclusive_group()
    how.add_argument(
        "--task",
        type=int,
        action="append",
        metavar="T",
        help="only the units of task T = window index x folds + fold (no combine); repeat",
    )
    how.add_argument(
        "--slurm-task",
        action="store_true",
        help="only the task of this SLURM array task (SLURM_ARRAY_TASK_ID; no combine)",
    )
    how.add_argument("--combine", action="store_true", help="only the cut and count and plots")
    sp.add_argument(
        "--resubmit",
        action="store_true",
        help="with --combine, on SLURM: submit the tasks with missing units again instead of "
        "failing (at most [bumphunt] retries times)",
    )
    sp = add(
        "pipeline",
        cmd_pipeline,
        "create, run, export, final, select and report in one go (and the bump hunt: [bumphunt])",
    )
    sp.add_argument(
        "-w", "--workers", type=_positive_int, default=2, help="worker processes (default 2)"
    )
    sp.set_defaults(
        yaml=None, require_complete=False, cell=None, source=None, statistics=None, claim=False
    )
    sp.set_defaults(task=None, slurm_task=False, combine=False, resubmit=False)
    add("status", cmd_status, "trials per cell, SLURM job states and where the outputs are")
    add(
        "repair",
        cmd_repair,
        "rewrite a damaged journal from its valid records (stop the workers first; "
        "the original is kept as a backup)",
    )
    sp = add("launch", cmd_launch, "submit the SLURM chain: worker array, pick-best, final runs")
    sp.add_argument("--dry-run", action="store_true", help="print scripts and sbatch commands")
    sp.add_argument(
        "--resume",
        action="store_true",
        help="re-submit only the jobs of the last launch that did not complete",
    )
    sp = add(
        "proxy",
        cmd_proxy,
        "serve the campaign's PostgreSQL storage to workers over gRPC (few connections)",
    )
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every node)")
    sp.add_argument("--port", type=_port, default=0, help="port (default 0: any free port)")
    sp.add_argument(
        "--advertise",
        metavar="HOST",
        help="host name workers use (default: --host, or this machine's name for 0.0.0.0)",
    )
    sp.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="server threads = database connections at most (default 8)",
    )
    sp.add_argument("--address-file", metavar="PATH", help="write the proxy's grpc:// URL here")
    sp.add_argument(
        "--expose",
        action="store_true",
        help="allow a non-loopback --host (clients still need the token; add TLS)",
    )
    sp.add_argument(
        "--token-file",
        metavar="PATH",
        help="clients must send the token in this owner-only file (default "
        "<run_dir>/slurm/proxy.token, written if missing)",
    )
    sp.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate (chain)")
    sp.add_argument("--tls-key", metavar="PEM", help="... and this private key")
    sp.add_argument(
        "--until-workers-end",
        action="store_true",
        help="stop once the worker array recorded by `hpo launch` has ended",
    )
    sp = add("dashboard", cmd_dashboard, "serve optuna-dashboard on the campaign's storage")
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sp.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    sp.add_argument(
        "--expose",
        action="store_true",
        help="allow a non-loopback --host (the dashboard has no authentication)",
    )
    sp = sub.add_parser(
        "methods",
        help="every method this environment can see: family, modes, metrics, "
        "hyperparameters, search ranges",
        description="List the built-in methods and those of installed packages (entry "
        "points of wsad_hpo.methods): what grid.classifiers may name.",
    )
    sp.set_defaults(func=cmd_methods)
    sp.add_argument("names", nargs="*", help="only these methods (a name or 'module:attribute')")
    sp.add_argument("--json", action="store_true", help="print JSON instead of text")
    db = sub.add_parser("db", help="storage maintenance")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbsub.add_parser("upgrade", help="apply Optuna's schema migrations to the storage")
    up.add_argument("campaign", help="campaign TOML file")
    up.set_defaults(func=cmd_db_upgrade)
    return p


#: Exit codes (every command): 0 done; 1 a failure (a worker's repeated error, a final
#: process that failed); 2 a user error (one line ``hpo: error: ...``); 3 incomplete
#: (final runs held by another live process); 128 + signal after a stop signal (SIGINT
#: 130, SIGUSR1 138, SIGTERM 143: ``hpo: stopped by SIG...; rerun to resume``).
EXIT_INCOMPLETE = 3

#: Commands that stop cleanly on SIGINT / SIGTERM / SIGUSR1 (Ctrl-C, scancel, SLURM's
#: time-limit warning): the signal is recorded, passed on to every child process, and the
#: work stops at its next safe point (between trials, runs, repetitions, ensemble members,
#: at the end of an epoch). What finished is on disk (atomic writes); running the command
#: again resumes.
STOPPABLE = (
    *("run", "worker", "pipeline", "final", "bumphunt"),  # they train (or start workers)
    *("create", "export", "select", "report"),
)


def _stop_line(args, signum: int) -> str:
    name = signal.Signals(signum).name
    return (
        f"hpo: stopped by {name}; rerun to resume (hpo {args.command} {args.campaign}); "
        "what finished is kept"
    )


def _run_stoppable(args) -> int:
    """Run the command with stop signals handled at safe points; one line if stopped."""
    from workers.signals import (
        EXIT_CODES,
        WorkerInterrupted,
        handle_signals,
        interruptible,
        received_signal,
    )

    try:
        with handle_signals(), interruptible():
            rc = _run(args)
            signum = received_signal()  # a stop the command saw itself, or after its work
    except WorkerInterrupted as exc:
        signum = exc.signum
    if signum is None:
        return rc
    print(_stop_line(args, signum), file=sys.stderr, flush=True)
    return EXIT_CODES[signum]


def _run(args) -> int:
    """Set up logging and warnings, run the command; user errors as one line (exit 2)."""
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("numexpr").setLevel(logging.WARNING)  # "defaulting to N threads"
    # a lost database connection is reported once by the worker ("storage unreachable,
    # retrying"), not by SQLAlchemy's pool with a traceback
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
    import optuna

    # warnings a user can do nothing about (Optuna's experimental APIs, SQLAlchemy's pool)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", module="sqlalchemy")

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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hpo`` console script."""
    args = build_parser().parse_args(argv)
    try:
        # the handlers go in before the heavy imports: a signal during start-up is not lost
        return _run_stoppable(args) if args.command in STOPPABLE else _run(args)
    except BrokenPipeError:
        return _reader_gone()


#: exit code when the reader of stdout went away (``hpo methods | head``), as a shell's
EXIT_BROKEN_PIPE = 128 + 13


def _reader_gone() -> int:
    """Stop quietly after stdout's reader closed the pipe: nothing more to say, to no one.

    stdout is pointed at /dev/null so that the interpreter's final flush cannot raise
    again (the recipe of Python's ``signal`` documentation).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
