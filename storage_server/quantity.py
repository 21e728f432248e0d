"""Byte sizes in Kubernetes quantity notation: 5G is 5*10^9 bytes, 5Gi is 5*2^30."""

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kMGTPE]i?|Ki)?\s*$")
_BINARY_UNITS = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]


def parse_size(text: str) -> int:
    """Return the number of bytes `text` names; ValueError says what is wrong."""
    match = _QUANTITY.match(text)
    if match is None or (match.group(2) or "") not in _SUFFIXES:
        raise ValueError(
            f"invalid size {text!r}: expected a number with an optional suffix "
            "such as 500M, 5G, 5Gi or 1Ti"
        )
    try:
        value = Decimal(match.group(1)) * _SUFFIXES[match.group(2) or ""]
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"invalid size {text!r}") from exc
    if value != value.to_integral_value():
        raise ValueError(f"invalid size {text!r}: it is not a whole number of bytes")
    return int(value)


def format_size(size: int) -> str:
    """Render `size` bytes compactly in binary units, e.g. 5Gi or 1.5Mi."""
    value = float(size)
    for unit in _BINARY_UNITS:
        if value < 1024 or unit == _BINARY_UNITS[-1]:
            text = f"{value:.1f}".removesuffix(".0") if unit else str(size)
            return f"{text}{unit}"
        value /= 1024
    raise AssertionError("unreachable")
