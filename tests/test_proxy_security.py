"""The storage proxy lets no one in who does not belong (issue 26 §5).

A proxy binds loopback unless told ``--expose``; every call needs the campaign's token
(an owner-only file, sent as gRPC metadata); only the campaign's own studies are served;
with a certificate it serves TLS to clients that verify it. Checked with real gRPC
channels: raw stubs (what any local process could send) and Optuna's own client.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import grpc
import optuna
import pytest
from _hpo_cli import REPO, hpo
from _storage_fixtures import delete_quietly
from optuna.storages import GrpcStorageProxy, InMemoryStorage
from optuna.storages._grpc.auto_generated import api_pb2, api_pb2_grpc

from storage.errors import StorageError
from storage.proxy import ProxyStorage, read_address, serve_backend
from storage.proxy_auth import ensure_token, read_token, server_credentials, token_metadata

OURS, THEIRS = "camp.HGB.IAD", "other-campaign.HGB.IAD"


def _token_file(folder: Path, name: str = "proxy.token") -> Path:
    path = folder / name
    ensure_token(path)
    return path


@pytest.fixture
def served(tmp_path):
    """A proxy on an in-memory storage holding our study (3 trials) and another's (1)."""
    backend = InMemoryStorage()
    ours = optuna.create_study(storage=backend, study_name=OURS, direction="maximize")
    theirs = optuna.create_study(storage=backend, study_name=THEIRS, direction="maximize")
    for i in range(3):
        ours.add_trial(optuna.trial.create_trial(value=float(i)))
    theirs.add_trial(optuna.trial.create_trial(value=9.0))
    token = _token_file(tmp_path)
    server = serve_backend(
        backend, host="127.0.0.1", port=0, threads=2, token=read_token(token), studies=[OURS]
    )
    channel = grpc.insecure_channel(server.url.removeprefix("grpc://"))
    yield {
        "server": server,
        "stub": api_pb2_grpc.StorageServiceStub(channel),
        "token": token,
        "ours": ours._study_id,
        "theirs": theirs._study_id,
        "their_trial": theirs.trials[0]._trial_id,
    }
    channel.close()
    server.stop()


def _foreign(url: str) -> GrpcStorageProxy:
    """Optuna's own gRPC client, as any local process could run it (no token)."""
    host, port = url.removeprefix("grpc://").rsplit(":", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return GrpcStorageProxy(host=host, port=int(port))


def _code(call, request, metadata=()) -> grpc.StatusCode:
    try:
        call(request, metadata=metadata, timeout=10)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_a_client_without_the_token_cannot_list_create_or_add(served) -> None:
    stub = served["stub"]
    complete = api_pb2.TrialState.COMPLETE
    calls = [
        (stub.GetAllStudies, api_pb2.GetAllStudiesRequest()),
        (stub.GetStudyIdFromName, api_pb2.GetStudyIdFromNameRequest(study_name=OURS)),
        (stub.CreateNewStudy, api_pb2.CreateNewStudyRequest(study_name="fake", directions=[1])),
        (stub.CreateNewTrial, api_pb2.CreateNewTrialRequest(study_id=served["ours"])),
        (stub.GetTrials, api_pb2.GetTrialsRequest(study_id=served["ours"])),
        (stub.SetTrialStateValues, api_pb2.SetTrialStateValuesRequest(trial_id=0, state=complete)),
    ]
    wrong = token_metadata("x" * 43)
    for call, request in calls:
        assert _code(call, request) == grpc.StatusCode.UNAUTHENTICATED
        assert _code(call, request, wrong) == grpc.StatusCode.UNAUTHENTICATED
    refused, why = served["server"].refused
    assert refused == 2 * len(calls) and why == "wrong token"
    with pytest.raises(grpc.RpcError) as info:
        optuna.load_study(study_name=OURS, storage=_foreign(served["server"].url))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_token_opens_only_the_campaigns_own_studies(served) -> None:
    stub, token = served["stub"], token_metadata(read_token(served["token"]))
    listed = stub.GetAllStudies(api_pb2.GetAllStudiesRequest(), metadata=token)
    assert [s.study_name for s in listed.studies] == [OURS]
    everything = api_pb2.GetTrialsRequest(study_id=served["ours"], trial_id_greater_than=-1)
    trials = stub.GetTrials(everything, metadata=token)
    assert len(trials.trials) == 3
    denied = grpc.StatusCode.PERMISSION_DENIED
    theirs, trial = served["theirs"], served["their_trial"]
    refused = [
        (stub.GetStudyIdFromName, api_pb2.GetStudyIdFromNameRequest(study_name=THEIRS)),
        (stub.CreateNewStudy, api_pb2.CreateNewStudyRequest(study_name="fake", directions=[1])),
        (stub.GetTrials, api_pb2.GetTrialsRequest(study_id=theirs)),
        (stub.GetStudyUserAttributes, api_pb2.GetStudyUserAttributesRequest(study_id=theirs)),
        (stub.CreateNewTrial, api_pb2.CreateNewTrialRequest(study_id=theirs)),
        (stub.GetTrial, api_pb2.GetTrialRequest(trial_id=trial)),
        (
            stub.SetTrialUserAttribute,
            api_pb2.SetTrialUserAttributeRequest(trial_id=trial, key="k", value="1"),
        ),
        (stub.DeleteStudy, api_pb2.DeleteStudyRequest(study_id=served["ours"])),
    ]
    for call, request in refused:
        assert _code(call, request, token) == denied, call
    # through the worker's client: one line naming what was refused
    client = ProxyStorage(served["server"].url, token_file=served["token"], timeout=10)
    assert client.get_study_id_from_name(OURS) == served["ours"]
    with pytest.raises(StorageError, match="refused: study 'other-campaign.HGB.IAD' is not one"):
        client.get_study_id_from_name(THEIRS)
    with pytest.raises(StorageError, match="a proxy serves its own campaign's studies only"):
        client.create_new_trial(theirs)
    study = optuna.load_study(study_name=OURS, storage=client)
    study.add_trial(optuna.trial.create_trial(value=5.0))
    assert len(study.trials) == 4
    client.close()


def test_a_worker_with_a_wrong_token_stops_in_one_line(served, tmp_path) -> None:
    other = _token_file(tmp_path, "other.token")
    with pytest.raises(StorageError) as info:
        ProxyStorage(served["server"].url, token_file=other).wait_ready(10)
    assert str(info.value) == (
        f"storage proxy {served['server'].url} refused this client: missing or wrong proxy "
        f"token; its token is not the one in {other}"
    )
    assert read_token(other) not in str(info.value)


def test_the_token_file_is_owner_only_and_one_token(tmp_path) -> None:
    old = os.umask(0)  # the token is owner-only whatever the umask
    try:
        path = _token_file(tmp_path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600
    token = read_token(path)
    assert len(token) >= 32 and ensure_token(path) == token  # kept, not replaced
    path.chmod(0o640)
    with pytest.raises(StorageError, match=r"mode 0640 lets others read it;.*chmod 600"):
        read_token(path)
    short = tmp_path / "short"
    short.write_text("abc\n")
    short.chmod(0o600)
    with pytest.raises(StorageError, match="not a token"):
        read_token(short)
    with pytest.raises(StorageError, match="missing"):
        read_token(tmp_path / "none")
    link = tmp_path / "link"
    link.symlink_to(path)
    path.chmod(0o600)
    with pytest.raises(StorageError, match="cannot read it"):
        read_token(link)  # not followed: a link could point anywhere


# ----------------------------------------------------------------------------- TLS
def _self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1 and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def test_tls_clients_verify_the_proxys_certificate(tmp_path) -> None:
    cert, key = _self_signed(tmp_path, "proxy")
    stranger, _ = _self_signed(tmp_path, "stranger")
    token = _token_file(tmp_path)
    backend = InMemoryStorage()
    optuna.create_study(storage=backend, study_name=OURS)
    server = serve_backend(
        backend,
        host="127.0.0.1",
        port=0,
        threads=2,
        token=read_token(token),
        studies=[OURS],
        credentials=server_credentials(cert, key),
    )
    try:
        good = ProxyStorage(server.url, token_file=token, tls_ca=cert, timeout=5)
        good.wait_ready(10)
        assert [s.study_name for s in good.get_all_studies()] == [OURS]
        good.close()
        for ca in (stranger, None):  # another CA's certificate expected; plain gRPC
            bad = ProxyStorage(server.url, token_file=token, tls_ca=ca, timeout=2)
            with pytest.raises(StorageError, match="not answering after 2 s"):
                bad.wait_ready(2)
            bad.close()
        assert server.requests_by_method == {"GetStudyIdFromName": 1, "GetAllStudies": 1}
    finally:
        server.stop()


# ----------------------------------------------------------------------------- hpo proxy
def test_hpo_proxy_binds_every_interface_only_with_expose(tmp_path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[campaign]\nname = "px"\nstorage = "postgresql+psycopg2://u@h:5432/db"\n')
    done = hpo("proxy", str(toml), "--host", "0.0.0.0")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("hpo: error: --host 0.0.0.0: not a loopback address;")
    assert "Add --expose" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()  # refused before anything: no token written


@pytest.mark.postgres
def test_hpo_status_is_not_fooled_by_a_foreign_client(postgres_url, tmp_path) -> None:
    """The issue's case: a local process added a COMPLETE trial through the proxy and
    `hpo status` showed 11/10. Here it is refused, with and without a token, and so is
    any look at another campaign's study."""
    from _chain_fixture import write_campaign

    from hpo.config import load_campaign
    from hpo.proxy_access import token_file
    from hpo.studies import create_studies

    toml = write_campaign(tmp_path, "sec", postgres_url, n_trials=10, metrics=["argos"])
    campaign = load_campaign(toml)
    rdb = optuna.storages.RDBStorage(postgres_url)
    (study,) = create_studies(campaign, rdb)
    for i in range(10):
        study.add_trial(optuna.trial.create_trial(value=i / 10))
    other = optuna.create_study(storage=rdb, study_name=f"{campaign.name}-other.HGB.IAD")
    other.add_trial(optuna.trial.create_trial(value=1.0))
    address, log = tmp_path / "proxy.json", tmp_path / "proxy.log"
    argv = [sys.executable, "-m", "hpo", "proxy", str(toml), "--address-file", str(address)]
    proc = subprocess.Popen(
        argv,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        cwd=REPO,  # noqa: SIM115
    )
    try:
        client = None
        while client is None:  # the proxy writes its address once it listens
            assert proc.poll() is None, log.read_text()
            url = read_address(address)
            client = url and ProxyStorage(url, token_file=token_file(campaign), timeout=10)
        client.wait_ready(60)
        assert token_file(campaign).stat().st_mode & 0o777 == 0o600
        foreign = _foreign(url)
        with pytest.raises(grpc.RpcError) as info:
            foreign.get_all_studies()
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError):
            foreign.create_new_trial(study._study_id, optuna.trial.create_trial(value=2.0))
        # with the token: the campaign's study only, and nothing of the other one
        assert [s.study_name for s in client.get_all_studies()] == [study.study_name]
        with pytest.raises(StorageError, match="refused"):
            client.get_all_trials(other._study_id)
        with pytest.raises(StorageError, match="refused"):
            client.create_new_trial(other._study_id, optuna.trial.create_trial(value=2.0))
        with pytest.raises(StorageError, match="refused"):
            optuna.create_study(storage=client, study_name=f"{campaign.name}-fake")
        client.close()
        status = hpo("status", str(toml))
        assert status.returncode == 0, status.stderr
        assert " 10/10 " in status.stdout and "11/10" not in status.stdout, status.stdout
        assert len(other.trials) == 1
        # the campaign with the proxy as its storage: reached with the campaign's token
        via = toml.with_name("via-proxy.toml")
        via.write_text(toml.read_text().replace(postgres_url, url))
        status = hpo("status", str(via))
        assert status.returncode == 0, status.stderr
        assert f"storage {url}" in status.stdout and " 10/10 " in status.stdout, status.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        for name in (study.study_name, other.study_name):
            delete_quietly(rdb, name)
    out = log.read_text()
    assert f"clients need the token in {token_file(campaign)}" in out
    assert read_token(token_file(campaign)) not in out


# ----------------------------------------------------------------------------- hpo launch
def _tls_campaign(tmp_path: Path, more: str) -> Path:
    from _chain_fixture import write_campaign

    cert, key = _self_signed(tmp_path, "node")
    lines = f'proxy = "job"\nproxy_tls_cert = "{cert}"\nproxy_tls_key = "{key}"\n{more}'
    return write_campaign(tmp_path, "tls", "postgresql+psycopg2://u@h:5432/db", slurm_more=lines)


def test_launch_renders_the_token_and_tls_for_proxy_and_workers(tmp_path) -> None:
    toml = _tls_campaign(tmp_path, "")
    done = hpo("launch", str(toml), "--dry-run")
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "run" / "slurm"
    token, cert, key = folder / "proxy.token", tmp_path / "node.pem", tmp_path / "node.key"
    proxy, worker = (folder / "proxy.sbatch").read_text(), (folder / "worker.sbatch").read_text()
    assert f"--expose --address-file {folder / 'proxy.json'} --token-file {token} " in proxy
    assert f"--tls-cert {cert} --tls-key {key} --until-workers-end" in proxy
    assert f"--token-file {token} --tls-ca {cert} {toml}" in worker  # self-signed: its own CA


def test_the_proxys_tls_fields_are_checked_before_anything_runs(tmp_path) -> None:
    from _chain_fixture import write_campaign

    cert, _ = _self_signed(tmp_path, "node")
    url = "postgresql+psycopg2://u@h:5432/db"
    cases = [
        (
            f'proxy = "job"\nproxy_tls_cert = "{cert}"\nproxy_tls_key = "{cert}"\n'
            'proxy_tls_ca = "nowhere.pem"',
            f"slurm.proxy_tls_ca: {tmp_path / 'nowhere.pem'}: no such file",
        ),
        (f'proxy = "job"\nproxy_tls_cert = "{cert}"', "slurm.proxy_tls_key: is required with"),
        (f'proxy_tls_ca = "{cert}"', "slurm.proxy_tls_ca: needs slurm.proxy"),
        (
            f'proxy = "grpc://node17:13000"\nproxy_tls_cert = "{cert}"\nproxy_tls_key = "{cert}"',
            "slurm.proxy_tls_cert: only for proxy = 'job'",
        ),
    ]
    for more, words in cases:
        toml = write_campaign(tmp_path, "tls", url, slurm_more=more)
        done = hpo("validate", str(toml))
        assert done.returncode == 2, done.stdout
        assert done.stderr.startswith(f"hpo: error: {toml}: {words}"), done.stderr


@pytest.mark.postgres
def test_launch_writes_one_owner_only_token_per_campaign(postgres_url, tmp_path, monkeypatch):
    from _chain_fixture import write_campaign

    import workers.slurm
    from hpo.config import load_campaign
    from hpo.launch import launch
    from hpo.proxy_access import token_file

    monkeypatch.setattr(workers.slurm, "submit", lambda path, **_: str(abs(hash(path)) % 10**6))
    toml = write_campaign(tmp_path, "tok", postgres_url, n_trials=2, slurm_more='proxy = "job"')
    campaign = load_campaign(toml)
    try:
        launch(campaign)
        token = token_file(campaign)
        assert token.stat().st_mode & 0o777 == 0o600
        first = read_token(token)
        launch(campaign)  # a second launch keeps it: running workers hold it
        assert read_token(token) == first
        for script in (campaign.run_dir / "slurm").glob("*.sbatch"):
            assert first not in script.read_text()
        worker = (campaign.run_dir / "slurm" / "worker.sbatch").read_text()
        assert f"--token-file {token} " in worker
    finally:
        from hpo.cells import campaign_cells

        rdb = optuna.storages.RDBStorage(postgres_url)
        for cc in campaign_cells(campaign):
            delete_quietly(rdb, cc.study_name)
