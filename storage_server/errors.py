"""Domain errors of the storage server.

Each names what went wrong in the server's own terms; the RPC boundary
(storage_server.rpc) maps them to gRPC status codes in one table.
"""

import os


class NetvolError(Exception):
    """Base of every expected failure; the message is shown to the caller."""


class InvalidArgument(NetvolError):
    """The request is malformed: a bad name, a zero size, a bad token."""


class NotFound(NetvolError):
    """The named object does not exist."""


class AlreadyExists(NetvolError):
    """An object of that name exists and differs from what was asked for."""


class OutOfRange(NetvolError):
    """A value is well-formed but beyond what the server allows."""


class FailedPrecondition(NetvolError):
    """The object is not in a state that allows the operation."""


class Unavailable(NetvolError):
    """The server cannot do it now; the same call, sent again, can succeed."""


class Abandoned(NetvolError):
    """The caller gave up on the call (cancelled it, or its deadline passed)."""


class FsError(NetvolError):
    """A file system call failed with a POSIX errno (ENOENT, ENOTEMPTY, ENOSPC, ...)."""

    def __init__(self, errno: int, message: str = "") -> None:
        super().__init__(message or os.strerror(errno))
        self.errno = errno
