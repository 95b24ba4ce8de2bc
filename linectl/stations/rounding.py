"""How judged numbers are rounded: the reported value is the judged value.

Each value is rounded to its reporting precision with GB/T 8170 rounding
(round half to even on the decimal digits as written, not on the binary
float), and the verdict compares that rounded value with the limit. So the
numbers published upstream always reproduce the verdict: an axle rate
reported as 60.0 % never fails a 60 % limit.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal


def reported(x: float, digits: int) -> float | int:
    """`x` rounded half-to-even to `digits` decimals; an int when `digits` is 0."""
    # repr() gives the shortest decimal that reads back as x, so 0.125 rounds as
    # 0.125 and not as the binary 0.12499999...
    d = Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)
    return int(d) if digits == 0 else float(d)


def limit_value(x: float) -> float | int:
    """A limit as published: 60 rather than 60.0, 0.95 as is."""
    return int(x) if float(x).is_integer() else float(x)
