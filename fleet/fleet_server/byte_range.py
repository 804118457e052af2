"""Parse a single `Range: bytes=...` header (RFC 9110 single-range subset)."""

from __future__ import annotations

import re

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return (start, end_inclusive), None to serve the whole body, or raise Unsatisfiable.

    Multi-range and malformed headers are ignored (whole body), as RFC 9110 allows.
    """
    if not header:
        return None
    m = _RANGE.match(header)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    first, last = m.group(1), m.group(2)
    if first == "":  # suffix range: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise Unsatisfiable()
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid per RFC: ignore the header
    if start >= size:
        raise Unsatisfiable()
    return start, min(end, size - 1)
