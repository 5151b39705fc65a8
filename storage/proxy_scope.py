"""A storage proxy serves its campaign's studies, and no other study of the database.

:class:`StudyScope` is a server interceptor: given the names of the studies the proxy
may serve, it refuses (``PERMISSION_DENIED``) every call on another study -- creating,
looking up, reading or writing it, or one of its trials -- and lists only the served
studies. No call deletes a study through a proxy. A call on a study or trial that does
not exist goes through (the storage answers ``NOT_FOUND``, as without a scope): it shows
nothing of anyone's data.

Which study a request concerns: its study name, its study id (looked up once per id) or
its trial id (the trial's study, looked up once per trial: trials never change study).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import grpc
from optuna.storages._grpc.auto_generated import api_pb2

__all__ = ["PROBE_STUDY", "StudyScope"]

PROBE_STUDY = "wsad-hpo proxy probe (no such study)"
"""A name any client may look up: the round trip that shows the proxy and its database
answer (``NOT_FOUND`` unless someone created it)."""

_BY_NAME = frozenset({"CreateNewStudy", "GetStudyIdFromName"})
_BY_STUDY = frozenset(
    {
        "SetStudyUserAttribute",
        "SetStudySystemAttribute",
        "GetStudyNameFromId",
        "GetStudyDirections",
        "GetStudyUserAttributes",
        "GetStudySystemAttributes",
        "CreateNewTrial",
        "GetTrialIdFromStudyIdTrialNumber",
        "GetTrials",
        "Count",  # storage.proxy's count of trials by state (a JSON request)
    }
)
_BY_TRIAL = frozenset(
    {
        "SetTrialParameter",
        "SetTrialStateValues",
        "SetTrialIntermediateValue",
        "SetTrialUserAttribute",
        "SetTrialSystemAttribute",
        "GetTrial",
    }
)
_LISTING = "GetAllStudies"


def _field(request, name: str):
    return request[name] if isinstance(request, dict) else getattr(request, name)


def _study_of_trial(backend, trial_id: int) -> int | None:
    """The study id of a trial (None: no such trial)."""
    engine = getattr(backend, "engine", None)
    if engine is not None:  # an RDB storage: one indexed query
        import sqlalchemy as sa
        from optuna.storages._rdb import models

        trials = models.TrialModel.__table__
        with engine.connect() as connection:
            query = sa.select(trials.c.study_id).where(trials.c.trial_id == trial_id)
            row = connection.execute(query).first()
        return None if row is None else int(row[0])
    known = getattr(backend, "_trial_id_to_study_id_and_number", None)  # in memory
    if known is not None:
        entry = known.get(trial_id)
        return None if entry is None else entry[0]
    raise TypeError(f"{type(backend).__name__}: cannot tell a trial's study")


class StudyScope(grpc.ServerInterceptor):
    """Lets through only calls on the studies named ``studies`` (see the module doc).

    ``refused(reason)`` is called for each refusal (the proxy counts them).
    """

    def __init__(self, backend, studies: Iterable[str], refused: Callable[[str], None]) -> None:
        self.names = frozenset(studies)
        self._backend = backend
        self._refused = refused
        self._served: dict[int, bool] = {}  # study id -> one of ours
        self._trial_study: dict[int, int] = {}
        self._lock = threading.Lock()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        behaviour = handler.unary_unary

        def scoped(request, context):
            why = self.refusal(method, request)
            if why:
                self._refused(why)
                context.abort(grpc.StatusCode.PERMISSION_DENIED, why)
            reply = behaviour(request, context)
            if method == _LISTING:
                reply = api_pb2.GetAllStudiesReply(
                    studies=[s for s in reply.studies if s.study_name in self.names]
                )
            return reply

        return grpc.unary_unary_rpc_method_handler(
            scoped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def refusal(self, method: str, request) -> str:
        """Why ``method`` on ``request`` is refused ('' when it may go through)."""
        if method in _BY_NAME:
            name = _field(request, "study_name")
            if name in self.names or (method == "GetStudyIdFromName" and name == PROBE_STUDY):
                return ""
            return f"study {name!r} is not one of the studies this proxy serves"
        if method in _BY_STUDY:
            return self._study_refusal(int(_field(request, "study_id")))
        if method in _BY_TRIAL:
            trial_id = int(_field(request, "trial_id"))
            with self._lock:
                study_id = self._trial_study.get(trial_id)
            if study_id is None:
                study_id = _study_of_trial(self._backend, trial_id)
                if study_id is None:
                    return ""  # no such trial: the storage says so
                with self._lock:
                    self._trial_study[trial_id] = study_id
            return self._study_refusal(study_id)
        if method == _LISTING:
            return ""
        return f"{method} is not served by a campaign's storage proxy"

    def _study_refusal(self, study_id: int) -> str:
        with self._lock:
            served = self._served.get(study_id)
        if served is None:
            try:
                name = self._backend.get_study_name_from_id(study_id)
            except KeyError:
                return ""  # no such study: the storage says so
            served = name in self.names
            with self._lock:
                self._served[study_id] = served
        return "" if served else f"study id {study_id} is not one this proxy serves"
