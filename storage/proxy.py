"""Optuna's gRPC storage proxy: one process holds the database connections, workers speak gRPC.

Hundreds of workers on PostgreSQL need one connection each; through the proxy they need
none. :func:`start_proxy` serves a PostgreSQL storage with Optuna's proxy service
(``optuna.storages.run_grpc_proxy_server``'s servicer) on a pool of ``threads``
connections, so the database sees at most ``threads`` connections whatever the number of
workers. Changes to Optuna's server: a worker's trial read asks the database only for
the trials it has not cached (Optuna's servicer loads the whole study on every read); a
database error reaches the client as ``UNAVAILABLE`` ("the storage is away, retry"), not
as an opaque ``UNKNOWN``; and one method of ours, the database's count of a study's
trials by state (:mod:`storage.counts`), so a worker's exactness checks and Optuna's look
for WAITING trials cost one number instead of every unfinished trial of the study.

:class:`ProxyStorage` is the worker's side: Optuna's ``GrpcStorageProxy`` with a deadline
on every call, keep-alive pings (a proxy on a dead node is noticed) and one error for
"cannot reach the storage right now": Optuna's ``StorageInternalError``, which the worker
loop waits out like a database outage (``storage_patience``). With an ``address_file``
(written by the proxy when it listens) the client re-reads the address after each such
error, so workers follow a proxy that was restarted elsewhere (a requeued SLURM job).

Who may use it (:mod:`storage.proxy_auth`, :mod:`storage.proxy_scope`): with a ``token``
every call must carry it (gRPC metadata; workers read it from an owner-only file), with
``studies`` only those studies are served (a campaign's own: no other study of the
database can be listed, created, read or written), and with ``tls`` the proxy serves TLS
to clients that verify its certificate. The database password stays with the proxy
(libpq reads ``$PGPASSWORD`` or ``~/.pgpass`` there); workers only ever see
``grpc://host:port`` and the path of the token file.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import json
import logging
import threading
import time
import warnings
from collections import namedtuple
from collections.abc import Container, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import optuna
from optuna.exceptions import StorageInternalError
from optuna.storages import GrpcStorageProxy
from optuna.storages._grpc import servicer as _servicer
from optuna.storages._grpc.auto_generated import api_pb2, api_pb2_grpc
from optuna.storages._grpc.client import GrpcClientCache
from optuna.trial import FrozenTrial, TrialState

from storage.addresses import GRPC_SCHEME, POSTGRES_SCHEME, check_url, grpc_address, redact
from storage.counts import count_by_state, states_present
from storage.deaf import deaf_threads
from storage.errors import StorageError
from storage.proxy_auth import (
    TokenCheck,
    channel_credentials,
    read_token,
    server_credentials,
    token_metadata,
)
from storage.proxy_scope import PROBE_STUDY, StudyScope

__all__ = [
    "APPLICATION_NAME",
    "DEFAULT_THREADS",
    "DEFAULT_TIMEOUT",
    "FRESH",
    "RECENT",
    "ProxyServer",
    "ProxyStorage",
    "probe",
    "read_address",
    "serve_backend",
    "start_proxy",
]

_logger = logging.getLogger(__name__)

APPLICATION_NAME = "wsad-hpo-proxy"
"""The proxy's connections in ``pg_stat_activity`` (``hpo proxy`` appends ``:<campaign>``)."""
DEFAULT_THREADS = 8
"""Server threads of a proxy, and so its database connections."""
DEFAULT_TIMEOUT = 60.0
"""Seconds a worker's call may take before the proxy counts as unreachable."""
RECENT = 5.0
"""Seconds a worker's read inside :meth:`ProxyStorage.recent_reads` may reuse its last one."""
FRESH = 2.0
"""Seconds an unfinished trial read from the database is served to other reads (leases
are renewed every 10 s and expire after 60 s: a copy this old never makes one look lost)."""
#: gRPC status codes that mean "the storage cannot be reached now": retried by the worker
TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,  # a call in flight while the channel was replaced
    }
)
#: gRPC status codes that mean "the proxy refuses this client": a user error, never retried
REFUSED = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
_CLIENT_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    ("grpc.keepalive_time_ms", 20_000),  # ping an idle connection: a dead node is noticed
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),  # back within seconds once the proxy is
]
_NO_ADDRESS = f"{GRPC_SCHEME}://(no address yet)"
_SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.so_reuseport", 0),  # a second proxy on the same port fails instead of sharing it
]


def read_address(path: str | Path) -> str | None:
    """The ``grpc://host:port`` in a proxy's address file (None while there is none)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    url = record.get("url") if isinstance(record, dict) else None
    try:
        grpc_address(url if isinstance(url, str) else "")
    except StorageError:
        return None
    return url


# ----------------------------------------------------------------------------- server
class _Servicer(_servicer.OptunaStorageProxyService):
    """Optuna's proxy service; trial reads served from a cache where that is safe.

    A client's trial read asks for the trials it has not cached (ids above its last
    finished one, plus its unfinished ones). Optuna's servicer loads the whole study from
    the database for every such read; here one light query finds the ids wanted and:

    * finished trials come from a cache (a finished trial never changes): hundreds of
      workers starting on a half-done campaign cost the database one load of each;
    * an unfinished trial loaded less than :data:`FRESH` seconds ago by another read is
      served again (every worker re-reads every running trial of a study on each look:
      with 500 workers on one study that is 500 trials per read, 2,000 per trial). Such a
      copy is at most ``FRESH`` old and never older than this proxy's own last write to
      the trial; a trial only ever leaves the live states (RUNNING, WAITING -> finished),
      so a stale copy can only make the worker's live count too high: a trial it would
      run may be found surplus, never one too many run. A copy read before this proxy's
      last write to the trial ended is never served (a worker reads its own writes);
    * one database load per study at a time: reads that arrive meanwhile take its copies
      instead of loading the same running trials again.
    """

    def __init__(self, backend) -> None:
        super().__init__(backend)
        self._finished: dict[int, api_pb2.Trial] = {}
        self._recent: dict[int, tuple[float, api_pb2.Trial]] = {}
        self._written: dict[int, float] = {}  # when this proxy last wrote to a trial
        self._cache_lock = threading.Lock()
        self._loading: dict[int, threading.Lock] = {}  # per study: one database load at a time
        self.loaded = 0  # trials loaded from the database (the rest came from the cache)

    def GetTrials(self, request, context):  # noqa: N802 - gRPC method name
        if not hasattr(self._backend, "_get_trials"):  # not an RDBStorage: Optuna's way
            return super().GetTrials(request, context)
        try:
            wanted = self._wanted(request)
            served = self._cached(wanted)
            if len(served) < len(wanted):
                # one load per study at a time: reads arriving meanwhile take its copies
                with self._study_lock(request.study_id):
                    served = self._cached(wanted)
                    missing = set(wanted) - set(served)
                    if missing:
                        served.update(self._load_and_cache(request.study_id, missing))
        except KeyError as exc:
            context.abort(code=grpc.StatusCode.NOT_FOUND, details=str(exc))
        return api_pb2.GetTrialsReply(trials=list(served.values()))

    def _cached(self, wanted: list[int]) -> dict[int, api_pb2.Trial]:
        """The wanted trials this proxy may serve from its cache (finished, or fresh)."""
        now = time.monotonic()
        with self._cache_lock:
            served = {i: self._finished[i] for i in wanted if i in self._finished}
            for i in wanted:
                entry = self._recent.get(i)
                if i not in served and entry is not None and now - entry[0] < FRESH:
                    served[i] = entry[1]
        return served

    def _study_lock(self, study_id: int) -> threading.Lock:
        with self._cache_lock:
            return self._loading.setdefault(study_id, threading.Lock())

    def _load_and_cache(self, study_id: int, ids: set[int]) -> dict[int, api_pb2.Trial]:
        now = time.monotonic()
        loaded = self._load(study_id, ids)
        protos = {t._trial_id: _servicer._to_proto_trial(t) for t in loaded}
        with self._cache_lock:
            self.loaded += len(loaded)
            if len(self._recent) > 4 * len(protos) + 10_000:
                self._recent = {k: v for k, v in self._recent.items() if now - v[0] < FRESH}
            for t in loaded:
                if t.state.is_finished():
                    self._finished[t._trial_id] = protos[t._trial_id]
                    self._recent.pop(t._trial_id, None)
                elif now > self._written.get(t._trial_id, -1.0):  # read after our last write
                    self._recent[t._trial_id] = (now, protos[t._trial_id])
        return protos

    def _write(self, write, request, context):
        """Run a trial write; copies read before it ends are not served any more."""
        try:
            return write(request, context)
        finally:
            with self._cache_lock:
                self._recent.pop(request.trial_id, None)
                self._written[request.trial_id] = time.monotonic()

    def SetTrialParameter(self, request, context):  # noqa: N802
        return self._write(super().SetTrialParameter, request, context)

    def SetTrialStateValues(self, request, context):  # noqa: N802
        return self._write(super().SetTrialStateValues, request, context)

    def SetTrialIntermediateValue(self, request, context):  # noqa: N802
        return self._write(super().SetTrialIntermediateValue, request, context)

    def SetTrialUserAttribute(self, request, context):  # noqa: N802
        return self._write(super().SetTrialUserAttribute, request, context)

    def SetTrialSystemAttribute(self, request, context):  # noqa: N802
        return self._write(super().SetTrialSystemAttribute, request, context)

    def _wanted(self, request) -> list[int]:
        """Ids of the study's trials above ``trial_id_greater_than`` or in ``included``."""
        import sqlalchemy as sa
        from optuna.storages._rdb import models

        trials, studies = models.TrialModel.__table__, models.StudyModel.__table__
        study_id = request.study_id
        with self._backend.engine.connect() as connection:
            found = connection.execute(
                sa.select(studies.c.study_id).where(studies.c.study_id == study_id)
            ).first()
            if found is None:
                raise KeyError(f"no study with id {study_id}")
            condition = trials.c.trial_id > request.trial_id_greater_than
            if request.included_trial_ids:
                condition = condition | trials.c.trial_id.in_(list(request.included_trial_ids))
            query = sa.select(trials.c.trial_id).where(trials.c.study_id == study_id, condition)
            return [row[0] for row in connection.execute(query)]

    def _load(self, study_id: int, ids: set[int]) -> list:
        """The trials with these ids, as ``RDBStorage._get_trials`` loads them.

        Not ``_get_trials`` itself: it also loads every trial above the largest id, and a
        read missing one early running trial would reload all the newer ones.
        """
        import sqlalchemy.orm as orm
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        related = ("params", "values", "user_attributes", "system_attributes")
        related += ("intermediate_values",)
        trial = models.TrialModel
        with _create_scoped_session(self._backend.scoped_session) as session:
            query = session.query(trial).options(
                *(orm.selectinload(getattr(trial, name)) for name in related)
            )
            query = query.filter(trial.study_id == study_id, trial.trial_id.in_(sorted(ids)))
            rows = query.order_by(trial.trial_id).all()
            return [self._backend._build_frozen_trial_from_trial_model(row) for row in rows]


#: Our one method next to Optuna's service: :func:`storage.counts.count_by_state` (JSON)
_COUNTS_SERVICE, _COUNTS_METHOD = "wsadhpo.TrialCounts", "Count"


def _json_bytes(message: dict) -> bytes:
    return json.dumps(message).encode()


def _counts_handler(backend) -> grpc.GenericRpcHandler:
    """``{"study_id": i, "below": n | null}`` -> ``{state name: count}`` (UNIMPLEMENTED
    for a backend that is not a database: the client reads the trials instead)."""

    def count(request, context):
        if not isinstance(backend, optuna.storages.RDBStorage):
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "this proxy's storage cannot count")
        try:
            counts = count_by_state(backend, int(request["study_id"]), request.get("below"))
        except KeyError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return {state.name: n for state, n in counts.items()}

    handler = grpc.unary_unary_rpc_method_handler(
        count, request_deserializer=json.loads, response_serializer=_json_bytes
    )
    return grpc.method_handlers_generic_handler(_COUNTS_SERVICE, {_COUNTS_METHOD: handler})


def _first_line(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


@dataclass
class _Counters:
    by_method: collections.Counter = field(default_factory=collections.Counter)
    storage_errors: int = 0
    last_error: str = ""
    refused: int = 0
    last_refusal: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def refuse(self, reason: str) -> None:
        """Count a call refused by the token check or the study scope."""
        with self.lock:
            self.refused += 1
            self.last_refusal = reason


class _StorageErrors(grpc.ServerInterceptor):
    """Counts requests; a database error becomes ``UNAVAILABLE`` with its first line."""

    def __init__(self, counters: _Counters) -> None:
        self.counters = counters

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        behaviour = handler.unary_unary
        counters = self.counters
        method = handler_call_details.method.rsplit("/", 1)[-1]

        def guarded(request, context):
            with counters.lock:
                counters.by_method[method] += 1
            try:
                return behaviour(request, context)
            except StorageInternalError as exc:  # RDBStorage wraps every database error
                with counters.lock:
                    counters.storage_errors += 1
                    counters.last_error = _first_line(exc)
                context.abort(grpc.StatusCode.UNAVAILABLE, f"database: {_first_line(exc)}")

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class ProxyServer:
    """A running proxy: its ``url`` (``grpc://host:port``), counters, and :meth:`stop`."""

    def __init__(
        self, server: grpc.Server, backend, url: str, counters: _Counters, servicer: _Servicer
    ) -> None:
        self._server = server
        self._backend = backend
        self.url = url
        self._counters = counters
        self._servicer = servicer

    @property
    def trials_loaded(self) -> int:
        """Trials read from the database so far (the others came from the proxy's cache)."""
        return self._servicer.loaded

    @property
    def requests(self) -> int:
        """Requests served so far."""
        with self._counters.lock:
            return self._counters.by_method.total()

    @property
    def requests_by_method(self) -> dict[str, int]:
        """Requests served so far per gRPC method (``GetTrial``, ...), most served first."""
        with self._counters.lock:
            return dict(self._counters.by_method.most_common())

    @property
    def storage_errors(self) -> tuple[int, str]:
        """(database errors so far, the last one's first line)."""
        return self._counters.storage_errors, self._counters.last_error

    @property
    def refused(self) -> tuple[int, str]:
        """(calls refused so far: no or a wrong token, another study; the last reason)."""
        with self._counters.lock:
            return self._counters.refused, self._counters.last_refusal

    def connections(self) -> int:
        """Database connections the proxy holds now (its pool's checked-in + checked-out)."""
        engine = getattr(self._backend, "engine", None)
        return 0 if engine is None else engine.pool.checkedin() + engine.pool.checkedout()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops or ``timeout`` passes; True if it stopped."""
        return self._server.wait_for_termination(timeout)

    def stop(self, grace: float = 5.0) -> None:
        """Stop serving (calls in flight get ``grace`` seconds) and close the pool."""
        self._server.stop(grace).wait()
        _dispose(self._backend)


def start_proxy(
    storage_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    advertise: str | None = None,
    threads: int = DEFAULT_THREADS,
    application_name: str = APPLICATION_NAME,
    token: str | None = None,
    studies: Iterable[str] | None = None,
    tls: tuple[Path, Path] | None = None,
) -> ProxyServer:
    """Serve the PostgreSQL storage at ``storage_url`` on ``host:port`` (0: any free port).

    ``advertise`` is the host name workers use in the returned URL (default ``host``;
    give the node's name when binding ``0.0.0.0``). The database gets at most ``threads``
    connections, named ``application_name`` (at most 63 characters kept). ``token``: every
    call must carry it; ``studies``: the only studies served; ``tls``: (certificate, key)
    PEM files to serve TLS with (see :func:`serve_backend`; ``hpo proxy`` sets all three).

    Raises:
        StorageError: not a PostgreSQL URL (Optuna's proxy does not serve journal files,
            optuna#6084), the database is unreachable, the port cannot be bound, or the
            TLS files cannot be read.
    """
    from storage.postgres import open_postgres

    kind = check_url(storage_url)
    if kind != POSTGRES_SCHEME:
        raise StorageError(
            f"storage URL {redact(storage_url)!r}: the gRPC proxy serves PostgreSQL storages "
            f"only ('{POSTGRES_SCHEME}://user@host:port/db'); a journal file cannot be proxied "
            "(optuna#6084), use PostgreSQL for a campaign of many workers"
        )
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: must be an integer >= 1, got {threads!r}")
    credentials = None if tls is None else server_credentials(*tls)  # before connecting
    backend = open_postgres(storage_url, pool_size=threads, application_name=application_name[:63])
    server = serve_backend(
        backend,
        host=host,
        port=port,
        advertise=advertise,
        threads=threads,
        token=token,
        studies=studies,
        credentials=credentials,
    )
    _logger.info("storage proxy for %s listening on %s", redact(storage_url), server.url)
    return server


def serve_backend(
    backend,
    *,
    host: str,
    port: int,
    advertise: str | None = None,
    threads: int,
    token: str | None = None,
    studies: Iterable[str] | None = None,
    credentials: grpc.ServerCredentials | None = None,
) -> ProxyServer:
    """Serve any Optuna RDB-like ``backend`` (``start_proxy`` does this for PostgreSQL).

    ``token``: calls without it are refused (``UNAUTHENTICATED``) before anything else;
    ``studies``: calls on any other study are refused (``PERMISSION_DENIED``);
    ``credentials``: served over TLS (``storage.proxy_auth.server_credentials``).
    None: no such check (in-process tests; ``hpo proxy`` always has a token and a scope).
    """
    counters = _Counters()
    interceptors: list[grpc.ServerInterceptor] = []
    if token is not None:
        interceptors.append(TokenCheck(token, counters.refuse))
    interceptors.append(_StorageErrors(counters))  # around the scope: its lookups too
    if studies is not None:
        interceptors.append(StudyScope(backend, studies, counters.refuse))
    server = grpc.server(
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="proxy"),
        interceptors=interceptors,
        options=_SERVER_OPTIONS,
    )
    servicer = _Servicer(backend)
    api_pb2_grpc.add_StorageServiceServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers((_counts_handler(backend),))
    try:
        if credentials is None:
            bound = server.add_insecure_port(f"{host}:{port}")
        else:
            bound = server.add_secure_port(f"{host}:{port}", credentials)
    except RuntimeError:
        bound = 0
    if not bound:
        _dispose(backend)
        raise StorageError(f"storage proxy: cannot listen on {host}:{port} (port in use?)")
    server.start()
    url = f"{GRPC_SCHEME}://{advertise or host}:{bound}"
    return ProxyServer(server, backend, url, counters, servicer)


def _dispose(backend) -> None:
    engine = getattr(backend, "engine", None)
    if engine is not None:
        engine.dispose()


# ----------------------------------------------------------------------------- client
class _Details(
    namedtuple("_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready")),
    grpc.ClientCallDetails,
):
    pass


class _Guard(grpc.UnaryUnaryClientInterceptor):
    """A deadline on every call; "storage away" errors become ``StorageInternalError``."""

    def __init__(self, owner: ProxyStorage) -> None:
        self.owner = owner

    def intercept_unary_unary(self, continuation, client_call_details, request):
        owner = self.owner
        owner._follow()
        details = _Details(
            client_call_details.method,
            client_call_details.timeout or owner.timeout,
            (*(client_call_details.metadata or ()), *owner._metadata),
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        outcome = continuation(details, request)
        if isinstance(outcome, grpc.RpcError) and outcome.code() in REFUSED:
            raise StorageError(owner._refusal(outcome)) from None
        if isinstance(outcome, grpc.RpcError) and outcome.code() in TRANSIENT:
            owner._stale = True
            # gRPC's details repeat themselves ("failed to connect to all addresses; last
            # error: UNKNOWN: ipv4:...: Connection refused"): keep the last part
            why = outcome.details() or ""
            if "last error:" in why:
                why = why.rsplit(": ", 1)[-1]
            raise StorageInternalError(
                f"storage proxy {owner.url} unreachable ({outcome.code().name}: {why})"
            ) from None
        owner._stale = False
        return outcome


class ProxyStorage(GrpcStorageProxy):
    """The worker's side of the proxy: Optuna's ``GrpcStorageProxy`` made outage-aware.

    Args:
        url: ``grpc://host:port`` of a running proxy; or
        address_file: the file a proxy writes when it listens (``{"url": ...}``), re-read
            after every failed call, so a restarted proxy is found at its new address.
        timeout: seconds a call may take (then ``StorageInternalError``).
        token_file: the proxy's token file (owner-only; read at each connection), sent
            with every call; None: no token (a proxy that asks for none).
        tls_ca: the CA (PEM) the proxy's certificate must be signed by: a TLS connection
            that verifies it; None: plain gRPC.

    Every "cannot reach the storage" error (proxy down, hung or unreachable, or the
    database behind it) is raised as ``optuna.exceptions.StorageInternalError``; a
    refusal (no or a wrong token, a study the proxy does not serve) as ``StorageError``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        address_file: str | Path | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        token_file: str | Path | None = None,
        tls_ca: str | Path | None = None,
    ) -> None:
        if (url is None) == (address_file is None):
            raise ValueError("ProxyStorage: give exactly one of url and address_file")
        self._address_file = None if address_file is None else str(address_file)
        self._token_file = None if token_file is None else str(token_file)
        self._tls_ca = None if tls_ca is None else str(tls_ca)
        self.timeout = float(timeout)
        self._stale = False
        self._counts_unsupported = False
        self._cache: GrpcClientCache | None = None
        self._synced: dict[int, float] = {}  # study id -> when its trials were last read
        self._counted: dict[int, tuple[float, dict]] = {}  # study id -> (when, counts)
        self._relaxed = threading.local()
        if url is not None:
            grpc_address(url)  # StorageError for a malformed URL
        self.url = url or read_address(self._address_file) or _NO_ADDRESS
        with warnings.catch_warnings():  # "experimental since 4.2": we pin the Optuna major
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__()

    def _setup(self) -> None:
        if self.url == _NO_ADDRESS:  # fails at once (UNAVAILABLE) until the file appears
            target = "unix:/nonexistent/wsad-hpo-proxy"
        else:
            host, port = grpc_address(self.url)
            self._host, self._port, target = host, port, f"{host}:{port}"
        # the token once there is a proxy to send it to (`hpo proxy` writes it first)
        token = None
        if self._token_file is not None and self.url != _NO_ADDRESS:
            token = read_token(self._token_file)
        self._metadata = () if token is None else token_metadata(token)
        with deaf_threads():  # gRPC's threads start with the first channel
            channel = _channel(target, self._tls_ca)
        self._channel = grpc.intercept_channel(channel, _Guard(self))
        self._raw_channel = channel
        self._stub = api_pb2_grpc.StorageServiceStub(self._channel)
        self._count = self._channel.unary_unary(
            f"/{_COUNTS_SERVICE}/{_COUNTS_METHOD}",
            request_serializer=_json_bytes,
            response_deserializer=json.loads,
        )
        if getattr(self, "_cache", None) is None:
            self._cache = GrpcClientCache(self._stub)
        else:  # trials already read stay cached across a reconnection (ids are the database's)
            self._cache.grpc_client = self._stub

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        for name in ("_raw_channel", "_relaxed", "_synced", "_counted", "_count", "_metadata"):
            state.pop(name, None)  # the token is read from its file again
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        state.update(_cache=None, _synced={}, _counted={}, _relaxed=threading.local())
        super().__setstate__(state)

    @contextlib.contextmanager
    def recent_reads(self) -> Iterator[None]:
        """Inside, a trial read served less than :data:`RECENT` s ago is served again,
        and a read for states that a whole-study count as recent shows empty returns [].

        Each read otherwise fetches every unfinished trial of the study: with hundreds of
        workers on one study that is hundreds of trials per read, several reads per trial.
        For reads that tolerate a second-old view (which study needs work; Optuna's look
        for a WAITING trial, which claims it in the storage), never for the exactness
        checks.
        """
        self._relaxed.on = True
        try:
            yield
        finally:
            self._relaxed.on = False

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        relaxed = getattr(self._relaxed, "on", False)
        synced = self._synced.get(study_id, -RECENT)
        if relaxed and time.monotonic() - synced < RECENT:
            with self._cache.lock:
                entry = self._cache.studies.get(study_id)
                kept = [] if entry is None else list(entry.trials.values())
            if entry is not None:
                trials = sorted(
                    (t for t in kept if states is None or t.state in states),
                    key=lambda t: t.number,
                )
                return copy.deepcopy(trials) if deepcopy else trials
        if states is not None and not any(s.is_finished() for s in states):
            # Optuna's WAITING look: none in these unfinished states, no read
            counted, counts = self._counted.get(study_id, (-RECENT, None))
            if not (relaxed and time.monotonic() - counted < RECENT):
                counts = self.trial_counts(study_id)
            if not states_present(counts, states):
                return []
        started = time.monotonic()
        trials = super().get_all_trials(study_id, deepcopy=deepcopy, states=states)
        self._synced[study_id] = started
        return trials

    def trial_counts(self, study_id: int, below: int | None = None) -> dict | None:
        """``{TrialState: count}`` of the study's trials (numbered below ``below``), counted
        by the database behind the proxy; None from a proxy that cannot count (an older
        one, or one not on a database). See :mod:`storage.counts`."""
        if self._counts_unsupported:
            return None
        started = time.monotonic()
        try:
            reply = self._count({"study_id": study_id, "below": below})
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                self._counts_unsupported = True
                return None
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise KeyError(exc.details()) from None
            raise
        counts = {TrialState[name]: n for name, n in reply.items()}
        if below is None:  # a whole-study count: inside recent_reads, reused briefly
            self._counted[study_id] = (started, counts)
        return counts

    def close(self) -> None:
        """Close the channel."""
        self._raw_channel.close()

    def _refusal(self, error: grpc.RpcError) -> str:
        """One line for a refused call (what was refused, and what to check)."""
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            hint = (
                f"its token is not the one in {self._token_file}"
                if self._token_file
                else "it wants a token (hpo worker --token-file)"
            )
            return f"storage proxy {self.url} refused this client: {error.details()}; {hint}"
        return (
            f"storage proxy {self.url} refused: {error.details()} (a proxy serves its own "
            "campaign's studies only: is this worker's campaign the proxy's?)"
        )

    def _follow(self) -> None:
        """After a failed call: take the proxy's new address from its file, if it moved."""
        if not self._stale or self._address_file is None:
            return
        url = read_address(self._address_file)
        if url is None or url == self.url:
            return
        _logger.warning("storage proxy moved from %s to %s; reconnecting", self.url, url)
        self._switch(url)
        raise StorageInternalError(f"storage proxy moved to {url}; reconnecting")

    def _switch(self, url: str) -> None:
        """Talk to the proxy at ``url`` from now on (the trial cache is kept)."""
        old, self.url = self._raw_channel, url
        self._stale = False
        self._setup()
        old.close()

    def wait_ready(self, patience: float = 60.0) -> None:
        """Wait until the proxy answers (its address file may not exist yet).

        Raises:
            StorageError: nothing answered within ``patience`` seconds.
        """
        end = time.monotonic() + patience
        while True:
            if self._address_file is not None:
                url = read_address(self._address_file)
                if url is not None and url != self.url:
                    self._switch(url)
            left = end - time.monotonic()
            if self._address_file is None or read_address(self._address_file) is not None:
                try:
                    grpc.channel_ready_future(self._raw_channel).result(
                        timeout=max(0.1, min(left, 5.0))
                    )
                    _ping(self)  # the database behind it answers too
                    self._stale = False
                    return
                except (grpc.FutureTimeoutError, StorageInternalError):
                    pass
            else:
                time.sleep(min(1.0, max(left, 0.0)))
            if time.monotonic() >= end:
                where = (
                    self.url
                    if self._address_file is None
                    else f"{self.url} (address file {self._address_file})"
                )
                if self._address_file is not None and read_address(self._address_file) is None:
                    where = f"in {self._address_file} (no proxy has written its address yet)"
                raise StorageError(
                    f"storage proxy {where}: not answering after {patience:.0f} s; is the "
                    "proxy running (`hpo status` shows its job, `hpo proxy` starts one)?"
                )


def _channel(target: str, tls_ca: str | None) -> grpc.Channel:
    """A plain channel, or with ``tls_ca`` one that verifies the proxy's certificate."""
    if tls_ca is None:
        return grpc.insecure_channel(target, options=_CLIENT_OPTIONS)
    return grpc.secure_channel(target, channel_credentials(tls_ca), options=_CLIENT_OPTIONS)


def _ping(storage) -> None:
    """One cheap round trip to the database (a study name that does not exist)."""
    try:
        storage.get_study_id_from_name(PROBE_STUDY)
    except KeyError:
        pass


def probe(
    url: str,
    timeout: float = 3.0,
    *,
    token_file: str | Path | None = None,
    tls_ca: str | Path | None = None,
) -> str | None:
    """None if the proxy at ``url`` answers within ``timeout`` s, else why not (one line).

    StorageError for an unreadable token file (see ``storage.proxy_auth.read_token``).
    """
    host, port = grpc_address(url)
    metadata = () if token_file is None else token_metadata(read_token(token_file))
    channel = _channel(f"{host}:{port}", None if tls_ca is None else str(tls_ca))
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        stub = api_pb2_grpc.StorageServiceStub(channel)
        request = api_pb2.GetStudyIdFromNameRequest(study_name=PROBE_STUDY)
        try:
            stub.GetStudyIdFromName(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
        return None
    except grpc.FutureTimeoutError:
        return f"no answer within {timeout:g} s"
    except grpc.RpcError as exc:
        return f"{exc.code().name}: {exc.details()}"
    finally:
        channel.close()
