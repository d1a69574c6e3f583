"""Simulated local-authority-by-year published statistics, in the shape of the Local Authority
Interactive Tool (LAIT), with one city-wide programme of known effect."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from .._validate import check_int, check_number, resolve_seed
from ..dfe import first_affected_test_year
from ..errors import InvalidArgumentError
from ._published import DFE_SUPPRESS_BELOW, GROUPS, _suppress

__all__ = ["LA_MEASURES", "LAStatistics", "LATruth", "la_statistics"]

#: The KS2 headline measures simulated, under DfE's performance-table column names.
LA_MEASURES: Mapping[str, str] = MappingProxyType(
    {
        "READ_AVERAGE": "average scaled score in reading",
        "MAT_AVERAGE": "average scaled score in maths",
        "PTRWM_EXP": "% reaching the expected standard in reading, writing and maths",
    }
)
#: Test years with KS2 results: the tests were cancelled in 2020 and 2021.
LA_YEARS = (2016, 2017, 2018, 2019, 2022, 2023, 2024)
_PROGRAMME_START = "2019-09-01"
# England's regions (ONS codes E12000001-9) and how many of the 150 authorities each holds.
_REGIONS = (
    ("E12000001", "North East", 12),
    ("E12000002", "North West", 23),
    ("E12000003", "Yorkshire and The Humber", 15),
    ("E12000004", "East Midlands", 9),
    ("E12000005", "West Midlands", 14),
    ("E12000006", "East of England", 11),
    ("E12000007", "London", 33),
    ("E12000008", "South East", 19),
    ("E12000009", "South West", 14),
)
# Fictitious names and codes (501-650, which DfE does not use): simulated figures must never be
# mistaken for a real authority's.
_PREFIXES = (
    "Aldren", "Brackle", "Corvan", "Dunmarr", "Elsen", "Fenwar", "Galder", "Hollin",
    "Irnes", "Kestle", "Lorrin", "Morvale", "Nethan", "Orrin", "Pellam",
)  # fmt: skip
_SUFFIXES = (
    " Vale", "mouth", " Heath", "ford Borough", " Downs", "shire", " Fields", "stead",
    " Moor", " Cross",
)  # fmt: skip
_FIRST_CODE = 501
# Pupil-level SDs and means of the untreated scaled scores (England's KS2 scores, roughly).
_SCORE = {"READ_AVERAGE": (104.5, 7.0), "MAT_AVERAGE": (104.8, 7.0)}
# National year effects (pupil SD units): a gentle rise, then the post-pandemic dip of 2022.
_YEAR_EFFECT = {2016: -0.10, 2017: -0.05, 2018: -0.02, 2019: 0.0, 2022: -0.12, 2023: -0.09,
                2024: -0.07}  # fmt: skip
_DISADVANTAGE_GAP = 0.45  # pupil SD: disadvantaged pupils' scores lie this far below others'
_AREA_SD = 0.08  # authority effects beyond their characteristics
_AREA_YEAR_SD = 0.03  # authority-by-year shocks
_SUBJECT_CORRELATION = 0.7  # of reading and maths within pupils
_WRITING_CUT = -1.4  # writing (teacher assessment) at the expected standard: latent above this


@dataclass(frozen=True, kw_only=True, eq=False)
class LATruth:
    """What :func:`la_statistics` put into the figures.

    Attributes
    ----------
    treated_area
        The local-authority code of the authority that ran the programme.
    programme_start, start_year, first_published_year
        The programme's start (``"2019-09-01"``), the first test year it could affect by
        :func:`cpdimpact.dfe.first_affected_test_year` (2020) and the first test year with
        published results after it (2022: there were no KS2 tests in 2020 and 2021).
    effect, effect_disadvantaged
        Scaled-score points added to the reading and maths scores of every pupil of the treated
        authority from ``start_year``: not disadvantaged pupils, and disadvantaged pupils.
    effects
        The realised effect on each published figure of the treated authority: ``measure``,
        ``group``, ``year``, ``effect`` (points, or percentage points for ``PTRWM_EXP``): the
        mean over its pupils of the outcome with the programme minus without.
    att
        Per measure, the effect on the ``"all"`` figure pooled over the published post years
        (pupil-weighted).
    pupil_sd
        Per scaled-score measure, the pupil-level SD of the untreated scores, pooled within
        year over every pupil in England: the SD an effect size divides by.
    area_mean_sd
        Per measure, the SD of the authorities' untreated ``"all"`` figures, pooled within
        year: the spread of area means, much smaller than ``pupil_sd``; never an effect-size
        denominator.
    effect_size
        Per scaled-score measure, ``att / pupil_sd``.
    """

    treated_area: int
    programme_start: str
    start_year: int
    first_published_year: int
    effect: float
    effect_disadvantaged: float
    effects: pd.DataFrame = field(repr=False)
    att: Mapping[str, float]
    pupil_sd: Mapping[str, float]
    area_mean_sd: Mapping[str, float]
    effect_size: Mapping[str, float]


@dataclass(frozen=True, kw_only=True, eq=False)
class LAStatistics:
    """Local-authority-by-year published statistics from :func:`la_statistics`.

    Attributes
    ----------
    figures
        Per measure of :data:`LA_MEASURES` (``READ_AVERAGE``, ``MAT_AVERAGE``, ``PTRWM_EXP``),
        the published table in the shape of
        :meth:`cpdimpact.dfe.PublishedTable.area_panel`: ``area``, ``year``, ``group``,
        ``outcome``, ``pupils``, ``marker``, ``reason``.
    areas
        One row per authority: ``area`` (code), ``area_name``, ``region`` (ONS code),
        ``region_name`` and the characteristics the neighbours are found on:
        ``disadvantaged_share``, ``prior_attainment`` (a KS1-like index, pupil SD units),
        ``urban`` (0-1) and ``cohort`` (typical KS2 cohort).
    participation
        ``area``, ``start_year``: the authority that ran the programme.
    neighbours
        Each authority's 10 statistical neighbours: ``area``, ``rank`` (1 nearest to 10),
        ``neighbour`` (its code) and ``distance``.
    truth
        The :class:`LATruth`.
    years
        The test years published.
    """

    figures: Mapping[str, pd.DataFrame] = field(repr=False)
    areas: pd.DataFrame = field(repr=False)
    participation: pd.DataFrame
    neighbours: pd.DataFrame = field(repr=False)
    truth: LATruth
    years: tuple[int, ...]

    def __repr__(self) -> str:
        return (
            f"LAStatistics({len(self.areas)} local authorities, test years {list(self.years)}, "
            f"measures {list(self.figures)}, treated area {self.truth.treated_area} from "
            f"{self.truth.start_year}, effect {self.truth.effect:g} points)"
        )


def la_statistics(
    seed: int | np.random.Generator | None = 0,
    *,
    scale: float = 1.0,
    effect: float = 1.0,
    effect_disadvantaged_extra: float = 0.0,
    treated: int | None = None,
    suppress_below: int = DFE_SUPPRESS_BELOW,
    decimals: int | None = None,
) -> LAStatistics:
    r"""Simulated KS2 statistics of 150 local authorities, 2016-2024, one running a programme.

    The shape of the Local Authority Interactive Tool's KS2 data: every authority, every year
    with tests (none in 2020 and 2021), the headline measures for all pupils and split into
    disadvantaged and not disadvantaged pupils with the number of pupils behind each figure.
    One city-wide programme starts in September 2019 in one authority, with a known effect.

    Parameters
    ----------
    seed
        Random seed or generator, as for :func:`simulate`; the same seed gives identical
        statistics.
    scale
        Multiplies the authorities' cohorts (about 4,300 pupils on average at 1, some 650,000
        a year in all, as in England); two very small authorities keep 15 and 25 pupils.
    effect
        Scaled-score points the programme adds to the reading and maths scores of each pupil
        of the treated authority, from the first affected test year.
    effect_disadvantaged_extra
        Further points for its disadvantaged pupils.
    treated
        The code of the authority that runs the programme; default: one drawn among the
        urban authorities with a cohort of 2,000 or more (at ``scale=1``).
    suppress_below
        Figures of 1 to ``suppress_below - 1`` pupils are suppressed, as
        :func:`published_from_pupils` does (default 6, DfE's rule).
    decimals
        Round the published figures to this many decimals (DfE publishes whole scaled-score
        points and percentages: 0). Default: not rounded.

    Returns
    -------
    LAStatistics
        ``figures`` per measure, ``areas``, ``participation``, ``neighbours`` and ``truth``.

    Raises
    ------
    InvalidArgumentError
        An option out of range, or ``treated`` not one of the authorities' codes.

    Notes
    -----
    Each year every authority :math:`a` tests a cohort of pupils, a share :math:`d_a` of them
    disadvantaged. Pupil :math:`i`'s untreated score in subject :math:`s` (reading, maths) is
    :math:`Y_{is}(0) = \mu_s + \sigma_s z_{is}` with

    .. math::

        z_{is} = A_a + AY_{at} + \lambda_t - g\,(D_i - \bar d) + e_{is},
        \qquad A_a = -0.9\,(d_a - \bar d) + 0.5\,p_a + u_a,

    national year effects :math:`\lambda_t` (a dip after the pandemic), authority effects
    driven by disadvantage and prior attainment :math:`p_a` plus :math:`u_a` (SD 0.08),
    authority-by-year shocks (SD 0.03), a disadvantage gap :math:`g = 0.45` and pupil terms
    correlated 0.7 between subjects, their variance set so that :math:`z` has variance about
    1: ``truth.pupil_sd`` is the realised pooled within-year SD. A pupil reaches the expected
    standard in RWM when both scaled scores are at least 100 and a writing latent (correlated
    with reading) clears its cut. The treated authority's pupils gain ``effect`` points (plus
    ``effect_disadvantaged_extra`` if disadvantaged) in reading and maths from 2020, which the
    published figures first show in 2022: the realised effect on each figure is in
    ``truth.effects``. Neighbours are the 10 nearest authorities in the standardised
    characteristics (disadvantaged share, prior attainment, urban share, log cohort), by
    Euclidean distance, as DfE's statistical-neighbour tables list them (DfE's own model weighs
    its characteristics). Scores are not clipped to the 80-120 scale, which would bend the
    additive truth.

    Examples
    --------
    >>> from cpdimpact.datasets import la_statistics
    >>> stats = la_statistics(seed=0, scale=0.05)
    >>> stats.figures["MAT_AVERAGE"].columns.tolist()
    ['area', 'year', 'group', 'outcome', 'pupils', 'marker', 'reason']
    >>> stats.truth.start_year, stats.truth.first_published_year
    (2020, 2022)
    """
    rng = resolve_seed(seed)
    scale = check_number(scale, "scale", minimum=0, strict=True, hint=" 1 is England's size.")
    effect = check_number(effect, "effect")
    extra = check_number(effect_disadvantaged_extra, "effect_disadvantaged_extra")
    threshold = check_int(suppress_below, "suppress_below", minimum=0)
    if decimals is not None:
        decimals = check_int(decimals, "decimals", minimum=0)

    areas = _areas(rng, scale)
    codes = areas["area"].to_numpy()
    if treated is None:
        eligible = codes[(areas["urban"] > 0.7).to_numpy() & (areas["cohort"] >= 2000 * scale)]
        treated = int(rng.choice(eligible))
    elif treated not in set(codes.tolist()):
        raise InvalidArgumentError(
            f"treated must be one of the authorities' codes ({codes.min()}-{codes.max()}), "
            f"got {treated!r}."
        )
    start_year = first_affected_test_year(_PROGRAMME_START)
    first_published = min(y for y in LA_YEARS if y >= start_year)

    sums, pupil_var = _draw_pupils(rng, areas, treated, start_year, effect, extra)
    figures, effects, att, area_mean_sd = _figures(
        sums, codes, threshold, decimals, treated, start_year
    )
    pupil_sd = {m: float(np.sqrt(np.mean(v))) for m, v in pupil_var.items()}
    truth = LATruth(
        treated_area=treated,
        programme_start=_PROGRAMME_START,
        start_year=start_year,
        first_published_year=first_published,
        effect=effect,
        effect_disadvantaged=effect + extra,
        effects=effects,
        att=MappingProxyType(att),
        pupil_sd=MappingProxyType(pupil_sd),
        area_mean_sd=MappingProxyType(area_mean_sd),
        effect_size=MappingProxyType({m: att[m] / pupil_sd[m] for m in pupil_sd}),
    )
    return LAStatistics(
        figures=MappingProxyType(figures),
        areas=areas,
        participation=pd.DataFrame({"area": [treated], "start_year": [start_year]}),
        neighbours=_neighbours(areas),
        truth=truth,
        years=LA_YEARS,
    )


def _areas(rng: np.random.Generator, scale: float) -> pd.DataFrame:
    """The 150 authorities: codes, fictitious names, regions and characteristics."""
    names = [p + s for s in _SUFFIXES for p in _PREFIXES]
    region = np.concatenate([np.full(n, i) for i, (_, _, n) in enumerate(_REGIONS)])
    n = len(region)
    london = region == 6
    urban = np.where(london, rng.uniform(0.9, 1.0, n), rng.beta(2.0, 2.0, n))
    # disadvantage rises with urbanity and in the north and London
    north = np.isin(region, (0, 1, 2))
    share = 0.12 + 0.18 * urban + 0.06 * north + 0.05 * london + rng.normal(0, 0.04, n)
    share = np.clip(share, 0.05, 0.6)
    prior = -0.8 * (share - share.mean()) + rng.normal(0, 0.05, n)
    cohort = np.exp(rng.normal(np.log(3600), 0.6, n))
    cohort = np.maximum(np.rint(cohort * scale), 20).astype(np.int64)
    # two very small authorities (like the City of London and the Isles of Scilly)
    small = [int(np.flatnonzero(london)[-1]), n - 1]
    cohort[small] = (25, 15)
    return pd.DataFrame(
        {
            "area": _FIRST_CODE + np.arange(n, dtype=np.int64),
            "area_name": names[:n],
            "region": [_REGIONS[r][0] for r in region],
            "region_name": [_REGIONS[r][1] for r in region],
            "disadvantaged_share": np.round(share, 3),
            "prior_attainment": np.round(prior, 3),
            "urban": np.round(urban, 3),
            "cohort": cohort,
        }
    )


def _draw_pupils(rng, areas, treated, start_year, effect, extra):
    """Draw every year's pupils; return per (area, year, disadvantaged) sums of each measure
    with and without the programme, and each year's pupil-level variance of untreated scores.

    Pupils are drawn one year at a time and only their sums kept: a year of England is some
    650,000 pupils."""
    n_areas = len(areas)
    share = areas["disadvantaged_share"].to_numpy()
    d_bar = float(np.average(share, weights=areas["cohort"]))
    area_effect = (
        -0.9 * (share - d_bar)
        + 0.5 * areas["prior_attainment"].to_numpy()
        + rng.normal(0, _AREA_SD, n_areas)
    )
    between = np.var(area_effect) + _AREA_YEAR_SD**2 + _DISADVANTAGE_GAP**2 * d_bar * (1 - d_bar)
    pupil_sd = np.sqrt(max(1.0 - between, 0.25))
    is_treated = areas["area"].to_numpy() == treated
    rho = _SUBJECT_CORRELATION
    rows = []
    pupil_var: dict[str, list[float]] = {m: [] for m in _SCORE}
    for year in LA_YEARS:
        sizes = np.maximum(
            np.rint(areas["cohort"].to_numpy() * np.exp(rng.normal(0, 0.03, n_areas))), 1
        ).astype(np.int64)
        area = np.repeat(np.arange(n_areas), sizes)
        dis = (rng.random(len(area)) < share[area]).astype(np.int64)
        common = (
            area_effect[area]
            + rng.normal(0, _AREA_YEAR_SD, n_areas)[area]
            + _YEAR_EFFECT[year]
            - _DISADVANTAGE_GAP * (dis - d_bar)
        )
        e1, e2, e3 = rng.standard_normal((3, len(area)))
        z = {
            "READ_AVERAGE": common + pupil_sd * e1,
            "MAT_AVERAGE": common + pupil_sd * (rho * e1 + np.sqrt(1 - rho**2) * e2),
        }
        writing = common + pupil_sd * (0.6 * e1 + 0.8 * e3)
        exposed = is_treated[area] & (year >= start_year)
        gain = np.where(exposed, effect + extra * dis, 0.0)
        untreated = {m: _SCORE[m][0] + _SCORE[m][1] * z[m] for m in _SCORE}
        treated_scores = {m: untreated[m] + gain for m in _SCORE}
        for m in _SCORE:
            pupil_var[m].append(float(np.var(untreated[m], ddof=1)))

        writes = writing >= _WRITING_CUT

        def rwm(scores, writes=writes):
            met = (scores["READ_AVERAGE"] >= 100) & (scores["MAT_AVERAGE"] >= 100)
            return 100.0 * (met & writes)

        values = {
            **{(m, 0): untreated[m] for m in _SCORE},
            **{(m, 1): treated_scores[m] for m in _SCORE},
            ("PTRWM_EXP", 0): rwm(untreated),
            ("PTRWM_EXP", 1): rwm(treated_scores),
        }
        cell = area * 2 + dis
        count = np.bincount(cell, minlength=2 * n_areas)
        frame = {"area_index": np.repeat(np.arange(n_areas), 2), "fsm": np.tile([0, 1], n_areas)}
        frame.update({"year": year, "count": count})
        for (m, world), v in values.items():
            frame[f"{m}|{world}"] = np.bincount(cell, weights=v, minlength=2 * n_areas)
        rows.append(pd.DataFrame(frame))
    return pd.concat(rows, ignore_index=True), pupil_var


def _figures(sums, codes, threshold, decimals, treated, start_year):
    """The published tables, the realised effects and the spread of area means."""
    sums = sums.assign(area=codes[sums["area_index"].to_numpy()])
    keys = ["area", "year"]
    figures, effects, att, area_mean_sd = {}, [], {}, {}
    for m in LA_MEASURES:
        parts, truth = {}, {}
        by_group = {
            "all": sums.groupby(keys)[["count", f"{m}|0", f"{m}|1"]].sum(),
            "disadvantaged": sums[sums["fsm"] == 1].set_index(keys)[["count", f"{m}|0", f"{m}|1"]],
            "not disadvantaged": sums[sums["fsm"] == 0].set_index(keys)[
                ["count", f"{m}|0", f"{m}|1"]
            ],
        }
        for group, table in by_group.items():
            table = table.sort_index()
            count = table["count"].to_numpy()
            with np.errstate(invalid="ignore", divide="ignore"):
                mean1 = np.where(count > 0, table[f"{m}|1"] / count, np.nan)
                mean0 = np.where(count > 0, table[f"{m}|0"] / count, np.nan)
            parts[group] = pd.DataFrame({"mean": mean1, "count": count}, index=table.index)
            truth[group] = pd.DataFrame({"effect": mean1 - mean0, "count": count, "y0": mean0},
                                        index=table.index)  # fmt: skip
        table = _suppress(parts, keys, threshold)
        if decimals is not None:
            table["outcome"] = table["outcome"].round(decimals)
        figures[m] = table
        for group in GROUPS:
            rows = truth[group].reset_index()
            exposed = (rows["area"] == treated) & (rows["year"] >= start_year) & (rows["count"] > 0)
            effects.append(rows[exposed].assign(measure=m, group=group))
        whole = truth["all"].reset_index()
        post = whole[(whole["area"] == treated) & (whole["year"] >= start_year)]
        att[m] = float(np.average(post["effect"], weights=post["count"]))
        spread = whole.groupby("year")["y0"].var(ddof=1)
        area_mean_sd[m] = float(np.sqrt(spread.mean()))
    effects = pd.concat(effects, ignore_index=True)[["measure", "group", "year", "effect"]]
    return figures, effects, att, area_mean_sd


def _neighbours(areas: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """Each authority's ``k`` nearest in its standardised characteristics."""
    traits = np.column_stack(
        [
            areas["disadvantaged_share"],
            areas["prior_attainment"],
            areas["urban"],
            np.log(areas["cohort"].to_numpy()),
        ]
    )
    traits = (traits - traits.mean(axis=0)) / traits.std(axis=0)
    distance = np.sqrt(((traits[:, None, :] - traits[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(distance, np.inf)
    nearest = np.argsort(distance, axis=1, kind="stable")[:, :k]
    codes = areas["area"].to_numpy()
    return pd.DataFrame(
        {
            "area": np.repeat(codes, k),
            "rank": np.tile(np.arange(1, k + 1), len(codes)),
            "neighbour": codes[nearest].ravel(),
            "distance": np.round(np.take_along_axis(distance, nearest, axis=1).ravel(), 4),
        }
    )
