"""Pure parts of workers/slurm.py: sbatch rendering (golden files), option checks, parsing.

Golden files: tests/golden/<name>.sbatch hold the exact rendered scripts. After an
intended change to a template or to the rendering, re-record them with

    WSAD_RERECORD_GOLDEN=1 .venv/bin/pytest tests/test_slurm_render.py

then read the diff of tests/golden/ before committing it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from workers.slurm import (
    KINDS,
    SlurmError,
    SlurmOptions,
    job_finished,
    job_states,
    parse_sacct,
    render_sbatch,
    sbatch_argv,
    submit,
    valid_time,
)

GOLDEN = Path(__file__).parent / "golden"
RERECORD = os.environ.get("WSAD_RERECORD_GOLDEN") == "1"

FULL = SlurmOptions(
    job_name="demo-worker",
    partition="gpu",
    account="phys123",
    time="01:30:00",
    cpus_per_task=2,
    mem="8G",
    array_size=16,
    array_parallel=4,
    log_dir="/scratch/runs/demo/logs",
    signal="USR1@90",
    setup=("module load python/3.11", "source /home/me/wsad/.venv/bin/activate"),
    extra=("--gres=gpu:1", "#SBATCH --constraint=a100"),
)
COMMAND = ["hpo", "worker", "/scratch/runs/demo/campaign.toml", "--worker-id", "a b"]

CASES = {
    "worker-full": (FULL, "worker", COMMAND),
    "worker-minimal": (SlurmOptions(), "worker", ["hpo", "worker", "c.toml"]),
    "pick-best": (FULL, "pick-best", ["hpo", "export", "c.toml", "--require-complete"]),
    "final": (
        SlurmOptions(job_name="demo-final", time=240, log_dir="logs"),
        "final",
        ["hpo", "final", "c.toml"],
    ),
    "bumphunt": (
        SlurmOptions(job_name="demo-bumphunt", array_size=45, array_parallel=8, log_dir="logs"),
        "bumphunt",
        ["hpo", "bumphunt", "--slurm-task", "c.toml"],
    ),
    "combine": (
        SlurmOptions(job_name="demo-bumphunt-combine", time=60, log_dir="logs"),
        "combine",
        ["hpo", "bumphunt", "--combine", "--resubmit", "c.toml"],
    ),
    "select": (
        SlurmOptions(job_name="demo-select", time="04:00:00", log_dir="logs"),
        "select",
        ["hpo", "select", "c.toml"],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_matches_golden(name: str) -> None:
    options, kind, command = CASES[name]
    text = render_sbatch(options, command, kind=kind)
    path = GOLDEN / f"{name}.sbatch"
    if RERECORD:
        path.write_text(text)
    assert path.exists(), f"missing {path}; run with WSAD_RERECORD_GOLDEN=1 to record it"
    assert text == path.read_text()


def test_render_is_a_readable_script_that_execs_the_quoted_command() -> None:
    text = render_sbatch(FULL, COMMAND, kind="worker")
    lines = text.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines
    # the command is exec'd (worker = batch shell) and shell-quoted
    assert lines[-1] == "exec " + shlex.join(COMMAND)
    assert shlex.split(lines[-1])[1:] == COMMAND
    # B: prefix added: the signal goes to the batch shell, which is the exec'd worker
    assert "#SBATCH --signal=B:USR1@90" in lines
    assert "#SBATCH --array=0-15%4" in lines
    # flags sorted by name, extra lines after them in the given order
    flags = [ln for ln in lines if ln.startswith("#SBATCH")]
    names = [ln.split("=")[0] for ln in flags[:-2]]
    assert names == sorted(names)
    assert flags[-2:] == ["#SBATCH --gres=gpu:1", "#SBATCH --constraint=a100"]
    # setup lines run before the command, with nounset off around them
    assert lines.index("set +u") < lines.index("module load python/3.11") < lines.index("set -u")


@pytest.mark.parametrize("kind", KINDS)
def test_rendered_scripts_are_valid_bash(kind: str, tmp_path: Path) -> None:
    script = tmp_path / "job.sbatch"
    script.write_text(render_sbatch(FULL, COMMAND, kind=kind))
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_only_the_worker_is_an_array_and_logs_are_named_by_job() -> None:
    worker = render_sbatch(FULL, ["true"], kind="worker")
    pick = render_sbatch(FULL, ["true"], kind="pick-best")
    assert "--array=" not in pick
    assert "#SBATCH --output=/scratch/runs/demo/logs/%x-%A_%a.out" in worker.splitlines()
    assert "#SBATCH --output=/scratch/runs/demo/logs/%x-%j.out" in pick.splitlines()


def test_resubmitted_array_tasks_override_the_scripts_array() -> None:
    argv = sbatch_argv("bumphunt.sbatch", array="3,7%2")
    assert argv == ["sbatch", "--parsable", "--array=3,7%2", "bumphunt.sbatch"]
    with pytest.raises(ValueError, match="array: must be like '3,7' or '0-4%2'"):
        sbatch_argv("bumphunt.sbatch", array="3;rm -rf /")


def test_already_batch_signal_is_not_doubled() -> None:
    text = render_sbatch(SlurmOptions(signal="B:TERM@60"), ["true"])
    assert "#SBATCH --signal=B:TERM@60" in text.splitlines()


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("120", True),
        (120, True),
        ("30:00", True),
        ("02:00:00", True),
        ("100:00:00", True),
        ("1-00", True),
        ("2-12:30", True),
        ("2-12:30:15", True),
        ("99:99:99", False),
        ("01:60:00", False),
        ("10:75", False),
        ("1-24", False),
        ("0", False),
        ("00:00:00", False),
        ("90 minutes", False),
        ("", False),
        (True, False),
    ],
)
def test_one_time_rule_for_campaigns_and_scripts(tmp_path, value: object, ok: bool) -> None:
    """``slurm.time`` in a campaign and ``SlurmOptions.time`` accept exactly the same values."""
    from hpo.config import ConfigError, load_campaign

    assert valid_time(value) is ok
    if ok:
        assert f"#SBATCH --time={value}" in render_sbatch(SlurmOptions(time=value), ["true"])
    else:
        with pytest.raises(ValueError, match="SlurmOptions.time"):
            SlurmOptions(time=value)
    if isinstance(value, str):
        path = tmp_path / "c.toml"
        path.write_text(f'[campaign]\nname = "t"\n[slurm]\ntime = "{value}"\n')
        if ok:
            assert load_campaign(path).slurm.time == value
        else:
            with pytest.raises(ConfigError, match="slurm.time"):
                load_campaign(path)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("time", "90 minutes", "SlurmOptions.time"),
        ("time", 0, "SlurmOptions.time"),
        ("cpus_per_task", 0, "SlurmOptions.cpus_per_task"),
        ("array_size", True, "SlurmOptions.array_size"),
        ("array_parallel", 0, "SlurmOptions.array_parallel"),
        ("mem", "8 GB", "SlurmOptions.mem"),
        ("signal", "USR1", "SlurmOptions.signal"),
        ("job_name", "my job", "SlurmOptions.job_name"),
        ("partition", "a;rm -rf", "SlurmOptions.partition"),
        ("setup", "module load x", "SlurmOptions.setup"),
        ("setup", ["a\nb"], "SlurmOptions.setup[0]"),
        ("extra", ["gres=gpu:1"], "SlurmOptions.extra[0]"),
    ],
)
def test_bad_options_are_rejected_naming_the_field(field: str, value: object, needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("[", r"\[")) as info:
        SlurmOptions(**{field: value})
    given = value[0] if isinstance(value, list) else value
    assert repr(given) in str(info.value)


def test_unknown_options_are_rejected_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown option.*gpus.*valid options are.*partition"):
        SlurmOptions.from_mapping({"partition": "debug", "gpus": 1})
    opts = SlurmOptions.from_mapping({"partition": "debug", "setup": ["module load x"]})
    assert opts.setup == ("module load x",)


def test_render_rejects_bad_kind_and_command() -> None:
    with pytest.raises(ValueError, match="kind must be one of worker, pick-best, final"):
        render_sbatch(SlurmOptions(), ["true"], kind="array")
    with pytest.raises(ValueError, match="argv list"):
        render_sbatch(SlurmOptions(), "hpo worker")  # type: ignore[arg-type]


def test_sbatch_argv() -> None:
    assert sbatch_argv("w.sbatch") == ["sbatch", "--parsable", "w.sbatch"]
    assert sbatch_argv("p.sbatch", dependency="afterany:123") == [
        "sbatch",
        "--parsable",
        "--dependency=afterany:123",
        "--kill-on-invalid-dep=yes",
        "p.sbatch",
    ]
    assert sbatch_argv("f.sbatch", dependency="afterok:124:125,afterany:7_1")[2] == (
        "--dependency=afterok:124:125,afterany:7_1"
    )
    with pytest.raises(ValueError, match="dependency"):
        sbatch_argv("p.sbatch", dependency="afterany:$(reboot)")


# Literal sacct / squeue output as printed by SLURM 22.05 (sacct -n -P -o JobID,State,ExitCode).
SACCT = """\
123_[4-9%2]|PENDING|0:0
123_0|COMPLETED|0:0
123_0.batch|COMPLETED|0:0
123_0.extern|COMPLETED|0:0
123_1|CANCELLED by 0|0:15
123_1.batch|CANCELLED|0:15
123_2|TIMEOUT|0:0
123_3|RUNNING|0:0
124|PENDING|0:0
125|FAILED|3:0
125.batch|FAILED|3:0

126|OUT_OF_MEMORY|0:125
"""


def test_parse_sacct_literal_output() -> None:
    assert parse_sacct(SACCT) == {
        "123_[4-9%2]": "PENDING",
        "123_0": "COMPLETED",
        "123_1": "CANCELLED",
        "123_2": "TIMEOUT",
        "123_3": "RUNNING",
        "124": "PENDING",
        "125": "FAILED",
        "126": "OUT_OF_MEMORY",
    }


def test_parse_squeue_output_has_the_same_shape() -> None:
    text = "10_[2-5%2]|PENDING\n10_1|CANCELLED\n10_0|RUNNING\n11|COMPLETED\n"
    assert parse_sacct(text) == {
        "10_[2-5%2]": "PENDING",
        "10_1": "CANCELLED",
        "10_0": "RUNNING",
        "11": "COMPLETED",
    }
    with pytest.raises(ValueError, match="JobID\\|State"):
        parse_sacct("garbage line\n")


def test_job_finished_counts_unknown_and_pending_ranges_as_not_finished() -> None:
    states = parse_sacct(SACCT)
    assert not job_finished(states, "123")  # a pending range and a running task remain
    assert not job_finished(states, "124")
    assert job_finished(states, "125")
    assert not job_finished(states, "999")  # not found: not known to be finished
    assert not job_finished({"7": "REQUEUED"}, "7")
    assert not job_finished({"7": "SOME_NEW_STATE"}, "7")
    assert job_finished({"7_0": "COMPLETED", "7_1": "CANCELLED", "70": "RUNNING"}, "7")


def test_missing_slurm_tools_give_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "w.sbatch"
    script.write_text(render_sbatch(SlurmOptions(), ["true"]))
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, sacct, squeue there
    with pytest.raises(SlurmError, match="sbatch: not found on PATH.*deploy/slurm-up.sh"):
        submit(script)
    with pytest.raises(SlurmError, match="squeue: not found on PATH"):
        job_states(["12"])
    with pytest.raises(ValueError, match="job id must be like"):
        job_states(["12; rm -rf /"])
