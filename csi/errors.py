"""The one error type the plugin's services raise: a gRPC status code and a message.

Handlers raise CsiError where the CSI spec names a code; csi.boundary turns it,
and every other failure, into the call's status.
"""

import grpc


class CsiError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rpc_code(exc: grpc.RpcError) -> grpc.StatusCode:
    """The status code of a failed call to the storage server."""
    return exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN


def invalid(message: str) -> CsiError:
    return CsiError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> CsiError:
    return CsiError(grpc.StatusCode.NOT_FOUND, message)


def already_exists(message: str) -> CsiError:
    return CsiError(grpc.StatusCode.ALREADY_EXISTS, message)


def precondition(message: str) -> CsiError:
    return CsiError(grpc.StatusCode.FAILED_PRECONDITION, message)
