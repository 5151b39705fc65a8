"""SLURM job scripts and job state, submitit-style: plain sbatch files, read back with one call.

The scheduler is never hidden: :func:`render_sbatch` is a pure function from
:class:`SlurmOptions` and an argv to the text of a readable bash script (templates in
``workers/templates/``, also reachable as ``deploy/templates/``); :func:`submit`,
:func:`job_states` and :func:`cancel` are thin wrappers around ``sbatch``, ``sacct`` /
``squeue`` and ``scancel``, each a single subprocess call taking an argv list.

Signals: the rendered script ``exec``\\ s the command, so the Python worker *is* the batch
shell. ``--signal`` is therefore always rendered with the ``B:`` prefix (signal the batch
shell) and a time-limit warning (``USR1@90``) reaches the worker itself. SLURM sends it
up to 60 s *earlier* than asked (event resolution), never later.

Job state: ``sacct -X`` when accounting storage is configured; on clusters without it
(our one-node test cluster) ``squeue --states=all``, which still lists finished jobs for
``MinJobAge`` seconds. Both outputs are parsed by :func:`parse_sacct`. A state not known
to be terminal (or a job not found) counts as "not finished".

Example::

    opts = SlurmOptions(job_name="hpo-worker", time="01:00:00", array_size=8, array_parallel=4)
    text = render_sbatch(opts, ["hpo", "worker", "campaign.toml"], kind="worker")
    Path("worker.sbatch").write_text(text)
    job = submit("worker.sbatch")
    pick = submit("pick-best.sbatch", dependency=f"afterany:{job}")
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from workers.proc import CommandError, run

__all__ = [
    "ARRAY_KINDS",
    "KINDS",
    "TERMINAL_STATES",
    "SlurmError",
    "SlurmOptions",
    "cancel",
    "is_finished",
    "job_finished",
    "job_states",
    "parse_sacct",
    "render_sbatch",
    "sbatch_argv",
    "submit",
    "time_minutes",
    "valid_time",
]

KINDS = ("worker", "pick-best", "final", "select", "report", "proxy", "bumphunt", "combine")
"""Script kinds, one template each: the worker array, pick-best, the final runs, the
selection across detectors, the report, the storage proxy the array's workers talk to,
the bump hunt's array of (window, fold) tasks and its combine job."""
#: The kinds rendered as job arrays (``--array``, logs per array task).
ARRAY_KINDS = ("worker", "bumphunt")

TERMINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "TIMEOUT",
    }
)
"""Job states after which a job (or array task) never runs again."""

_TIME_RE = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d{2}))?(?::(\d{2}))?$")
TIME_RULE = "a SLURM time: minutes ('120'), 'MM:SS', 'HH:MM:SS', 'D-HH', 'D-HH:MM' or 'D-HH:MM:SS'"
_SIGNAL_RE = re.compile(r"^(B:)?(SIG)?[A-Z0-9]+@\d+$")
_MEM_RE = re.compile(r"^\d+[KMGT]?$")
_SAFE_VALUE_RE = re.compile(r"^[A-Za-z0-9_.,:@%/+=\-\[\]]+$")
_DEPENDENCY_RE = re.compile(r"^(after|afterany|afterok|afternotok|aftercorr)(:\d+(_\d+)?)+$")
_JOB_ID_RE = re.compile(r"^\d+(_\d+)?$")
_ARRAY_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*(%\d+)?$")
_TEMPLATES = Path(__file__).parent / "templates"  # package data, also deploy/templates


class SlurmError(CommandError):
    """A SLURM command failed or is missing; the message names the command and its error."""


@dataclass(frozen=True)
class SlurmOptions:
    """Everything that goes into the ``#SBATCH`` header and the environment setup.

    Empty strings / ``None`` mean "not requested" (the cluster default applies).
    ``time`` is minutes (int) or a SLURM time string (``"HH:MM:SS"``, ``"D-HH:MM"``).
    ``array_size`` and ``array_parallel`` give ``--array=0-(size-1)%parallel`` and are
    used only for the array kinds (``worker``, ``bumphunt``). ``log_dir`` holds the job
    logs (stdout and stderr together). ``setup`` lines (``module load ...``,
    ``source .venv/bin/activate``) run before the command; ``extra`` lines are
    additional ``#SBATCH`` flags, the escape hatch.
    """

    job_name: str = "wsad-hpo"
    partition: str = ""
    account: str = ""
    time: int | str = "02:00:00"
    cpus_per_task: int = 1
    #: GPUs per task (``--gres=gpu:N``); 0: none requested
    gpus_per_task: int = 0
    mem: str = ""
    array_size: int = 1
    array_parallel: int | None = None
    log_dir: str = "."
    chdir: str = ""
    signal: str = "USR1@90"
    setup: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Lists from a TOML file become tuples so the dataclass stays hashable.
        for name in ("setup", "extra"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise ValueError(f"SlurmOptions.{name}: must be a list of strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        _validate(self)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> SlurmOptions:
        """Build from a dict (e.g. a TOML table), rejecting unknown keys by name."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(
                f"SlurmOptions: unknown option(s) {', '.join(unknown)}; "
                f"valid options are {', '.join(valid)}"
            )
        return cls(**values)  # type: ignore[arg-type]


def valid_time(value: object) -> bool:
    """Whether ``value`` is a time limit SLURM accepts (the one rule of config and scripts).

    Minutes as an int >= 1 or a string; ``MM:SS``; ``HH:MM:SS``; ``D-HH``; ``D-HH:MM``;
    ``D-HH:MM:SS``; minutes and seconds after the first field below 60, hours with a day
    below 24, and not zero in all.
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 1
    match = _TIME_RE.match(value) if isinstance(value, str) else None
    if not match:
        return False
    days, first, second, third = match.groups()
    parts = [int(p) for p in (first, second, third) if p is not None]
    if days is not None:  # D-HH[:MM[:SS]]
        if parts[0] >= 24 or any(p >= 60 for p in parts[1:]):
            return False
    elif len(parts) == 2:  # MM:SS
        if parts[1] >= 60:
            return False
    elif len(parts) == 3 and (parts[1] >= 60 or parts[2] >= 60):  # HH:MM:SS
        return False
    return int(days or 0) + sum(parts) > 0


def time_minutes(value: int | str) -> int:
    """A valid SLURM time (see :func:`valid_time`) in whole minutes, rounded up."""
    if not valid_time(value):
        raise ValueError(f"time: must be {TIME_RULE}, got {value!r}")
    if isinstance(value, int):
        return value
    days, first, second, third = _TIME_RE.match(value).groups()
    parts = [int(p) for p in (first, second, third) if p is not None]
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = int(days) * 86400 + sum(p * f for p, f in zip(parts, (3600, 60, 1), strict=False))
    elif len(parts) == 1:  # minutes
        seconds = parts[0] * 60
    elif len(parts) == 2:  # MM:SS
        seconds = parts[0] * 60 + parts[1]
    else:  # HH:MM:SS
        seconds = parts[0] * 3600 + parts[1] * 60 + parts[2]
    return -(-seconds // 60)


def _validate(o: SlurmOptions) -> None:
    def bad(field: str, expected: str, got: object) -> ValueError:
        return ValueError(f"SlurmOptions.{field}: must be {expected}, got {got!r}")

    if not valid_time(o.time):
        raise bad("time", TIME_RULE, o.time)
    for name in ("cpus_per_task", "array_size"):
        value = getattr(o, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad(name, "an integer >= 1", value)
    gpus = o.gpus_per_task
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise bad("gpus_per_task", "an integer >= 0", gpus)
    if o.array_parallel is not None and (
        isinstance(o.array_parallel, bool)
        or not isinstance(o.array_parallel, int)
        or o.array_parallel < 1
    ):
        raise bad("array_parallel", "an integer >= 1 or None", o.array_parallel)
    if o.mem and not _MEM_RE.match(o.mem):
        raise bad("mem", "a memory size like '8G' or '500M' (or '' for the default)", o.mem)
    if not _SIGNAL_RE.match(o.signal):
        raise bad("signal", "a SLURM signal spec like 'USR1@90'", o.signal)
    if not o.job_name:
        raise bad("job_name", "a non-empty name", o.job_name)
    for name in ("job_name", "partition", "account", "log_dir", "chdir"):
        value = getattr(o, name)
        if not isinstance(value, str) or (value and not _SAFE_VALUE_RE.match(value)):
            raise bad(name, "a string without spaces, quotes or shell characters", value)
    for i, line in enumerate(o.setup):
        if not isinstance(line, str) or "\n" in line or not line.strip():
            raise bad(f"setup[{i}]", "a non-empty single-line shell command", line)
    for i, line in enumerate(o.extra):
        flag = line.removeprefix("#SBATCH").strip() if isinstance(line, str) else line
        if not isinstance(flag, str) or "\n" in flag or not flag.startswith("-"):
            raise bad(f"extra[{i}]", "one sbatch flag like '--gres=gpu:1'", line)


def _directives(o: SlurmOptions, kind: str) -> list[str]:
    """The ``#SBATCH`` lines: flags sorted by name, then the extra lines in given order."""
    pattern = "%x-%A_%a.out" if kind in ARRAY_KINDS else "%x-%j.out"
    flags: dict[str, str] = {
        "job-name": o.job_name,
        "time": str(o.time),
        "cpus-per-task": str(o.cpus_per_task),
        "output": f"{o.log_dir.rstrip('/') or '/'}/{pattern}".replace("//", "/"),
        "open-mode": "append",  # a requeued task appends to its log instead of truncating it
        "signal": o.signal if o.signal.startswith("B:") else f"B:{o.signal}",
    }
    if kind in ARRAY_KINDS:
        par = f"%{o.array_parallel}" if o.array_parallel else ""
        flags["array"] = f"0-{o.array_size - 1}{par}"
    for key, value in (
        ("partition", o.partition),
        ("account", o.account),
        ("mem", o.mem),
        ("chdir", o.chdir),
        ("gres", f"gpu:{o.gpus_per_task}" if o.gpus_per_task else ""),
    ):
        if value:
            flags[key] = value
    lines = [f"#SBATCH --{key}={flags[key]}" for key in sorted(flags)]
    lines += [f"#SBATCH {line.removeprefix('#SBATCH').strip()}" for line in o.extra]
    return lines


def _template(kind: str) -> str:
    return (_TEMPLATES / f"{kind}.sbatch").read_text()


def render_sbatch(options: SlurmOptions, command: Sequence[str], *, kind: str = "worker") -> str:
    """Render the sbatch script of ``kind`` (one of :data:`KINDS`) running ``command``.

    Pure: same inputs, same text. The command is shell-quoted and ``exec``'d, so the
    process it starts receives the ``--signal`` warning and SLURM's SIGTERM itself.
    """
    if kind not in KINDS:
        raise ValueError(f"render_sbatch: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if isinstance(command, str) or not command or not all(isinstance(a, str) for a in command):
        raise ValueError(f"render_sbatch: command must be a non-empty argv list, got {command!r}")
    if options.setup:
        setup = "\n".join(
            [
                "# environment setup ([slurm] setup); nounset is off while activation scripts run",
                "set +u",
                *options.setup,
                "set -u",
            ]
        )
    else:
        setup = "# no environment setup lines ([slurm] setup is empty)"
    values = {
        "directives": "\n".join(_directives(options, kind)),
        "setup": setup,
        "command": shlex.join(command),
    }
    text = _template(kind)
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    leftover = re.findall(r"\{\{\w+\}\}", text)
    if leftover:
        raise ValueError(f"template {kind}.sbatch: unknown placeholder(s) {leftover}")
    return text


# ----------------------------------------------------------------------------- subprocesses


def _run(argv: list[str], *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run one SLURM command via :func:`workers.proc.run` (exit code checked by callers)."""
    try:
        return run(argv, check=False, timeout=timeout)
    except CommandError as exc:
        if shutil.which(argv[0]) is None:
            raise SlurmError(
                f"{argv[0]}: not found on PATH; run this on a SLURM login node "
                "(deploy/slurm-up.sh starts a one-node test cluster)"
            ) from exc
        raise SlurmError(f"{shlex.join(argv)}: {exc}") from exc


def _fail(argv: list[str], proc: subprocess.CompletedProcess[str]) -> SlurmError:
    err = (proc.stderr or proc.stdout).strip() or "no output"
    return SlurmError(f"{shlex.join(argv)} failed (exit {proc.returncode}): {err}")


def sbatch_argv(
    script_path: str | Path, *, dependency: str | None = None, array: str | None = None
) -> list[str]:
    """The ``sbatch`` argv that :func:`submit` runs (pure; for ``--dry-run`` printing).

    ``dependency`` is a SLURM dependency like ``afterany:123`` or ``afterok:124``; a
    dependent job is cancelled if its dependency can never be satisfied, instead of
    pending forever. ``array`` (``"3,7%2"``) replaces the script's ``--array``: an
    array script submitted again for some of its tasks only.
    """
    argv = ["sbatch", "--parsable"]
    if array is not None:
        if not _ARRAY_RE.match(array):
            raise ValueError(f"array: must be like '3,7' or '0-4%2', got {array!r}")
        argv.append(f"--array={array}")
    if dependency is not None:
        for part in dependency.split(","):
            if not _DEPENDENCY_RE.match(part):
                raise ValueError(
                    "dependency: must be like 'afterany:123' or 'afterok:123:124', "
                    f"got {dependency!r}"
                )
        argv += [f"--dependency={dependency}", "--kill-on-invalid-dep=yes"]
    return [*argv, str(script_path)]


def submit(
    script_path: str | Path, *, dependency: str | None = None, array: str | None = None
) -> str:
    """Submit a script with ``sbatch --parsable`` and return the job id (e.g. ``"123"``)."""
    argv = sbatch_argv(script_path, dependency=dependency, array=array)
    if not Path(script_path).is_file():
        raise SlurmError(f"sbatch: script {script_path} does not exist")
    proc = _run(argv)
    if proc.returncode != 0:
        raise _fail(argv, proc)
    job_id = proc.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise SlurmError(f"{shlex.join(argv)}: expected a job id, got {proc.stdout!r}")
    return job_id


def cancel(job_id: str) -> None:
    """``scancel`` a job, a whole array (``"123"``) or one array task (``"123_4"``)."""
    if not _JOB_ID_RE.match(str(job_id)):
        raise ValueError(f"cancel: job id must be like '123' or '123_4', got {job_id!r}")
    argv = ["scancel", str(job_id)]
    proc = _run(argv)
    if proc.returncode != 0:
        raise _fail(argv, proc)


# ----------------------------------------------------------------------------- job state


def parse_sacct(text: str) -> dict[str, str]:
    """Parse ``sacct -n -P -o JobID,State[,ExitCode]`` (or ``squeue -o '%i|%T'``) output.

    Returns ``{job id as printed: state}``: ``"123"``, array tasks ``"123_4"``, pending
    array ranges ``"123_[5-9%2]"``. Step lines (``123.batch``, ``123_4.extern``) are
    skipped; ``"CANCELLED by 0"`` becomes ``"CANCELLED"``; blank lines are ignored.
    """
    states: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        fields = line.split("|")
        if len(fields) < 2:
            raise ValueError(f"parse_sacct: expected 'JobID|State[|...]', got {raw!r}")
        job_id, state = fields[0].strip(), fields[1].strip()
        if "." in job_id:  # a job step, not the job itself
            continue
        states[job_id] = state.split()[0] if state else "UNKNOWN"
    return states


def is_finished(state: str) -> bool:
    """True for terminal states; unknown or transitional states count as not finished."""
    return state in TERMINAL_STATES


def job_finished(states: Mapping[str, str], job_id: str) -> bool:
    """True if ``job_id`` (a job or a whole array) appears in ``states`` and all of it ended.

    A job absent from ``states`` is not (yet) known to be finished.
    """
    mine = [s for k, s in states.items() if k == job_id or k.startswith(f"{job_id}_")]
    return bool(mine) and all(is_finished(s) for s in mine)


def job_states(job_ids: Iterable[str]) -> dict[str, str]:
    """States of the given jobs (and all their array tasks) with one batched query.

    Uses ``sacct -X``; falls back to ``squeue --states=all`` where accounting storage
    is disabled. Jobs the scheduler no longer knows are absent from the result.
    """
    ids = sorted({str(j) for j in job_ids})
    if not ids:
        return {}
    for j in ids:
        if not _JOB_ID_RE.match(j):
            raise ValueError(f"job_states: job id must be like '123' or '123_4', got {j!r}")
    joined = ",".join(ids)
    argv = ["sacct", "-X", "-n", "-P", "-j", joined, "-o", "JobID,State,ExitCode"]
    try:
        proc = _run(argv)
    except SlurmError:
        proc = None  # no sacct on this machine: try squeue
    if proc is not None and proc.returncode == 0:
        return parse_sacct(proc.stdout)
    argv = ["squeue", "-h", "--states=all", "-j", joined, "-o", "%i|%T"]
    proc = _run(argv)
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return {}  # none of the ids is known (any more)
        raise _fail(argv, proc)
    return parse_sacct(proc.stdout)
