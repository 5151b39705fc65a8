"""Who may talk to a storage proxy: a shared token from an owner-only file, and TLS.

The token is one line in a file that only its owner may read (mode 0600, checked every
time it is read): the proxy reads it when it starts, each worker when it connects. It
travels as gRPC metadata (``authorization: Bearer <token>``) and :class:`TokenCheck`, a
server interceptor, refuses every call without it (``UNAUTHENTICATED``) before any
storage code runs. It is never part of a URL, an argv or an environment variable.

With a certificate and key (PEM) the proxy serves TLS; a client given the CA that
signed it (for a self-signed certificate, the certificate itself) verifies the proxy's
certificate and host name, and refuses anything else. Without TLS the token and the
trials cross the network in clear: fine on a loopback address, or on a cluster network
the campaign's owner trusts as far as the database port itself.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

import grpc

from storage.errors import StorageError

__all__ = [
    "TOKEN_HEADER",
    "TokenCheck",
    "channel_credentials",
    "ensure_token",
    "read_token",
    "server_credentials",
    "token_metadata",
]

TOKEN_HEADER = "authorization"
"""The gRPC metadata key that carries ``Bearer <token>``."""
_MIN_LENGTH = 32
_MODE_HINT = "it must be readable by its owner only"


def _describe_mode(mode: int) -> str:
    return f"mode {stat.S_IMODE(mode):04o}"


def read_token(path: str | os.PathLike[str]) -> str:
    """The token in ``path``; StorageError (one line, never the token) unless the file is a
    regular file of this user that no one else may read, holding one token."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise StorageError(
            f"proxy token file {path}: missing (`hpo proxy` or `hpo launch` writes it)"
        ) from None
    except OSError as exc:
        raise StorageError(f"proxy token file {path}: cannot read it ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise StorageError(f"proxy token file {path}: not a regular file")
        if info.st_uid != os.geteuid():
            raise StorageError(f"proxy token file {path}: owned by another user; {_MODE_HINT}")
        if info.st_mode & 0o077:
            raise StorageError(
                f"proxy token file {path}: {_describe_mode(info.st_mode)} lets others read "
                f"it; {_MODE_HINT}: chmod 600 {path}"
            )
        text = f.read(4096).decode("ascii", errors="replace").strip()
    if len(text) < _MIN_LENGTH or not all(33 <= ord(c) < 127 for c in text):
        raise StorageError(
            f"proxy token file {path}: not a token (one line of at least {_MIN_LENGTH} "
            "printable characters); delete it and `hpo proxy` writes a new one"
        )
    return text


def ensure_token(path: str | os.PathLike[str]) -> str:
    """The token in ``path``, written first (mode 0600, a new random token) if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(path)
    except OSError as exc:
        raise StorageError(f"proxy token file {path}: cannot write it ({exc.strerror})") from None
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # whatever the umask
        f.write(secrets.token_urlsafe(32) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return read_token(path)


def token_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """The metadata a client sends with every call."""
    return ((TOKEN_HEADER, f"Bearer {token}"),)


class TokenCheck(grpc.ServerInterceptor):
    """Refuses (``UNAUTHENTICATED``) every call that does not carry the token.

    ``refused(reason)`` is called for each refusal (the proxy counts them).
    """

    def __init__(self, token: str, refused: Callable[[str], None]) -> None:
        self._expected = f"Bearer {token}".encode()
        self._refused = refused

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong proxy token")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation, handler_call_details):
        sent = dict(handler_call_details.invocation_metadata or ()).get(TOKEN_HEADER)
        if isinstance(sent, str) and hmac.compare_digest(sent.encode(), self._expected):
            return continuation(handler_call_details)
        self._refused("no token" if sent is None else "wrong token")
        return self._deny


def _pem(path: str | os.PathLike[str], what: str, marker: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise StorageError(f"proxy TLS {what} {path}: cannot read it ({exc.strerror})") from None
    if marker.encode() not in data:
        raise StorageError(f"proxy TLS {what} {path}: not a PEM file (no '{marker}' block)")
    return data


def server_credentials(cert: str | os.PathLike[str], key: str | os.PathLike[str]):
    """TLS credentials of a proxy from its PEM certificate (chain) and private key."""
    chain = _pem(cert, "certificate", "-----BEGIN CERTIFICATE-----")
    private = _pem(key, "key", "PRIVATE KEY-----")
    return grpc.ssl_server_credentials([(private, chain)])


def channel_credentials(ca: str | os.PathLike[str]):
    """TLS credentials of a client that accepts only a proxy certificate signed by ``ca``."""
    return grpc.ssl_channel_credentials(
        root_certificates=_pem(ca, "CA", "-----BEGIN CERTIFICATE-----")
    )
