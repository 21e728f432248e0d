"""The RPC boundary: token check, one log line per call, and domain errors mapped
to gRPC status codes, for every service and every kind of call the server hosts.

Calls of the data path (what mounts send, and health probes) log at debug level:
a busy mount makes thousands a second, and at info level the line cost ~0.2 ms
of a ~0.7 ms round trip. Admin calls, and every internal error, log at info or
above."""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from storage_server import errors
from storage_server.auth import token_matches
from storage_server.logs import FIELDS

log = logging.getLogger(__name__)

STATUS = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    # What clients retry on, as for a server that is down.
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Abandoned: grpc.StatusCode.CANCELLED,
}

# File system errors keep their errno in trailing metadata; the status code is
# the nearest gRPC one, for callers that only look at codes.
ERRNO_KEY = "netvol-errno"
ERRNO_STATUS = {
    errno.ENOENT: grpc.StatusCode.NOT_FOUND,
    errno.EEXIST: grpc.StatusCode.ALREADY_EXISTS,
    errno.ENOSPC: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errno.EDQUOT: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errno.EACCES: grpc.StatusCode.PERMISSION_DENIED,
    errno.EPERM: grpc.StatusCode.PERMISSION_DENIED,
    errno.EINVAL: grpc.StatusCode.INVALID_ARGUMENT,
    errno.ENAMETOOLONG: grpc.StatusCode.INVALID_ARGUMENT,
    errno.EFBIG: grpc.StatusCode.OUT_OF_RANGE,
}

# Health checks come from probes that hold no token and learn nothing secret.
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
QUIET_PREFIXES = ("/netvol.v1.Filesystem/", "/netvol.v1.Locks/", *OPEN_PREFIXES)
UNAUTHENTICATED = (grpc.StatusCode.UNAUTHENTICATED, "missing or wrong access token")


def _volume_of(request: Any) -> str:
    """The volume (or snapshot) a request is about, for the log line."""
    for field in ("volume", "snapshot", "source_volume"):
        ref = getattr(request, field, None)
        if ref is not None and hasattr(ref, "WhichOneof"):
            which = ref.WhichOneof("ref")
            return str(getattr(ref, which)) if which else ""
    return str(getattr(request, "volume_id", "") or getattr(request, "name", ""))


def _status_of(exc: Exception, context: grpc.ServicerContext) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, errors.FsError):
        context.set_trailing_metadata(((ERRNO_KEY, str(exc.errno)),))
        return ERRNO_STATUS.get(exc.errno, grpc.StatusCode.FAILED_PRECONDITION), str(exc)
    for kind, code in STATUS.items():
        if isinstance(exc, kind):
            return code, str(exc)
    log.exception("unexpected error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"


class _Call:
    """Times one call, logs it once, and turns a failure into an abort."""

    def __init__(self, method: str, context: grpc.ServicerContext, quiet: bool) -> None:
        self.method = method
        self.context = context
        self.level = logging.DEBUG if quiet else logging.INFO
        self.started = time.monotonic()
        self.volume = ""

    def done(self, code: grpc.StatusCode) -> None:
        level = logging.ERROR if code == grpc.StatusCode.INTERNAL else self.level
        if not log.isEnabledFor(level):
            return
        fields = {
            "method": self.method,
            "volume": self.volume,
            "code": code.name,
            "ms": round((time.monotonic() - self.started) * 1000, 2),
        }
        log.log(level, "rpc", extra={FIELDS: fields})

    def fail(self, status: tuple[grpc.StatusCode, str]) -> None:
        self.done(status[0])
        self.context.abort(*status)


def _guard(
    behavior: Callable[..., Any], method: str, authorized: bool, streams: bool, quiet: bool
) -> Any:
    """Wrap one handler behavior; `streams` says whether it yields responses."""

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        call = _Call(method, context, quiet)
        call.volume = _volume_of(request)
        if not authorized:
            call.fail(UNAUTHENTICATED)
        try:
            response = behavior(request, context)
        except Exception as exc:
            call.fail(_status_of(exc, context))
        call.done(grpc.StatusCode.OK)
        return response

    def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        call = _Call(method, context, quiet)
        call.volume = _volume_of(request)
        if not authorized:
            call.fail(UNAUTHENTICATED)
        try:
            yield from behavior(request, context)
        except Exception as exc:
            call.fail(_status_of(exc, context))
        call.done(grpc.StatusCode.OK)

    return streaming if streams else unary


_KINDS = (
    ("unary_unary", grpc.unary_unary_rpc_method_handler, False),
    ("unary_stream", grpc.unary_stream_rpc_method_handler, True),
    ("stream_unary", grpc.stream_unary_rpc_method_handler, False),
    ("stream_stream", grpc.stream_stream_rpc_method_handler, True),
)


class Boundary(grpc.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

    def _authorized(self, details: grpc.HandlerCallDetails) -> bool:
        if details.method.startswith(OPEN_PREFIXES):
            return True
        for key, value in details.invocation_metadata or ():
            if key == "authorization" and isinstance(value, str):
                scheme, _, presented = value.partition(" ")
                return scheme.lower() == "bearer" and token_matches(presented, self._token)
        return False

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method.rsplit("/", 1)[-1]
        quiet = handler_call_details.method.startswith(QUIET_PREFIXES)
        authorized = self._authorized(handler_call_details)
        for attribute, make, streams in _KINDS:
            behavior = getattr(handler, attribute)
            if behavior is not None:
                return make(
                    _guard(behavior, method, authorized, streams, quiet),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        return handler
