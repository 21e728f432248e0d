"""The plugin's RPC boundary: one log line per call, and every failure mapped once
to the status code the CSI spec names, never UNKNOWN with a traceback.

The line carries method, volume, status code and duration; at debug level also
the request, with every field the proto marks csi_secret removed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import text_format
from google.protobuf.message import Message

from csi.errors import CsiError, rpc_code
from proto.csi.v1 import csi_pb2
from storage_server.config import ConfigError
from storage_server.logs import FIELDS

log = logging.getLogger(__name__)


def strip_secrets(message: Message) -> Message:
    """A copy of `message` without the fields marked csi_secret, at any depth."""
    copy = type(message)()
    copy.CopyFrom(message)
    _clear_secrets(copy)
    return copy


def _clear_secrets(message: Message) -> None:
    for field, value in message.ListFields():
        if field.GetOptions().Extensions[csi_pb2.csi_secret]:
            message.ClearField(field.name)
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            for item in value if field.is_repeated else [value]:
                _clear_secrets(item)


def _volume_of(request: Any) -> str:
    for field in ("volume_id", "source_volume_id", "snapshot_id", "name"):
        value = getattr(request, field, "")
        if value:
            return str(value)
    return ""


def status_of(exc: Exception) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, CsiError):
        return exc.code, exc.message
    if isinstance(exc, grpc.RpcError):
        # The storage server already speaks in status codes; UNKNOWN is its crash.
        code = rpc_code(exc)
        if code == grpc.StatusCode.UNKNOWN:
            code = grpc.StatusCode.INTERNAL
        details = exc.details() if isinstance(exc, grpc.Call) else ""
        return code, f"storage server: {details or code.name}"
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
    if isinstance(exc, ConfigError):
        return grpc.StatusCode.FAILED_PRECONDITION, f"plugin configuration: {exc}"
    log.error("unexpected error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the plugin log"


def _log_call(method: str, request: Any, code: grpc.StatusCode, started: float) -> None:
    fields = {
        "method": method,
        "volume": _volume_of(request),
        "code": code.name,
        "ms": round((time.monotonic() - started) * 1000, 2),
    }
    if log.isEnabledFor(logging.DEBUG):
        fields["request"] = text_format.MessageToString(strip_secrets(request), as_one_line=True)
    level = logging.ERROR if code == grpc.StatusCode.INTERNAL else logging.INFO
    log.log(level, "rpc", extra={FIELDS: fields})


def _guard(method: str, behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Any:
    def guarded(request: Any, context: grpc.ServicerContext) -> Any:
        started = time.monotonic()
        try:
            response = behavior(request, context)
        except Exception as exc:
            code, message = status_of(exc)
            _log_call(method, request, code, started)
            context.abort(code, message)
        _log_call(method, request, grpc.StatusCode.OK, started)
        return response

    return guarded


class Boundary(grpc.ServerInterceptor):
    """Wraps every CSI method; all of them are unary."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        return grpc.unary_unary_rpc_method_handler(
            _guard(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
