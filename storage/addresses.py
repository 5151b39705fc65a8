"""Storage URLs as text: schemes, the journal path, PostgreSQL rules, redaction (a leaf module).

Three schemes, never guessed from the shape of a string:

* ``journal:///abs/path/optuna.journal`` or ``journal:relative/path.journal``
  (relative to the run directory);
* ``postgresql+psycopg2://user@host:port/dbname``: no secret is ever part of the URL,
  neither a password in the user-info nor a parameter such as ``password=`` or
  ``sslpassword=``; libpq reads ``$PGPASSWORD``, ``~/.pgpass`` or a service file;
* ``grpc://host:port``: a running gRPC storage proxy (``storage.proxy``) in front of a
  PostgreSQL storage; it holds the database connections and the password.

Every command checks a URL with the same rule (:func:`check_url`), and every
message, log line or file shows it through :func:`redact`, which works on the raw
text before any parsing: a password holding ``/ ? # @`` cannot move the URL's parts
so that some of it shows. No Optuna import here.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import SplitResult, unquote_plus, urlsplit

from storage.errors import StorageError

__all__ = [
    "EXPECTED",
    "GRPC_SCHEME",
    "JOURNAL_SCHEME",
    "POSTGRES_SCHEME",
    "NETWORK_FILESYSTEMS",
    "SECRET_WORDS",
    "check_postgres_url",
    "check_url",
    "filesystem_type",
    "grpc_address",
    "parse_journal_path",
    "redact",
    "scheme",
    "secret_name",
    "secret_parameters",
    "shared_journal_warning",
]

JOURNAL_SCHEME = "journal"
POSTGRES_SCHEME = "postgresql+psycopg2"
GRPC_SCHEME = "grpc"
EXPECTED = (
    "expected 'journal:///abs/path.journal', 'journal:relative/path.journal', "
    "'postgresql+psycopg2://user@host:port/dbname' or 'grpc://host:port' (a storage proxy)"
)
#: A query parameter whose decoded, lower-case name contains one of these holds a secret.
SECRET_WORDS = ("password", "passwd", "pwd", "secret", "token")
_HIDDEN = "***"
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
#: A user name shown in a PostgreSQL URL (anything else in the user-info is hidden).
_USER_RE = re.compile(r"^[A-Za-z0-9._-]+$")


def _decoded(name: str) -> str:
    """``name`` percent-decoded until it no longer changes (``pass%2577ord`` -> password)."""
    for _ in range(5):
        decoded = unquote_plus(name)
        if decoded == name:
            break
        name = decoded
    return name


def secret_name(name: str) -> bool:
    """Whether a query parameter ``name`` names a secret (see :data:`SECRET_WORDS`)."""
    low = _decoded(name).strip().lower()
    return any(word in low for word in SECRET_WORDS)


def _cut(url: str) -> tuple[str, str | None, str]:
    """``(head, user-info, rest)`` of ``url`` cut on its raw text, before any parsing.

    The user-info runs to the *last* ``@`` after ``scheme://`` (or from the start when
    there is no ``//``: ``u:PW@host``), so a password holding ``/ ? # @ :`` is inside
    it whole (an ``@`` in a query value or a file name makes more of the text user-info:
    hidden too, never less). ``None`` when there is no ``@``.
    """
    match = _SCHEME_RE.match(url)
    start = 0
    if match and url[match.end() :].startswith("//"):
        start = match.end() + 2
    at = url.rfind("@", start)
    if at < 0:
        return url[:start], None, url[start:]
    return url[:start], url[start:at], url[at + 1 :]


def _userinfo_span(head: str, userinfo: str) -> tuple[int, int] | None:
    """What to hide of the user-info (offsets in it): all of it, but the user name of a
    ``postgres...://`` URL; nothing when that user name is all there is."""
    postgres = head.lower().startswith("postgres") and head.endswith("//")
    if postgres and ":" not in userinfo:  # no password; a later '@' is in a query value
        userinfo = userinfo.partition("@")[0]
    user, colon, _ = userinfo.partition(":")
    if not (postgres and _USER_RE.match(user)):
        return 0, len(userinfo) if userinfo else 0
    return (len(user) + 1, len(userinfo)) if colon else None


def _port_span(text: str, start: int) -> tuple[int, int] | None:
    """A port that is not a number in the authority at ``start`` (a password cut short by
    ``/ ? #``: ``u:TOPSE/CRET`` reads as host ``u``, port ``TOPSE``)."""
    end = min([i for i in (text.find(c, start) for c in "/?#") if i >= 0] + [len(text)])
    authority = text[start:end]
    colon = authority.rfind(":")
    port = authority[colon + 1 :]
    if colon <= authority.rfind("]") or port.isdigit() or not port:  # none, [v6], a number
        return None
    return start + colon + 1, end


def _parameter_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Values of secret parameters, to the next ``&`` / ``;``, and the pieces with no ``=``
    after one (``password=a&b``, ``password=a#b``: part of the secret as typed)."""
    spans, hiding, position = [], False, offset
    for piece in re.split(r"([?&;#])", text):
        name, eq, _ = piece.partition("=")
        if piece in ("?", "&", ";", "#"):
            pass
        elif eq and secret_name(name):
            spans.append((position + len(name) + 1, position + len(piece)))
            hiding = True
        elif piece:
            if hiding and not eq:
                spans.append((position, position + len(piece)))
            else:
                hiding = False
        position += len(piece)
    return spans


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with every span (overlapping or touching ones merged) replaced by ``***``."""
    out: list[str] = []
    last = 0
    for start, end in sorted(span for span in spans if span[1] > span[0]):
        if out and start <= last:
            last = max(last, end)
            continue
        out += [text[last:start], _HIDDEN]
        last = end
    return "".join(out) + text[last:]


def redact(url: object) -> str:
    """``url`` as it may be shown: no user-info but a PostgreSQL user name, no value of a
    parameter whose decoded name contains "password", "secret" or "token".

    Works on the raw text before any parsing (a password holding ``/ ? # @`` does not
    move the URL's parts), so any text may be passed, a valid URL or not. Whatever one
    reading of the text (user-info up to the last ``@``; parameters) finds is hidden:
    more than the secret, at times, never less.
    """
    text = str(url)
    head, userinfo, rest = _cut(text)
    spans = _parameter_spans(text)
    if userinfo is not None:
        at = len(head) + len(userinfo)
        hide = _userinfo_span(head, userinfo)
        if hide is not None:
            spans.append((len(head) + hide[0], len(head) + hide[1]))
        spans += _parameter_spans(rest, at + 1)
        port = _port_span(text, at + 1)
    else:
        port = _port_span(text, len(head)) if head.endswith("//") else None
    return _mask(text, spans + ([port] if port else []))


def scheme(url: str) -> str:
    """The lower-case scheme of ``url`` (``""`` when it has none)."""
    match = _SCHEME_RE.match(url)
    return match.group(1).lower() if match else ""


def parse_journal_path(url: str, *, run_dir: Path | None = None) -> Path:
    """The file path of a ``journal:`` URL (relative paths resolved in ``run_dir``)."""
    rest = url[len(JOURNAL_SCHEME) + 1 :]
    if rest.startswith("//"):
        path_text = rest[2:]
        if not path_text.startswith("/"):
            raise StorageError(
                f"storage URL {redact(url)!r}: 'journal://' must be followed by an absolute "
                "path (three slashes, e.g. 'journal:///data/run/optuna.journal'); for a path "
                "relative to the run directory write 'journal:relative/path.journal'"
            )
        return Path(path_text)
    if not rest:
        raise StorageError(
            f"storage URL {redact(url)!r}: the journal file path is empty; {EXPECTED}"
        )
    path = Path(rest)
    if path.is_absolute():
        return path
    if run_dir is None:
        raise StorageError(
            f"storage URL {redact(url)!r}: relative journal path needs a run directory "
            "(pass run_dir, or use an absolute path 'journal:///abs/path.journal')"
        )
    return Path(run_dir) / path


def secret_parameters(url: str) -> list[str]:
    """Names of the parameters of ``url`` (query or fragment) that hold a secret."""
    _, userinfo, rest = _cut(url)
    names = []
    for text in (url, rest) if userinfo is not None else (url,):  # both readings
        names += [p.partition("=")[0] for p in re.split(r"[?&;#]", text)[1:] if "=" in p]
    return list(dict.fromkeys(name for name in names if secret_name(name)))


def _split(url: str) -> tuple[SplitResult, int | None]:
    """``(urlsplit(url), port)``, port None when it is not a number in 0-65535;
    StorageError (URL redacted) for text that is not a URL (an unbalanced ``[``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise StorageError(f"storage URL {redact(url)!r}: not a URL ({EXPECTED})") from None
    try:
        return parts, parts.port
    except ValueError:
        return parts, None


def _has_password(url: str) -> bool:
    """A password in the user-info, also one that holds ``/ ? #`` (which ends the host for a
    URL parser: ``u:TOPSE/CRET@host`` reads as host ``u``, port ``TOPSE``)."""
    _, userinfo, _ = _cut(url)
    if userinfo is None or ":" not in userinfo:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return True
    if "@" in parts.netloc:
        return parts.password is not None
    # the last '@' lies after the host: in a query value (fine) or after such a password
    try:
        port_ok = parts.port is not None or ":" not in parts.netloc
    except ValueError:
        port_ok = False
    return not port_ok or "@" in parts.path or not parts.path.strip("/")


def check_postgres_url(url: str) -> None:
    """Raise StorageError unless ``url`` is ``postgresql+psycopg2://user@host[:port]/db``
    with no secret in it (password, or a parameter such as ``sslpassword``)."""
    secrets = secret_parameters(url)
    if _has_password(url) or any(_decoded(k).strip().lower() == "password" for k in secrets):
        raise StorageError(
            f"storage URL {redact(url)!r} contains a password: remove it from the URL and "
            "put it in $PGPASSWORD or ~/.pgpass (host:port:db:user:password, mode 600)"
        )
    if secrets:
        raise StorageError(
            f"storage URL {redact(url)!r} contains a secret (parameter {secrets[0]!r}): "
            "remove it from the URL; put it in a connection service file "
            "(~/.pg_service.conf, mode 600) and add '?service=NAME' to the URL"
        )
    parts, port = _split(url)
    if port is None and parts.netloc.rpartition("@")[2].rpartition("]")[2].count(":"):
        raise StorageError(f"storage URL {redact(url)!r}: the port is not a number in 0-65535")
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

    Only a host and a port: no user, password, path or query (the proxy's token is read
    from a file, never from the URL; the database is the proxy's business).
    """
    expected = "expected 'grpc://host:port' (a storage proxy, see `hpo proxy`)"
    if scheme(url) != GRPC_SCHEME or not url.startswith(f"{GRPC_SCHEME}://"):
        raise StorageError(f"storage URL {redact(url)!r}: {expected}")
    if _cut(url)[1] is not None:
        raise StorageError(
            f"storage URL {redact(url)!r}: a proxy URL has no user or password (the "
            f"database credentials stay with the proxy, its token is in a file); {expected}"
        )
    parts, port = _split(url)
    if parts.path.strip("/") or parts.query or parts.fragment or "?" in url or "#" in url:
        raise StorageError(f"storage URL {redact(url)!r}: no path or query allowed; {expected}")
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
        raise StorageError(
            f"storage URL must be a non-empty string; {EXPECTED}, got {redact(repr(url))}"
        )
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
