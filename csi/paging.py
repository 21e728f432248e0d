"""CSI's max_entries and starting_token over the storage server's pages.

The server's keyset token (the last name listed) is ours too: it stays valid
when that object is deleted, and holds no state in the plugin.
"""

from collections.abc import Callable, Sequence
from typing import TypeVar

import grpc

from csi.errors import CsiError, invalid, rpc_code
from storage_server.paging import MAX_PAGE_SIZE

T = TypeVar("T")

# One page of the server: (page size, token) -> (items, next token).
Fetch = Callable[[int, str], tuple[Sequence[T], str]]


def collect(fetch: Fetch[T], max_entries: int, token: str) -> tuple[list[T], str]:
    """Up to max_entries items (all of them for 0) from `token` on, and the
    token to continue after them ('' when none are left)."""
    if max_entries < 0:
        raise invalid("max_entries must not be negative")
    items: list[T] = []
    while True:
        room = max_entries - len(items) if max_entries else MAX_PAGE_SIZE
        try:
            page, next_token = fetch(min(room, MAX_PAGE_SIZE), token)
        except grpc.RpcError as exc:
            # The page size is always valid, so the token is what the server refused.
            if rpc_code(exc) == grpc.StatusCode.INVALID_ARGUMENT:
                raise CsiError(
                    grpc.StatusCode.ABORTED, f"invalid starting_token {token!r}; list again"
                ) from exc
            raise
        items.extend(page)
        token = next_token
        if not token or (max_entries and len(items) >= max_entries):
            return items, token
