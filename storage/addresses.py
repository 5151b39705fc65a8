"""Storage URLs as text: schemes, the journal path, PostgreSQL rules, redaction (a leaf module).

Three schemes, never guessed from the shape of a string:

* ``journal:///abs/path/optuna.journal`` or ``journal:relative/path.journal``
  (relative to the run directory);
* ``postgresql+psycopg2://user@host:port/dbname``: the password is never part of
  the URL, neither in the user-info nor as a ``password=`` query parameter;
  libpq reads ``$PGPASSWORD`` or ``~/.pgpass``;
* ``grpc://host:port``: a running gRPC storage proxy (``storage.proxy``) in front of a
  PostgreSQL storage; it holds the database connections and the password.

Every command checks a URL with the same rule (:func:`check_url`), and every
message shows it through :func:`redact`. No Optuna import here.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from storage.errors import StorageError

__all__ = [
    "EXPECTED",
    "GRPC_SCHEME",
    "JOURNAL_SCHEME",
    "POSTGRES_SCHEME",
    "NETWORK_FILESYSTEMS",
    "check_postgres_url",
    "check_url",
    "filesystem_type",
    "grpc_address",
    "parse_journal_path",
    "redact",
    "scheme",
    "shared_journal_warning",
]

JOURNAL_SCHEME = "journal"
POSTGRES_SCHEME = "postgresql+psycopg2"
GRPC_SCHEME = "grpc"
EXPECTED = (
    "expected 'journal:///abs/path.journal', 'journal:relative/path.journal', "
    "'postgresql+psycopg2://user@host:port/dbname' or 'grpc://host:port' (a storage proxy)"
)
_PASSWORD_KEYS = ("password", "passwd", "pwd")


def redact(url: str) -> str:
    """``url`` with any password (user-info or query parameter) replaced by ``***``."""
    text = re.sub(r"(://[^/@:?#]*):[^/@?#]*@", r"\1:***@", str(url))
    keys = "|".join(_PASSWORD_KEYS)
    return re.sub(rf"(?i)([?&;](?:{keys})=)[^&;#]*", r"\1***", text)


def scheme(url: str) -> str:
    """The lower-case scheme of ``url`` (``""`` when it has none)."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", url)
    return match.group(1).lower() if match else ""


def parse_journal_path(url: str, *, run_dir: Path | None = None) -> Path:
    """The file path of a ``journal:`` URL (relative paths resolved in ``run_dir``)."""
    rest = url[len(JOURNAL_SCHEME) + 1 :]
    if rest.startswith("//"):
        path_text = rest[2:]
        if not path_text.startswith("/"):
            raise StorageError(
                f"storage URL {url!r}: 'journal://' must be followed by an absolute path "
                f"(three slashes, e.g. 'journal:///data/run/optuna.journal'); "
                f"for a path relative to the run directory write 'journal:{path_text}'"
            )
        return Path(path_text)
    if not rest:
        raise StorageError(f"storage URL {url!r}: the journal file path is empty; {EXPECTED}")
    path = Path(rest)
    if path.is_absolute():
        return path
    if run_dir is None:
        raise StorageError(
            f"storage URL {url!r}: relative journal path needs a run directory "
            "(pass run_dir, or use an absolute path 'journal:///abs/path.journal')"
        )
    return Path(run_dir) / path


def check_postgres_url(url: str) -> None:
    """Raise StorageError unless ``url`` is ``postgresql+psycopg2://user@host[:port]/db``."""
    parts = urlsplit(url)
    query_keys = {k.lower() for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    if parts.password is not None or query_keys & set(_PASSWORD_KEYS):
        raise StorageError(
            f"storage URL {redact(url)!r} contains a password: remove it from the URL and "
            "put it in $PGPASSWORD or ~/.pgpass (host:port:db:user:password, mode 600)"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise StorageError(f"storage URL {redact(url)!r}: the port is not a number") from None
    if not parts.hostname or not parts.path.strip("/"):
        raise StorageError(
            f"storage URL {redact(url)!r}: expected "
            "'postgresql+psycopg2://user@host:port/dbname' (host and database name required)"
        )
    if parts.username is None:
        raise StorageError(
            f"storage URL {redact(url)!r}: the user name is missing "
            "(expected 'postgresql+psycopg2://user@host:port/dbname')"
        )


def grpc_address(url: str) -> tuple[str, int]:
    """``(host, port)`` of a ``grpc://host:port`` URL; StorageError for anything else.

    Only a host and a port: no user, password, path or query (the proxy has no
    authentication and no database name; the database is the proxy's business).
    """
    expected = "expected 'grpc://host:port' (a storage proxy, see `hpo proxy`)"
    if scheme(url) != GRPC_SCHEME or not url.startswith(f"{GRPC_SCHEME}://"):
        raise StorageError(f"storage URL {redact(url)!r}: {expected}")
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise StorageError(
            f"storage URL {redact(url)!r}: a proxy URL has no user or password (the "
            f"database credentials stay with the proxy); {expected}"
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise StorageError(f"storage URL {redact(url)!r}: no path or query allowed; {expected}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or not 1 <= port <= 65535:
        raise StorageError(
            f"storage URL {redact(url)!r}: host and port (1-65535) required; {expected}"
        )
    return parts.hostname, port


def check_url(url: object) -> str:
    """The scheme of a valid storage URL; StorageError (URL redacted) for anything else.

    The one rule of every command: ``hpo validate`` rejects exactly what ``hpo create``
    would fail to open for the URL's form.
    """
    if not isinstance(url, str) or not url:
        raise StorageError(f"storage URL must be a non-empty string; {EXPECTED}, got {url!r}")
    kind = scheme(url)
    if kind == JOURNAL_SCHEME:
        rest = url[len(JOURNAL_SCHEME) + 1 :]
        if not rest or (rest.startswith("//") and not rest[2:].startswith("/")):
            parse_journal_path(url, run_dir=Path("."))  # raises the precise message
        return kind
    if kind == POSTGRES_SCHEME:
        check_postgres_url(url)
        return kind
    if kind == GRPC_SCHEME:
        grpc_address(url)
        return kind
    hint = ""
    if kind in ("postgresql", "postgres"):
        hint = " (write the driver explicitly: 'postgresql+psycopg2://...')"
    elif not kind:
        hint = " (no scheme: a plain path is not guessed to be a journal file)"
    raise StorageError(f"storage URL {redact(url)!r}: unsupported scheme{hint}; {EXPECTED}")


#: File systems on which a journal shared by processes on several nodes is unsafe
#: (lost or merged appends, stale locks: optuna#5138 and the reports it links).
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "fuse.sshfs", "ceph"}
)


def filesystem_type(path: Path, mounts: str | None = None) -> str:
    """The type of the file system holding ``path`` (from ``/proc/mounts``; "" if unknown)."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return ""
    path = Path(path).absolute()
    best, kind = "", ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = path == Path(point) or Path(point) in path.parents
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def shared_journal_warning(url: str, run_dir: Path, nodes: int, mounts: str | None = None) -> str:
    """A warning line when a journal on a network file system serves workers on ``nodes`` > 1."""
    if scheme(url) != JOURNAL_SCHEME or nodes <= 1:
        return ""
    path = parse_journal_path(url, run_dir=run_dir)
    kind = filesystem_type(path, mounts)
    if kind not in NETWORK_FILESYSTEMS:
        return ""
    return (
        f"warning: the journal {path} is on a network file system ({kind}) and up to {nodes} "
        "SLURM tasks may write it from different nodes; journals on network file systems "
        "lose or merge appends (optuna#5138): use PostgreSQL for a multi-node campaign "
        "(storage = 'postgresql+psycopg2://user@host:port/db', see examples/cluster.toml)"
    )
