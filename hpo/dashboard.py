"""``hpo dashboard``: optuna-dashboard on the campaign's storage and artifact store.

Served in-process with ``optuna_dashboard.run_server`` on the storage object
the service itself uses, so a PostgreSQL password never appears in argv
(libpq reads ``$PGPASSWORD`` or ``~/.pgpass``). Binds 127.0.0.1 by default;
on a cluster, reach it with ``ssh -L 8080:127.0.0.1:8080 login-node``.
"""

from __future__ import annotations

from hpo.config import Campaign

__all__ = ["serve"]


def serve(campaign: Campaign, *, host: str = "127.0.0.1", port: int = 8080) -> int:
    """Serve until interrupted; returns an exit code."""
    from optuna_dashboard import run_server

    from hpo.studies import open_campaign_storage
    from storage.artifacts import artifact_store

    storage = open_campaign_storage(campaign)
    print(
        f"optuna-dashboard for campaign {campaign.name}: http://{host}:{port}/dashboard/",
        flush=True,
    )
    run_server(storage, host=host, port=port, artifact_store=artifact_store(campaign.run_dir))
    return 0
