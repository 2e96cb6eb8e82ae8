"""Amplification factors: validation and the ``START:STOP:COUNT`` form used on the command line."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MAX_FACTORS", "check_factors", "parse_factors"]

MAX_FACTORS = 1024
"""Largest COUNT that ``parse_factors`` accepts: 1024 frames of 224x224 RGB take about 150 MB,
while a mistyped COUNT such as 100000 would allocate tens of GiB."""


def check_factors(factors: Sequence[float] | np.ndarray) -> np.ndarray:
    """Validate amplification factors and return them as a float64 vector.

    Args:
        factors: One or more finite amplification factors (a scalar is taken as one factor).

    Returns:
        Array of shape (L,), in the order given.

    Raises:
        ValueError: When the factors are empty, not one-dimensional or not finite.
    """
    values = np.atleast_1d(np.asarray(factors, dtype=np.float64))
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            f"amplification factors must be a non-empty list of numbers, got shape {values.shape}; "
            "pass e.g. numpy.linspace(2, 13, 32)"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"amplification factors must be finite numbers, got {values.tolist()}")
    return values


def parse_factors(text: str) -> np.ndarray:
    """Parse ``START:STOP:COUNT`` into ``COUNT`` factors evenly spaced from START to STOP.

    Args:
        text: For example ``"2:13:32"``; COUNT 1 gives START alone.

    Returns:
        Array of shape (COUNT,), ascending.

    Raises:
        ValueError: When the text is not three numbers separated by colons, COUNT is not an
            integer from 1 to ``MAX_FACTORS``, a bound is not finite, START is negative or
            STOP is below START. Factor 0 is allowed: it gives the apex unchanged.
    """
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(f"invalid factors {text!r}: expected START:STOP:COUNT, e.g. 2:13:32")

    try:
        start, stop = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"invalid factors {text!r}: START and STOP must be numbers, e.g. 2:13:32") from None
    try:
        count = int(parts[2])
    except ValueError:
        raise ValueError(f"invalid factors {text!r}: COUNT must be a positive integer, e.g. 2:13:32") from None

    if count < 1:
        raise ValueError(f"invalid factors {text!r}: COUNT must be at least 1, got {count}")
    if count > MAX_FACTORS:
        raise ValueError(f"invalid factors {text!r}: COUNT must be at most {MAX_FACTORS}, got {count}")
    if not (np.isfinite(start) and np.isfinite(stop)):
        raise ValueError(f"invalid factors {text!r}: START and STOP must be finite numbers")
    if start < 0:
        raise ValueError(f"invalid factors {text!r}: START must be at least 0 (0 keeps the apex unchanged), got {start:g}")
    if stop < start:
        raise ValueError(f"invalid factors {text!r}: STOP ({stop:g}) is below START ({start:g}); give the factors in ascending order")
    if count == 1:
        return np.array([start])
    return np.linspace(start, stop, count)
