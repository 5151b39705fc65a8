"""deploy/dashboard.sh and ``hpo dashboard`` for real: optuna-dashboard on a campaign's
journal study, its HTTP API, and a headless Chromium screenshot of the study page.

Run with ``.venv/bin/pytest -m dashboard tests/test_dashboard.py`` (about 20 s; needs
Debian's ``chromium``, installed by deploy/install-system-deps.sh). The screenshot is
kept as ``<tmp>/study.png``; set ``WSAD_DASHBOARD_SHOT=path.png`` to copy it somewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import numpy as np
import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna_dashboard import save_note

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

pytestmark = [pytest.mark.dashboard]

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "deploy/dashboard.sh"
CHROMIUM = "/usr/bin/chromium"
STUDY = "demo.HGB-IAD-norot-N1000-baseline"  # the default grid's one cell
NOTE = "**cell**: HGB, IAD, rotation, N=1000 signal events, baseline features"
ATTRS = [  # (value = argos, bce, max_sic) of the three trials
    (0.61, 0.690, 4.2),
    (0.74, 0.671, 7.9),
    (0.58, 0.693, 2.5),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read()


def _campaign(folder: Path, name: str, storage: str = "journal:optuna.journal") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f'[campaign]\nname = "{name}"\nrun_dir = "{folder}"\nstorage = "{storage}"\n')
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Campaign ``demo``: a journal study with 3 trials, user attrs, metric names, a note
    and a PNG artifact, in ``<run_dir>/optuna.journal`` and ``<run_dir>/artifacts``."""
    run = tmp_path_factory.mktemp("dash")
    _campaign(run, "demo")
    storage = JournalStorage(JournalFileBackend(str(run / "optuna.journal")))
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["argos"])
    study.set_user_attr("cell", "HGB-IAD-norot-N1000-baseline")
    for i, (argos, bce, sic) in enumerate(ATTRS):
        trial = study.ask()
        trial.suggest_float("learning_rate", 0.01, 0.3, log=True)
        trial.suggest_int("max_leaf_nodes", 8, 64)
        trial.set_user_attr("bce", bce)
        trial.set_user_attr("max_sic", sic)
        trial.set_user_attr("run", i)
        study.tell(trial, argos)
    save_note(study, NOTE)

    rng = np.random.default_rng(0)
    eff = np.sort(rng.uniform(0.01, 1.0, 50))
    fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
    ax.plot(eff, eff / np.sqrt(eff**1.5), label="SIC")
    ax.set_xlabel("signal efficiency")
    ax.legend()
    fig.savefig(run / "sic.png")
    plt.close(fig)
    (run / "artifacts").mkdir()
    store = FileSystemArtifactStore(str(run / "artifacts"))
    upload_artifact(
        artifact_store=store,
        file_path=str(run / "sic.png"),
        study_or_trial=study,
        mimetype="image/png",
    )
    return run


@pytest.fixture(scope="module")
def dashboard(run_dir: Path) -> Iterator[str]:
    """Start deploy/dashboard.sh on a free port; yields the base URL; stops it after."""
    port = _free_port()
    state = run_dir / "state"
    argv = [str(SCRIPT), str(run_dir / "demo.toml"), "--port", str(port), "--state-dir", str(state)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"http://127.0.0.1:{port}/dashboard"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run(
            [str(SCRIPT), "--stop", "--port", str(port), "--state-dir", str(state)],
            check=True,
            timeout=30,
        )
        assert not (state / f"dashboard-{port}.pid").exists()


def _study_id(base: str) -> int:
    studies = json.loads(_get(f"{base}/api/studies"))["study_summaries"]
    matching = [s["study_id"] for s in studies if s["study_name"] == STUDY]
    assert len(matching) == 1, studies
    return matching[0]


def test_api_lists_the_study_trials_attrs_note_and_artifact(dashboard: str, run_dir: Path) -> None:
    study_id = _study_id(dashboard)
    detail = json.loads(_get(f"{dashboard}/api/studies/{study_id}"))
    assert detail["name"] == STUDY
    assert detail["directions"] == ["maximize"]
    assert detail["objective_names"] == ["argos"]
    assert detail["note"]["body"] == NOTE
    assert {"key": "cell", "value": "HGB-IAD-norot-N1000-baseline"} in detail["user_attrs"]
    trials = detail["trials"]
    assert [t["state"] for t in trials] == ["Complete"] * 3
    assert [t["values"] for t in trials] == [[a] for a, _, _ in ATTRS]
    attrs = [{a["key"]: a["value"] for a in t["user_attrs"]} for t in trials]
    assert [float(a["max_sic"]) for a in attrs] == [s for _, _, s in ATTRS]
    assert detail["best_trials"][0]["number"] == 1
    # the artifact store is wired in: the PNG comes back byte for byte
    (artifact,) = detail["artifacts"]
    assert artifact["mimetype"] == "image/png"
    body = _get(f"{dashboard}/artifacts/{study_id}/{artifact['artifact_id']}")
    assert body == (run_dir / "sic.png").read_bytes()


def test_script_rejects_passwords_missing_studies_and_open_hosts(tmp_path: Path) -> None:
    """The script defers to ``hpo dashboard``: the campaign's rules, one line, nothing created."""
    cases = {
        _campaign(tmp_path, "pw", "postgresql+psycopg2://wsad:secret@localhost:5432/db"): (
            "contains a password",
            [],
        ),
        _campaign(tmp_path, "fresh"): ("has no studies yet", []),
        _campaign(tmp_path, "redis", "redis://localhost"): ("unsupported scheme", []),
        _campaign(tmp_path, "open"): ("not a loopback address", ["--host", "0.0.0.0"]),
    }
    for campaign, (message, extra) in cases.items():
        proc = subprocess.run(
            [str(SCRIPT), str(campaign), "--state-dir", str(tmp_path / "state"), *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode != 0
        assert message in proc.stderr
        assert "secret" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "optuna.journal").exists()  # a campaign never created stays so


def test_headless_chromium_renders_the_study_page(dashboard: str, run_dir: Path) -> None:
    from conftest import unavailable
    from PIL import Image

    if not Path(CHROMIUM).exists():
        unavailable("chromium is not installed (run deploy/install-system-deps.sh)")

    url = f"{dashboard}/dashboard/studies/{_study_id(dashboard)}"
    shot = run_dir / "study.png"
    common = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--virtual-time-budget=8000",
    ]
    env = {**os.environ, "HOME": str(run_dir)}
    subprocess.run(
        [*common, f"--user-data-dir={run_dir / 'chrome1'}", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=120,
        check=True,
        env=env,
    )
    dom = subprocess.run(
        [*common, f"--user-data-dir={run_dir / 'chrome2'}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    ).stdout
    if os.environ.get("WSAD_DASHBOARD_SHOT"):
        shutil.copy(shot, os.environ["WSAD_DASHBOARD_SHOT"])

    # a rendered page, not a blank or an error page: large, many colours, our study's text
    assert shot.stat().st_size > 30_000
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 1000)
    colours = image.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 200
    assert STUDY in dom
    assert "argos" in dom  # the objective name, rendered by the React app
    assert "Not Found" not in dom


@pytest.mark.postgres
def test_dashboard_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """The same script on the test PostgreSQL: password from ~/.pgpass, not the URL."""
    from storage.urls import open_storage

    assert ":" not in postgres_url.split("://", 1)[1].split("@")[0]  # no password in it
    storage = open_storage(postgres_url)
    campaign = f"dash-{uuid.uuid4().hex[:10]}"
    name = f"{campaign}.HGB-IAD-norot-N1000-baseline"  # the default grid's one cell
    study = optuna.create_study(study_name=name, storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=2)
    port = _free_port()
    state = tmp_path / "state"
    toml = _campaign(tmp_path, campaign, postgres_url)
    try:
        proc = subprocess.run(
            [str(SCRIPT), str(toml), "--port", str(port), "--state-dir", str(state)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        base = f"http://127.0.0.1:{port}"
        studies = json.loads(_get(f"{base}/api/studies"))["study_summaries"]
        (study_id,) = [s["study_id"] for s in studies if s["study_name"] == name]
        detail = json.loads(_get(f"{base}/api/studies/{study_id}"))
        assert [t["state"] for t in detail["trials"]] == ["Complete", "Complete"]
    finally:
        subprocess.run(
            [str(SCRIPT), "--stop", "--port", str(port), "--state-dir", str(state)], timeout=30
        )
        optuna.delete_study(study_name=name, storage=storage)
