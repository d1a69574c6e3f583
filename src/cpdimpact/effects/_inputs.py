"""Input checks shared by the effect-size calculators (one rule for each kind of argument)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import InvalidValueError

__all__: list[str] = []


def real(name: str, value: object) -> float:
    """A real number (a bool is not one), as a float.

    Parameters
    ----------
    name : str
        Named in the message.
    value : object
        The value given.

    Returns
    -------
    float
        ``value`` as a float (it may be infinite or NaN).

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If ``value`` is not a real number.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InvalidValueError(f"{name} must be a real number, got {value!r}.")
    return float(value)


def finite(name: str, value: object) -> float:
    """A finite real number, as a float.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : object
        The value given.

    Returns
    -------
    float
        ``value`` as a float.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If ``value`` is not a real number (a bool is not one) or is infinite or NaN.
    """
    value = real(name, value)
    if not math.isfinite(value):
        raise InvalidValueError(f"{name} must be finite, got {value!r}.")
    return value


def positive_sd(name: str, value: object) -> float:
    """``value`` as a float if it can be a standard deviation (a real number, positive and
    finite); else an :class:`~cpdimpact.errors.InvalidValueError` naming ``name``."""
    value = real(name, value)
    if not (math.isfinite(value) and value > 0):
        raise InvalidValueError(
            f"{name} must be positive and finite, got {value!r}; a standard deviation of 0 "
            f"means the group has no variation, and a negative one is a typing error."
        )
    return value


def whole(name: str, value: object, minimum: int) -> int:
    """A whole number of at least ``minimum`` (``3.0`` counts as 3), as an int.

    Parameters
    ----------
    name, value : str, object
        The argument's name (for the message) and the value given; ``3.0`` counts as 3.
    minimum : int
        The smallest value allowed.

    Returns
    -------
    int
        ``value`` as an int.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If ``value`` is not a finite whole real number (a bool is not one) of at least
        ``minimum``.
    """
    valid = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(value)
        and float(value).is_integer()
        and value >= minimum
    )
    if not valid:
        raise InvalidValueError(
            f"{name} must be a whole number of at least {minimum}, got {value!r}."
        )
    return int(value)


def label_text(label: object) -> str:
    """The ``label`` argument of an effect-size function, checked to be a string.

    Parameters
    ----------
    label : object
        The value given.

    Returns
    -------
    str
        ``label`` unchanged.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If ``label`` is not a string.
    """
    if not isinstance(label, str):
        raise InvalidValueError(f"label must be a string, got {label!r}.")
    return label
