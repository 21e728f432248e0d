"""Assertions about the errno an operation fails with."""

import errno
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def fails_with(*codes: int) -> Iterator[None]:
    """The block must raise OSError with one of `codes` as its errno."""
    with pytest.raises(OSError) as info:
        yield
    got = info.value.errno
    want = " or ".join(errno.errorcode[c] for c in codes)
    got_name = errno.errorcode.get(got, str(got)) if got is not None else "no errno"
    assert got in codes, f"expected {want}, got {got_name}: {info.value}"
