"""``hpo dashboard``: optuna-dashboard on the campaign's storage and artifact store.

Served in-process with ``optuna_dashboard.run_server`` on the storage object
the service itself uses, so a PostgreSQL password never appears in argv
(libpq reads ``$PGPASSWORD`` or ``~/.pgpass``). Binds 127.0.0.1 by default;
on a cluster, reach it with ``ssh -L 8080:127.0.0.1:8080 login-node``. The
dashboard has no authentication: another address needs ``expose=True`` (the
CLI's ``--expose``) and is announced with what it exposes. A campaign that was
never created is refused (nothing is created on disk).
"""

from __future__ import annotations

import socket

from hpo.config import Campaign
from hpo.errors import UsageError
from hpo.exposure import is_loopback

__all__ = ["check_address", "serve"]


def check_address(host: str, port: int, *, expose: bool) -> None:
    """Refuse a bad port, a port in use, or a non-loopback host without ``expose``."""
    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port}: must be a port number in 1..65535")
    if not is_loopback(host) and not expose:
        raise UsageError(
            f"--host {host}: not a loopback address; the dashboard has no authentication and "
            "lets anyone who reaches it read every study and edit notes. Add --expose to "
            "serve it there anyway, or keep 127.0.0.1 and use ssh -L"
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"--host {host} --port {port}: cannot listen there ({exc.strerror})"
            ) from None


def serve(
    campaign: Campaign, *, host: str = "127.0.0.1", port: int = 8080, expose: bool = False
) -> int:
    """Serve until interrupted; returns an exit code."""
    from optuna_dashboard import run_server

    from hpo.studies import open_created_storage
    from storage.artifacts import artifact_store

    check_address(host, port, expose=expose)
    storage = open_created_storage(campaign)
    if not is_loopback(host):
        print(
            f"warning: serving on {host}:{port} without authentication: anyone who reaches it "
            "can read every study of this storage and edit notes",
            flush=True,
        )
    print(
        f"optuna-dashboard for campaign {campaign.name}: http://{host}:{port}/dashboard/",
        flush=True,
    )
    run_server(storage, host=host, port=port, artifact_store=artifact_store(campaign.run_dir))
    return 0
