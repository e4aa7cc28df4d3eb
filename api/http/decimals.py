"""Whole numbers that clients write into headers: ASCII digits only, read without ``int()``'s traps.

``str.isdigit()`` also accepts digits ``int()`` refuses (``²``) and ``int()`` accepts digits from
other scripts (``٣``) and refuses more than 4,300 digits: a header checked one way and read the
other answers 500. Here a number is ASCII digits, read only once it is known to be small enough.
"""

from __future__ import annotations

BIGINT_MAX = 2**63 - 1  # the largest id Postgres (bigint) and SQLite (integer) store


def is_decimal(text: str) -> bool:
    """``text`` is a non-negative whole number in ASCII digits (leading zeros allowed)."""
    return text.isascii() and text.isdigit()


def decimal_at_most(text: str, maximum: int) -> int | None:
    """The value of ``text`` (ASCII digits, see :func:`is_decimal`) if it is at most ``maximum``;
    None if it is larger, however many digits it has."""
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(maximum)):
        return None
    value = int(digits)
    return value if value <= maximum else None
