"""What a client of a campaign's storage proxy needs besides its address: the token file
(owner-only, ``<run_dir>/slurm/proxy.token``) and the CA its TLS certificate is checked
with. A leaf: the proxy (``hpo.proxy``), the job chain (``hpo.launch``), the studies
(``hpo.studies``, for a ``grpc://`` campaign storage) and the CLI read them here."""

from __future__ import annotations

from pathlib import Path

from hpo.config import Campaign

__all__ = ["tls_ca", "token_file"]


def token_file(campaign: Campaign) -> Path:
    """The campaign's proxy token (owner-only): ``<run_dir>/slurm/proxy.token``."""
    return campaign.run_dir / "slurm" / "proxy.token"


def tls_ca(campaign: Campaign) -> Path | None:
    """What clients verify the proxy's certificate with (None: the proxy serves no TLS):
    ``[slurm] proxy_tls_ca``, else ``proxy_tls_cert`` (a self-signed certificate)."""
    s = campaign.slurm
    ca = s.proxy_tls_ca or s.proxy_tls_cert
    return Path(ca) if ca else None
