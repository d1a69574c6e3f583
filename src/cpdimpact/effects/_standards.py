"""Evidence standards: WWC attrition, baseline equivalence, clustering correction, study rating,
and the EEF cost rating.

The What Works Clearinghouse (WWC) figures here are transcribed from ``docs/sources.md``
section "WWC figures", itself a *secondary* transcription of the WWC Procedures and Standards
Handbook v4.1/v5.0: check them against the handbook before relying on them. The EEF cost bands
come from the same page, section "EEF conventions" (Teaching and Learning Toolkit).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from .._guards import require_indicator
from .._results import ResultFaces, Summary
from .._validate import check_alpha
from ..errors import DesignError, InvalidValueError, MissingColumnError
from ._binary import COX_SCALE
from ._inputs import real, whole

__all__ = [
    "AttritionRates",
    "ClusteringCorrection",
    "CostEstimate",
    "EEF_COST_THRESHOLDS",
    "StudyRating",
    "WWC_ATTRITION",
    "attrition_rates",
    "baseline_equivalence",
    "baseline_equivalence_table",
    "cox_index",
    "eef_cost",
    "eef_cost_rating",
    "wwc_attrition",
    "wwc_attrition_limit",
    "wwc_clustering_correction",
    "wwc_study_rating",
]

_TOLERANCE = 1e-9  # percentage points: rates computed from counts carry float noise

# --- WWC attrition boundaries -------------------------------------------------------------
#
# Maximum differential attrition (percentage points) that still counts as "low" attrition,
# for overall attrition of 0, 1, 2, ... percent. Source: docs/sources.md "WWC figures", a
# secondary transcription of the WWC Procedures and Standards Handbook (v4.1/v5.0) attrition
# tables; not checked against the handbook itself. Beyond the last row attrition is high
# whatever the differential (cautious: 58% or more overall; optimistic: 66% or more).
_CAUTIOUS = (
    5.7, 5.8, 5.9, 5.9, 6.0, 6.1, 6.2, 6.3, 6.3, 6.3, 6.3, 6.2, 6.2, 6.1, 6.0, 5.9, 5.9, 5.8,
    5.7, 5.5, 5.4, 5.3, 5.2, 5.1, 4.9, 4.8, 4.7, 4.5, 4.4, 4.3, 4.1, 4.0, 3.8, 3.6, 3.5, 3.3,
    3.2, 3.1, 2.9, 2.8, 2.6, 2.5, 2.3, 2.1, 2.0, 1.8, 1.6, 1.5, 1.3, 1.2, 1.0, 0.9, 0.7, 0.6,
    0.4, 0.3, 0.2, 0.0,
)  # fmt: skip
_OPTIMISTIC = (
    10.0, 10.1, 10.2, 10.3, 10.4, 10.5, 10.7, 10.8, 10.9, 10.9, 10.9, 10.9, 10.9, 10.8, 10.8,
    10.7, 10.6, 10.5, 10.3, 10.2, 10.0, 9.9, 9.7, 9.5, 9.4, 9.2, 9.0, 8.8, 8.6, 8.4, 8.2, 8.0,
    7.8, 7.6, 7.4, 7.2, 7.0, 6.7, 6.5, 6.3, 6.0, 5.8, 5.6, 5.3, 5.1, 4.9, 4.6, 4.4, 4.2, 3.9,
    3.7, 3.5, 3.2, 3.0, 2.8, 2.6, 2.3, 2.1, 1.9, 1.6, 1.4, 1.1, 0.9, 0.7, 0.5, 0.3,
)  # fmt: skip
_BOUNDARIES = {"cautious": _CAUTIOUS, "optimistic": _OPTIMISTIC}
assert len(_CAUTIOUS) == 58 and len(_OPTIMISTIC) == 66  # overall 0-57% and 0-65%


def _attrition_frame() -> pd.DataFrame:
    rows = len(_OPTIMISTIC)
    cautious = list(_CAUTIOUS) + [math.nan] * (rows - len(_CAUTIOUS))
    return pd.DataFrame(
        {
            "overall_percent": np.arange(rows, dtype=np.int64),
            "cautious": cautious,
            "optimistic": list(_OPTIMISTIC),
        }
    )


#: WWC attrition boundaries: per whole percent of overall attrition (``overall_percent``), the
#: largest differential attrition in percentage points that is still "low" under the
#: ``cautious`` and ``optimistic`` boundaries (``NaN``: always high). A secondary transcription
#: of the WWC handbook (docs/sources.md, "WWC figures"). A copy for reading and plotting.
WWC_ATTRITION = _attrition_frame()


def _fraction(name: str, value: object) -> float:
    value = real(name, value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        hint = " Rates are fractions: 0.30 for 30%." if 1.0 < value <= 100.0 else ""
        raise InvalidValueError(f"{name} must be a rate between 0 and 1, got {value!r}.{hint}")
    return value


def _choice(name: str, value: object, options: Sequence[str]) -> str:
    if value not in options:
        raise InvalidValueError(
            f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}."
        )
    return value  # type: ignore[return-value]


def wwc_attrition_limit(
    overall: float, boundary: Literal["cautious", "optimistic"] = "cautious"
) -> float:
    """Largest differential attrition (a fraction) that is low at this overall attrition.

    Parameters
    ----------
    overall : float
        Overall attrition as a fraction (0.30 for 30%).
    boundary : {"cautious", "optimistic"}, default "cautious"
        The WWC boundary: ``"cautious"`` when the intervention could plausibly affect who
        leaves the study, ``"optimistic"`` when it is unlikely to (the review protocol
        decides).

    Returns
    -------
    float
        The limit as a fraction (0.041 for 4.1 percentage points); ``-inf`` when the overall
        rate is beyond the table (attrition is then high whatever the differential).

    Notes
    -----
    The table gives whole percents of overall attrition. Between two rows the stricter
    (smaller) of the two neighbouring limits applies, so a rate is never called low that
    either neighbouring row would call high. See :data:`WWC_ATTRITION`.

    Examples
    --------
    >>> from cpdimpact.effects import wwc_attrition_limit
    >>> round(wwc_attrition_limit(0.30), 3), round(wwc_attrition_limit(0.30, "optimistic"), 3)
    (0.041, 0.082)
    """
    overall = _fraction("overall", overall)
    table = _BOUNDARIES[_choice("boundary", boundary, tuple(_BOUNDARIES))]
    percent = overall * 100.0
    low, high = math.floor(percent + _TOLERANCE), math.ceil(percent - _TOLERANCE)
    if high >= len(table):
        return -math.inf
    return min(table[low], table[high]) / 100.0


def wwc_attrition(
    overall: float | None = None,
    differential: float | None = None,
    *,
    boundary: Literal["cautious", "optimistic"] = "cautious",
    cohort=None,
    randomised: tuple[int, int] | None = None,
    level: Literal["pupils", "schools", "teachers"] = "pupils",
) -> Literal["low", "high"]:
    """WWC attrition rating: ``"low"`` or ``"high"``.

    Parameters
    ----------
    overall : float, optional
        Overall attrition as a fraction of the randomised sample (0.30 for 30%).
    differential : float, optional
        Absolute difference between the two arms' attrition rates, as a fraction (0.06 for
        6 percentage points).
    boundary : {"cautious", "optimistic"}, default "cautious"
        Which WWC boundary applies (see :func:`wwc_attrition_limit`).
    cohort : Cohort or FlowLog, optional
        Instead of ``overall`` and ``differential``: compute both from a cohort's flow log with
        :func:`attrition_rates` (the numbers randomised per arm are the cohort's allocated
        sample unless ``randomised`` gives them).
    randomised : tuple of int, optional
        ``(treatment, control)`` numbers randomised, at ``level``; used with ``cohort``.
    level : {"pupils", "schools", "teachers"}, default "pupils"
        Which flow-log counts to use with ``cohort``.

    Returns
    -------
    {"low", "high"}

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If a rate is outside [0, 1] (the message suggests fractions when given percents), the
        differential exceeds what the overall rate allows, ``boundary`` is unknown, or both
        rates and a cohort are given.
    cpdimpact.errors.DesignError
        With ``cohort``, when the per-arm numbers randomised are neither in the flow log nor
        given as ``randomised``.

    Notes
    -----
    Attrition is low when the differential rate is at or below the boundary's limit for the
    overall rate (:data:`WWC_ATTRITION`; between whole percents the stricter neighbour) and
    high otherwise. The boundary table is a secondary transcription of the WWC Procedures and
    Standards Handbook v4.1/v5.0 (``docs/sources.md`` section "WWC figures"), not checked here
    against the handbook. For cluster-randomised trials the WWC assesses attrition of
    clusters and of pupils within them; call this once per level.

    References
    ----------
    What Works Clearinghouse. *Procedures and Standards Handbook*, versions 4.1 and 5.0
    (attrition standard).

    Examples
    --------
    >>> from cpdimpact.effects import wwc_attrition
    >>> wwc_attrition(overall=0.08, differential=0.03)
    'low'
    >>> wwc_attrition(overall=0.30, differential=0.06)
    'high'
    >>> wwc_attrition(overall=0.30, differential=0.06, boundary="optimistic")
    'low'
    """
    if cohort is not None:
        if overall is not None or differential is not None:
            raise InvalidValueError(
                "give either overall and differential, or cohort (with randomised), not both."
            )
        rates = attrition_rates(cohort, randomised=randomised, level=level)
        overall, differential = rates.overall, rates.differential
    elif randomised is not None:
        raise InvalidValueError(
            "randomised is used with cohort=; with rates, pass overall and differential "
            "(attrition_rates(randomised=..., analysed=...) computes them from counts)."
        )
    if overall is None or differential is None:
        raise InvalidValueError(
            "wwc_attrition needs overall and differential attrition (fractions), or cohort=."
        )
    overall = _fraction("overall", overall)
    differential = real("differential", differential)
    if differential < 0:
        raise InvalidValueError(
            f"differential must be the absolute difference of the arms' attrition rates, "
            f"at least 0; got {differential!r}. Pass abs(treatment_rate - control_rate)."
        )
    differential = _fraction("differential", differential)
    limit = wwc_attrition_limit(overall, boundary)
    return "low" if differential * 100.0 <= limit * 100.0 + _TOLERANCE else "high"


def _pair(name: str, value: object) -> tuple[int, int]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise InvalidValueError(f"{name} must be a pair (treatment, control), got {value!r}.")
    return whole(f"{name}[0] (treatment)", value[0], 0), whole(f"{name}[1] (control)", value[1], 0)


@dataclass(frozen=True, kw_only=True)
class AttritionRates(ResultFaces):
    """Attrition of a two-arm study: counts randomised and analysed, rates as fractions.

    Build with :func:`attrition_rates`.

    Attributes
    ----------
    level : str
        What is counted: ``"pupils"``, ``"schools"`` or ``"teachers"``.
    randomised, analysed : tuple of int
        ``(treatment, control)`` counts.
    overall : float
        ``1 - sum(analysed) / sum(randomised)``.
    treatment, control : float
        Each arm's attrition rate.
    differential : float
        ``abs(treatment - control)``.
    source : str
        Where the counts came from.
    """

    level: str
    randomised: tuple[int, int]
    analysed: tuple[int, int]
    overall: float
    treatment: float
    control: float
    differential: float
    source: str

    def rating(self, boundary: Literal["cautious", "optimistic"] = "cautious") -> str:
        """WWC attrition rating (``"low"``/``"high"``) under ``boundary``."""
        return wwc_attrition(self.overall, self.differential, boundary=boundary)

    def to_frame(self) -> pd.DataFrame:
        """One row per arm and one for both: ``arm, randomised, analysed, lost, attrition``."""
        rows = [
            ("treatment", self.randomised[0], self.analysed[0], self.treatment),
            ("control", self.randomised[1], self.analysed[1], self.control),
            ("overall", sum(self.randomised), sum(self.analysed), self.overall),
        ]
        frame = pd.DataFrame(rows, columns=["arm", "randomised", "analysed", "attrition"])
        frame.insert(3, "lost", frame["randomised"] - frame["analysed"])
        return frame

    def to_dict(self) -> dict[str, object]:
        """JSON-safe dictionary, with both WWC ratings."""
        return {
            "level": self.level,
            "randomised": list(self.randomised),
            "analysed": list(self.analysed),
            "overall": self.overall,
            "treatment": self.treatment,
            "control": self.control,
            "differential": self.differential,
            "rating_cautious": self.rating("cautious"),
            "rating_optimistic": self.rating("optimistic"),
            "source": self.source,
        }

    def summary(self) -> Summary:
        """Printable table with the overall and differential rates and both WWC ratings."""
        facts = (
            ("Counted", self.level),
            ("Overall attrition", f"{100 * self.overall:.1f}%"),
            ("Differential attrition", f"{100 * self.differential:.1f} percentage points"),
            ("WWC cautious boundary", self.rating("cautious")),
            ("WWC optimistic boundary", self.rating("optimistic")),
            ("Source", self.source),
        )
        return Summary(
            title="Attrition",
            facts=facts,
            table=self.to_frame(),
            notes=(
                "WWC boundaries from a secondary transcription of the Procedures and Standards "
                'Handbook v4.1/v5.0 (cpdimpact docs/sources.md, section "WWC figures").',
            ),
        )

    def plot(self, *, ax=None):
        """The two WWC boundaries with this study's (overall, differential) point."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.0, 4.0), layout="constrained")
        for name, style in (("cautious", "-"), ("optimistic", "--")):
            ax.plot(
                WWC_ATTRITION["overall_percent"],
                WWC_ATTRITION[name],
                style,
                color="0.3",
                label=f"{name} boundary",
            )
        ax.plot(
            [100 * self.overall], [100 * self.differential], "o", color="C3", label="this study"
        )
        ax.set_xlabel("Overall attrition (%)")
        ax.set_ylabel("Differential attrition (percentage points)")
        ax.set_xlim(0, 70)
        ax.set_ylim(0, 12)
        ax.legend(frameon=False)
        return ax


def _flow_log(source):
    flow = getattr(source, "flow", source)
    if not hasattr(flow, "stages") or not hasattr(flow, "count"):
        raise InvalidValueError(
            f"cohort must be a cpdimpact Cohort or FlowLog, got {type(source).__name__}."
        )
    return flow


def attrition_rates(
    cohort=None,
    *,
    randomised: tuple[int, int] | None = None,
    analysed: tuple[int, int] | None = None,
    level: Literal["pupils", "schools", "teachers"] = "pupils",
    stage: str = "allocated",
) -> AttritionRates:
    """Attrition rates from counts, or from a cohort's flow log.

    Parameters
    ----------
    cohort : Cohort or FlowLog, optional
        Read the numbers analysed per arm from the flow log's ``analysed`` stage (arms
        ``treated`` and ``comparison``), and the numbers randomised from ``stage``: by
        default the sample allocated to each arm (:attr:`~cpdimpact.cohort.FlowLog.allocated`).
    randomised : tuple of int, optional
        ``(treatment, control)`` numbers randomised. Required unless the flow log holds
        per-arm counts at ``stage``; when given it takes precedence.
    analysed : tuple of int, optional
        ``(treatment, control)`` numbers in the analysis; required without ``cohort``.
    level : {"pupils", "schools", "teachers"}, default "pupils"
        Which flow-log column to count (the log's ``pupils`` are pupil-year records).
    stage : str, default "allocated"
        Where the flow log holds the per-arm numbers randomised: ``"allocated"`` (the
        allocation rows a :class:`~cpdimpact.cohort.Cohort` records) or a stage with per-arm
        rows in a log built by hand.

    Returns
    -------
    AttritionRates

    Raises
    ------
    cpdimpact.errors.DesignError
        If the numbers randomised per arm are neither given nor in the flow log.
    cpdimpact.errors.InvalidValueError
        If counts are not whole numbers, an arm has nobody randomised, or more are analysed
        than randomised.

    Notes
    -----
    Attrition is the share of the randomised sample missing from the analysis:
    :math:`a_j = 1 - n^{analysed}_j / n^{randomised}_j` per arm, overall
    :math:`1 - \\sum n^{analysed} / \\sum n^{randomised}`, differential
    :math:`|a_T - a_C|` (WWC handbook).

    A :class:`~cpdimpact.cohort.Cohort` records the sample allocated to each arm: every
    record of the units in the design, in the analysed years, before records were excluded
    for a missing outcome, covariate or teacher (or a treated unit without a record before
    its start). Records *excluded by design* (other strands, below the minimum dose, later
    starters' own treated years) are not attrition and are not in it. In a trial whose
    records do not list every randomised pupil (pupils who left before testing are often
    absent from the data) pass the numbers randomised from the randomisation records as
    ``randomised``.

    Examples
    --------
    >>> from cpdimpact.effects import attrition_rates
    >>> rates = attrition_rates(randomised=(150, 150), analysed=(129, 147))
    >>> round(rates.overall, 3), round(rates.differential, 3), rates.rating()
    (0.08, 0.12, 'high')
    """
    level = _choice("level", level, ("pupils", "schools", "teachers"))
    if cohort is None:
        if randomised is None or analysed is None:
            raise InvalidValueError(
                "attrition_rates needs randomised=(treatment, control) and analysed=(treatment, "
                "control) counts, or a cohort whose flow log holds the numbers analysed."
            )
        source = "counts given"
        randomised_pair, analysed_pair = (
            _pair("randomised", randomised),
            _pair("analysed", analysed),
        )
    else:
        if analysed is not None:
            raise InvalidValueError(
                "with cohort=, the numbers analysed come from its flow log; do not pass analysed."
            )
        flow = _flow_log(cohort)
        try:
            analysed_pair = (
                flow.count("analysed", "treated", level),
                flow.count("analysed", "comparison", level),
            )
        except KeyError:
            raise DesignError(
                "the flow log has no per-arm rows at stage 'analysed' (arms 'treated' and "
                "'comparison'); build the cohort with cpdimpact.cohort.CohortSpec."
            ) from None
        if randomised is not None:
            randomised_pair = _pair("randomised", randomised)
            source = f"randomised given; analysed from the flow log ({level})"
        else:
            try:
                randomised_pair = (
                    flow.count(stage, "treated", level),
                    flow.count(stage, "comparison", level),
                )
            except KeyError:
                raise DesignError(
                    f"the flow log has no per-arm {level} at {stage!r}; the numbers randomised "
                    f"per arm are missing. Pass randomised=(treatment, control) from the "
                    f"trial's randomisation records."
                ) from None
            source = f"flow log, {stage!r} and 'analysed' ({level})"
    for arm, r, a in zip(("treatment", "control"), randomised_pair, analysed_pair, strict=True):
        if r == 0:
            raise InvalidValueError(f"randomised ({arm}) must be at least 1.")
        if a > r:
            raise InvalidValueError(
                f"more {level} analysed than randomised in the {arm} arm ({a} > {r}); the "
                f"counts must describe the same sample (joiners are not part of it)."
            )
    rate_t = 1.0 - analysed_pair[0] / randomised_pair[0]
    rate_c = 1.0 - analysed_pair[1] / randomised_pair[1]
    return AttritionRates(
        level=level,
        randomised=randomised_pair,
        analysed=analysed_pair,
        overall=1.0 - sum(analysed_pair) / sum(randomised_pair),
        treatment=rate_t,
        control=rate_c,
        differential=abs(rate_t - rate_c),
        source=source,
    )


# --- baseline equivalence -----------------------------------------------------------------

_COX_SCALE = COX_SCALE  # one rule: the Cox divisor lives in _binary


def baseline_equivalence(
    effect_size: float, *, satisfied: float = 0.05, adjustment: float = 0.25
) -> Literal["satisfied", "adjustment required", "not satisfied"]:
    """WWC baseline equivalence of one characteristic from its baseline effect size.

    Parameters
    ----------
    effect_size : float
        The baseline difference between the analysed arms as Hedges' *g* (continuous) or the
        Cox index (binary, :func:`cox_index`).
    satisfied, adjustment : float, default 0.05 and 0.25
        The WWC thresholds on the absolute effect size.

    Returns
    -------
    {"satisfied", "adjustment required", "not satisfied"}
        ``|ES| <= 0.05``: satisfied; ``0.05 < |ES| <= 0.25``: satisfied only if the impact
        analysis adjusts for the characteristic; ``|ES| > 0.25``: not satisfied.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If the effect size is not finite or the thresholds are not ``0 <= satisfied <=
        adjustment``.

    References
    ----------
    What Works Clearinghouse. *Procedures and Standards Handbook*, versions 4.1 and 5.0
    (baseline equivalence), as transcribed in ``docs/sources.md`` section "WWC figures".

    Examples
    --------
    >>> from cpdimpact.effects import baseline_equivalence
    >>> baseline_equivalence(0.04), baseline_equivalence(-0.12), baseline_equivalence(0.3)
    ('satisfied', 'adjustment required', 'not satisfied')
    """
    value = real("effect_size", effect_size)
    if not math.isfinite(value):
        raise InvalidValueError(f"effect_size must be finite, got {value!r}.")
    satisfied, adjustment = real("satisfied", satisfied), real("adjustment", adjustment)
    if not 0 <= satisfied <= adjustment:
        raise InvalidValueError(
            f"thresholds must satisfy 0 <= satisfied <= adjustment, got {satisfied!r} and "
            f"{adjustment!r}."
        )
    size = abs(value)
    if size <= satisfied + _TOLERANCE / 100:
        return "satisfied"
    if size <= adjustment + _TOLERANCE / 100:
        return "adjustment required"
    return "not satisfied"


def cox_index(p_treatment: float, p_control: float, *, n: int | None = None) -> float:
    r"""Cox index: a baseline difference in a binary characteristic on the effect-size scale.

    Parameters
    ----------
    p_treatment, p_control : float
        Proportions with the characteristic (e.g. eligible for free school meals), strictly
        between 0 and 1.
    n : int, optional
        Total pupils in both arms; when given the WWC small-sample factor
        :math:`\omega = 1 - 3/(4n - 9)` multiplies the index.

    Returns
    -------
    float
        :math:`\omega\,[\operatorname{logit}(p_t) - \operatorname{logit}(p_c)] / 1.65`.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If a proportion is not strictly between 0 and 1 (the log-odds are then infinite), or
        ``n`` is below 4.

    Notes
    -----
    The log-odds ratio divided by 1.65 is on the scale of a standardised mean difference
    (Cox 1970; Sánchez-Meca, Marín-Martínez & Chacón-Moscoso 2003); the WWC uses it for
    binary outcomes and baseline characteristics. The WWC applies the same small-sample factor
    as for Hedges' g; pass ``n`` to apply it (secondary transcription: ``docs/sources.md``
    gives the index without it).

    References
    ----------
    Cox, D. R. (1970). *Analysis of Binary Data*. Methuen.

    Sánchez-Meca, J., Marín-Martínez, F., & Chacón-Moscoso, S. (2003). Effect-size indices
    for dichotomized outcomes in meta-analysis. *Psychological Methods*, 8(4), 448-467.

    What Works Clearinghouse. *Procedures and Standards Handbook*, versions 4.1 and 5.0.

    Examples
    --------
    >>> from cpdimpact.effects import cox_index
    >>> round(cox_index(0.30, 0.25), 4)
    0.1523
    """
    values = []
    for name, p in (("p_treatment", p_treatment), ("p_control", p_control)):
        p = real(name, p)
        if not (math.isfinite(p) and 0.0 < p < 1.0):
            raise InvalidValueError(
                f"{name} must be a proportion strictly between 0 and 1, got {p!r}; with 0 or 1 "
                f"the log-odds are infinite and the Cox index is undefined."
            )
        values.append(p)
    omega = 1.0
    if n is not None:
        from ._hedges import hedges_correction

        omega = hedges_correction(n)
    logit = [math.log(p / (1.0 - p)) for p in values]
    return omega * (logit[0] - logit[1]) / _COX_SCALE


def baseline_equivalence_table(
    data: pd.DataFrame,
    *,
    treatment: str,
    covariates: Iterable[str],
    binary: Iterable[str] | None = None,
    satisfied: float = 0.05,
    adjustment: float = 0.25,
) -> pd.DataFrame:
    """Baseline equivalence of the analysed arms, one row per characteristic.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per pupil in the analysed sample (not modified).
    treatment : str
        Column that is True/1 for the intervention arm, False/0 for control.
    covariates : iterable of str
        Baseline characteristics to check (prior attainment, FSM, ...).
    binary : iterable of str, optional
        Which covariates are binary (Cox index). By default, a covariate whose values are all
        0/1 (or True/False) is binary and any other is continuous (Hedges' g).
    satisfied, adjustment : float
        Thresholds passed to :func:`baseline_equivalence`.

    Returns
    -------
    pandas.DataFrame
        Columns ``covariate, kind ("continuous" | "binary"), index ("hedges_g" | "cox"),
        mean_treatment, mean_control, sd_treatment, sd_control, n_treatment, n_control,
        effect_size, verdict``. ``n_*`` count pupils with the covariate recorded; rows with it
        missing are left out of that covariate's comparison. ``effect_size`` is ``NaN`` and the
        verdict ``"undefined"`` when it cannot be computed (no variation, a proportion of 0 or
        1, fewer than 2 pupils in an arm).

    Raises
    ------
    cpdimpact.errors.MissingColumnError
        If ``treatment`` or a covariate is not a column.
    cpdimpact.errors.InvalidValueError
        If the treatment column is not 0/1 or a covariate is not numeric.

    Notes
    -----
    Continuous: Hedges' g with the pooled SD and :math:`\\omega = 1 - 3/(4N - 9)` (as
    :func:`~cpdimpact.effects.hedges_g_from_summary`); binary: :func:`cox_index` with the
    same :math:`\\omega`. Verdicts as :func:`baseline_equivalence`.

    Examples
    --------
    >>> import pandas as pd
    >>> from cpdimpact.effects import baseline_equivalence_table
    >>> df = pd.DataFrame({"t": [1, 1, 1, 0, 0, 0], "prior": [5, 6, 7, 4, 5, 6],
    ...                    "fsm": [1, 0, 0, 1, 0, 0]})
    >>> table = baseline_equivalence_table(df, treatment="t", covariates=["prior", "fsm"])
    >>> table[["covariate", "index", "effect_size", "verdict"]].round(3)
      covariate     index  effect_size        verdict
    0     prior  hedges_g          0.8  not satisfied
    1       fsm       cox          0.0      satisfied
    """
    if not isinstance(data, pd.DataFrame):
        raise InvalidValueError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    for column in [treatment, *covariates]:
        if column not in data.columns:
            raise MissingColumnError(
                f"column {column!r} is not in data; available columns: "
                f"{', '.join(map(str, data.columns[:20]))}."
            )
    arm = require_indicator(data, treatment, "be True/False or 1/0 for every pupil; see ")
    treated = arm.astype(bool).to_numpy()
    binary_set = None if binary is None else set([binary] if isinstance(binary, str) else binary)
    rows = []
    for column in covariates:
        values = data[column]
        if values.dtype == bool:
            values = values.astype(float)
        if not pd.api.types.is_numeric_dtype(values):
            raise InvalidValueError(
                f"covariate {column!r} must be numeric (0/1 for a binary characteristic); got "
                f"dtype {values.dtype}."
            )
        x = values.to_numpy(dtype=float)
        present = ~np.isnan(x)
        xt, xc = x[present & treated], x[present & ~treated]
        if binary_set is None:
            is_binary = bool(np.isin(x[present], (0.0, 1.0)).all())
        else:
            is_binary = column in binary_set
        rows.append(_balance_row(column, xt, xc, is_binary, satisfied, adjustment))
    columns = [
        "covariate", "kind", "index", "mean_treatment", "mean_control", "sd_treatment",
        "sd_control", "n_treatment", "n_control", "effect_size", "verdict",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _balance_row(column, xt, xc, is_binary, satisfied, adjustment) -> dict:
    nt, nc = xt.size, xc.size
    mt = float(xt.mean()) if nt else math.nan
    mc = float(xc.mean()) if nc else math.nan
    st = float(xt.std(ddof=1)) if nt > 1 else math.nan
    sc = float(xc.std(ddof=1)) if nc > 1 else math.nan
    n = nt + nc
    omega = 1.0 - 3.0 / (4.0 * n - 9.0) if n >= 4 else math.nan
    es = math.nan
    if is_binary:
        if nt and nc and 0 < mt < 1 and 0 < mc < 1 and n >= 4:
            es = omega * (math.log(mt / (1 - mt)) - math.log(mc / (1 - mc))) / _COX_SCALE
    elif nt > 1 and nc > 1:
        pooled = math.sqrt(((nt - 1) * st**2 + (nc - 1) * sc**2) / (n - 2))
        if pooled > 0:
            es = omega * (mt - mc) / pooled
    verdict = (
        "undefined"
        if math.isnan(es)
        else baseline_equivalence(es, satisfied=satisfied, adjustment=adjustment)
    )
    return {
        "covariate": column,
        "kind": "binary" if is_binary else "continuous",
        "index": "cox" if is_binary else "hedges_g",
        "mean_treatment": mt,
        "mean_control": mc,
        "sd_treatment": math.nan if is_binary else st,
        "sd_control": math.nan if is_binary else sc,
        "n_treatment": nt,
        "n_control": nc,
        "effect_size": es,
        "verdict": verdict,
    }


# --- WWC clustering correction for mismatched analyses ---------------------------------------


@dataclass(frozen=True, kw_only=True)
class ClusteringCorrection(ResultFaces):
    """WWC correction of a significance test that ignored clustering.

    Build with :func:`wwc_clustering_correction`.

    Attributes
    ----------
    g : float
        The effect size (Hedges' g) as reported by the unclustered analysis.
    n_treatment, n_control : int
        Pupils per arm.
    cluster_size : float
        Average pupils per cluster, *n*.
    icc : float
        The intraclass correlation used.
    t : float
        The t statistic implied by *g* ignoring clustering.
    t_adjusted : float
        :math:`t_a`, corrected for clustering.
    df : float
        *h*, the corrected degrees of freedom.
    p_value : float
        Two-sided p-value of :math:`t_a` on *h* degrees of freedom.
    alpha : float
        Significance level for :attr:`significant`.
    """

    g: float
    n_treatment: int
    n_control: int
    cluster_size: float
    icc: float
    t: float
    t_adjusted: float
    df: float
    p_value: float
    alpha: float

    @property
    def significant(self) -> bool:
        """Whether the corrected test rejects at :attr:`alpha`."""
        return bool(self.p_value < self.alpha)

    def to_frame(self) -> pd.DataFrame:
        """Tidy two-row table: the naive and the corrected test (``term, statistic, df,
        p_value``)."""
        naive_df = self.n_treatment + self.n_control - 2
        return pd.DataFrame(
            {
                "term": ["ignoring clustering", "corrected (WWC)"],
                "statistic": [self.t, self.t_adjusted],
                "df": [float(naive_df), self.df],
                "p_value": [float(2 * stats.t.sf(abs(self.t), naive_df)), self.p_value],
            }
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-safe dictionary of the fields and :attr:`significant`."""
        return {
            "g": self.g,
            "n_treatment": self.n_treatment,
            "n_control": self.n_control,
            "cluster_size": self.cluster_size,
            "icc": self.icc,
            "t": self.t,
            "t_adjusted": self.t_adjusted,
            "df": self.df,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "significant": self.significant,
        }

    def summary(self) -> Summary:
        """Printable summary of the correction."""
        facts = (
            ("Effect size g", f"{self.g:.3f}"),
            ("Pupils (treatment, control)", f"{self.n_treatment}, {self.n_control}"),
            ("Average cluster size", f"{self.cluster_size:.4g}"),
            ("ICC", f"{self.icc:.3g}"),
            ("t ignoring clustering", f"{self.t:.4f}"),
            ("Corrected t_a", f"{self.t_adjusted:.4f} on {self.df:.2f} df"),
            ("Corrected p-value", f"{self.p_value:.4f}"),
            (
                f"Significant at {self.alpha:g}",
                "yes" if self.significant else "no (WWC: not statistically significant)",
            ),
        )
        return Summary(title="WWC clustering correction", facts=facts, table=self.to_frame())


def wwc_clustering_correction(
    g: float,
    *,
    n_treatment: int,
    n_control: int,
    n_clusters: int | None = None,
    cluster_size: float | None = None,
    icc: float = 0.20,
    alpha: float = 0.05,
) -> ClusteringCorrection:
    r"""WWC clustering correction for an analysis that ignored the clusters assigned.

    Parameters
    ----------
    g : float
        Hedges' g from the unclustered analysis.
    n_treatment, n_control : int
        Pupils in each arm.
    n_clusters : int, optional
        Total clusters in both arms, *M*; the average cluster size is then :math:`n = N/M`.
    cluster_size : float, optional
        The average cluster size *n* directly. Give exactly one of ``n_clusters`` and
        ``cluster_size``.
    icc : float, default 0.20
        Intraclass correlation; the WWC default for achievement outcomes is 0.20 (0.10 for
        behavioural and attitudinal outcomes).
    alpha : float, default 0.05
        Significance level for :attr:`ClusteringCorrection.significant`.

    Returns
    -------
    ClusteringCorrection

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If ``icc`` is outside [0, 1), counts are not whole numbers of at least 2, the cluster
        arguments are both or neither given, or the corrected degrees of freedom are not
        positive; the message names the argument.

    Notes
    -----
    With :math:`N = n_t + n_c` (WWC handbook; Hedges 2007):

    .. math::

        t = \frac{g}{\sqrt{\frac{n_t + n_c}{n_t n_c} + \frac{g^2}{2(n_t + n_c)}}}, \qquad
        t_a = t\,\sqrt{\frac{(N-2) - 2(n-1)\rho}{(N-2)\,[1 + (n-1)\rho]}},

        h = \frac{[(N-2) - 2(n-1)\rho]^2}
                 {(N-2)(1-\rho)^2 + n(N-2n)\rho^2 + 2(N-2n)\rho(1-\rho)},

    and the p-value is two-sided from Student's t on *h* degrees of freedom. The formulas are
    a secondary transcription (``docs/sources.md`` section "WWC figures").

    References
    ----------
    Hedges, L. V. (2007). Correcting a significance test for clustering. *Journal of
    Educational and Behavioral Statistics*, 32(2), 151-179.

    What Works Clearinghouse. *Procedures and Standards Handbook*, versions 4.1 and 5.0.

    Examples
    --------
    The check in ``docs/sources.md`` section "WWC figures": g = 0.30, 200 + 200 pupils in 20
    clusters.

    >>> from cpdimpact.effects import wwc_clustering_correction
    >>> c = wwc_clustering_correction(0.30, n_treatment=200, n_control=200, n_clusters=20)
    >>> round(c.t, 4), round(c.t_adjusted, 4), round(c.df, 2), round(c.p_value, 4)
    (2.9833, 1.3486, 231.66, 0.1788)
    """
    g = real("g", g)
    if not math.isfinite(g):
        raise InvalidValueError(f"g must be finite, got {g!r}.")
    n_t, n_c = whole("n_treatment", n_treatment, 0), whole("n_control", n_control, 0)
    for name, value in (("n_treatment", n_t), ("n_control", n_c)):
        if value < 2:
            raise InvalidValueError(f"{name} must be at least 2, got {value}.")
    icc = real("icc", icc)
    if not (math.isfinite(icc) and 0.0 <= icc < 1.0):
        raise InvalidValueError(f"icc must lie in [0, 1), got {icc!r}.")
    alpha = check_alpha(alpha)
    total = n_t + n_c
    if (n_clusters is None) == (cluster_size is None):
        raise InvalidValueError("give exactly one of n_clusters and cluster_size.")
    if n_clusters is not None:
        m = whole("n_clusters", n_clusters, 0)
        if not 2 <= m <= total:
            raise InvalidValueError(
                f"n_clusters must be between 2 and the number of pupils ({total}), got {m}."
            )
        n = total / m
    else:
        n = real("cluster_size", cluster_size)
        if not (math.isfinite(n) and 1.0 <= n <= total / 2):
            raise InvalidValueError(
                f"cluster_size must be between 1 and half the pupils ({total / 2:g}), got {n!r}."
            )
    big = total - 2
    core = big - 2 * (n - 1) * icc  # > 0: n <= N/2 and icc < 1 give 2(n - 1) icc < N - 2
    t = g / math.sqrt(total / (n_t * n_c) + g**2 / (2 * total))
    t_a = t * math.sqrt(core / (big * (1 + (n - 1) * icc)))
    h = core**2 / (
        big * (1 - icc) ** 2 + n * (total - 2 * n) * icc**2 + 2 * (total - 2 * n) * icc * (1 - icc)
    )
    return ClusteringCorrection(
        g=g,
        n_treatment=n_t,
        n_control=n_c,
        cluster_size=n,
        icc=icc,
        t=t,
        t_adjusted=t_a,
        df=h,
        p_value=float(2 * stats.t.sf(abs(t_a), h)),
        alpha=alpha,
    )


# --- WWC-style study rating -----------------------------------------------------------------

_RATINGS = (
    "meets standards without reservations",
    "meets standards with reservations",
    "does not meet standards",
)


@dataclass(frozen=True, kw_only=True)
class StudyRating(ResultFaces):
    """A WWC-style study rating with the steps that led to it.

    Build with :func:`wwc_study_rating`.

    Attributes
    ----------
    rating : str
        ``"meets standards without reservations"``, ``"meets standards with reservations"``
        or ``"does not meet standards"``.
    steps : pandas.DataFrame
        One row per decision: ``step, input, outcome``.
    """

    rating: str
    steps: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The steps table (a copy)."""
        return self.steps.copy()

    def to_dict(self) -> dict[str, object]:
        """JSON-safe dictionary: the rating and the steps as records."""
        return {"rating": self.rating, "steps": self.steps.to_dict(orient="records")}

    def summary(self) -> Summary:
        """Printable rating and steps."""
        return Summary(
            title="Study rating (WWC-style)",
            facts=(("Rating", self.rating),),
            table=self.steps,
            notes=(
                "A WWC-style reading of the design, attrition and baseline equivalence; a WWC "
                "review also checks outcome eligibility, confounds, joiners in cluster designs "
                "and reporting, which are the evaluator's to record.",
            ),
        )

    def __str__(self) -> str:
        return self.rating


def wwc_study_rating(
    *,
    design: Literal["randomised", "quasi-experimental"],
    attrition: Literal["low", "high"] | None = None,
    baseline: Literal["satisfied", "adjustment required", "not satisfied"] | None = None,
    adjusted: bool = False,
    confounded: bool = False,
) -> StudyRating:
    """A WWC-style rating of a group design from its design, attrition and baseline balance.

    Parameters
    ----------
    design : {"randomised", "quasi-experimental"}
        Whether assignment was random (and not compromised).
    attrition : {"low", "high"}, optional
        From :func:`wwc_attrition`; required for a randomised design.
    baseline : {"satisfied", "adjustment required", "not satisfied"}, optional
        The worst verdict over the required baseline characteristics of the *analysed*
        sample, from :func:`baseline_equivalence` / :func:`baseline_equivalence_table`.
        ``None`` means equivalence was not assessed.
    adjusted : bool, default False
        Whether the impact model adjusts for the characteristics whose verdict was
        ``"adjustment required"``.
    confounded : bool, default False
        Whether a confounding factor is present (e.g. one school per arm, so the school and
        the intervention cannot be separated).

    Returns
    -------
    StudyRating

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If an argument is not one of the listed values, or ``attrition`` is missing for a
        randomised design.

    Notes
    -----
    The decision path of the WWC group-design standards (handbook v4.1/v5.0):

    1. A confounding factor: **does not meet standards**.
    2. A randomised design with low attrition: **meets standards without reservations**.
    3. Otherwise (randomised with high attrition, or quasi-experimental) the analysed arms
       must be equivalent at baseline: if ``baseline`` is ``"satisfied"``, or
       ``"adjustment required"`` with ``adjusted=True``, the study **meets standards with
       reservations**; otherwise it **does not meet standards**.

    This helper covers only that path; the WWC's further rules (eligible outcomes, joiners in
    cluster designs, compromised randomisation) are for the evaluator.

    References
    ----------
    What Works Clearinghouse. *Procedures and Standards Handbook*, versions 4.1 and 5.0.

    Examples
    --------
    >>> from cpdimpact.effects import wwc_study_rating
    >>> print(wwc_study_rating(design="randomised", attrition="low"))
    meets standards without reservations
    >>> print(wwc_study_rating(design="quasi-experimental", baseline="adjustment required",
    ...                        adjusted=True))
    meets standards with reservations
    """
    design = _choice("design", design, ("randomised", "quasi-experimental"))
    if attrition is not None:
        _choice("attrition", attrition, ("low", "high"))
    if baseline is not None:
        _choice("baseline", baseline, ("satisfied", "adjustment required", "not satisfied"))
    for name, flag in (("adjusted", adjusted), ("confounded", confounded)):
        if not isinstance(flag, bool | np.bool_):
            raise InvalidValueError(f"{name} must be True or False, got {flag!r}.")
    if design == "randomised" and attrition is None:
        raise InvalidValueError(
            "attrition ('low' or 'high', from wwc_attrition) is required for a randomised design."
        )
    steps: list[tuple[str, str, str]] = []

    def done(rating: str) -> StudyRating:
        steps.append(("rating", "", rating))
        return StudyRating(
            rating=rating, steps=pd.DataFrame(steps, columns=["step", "input", "outcome"])
        )

    steps.append(
        (
            "confounding factor",
            "present" if confounded else "none recorded",
            "does not meet standards" if confounded else "continue",
        )
    )
    if confounded:
        return done(_RATINGS[2])
    if design == "randomised":
        low = attrition == "low"
        steps.append(
            (
                "design and attrition",
                f"randomised, {attrition} attrition",
                "eligible without reservations" if low else "must show baseline equivalence",
            )
        )
        if low:
            return done(_RATINGS[0])
    else:
        steps.append(
            ("design and attrition", "quasi-experimental", "must show baseline equivalence")
        )
    if baseline is None:
        steps.append(("baseline equivalence", "not assessed", "not demonstrated"))
        return done(_RATINGS[2])
    if baseline == "satisfied":
        steps.append(("baseline equivalence", "satisfied", "demonstrated"))
        return done(_RATINGS[1])
    if baseline == "adjustment required":
        ok = bool(adjusted)
        steps.append(
            (
                "baseline equivalence",
                "adjustment required; " + ("adjusted in the model" if ok else "not adjusted"),
                "demonstrated" if ok else "not demonstrated",
            )
        )
        return done(_RATINGS[1] if ok else _RATINGS[2])
    steps.append(("baseline equivalence", "not satisfied", "not demonstrated"))
    return done(_RATINGS[2])


# --- EEF cost -----------------------------------------------------------------------------

#: Upper edges (GBP per pupil per year) of the EEF Teaching and Learning Toolkit cost bands:
#: very low under 80; low up to 200; moderate up to 720; high up to 1,200; very high above
#: (docs/sources.md, "EEF conventions").
EEF_COST_THRESHOLDS = (80.0, 200.0, 720.0, 1200.0)
_COST_LABELS = ("very low", "low", "moderate", "high", "very high")


def _thresholds(thresholds: object) -> tuple[float, float, float, float]:
    values = tuple(real("thresholds", t) for t in thresholds)  # type: ignore[union-attr]
    if len(values) != 4 or not all(0 < a < b for a, b in zip(values, values[1:], strict=False)):
        raise InvalidValueError(
            f"thresholds must be four increasing positive amounts, got {thresholds!r}."
        )
    if not values[0] > 0:
        raise InvalidValueError("thresholds must be positive.")
    return values  # type: ignore[return-value]


def eef_cost_rating(
    cost_per_pupil: float, *, thresholds: Sequence[float] = EEF_COST_THRESHOLDS
) -> Literal["very low", "low", "moderate", "high", "very high"]:
    """EEF Toolkit cost rating of a cost per pupil per year.

    Parameters
    ----------
    cost_per_pupil : float
        Cost per pupil per year in pounds (see :func:`eef_cost`).
    thresholds : sequence of 4 float, default ``EEF_COST_THRESHOLDS``
        Band edges: very low below the first; low up to and including the second; moderate
        up to the third; high up to the fourth; very high above.

    Returns
    -------
    {"very low", "low", "moderate", "high", "very high"}

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If the cost is negative or not finite, or the thresholds are not increasing.

    Examples
    --------
    >>> from cpdimpact.effects import eef_cost_rating
    >>> eef_cost_rating(79.99), eef_cost_rating(80), eef_cost_rating(720), eef_cost_rating(1201)
    ('very low', 'low', 'moderate', 'very high')
    """
    cost = real("cost_per_pupil", cost_per_pupil)
    if not (math.isfinite(cost) and cost >= 0):
        raise InvalidValueError(f"cost_per_pupil must be finite and at least 0, got {cost!r}.")
    edges = _thresholds(thresholds)
    if cost < edges[0]:
        return "very low"
    for label, edge in zip(_COST_LABELS[1:], edges[1:], strict=False):
        if cost <= edge:
            return label  # type: ignore[return-value]
    return "very high"


@dataclass(frozen=True, kw_only=True)
class CostEstimate(ResultFaces):
    """Cost per pupil per year and the EEF cost rating. Build with :func:`eef_cost`.

    Attributes
    ----------
    total_cost : float
        Cumulative cost over :attr:`years`, in pounds.
    pupils : float
        Pupils reached each year.
    years : int
        Years the cost is spread over (the EEF uses three).
    per_pupil_per_year : float
        ``total_cost / (pupils * years)``.
    rating : str
        From :func:`eef_cost_rating`.
    """

    total_cost: float
    pupils: float
    years: int
    per_pupil_per_year: float
    rating: str

    @property
    def pounds(self) -> int:
        """The rating as the Toolkit's 1-5 pound signs (very low = 1)."""
        return _COST_LABELS.index(self.rating) + 1

    def to_frame(self) -> pd.DataFrame:
        """One-row table of the fields and :attr:`pounds`."""
        return pd.DataFrame([self.to_dict()])

    def to_dict(self) -> dict[str, object]:
        """JSON-safe dictionary."""
        return {
            "total_cost": self.total_cost,
            "pupils": self.pupils,
            "years": self.years,
            "per_pupil_per_year": self.per_pupil_per_year,
            "rating": self.rating,
            "pounds": self.pounds,
        }

    def summary(self) -> Summary:
        """Printable cost summary."""
        return Summary(
            title="Cost (EEF Toolkit)",
            facts=(
                ("Total cost", f"£{self.total_cost:,.0f} over {self.years} year(s)"),
                ("Pupils per year", f"{self.pupils:,.0f}"),
                ("Cost per pupil per year", f"£{self.per_pupil_per_year:,.2f}"),
                ("Rating", f"{self.rating} ({'£' * self.pounds})"),
            ),
        )


def eef_cost(
    *,
    pupils: float,
    total: float | None = None,
    one_off: float = 0.0,
    per_year: float = 0.0,
    years: int = 3,
    thresholds: Sequence[float] = EEF_COST_THRESHOLDS,
) -> CostEstimate:
    """EEF cost per pupil per year and cost rating of a programme.

    Parameters
    ----------
    pupils : float
        Pupils reached each year (e.g. pupils taught by trained teachers).
    total : float, optional
        Cumulative cost over ``years`` in pounds. Alternatively give ``one_off`` and
        ``per_year``.
    one_off : float, default 0
        Start-up costs (training, materials bought once).
    per_year : float, default 0
        Recurring costs each year (licences, cover, replacement materials).
    years : int, default 3
        Years to spread the cost over; the EEF uses three, so start-up costs count once in
        three years of delivery.
    thresholds : sequence of 4 float
        Band edges passed to :func:`eef_cost_rating`.

    Returns
    -------
    CostEstimate

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If costs are negative, ``pupils`` is not positive, ``years`` is not a whole number of
        at least 1, or ``total`` is combined with ``one_off``/``per_year``.

    Notes
    -----
    :math:`\\text{cost per pupil per year} = (\\text{one-off} + \\text{years} \\times
    \\text{per year}) / (\\text{pupils} \\times \\text{years})`, assuming the same number of
    pupils each year. Only the costs of delivering the programme count (EEF cost evaluation
    guidance); costs of the evaluation do not. The bands are those of ``docs/sources.md``
    section "EEF conventions".

    Examples
    --------
    Training 20 teachers once (£30,000) plus £6,000 a year, reaching 600 pupils a year:

    >>> from cpdimpact.effects import eef_cost
    >>> cost = eef_cost(pupils=600, one_off=30_000, per_year=6_000)
    >>> round(cost.per_pupil_per_year, 2), cost.rating, cost.pounds
    (26.67, 'very low', 1)
    """
    pupils = real("pupils", pupils)
    if not (math.isfinite(pupils) and pupils > 0):
        raise InvalidValueError(f"pupils must be positive, got {pupils!r}.")
    valid_years = isinstance(years, numbers.Integral) and not isinstance(years, bool) and years >= 1
    if not valid_years:
        raise InvalidValueError(f"years must be a whole number of at least 1, got {years!r}.")
    one_off, per_year = real("one_off", one_off), real("per_year", per_year)
    for name, value in (("one_off", one_off), ("per_year", per_year)):
        if not (math.isfinite(value) and value >= 0):
            raise InvalidValueError(f"{name} must be finite and at least 0, got {value!r}.")
    if total is not None:
        if one_off or per_year:
            raise InvalidValueError("give either total, or one_off and per_year, not both.")
        total = real("total", total)
    else:
        total = one_off + per_year * int(years)
    if not (math.isfinite(total) and total >= 0):
        raise InvalidValueError(f"total must be finite and at least 0, got {total!r}.")
    per_pupil = total / (pupils * int(years))
    return CostEstimate(
        total_cost=float(total),
        pupils=pupils,
        years=int(years),
        per_pupil_per_year=per_pupil,
        rating=eef_cost_rating(per_pupil, thresholds=thresholds),
    )
