"""Simulated teacher careers with a known programme effect on leaving and promotion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._validate import check_choice, check_int, check_number, resolve_seed
from ..errors import ArgumentTypeError, InvalidArgumentError
from ..workforce import ROLES, TeacherRecords

__all__ = [
    "CareersScenario",
    "CareersTruth",
    "SimulatedCareers",
    "CAREER_PRESETS",
    "simulate_careers",
]

_FIRST_SCHOOL_ID = 100001  # six-digit, like a URN
_FIRST_TEACHER_ID = 5000001
#: Log-hazard shifts of leaving by years of service: the first years and near retirement.
_EARLY, _SETTLING, _RETIRING = 1.1, 0.5, 1.5
#: Years of service from which the retirement hazard applies.
_RETIREMENT = 35
#: Years of service beyond which selection on experience no longer raises the odds.
_SELECTION_CAP = 20


def _cloglog(p: float) -> float:
    return float(np.log(-np.log1p(-p)))


@dataclass(frozen=True, kw_only=True)
class CareersScenario:
    """The parameters of simulated teacher careers (:func:`simulate_careers`).

    Parameters
    ----------
    name
        A label.
    years
        The first and the last census year (:data:`cpdimpact.workforce.YEAR_CONVENTION`).
    areas
        Area names; schools move teachers only within their area.
    schools_per_area
        Schools in each area.
    teachers_per_school
        Mean teachers in post per school at the first census (Poisson, at least 3).
    fsm_share
        Mean share of FSM pupils of a school (Beta-distributed across schools).
    start_years
        Area -> the programme's ``start_year`` there; areas left out never start.
    join_share
        Share of an area's schools that join when it starts.
    selection_fsm
        Log-odds of joining per 10 percentage points of FSM above the mean.
    enrolment
        ``"teacher"``: ``participants_per_school`` teachers of each joined school enrol;
        ``"school"``: the school enrols as a whole (every teacher in post there takes part).
    participants_per_school
        Teachers enrolled per joined school (``enrolment="teacher"``).
    strands
        ``(name, count)`` pairs: with teacher enrolment, the number of participants of each
        strand (scaled to the participants drawn; a strand named ``headship`` takes the most
        senior and experienced participants, the "top teachers"); with school enrolment, the
        share of joined schools.
    leave_hr, move_hr, promote_hr
        Strand -> the programme's hazard ratio on leaving state-funded teaching, moving
        school and promotion (1 when a strand is not named).
    selection_experience
        Log-odds of a teacher's enrolment per year of service (counted up to 20) above the
        school's mean (0: no selection on experience). Positive values enrol mid-career
        teachers, who leave least, so a naive comparison overstates the effect on leaving.
    leave_base, move_base, promote_base
        Yearly probabilities at the reference: a teacher with 10 years of service in a school
        of mean FSM share and school effect 0; promotion from classroom teacher.
    fsm_leave
        Log hazard ratio of leaving (and moving) per unit of FSM share above the mean.
    school_sd
        SD of the school effect on the log hazard of leaving and moving.
    entry_rate
        New entrants per teacher in post per year, to each school.
    """

    name: str = "careers"
    years: tuple[int, int] = (2017, 2024)
    areas: tuple[str, ...] = ("City",)
    schools_per_area: int = 160
    teachers_per_school: float = 12.0
    fsm_share: float = 0.3
    start_years: Mapping[str, int] = field(default_factory=lambda: {"City": 2021})
    join_share: float = 0.5
    selection_fsm: float = 0.3
    enrolment: Literal["teacher", "school"] = "teacher"
    participants_per_school: int = 5
    strands: tuple[tuple[str, float], ...] = (("whole_school", 1.0),)
    leave_hr: Mapping[str, float] = field(default_factory=dict)
    move_hr: Mapping[str, float] = field(default_factory=dict)
    promote_hr: Mapping[str, float] = field(default_factory=dict)
    selection_experience: float = 0.0
    leave_base: float = 0.07
    move_base: float = 0.06
    promote_base: float = 0.08
    fsm_leave: float = 1.0
    school_sd: float = 0.3
    entry_rate: float = 0.095

    def __post_init__(self):
        first, last = self.years
        check_int(first, "years[0]", minimum=1900)
        if int(last) < int(first) + 2:
            raise InvalidArgumentError(
                f"years={self.years!r} must span at least three census years (first, last)."
            )
        check_int(self.schools_per_area, "schools_per_area", minimum=2)
        check_number(self.teachers_per_school, "teachers_per_school", minimum=3)
        check_number(self.fsm_share, "fsm_share", minimum=0, maximum=1, strict=True)
        check_number(self.join_share, "join_share", minimum=0, maximum=1)
        check_choice(self.enrolment, "enrolment", ("teacher", "school"))
        check_int(self.participants_per_school, "participants_per_school", minimum=1)
        for name in ("leave_base", "move_base", "promote_base"):
            check_number(getattr(self, name), name, minimum=0, maximum=1, strict=True)
        check_number(self.school_sd, "school_sd", minimum=0)
        check_number(self.entry_rate, "entry_rate", minimum=0)
        names = [s for s, _ in self.strands]
        for option in ("leave_hr", "move_hr", "promote_hr"):
            for strand, ratio in getattr(self, option).items():
                if strand not in names:
                    raise InvalidArgumentError(
                        f"{option} names strand {strand!r}, which is not one of the strands "
                        f"{names}."
                    )
                check_number(ratio, f"{option}[{strand!r}]", minimum=0, strict=True)
        for area, start in self.start_years.items():
            if area not in self.areas:
                raise InvalidArgumentError(f"start_years names {area!r}, not one of the areas.")
            if not first < int(start) < last:
                raise InvalidArgumentError(
                    f"start_years[{area!r}]={start} must fall after the first census year and "
                    f"before the last ({first}-{last})."
                )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of the scenario's fields (what presets accept as overrides)."""
        return tuple(f.name for f in fields(cls))

    def hazard_ratios(self) -> pd.DataFrame:
        """The true hazard ratios by strand: ``leaving``, ``moving`` and ``promotion``."""
        names = [s for s, _ in self.strands]
        return pd.DataFrame(
            {
                "leaving": [float(self.leave_hr.get(s, 1.0)) for s in names],
                "moving": [float(self.move_hr.get(s, 1.0)) for s in names],
                "promotion": [float(self.promote_hr.get(s, 1.0)) for s in names],
            },
            index=pd.Index(names, name="strand"),
        )


@dataclass(frozen=True, eq=False)
class CareersTruth:
    """The programme's true effects on the simulated careers.

    Every effect on a share is computed from the realised careers: each teacher's career is
    drawn twice from the same random numbers, with and without the programme, and the effect
    is the mean difference over the teachers who take part from their start (the treated
    teachers of :func:`cpdimpact.workforce.spells` at the start's baseline).

    Attributes
    ----------
    hazard_ratios
        The true hazard ratios by strand (``leaving``, ``moving``, ``promotion``): ratios of
        the yearly hazards of a participant with and without the programme, conditional on
        years of service, school and role (a Cox or discrete-time model that leaves out the
        school effect estimates a ratio nearer 1).
    effects
        One row per strand (and ``"all"``) and ``years`` k = 1, 2, 3 (while the census runs
        k years past the start): ``teachers`` (participants at the start), ``left_teaching``,
        ``left_school`` and ``promoted`` (the true change, programme minus none, in the share
        who left state-funded teaching / left their school / were promoted to the leadership
        group within k years; promotion among participants below it at the start, their
        number ``at_risk_promotion``), ``promoted_head`` (the same for headship, among the
        ``below_head`` participants who were not heads) and ``left_teaching_without`` (the
        share leaving within k years without the programme).
    """

    hazard_ratios: pd.DataFrame
    effects: pd.DataFrame

    def leaving_within(self, years: int, strand: str = "all") -> float:
        """The true change in the share leaving state-funded teaching within ``years``."""
        return float(self.effects.loc[(strand, years), "left_teaching"])

    def to_dict(self) -> dict[str, object]:
        """Plain-Python summary, ready for JSON."""
        return {
            "hazard_ratios": {
                s: {k: float(v) for k, v in row.items()} for s, row in self.hazard_ratios.iterrows()
            },
            "effects": {
                f"{s}/{k}": {c: float(v) for c, v in row.items()}
                for (s, k), row in self.effects.iterrows()
            },
        }


@dataclass(frozen=True, eq=False)
class SimulatedCareers(TeacherRecords):
    """Simulated :class:`~cpdimpact.workforce.TeacherRecords` that carry their truth.

    A valid :class:`~cpdimpact.workforce.TeacherRecords` in every respect (validated when
    built), so every function of :mod:`cpdimpact.workforce` takes it.

    Attributes
    ----------
    truth
        The :class:`CareersTruth`.
    scenario
        The :class:`CareersScenario` the careers were drawn from.
    """

    truth: CareersTruth | None = None
    scenario: CareersScenario | None = None

    def __repr__(self) -> str:
        return super().__repr__().replace("TeacherRecords", "SimulatedCareers", 1)


def _city_partnership(scale: float) -> dict[str, Any]:
    schools = max(8, round(160 * scale))
    return dict(
        name="city_partnership",
        years=(2017, 2024),
        areas=("City",),
        schools_per_area=schools,
        teachers_per_school=12.0,
        start_years={"City": 2021},
        join_share=0.5,
        selection_fsm=0.3,
        enrolment="teacher",
        participants_per_school=5,
        # 400 participants in 80 schools: 295 whole-school, 80 teacher educators and 25
        # headship candidates (the top teachers)
        strands=(("whole_school", 295.0), ("teacher_educator", 80.0), ("headship", 25.0)),
        leave_hr={"whole_school": 0.85, "teacher_educator": 0.75, "headship": 0.7},
        move_hr={"whole_school": 0.9, "teacher_educator": 0.9, "headship": 0.9},
        promote_hr={"whole_school": 1.0, "teacher_educator": 1.3, "headship": 2.0},
    )


_HUB_AREAS = (
    "Ashford Vale", "Brackenmoor", "Carrowdale", "Dunmere", "Eastwick", "Fallowfield",
    "Greystone", "Harrowgate Cross", "Ironbridge Fields",  # the 9 pilot areas
    "Juniper Bay", "Kestrel Heath", "Longmarsh", "Millbrook", "Northam", "Oakhurst",
    "Pendlebury", "Queensferry", "Redcastle", "Saltmarsh", "Thornbury", "Upperton",
    "Valebridge", "Westmoor", "Yarrowby", "Ambleton", "Birchfield", "Coldharbour",
    "Deepdale", "Elmstead", "Fernhill",
)  # fmt: skip


def _hub_rollout(scale: float) -> dict[str, Any]:
    return dict(
        name="hub_rollout",
        years=(2016, 2024),
        areas=_HUB_AREAS,
        schools_per_area=max(4, round(20 * scale)),
        teachers_per_school=10.0,
        fsm_share=0.25,
        # pilot in 2019/20 (start_year 2020) in 9 areas, national from 2020/21 (2021)
        start_years={a: (2020 if i < 9 else 2021) for i, a in enumerate(_HUB_AREAS)},
        join_share=0.4,
        selection_fsm=1.0,  # hubs reach struggling (high-FSM) schools first
        enrolment="school",
        strands=(("hub", 1.0),),
        leave_hr={"hub": 0.85},
        move_hr={"hub": 0.8},
        promote_hr={"hub": 1.0},
    )


#: The presets of :func:`simulate_careers`: name -> function of ``scale`` giving the fields.
CAREER_PRESETS = MappingProxyType(
    {"city_partnership": _city_partnership, "hub_rollout": _hub_rollout}
)


def simulate_careers(
    scenario: CareersScenario | str = "city_partnership",
    seed: int | np.random.Generator | None = 0,
    *,
    scale: float = 1.0,
    **overrides: Any,
) -> SimulatedCareers:
    r"""Draw teacher careers (joining, moving, leaving, promotion) with a known programme effect.

    Parameters
    ----------
    scenario
        A :class:`CareersScenario`, or a preset's name: ``"city_partnership"`` (a city's
        three-year partnership: 400 teachers enrolled in 80 of its 160 primary schools from
        2020/21, start_year 2021, including a headship strand of 25 top teachers; census
        2017-2024) or ``"hub_rollout"`` (hubs open in 9 pilot areas in 2019/20 and 21 more
        in 2020/21; 40% of an area's schools join, high-FSM schools more often, as whole
        schools; census 2016-2024).
    seed
        An int (or ``None`` for fresh entropy) or a :class:`numpy.random.Generator`; the same
        int gives identical records.
    scale
        Multiplies a preset's schools (at least 8 for the city, 4 per hub area).
    **overrides
        :class:`CareersScenario` fields replacing the preset's (or the scenario's).

    Returns
    -------
    SimulatedCareers
        Census (teacher-by-year), schools and participation tables, validated as
        :class:`~cpdimpact.workforce.TeacherRecords`, with :attr:`~SimulatedCareers.truth`.

    Raises
    ------
    cpdimpact.errors.InvalidArgumentError
        An unknown preset or scenario field, or a field out of range.

    Notes
    -----
    Each year every teacher in post at census :math:`t` may leave state-funded teaching,
    else move to another school of the area, and (if staying in teaching) be promoted one
    role (:data:`cpdimpact.workforce.ROLES`); teachers in post at :math:`t + 1` are in that
    census with one more year of service. Each yearly probability is a complementary log-log
    model, so that programme effects are exact hazard ratios of the grouped continuous-time
    proportional hazards model (Prentice & Gloeckler 1978):

    .. math::

        p_{it} = 1 - \exp\{-\exp(\eta_{it})\}, \qquad
        \eta^{leave}_{it} = c_L + e(s_{it}) + \phi_L (f_j - \bar f) + u_j
            + \log HR_L(r_i)\, D_{it},

    with :math:`e(s)` raising the hazard in the first years of service and near
    retirement, :math:`f_j` the school's FSM share, :math:`u_j \sim N(0, \sigma^2)` the
    school effect, :math:`D_{it}` exposure (enrolled and :math:`t` at or after the start,
    or in post at a school enrolled as a whole) and :math:`HR_L(r)` the strand's hazard
    ratio; moving and promotion alike. New teachers join each school every year
    (Poisson, independent of the leavers so that both careers of the truth share them).
    Participating schools are drawn with log-odds rising with FSM; with teacher enrolment,
    participants are drawn within a school with log-odds ``selection_experience`` per year
    of service.

    References
    ----------
    Prentice, R. L., & Gloeckler, L. A. (1978). Regression analysis of grouped survival data
    with application to breast cancer data. *Biometrics*, 34(1), 57-67.

    Examples
    --------
    >>> from cpdimpact.datasets import simulate_careers
    >>> rec = simulate_careers("city_partnership", seed=0)
    >>> len(rec.participation), rec.participation["school"].nunique()
    (400, 80)
    >>> float(rec.truth.hazard_ratios.loc["headship", "promotion"])
    2.0
    """
    check_number(scale, "scale", minimum=0, strict=True, hint=" 1 is the full size.")
    if isinstance(scenario, str):
        if scenario not in CAREER_PRESETS:
            raise InvalidArgumentError(
                f"scenario={scenario!r} is not a preset; presets are {sorted(CAREER_PRESETS)}, "
                "or give a CareersScenario."
            )
        base = CAREER_PRESETS[scenario](scale)
    elif isinstance(scenario, CareersScenario):
        base = {}
    else:
        raise ArgumentTypeError(
            f"scenario must be a preset name or a CareersScenario, got {type(scenario).__name__}."
        )
    unknown = sorted(set(overrides) - set(CareersScenario.field_names()))
    if unknown:
        raise InvalidArgumentError(
            f"simulate_careers() got unknown CareersScenario fields {unknown}; valid fields "
            f"are {list(CareersScenario.field_names())}."
        )
    if isinstance(scenario, CareersScenario):
        sc = replace(scenario, **overrides) if overrides else scenario
    else:
        sc = CareersScenario(**{**base, **overrides})
    return _simulate(sc, resolve_seed(seed))


# ---------------------------------------------------------------------- the draw
def _simulate(sc: CareersScenario, rng: np.random.Generator) -> SimulatedCareers:
    first, last = (int(y) for y in sc.years)
    n_years = last - first + 1
    n_areas = len(sc.areas)
    n_schools = n_areas * sc.schools_per_area
    area_of = np.repeat(np.arange(n_areas), sc.schools_per_area)
    # schools: FSM share (Beta, mean fsm_share, concentration 12) and effect
    conc = 12.0
    fsm = rng.beta(sc.fsm_share * conc, (1 - sc.fsm_share) * conc, size=n_schools)
    effect = (
        rng.normal(0.0, sc.school_sd, size=n_schools) if sc.school_sd > 0 else np.zeros(n_schools)
    )
    # who joins: log-odds of joining rise with FSM
    join_u = rng.random(n_schools)
    school_start = np.full(n_schools, np.inf)
    school_strand = np.full(n_schools, -1)
    for a, area in enumerate(sc.areas):
        if area not in sc.start_years:
            continue
        members = np.flatnonzero(area_of == a)
        n_join = int(round(sc.join_share * len(members)))
        if n_join == 0:
            continue
        # weighted sampling without replacement (Efraimidis & Spirakis 2006): the largest keys
        weight = np.exp(sc.selection_fsm * (fsm[members] - sc.fsm_share) * 10)
        keys = np.log(join_u[members]) / weight
        joined = members[np.argsort(-keys, kind="stable")[:n_join]]
        school_start[joined] = sc.start_years[area]
    strand_names = [s for s, _ in sc.strands]
    strand_weights = np.array([w for _, w in sc.strands], dtype=float)
    strand_u = rng.random(n_schools)
    if sc.enrolment == "school":
        cum = np.cumsum(strand_weights / strand_weights.sum())
        school_strand = np.minimum(np.searchsorted(cum, strand_u, side="right"), len(cum) - 1)
    # teachers: the first census's workforce, then entrants each year
    smallest = 3 if sc.enrolment == "school" else sc.participants_per_school + 3
    size = np.maximum(smallest, rng.poisson(sc.teachers_per_school, size=n_schools))
    n0 = int(size.sum())
    school0 = np.repeat(np.arange(n_schools), size)
    service0 = np.minimum(np.floor(rng.exponential(11.0, size=n0)), 38).astype(np.int64)
    role_u = rng.random(n0)
    rank0 = np.where(
        (service0 >= 12) & (role_u < 0.08),
        3,
        np.where(
            (service0 >= 8) & (role_u < 0.2),
            2,
            np.where((service0 >= 3) & (role_u < 0.45), 1, 0),
        ),
    )
    entry_counts = rng.poisson(
        sc.entry_rate * sc.teachers_per_school, size=(n_years - 1, n_schools)
    )
    n_entrants = int(entry_counts.sum())
    entry_year = np.repeat(
        np.repeat(np.arange(1, n_years), n_schools), entry_counts.ravel()
    )  # census index of entry
    entry_school = np.repeat(np.tile(np.arange(n_schools), n_years - 1), entry_counts.ravel())
    experienced = rng.random(n_entrants) < 0.3
    entry_service = np.where(experienced, 2 + rng.poisson(5, size=n_entrants), 0)
    n = n0 + n_entrants
    start_index = np.concatenate([np.zeros(n0, dtype=np.int64), entry_year])
    home = np.concatenate([school0, entry_school])
    service = np.concatenate([service0, entry_service]).astype(np.int64)
    rank = np.concatenate([rank0, np.zeros(n_entrants, dtype=np.int64)])
    fte = np.where(rng.random(n) < 0.75, 1.0, rng.choice([0.4, 0.5, 0.6, 0.8], size=n))
    # the random numbers of every yearly transition, shared by both careers of the truth
    u = rng.random((4, n_years - 1, n))
    enrol_u = rng.random(n)
    strand_draw = rng.random(n)

    world = _World(sc, first, n_years, area_of, fsm, effect, school_start, school_strand)
    on = world.run(home, start_index, service, rank, u, enrol_u, strand_draw, programme=True)
    off = world.run(home, start_index, service, rank, u, enrol_u, strand_draw, programme=False)

    school_ids = np.arange(n_schools) + _FIRST_SCHOOL_ID
    teacher_ids = np.arange(n) + _FIRST_TEACHER_ID
    where = np.nonzero(on.school.T >= 0)  # teacher-major order
    teacher, year = where
    census = pd.DataFrame(
        {
            "teacher": teacher_ids[teacher],
            "school": school_ids[on.school[year, teacher]],
            "year": year + first,
            "role": np.asarray(ROLES, dtype=object)[on.rank[year, teacher]],
            "fte": fte[teacher],
            "years_service": on.service[year, teacher],
            "in_post": 1,
        }
    )
    schools = pd.DataFrame(
        {
            "school": school_ids,
            "area": np.asarray(sc.areas, dtype=object)[area_of],
            "fsm_share": fsm.round(3),
        }
    )
    names = np.asarray(strand_names, dtype=object)
    if sc.enrolment == "teacher":
        who = np.flatnonzero(np.isfinite(on.enrol_start))
        participation = pd.DataFrame(
            {
                "teacher": teacher_ids[who],
                "school": school_ids[on.enrol_school[who]],
                "start_year": on.enrol_start[who].astype(np.int64),
                "strand": names[on.enrol_strand[who]],
            }
        )
    else:
        who = np.flatnonzero(np.isfinite(school_start))
        participation = pd.DataFrame(
            {
                "teacher": pd.Series(np.nan, index=range(len(who)), dtype=object),
                "school": school_ids[who],
                "start_year": school_start[who].astype(np.int64),
                "strand": names[school_strand[who]],
            }
        )
    truth = CareersTruth(
        hazard_ratios=sc.hazard_ratios(), effects=_effects(on, off, names, first, last)
    )
    return SimulatedCareers(
        census=census,
        participation=participation,
        schools=schools,
        truth=truth,
        scenario=sc,
    )


@dataclass
class _Career:
    """One run's state by census index and teacher (school -1: not in post)."""

    school: np.ndarray
    rank: np.ndarray
    service: np.ndarray
    enrol_start: np.ndarray
    enrol_school: np.ndarray
    enrol_strand: np.ndarray
    cohort_start: np.ndarray  # the start at which a teacher takes part from its census
    cohort_strand: np.ndarray


class _World:
    def __init__(self, sc, first, n_years, area_of, fsm, effect, school_start, school_strand):
        self.sc, self.first, self.n_years = sc, first, n_years
        self.area_of, self.fsm, self.effect = area_of, fsm, effect
        self.school_start, self.school_strand = school_start, school_strand
        names = [s for s, _ in sc.strands]
        self.log_hr = {
            kind: np.log(np.array([float(getattr(sc, kind).get(s, 1.0)) for s in names]))
            for kind in ("leave_hr", "move_hr", "promote_hr")
        }
        self.members = [np.flatnonzero(area_of == a) for a in range(len(sc.areas))]
        self.position = np.zeros(len(area_of), dtype=np.int64)
        for m in self.members:
            self.position[m] = np.arange(len(m))

    def run(self, home, start_index, service0, rank0, u, enrol_u, strand_draw, *, programme):
        sc, n_years = self.sc, self.n_years
        n = len(home)
        school_hist = np.full((n_years, n), -1, dtype=np.int64)
        rank_hist = np.full((n_years, n), -1, dtype=np.int64)
        service_hist = np.full((n_years, n), -1, dtype=np.int64)
        school = np.where(start_index == 0, home, -1)
        rank = rank0.copy()
        service = service0.copy()
        enrol_start = np.full(n, np.inf)
        enrol_school = np.full(n, -1, dtype=np.int64)
        enrol_strand = np.full(n, -1, dtype=np.int64)
        cohort_start = np.full(n, np.inf)
        cohort_strand = np.full(n, -1, dtype=np.int64)
        exposed_before = np.zeros(n, dtype=bool)
        c_leave, c_move = _cloglog(sc.leave_base), _cloglog(sc.move_base)
        c_promote = _cloglog(sc.promote_base)
        promote_shift = np.array([0.0, -0.3, -0.6, -np.inf])  # rarer up the ladder; none above head
        for y in range(n_years):
            t = self.first + y
            entering = start_index == y
            if y > 0:
                school = np.where(entering, home, school)
            school_hist[y], rank_hist[y], service_hist[y] = school, rank, service
            active = school >= 0
            # enrolment at the start's census (decided in the programme's run, then held)
            if programme and sc.enrolment == "teacher":
                self._enrol(
                    t,
                    school,
                    service,
                    rank,
                    active,
                    enrol_u,
                    strand_draw,
                    enrol_start,
                    enrol_school,
                    enrol_strand,
                )
            if y == n_years - 1:
                break
            safe = np.maximum(school, 0)
            if programme:
                own = active & (enrol_start <= t)
                whole = (
                    active & (self.school_start[safe] <= t) & ~own
                    if sc.enrolment == "school"
                    else np.zeros(n, dtype=bool)
                )
                exposed = own | whole
                strand = np.where(own, enrol_strand, np.where(whole, self.school_strand[safe], -1))
                first_time = exposed & ~exposed_before
                cohort = first_time & (
                    (own & (enrol_start == t)) | (whole & (self.school_start[safe] == t))
                )
                cohort_start[cohort] = t
                cohort_strand[cohort] = strand[cohort]
                exposed_before |= exposed
            else:
                exposed = np.zeros(n, dtype=bool)
                strand = np.full(n, -1)
            which = np.maximum(strand, 0)
            fsm_term = sc.fsm_leave * (self.fsm[safe] - sc.fsm_share) + self.effect[safe]
            early = np.where(service < 2, _EARLY, np.where(service < 5, _SETTLING, 0.0))
            eta_leave = (
                c_leave + early + np.where(service >= _RETIREMENT, _RETIRING, 0.0) + fsm_term
                + np.where(exposed, self.log_hr["leave_hr"][which], 0.0)
            )  # fmt: skip
            eta_move = (
                c_move - 0.03 * (np.minimum(service, 25) - 10) + fsm_term
                + np.where(exposed, self.log_hr["move_hr"][which], 0.0)
            )  # fmt: skip
            eta_promote = (
                c_promote + promote_shift[rank] + np.where(service < 2, -1.5, 0.0)
                + np.where(exposed, self.log_hr["promote_hr"][which], 0.0)
            )  # fmt: skip
            leave = active & (u[0, y] < _prob(eta_leave))
            move = active & ~leave & (u[1, y] < _prob(eta_move))
            promote = active & ~leave & (rank < 3) & (u[2, y] < _prob(eta_promote))
            area_size = np.array([len(m) for m in self.members])[self.area_of[safe]]
            pick = np.floor(u[3, y] * (area_size - 1)).astype(np.int64)
            pick = pick + (pick >= self.position[safe])  # any school of the area but its own
            destination = np.array([self.members[a][0] for a in range(len(self.members))])
            new_school = np.where(
                move, _member(self.members, self.area_of[safe], pick, destination), school
            )
            school = np.where(leave, -1, new_school)
            rank = np.where(promote, rank + 1, rank)
            service = np.where(active & ~leave, service + 1, service)
        return _Career(
            school=school_hist,
            rank=rank_hist,
            service=service_hist,
            enrol_start=enrol_start,
            enrol_school=enrol_school,
            enrol_strand=enrol_strand,
            cohort_start=cohort_start,
            cohort_strand=cohort_strand,
        )

    def _enrol(
        self,
        t,
        school,
        service,
        rank,
        active,
        enrol_u,
        strand_draw,
        enrol_start,
        enrol_school,
        enrol_strand,
    ):
        sc = self.sc
        joined = np.flatnonzero(self.school_start == t)
        if not len(joined):
            return
        chosen, spare = [], []
        for j in joined:
            staff = np.flatnonzero(active & (school == j))
            if not len(staff):
                continue
            # experience up to 20 years raises the odds (the most senior near retirement are
            # no keener than at 20)
            capped = np.minimum(service[staff], _SELECTION_CAP)
            centred = capped - capped.mean()
            weight = np.exp(np.clip(sc.selection_experience * centred, -30, 30))
            keys = np.log(enrol_u[staff]) / weight
            ranked = np.argsort(-keys, kind="stable")
            chosen.append(staff[ranked[: sc.participants_per_school]])
            spare.append(
                (
                    keys[ranked[sc.participants_per_school :]],
                    staff[ranked[sc.participants_per_school :]],
                )
            )
        if not chosen:
            return
        who = np.concatenate(chosen)
        short = sc.participants_per_school * len(joined) - len(who)
        if short > 0 and spare:  # a school with too few teachers: the others enrol more
            keys = np.concatenate([k for k, _ in spare])
            extra = np.concatenate([w for _, w in spare])
            who = np.concatenate([who, extra[np.argsort(-keys, kind="stable")[:short]]])
        names = [s for s, _ in sc.strands]
        counts = np.array([c for _, c in sc.strands], dtype=float)
        target = np.floor(counts / counts.sum() * len(who)).astype(np.int64)
        target[np.argmax(counts)] += len(who) - target.sum()
        strand = np.full(len(who), -1, dtype=np.int64)
        free = np.ones(len(who), dtype=bool)
        if "headship" in names:  # the top teachers below head: most senior, most experienced
            h = names.index("headship")
            seniority = np.where(rank[who] >= 3, -1, rank[who])
            order = np.lexsort((-service[who], -seniority))[: target[h]]
            strand[order], free[order] = h, False
            target[h] = 0
        rest = np.flatnonzero(free)
        rest = rest[np.argsort(strand_draw[who[rest]], kind="stable")]
        strand[rest] = np.repeat(np.arange(len(names)), target)[: len(rest)]
        enrol_start[who] = t
        enrol_school[who] = school[who]
        enrol_strand[who] = strand


def _member(members, area, pick, fallback):
    out = fallback[area].copy()
    for a, m in enumerate(members):
        rows = area == a
        if rows.any():
            out[rows] = m[np.minimum(pick[rows], len(m) - 1)]
    return out


def _prob(eta: np.ndarray) -> np.ndarray:
    return -np.expm1(-np.exp(eta))


def _effects(on: _Career, off: _Career, names, first: int, last: int) -> pd.DataFrame:
    """Programme minus none, over the teachers taking part from their start's census."""
    rows = []
    cohort = np.flatnonzero(np.isfinite(on.cohort_start))
    start = on.cohort_start[cohort].astype(np.int64)
    strand = on.cohort_strand[cohort]
    for k in (1, 2, 3):
        ok = start + k <= last
        if not ok.any():
            continue
        i, s = cohort[ok], start[ok] - first
        outcomes = {}
        for label, run in (("on", on), ("off", off)):
            base_school = run.school[s, i]
            window = np.stack([run.school[s + d, i] for d in range(k + 1)])
            ranks = np.stack([run.rank[s + d, i] for d in range(k + 1)])
            left_teaching = (window < 0).any(axis=0)
            left_school = (window != base_school).any(axis=0)
            present = np.cumprod(window >= 0, axis=0).astype(bool)
            promoted = ((ranks >= 2) & present).any(axis=0)
            headship = ((ranks >= 3) & present).any(axis=0)
            outcomes[label] = (left_teaching, left_school, promoted, headship)
        at_risk = on.rank[s, i] < 2
        below_head = on.rank[s, i] < 3
        groups = [("all", np.ones(len(i), dtype=bool))] + [
            (name, strand[ok] == g) for g, name in enumerate(names)
        ]
        for name, g in groups:
            if not g.any():
                continue
            lt_on, ls_on, pr_on, hd_on = (x[g] for x in outcomes["on"])
            lt_off, ls_off, pr_off, hd_off = (x[g] for x in outcomes["off"])
            risk, below = at_risk[g], below_head[g]
            rows.append(
                {
                    "strand": name,
                    "years": k,
                    "teachers": int(g.sum()),
                    "left_teaching": float(lt_on.mean() - lt_off.mean()),
                    "left_school": float(ls_on.mean() - ls_off.mean()),
                    "promoted": (
                        float(pr_on[risk].mean() - pr_off[risk].mean()) if risk.any() else np.nan
                    ),
                    "promoted_head": (
                        float(hd_on[below].mean() - hd_off[below].mean()) if below.any() else np.nan
                    ),
                    "left_teaching_without": float(lt_off.mean()),
                    "at_risk_promotion": int(risk.sum()),
                    "below_head": int(below.sum()),
                }
            )
    return pd.DataFrame(rows).set_index(["strand", "years"])
