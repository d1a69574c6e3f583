"""Checks of the options given to specs and functions, written once.

Every spec checks its options when it is made (in ``__post_init__``), so a mistyped option
fails before any data are read. A bad option raises
:class:`~cpdimpact.errors.InvalidArgumentError` (out of range, not one of the choices) or its
subclass :class:`~cpdimpact.errors.ArgumentTypeError` (wrong type); both subclass
:class:`ValueError`, and the second also :class:`TypeError`. Messages name the argument, the
value as written (:func:`~cpdimpact.errors.format_value`: ``2.5``, not ``np.float64(2.5)``)
and what is allowed.

Seeds
-----
Every estimator that draws random numbers takes ``seed`` as ``None`` (fresh entropy), an int
``>= 0``, a :class:`numpy.random.SeedSequence` or a :class:`numpy.random.Generator`. An int
``n`` and ``SeedSequence(n)`` are the same seed: they give identical draws (as
``numpy.random.default_rng`` treats them). A Generator is drawn from (it advances), so two
fits given the same Generator object give different draws.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection

import numpy as np

from cpdimpact.errors import ArgumentTypeError, InvalidArgumentError, format_value

__all__ = [
    "check_alpha",
    "check_bool",
    "check_choice",
    "check_int",
    "check_number",
    "check_positive_int",
    "check_probability",
    "check_seed",
    "fresh_seed",
    "recordable_sequence",
    "recorded_seed",
    "resolve_seed",
    "seed_sequence",
]


def _is_real(value: object) -> bool:
    """A real number that is not a bool (``True`` is an int to Python, not to a user)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _is_whole(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_number(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict: bool = False,
    hint: str = "",
) -> float:
    """A finite real number within ``[minimum, maximum]`` (open ends with ``strict=True``).

    Returns the value as a float. ``hint`` is appended to the message (what the option means).
    """
    if not _is_real(value):
        raise ArgumentTypeError(
            f"{name} must be a number, got {format_value(value)} ({type(value).__name__}).{hint}"
        )
    number = float(value)  # type: ignore[arg-type]
    below = minimum is not None and (number <= minimum if strict else number < minimum)
    above = maximum is not None and (number >= maximum if strict else number > maximum)
    if not math.isfinite(number) or below or above:
        if minimum is not None and maximum is not None:
            where = f"{'strictly ' if strict else ''}between {minimum:g} and {maximum:g}"
        elif minimum is not None:
            where = f"{'above' if strict else 'at least'} {minimum:g}"
        elif maximum is not None:
            where = f"{'below' if strict else 'at most'} {maximum:g}"
        else:
            where = "finite"
        raise InvalidArgumentError(f"{name} must be {where}, got {format_value(value)}.{hint}")
    return number


def check_alpha(alpha: object, name: str = "alpha") -> float:
    """``alpha``, 1 minus the confidence level: a real number strictly between 0 and 1.

    Returns it as a float.
    """
    return check_number(
        alpha,
        name,
        minimum=0,
        maximum=1,
        strict=True,
        hint=" It is 1 minus the confidence level: 0.05 gives 95% intervals.",
    )


def check_probability(
    value: object, name: str, *, include_zero: bool = True, include_one: bool = True
) -> float:
    """A share or probability in ``[0, 1]`` (ends excluded as asked); returned as a float."""
    number = check_number(value, name)
    if (number < 0 or (number == 0 and not include_zero)) or (
        number > 1 or (number == 1 and not include_one)
    ):
        low, high = ("[" if include_zero else "("), ("]" if include_one else ")")
        raise InvalidArgumentError(
            f"{name} must lie in {low}0, 1{high}, got {format_value(value)}."
        )
    return number


def check_int(value: object, name: str, *, minimum: int | None = 0, hint: str = "") -> int:
    """A whole number (not a bool, not ``2.0``) of at least ``minimum``; returned as an int."""
    if not _is_whole(value):
        raise ArgumentTypeError(
            f"{name} must be a whole number"
            + (f" >= {minimum}" if minimum is not None else "")
            + f", got {format_value(value)} ({type(value).__name__}).{hint}"
        )
    if minimum is not None and value < minimum:  # type: ignore[operator]
        raise InvalidArgumentError(
            f"{name} must be a whole number >= {minimum}, got {format_value(value)}.{hint}"
        )
    return int(value)  # type: ignore[arg-type]


def check_positive_int(value: object, name: str, minimum: int = 1, *, hint: str = "") -> int:
    """A whole number of at least ``minimum`` (default 1): counts such as ``n_bootstrap``."""
    return check_int(value, name, minimum=minimum, hint=hint)


def check_choice(value: object, name: str, choices: Collection[object]) -> object:
    """``value`` if it is one of ``choices``; else name them all."""
    try:
        known = value in choices
    except TypeError:  # an unhashable value tested against a set
        known = False
    if isinstance(value, bool | np.bool_) and not any(isinstance(c, bool) for c in choices):
        known = False  # True == 1 would pass for a choice of 1
    if not known:
        allowed = ", ".join(format_value(c) for c in choices)
        raise InvalidArgumentError(f"{name} must be one of {allowed}, got {format_value(value)}.")
    return value


def check_treatment_not_covariate(treatment: str, covariates: Collection[str]) -> None:
    """The treatment column may not also be a covariate (it would be adjusted away)."""
    if treatment in covariates:
        raise InvalidArgumentError(
            f"the treatment {format_value(treatment)} is also listed in covariates; remove it "
            "from covariates."
        )


def check_bool(value: object, name: str) -> bool:
    """``True`` or ``False`` (numpy's bools too; not 0/1 or the string ``"false"``)."""
    if not isinstance(value, bool | np.bool_):
        raise ArgumentTypeError(f"{name} must be True or False, got {format_value(value)}.")
    return bool(value)


# ------------------------------------------------------------------------------ seeds
_SEED_TYPES = "None, an int >= 0, a numpy SeedSequence or a numpy Generator"


def check_seed(seed: object, name: str = "seed") -> object:
    """``seed`` if it is a seed every estimator accepts (see the module docstring)."""
    if seed is None or isinstance(seed, np.random.SeedSequence | np.random.Generator):
        return seed
    if not _is_whole(seed):
        raise ArgumentTypeError(
            f"{name} must be {_SEED_TYPES}, got {format_value(seed)} ({type(seed).__name__})."
        )
    if seed < 0:  # type: ignore[operator]
        raise InvalidArgumentError(f"{name} must be {_SEED_TYPES}, got {format_value(seed)}.")
    return seed


def fresh_seed() -> int:
    """A new int seed from the operating system's entropy (to record for a rerun)."""
    return int(np.random.SeedSequence().generate_state(1)[0])


def seed_sequence(seed: object, name: str = "seed") -> np.random.SeedSequence:
    """The :class:`numpy.random.SeedSequence` of a seed.

    ``None`` gives fresh entropy, an int ``n`` gives ``SeedSequence(n)``, a SeedSequence is
    returned as it is, and a Generator gives a SeedSequence of four integers drawn from it.
    """
    seed = check_seed(seed, name)
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(seed.integers(0, 2**63, size=4).tolist())
    return np.random.SeedSequence(None if seed is None else int(seed))  # type: ignore[arg-type]


def recordable_sequence(seed: object, name: str = "seed") -> np.random.SeedSequence:
    """:func:`seed_sequence` of ``seed``, where ``None`` becomes a :func:`fresh_seed` int, so
    that :func:`recorded_seed` can give it back and the run can be repeated."""
    return seed_sequence(fresh_seed() if seed is None else seed, name)


def resolve_seed(seed: object, name: str = "seed") -> np.random.Generator:
    """A :class:`numpy.random.Generator` for a seed.

    A Generator is returned as it is (its draws continue its stream); anything else goes
    through :func:`numpy.random.default_rng`, so an int ``n`` gives exactly the stream of
    ``np.random.default_rng(n)``, the same as ``SeedSequence(n)``.
    """
    seed = check_seed(seed, name)
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)  # type: ignore[arg-type]


def recorded_seed(sequence: np.random.SeedSequence) -> int | None:
    """The int that reproduces ``sequence`` when passed as ``seed`` (``None`` if there is none:
    a SeedSequence spawned from another, or one built from a Generator's draws)."""
    entropy = sequence.entropy
    if sequence.spawn_key or not isinstance(entropy, int | np.integer):
        return None
    return int(entropy)
