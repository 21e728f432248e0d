"""Keyset pages of a list ordered by a unique name: a page token is the last
name listed, so it holds no state on the server and stays valid whatever is
created or deleted meanwhile (even the object it names)."""

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage_server.errors import InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    # Empty on the last page.
    next_token: str


def _encode_token(last_name: str) -> str:
    return base64.urlsafe_b64encode(last_name.encode()).decode()


def _decode_token(token: str, validate_name: Callable[[str], str]) -> str:
    try:
        return validate_name(base64.urlsafe_b64decode(token.encode()).decode())
    except (binascii.Error, UnicodeError, ValueError, InvalidArgument) as exc:
        raise InvalidArgument(f"invalid page token {token!r}") from exc


def page(
    session: Session,
    query: Select[T],
    name: InstrumentedAttribute[str],
    *,
    page_size: int,
    page_token: str,
    validate_name: Callable[[str], str],
) -> Page[T]:
    """One page of `query`'s rows, ordered by `name`; a token that does not hold
    a valid name (as `validate_name` says) is INVALID_ARGUMENT."""
    if page_size > MAX_PAGE_SIZE:
        raise InvalidArgument(f"page size must be at most {MAX_PAGE_SIZE}")
    limit = page_size or DEFAULT_PAGE_SIZE
    query = query.order_by(name).limit(limit + 1)
    if page_token:
        query = query.where(name > _decode_token(page_token, validate_name))
    rows = list(session.scalars(query))
    if len(rows) > limit:
        return Page(rows[:limit], _encode_token(getattr(rows[limit - 1], name.key)))
    return Page(rows, "")
