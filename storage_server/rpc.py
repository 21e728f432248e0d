"""The RPC boundary: token check, one log line per call, and domain errors mapped
to gRPC status codes, for every service the server hosts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
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
}

# Health checks come from probes that hold no token and learn nothing secret.
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)


def _volume_of(request: Any) -> str:
    """The volume a request is about, for the log line."""
    ref = getattr(request, "volume", None)
    if ref is not None and hasattr(ref, "WhichOneof"):
        which = ref.WhichOneof("ref")
        return str(getattr(ref, which)) if which else ""
    return str(getattr(request, "name", ""))


def _status_of(exc: Exception) -> tuple[grpc.StatusCode, str]:
    for kind, code in STATUS.items():
        if isinstance(exc, kind):
            return code, str(exc)
    log.exception("unexpected error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"


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
        if handler is None or handler.request_streaming:
            # Client-streaming calls are wrapped by their servicer (none yet).
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        authorized = self._authorized(handler_call_details)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _guard_unary(handler.unary_unary, method, authorized),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _guard_stream(handler.unary_stream, method, authorized),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def _log_call(method: str, request: Any, code: grpc.StatusCode, started: float) -> None:
    fields = {
        "method": method,
        "volume": _volume_of(request),
        "code": code.name,
        "ms": round((time.monotonic() - started) * 1000, 2),
    }
    level = logging.INFO if code != grpc.StatusCode.INTERNAL else logging.ERROR
    log.log(level, "rpc", extra={FIELDS: fields})


def _guard_unary(
    behavior: Callable[[Any, grpc.ServicerContext], Any], method: str, authorized: bool
) -> Callable[[Any, grpc.ServicerContext], Any]:
    def guarded(request: Any, context: grpc.ServicerContext) -> Any:
        started = time.monotonic()
        code, message = grpc.StatusCode.UNAUTHENTICATED, "missing or wrong access token"
        if authorized:
            try:
                response = behavior(request, context)
            except Exception as exc:
                code, message = _status_of(exc)
            else:
                _log_call(method, request, grpc.StatusCode.OK, started)
                return response
        _log_call(method, request, code, started)
        context.abort(code, message)

    return guarded


def _guard_stream(
    behavior: Callable[[Any, grpc.ServicerContext], Iterable[Any]], method: str, authorized: bool
) -> Callable[[Any, grpc.ServicerContext], Iterable[Any]]:
    def guarded(request: Any, context: grpc.ServicerContext) -> Iterable[Any]:
        started = time.monotonic()
        code, message = grpc.StatusCode.UNAUTHENTICATED, "missing or wrong access token"
        if authorized:
            try:
                yield from behavior(request, context)
            except Exception as exc:
                code, message = _status_of(exc)
            else:
                _log_call(method, request, grpc.StatusCode.OK, started)
                return
        _log_call(method, request, code, started)
        context.abort(code, message)

    return guarded
