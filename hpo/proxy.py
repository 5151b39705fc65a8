"""A campaign's gRPC storage proxy: ``hpo proxy``, its address file, the workers' connection.

With ``[slurm] proxy = "job"``, ``hpo launch`` submits ``hpo proxy`` as a job of its own
before the worker array (the array waits for it to start: ``--dependency=after``). The
proxy holds at most ``--threads`` PostgreSQL connections whatever the array's size and
writes its address, ``grpc://<node>:<port>``, to ``<run_dir>/slurm/proxy.json``; each
array task runs ``hpo worker --proxy-file <that file>``, waits for the proxy to answer
and talks to it only. The proxy ends when the array it serves has ended (``jobs.json``).

With ``[slurm] proxy = "grpc://host:port"`` the tasks connect to a proxy the user runs
(``hpo proxy campaign.toml --host 0.0.0.0 --expose --port 13000`` on a machine that reaches
the database). Either way the database password stays where the proxy runs.

Who gets in: only a client holding the campaign's token (``hpo.proxy_access.token_file``,
written owner-only by ``hpo launch`` or the first ``hpo proxy``; workers read it from there), and
only for the campaign's own studies. A host other than loopback needs ``expose``; with
``[slurm] proxy_tls_cert`` / ``proxy_tls_key`` (or ``--tls-cert`` / ``--tls-key``) the
proxy serves TLS and workers verify its certificate against ``proxy_tls_ca``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import signal
import socket
import threading
from pathlib import Path

from hpo.config import Campaign

__all__ = [
    "connect",
    "proxy_status",
    "serve",
]

log = logging.getLogger(__name__)

_WILDCARD = ("0.0.0.0", "::", "")


def connect(
    *,
    url: str | None = None,
    address_file: Path | None = None,
    patience: float,
    token: Path,
    ca: Path | None = None,
):
    """A proxy client for a worker, once the proxy answers (StorageError after ``patience``,
    or at once for an unreadable token file or a refused token)."""
    from storage.proxy import ProxyStorage

    storage = ProxyStorage(url, address_file=address_file, token_file=token, tls_ca=ca)
    storage.wait_ready(patience)
    return storage


def _check_exposure(host: str, expose: bool, tls: bool, token: Path) -> None:
    """A host other than loopback only with ``expose`` (and a warning without TLS)."""
    from hpo.errors import UsageError
    from hpo.exposure import is_loopback

    if is_loopback(host):
        return
    if not expose:
        raise UsageError(
            f"--host {host or '0.0.0.0'}: not a loopback address; the proxy serves the "
            f"campaign's studies to anyone on the network who holds its token ({token}). "
            "Add --expose to serve there (with --tls-cert/--tls-key on a network you do not "
            "trust), or keep 127.0.0.1"
        )
    if not tls:
        print(
            f"warning: serving on {host or '0.0.0.0'} without TLS: the token and the trials "
            "cross the network in clear (--tls-cert/--tls-key, or [slurm] proxy_tls_cert / "
            "proxy_tls_key, serve TLS)",
            flush=True,
        )


def _array_ended(campaign: Campaign, own_job: str | None) -> str | None:
    """Why the proxy job may stop (its worker array ended, or a newer launch replaced it)."""
    from hpo.launch import recorded_jobs
    from workers.slurm import job_finished, job_states

    jobs = recorded_jobs(campaign)
    if own_job is None or "worker" not in jobs or "proxy" not in jobs:
        return None  # not started by `hpo launch`, or it is still submitting
    if jobs["proxy"] != own_job:
        return f"a newer launch runs proxy job {jobs['proxy']}"
    if job_finished(job_states([jobs["worker"]]), jobs["worker"]):
        return f"worker array {jobs['worker']} has ended"
    return None


def serve(
    campaign: Campaign,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    advertise: str | None = None,
    threads: int | None = None,
    address: Path | None = None,
    until_workers_end: bool = False,
    poll: float = 30.0,
    expose: bool = False,
    token: Path | None = None,
    tls: tuple[Path, Path] | None = None,
) -> int:
    """Run the proxy until SIGTERM / SIGINT (or the array's end); returns an exit code.

    Writes ``{"url", "campaign", "job", "host", "pid", "started", "tls"}`` to ``address``
    once it listens and removes the file when it stops. Workers reach it at ``advertise``
    (default: ``host``, or this machine's host name when ``host`` is a wildcard such as
    0.0.0.0). Serves only clients with the token in ``token`` (default
    ``hpo.proxy_access.token_file``, written first if missing), only the campaign's
    studies, over TLS with ``tls`` = (certificate, key). A non-loopback ``host`` needs
    ``expose``. Logs one line of counters every ``poll`` seconds.
    """
    from hpo.cells import campaign_cells
    from hpo.proxy_access import token_file
    from objectives.files import atomic_write_json
    from storage.addresses import redact
    from storage.proxy import APPLICATION_NAME, DEFAULT_THREADS, read_address, start_proxy
    from storage.proxy_auth import ensure_token

    token = token or token_file(campaign)
    _check_exposure(host, expose, tls is not None, token)
    advertise = advertise or (socket.gethostname() if host in _WILDCARD else host)
    server = start_proxy(
        campaign.storage,
        host=host or "0.0.0.0",
        port=port,
        advertise=advertise,
        threads=threads or DEFAULT_THREADS,
        application_name=f"{APPLICATION_NAME}:{campaign.name}",
        token=ensure_token(token),
        studies=[cc.study_name for cc in campaign_cells(campaign)],
        tls=tls,
    )
    own_job = os.environ.get("SLURM_JOB_ID")
    stop = threading.Event()
    stopped_by: list[int] = []

    def on_stop(signum, frame) -> None:
        stopped_by.append(signum)
        stop.set()

    def on_warning(signum, frame) -> None:
        log.warning(
            "proxy: %s: the job's time limit is near; workers will wait for a proxy at a new "
            "address (resubmit it with the same --address-file)",
            signal.Signals(signum).name,
        )

    previous = {s: signal.signal(s, on_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, on_warning)
    try:
        if address is not None:
            atomic_write_json(
                address,
                {
                    "url": server.url,
                    "campaign": campaign.name,
                    "job": own_job,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                    "tls": tls is not None,
                },
            )
        print(
            f"storage proxy of campaign {campaign.name} on {server.url}"
            + (" (TLS)" if tls else "")
            + f" for {redact(campaign.storage)}: at most {threads or DEFAULT_THREADS} "
            f"database connections; clients need the token in {token}"
            + (f"; address in {address}" if address else ""),
            flush=True,
        )
        served = 0
        reason = ""
        while not stop.wait(poll):
            errors, last = server.storage_errors
            refused, why = server.refused
            print(
                f"proxy: {server.requests - served} requests in {poll:g} s, "
                f"{server.connections()} database connections, {errors} database errors"
                + (f" (last: {last})" if errors else "")
                + (f", {refused} calls refused (last: {why})" if refused else ""),
                flush=True,
            )
            served = server.requests
            if until_workers_end:
                try:
                    reason = _array_ended(campaign, own_job) or ""
                except Exception as exc:  # the scheduler may be briefly unreachable
                    log.warning("proxy: cannot read the worker array's state: %s", exc)
                if reason:
                    break
        if stopped_by:
            reason = f"stopped by {signal.Signals(stopped_by[0]).name}"
        by_method = ", ".join(f"{m} {n}" for m, n in server.requests_by_method.items())
        print(
            f"proxy stopping: {reason}; {server.requests} requests served"
            + (f" ({by_method})" if by_method else "")
            + f", {server.trials_loaded} trials read from the database",
            flush=True,
        )
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
        if address is not None and read_address(address) == server.url:
            address.unlink(missing_ok=True)
        server.stop()
    return 128 + stopped_by[0] if stopped_by else 0


def proxy_status(campaign: Campaign) -> list[str]:
    """``hpo status`` lines: the proxy's address and whether it answers."""
    from hpo.launch import address_file
    from hpo.proxy_access import tls_ca, token_file
    from storage.errors import StorageError
    from storage.proxy import probe, read_address

    mode = campaign.slurm.proxy
    if mode == "none":
        return []
    url = mode if mode != "job" else read_address(address_file(campaign))
    if url is None:
        return [f"storage proxy: none running (no address in {address_file(campaign)})"]
    try:
        problem = probe(url, token_file=token_file(campaign), tls_ca=tls_ca(campaign))
    except StorageError as exc:  # the token file: unreadable here
        return [f"storage proxy: {url}: cannot ask it ({exc})"]
    if problem is None:
        return [f"storage proxy: {url} answers"]
    return [
        f"storage proxy: {url} NOT ANSWERING ({problem}); workers wait for it up to their "
        "storage patience, then stop"
    ]
