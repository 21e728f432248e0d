"""Kubernetes quantity notation for sizes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage_server.quantity import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("5G", 5 * 10**9),
        ("5Gi", 5 * 2**30),
        ("500M", 500 * 10**6),
        ("1Ti", 2**40),
        ("1.5Gi", 3 * 2**29),
        ("100k", 100_000),
        ("4Ki", 4096),
        ("123", 123),
        ("1Ei", 2**60),
    ],
)
def test_parse(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "5GB", "G", "-1G", "1.5", "5g", "1e9", "5 Gi x", "0x10"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0"), (1023, "1023"), (1024, "1Ki"), (5 * 2**30, "5Gi"), (3 * 2**29, "1.5Gi")],
)
def test_format(size: int, text: str) -> None:
    assert format_size(size) == text


@given(st.integers(min_value=1, max_value=1023), st.sampled_from([0, 10, 20, 30, 40, 50]))
def test_whole_binary_sizes_round_trip(count: int, shift: int) -> None:
    size = count << shift
    assert parse_size(format_size(size)) == size
