"""Months of additional progress: the EEF Teaching and Learning Toolkit conversion."""

from __future__ import annotations

import math
import numbers
from bisect import bisect_right
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

from ..errors import InvalidValueError

__all__ = ["EEF_MONTHS", "months_band", "months_of_progress"]

# Lower edge of months 1..12, in hundredths of a standard deviation (the Toolkit table is
# stated on effect sizes rounded to two decimals, so integers in hundredths are exact).
_LOWER_HUNDREDTHS = (2, 10, 19, 27, 36, 45, 53, 62, 70, 79, 88, 96)
_MAX_MONTHS = len(_LOWER_HUNDREDTHS)
_CENT = Decimal("0.01")


def _band_hundredths(months: int) -> tuple[int, float]:
    """Band of a non-negative month value in hundredths; the top band is open."""
    if months == 0:
        return -1, 1
    low = _LOWER_HUNDREDTHS[months - 1]
    high = _LOWER_HUNDREDTHS[months] - 1 if months < _MAX_MONTHS else math.inf
    return low, high


def _round_hundredths(value: float) -> int:
    """Effect size rounded half-up (away from zero) to 2 decimals, in hundredths.

    Rounding works on the shortest decimal representation of the float (``repr``), so 0.185,
    stored in binary as 0.18499999..., rounds to 0.19 as a reader of the printed value expects.
    """
    return int(Decimal(repr(float(value))).quantize(_CENT, rounding=ROUND_HALF_UP).scaleb(2))


def _months_scalar(value: float) -> int:
    if abs(value) >= 1.0:  # beyond the top band; also avoids quantising huge numbers
        return int(math.copysign(_MAX_MONTHS, value))
    hundredths = _round_hundredths(value)
    months = bisect_right(_LOWER_HUNDREDTHS, abs(hundredths))
    return -months if hundredths < 0 else months


def _as_float(value: object) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InvalidValueError(
            f"months_of_progress needs numeric effect sizes, got {value!r} "
            f"({type(value).__name__}); convert the values to float first."
        )
    return float(value)


def months_of_progress(effect_size):
    """Convert effect sizes to months of additional progress (EEF Toolkit table).

    Parameters
    ----------
    effect_size : float, array_like or pandas.Series
        Standardised effect size(s) in pupil standard deviations, e.g. Hedges' *g*.

    Returns
    -------
    int, pandas.NA, numpy.ndarray or pandas.Series
        Months of additional progress, an integer from -12 to 12.

        - scalar in: a Python ``int``; a missing value (``NaN``, ``None``, ``pd.NA``) gives
          ``pd.NA``;
        - ``pandas.Series`` in: a Series with the same index and name and the nullable
          ``"Int64"`` dtype, ``<NA>`` where the input is missing;
        - any other array-like in: a ``numpy.ndarray`` of the same shape, ``int64`` when no
          value is missing, otherwise ``float64`` holding whole numbers and ``nan``.

    Notes
    -----
    The EEF Teaching and Learning Toolkit converts an effect size *d* to months of progress by
    first rounding *d* to two decimals and then reading the band it falls in:

    ======  ===============  ======  ===============
    months  effect size      months  effect size
    ======  ===============  ======  ===============
    0       -0.01 to 0.01    7       0.53 to 0.61
    1       0.02 to 0.09     8       0.62 to 0.69
    2       0.10 to 0.18     9       0.70 to 0.78
    3       0.19 to 0.26     10      0.79 to 0.87
    4       0.27 to 0.35     11      0.88 to 0.95
    5       0.36 to 0.44     12      0.96 and above
    6       0.45 to 0.52
    ======  ===============  ======  ===============

    Negative effect sizes mirror the table: ``months(-d) == -months(d)`` exactly.

    Rounding is half-up (ties away from zero) on the decimal representation of the value,
    ``repr(d)``, so ``0.185 -> 0.19 -> 3`` and ``0.094 -> 0.09 -> 1`` but ``0.095 -> 0.10 -> 2``.
    Rounding the binary float directly would give ``round(0.185, 2) == 0.18`` and 2 months.
    Infinite effect sizes map to +/-12.

    References
    ----------
    Education Endowment Foundation, *Teaching and Learning Toolkit: guide to the Toolkit*
    (conversion of effect sizes into months' progress).

    Examples
    --------
    >>> from cpdimpact.effects import months_of_progress
    >>> months_of_progress(0.185)
    3
    >>> months_of_progress(-0.20)
    -3
    >>> months_of_progress([0.01, 0.02, 0.96, float("nan")])
    array([ 0.,  1., 12., nan])
    >>> import pandas as pd
    >>> months_of_progress(pd.Series([0.09, 0.10], index=["all", "fsm"]))
    all    1
    fsm    2
    dtype: Int64
    """
    if isinstance(effect_size, pd.Series):
        values = effect_size.to_numpy(dtype=float, na_value=np.nan)
        months = [pd.NA if np.isnan(v) else _months_scalar(v) for v in values]
        return pd.Series(months, index=effect_size.index, name=effect_size.name, dtype="Int64")
    if isinstance(effect_size, pd.DataFrame):
        raise InvalidValueError(
            "months_of_progress takes a scalar, an array or a Series, not a DataFrame; "
            "apply it column by column, e.g. frame['estimate'].pipe(months_of_progress)."
        )
    if np.ndim(effect_size) == 0:
        value = effect_size.item() if isinstance(effect_size, np.ndarray) else effect_size
        if value is None or value is pd.NA:
            return pd.NA
        value = _as_float(value)
        return pd.NA if math.isnan(value) else _months_scalar(value)

    array = np.asarray(effect_size, dtype=object)
    floats = np.array([np.nan if v is None or v is pd.NA else _as_float(v) for v in array.flat])
    missing = np.isnan(floats)
    out = np.zeros(floats.shape, dtype=float)
    out[missing] = np.nan
    out[~missing] = [_months_scalar(v) for v in floats[~missing]]
    out = out.reshape(array.shape)
    return out if missing.any() else out.astype(np.int64)


def months_band(months: int) -> tuple[float, float]:
    """Effect-size band of a month value in the EEF Toolkit table.

    Parameters
    ----------
    months : int
        Months of additional progress, from -12 to 12.

    Returns
    -------
    tuple of float
        ``(low, high)``: the closed range of effect sizes, rounded to two decimals, that convert
        to ``months``. The top band is open: ``months_band(12) == (0.96, inf)``; negative
        months mirror: ``months_band(-3) == (-0.26, -0.19)``.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If ``months`` is not a whole number between -12 and 12.

    See Also
    --------
    months_of_progress : the conversion this band inverts.

    Examples
    --------
    >>> from cpdimpact.effects import months_band
    >>> months_band(3)
    (0.19, 0.26)
    >>> months_band(12)
    (0.96, inf)
    >>> months_band(-1)
    (-0.09, -0.02)
    """
    valid = (
        isinstance(months, numbers.Real)
        and not isinstance(months, bool | np.bool_)
        and float(months).is_integer()
        and abs(months) <= _MAX_MONTHS
    )
    if not valid:
        raise InvalidValueError(
            f"months must be a whole number from -{_MAX_MONTHS} to {_MAX_MONTHS}, got {months!r}."
        )
    months = int(months)
    low, high = _band_hundredths(abs(months))
    # Integer / 100 is correctly rounded, so 19 / 100 is the same float as the literal 0.19.
    low, high = low / 100, high / 100
    return (-high, -low) if months < 0 else (low, high)


def _eef_months_frame() -> pd.DataFrame:
    bands = [months_band(m) for m in range(_MAX_MONTHS + 1)]
    return pd.DataFrame(
        {
            "months": np.arange(_MAX_MONTHS + 1, dtype=np.int64),
            "es_low": [low for low, _ in bands],
            "es_high": [high for _, high in bands],
        }
    )


#: The EEF Toolkit conversion table: columns ``months``, ``es_low``, ``es_high`` (effect sizes
#: rounded to two decimals; ``es_high`` is ``inf`` for 12 months). Negative effects mirror it.
#: A copy for reading: the conversion itself does not consult this frame.
EEF_MONTHS = _eef_months_frame()
