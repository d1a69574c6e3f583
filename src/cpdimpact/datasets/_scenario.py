"""The :class:`Scenario`: every parameter of the simulated records, checked on construction."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from .._validate import check_choice, check_number, check_probability
from ..errors import InvalidArgumentError

__all__ = ["Scenario"]

#: Defaults that depend on the phase (KS2 scaled scores for primary, Attainment 8 for secondary).
_PHASE_DEFAULTS: Mapping[str, Mapping[str, object]] = {
    "primary": {
        "outcome_mean": 104.5,
        "outcome_sd": 6.5,
        "class_size": 27.0,
        "classes_per_year": (1, 2),
        "teachers_per_form": 7.0,
        "fsm_gap": 0.20,
    },
    "secondary": {
        "outcome_mean": 47.0,
        "outcome_sd": 19.0,
        "class_size": 22.0,
        "classes_per_year": (5, 8),
        "teachers_per_form": 1.2,
        "fsm_gap": 0.30,
    },
}

#: Year groups on roll, used only to turn cohort size into a school's size.
YEAR_GROUPS = {"primary": 7, "secondary": 5}


@dataclass(frozen=True, kw_only=True)
class Scenario:
    r"""Every parameter of the simulated records: schools, pupils, outcome model and programme.

    A scenario holds no data; :func:`~cpdimpact.datasets.simulate` draws records from it. All
    effects and gaps are in pupil standard-deviation (SD) units of the untreated outcome and are
    turned into outcome points by multiplying by ``outcome_sd``. Fields left as ``None`` take the
    default of the ``phase`` (primary: KS2-like scaled score; secondary: Attainment 8-like).

    Parameters
    ----------
    name
        A label carried into the records and reports.
    years
        First and last test year (inclusive).
    areas
        Names of the local authorities or hub areas.
    schools_per_area
        Schools in each area: an int, or an inclusive ``(low, high)`` range drawn per area.
    phase
        ``"primary"`` or ``"secondary"``.
    classes_per_year
        Inclusive ``(low, high)`` range of classes (forms of entry) in the tested year group,
        drawn per school. Default ``(1, 2)`` primary, ``(5, 8)`` secondary.
    class_size, class_size_sd
        Mean and SD of the number of pupils in a class (default 27 primary, 22 secondary).
    teachers_per_form
        Teachers on the staff per form of entry (default 7 primary: one per year group; 1.2
        secondary: a subject department).
    teacher_turnover
        Yearly probability that a teacher leaves and is replaced by a new one.
    fsm_share
        Mean share of pupils eligible for free school meals; school shares are drawn from a Beta
        distribution with this mean.
    fsm_concentration
        Sum of the Beta parameters: the smaller, the more school FSM shares vary.
    sen_rate, eal_rate
        Shares of pupils with special educational needs and with English as an additional
        language.
    outcome_mean, outcome_sd
        Mean (at the middle year) and pupil-level SD of the untreated outcome, in points.
    school_icc
        Share of the within-year variance of the untreated outcome that lies between schools
        persistently (area, school and compositional effects), in ``[0, 1)``.
    area_sd
        SD of persistent area effects (part of the between-school share above).
    area_year_sd, school_year_sd
        SD of transient area-by-year and school-by-year shocks.
    teacher_sd
        SD of class-teacher effects (value added).
    prior_slope
        Coefficient of standardised prior attainment in the outcome.
    prior_school_share
        Share of the variance of prior attainment that lies between schools.
    fsm_prior_gap, sen_prior_gap, eal_prior_gap
        How far below the mean (SD) FSM, SEN and EAL pupils' prior attainment lies.
    fsm_gap, sen_gap, eal_gap
        Further gaps in the outcome given prior attainment (conditional gaps; negative means the
        group does better). Default ``fsm_gap`` 0.20 primary, 0.30 secondary.
    trend
        Secular trend of the untreated outcome, in SD per year (the same for every school).
    start_years
        Areas whose schools may join, mapped to the start year (or a sequence of start years,
        over which the joining schools are split evenly: a staggered roll-out within the area).
    join_share
        Share of the schools of each such area that join, in ``(0, 1]``.
    selection_fsm
        Log-odds of joining per 10 percentage points of school FSM share above the mean:
        schools serving more disadvantaged pupils join more often. Selection is on levels only,
        so the untreated outcome keeps parallel trends.
    selection_dip
        Selection on a bad year (0, the default, turns it off). Schools are chosen for support
        because of their results in ``dip_year``: a school's selection weight is multiplied by
        ``exp(-selection_dip)`` per SD (between the area's schools) of its mean untreated
        outcome that year, on top of ``selection_fsm`` (drawn as for ``selection_fsm``). The school mean holds transitory parts
        (school-by-year shock, that year's pupils and class teacher), so the chosen schools'
        results recover the next year even without support: regression to the mean, the
        "Ashenfelter dip". The chosen schools of an area are then split at random over its
        start years (support in waves, as capacity allows), so every wave was selected by the
        same rule on the same year and later waves are valid not-yet-treated comparisons.
    dip_year
        The results year schools are selected on (only with ``selection_dip > 0``). Default:
        the year before the earliest start year of the scenario. It must fall before every
        start year.
    dip_each_wave
        With ``selection_dip > 0``: choose each start year's schools in turn, among those not
        yet chosen, on the results of the year before *that* start (instead of choosing every
        wave on ``dip_year`` and splitting at random). Later waves then dip inside earlier
        waves' post-periods, so they are no longer clean not-yet-treated comparisons: a
        scenario for showing that failure.
    exposure
        ``"school"``: every tested pupil of a joined school is exposed from its start year;
        ``"teacher"``: only pupils taught that year by a participating teacher.
    effect
        Programme effect (SD) in the first year of exposure (event time 0).
    effect_growth
        Added per further year of exposure: the effect at event time ``e`` is
        ``effect + effect_growth * e``.
    effect_fsm_extra
        Extra effect for FSM pupils.
    effect_school_sd
        SD of school-specific deviations of the effect (heterogeneity across schools).
    participants_per_school
        Teachers named in the participation table per joined school (0: one whole-school row
        with no named teacher).
    strands
        ``(name, share, mean_hours)`` of each programme strand: the share of enrolments in the
        strand (normalised to sum to one) and the mean CPD hours it gives.
    programme_cost
        Total programme cost in pounds, reported in :class:`Truth` for cost-effectiveness.

    Raises
    ------
    ValueError
        When a parameter is out of range or the variance components do not fit inside the total
        (for instance a ``school_icc`` smaller than what the prior and FSM composition alone
        put between schools).

    Notes
    -----
    The untreated outcome has, within a year, variance ``outcome_sd**2`` in expectation, of which
    the share ``school_icc`` is persistent between-school variance. The pupil-level residual and
    the school effect variance are solved from that budget (see :meth:`variance_budget`), so
    changing a gap or the teacher SD moves variance between components without changing the
    total SD or the ICC.

    Examples
    --------
    >>> from cpdimpact.datasets import Scenario
    >>> sc = Scenario(schools_per_area=20, effect=0.1)
    >>> sc.outcome_sd, sc.classes_per_year
    (6.5, (1, 2))
    >>> round(sc.variance_budget()["school"], 3)
    0.12
    """

    name: str = "custom"
    years: tuple[int, int] = (2017, 2023)
    areas: Sequence[str] = ("City",)
    schools_per_area: int | tuple[int, int] = 160
    phase: str = "primary"
    classes_per_year: tuple[int, int] | None = None
    class_size: float | None = None
    class_size_sd: float = 3.0
    teachers_per_form: float | None = None
    teacher_turnover: float = 0.12
    fsm_share: float = 0.24
    fsm_concentration: float = 8.0
    sen_rate: float = 0.15
    eal_rate: float = 0.20
    outcome_mean: float | None = None
    outcome_sd: float | None = None
    school_icc: float = 0.17
    area_sd: float = 0.05
    area_year_sd: float = 0.0
    school_year_sd: float = 0.05
    teacher_sd: float = 0.12
    prior_slope: float = 0.6
    prior_school_share: float = 0.12
    fsm_prior_gap: float = 0.40
    sen_prior_gap: float = 0.80
    eal_prior_gap: float = 0.30
    fsm_gap: float | None = None
    sen_gap: float = 0.20
    eal_gap: float = -0.10
    trend: float = 0.02
    start_years: Mapping[str, int | Sequence[int]] = field(default_factory=lambda: {"City": 2021})
    join_share: float = 0.5
    selection_fsm: float = 0.3
    selection_dip: float = 0.0
    dip_year: int | None = None
    dip_each_wave: bool = False
    exposure: str = "school"
    effect: float = 0.05
    effect_growth: float = 0.0
    effect_fsm_extra: float = 0.0
    effect_school_sd: float = 0.0
    participants_per_school: int = 5
    strands: Sequence[tuple[str, float, float]] = (("whole_school", 1.0, 30.0),)
    programme_cost: float = 0.0

    def __post_init__(self) -> None:
        check_choice(self.phase, "phase", sorted(_PHASE_DEFAULTS))
        for key, value in _PHASE_DEFAULTS[self.phase].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        # Normalise containers to tuples so the scenario is hashable and cannot change later.
        object.__setattr__(self, "years", _pair(self.years, "years"))
        object.__setattr__(self, "areas", tuple(self.areas))
        spa = self.schools_per_area
        spa = (spa, spa) if isinstance(spa, int | float) else spa
        object.__setattr__(self, "schools_per_area", _pair(spa, "schools_per_area"))
        object.__setattr__(
            self, "classes_per_year", _pair(self.classes_per_year, "classes_per_year")
        )
        object.__setattr__(self, "start_years", _normalise_starts(self.start_years))
        object.__setattr__(
            self,
            "strands",
            tuple((str(n), float(s), float(h)) for n, s, h in self.strands),
        )
        self._check()

    # ------------------------------------------------------------------ checks
    def _check(self) -> None:
        first, last = self.years
        if first >= last:
            raise InvalidArgumentError(
                f"years must be (first, last) with first < last; got {self.years}"
            )
        if not self.areas or len(set(self.areas)) != len(self.areas):
            raise InvalidArgumentError(f"areas must be non-empty and unique; got {self.areas}")
        lo, hi = self.schools_per_area
        if lo < 1 or lo > hi:
            raise InvalidArgumentError(
                f"schools_per_area must be >= 1 (or a range low <= high); got {self.schools_per_area}"
            )
        lo, hi = self.classes_per_year
        if lo < 1 or lo > hi:
            raise InvalidArgumentError(
                f"classes_per_year must be a range 1 <= low <= high; got {self.classes_per_year}"
            )
        _positive(self, "class_size", "teachers_per_form", "outcome_sd", "fsm_concentration")
        _non_negative(
            self,
            "class_size_sd",
            "area_sd",
            "area_year_sd",
            "school_year_sd",
            "teacher_sd",
            "effect_school_sd",
            "programme_cost",
        )
        _unit(self, "teacher_turnover", "sen_rate", "eal_rate", "school_icc", "prior_school_share")
        check_probability(self.fsm_share, "fsm_share", include_zero=False, include_one=False)
        check_probability(self.join_share, "join_share", include_zero=False)
        check_choice(self.exposure, "exposure", ("school", "teacher"))
        if int(self.participants_per_school) != self.participants_per_school or (
            self.participants_per_school < 0
        ):
            raise InvalidArgumentError(
                "participants_per_school must be a whole number >= 0; "
                f"got {self.participants_per_school}"
            )
        if self.exposure == "teacher" and self.participants_per_school < 1:
            raise InvalidArgumentError(
                "exposure='teacher' needs named participating teachers; "
                "set participants_per_school >= 1"
            )
        if not self.start_years:
            raise InvalidArgumentError(
                "start_years must name at least one area that joins the programme"
            )
        for area, starts in self.start_years:
            if area not in self.areas:
                raise InvalidArgumentError(
                    f"start_years names area {area!r}, which is not in areas {self.areas}"
                )
            bad = [y for y in starts if not first < y <= last]
            if bad:
                raise InvalidArgumentError(
                    f"start years {bad} of area {area!r} must fall after the first year {first} "
                    f"(leaving a pre-period) and no later than {last}"
                )
        self._check_dip()
        if not self.strands:
            raise InvalidArgumentError(
                "strands must hold at least one (name, share, mean_hours) triple"
            )
        names = [s[0] for s in self.strands]
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"strand names must be unique; got {names}")
        if any(s[1] <= 0 or s[2] < 0 for s in self.strands):
            raise InvalidArgumentError(
                f"each strand needs share > 0 and mean_hours >= 0; got {self.strands}"
            )
        budget = self.variance_budget()
        if budget["school"] < 0:
            raise InvalidArgumentError(
                f"school_icc={self.school_icc} is smaller than the between-school variance share "
                f"that area effects, prior attainment and FSM composition already give "
                f"({self.school_icc - budget['school']:.3f}); raise school_icc or lower area_sd, "
                f"prior_school_share or the FSM gaps"
            )
        if budget["pupil"] <= 0:
            raise InvalidArgumentError(
                "the variance components exceed the total: the pupil-level residual would be "
                f"{budget['pupil']:.3f} (SD units squared); lower teacher_sd, the shocks, "
                "prior_slope or the gaps, or lower school_icc"
            )
        if budget["prior_pupil"] <= 0:
            raise InvalidArgumentError(
                "prior_school_share and the prior-attainment gaps leave no pupil-level variance "
                "of prior attainment; lower them"
            )

    def _check_dip(self) -> None:
        if not (math.isfinite(self.selection_dip) and self.selection_dip >= 0):
            raise InvalidArgumentError(
                f"selection_dip must be a number >= 0; got {self.selection_dip}"
            )
        if self.dip_each_wave and (self.selection_dip == 0 or self.dip_year is not None):
            raise InvalidArgumentError(
                "dip_each_wave chooses each wave on the year before its start: it needs "
                "selection_dip > 0 and no dip_year"
            )
        if self.dip_year is None:
            return
        if self.selection_dip == 0:
            raise InvalidArgumentError(
                "dip_year is used only when schools are selected on it; set selection_dip > 0 "
                "or leave dip_year as None"
            )
        earliest = min(y for _, starts in self.start_years for y in starts)
        if int(self.dip_year) != self.dip_year or not self.years[0] <= self.dip_year < earliest:
            raise InvalidArgumentError(
                f"dip_year must be a whole year from the first year {self.years[0]} to before "
                f"the earliest start year {earliest}; got {self.dip_year}"
            )

    # ------------------------------------------------------------------ derived
    def selection_year(self) -> int | None:
        """The results year schools are selected on (``None`` unless ``selection_dip > 0``;
        with ``dip_each_wave``, the first wave's)."""
        if self.selection_dip == 0:
            return None
        if self.dip_year is not None:
            return int(self.dip_year)
        return min(y for _, starts in self.start_years for y in starts) - 1

    def variance_budget(self) -> dict[str, float]:
        r"""Variance of each component of the standardised untreated outcome.

        Returns
        -------
        dict
            ``school`` (persistent school effect), ``pupil`` (pupil residual), ``prior_pupil``
            (pupil-level residual of prior attainment), each in SD units squared, plus
            ``between`` and ``within`` (both sides of the budget, summing to one).

        Notes
        -----
        With ``m`` the mean FSM share, ``v_p = m(1-m)/(k+1)`` the variance of Beta-distributed
        school shares, ``b`` the prior slope and ``c_g = b * prior_gap_g + gap_g`` the total
        coefficient of group ``g``,

        .. math::

            \rho = \sigma_A^2 + \sigma_u^2 + b^2 \pi + c_{fsm}^2 v_p,

            1 - \rho = \sigma_{AY}^2 + \sigma_{SY}^2 + \sigma_T^2 + b^2 \sigma_{\xi}^2
                + c_{fsm}^2 (m(1-m) - v_p) + \sum_{g \in \{sen, eal\}} c_g^2 r_g(1-r_g)
                + \sigma_e^2,

        where :math:`\pi` is ``prior_school_share`` and :math:`\sigma_\xi^2 = 1 - \pi -
        \sum_g \text{prior\_gap}_g^2 \, \mathrm{Var}(g)` the pupil-level variance of prior
        attainment. :math:`\sigma_u^2` and :math:`\sigma_e^2` are solved from these two lines.
        """
        m, rs, re = self.fsm_share, self.sen_rate, self.eal_rate
        var_fsm, var_sen, var_eal = m * (1 - m), rs * (1 - rs), re * (1 - re)
        var_p = var_fsm / (self.fsm_concentration + 1)
        b = self.prior_slope
        prior_pupil = (
            1
            - self.prior_school_share
            - self.fsm_prior_gap**2 * var_fsm
            - self.sen_prior_gap**2 * var_sen
            - self.eal_prior_gap**2 * var_eal
        )
        c_fsm = b * self.fsm_prior_gap + self.fsm_gap
        c_sen = b * self.sen_prior_gap + self.sen_gap
        c_eal = b * self.eal_prior_gap + self.eal_gap
        between = self.school_icc
        school = between - self.area_sd**2 - b**2 * self.prior_school_share - c_fsm**2 * var_p
        pupil = (
            1
            - between
            - self.area_year_sd**2
            - self.school_year_sd**2
            - self.teacher_sd**2
            - b**2 * prior_pupil
            - c_fsm**2 * (var_fsm - var_p)
            - c_sen**2 * var_sen
            - c_eal**2 * var_eal
        )
        return {
            "school": school,
            "pupil": pupil,
            "prior_pupil": prior_pupil,
            "between": between,
            "within": 1 - between,
        }

    def start_year_of(self, area: str) -> tuple[int, ...]:
        """Start years of ``area`` (empty when its schools never join)."""
        return dict(self.start_years).get(area, ())

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of every parameter (the keywords presets accept as overrides)."""
        return tuple(f.name for f in fields(cls))


# ---------------------------------------------------------------------- helpers
def _pair(value, name: str) -> tuple[int, int]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a pair (low, high); got {value!r}") from None
    if int(lo) != lo or int(hi) != hi:
        raise InvalidArgumentError(f"{name} must hold whole numbers; got {value!r}")
    return int(lo), int(hi)


def _normalise_starts(starts) -> tuple[tuple[str, tuple[int, ...]], ...]:
    items = starts.items() if isinstance(starts, Mapping) else starts
    out = []
    for area, years in items:
        years = (years,) if isinstance(years, int | float) else tuple(years)
        if not years or any(int(y) != y for y in years):
            raise InvalidArgumentError(
                f"start years of area {area!r} must be whole years; got {years}"
            )
        out.append((str(area), tuple(int(y) for y in years)))
    return tuple(out)


def _positive(sc: Scenario, *names: str) -> None:
    for name in names:
        check_number(getattr(sc, name), name, minimum=0, strict=True)


def _non_negative(sc: Scenario, *names: str) -> None:
    for name in names:
        check_number(getattr(sc, name), name, minimum=0)


def _unit(sc: Scenario, *names: str) -> None:
    for name in names:
        check_probability(getattr(sc, name), name, include_one=False)
