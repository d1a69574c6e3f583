"""A security (padlock) assistant: proposes an EEF-style 0-5 rating, the evaluator decides.

The EEF rates how secure a finding is with 0 to 5 padlocks. This module reads the design, the
minimum detectable effect size (MDES), attrition and recorded threats to validity, proposes a
rating and explains each step. The per-padlock thresholds for design, MDES and attrition are
**unverified** (``docs/sources.md`` section "EEF conventions" marks them so): they are the
assistant's reading of the EEF classification guidance, exposed as parameters for the evaluator
to check and change. The threat rules follow that section's transcription.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np
import pandas as pd

from .._results import ResultFaces, Summary
from ..errors import InvalidValueError
from ._inputs import real

__all__ = [
    "EEF_ATTRITION_THRESHOLDS",
    "EEF_DESIGN_PADLOCKS",
    "EEF_MDES_THRESHOLDS",
    "EEF_THREATS",
    "PadlockAssessment",
    "Threat",
    "propose_padlocks",
]

#: Highest padlocks each design can reach (UNVERIFIED: the assistant's reading of the EEF's
#: "Classifying the security of EEF-funded evaluations"; check against the current guidance).
EEF_DESIGN_PADLOCKS: Mapping[str, int] = MappingProxyType(
    {
        "randomised": 5,  # well-conducted randomised trial with appropriate analysis
        "strong quasi-experiment": 4,  # e.g. regression discontinuity; RCT with minor concerns
        "well-matched comparison": 3,  # e.g. matched DiD with convincing pre-trends
        "weakly matched comparison": 2,
        "poorly matched comparison": 1,  # e.g. volunteers against everyone else
        "no comparison": 0,
    }
)

#: Largest MDES for 5, 4, 3, 2 and 1 padlocks; above the last, 0 (UNVERIFIED).
EEF_MDES_THRESHOLDS: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6)

#: Largest overall attrition (fraction) for 5, 4, 3, 2 and 1 padlocks; above the last, 0
#: (UNVERIFIED).
EEF_ATTRITION_THRESHOLDS: tuple[float, ...] = (0.10, 0.20, 0.30, 0.40, 0.50)

#: The threats to validity the EEF asks evaluators to weigh (docs/sources.md, "EEF conventions").
EEF_THREATS: tuple[str, ...] = (
    "confounding",
    "concurrent interventions",
    "contamination",
    "fidelity",
    "missing data",
    "outcome measurement",
    "selective reporting",
)

_LEVELS = ("low", "moderate", "high")
_DIRECTIONS = ("unknown", "inflates", "deflates")
_UNVERIFIED = (
    "The per-padlock thresholds for design, MDES and attrition are unverified: they are the "
    "assistant's reading of the EEF classification guidance; check them against the guidance "
    "your report follows. The assistant proposes; the evaluator decides."
)


@dataclass(frozen=True)
class Threat:
    """A recorded threat to validity.

    Parameters
    ----------
    name : str
        One of :data:`EEF_THREATS` (``"contamination"``, ``"missing data"``, ...).
    level : {"low", "moderate", "high"}, default "low"
        How serious the evaluator judges it.
    direction : {"unknown", "inflates", "deflates"}, default "unknown"
        Which way it would bias the effect, if known.
    note : str, default ""
        The evaluator's evidence (shown in the steps table).
    """

    name: str
    level: str = "low"
    direction: str = "unknown"
    note: str = ""

    def __post_init__(self):
        if self.name not in EEF_THREATS:
            raise InvalidValueError(
                f"threat name must be one of {', '.join(map(repr, EEF_THREATS))}; got "
                f"{self.name!r}."
            )
        if self.level not in _LEVELS:
            raise InvalidValueError(
                f"threat level for {self.name!r} must be 'low', 'moderate' or 'high'; got "
                f"{self.level!r}."
            )
        if self.direction not in _DIRECTIONS:
            raise InvalidValueError(
                f"threat direction for {self.name!r} must be 'unknown', 'inflates' or "
                f"'deflates'; got {self.direction!r}."
            )
        if not isinstance(self.note, str):
            raise InvalidValueError(f"threat note must be a string, got {self.note!r}.")


def _threats(threats) -> tuple[Threat, ...]:
    if threats is None:
        return ()
    if isinstance(threats, Mapping):
        items = []
        for name, spec in threats.items():
            if isinstance(spec, Threat):
                items.append(spec)
            elif isinstance(spec, str):
                items.append(Threat(name, spec))
            elif isinstance(spec, Sequence) and len(spec) == 2:
                items.append(Threat(name, spec[0], spec[1]))
            else:
                raise InvalidValueError(
                    f"threat {name!r} must map to a level ('moderate'), a (level, direction) "
                    f"pair or a Threat; got {spec!r}."
                )
    elif isinstance(threats, Iterable) and not isinstance(threats, str | bytes):
        items = list(threats)
        bad = [t for t in items if not isinstance(t, Threat)]
        if bad:
            raise InvalidValueError(
                f"threats must be Threat objects or a mapping from name to level; got {bad[0]!r}."
            )
    else:
        raise InvalidValueError(f"threats must be a mapping or a list of Threat, got {threats!r}.")
    names = [t.name for t in items]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidValueError(f"each threat may be recorded once; repeated: {repeated}.")
    return tuple(items)


def _cut(name: str, thresholds: Sequence[float]) -> tuple[float, ...]:
    values = tuple(real(name, t) for t in thresholds)
    if len(values) != 5 or not all(a < b for a, b in zip(values, values[1:], strict=False)):
        raise InvalidValueError(
            f"{name} must be five increasing values (the limits for 5, 4, 3, 2 and 1 "
            f"padlocks), got {thresholds!r}."
        )
    return values


def _padlocks_from(value: float, cuts: Sequence[float]) -> int:
    for padlocks, cut in zip((5, 4, 3, 2, 1), cuts, strict=True):
        if value <= cut + 1e-12:
            return padlocks
    return 0


def _threat_adjustment(threats: Sequence[Threat]) -> tuple[int, str]:
    """Padlocks to remove for threats (0-2) and the rule applied, in words."""
    high = sum(t.level == "high" for t in threats)
    moderate = [t for t in threats if t.level == "moderate"]
    same = max(
        sum(t.direction == "inflates" for t in moderate),
        sum(t.direction == "deflates" for t in moderate),
    )
    m = len(moderate)
    if high >= 2:
        return 2, f"{high} high threats: two or more high lower by two"
    if high == 1 and m >= 2:
        return 2, f"one high and {m} moderate threats: one high with two moderate lowers by two"
    if high == 1:
        rest = "the rest low" if m == 0 else "one moderate (read as 'the rest low')"
        return 1, f"one high threat, {rest}: lower by one"
    if m == 0:
        return 0, "no moderate or high threats: no change"
    if same > 2:
        return 2, (
            f"{same} moderate threats in the same direction: beyond 'up to two in the same "
            f"direction', read as lowering by two"
        )
    if m > 4:
        return 2, f"{m} moderate threats: beyond 'up to four', read as lowering by two"
    if same == 2:
        return 1, "two moderate threats in the same direction: lower by one"
    return 1, f"{m} moderate threat(s), direction unknown or mixed (up to four): lower by one"


@dataclass(frozen=True, kw_only=True)
class PadlockAssessment(ResultFaces):
    """The assistant's proposed padlock rating, its reasoning and the evaluator's decision.

    Build with :func:`propose_padlocks`; record the evaluator's decision with
    :meth:`override` (which returns a new object).

    Attributes
    ----------
    proposed : int
        The assistant's proposal, 0-5.
    steps : pandas.DataFrame
        The reasoning, one row per step: ``step, input, padlocks, rule``.
    threats : tuple of Threat
        The threats recorded.
    final : int or None
        The evaluator's rating; ``None`` until :meth:`override` is called.
    reason : str or None
        The evaluator's reason for the final rating.
    """

    proposed: int
    steps: pd.DataFrame
    threats: tuple[Threat, ...] = ()
    final: int | None = None
    reason: str | None = field(default=None)

    @property
    def decided(self) -> bool:
        """Whether the evaluator has recorded a final rating."""
        return self.final is not None

    def override(self, rating: int, *, reason: str) -> PadlockAssessment:
        """Record the evaluator's final rating (the same as the proposal confirms it).

        Parameters
        ----------
        rating : int
            The final padlocks, 0-5.
        reason : str
            Why (required, non-empty): the evidence the assistant could not weigh.

        Returns
        -------
        PadlockAssessment
            A new assessment with :attr:`final` and :attr:`reason` set and an ``evaluator``
            row appended to :attr:`steps`.

        Raises
        ------
        cpdimpact.errors.InvalidValueError
            If ``rating`` is not a whole number from 0 to 5 or ``reason`` is empty.
        """
        valid = (
            isinstance(rating, numbers.Integral)
            and not isinstance(rating, bool | np.bool_)
            and 0 <= rating <= 5
        )
        if not valid:
            raise InvalidValueError(f"rating must be a whole number from 0 to 5, got {rating!r}.")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidValueError(
                "reason is required: say why the final rating is what it is (e.g. "
                "'contamination checked in the process evaluation: low')."
            )
        kind = "confirmed" if rating == self.proposed else "overridden"
        steps = self.steps[self.steps["step"] != "evaluator"]
        row = pd.DataFrame(
            [{"step": "evaluator", "input": reason.strip(), "padlocks": int(rating), "rule": kind}]
        )
        return replace(
            self,
            final=int(rating),
            reason=reason.strip(),
            steps=pd.concat([steps, row], ignore_index=True),
        )

    def to_frame(self) -> pd.DataFrame:
        """The steps table (a copy)."""
        return self.steps.copy()

    def to_dict(self) -> dict[str, object]:
        """JSON-safe dictionary: proposal, decision and the steps as records."""
        return {
            "proposed": self.proposed,
            "final": self.final,
            "reason": self.reason,
            "steps": self.steps.to_dict(orient="records"),
        }

    def summary(self) -> Summary:
        """Printable proposal, decision and reasoning."""
        if self.final is None:
            decision = "not yet decided: the evaluator confirms or overrides with .override()"
        else:
            decision = f"{self.final} ({self.reason})"
        return Summary(
            title="Security rating (padlocks)",
            facts=(
                ("Proposed by the assistant", f"{self.proposed} / 5"),
                ("Evaluator's final rating", decision),
            ),
            table=self.steps,
            notes=(_UNVERIFIED,),
        )

    def plot(self, *, ax=None):
        """Bars of the padlocks after each step; returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.0, 3.0), layout="constrained")
        shown = self.steps[self.steps["step"].isin(
            ["design", "MDES", "attrition", "initial", "proposed", "evaluator"]
        )]  # fmt: skip
        ax.barh(shown["step"], shown["padlocks"].astype(float), color="C0")
        ax.invert_yaxis()
        ax.set_xlim(0, 5)
        ax.set_xlabel("Padlocks")
        return ax


def propose_padlocks(
    *,
    design: str | int,
    mdes: float,
    attrition,
    threats=None,
    design_padlocks: Mapping[str, int] = EEF_DESIGN_PADLOCKS,
    mdes_thresholds: Sequence[float] = EEF_MDES_THRESHOLDS,
    attrition_thresholds: Sequence[float] = EEF_ATTRITION_THRESHOLDS,
) -> PadlockAssessment:
    """Propose an EEF-style security rating (0-5 padlocks) and explain each step.

    Parameters
    ----------
    design : str or int
        A key of ``design_padlocks`` (``"randomised"``, ``"strong quasi-experiment"``,
        ``"well-matched comparison"``, ``"weakly matched comparison"``, ``"poorly matched
        comparison"``, ``"no comparison"``) or the evaluator's own design judgement as padlocks
        (0-5).
    mdes : float
        Minimum detectable effect size of the design (e.g. from a power calculation at
        randomisation; check which stage your guidance asks for).
    attrition : float or AttritionRates
        Overall pupil attrition as a fraction, or an
        :class:`~cpdimpact.effects.AttritionRates` (its ``overall`` is used).
    threats : mapping or iterable of Threat, optional
        The threats to validity the evaluator recorded: ``{"contamination": "moderate",
        "missing data": ("moderate", "inflates")}`` or ``[Threat(...), ...]``. Names from
        :data:`EEF_THREATS`; unlisted threats count as low.
    design_padlocks : mapping, default ``EEF_DESIGN_PADLOCKS``
        Highest padlocks per design (UNVERIFIED defaults).
    mdes_thresholds : sequence of 5 float, default ``EEF_MDES_THRESHOLDS``
        Largest MDES for 5, 4, 3, 2, 1 padlocks (UNVERIFIED defaults).
    attrition_thresholds : sequence of 5 float, default ``EEF_ATTRITION_THRESHOLDS``
        Largest attrition for 5, 4, 3, 2, 1 padlocks (UNVERIFIED defaults).

    Returns
    -------
    PadlockAssessment
        ``proposed`` and the ``steps`` table; ``final`` stays ``None`` until the evaluator calls
        :meth:`PadlockAssessment.override`.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If ``design`` is unknown, ``mdes`` is not positive, ``attrition`` is outside [0, 1],
        a threat is malformed, or a threshold list is not five increasing values.

    Notes
    -----
    1. **Design, MDES, attrition.** Each gives a padlock count: the design its ceiling, the
       MDES and attrition the highest count whose threshold they meet (at or below). The
       initial rating is the *lowest* of the three. These thresholds are the assistant's
       reading of the EEF's classification guidance and are marked **unverified**
       (``docs/sources.md`` section "EEF conventions"): the defaults are visible parameters.
    2. **Threats** (confounding, concurrent interventions, contamination, fidelity, missing
       data, outcome measurement, selective reporting) lower the rating by at most two
       (``docs/sources.md`` transcription of the EEF guidance): by one when up to four are
       moderate with unknown direction, or up to two are moderate in the same direction, or one
       is high and the rest low; by two when one is high and two are moderate, or two or more
       are high. Where the guidance is silent the assistant reads: one high with one moderate
       lowers by one; more moderate threats than the limits above lower by two; moderate
       threats in opposite directions count as of unknown direction.
    3. **The evaluator decides.** The proposal is never final: record the final rating and
       the reason with :meth:`PadlockAssessment.override` (confirming uses the same rating).

    References
    ----------
    Education Endowment Foundation. *Classifying the security of EEF-funded evaluations*
    (padlock guidance), as transcribed in ``docs/sources.md`` section "EEF conventions".

    Examples
    --------
    >>> from cpdimpact.effects import propose_padlocks
    >>> a = propose_padlocks(design="randomised", mdes=0.25, attrition=0.12,
    ...                      threats={"contamination": "moderate"})
    >>> a.proposed, a.final
    (3, None)
    >>> a.to_frame()["padlocks"].tolist()  # design, MDES, attrition, initial, threat, -1, proposed
    [5, 4, 4, 4, 0, -1, 3]
    >>> b = a.override(3, reason="contamination confirmed by the process evaluation")
    >>> b.final, b.decided
    (3, True)
    """
    cuts_mdes = _cut("mdes_thresholds", mdes_thresholds)
    cuts_attrition = _cut("attrition_thresholds", attrition_thresholds)
    for name, value in design_padlocks.items():
        if not (isinstance(value, numbers.Integral) and 0 <= value <= 5):
            raise InvalidValueError(
                f"design_padlocks[{name!r}] must be a whole number from 0 to 5, got {value!r}."
            )
    if isinstance(design, numbers.Integral) and not isinstance(design, bool | np.bool_):
        if not 0 <= design <= 5:
            raise InvalidValueError(f"design as padlocks must be from 0 to 5, got {design!r}.")
        design_cap, design_text = int(design), f"{int(design)} (evaluator's design judgement)"
        design_rule = "design ceiling given by the evaluator"
    elif isinstance(design, str) and design in design_padlocks:
        design_cap, design_text = int(design_padlocks[design]), design
        design_rule = f"ceiling for a {design} design (unverified table)"
    else:
        raise InvalidValueError(
            f"design must be one of {', '.join(map(repr, design_padlocks))} or padlocks 0-5; "
            f"got {design!r}."
        )
    mdes = real("mdes", mdes)
    if not (mdes > 0 and not math.isnan(mdes)):
        raise InvalidValueError(f"mdes must be a positive effect size, got {mdes!r}.")
    rate = getattr(attrition, "overall", attrition)
    rate = real("attrition", rate)
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        hint = " Attrition is a fraction: 0.12 for 12%." if 1 < rate <= 100 else ""
        raise InvalidValueError(f"attrition must be between 0 and 1, got {rate!r}.{hint}")
    recorded = _threats(threats)

    mdes_locks = _padlocks_from(mdes, cuts_mdes)
    attrition_locks = _padlocks_from(rate, cuts_attrition)
    initial = min(design_cap, mdes_locks, attrition_locks)
    down, rule = _threat_adjustment(recorded)
    proposed = max(initial - down, 0)

    def limit_rule(locks: int, cuts: Sequence[float], unit: str) -> str:
        if locks == 0:
            return f"above {cuts[-1]:g}{unit}: 0 (unverified threshold)"
        return f"at or below {cuts[5 - locks]:g}{unit}: {locks} (unverified threshold)"

    rows = [
        ("design", design_text, design_cap, design_rule),
        ("MDES", f"{mdes:.3g}", mdes_locks, limit_rule(mdes_locks, cuts_mdes, "")),
        (
            "attrition",
            f"{100 * rate:.1f}%",
            attrition_locks,
            limit_rule(attrition_locks, [100 * c for c in cuts_attrition], "%"),
        ),
        ("initial", "", initial, "lowest of design, MDES and attrition"),
    ]
    for threat in recorded:
        described = threat.level + (f", {threat.direction}" if threat.level == "moderate" else "")
        rows.append(
            (
                threat.name,
                described + (f": {threat.note}" if threat.note else ""),
                0,
                "recorded threat (weighed in the next row)",
            )
        )
    rows.append(("threats", f"{len(recorded)} recorded", -down, rule))
    rows.append(
        ("proposed", "", proposed, "initial less the threat adjustment (at most two), not below 0")
    )
    steps = pd.DataFrame(rows, columns=["step", "input", "padlocks", "rule"])
    steps["padlocks"] = steps["padlocks"].astype(np.int64)
    return PadlockAssessment(proposed=proposed, steps=steps, threats=recorded)
