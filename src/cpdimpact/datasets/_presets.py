"""Ready-made scenarios modelled on typical English CPD programmes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._validate import check_number
from ..errors import ArgumentTypeError
from ._scenario import Scenario
from ._simulate import SimulatedRecords, simulate

__all__ = ["PRESETS", "city_partnership", "hub_rollout", "maths_challenge", "support_after_dip"]

# Fictitious place names: simulated records must never be mistaken for a real authority's.
_HUB_AREAS = (
    "Ashford Vale", "Brackenmoor", "Carrowdale", "Dunmere", "Eastwick", "Fallowfield",
    "Greystone", "Harrowgate Cross", "Ironbridge Fields",  # the 9 pilot areas
    "Juniper Bay", "Kestrel Heath", "Longmarsh", "Millbrook", "Northam", "Oakhurst",
    "Pendlebury", "Queensferry", "Redcastle", "Saltmarsh", "Thornbury", "Upperton",
    "Valebridge", "Westmoor", "Yarrowby", "Ambleton", "Birchfield", "Coldharbour",
    "Deepdale", "Elmstead", "Fernhill",
)  # fmt: skip
_CHALLENGE_AREAS = (
    "Riverton", "Ashby Downs", "Beckford", "Calderside", "Dovecote", "Elderfield",
    "Foxley", "Glenholme", "Hartside",
)  # fmt: skip


def _build(
    preset: str, base: dict[str, Any], scale: float, overrides: Mapping[str, Any]
) -> Scenario:
    check_number(scale, "scale", minimum=0, strict=True, hint=" 1 is the full size.")
    unknown = sorted(set(overrides) - set(Scenario.field_names()))
    if unknown:
        raise ArgumentTypeError(
            f"{preset}() got unknown Scenario fields {unknown}; "
            f"valid overrides are {list(Scenario.field_names())}"
        )
    return Scenario(**{**base, **overrides})


def _scaled(count: int, scale: float, minimum: int) -> int:
    return max(minimum, round(count * scale))


def city_partnership(
    seed: int | np.random.Generator | None = 0, scale: float = 1.0, **overrides: Any
) -> SimulatedRecords:
    """A city council's three-year CPD partnership with 80 of its 160 primary schools.

    About 400 teachers and leaders take part (five per school): whole-school professional
    development, training for "teacher educators" who coach colleagues, and a headship course
    for 25 of them. Schools with more FSM pupils join slightly more often. Data cover 2017-2023:
    four pre-programme years (2017-2020) and the three programme years (2021-2023).

    Parameters
    ----------
    seed
        Random seed or generator (see :func:`simulate`).
    scale
        Multiplies the number of schools (at least 8 remain, 4 per arm) and the cost.
    **overrides
        Any :class:`Scenario` field, replacing the preset's value after scaling.

    Returns
    -------
    SimulatedRecords
        About 45,000 pupil rows at ``scale=1``.

    Notes
    -----
    30% FSM; school-level exposure; a true effect of 0.05 SD in the first year growing by 0.02 SD
    a year, plus 0.03 SD for FSM pupils (the programme targets disadvantage); cost £750,000.

    Examples
    --------
    >>> from cpdimpact.datasets import city_partnership
    >>> rec = city_partnership(seed=0, scale=0.25)
    >>> rec.schools["school"].nunique(), rec.participation["school"].nunique()
    (40, 20)
    >>> rec.truth.att > 0
    True
    """
    schools = _scaled(160, scale, 8)
    base = dict(
        name="city_partnership",
        years=(2017, 2023),
        areas=("City",),
        schools_per_area=schools,
        phase="primary",
        fsm_share=0.30,
        start_years={"City": 2021},
        join_share=0.5,
        selection_fsm=0.3,
        exposure="school",
        effect=0.05,
        effect_growth=0.02,
        effect_fsm_extra=0.03,
        participants_per_school=5,
        # 400 participants: 295 whole-school, 80 teacher educators, 25 headship candidates.
        strands=(
            ("whole_school", 295.0, 30.0),
            ("teacher_educator", 80.0, 60.0),
            ("headship", 25.0, 90.0),
        ),
        programme_cost=750_000.0 * schools / 160,
    )
    return simulate(_build("city_partnership", base, scale, overrides), seed)


def hub_rollout(
    seed: int | np.random.Generator | None = 0, scale: float = 1.0, **overrides: Any
) -> SimulatedRecords:
    """A staged national roll-out of maths hubs: 9 pilot areas from 2019, 21 more from 2021.

    Each of the 30 areas holds 200-300 primary schools, and every school of an area joins when
    its hub opens: the area is the level of assignment, so there are only 9 pilot clusters.
    Data cover 2017-2022 (two pre years for the pilot, four for the roll-out areas). Area
    effects and area-by-year shocks make clustering at area level necessary.

    Parameters
    ----------
    seed
        Random seed or generator (see :func:`simulate`).
    scale
        Multiplies the schools per area (at least 2 remain) and the cost; the 30 areas, and so
        the 9 pilot areas, always remain.
    **overrides
        Any :class:`Scenario` field, replacing the preset's value after scaling.

    Returns
    -------
    SimulatedRecords
        About 1.8 million pupil rows at ``scale=1``.

    Notes
    -----
    School-level exposure with one whole-school enrolment per school (no named teacher); 24%
    FSM; a true effect of 0.03 SD growing by 0.01 SD a year, 0.01 SD extra for FSM pupils; cost
    £30 million.

    Examples
    --------
    >>> from cpdimpact.datasets import hub_rollout
    >>> rec = hub_rollout(seed=0, scale=0.02)
    >>> sorted(rec.participation["start_year"].unique().tolist())
    [2019, 2021]
    """
    lo, hi = _scaled(200, scale, 2), _scaled(300, scale, 2)
    pilots, later = _HUB_AREAS[:9], _HUB_AREAS[9:]
    base = dict(
        name="hub_rollout",
        years=(2017, 2022),
        areas=_HUB_AREAS,
        schools_per_area=(lo, hi),
        phase="primary",
        fsm_share=0.24,
        area_sd=0.08,
        area_year_sd=0.03,
        start_years={**dict.fromkeys(pilots, 2019), **dict.fromkeys(later, 2021)},
        join_share=1.0,
        exposure="school",
        effect=0.03,
        effect_growth=0.01,
        effect_fsm_extra=0.01,
        participants_per_school=0,
        strands=(("teaching_for_mastery", 1.0, 20.0),),
        programme_cost=30_000_000.0 * scale,
    )
    return simulate(_build("hub_rollout", base, scale, overrides), seed)


def maths_challenge(
    seed: int | np.random.Generator | None = 0, scale: float = 1.0, **overrides: Any
) -> SimulatedRecords:
    """A city-wide challenge to raise standards in maths in every secondary of one authority.

    All secondary schools of "Riverton" take part from 2021 for four years; the secondaries of 8
    other local authorities form the comparison pool. Data cover 2017-2024: four pre years and
    four programme years. The outcome is an Attainment 8-like score (mean 47, SD 19).

    Parameters
    ----------
    seed
        Random seed or generator (see :func:`simulate`).
    scale
        Multiplies the schools per area (at least 2 remain) and the cost.
    **overrides
        Any :class:`Scenario` field, replacing the preset's value after scaling.

    Returns
    -------
    SimulatedRecords
        About 230,000 pupil rows at ``scale=1``.

    Notes
    -----
    School-level exposure with one whole-school enrolment per school; 28% FSM; a true effect of
    0.04 SD growing by 0.03 SD a year as the challenge beds in, 0.03 SD extra for FSM pupils;
    cost £4 million.

    Examples
    --------
    >>> from cpdimpact.datasets import maths_challenge
    >>> rec = maths_challenge(seed=0, scale=0.2)
    >>> taking_part = rec.schools["school"].isin(rec.participation["school"])
    >>> sorted(rec.schools.loc[taking_part, "area"].unique())
    ['Riverton']
    """
    lo, hi = _scaled(15, scale, 2), _scaled(30, scale, 2)
    base = dict(
        name="maths_challenge",
        years=(2017, 2024),
        areas=_CHALLENGE_AREAS,
        schools_per_area=(lo, hi),
        phase="secondary",
        fsm_share=0.28,
        area_sd=0.08,
        area_year_sd=0.02,
        start_years={_CHALLENGE_AREAS[0]: 2021},
        join_share=1.0,
        exposure="school",
        effect=0.04,
        effect_growth=0.03,
        effect_fsm_extra=0.03,
        participants_per_school=0,
        strands=(("maths_challenge", 1.0, 40.0),),
        programme_cost=4_000_000.0 * scale,
    )
    return simulate(_build("maths_challenge", base, scale, overrides), seed)


def support_after_dip(
    seed: int | np.random.Generator | None = 0, scale: float = 1.0, **overrides: Any
) -> SimulatedRecords:
    """School-to-school support for schools chosen because their results dipped.

    A region's teaching-school alliances and national leaders of education support 60 of its
    240 primary schools. Schools are chosen on their 2018 results: the worse a school's mean
    that year, the likelier it is chosen. Support starts in three waves of about 20 schools
    (2019, 2020, 2021) as capacity allows; which chosen school goes in which wave is random.
    Data cover 2014-2022: four clean years before the selection year.

    Because a school's yearly mean holds a transitory part (that year's pupils, class teacher
    and a school-by-year shock), the chosen schools' results would have recovered after 2018
    without any support: a naive before-and-after comparison, or a difference-in-differences
    that uses 2018 as the base year against schools never chosen, mistakes that regression to
    the mean for an effect. Schools chosen by the same rule but supported later, or
    comparison schools with the same pre-period trajectory (including the dip), give valid
    comparisons (see ``docs/choosing_a_comparison_group.md``).

    Parameters
    ----------
    seed
        Random seed or generator (see :func:`simulate`).
    scale
        Multiplies the number of schools (at least 24 remain, 6 of them supported) and the cost.
    **overrides
        Any :class:`Scenario` field, replacing the preset's value after scaling.

    Returns
    -------
    SimulatedRecords
        About 80,000 pupil rows at ``scale=1``.

    Notes
    -----
    ``selection_dip=2.5`` (selection weight times exp(-2.5) per between-school SD of the 2018
    mean), school-by-year shocks of SD 0.10 (turbulent years: staff changes, a weak cohort),
    no selection on FSM, a national trend of 0.02 SD a year; school-level exposure with one whole-school enrolment per
    school; a true effect of 0.04 SD in the first year of support growing by 0.02 SD a year;
    cost £1.2 million.

    Examples
    --------
    >>> from cpdimpact.datasets import support_after_dip
    >>> rec = support_after_dip(seed=0, scale=0.25)
    >>> sorted(rec.participation["start_year"].unique().tolist())
    [2019, 2020, 2021]
    >>> rec.scenario.selection_year()
    2018
    """
    schools = _scaled(240, scale, 24)
    base = dict(
        name="support_after_dip",
        years=(2014, 2022),
        areas=("Westmarch",),
        schools_per_area=schools,
        phase="primary",
        fsm_share=0.26,
        school_year_sd=0.10,
        start_years={"Westmarch": (2019, 2020, 2021)},
        join_share=0.25,
        selection_fsm=0.0,
        selection_dip=2.5,
        dip_year=2018,
        exposure="school",
        effect=0.04,
        effect_growth=0.02,
        participants_per_school=0,
        strands=(("school_to_school_support", 1.0, 40.0),),
        programme_cost=1_200_000.0 * schools / 240,
    )
    return simulate(_build("support_after_dip", base, scale, overrides), seed)


#: Preset name -> preset function ``(seed=0, scale=1.0, **overrides) -> SimulatedRecords``.
PRESETS: dict[str, Callable[..., SimulatedRecords]] = {
    "city_partnership": city_partnership,
    "hub_rollout": hub_rollout,
    "maths_challenge": maths_challenge,
    "support_after_dip": support_after_dip,
}
