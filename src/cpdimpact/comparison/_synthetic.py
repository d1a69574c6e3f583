r"""One treated area: synthetic control, synthetic difference-in-differences and plain DiD.

A city-wide programme leaves no comparison school inside the city: the comparison is other
areas. With one treated area (or a block of areas starting together) and a few dozen donor
areas observed over several years, three estimators of the effect on the treated area work on
the area-by-year outcome matrix :math:`Y` (donors :math:`i \le N_0`, treated rows after them;
pre-periods :math:`t \le T_0`, then :math:`T_1` post-periods):

.. math::
    \hat\tau = \Big(\bar Y_{tr,post} - \sum_{t \le T_0} \lambda_t \bar Y_{tr,t}\Big)
             - \sum_{i \le N_0} \omega_i \Big(\bar Y_{i,post} - \sum_{t \le T_0} \lambda_t Y_{it}\Big)

- **synthetic control** (Abadie, Diamond & Hainmueller 2010): unit weights :math:`\omega` on the
  simplex reproduce the treated area's pre-period path, :math:`\lambda = 0` (no intercept);
- **synthetic DiD** (Arkhangelsky, Athey, Hirshberg, Imbens & Wager 2021): unit weights with an
  intercept and a ridge penalty, time weights :math:`\lambda` on the simplex that make pre-periods
  resemble the post-period for the donors;
- **DiD**: :math:`\omega_i = 1/N_0`, :math:`\lambda_t = 1/T_0`.

Inference is placebo-in-space: each donor in turn plays the treated area (Abadie et al. 2010;
Algorithm 4 of Arkhangelsky et al. 2021).

Years with no data (no KS2 tests in 2020 and 2021) are not periods: the columns of :math:`Y`
are the years observed, :math:`T_0` counts the observed years before the first programme year
observed, and every sum over :math:`t` runs over observed years. Nothing in the three
estimators uses the distance between years, so a panel with a gap gives exactly the weights and
effect of the same panel relabelled as consecutive periods. A programme starting in a year with
no data (a 2021 start) has its first measured effect in the next observed year (2022); the
pre/post split is the same whichever missing year it started in. Results name the missing years
(``years_without_data``) and their figures break lines across them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from cpdimpact._guards import (
    check_absorbing,
    reject_infinite,
    require_indicator,
    require_variation,
)
from cpdimpact._results import EstimateResult, Summary, tidy_frame, years_without_data
from cpdimpact._validate import (
    check_alpha,
    check_bool,
    check_choice,
    check_number,
    check_positive_int,
    check_seed,
    resolve_seed,
)
from cpdimpact.comparison._donors import (
    holdout_table,
    normalise_pool,
    pool_notes,
    pool_rows,
    pre_fit_statement,
    pseudo_post_rows,
    residualise_on_covariates,
)
from cpdimpact.comparison._prediction import (
    PredictionIntervals,
    prediction_band,
    prediction_bounds,
    prediction_facts,
    prediction_frame,
)
from cpdimpact.comparison._synthetic_solvers import (
    frank_wolfe,
    simplex_least_squares,
    sparsify,
)
from cpdimpact.errors import (
    ArgumentTypeError,
    CpdImpactWarning,
    DesignError,
    DuplicateRowsError,
    EmptyComparisonGroupError,
    InvalidArgumentError,
    InvalidValueError,
    MissingColumnError,
    SmallSampleWarning,
    format_rows,
    format_value,
)
from cpdimpact.estimator import deprecated_options

__all__ = [
    "SyntheticControl",
    "SyntheticDiD",
    "SyntheticResult",
    "SyntheticComparison",
    "NonUniqueWeightsWarning",
    "area_year_outcomes",
    "compare_synthetic",
    "cross_validate_synthetic",
]

METHODS = ("sc", "sdid", "did")
LABELS = {
    "sc": "Synthetic control",
    "sdid": "Synthetic difference-in-differences",
    "did": "Difference-in-differences",
}


class NonUniqueWeightsWarning(CpdImpactWarning):
    """More donor areas than pre-periods: synthetic-control weights may not be unique.

    With more unknowns (donor weights) than matching equations (pre-period outcomes and
    predictors) many weight vectors can fit the treated path equally well; the solver returns
    one of them (the one a tiny ridge penalty picks) and the estimate can depend on that choice.
    """


# --------------------------------------------------------------------------------------------
# Input: area-by-year outcomes
# --------------------------------------------------------------------------------------------


def area_year_outcomes(
    data: Any,
    *,
    area: str = "area",
    outcome: str = "outcome",
    year: str = "year",
    exposed: str = "exposed",
) -> pd.DataFrame:
    """Mean pupil outcome by area and year, counting pupils, with the area's treatment status.

    Parameters
    ----------
    data
        :class:`~cpdimpact.records.Records` (areas come from the schools table, treatment
        from the participation table: an area is treated from the earliest ``start_year`` of
        any of its enrolled schools), a :class:`~cpdimpact.cohort.Cohort` (its pupils carry
        ``area`` and ``exposed``), or a pupil-level DataFrame with ``area``, ``year``,
        ``outcome`` and a boolean ``exposed`` column.
    area, outcome, year, exposed
        Column names in the pupil rows.

    Returns
    -------
    pandas.DataFrame
        One row per area and year: ``area, year, outcome`` (mean over pupils with an outcome),
        ``n_pupils`` (pupils with an outcome), ``n_missing`` (pupil rows without one, left out
        of the mean) and ``treated`` (1 from the first year any pupil of the area is exposed).

    Notes
    -----
    An area counts as treated from the first year any of its pupils is exposed, whatever the
    share of its schools taking part: with partial take-up the estimate is an area-level
    intention-to-treat effect.

    Examples
    --------
    >>> from cpdimpact.datasets import maths_challenge
    >>> panel = area_year_outcomes(maths_challenge(seed=0, scale=0.2))
    >>> sorted(panel.loc[panel["treated"] == 1, "area"].unique())
    ['Riverton']
    """
    pupils = _pupil_rows(data, area=area, year=year, exposed=exposed)
    for name in (area, year, outcome, exposed):
        if name not in pupils.columns:
            raise MissingColumnError(
                f"area_year_outcomes needs a column {name!r} in the pupil rows; found "
                f"{list(pupils.columns)}. Pass area=, year=, outcome= or exposed= to name yours."
            )
    values = pd.to_numeric(pupils[outcome], errors="coerce")
    bad = pupils.index[values.isna() & pupils[outcome].notna()]
    if len(bad):
        raise InvalidValueError(
            f"column {outcome!r} holds non-numeric values at {format_rows(bad)}; "
            "convert them to numbers or missing values."
        )
    if pupils[area].isna().any():
        rows = pupils.index[pupils[area].isna()]
        raise InvalidValueError(
            f"column {area!r} is missing at {format_rows(rows)}; every pupil needs an area "
            "(fill it from the schools table)."
        )
    frame = pd.DataFrame(
        {
            "area": pupils[area].to_numpy(),
            "year": pupils[year].to_numpy(),
            "y": values.to_numpy(dtype=float),
            "has": values.notna().to_numpy(),
            "exposed": pupils[exposed].fillna(False).astype(bool).to_numpy(),
        }
    )
    grouped = frame.groupby(["area", "year"], sort=True, observed=True)
    out = pd.DataFrame(
        {
            "outcome": grouped["y"].mean(),
            "n_pupils": grouped["has"].sum().astype(int),
            "n_rows": grouped["y"].size(),
            "any_exposed": grouped["exposed"].any(),
        }
    ).reset_index()
    out["n_missing"] = out.pop("n_rows") - out["n_pupils"]
    first = out.loc[out["any_exposed"]].groupby("area")["year"].min()
    start = out["area"].map(first)
    out["treated"] = (start.notna() & (out["year"] >= start)).astype(int)
    out = out.drop(columns="any_exposed")
    return out[["area", "year", "outcome", "n_pupils", "n_missing", "treated"]]


def _pupil_rows(data, *, area, year, exposed) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    pupils = getattr(data, "pupils", None)
    if not isinstance(pupils, pd.DataFrame):
        raise ArgumentTypeError(
            "area_year_outcomes takes Records, a Cohort or a DataFrame of pupil rows; "
            f"got {type(data).__name__}"
        )
    schools = getattr(data, "schools", None)
    participation = getattr(data, "participation", None)
    if isinstance(participation, pd.DataFrame) and isinstance(schools, pd.DataFrame):
        # Records: area from the schools table, exposure from enrolment start years.
        if "area" not in schools.columns:
            raise MissingColumnError(
                "the schools table has no 'area' column; area_year_outcomes needs each "
                "school's area (local authority or hub)."
            )
        area_of = schools.drop_duplicates("school").set_index("school")["area"]
        start_of = participation.groupby("school")["start_year"].min()
        rows = pupils.copy()
        rows[area] = rows["school"].map(area_of)
        start = rows["school"].map(start_of)
        rows[exposed] = start.notna() & (rows[year] >= start)
        return rows
    return pupils


# --------------------------------------------------------------------------------------------
# The outcome matrix
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Panel:
    Y: np.ndarray  # (N0 + N1) x T, donors first
    donors: tuple
    treated: tuple
    years: tuple
    T0: int
    dropped: tuple  # donors dropped for missing cells
    missing_years: tuple = ()  # whole years inside the span that no area has (a gap)
    excluded: tuple = ()  # donor areas outside the donor pool

    @property
    def N0(self) -> int:
        return len(self.donors)

    @property
    def N1(self) -> int:
        return len(self.treated)

    @property
    def first_treated(self):
        return self.years[self.T0]


def _prepare(
    data: pd.DataFrame,
    *,
    area: str,
    year: str,
    outcome: str,
    treated: str,
    missing: str,
    min_pre: int,
) -> _Panel:
    if not isinstance(data, pd.DataFrame):
        raise ArgumentTypeError(
            "fit() takes a DataFrame of area-by-year rows (area, year, outcome, treated); "
            f"got {type(data).__name__}. Build one from pupil records with area_year_outcomes()."
        )
    for role, name in (("area", area), ("year", year), ("outcome", outcome), ("treated", treated)):
        if name not in data.columns:
            raise MissingColumnError(
                f"column {name!r} ({role}) is not in the data; found {list(data.columns)}. "
                f"Pass {role}='your_column' to name it."
            )
    check_choice(missing, "missing", ("error", "drop"))
    dup = data.duplicated([area, year], keep=False)
    if dup.any():
        raise DuplicateRowsError(
            f"more than one row per ({area}, {year}) at {format_rows(data.index[dup])}; "
            "give one outcome per area and year (aggregate with area_year_outcomes())."
        )
    if data[area].isna().any() or data[year].isna().any():
        rows = data.index[data[area].isna() | data[year].isna()]
        raise InvalidValueError(f"{area!r} or {year!r} is missing at {format_rows(rows)}.")
    y = pd.to_numeric(data[outcome], errors="coerce")
    bad = data.index[y.isna() & data[outcome].notna()]
    if len(bad):
        raise InvalidValueError(
            f"column {outcome!r} holds non-numeric values at {format_rows(bad)}."
        )
    reject_infinite(y.to_numpy(dtype=float, na_value=np.nan), data.index, outcome, "outcome")
    flag = require_indicator(
        data, treated, "be 0/1 (1 for a treated area in a programme year); other values at "
    ).astype(int)
    check_absorbing(data, treatment=treated, unit=area, time=year, treated=(flag == 1).to_numpy())
    treated_areas = pd.unique(data.loc[flag == 1, area])
    if len(treated_areas) == 0:
        raise DesignError(f"no row has {treated}=1: mark the treated area's programme years.")
    years = np.sort(pd.unique(data[year]))
    wide_y = pd.DataFrame({"a": data[area], "t": data[year], "y": y}).pivot(
        index="a", columns="t", values="y"
    )
    wide_y = wide_y.reindex(columns=years)
    wide_d = (
        pd.DataFrame({"a": data[area], "t": data[year], "d": flag})
        .pivot(index="a", columns="t", values="d")
        .reindex(columns=years)
    )
    starts = {}
    for a in treated_areas:
        starts[a] = int(np.flatnonzero(wide_d.loc[a].to_numpy() == 1)[0])
    if len(set(starts.values())) > 1:
        detail = ", ".join(f"{format_value(a)} {format_value(years[s])}" for a, s in starts.items())
        raise DesignError(
            f"treated areas start in different years ({detail}); synthetic control and "
            "synthetic DiD need one start year (a block). Use StaggeredDiD for staggered "
            "starts, or analyse each start cohort separately."
        )
    T0 = int(next(iter(starts.values())))
    if T0 < min_pre:
        raise DesignError(
            f"only {T0} pre-period year(s) before {format_value(years[T0])}; at least "
            f"{min_pre} are needed to fit weights (more is much better: the weights are only "
            "as good as the pre-period fit)."
        )
    treated_set = sorted(treated_areas, key=str)
    missing_treated = wide_y.loc[treated_set].isna()
    if missing_treated.to_numpy().any():
        cells = [
            f"{format_value(a)} {format_value(t)}"
            for a in treated_set
            for t in years[missing_treated.loc[a].to_numpy()]
        ]
        raise InvalidValueError(
            f"the treated area has no outcome in {format_rows(cells)}; synthetic control needs "
            "every year of the treated area (drop those years from the data)."
        )
    donors = [a for a in wide_y.index if a not in set(treated_set)]
    holes = wide_y.loc[donors].isna()
    gappy = [a for a in donors if holes.loc[a].any()]
    if gappy and missing == "error":
        cells = [f"{format_value(a)} {format_value(t)}" for a in gappy for t in years[holes.loc[a]]]
        raise InvalidValueError(
            f"{len(gappy)} donor area(s) lack outcomes ({format_rows(cells)}); "
            "synthetic control needs a complete area-by-year matrix. Fill them, or pass "
            "missing='drop' to leave those donor areas out (the count is reported)."
        )
    if gappy:
        warnings.warn(
            f"{len(gappy)} donor area(s) with missing outcomes left out: {format_rows(gappy)}.",
            SmallSampleWarning,
            stacklevel=3,
        )
        donors = [a for a in donors if a not in set(gappy)]
    if len(donors) <= len(treated_set):
        raise EmptyComparisonGroupError(
            f"{len(donors)} donor area(s) for {len(treated_set)} treated; placebo inference "
            "and weights need more donor areas than treated areas."
        )
    Y = np.vstack([wide_y.loc[donors].to_numpy(float), wide_y.loc[treated_set].to_numpy(float)])
    require_variation(Y, outcome, where="across the areas and years used" if gappy else "")
    return _Panel(
        Y,
        tuple(donors),
        tuple(treated_set),
        tuple(years.tolist()),
        T0,
        tuple(gappy),
        years_without_data(years),
    )


# --------------------------------------------------------------------------------------------
# Weight fitting on a matrix
# --------------------------------------------------------------------------------------------


def _collapse(Y: np.ndarray, N0: int, T0: int) -> np.ndarray:
    """synthdid's collapsed form: treated rows averaged, post columns averaged."""
    top = np.column_stack([Y[:N0, :T0], Y[:N0, T0:].mean(axis=1)])
    bottom = np.append(Y[N0:, :T0].mean(axis=0), Y[N0:, T0:].mean())
    return np.vstack([top, bottom])


def _noise_level(Y: np.ndarray, N0: int, T0: int) -> float:
    diffs = np.diff(Y[:N0, :T0], axis=1)
    return float(np.std(diffs, ddof=1)) if diffs.size > 1 else 0.0


@dataclass(frozen=True)
class _Fit:
    omega: np.ndarray
    lam: np.ndarray
    estimate: float
    iterations: tuple[int, int]


def _omega_problem(Yc: np.ndarray, N0: int, T0: int, intercept: bool):
    A = Yc[:N0, :T0].T.copy()  # T0 x N0 (and treated column)
    b = Yc[N0, :T0].copy()
    if intercept:
        A -= A.mean(axis=0)
        b -= b.mean()
    return A, b


def _lambda_problem(Yc: np.ndarray, N0: int, T0: int, intercept: bool):
    A = Yc[:N0, :T0].copy()
    b = Yc[:N0, T0].copy()
    if intercept:
        A -= A.mean(axis=0)
        b -= b.mean()
    return A, b


def _fw_single(A, b, x0, *, zeta, opts):
    G = A.T @ A
    c = (A.T @ b)[None, :]
    bb = np.array([b @ b])
    nrow = A.shape[0]
    run = dict(eta=nrow * zeta**2, zeta2=zeta**2, nrow=nrow, min_decrease=opts["min_decrease"])
    x, it1 = frank_wolfe(G, c, bb, x0[None, :], max_iter=opts["max_iter_pre_sparsify"], **run)
    total = int(it1[0])
    if opts["sparsify"]:
        x, it2 = frank_wolfe(G, c, bb, sparsify(x[0])[None, :], max_iter=opts["max_iter"], **run)
        total += int(it2[0])
    return x[0], total


def _sdid_fit(Y, N0, T0, opts, *, omega0=None, lambda0=None) -> _Fit:
    """Weights and estimate of synthdid_estimate / sc_estimate / did_estimate (no covariates)."""
    method = opts["method"]
    N1 = Y.shape[0] - N0
    T1 = Y.shape[1] - T0
    if method == "did":
        omega = np.full(N0, 1 / N0)
        lam = np.full(T0, 1 / T0)
        its = (0, 0)
    else:
        Yc = _collapse(Y, N0, T0)
        if method == "sdid":
            A, b = _lambda_problem(Yc, N0, T0, intercept=True)
            start = np.full(T0, 1 / T0) if lambda0 is None else lambda0
            lam, it_l = _fw_single(A, b, start, zeta=opts["zeta_lambda"], opts=opts)
        else:
            lam, it_l = np.zeros(T0), 0
        A, b = _omega_problem(Yc, N0, T0, intercept=method == "sdid")
        start = np.full(N0, 1 / N0) if omega0 is None else omega0
        omega, it_o = _fw_single(A, b, start, zeta=opts["zeta_omega"], opts=opts)
        its = (it_o, it_l)
    est = _tau(Y, N0, T0, omega, lam, N1, T1)
    return _Fit(omega, lam, est, its)


def _tau(Y, N0, T0, omega, lam, N1=None, T1=None) -> float:
    tr_path = Y[N0:].mean(axis=0)
    gap = tr_path - omega @ Y[:N0]
    return float(gap[T0:].mean() - lam @ gap[:T0])


def _sum_normalize(x: np.ndarray) -> np.ndarray:
    s = x.sum()
    return x / s if s != 0 else np.full(len(x), 1 / len(x))


def _sdid_placebos(panel: _Panel, fit: _Fit, opts) -> tuple[np.ndarray, np.ndarray]:
    """Each donor in turn as the treated area, the others as donors (N1 = 1): estimates and
    gap paths. The Frank-Wolfe refits of all placebos run as one batch, warm-started like
    synthdid's placebo_se from the fitted weights restricted to the remaining donors."""
    Y = panel.Y[: panel.N0]
    N0, T0 = panel.N0, panel.T0
    method = opts["method"]
    J = N0
    others = ~np.eye(J, dtype=bool)  # row j: donors other than j
    if method == "did":
        omegas = others / (J - 1)
        lams = np.full((J, T0), 1 / T0)
    else:
        post = Y[:, T0:].mean(axis=1)
        pre = Y[:, :T0]
        # Omega problems: columns are units; centring over time is per unit, so the Gram of
        # all donors serves every placebo (drop row/column j, target column j).
        A = pre.T - (pre.T.mean(axis=0) if method == "sdid" else 0.0)
        Gfull = A.T @ A
        c = Gfull.copy()  # c[j] = A' a_j restricted by the mask
        bb = np.diag(Gfull).copy()
        x0 = np.where(others, fit.omega[None, :] * 1.0, 0.0)
        x0 = np.vstack(
            [
                _sum_normalize(row) if row.sum() > 0 else others[j] / (J - 1)
                for j, row in enumerate(x0)
            ]
        )
        zeta = opts["zeta_omega"]
        run = dict(eta=T0 * zeta**2, zeta2=zeta**2, nrow=T0, min_decrease=opts["min_decrease"])
        omegas, _ = frank_wolfe(
            Gfull, c, bb, x0, exclude=np.arange(J), max_iter=opts["max_iter_pre_sparsify"], **run
        )
        if opts["sparsify"]:
            omegas = np.vstack([sparsify(row) for row in omegas])
            omegas, _ = frank_wolfe(
                Gfull, c, bb, omegas, exclude=np.arange(J), max_iter=opts["max_iter"], **run
            )
        if method == "sdid":
            n = J - 1
            S = pre.T @ pre
            total = pre.sum(axis=0)
            m = (total[None, :] - pre) / n  # (J, T0) mean of the others
            G = S[None] - np.einsum("ji,jk->jik", pre, pre) - n * np.einsum("ji,jk->jik", m, m)
            zp = pre.T @ post
            pbar = (post.sum() - post) / n
            cl = zp[None, :] - pre * post[:, None] - n * m * pbar[:, None]
            bbl = (post @ post - post**2) - n * pbar**2
            zeta = opts["zeta_lambda"]
            run = dict(eta=n * zeta**2, zeta2=zeta**2, nrow=n, min_decrease=opts["min_decrease"])
            l0 = np.repeat(fit.lam[None, :], J, axis=0)
            lams, _ = frank_wolfe(G, cl, bbl, l0, max_iter=opts["max_iter_pre_sparsify"], **run)
            if opts["sparsify"]:
                lams = np.vstack([sparsify(row) for row in lams])
                lams, _ = frank_wolfe(G, cl, bbl, lams, max_iter=opts["max_iter"], **run)
        else:
            lams = np.zeros((J, T0))
    synthetic = omegas @ Y  # (J, T)
    gaps = Y - synthetic
    offsets = np.einsum("jt,jt->j", lams, gaps[:, :T0])
    effects = gaps[:, T0:].mean(axis=1) - offsets
    return effects, gaps - offsets[:, None]


def _sdid_placebos_random(panel: _Panel, opts, fit: _Fit, replications: int, rng) -> np.ndarray:
    """synthdid's placebo_se for a block of N1 treated areas: random permutations of the
    donors, the last N1 playing treated. Returns the placebo estimates."""
    Y = panel.Y[: panel.N0]
    N1 = panel.N1
    out = np.empty(replications)
    for r in range(replications):
        ind = rng.permutation(panel.N0)
        n0 = panel.N0 - N1
        omega0 = _sum_normalize(fit.omega[ind[:n0]])
        out[r] = _sdid_fit(Y[ind], n0, panel.T0, opts, omega0=omega0, lambda0=fit.lam).estimate
    return out


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SyntheticResult(EstimateResult):
    """The effect on the treated area(s) from one of the three estimators. Immutable.

    Attributes
    ----------
    method
        ``"sc"``, ``"sdid"`` or ``"did"``.
    estimate
        Average effect over the post-period years, in outcome units.
    std_error
        Placebo standard error: the standard deviation (denominator the number of placebos)
        of the placebo estimates (Algorithm 4 of Arkhangelsky et al. 2021).
    placebo_effects
        The placebo estimate of each donor area, as if it had been treated.
    p_value_permutation
        ``(1 + #{placebos with |effect| >= |estimate|}) / (1 + #placebos)``.
    p_value_rmspe
        The same rank test on the ratio of post- to pre-period root mean squared gap (Abadie,
        Diamond & Hainmueller 2010), which discounts placebos that fit badly before the start.
    rank
        Rank of the treated area's ``|estimate|`` among it and the placebos (1 = largest).
    unit_weights, time_weights
        Donor weights :math:`\\omega` (sum to one) and pre-period weights :math:`\\lambda`
        (sum to one for SDID and DiD; zero for synthetic control, which subtracts no
        pre-period level).
    treated_path, synthetic_path
        Outcome of the treated area(s) by year, and of the synthetic comparison (for SDID and
        DiD shifted by the :math:`\\lambda`-weighted pre-period gap, so the gap averages to the
        estimate over the post-period).
    placebo_gaps
        Year-by-donor gaps of the placebo fits, on the same footing as ``gaps``.
    years_without_data
        Whole years inside the span of the data that no area has (``(2020, 2021)`` for a KS2
        series over 2017-2024): not periods of the fit, left out of every path and effect,
        named in the summary and drawn as breaks in the figures.
    excluded_donors
        Areas of the data left out because they are outside the donor pool (``donor_pool``,
        ``donors_within``); also named in ``notes``. Donors dropped for missing outcomes are
        in ``dropped_donors``.
    pre_fit_exact
        Whether the pre-period fit is exact: root mean squared pre-period gap below
        ``EXACT_FIT_THRESHOLD`` (0.001) times the standard deviation of the outcome over
        every area and pre-period year.
    pre_fit_statement
        What the pre-period fit means for the evaluation, in plain English for a report: how
        close it is and, when donors outnumber the figures matched, that an exact fit is no
        evidence the comparison is right.
    prediction_intervals
        With ``SyntheticControl(prediction=PredictionIntervals(...))``: one row per programme
        year (and a last row ``"average"`` for the average effect) with the ``effect``, its
        interval allowing for the in-sample uncertainty of the weights only
        (``lower_in_sample``, ``upper_in_sample``), its interval allowing for in- and
        out-of-sample uncertainty (``lower``, ``upper``, coverage at least
        ``1 - alpha_in_sample - alpha_out_of_sample``), and the synthetic outcome with its
        interval (``synthetic``, ``synthetic_lower``, ``synthetic_upper``). ``None`` otherwise.
    """

    method: str
    estimate: float
    std_error: float
    placebo_effects: pd.Series
    p_value_permutation: float
    p_value_rmspe: float
    rank: int
    unit_weights: pd.Series
    time_weights: pd.Series
    treated_path: pd.Series
    synthetic_path: pd.Series
    placebo_gaps: pd.DataFrame
    treated_areas: tuple
    first_treated: Any
    n_pre: int
    n_post: int
    pre_rmspe: float
    dropped_donors: tuple = ()
    years_without_data: tuple = ()
    placebo_method: str = "every donor once"
    options: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    alpha: float = 0.05
    excluded_donors: tuple = ()
    pre_fit_exact: bool = False
    pre_fit_statement: str = ""
    prediction_intervals: pd.DataFrame | None = None

    @property
    def label(self) -> str:
        return LABELS[self.method]

    @property
    def n_donors(self) -> int:
        return len(self.unit_weights)

    @property
    def gaps(self) -> pd.Series:
        """Treated minus synthetic path by year (averages to ``estimate`` after the start)."""
        return (self.treated_path - self.synthetic_path).rename("gap")

    @property
    def effect_by_year(self) -> pd.Series:
        """The post-period gaps: the effect in each observed programme year (none for a year
        with no data)."""
        g = self.gaps
        return g[g.index >= self.first_treated].rename("effect")

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Normal interval ``estimate -/+ z * placebo SE`` (as synthdid), at the result's level
        when ``None``; indexed by term (the method), columns ``ci_lower, ci_upper``."""
        return super().conf_int(self._level(alpha))

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """Tidy row ``term, estimate, std_error, statistic, p_value, ci_lower, ci_upper`` (normal
        p-value and interval from the placebo SE), and with prediction intervals
        ``pi_lower, pi_upper`` (the average effect's, at their own level)."""
        frame = tidy_frame(
            pd.Series({self.method: self.estimate}),
            pd.Series({self.method: self.std_error}),
            df=None,
            alpha=alpha,
        )
        if self.prediction_intervals is not None:
            average = self.prediction_intervals.iloc[-1]
            frame = frame.assign(pi_lower=average["lower"], pi_upper=average["upper"])
        return frame

    tidy = EstimateResult.to_frame

    def summary(self) -> Summary:
        row = self.to_frame().iloc[0]
        top = self.unit_weights[self.unit_weights > 0].sort_values(ascending=False)
        weights = ", ".join(f"{a} {w:.3f}" for a, w in top.head(8).items())
        if len(top) > 8:
            weights += f" and {len(top) - 8} more"
        facts = [
            ("Estimate", f"{self.estimate:.4f}"),
            (
                "Placebo SE",
                f"{self.std_error:.4f} ({len(self.placebo_effects)} placebos, "
                f"{self.placebo_method})",
            ),
            (
                f"{1 - self.alpha:.0%} interval",
                f"[{row.ci_lower:.4f}, {row.ci_upper:.4f}] (normal)",
            ),
            (
                "Permutation p-value",
                f"{self.p_value_permutation:.3f} (rank {self.rank} of "
                f"{len(self.placebo_effects) + 1}); RMSPE-ratio p {self.p_value_rmspe:.3f}",
            ),
            ("Treated", ", ".join(str(a) for a in self.treated_areas)),
            ("Start", _start_text(self)),
            (
                "Donor areas",
                str(self.n_donors)
                + (
                    f" ({len(self.dropped_donors)} dropped for missing outcomes)"
                    if self.dropped_donors
                    else ""
                ),
            ),
            ("Pre / post years", f"{self.n_pre} / {self.n_post}"),
            *_gap_fact(self.years_without_data),
            ("Pre-period RMSE", f"{self.pre_rmspe:.4f}"),
            ("Unit weights", weights or "none"),
        ]
        if self.method == "sdid":
            lam = self.time_weights[self.time_weights > 0]
            facts.append(("Time weights", ", ".join(f"{t} {w:.3f}" for t, w in lam.items())))
        facts.extend(prediction_facts(self.prediction_intervals, self.options))
        return Summary(
            title=f"{self.label} (one treated area)",
            facts=tuple(facts),
            table=self.to_frame(),
            notes=self.notes,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (floats, ints, strings, lists and dicts)."""
        return _plain(
            {
                "method": self.method,
                "estimate": float(self.estimate),
                "std_error": float(self.std_error),
                "ci": [float(v) for v in self.conf_int().iloc[0]],
                "p_value_permutation": float(self.p_value_permutation),
                "p_value_rmspe": float(self.p_value_rmspe),
                "rank": int(self.rank),
                "n_placebos": len(self.placebo_effects),
                "placebo_method": self.placebo_method,
                "treated_areas": [str(a) for a in self.treated_areas],
                "first_treated": _plain(self.first_treated),
                "n_donors": self.n_donors,
                "dropped_donors": [str(a) for a in self.dropped_donors],
                "excluded_donors": [str(a) for a in self.excluded_donors],
                "pre_fit_exact": bool(self.pre_fit_exact),
                "pre_fit_statement": self.pre_fit_statement,
                "n_pre": self.n_pre,
                "n_post": self.n_post,
                "years_without_data": list(self.years_without_data),
                "pre_rmspe": float(self.pre_rmspe),
                "unit_weights": {str(k): float(v) for k, v in self.unit_weights.items()},
                "time_weights": {str(k): float(v) for k, v in self.time_weights.items()},
                "effect_by_year": {str(k): float(v) for k, v in self.effect_by_year.items()},
                "placebo_effects": {str(k): float(v) for k, v in self.placebo_effects.items()},
                "options": {k: _plain(v) for k, v in self.options.items()},
                "notes": list(self.notes),
                "prediction_intervals": None
                if self.prediction_intervals is None
                else {
                    str(k): {c: float(v) for c, v in row.items()}
                    for k, row in self.prediction_intervals.iterrows()
                },
            }
        )

    def plot(self, kind: Literal["trajectories", "gaps", "placebo"] = "trajectories", *, ax=None):
        """The classic figures; returns the matplotlib Axes.

        ``"trajectories"``: treated and synthetic outcome paths; ``"gaps"``: their difference;
        ``"placebo"``: the treated gap over every donor's placebo gap. Lines break across years
        with no data, which are shaded and labelled.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 4))
        years = np.asarray(self.treated_path.index)
        start = self.first_treated
        treated = ", ".join(str(a) for a in self.treated_areas)
        missing = self.years_without_data

        def line(values):
            return _broken(years, values, missing)

        _shade_missing(ax, missing)

        if kind == "trajectories":
            ax.plot(*line(self.treated_path), color="black", label=treated)
            ax.plot(
                *line(self.synthetic_path),
                color="C0",
                linestyle="--",
                label=f"synthetic ({self.method})",
            )
            lam = self.time_weights[self.time_weights > 0]
            if self.method == "sdid" and len(lam):
                for t in lam.index:
                    ax.axvspan(
                        t - 0.5, t + 0.5, color="C1", alpha=0.4 * float(lam[t]) + 0.05, linewidth=0
                    )
            ax.set_ylabel("outcome")
            ax.legend(loc="best", frameon=False)
        elif kind == "gaps":
            prediction_band(ax, self.prediction_intervals)
            ax.plot(*line(self.gaps), color="black", marker="o")
            ax.axhline(0, color="grey", linewidth=0.8)
            ax.set_ylabel("treated minus synthetic")
        elif kind == "placebo":
            for col in self.placebo_gaps.columns:
                ax.plot(*line(self.placebo_gaps[col]), color="grey", alpha=0.4, linewidth=0.8)
            ax.plot(*line(self.gaps), color="black", linewidth=2, label=treated)
            ax.axhline(0, color="grey", linewidth=0.8)
            ax.set_ylabel("gap (grey: donor placebos)")
            ax.legend(loc="best", frameon=False)
        else:
            check_choice(kind, "kind", ("trajectories", "gaps", "placebo"))
        ax.axvline(_midpoint(years, start), color="grey", linestyle=":", linewidth=0.8)
        ax.set_xlabel("year")
        ax.set_title(self.label)
        return ax


def _gap_fact(missing: tuple) -> tuple[tuple[str, str], ...]:
    """The summary line naming the years with no data (none when there are none)."""
    if not missing:
        return ()
    return (("Years with no data", ", ".join(str(y) for y in missing) + " (not periods)"),)


def _start_text(result: SyntheticResult) -> str:
    """The first programme year, saying so when years with no data come just before it."""
    start = result.first_treated
    last_pre = result.time_weights.index[-1]
    between = [y for y in result.years_without_data if last_pre < y < start]
    if not between:
        return str(start)
    return f"{start} (first programme year with data; none in {', '.join(map(str, between))})"


def _gap_notes(panel: _Panel) -> tuple[str, ...]:
    """What a gap in the years means for this fit, in words for the summary."""
    if not panel.missing_years:
        return ()
    named = ", ".join(str(y) for y in panel.missing_years)
    T1 = len(panel.years) - panel.T0
    notes = [
        f"No data in {named}: the periods are the {len(panel.years)} observed years "
        f"({panel.T0} before the start, {T1} after); weights are fitted on the observed "
        "pre-period years and effects are reported for observed years only."
    ]
    last_pre, first_post = panel.years[panel.T0 - 1], panel.years[panel.T0]
    between = [y for y in panel.missing_years if last_pre < y < first_post]
    if between:
        notes.append(
            f"No data between the last year before the programme ({last_pre}) and the first "
            f"programme year observed ({first_post}): a start in "
            f"{' or '.join(str(y) for y in between)} gives the same pre/post split; effects "
            "in those years are not measured."
        )
    return tuple(notes)


def _broken(years, values, missing) -> tuple[np.ndarray, np.ndarray]:
    """x and y of a line by year, with NaN at the years with no data so the line breaks there."""
    series = pd.Series(np.asarray(values, dtype=float), index=list(years))
    if missing:
        series = series.reindex(sorted([*series.index, *missing]))
    return np.asarray(series.index), series.to_numpy()


def _shade_missing(ax, missing) -> None:
    """Shade each year with no data and label the first span once ("no data")."""
    for k, y in enumerate(missing):
        ax.axvspan(
            y - 0.5,
            y + 0.5,
            color="0.9",
            hatch="//",
            linewidth=0,
            label="no data" if k == 0 else None,
        )


def _midpoint(years, start):
    years = list(years)
    i = years.index(start)
    return (years[i - 1] + years[i]) / 2 if i > 0 else start


def _plain(v):
    """JSON-ready copy of a value: numpy scalars to Python, NaN to None, containers walked."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _placebo_stats(estimate, effects, treated_gap, placebo_gaps, T0):
    J = len(effects)
    sd = float(np.sqrt(np.mean((effects - effects.mean()) ** 2))) if J > 1 else float("nan")
    p_perm = (1 + np.sum(np.abs(effects) >= abs(estimate))) / (J + 1)
    rank = int(1 + np.sum(np.abs(effects) > abs(estimate)))

    def ratio(g):
        pre = np.sqrt(np.mean(np.asarray(g)[..., :T0] ** 2, axis=-1))
        post = np.sqrt(np.mean(np.asarray(g)[..., T0:] ** 2, axis=-1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return post / pre

    r_tr = ratio(treated_gap)
    r_pl = ratio(placebo_gaps) if placebo_gaps is not None else np.array([])
    p_rmspe = (1 + np.sum(r_pl >= r_tr)) / (len(r_pl) + 1) if len(r_pl) else float("nan")
    return sd, float(p_perm), rank, float(p_rmspe)


def _result(
    method,
    panel: _Panel,
    omega,
    lam,
    estimate,
    effects,
    placebo_gaps,
    *,
    options,
    notes,
    placebo_method,
    alpha,
):
    Y = panel.Y
    T0 = panel.T0
    years = pd.Index(panel.years, name="year")
    treated_path = Y[panel.N0 :].mean(axis=0)
    raw = omega @ Y[: panel.N0]
    offset = float(lam @ (treated_path[:T0] - raw[:T0]))
    synthetic = raw + offset
    gap = treated_path - synthetic
    pg = None if placebo_gaps is None else placebo_gaps
    sd, p_perm, rank, p_rmspe = _placebo_stats(estimate, effects, gap, pg, T0)
    exact, statement = pre_fit_statement(
        method=method,
        pre_gap=gap[:T0],
        Y_pre=Y[:, :T0],
        n_donors=panel.N0,
        n_equations=T0 + len(options.get("predictors", ())),
        treated=panel.treated,
        first_treated=panel.first_treated,
    )
    placebo_index = panel.donors if placebo_method == "every donor once" else range(len(effects))
    return SyntheticResult(
        method=method,
        estimate=float(estimate),
        std_error=sd,
        placebo_effects=pd.Series(
            effects, index=pd.Index(placebo_index, name="area"), name="placebo_effect"
        ),
        p_value_permutation=p_perm,
        p_value_rmspe=p_rmspe,
        rank=rank,
        unit_weights=pd.Series(omega, index=pd.Index(panel.donors, name="area"), name="weight"),
        time_weights=pd.Series(lam, index=pd.Index(panel.years[:T0], name="year"), name="weight"),
        treated_path=pd.Series(treated_path, index=years, name="treated"),
        synthetic_path=pd.Series(synthetic, index=years, name="synthetic"),
        placebo_gaps=pd.DataFrame(
            np.empty((len(years), 0)) if pg is None else np.asarray(pg).T,
            index=years,
            columns=pd.Index([] if pg is None else list(panel.donors), name="area"),
        ),
        treated_areas=panel.treated,
        first_treated=panel.first_treated,
        n_pre=int(T0),
        n_post=int(len(panel.years) - T0),
        pre_rmspe=float(np.sqrt(np.mean(gap[:T0] ** 2))),
        dropped_donors=panel.dropped,
        years_without_data=panel.missing_years,
        placebo_method=placebo_method,
        options=options,
        notes=(*notes, *_gap_notes(panel), *pool_notes(panel.excluded)),
        alpha=alpha,
        excluded_donors=panel.excluded,
        pre_fit_exact=exact,
        pre_fit_statement=statement,
    )


# --------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------


#: The option names of the synthetic estimators before the glossary (one release).
_OLD_NAMES = {"area": "unit", "year": "time", "treated": "treatment"}


@dataclass(frozen=True, kw_only=True)
class _AreaSpec:
    #: Rows it fits: one per area and year.
    data_level: ClassVar[str] = "unit_year"
    #: Its estimate is a difference in area-by-year means (areas weighted by the method).
    effect_scale: ClassVar[str] = "area_mean"

    unit: str = "area"
    time: str = "year"
    outcome: str = "outcome"
    treatment: str = "treated"
    missing: Literal["error", "drop"] = "error"
    placebo: bool = True
    alpha: float = 0.05
    donor_pool: Sequence[str | int] | pd.DataFrame | None = None
    donor_pool_columns: tuple[str, str] = ("area", "donor")
    donors_within: str | None = None

    def __post_init__(self):
        check_choice(self.missing, "missing", ("error", "drop"))
        check_bool(self.placebo, "placebo")
        check_alpha(self.alpha)
        pool = normalise_pool(self.donor_pool, self.donor_pool_columns)
        object.__setattr__(self, "donor_pool", pool)
        object.__setattr__(self, "donor_pool_columns", tuple(self.donor_pool_columns))

    def _panel(self, data: pd.DataFrame) -> _Panel:
        """The checked area-by-year panel of the columns this spec names."""
        keep, excluded = pool_rows(
            data,
            unit=self.unit,
            treatment=self.treatment,
            pool=self.donor_pool,
            within=self.donors_within,
        )
        panel = _prepare(
            data if keep is None else data.loc[keep],
            area=self.unit,
            year=self.time,
            outcome=self.outcome,
            treated=self.treatment,
            missing=self.missing,
            min_pre=2,
        )
        return replace(panel, excluded=excluded) if excluded else panel


@deprecated_options(**_OLD_NAMES, replications="n_permutations")
@dataclass(frozen=True, kw_only=True)
class SyntheticDiD(_AreaSpec):
    r"""Synthetic difference-in-differences (and synthdid's SC and DiD) for one treated area.

    Parameters
    ----------
    method
        ``"sdid"`` (default), ``"sc"`` (synthdid's ``sc_estimate``: no time weights, unit
        weights without intercept and an "infinitesimal" ridge) or ``"did"`` (equal weights).
    unit, time, outcome, treatment
        Columns of the area-by-year rows (defaults ``"area"``, ``"year"``, ``"outcome"``,
        ``"treated"``); ``treatment`` is 1 in the treated area's programme years. Several
        treated areas starting in the same year are a block (averaged). The old spellings
        ``area=``, ``year=`` and ``treated=`` still work for one release (deprecated).
    missing
        Donor areas with missing outcomes: ``"error"`` (default, names the areas and years) or
        ``"drop"`` (leave them out, with a warning giving the count).
    placebo
        Placebo-in-space inference. With one treated area every donor plays treated once (the
        exhaustive version of synthdid's ``placebo_se``, which draws 200 random placebos);
        with a block of ``N1`` treated areas, ``n_permutations`` random permutations as
        synthdid (its ``replications``; the old ``replications=`` still works for one release,
        deprecated).
    n_permutations, seed
        For a block of treated areas only.
    eta_omega, eta_lambda
        :math:`\zeta_\omega = \eta_\omega \sigma`, :math:`\zeta_\lambda = \eta_\lambda \sigma`
        with :math:`\sigma` the SD of first differences of donor outcomes in the pre-period.
        Defaults: :math:`\eta_\omega = (N_{tr} T_{post})^{1/4}` (``1e-6`` for ``"sc"``),
        :math:`\eta_\lambda = 10^{-6}`.
    min_decrease, max_iter, max_iter_pre_sparsify, sparsify
        Frank-Wolfe stopping rule and sparsification as synthdid: stop when an iteration lowers
        the penalised error by at most ``min_decrease**2`` (default ``1e-5 * sigma``), at most
        ``max_iter`` (10,000) iterations; a first round of ``max_iter_pre_sparsify`` (100)
        iterations, then weights at or below a quarter of the largest are zeroed and the
        solver restarts from them.
    donor_pool
        The areas that may serve as donors: a list of areas, or a table (DataFrame) with one
        row per treated area and donor, such as DfE's statistical neighbours, whose two
        columns are named by ``donor_pool_columns`` (default ``("area", "donor")``). A block
        of treated areas pools the donors listed for any of them. Default: every untreated
        area.
    donors_within
        A column of the rows holding one value per area (e.g. ``"region"``): donors only from
        areas with the treated area's value. Combined with ``donor_pool``, an area must pass
        both. Areas left out are named in the result (``excluded_donors``) and its notes;
        placebos use the pool's donors only. A pool of fewer than two donors, an area the data
        lacks or a treated area the table does not list raises an error.
    covariates
        Time-varying columns (e.g. each year's FSM share): the outcome is replaced by
        :math:`Y_{it} - X_{it}'\hat\beta`, with :math:`\hat\beta` from a regression of
        :math:`Y` on :math:`X` with area and year effects over the untreated cells only
        (every donor year and the treated area's pre-period years), and the estimator runs
        on that (Arkhangelsky et al. 2021, section 8; the "projected" covariates of Stata's
        ``sdid``). :math:`\hat\beta` is in ``options["covariates"]``; the paths are of the
        adjusted outcome. A covariate that does not vary within areas over time is absorbed
        by the area effects and raises an error.

    Notes
    -----
    Unit weights (Arkhangelsky et al. 2021, eq. 2.2), over the pre-period:

    .. math::
        (\hat\omega_0, \hat\omega) = \arg\min_{\omega_0, \omega \in \Delta}
        \sum_{t \le T_0} \Big(\omega_0 + \sum_{i \le N_0} \omega_i Y_{it}
        - \bar Y_{tr,t}\Big)^2 + \zeta_\omega^2 T_0 \lVert\omega\rVert^2,
        \quad \zeta_\omega = (N_{tr} T_{post})^{1/4} \hat\sigma,

    time weights (eq. 2.3), over the donors, with a negligible ridge:

    .. math::
        (\hat\lambda_0, \hat\lambda) = \arg\min_{\lambda_0, \lambda \in \Delta}
        \sum_{i \le N_0} \Big(\lambda_0 + \sum_{t \le T_0} \lambda_t Y_{it}
        - \bar Y_{i,post}\Big)^2 + \zeta_\lambda^2 N_0 \lVert\lambda\rVert^2,

    and :math:`\hat\tau` is the weighted double difference in the module docstring. Both
    problems are solved by Frank-Wolfe with exact line search exactly as the synthdid R package
    (version 0.0.9) does, including its sparsification and stopping rule, so estimates agree
    with it (Prop 99: -15.60).

    Years with no data: the periods are the observed years. :math:`T_0` is the number of
    observed years before the first observed programme year, the time weights :math:`\lambda`
    are over those years only, :math:`\hat\sigma` takes differences between consecutive
    observed pre-period years (2019 to 2022 counts as one step across the 2020-21 gap, as synthdid
    would on the same matrix), and ``effect_by_year`` has a row for each observed programme
    year. The result names the missing years (``years_without_data``).

    References
    ----------
    Arkhangelsky, D., Athey, S., Hirshberg, D. A., Imbens, G. W. & Wager, S. (2021).
    Synthetic difference-in-differences. *American Economic Review* 111(12), 4088-4118.

    Examples
    --------
    >>> from cpdimpact.comparison import SyntheticDiD, area_year_outcomes
    >>> from cpdimpact.datasets import maths_challenge
    >>> panel = area_year_outcomes(maths_challenge(seed=0, scale=0.2))
    >>> fit = SyntheticDiD().fit(panel)
    >>> fit.treated_areas, fit.n_donors, len(fit.placebo_effects)
    (('Riverton',), 8, 8)

    On California's Proposition 99 (``tests/reference/synthetic/california_prop99.csv``),
    ``SyntheticDiD(area="State", year="Year", outcome="PacksPerCapita")`` gives -15.60.
    """

    method: Literal["sdid", "sc", "did"] = "sdid"
    eta_omega: float | None = None
    eta_lambda: float = 1e-6
    min_decrease: float | None = None
    max_iter: int = 10_000
    max_iter_pre_sparsify: int = 100
    sparsify: bool = True
    n_permutations: int = 200
    seed: int | np.random.SeedSequence | np.random.Generator | None = None
    covariates: Sequence[str] = ()

    def __post_init__(self):
        super().__post_init__()
        check_choice(self.method, "method", METHODS)
        check_positive_int(self.n_permutations, "n_permutations")
        check_seed(self.seed)
        names = (self.covariates,) if isinstance(self.covariates, str) else self.covariates
        object.__setattr__(self, "covariates", tuple(names))

    def describe(self) -> str:
        """The estimator and its inference in plain words, for a report."""
        name = {
            "sdid": "Synthetic difference-in-differences (Arkhangelsky et al. 2021)",
            "sc": "Synthetic control with the synthetic difference-in-differences solver",
            "did": "Difference-in-differences with equal weights on the comparison areas",
        }[self.method]
        placebo = (
            "a placebo standard error: each comparison area in turn plays the treated one, or "
            f"{self.n_permutations} random re-assignments for a block of treated areas"
            if self.placebo
            else "no placebo inference"
        )
        net = f" net of {', '.join(self.covariates)}" if self.covariates else ""
        return f"{name} on area-by-year means{net}; {placebo}"

    def fit(self, data: pd.DataFrame) -> SyntheticResult:
        """Estimate on area-by-year rows; returns a :class:`SyntheticResult`."""
        panel = self._panel(data)
        if not self.covariates:
            return self._fit_panel(panel)
        Y, beta = residualise_on_covariates(
            data, panel.Y, areas=(*panel.donors, *panel.treated), years=panel.years,
            n_donors=panel.N0, n_pre=panel.T0, unit=self.unit, time=self.time,
            covariates=self.covariates,
        )  # fmt: skip
        fit = self._fit_panel(replace(panel, Y=Y))
        return replace(fit, options={**fit.options, "covariates": beta})

    def _fit_panel(self, panel: _Panel) -> SyntheticResult:
        N0, T0 = panel.N0, panel.T0
        T1 = len(panel.years) - T0
        sigma = _noise_level(panel.Y, N0, T0)
        eta_omega = self.eta_omega
        if eta_omega is None:
            eta_omega = 1e-6 if self.method == "sc" else (panel.N1 * T1) ** 0.25
        opts = {
            "method": self.method,
            "zeta_omega": eta_omega * sigma,
            "zeta_lambda": self.eta_lambda * sigma,
            "min_decrease": 1e-5 * sigma if self.min_decrease is None else self.min_decrease,
            "max_iter": self.max_iter,
            "max_iter_pre_sparsify": self.max_iter_pre_sparsify if self.sparsify else self.max_iter,
            "sparsify": self.sparsify,
        }
        fit = _sdid_fit(panel.Y, N0, T0, opts)
        notes = []
        if self.method == "sc" and N0 > T0:
            notes.append(
                f"{N0} donor areas for {T0} pre-period years: unit weights are not unique "
                "without the ridge penalty."
            )
        placebo_method = "every donor once"
        if not self.placebo:
            effects, pgaps = np.array([]), None
            placebo_method = "none"
        elif panel.N1 == 1:
            effects, pgaps = _sdid_placebos(panel, fit, opts)
        else:
            rng = resolve_seed(self.seed)
            effects = _sdid_placebos_random(panel, opts, fit, self.n_permutations, rng)
            pgaps = None
            placebo_method = f"{self.n_permutations} random permutations"
        options = {
            "solver": "Frank-Wolfe (synthdid)",
            "noise_level": sigma,
            "zeta_omega": opts["zeta_omega"],
            "zeta_lambda": opts["zeta_lambda"],
            "min_decrease": opts["min_decrease"],
            "max_iter": self.max_iter,
            "sparsify": self.sparsify,
            "iterations_omega": fit.iterations[0],
            "iterations_lambda": fit.iterations[1],
        }
        if panel.N1 > 1 and self.placebo:
            options["seed"] = self.seed if isinstance(self.seed, int) else None
        return _result(
            self.method,
            panel,
            fit.omega,
            fit.lam,
            fit.estimate,
            effects,
            pgaps,
            options=options,
            notes=tuple(notes),
            placebo_method=placebo_method,
            alpha=self.alpha,
        )


@deprecated_options(**_OLD_NAMES)
@dataclass(frozen=True, kw_only=True)
class SyntheticControl(_AreaSpec):
    r"""Synthetic control (Abadie, Diamond & Hainmueller 2010) for one treated area.

    Donor weights on the simplex minimise the squared distance between the treated area's
    pre-period outcomes (and, optionally, predictors) and the weighted donors', solved exactly.

    Parameters
    ----------
    predictors
        Optional columns of the area-by-year rows whose pre-period means are matched too.
        Default: none (pre-period outcomes only).
    predictor_weights
        Weight of each predictor relative to the outcome path (default 1 each); each predictor
        is scaled by its standard deviation across areas first.
    ridge
        A tiny ridge (relative to the mean diagonal of the Gram matrix, default ``1e-10``) that
        makes the solution unique when there are more donors than matching equations and
        changes nothing otherwise.
    unit, time, outcome, treatment, missing, placebo, alpha
        As :class:`SyntheticDiD`.
    prediction
        :class:`~cpdimpact.comparison.PredictionIntervals` for prediction intervals of each
        programme year's effect in the manner of Cattaneo, Feng & Titiunik (2021) (the
        ``scpi`` package), in ``prediction_intervals`` of the result; default ``None`` (none).
        Needs outcome-only weights (no ``predictors``) and at least 3 pre-period years.

    Notes
    -----
    .. math::
        \hat\omega = \arg\min_{\omega \in \Delta}\; \frac{1}{T_0}\sum_{t \le T_0}
        \Big(Y_{1t} - \sum_{i} \omega_i Y_{it}\Big)^2
        + \sum_k v_k \Big(\frac{X_{1k} - \sum_i \omega_i X_{ik}}{s_k}\Big)^2,

    :math:`\hat\tau = \bar Y_{1,post} - \sum_i \hat\omega_i \bar Y_{i,post}`. The predictor
    weights :math:`v_k` are fixed, not chosen by the nested optimisation of Abadie et al.
    (which is often ill-posed); with outcomes only this is the common "all pre-period
    outcomes" specification. The quadratic programme over the simplex is solved exactly by a
    primal active-set method (:func:`~cpdimpact.comparison._synthetic_solvers.simplex_least_squares`).

    Only one treated area: for a block of areas starting together use
    ``SyntheticDiD(method="sc")``, which matches their average.

    Years with no data (a year no area has) are not periods: the weights match the observed
    pre-period years, :math:`T_0` counts them, the effect averages the observed programme years
    and the result names the missing years (``years_without_data``).

    References
    ----------
    Abadie, A., Diamond, A. & Hainmueller, J. (2010). Synthetic control methods for comparative
    case studies. *Journal of the American Statistical Association* 105(490), 493-505.

    Examples
    --------
    >>> from cpdimpact.comparison import SyntheticControl, area_year_outcomes
    >>> from cpdimpact.datasets import maths_challenge
    >>> panel = area_year_outcomes(maths_challenge(seed=0, scale=0.2))
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     fit = SyntheticControl(placebo=False).fit(panel)
    >>> caught[0].category.__name__  # 8 donors for 4 pre-period years
    'NonUniqueWeightsWarning'
    >>> round(float(fit.unit_weights.sum()), 6)
    1.0
    """

    predictors: Sequence[str] = ()
    predictor_weights: Sequence[float] | None = None
    ridge: float = 1e-10
    prediction: PredictionIntervals | None = None

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.predictors, str):
            object.__setattr__(self, "predictors", (self.predictors,))
        object.__setattr__(self, "predictors", tuple(self.predictors))
        if self.predictor_weights is not None and len(self.predictor_weights) != len(
            self.predictors
        ):
            raise InvalidArgumentError(
                f"predictor_weights needs one weight per predictor ({len(self.predictors)}), "
                f"got {len(self.predictor_weights)}."
            )
        check_number(self.ridge, "ridge", minimum=0)
        if self.prediction is not None and not isinstance(self.prediction, PredictionIntervals):
            raise ArgumentTypeError(
                "prediction takes PredictionIntervals(...) or None; got "
                f"{type(self.prediction).__name__}."
            )

    def describe(self) -> str:
        """The estimator and its inference in plain words, for a report."""
        matched = (
            f" and the pre-period means of {', '.join(self.predictors)}" if self.predictors else ""
        )
        placebo = (
            "a placebo-in-space test: each comparison area in turn plays the treated one"
            if self.placebo
            else "no placebo inference"
        )
        intervals = f"; {self.prediction.describe()}" if self.prediction else ""
        return (
            "Synthetic control (Abadie, Diamond & Hainmueller 2010): a weighted average of "
            f"comparison areas matching the treated area's outcomes before the start{matched}, "
            f"on area-by-year means; {placebo}{intervals}"
        )

    def fit(self, data: pd.DataFrame) -> SyntheticResult:
        """Estimate on area-by-year rows; returns a :class:`SyntheticResult`."""
        panel = self._panel(data)
        if panel.N1 > 1:
            raise DesignError(
                f"{panel.N1} treated areas ({format_rows(panel.treated)}); SyntheticControl "
                "fits one. Use SyntheticDiD(method='sc') to match their average (a block), or "
                "fit each treated area separately."
            )
        X = self._predictors(data, panel)
        return self._fit_panel(panel, X)

    def _predictors(self, data, panel) -> np.ndarray:
        if not self.predictors:
            return np.empty((panel.N0 + 1, 0))
        missing = [p for p in self.predictors if p not in data.columns]
        if missing:
            raise MissingColumnError(
                f"predictor column(s) {missing} not in the data; found {list(data.columns)}."
            )
        pre_years = set(panel.years[: panel.T0])
        pre = data[data[self.time].isin(pre_years)]
        means = pre.groupby(self.unit)[list(self.predictors)].mean()
        order = list(panel.donors) + list(panel.treated)
        X = means.reindex(order)
        if X.isna().to_numpy().any():
            areas = [a for a in order if X.loc[a].isna().any()]
            raise InvalidValueError(
                f"predictors have no pre-period value for {format_rows(areas)}; fill them or "
                "drop those areas."
            )
        X = X.to_numpy(float)
        sd = X.std(axis=0, ddof=1)
        sd[sd == 0] = 1.0
        v = (
            np.ones(X.shape[1])
            if self.predictor_weights is None
            else np.asarray(self.predictor_weights, dtype=float)
        )
        return X / sd * np.sqrt(v)

    def _weights(self, Ypre: np.ndarray, X: np.ndarray, target: int, donors: np.ndarray):
        T0 = Ypre.shape[1]
        A = np.vstack([Ypre[donors].T / np.sqrt(T0), X[donors].T])
        b = np.concatenate([Ypre[target] / np.sqrt(T0), X[target]])
        scale = float(np.mean(np.sum(A**2, axis=0))) or 1.0
        w, _ = simplex_least_squares(A, b, ridge=self.ridge * scale)
        return w

    def _fit_panel(self, panel: _Panel, X: np.ndarray) -> SyntheticResult:
        N0, T0 = panel.N0, panel.T0
        equations = T0 + X.shape[1]
        notes = []
        if N0 > equations:
            warnings.warn(
                f"{N0} donor areas but only {equations} matching equations ({T0} pre-period "
                "years" + (f" and {X.shape[1]} predictors" if X.shape[1] else "") + "): "
                "synthetic-control weights may not be unique; the tiny ridge picks one. "
                "Check the weights' stability (e.g. compare with SyntheticDiD).",
                NonUniqueWeightsWarning,
                stacklevel=3,
            )
            notes.append(
                f"{N0} donors for {equations} matching equations: weights may not be unique."
            )
        Ypre = panel.Y[:, :T0]
        all_donors = np.arange(N0)
        omega = self._weights(Ypre, X, N0, all_donors)
        estimate = _tau(panel.Y, N0, T0, omega, np.zeros(T0))
        effects, gaps = np.array([]), None
        if self.placebo:
            Yd = panel.Y[:N0]
            effects = np.empty(N0)
            gaps = np.empty((N0, Yd.shape[1]))
            for j in range(N0):
                others = np.delete(all_donors, j)
                w = self._weights(Ypre, X, j, others)
                gaps[j] = Yd[j] - w @ Yd[others]
                effects[j] = gaps[j, T0:].mean()
        options = {
            "solver": "active set (exact)",
            "ridge": self.ridge,
            "predictors": list(self.predictors),
        }
        result = _result(
            "sc",
            panel,
            omega,
            np.zeros(T0),
            estimate,
            effects,
            gaps,
            options=options,
            notes=tuple(notes),
            placebo_method="every donor once" if self.placebo else "none",
            alpha=self.alpha,
        )
        return self._with_prediction(result, panel, omega) if self.prediction else result

    def _with_prediction(self, result: SyntheticResult, panel: _Panel, omega) -> SyntheticResult:
        """The result with its prediction intervals (:mod:`._prediction` does the work)."""
        if self.predictors:
            raise DesignError(
                "prediction intervals are implemented for weights matched on the pre-period "
                "outcomes only; drop predictors= or prediction=."
            )
        spec, T0, N0 = self.prediction, panel.T0, panel.N0
        Y = panel.Y
        bounds = prediction_bounds(
            spec, Y[:N0, :T0].T, Y[N0, :T0], Y[:N0, T0:].T, omega, resolve_seed(spec.seed)
        )
        post = result.synthetic_path.index[T0:]
        frame = prediction_frame(
            [*post, "average"],
            np.append(Y[N0, T0:], Y[N0, T0:].mean()),
            np.append(result.synthetic_path.iloc[T0:], result.synthetic_path.iloc[T0:].mean()),
            bounds,
        )
        options = {
            **result.options,
            "prediction": spec.describe(),
            "prediction_rho": bounds.rho,
            "prediction_level": spec.level,
        }
        notes = result.notes
        if bounds.exact_fit:
            notes = (
                *notes,
                "Prediction intervals: the pre-period fit is exact, so they show only the range "
                "of exact-fit synthetic outcomes, not the uncertainty of the effect.",
            )
        return replace(result, prediction_intervals=frame, options=options, notes=notes)


# --------------------------------------------------------------------------------------------
# The comparison table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SyntheticComparison(EstimateResult):
    """Synthetic control, synthetic DiD and DiD side by side on the same data. Immutable.

    Attributes
    ----------
    results
        Method name -> :class:`SyntheticResult`.
    """

    results: Mapping[str, SyntheticResult]

    def __getitem__(self, method: str) -> SyntheticResult:
        return self.results[method]

    def _headline(self) -> pd.Series:
        raise AttributeError(
            "a comparison of methods has no single headline estimate: pick one, e.g. "
            "comparison['sdid'].estimate"
        )

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """One tidy row per method, plus ``p_value_permutation``, ``n_placebos`` and
        ``pre_rmspe``."""
        rows = []
        for r in self.results.values():
            row = r.to_frame(alpha).iloc[0].to_dict()
            row["p_value_permutation"] = r.p_value_permutation
            row["n_placebos"] = len(r.placebo_effects)
            row["pre_rmspe"] = r.pre_rmspe
            rows.append(row)
        return pd.DataFrame(rows)

    tidy = EstimateResult.to_frame

    def unit_weights(self) -> pd.DataFrame:
        """Donor weights of every method, one column per method."""
        return pd.DataFrame({m: r.unit_weights for m, r in self.results.items()})

    def time_weights(self) -> pd.DataFrame:
        """Pre-period weights of every method, one column per method."""
        return pd.DataFrame({m: r.time_weights for m, r in self.results.items()})

    def summary(self) -> Summary:
        first = next(iter(self.results.values()))
        table = self.to_frame()[
            [
                "term",
                "estimate",
                "std_error",
                "ci_lower",
                "ci_upper",
                "p_value_permutation",
                "pre_rmspe",
            ]
        ]
        return Summary(
            title="One treated area: synthetic control, synthetic DiD and DiD",
            facts=(
                ("Treated", ", ".join(str(a) for a in first.treated_areas)),
                ("Start", _start_text(first)),
                ("Donor areas", str(first.n_donors)),
                ("Pre / post years", f"{first.n_pre} / {first.n_post}"),
                *_gap_fact(first.years_without_data),
                ("Standard errors", f"placebo ({first.placebo_method})"),
            ),
            table=table,
            notes=tuple(n for n in first.notes if n.startswith("No data")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {m: r.to_dict() for m, r in self.results.items()}

    def plot(self, *, ax=None):
        """Treated path and each method's synthetic path on one Axes (lines break across years
        with no data, which are shaded)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 4))
        first = next(iter(self.results.values()))
        years = np.asarray(first.treated_path.index)
        missing = first.years_without_data
        ax.plot(
            *_broken(years, first.treated_path, missing),
            color="black",
            linewidth=2,
            label=", ".join(str(a) for a in first.treated_areas),
        )
        for k, (m, r) in enumerate(self.results.items()):
            ax.plot(
                *_broken(years, r.synthetic_path, missing),
                linestyle="--",
                color=f"C{k}",
                label=f"{m}: {r.estimate:.2f}",
            )
        _shade_missing(ax, missing)
        ax.axvline(
            _midpoint(years, first.first_treated), color="grey", linestyle=":", linewidth=0.8
        )
        ax.set_xlabel("year")
        ax.set_ylabel("outcome")
        ax.legend(loc="best", frameon=False)
        return ax


def compare_synthetic(
    data: pd.DataFrame,
    *,
    methods: Sequence[str] = ("sc", "sdid", "did"),
    sc: Literal["exact", "synthdid"] = "exact",
    prediction: PredictionIntervals | None = None,
    **options: Any,
) -> SyntheticComparison:
    """Fit synthetic control, synthetic DiD and DiD to the same area-by-year rows.

    Parameters
    ----------
    data
        Area-by-year rows (see :class:`SyntheticDiD`).
    methods
        Which of ``"sc"``, ``"sdid"``, ``"did"`` to fit, in table order.
    sc
        ``"exact"``: :class:`SyntheticControl` (exact simplex least squares);
        ``"synthdid"``: ``SyntheticDiD(method="sc")`` (synthdid's Frank-Wolfe with a tiny
        ridge; also handles a block of treated areas).
    prediction
        Prediction intervals for the exact synthetic control
        (:class:`~cpdimpact.comparison.PredictionIntervals`; one treated area); the other
        methods keep their placebo intervals.
    **options
        Column names and shared options (``unit``, ``time``, ``outcome``, ``treatment``,
        ``missing``, ``placebo``, ``alpha``), and ``n_permutations`` and ``seed`` for the
        random placebos of a block of treated areas (the old spellings ``area``, ``year``,
        ``treated`` and ``replications`` still work for one release, deprecated).

    Returns
    -------
    SyntheticComparison
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InvalidArgumentError(f"methods must be among {METHODS}; got {unknown}")
    area_options = [f.name for f in fields(_AreaSpec)]
    known = {*area_options, *_OLD_NAMES, "replications", "n_permutations"}
    extra = sorted(set(options) - known - {"seed"})
    if extra:
        raise ArgumentTypeError(f"compare_synthetic() got unexpected options {extra}")
    spec = SyntheticDiD(**options)  # old spellings warn here, once; bad values raise
    shared = {k: getattr(spec, k) for k in area_options}
    block = {"n_permutations": spec.n_permutations, "seed": spec.seed}
    panel = spec._panel(data)
    results = {}
    with warnings.catch_warnings():
        # the missing-donor warning was given once by _prepare above
        warnings.simplefilter("ignore", SmallSampleWarning)
        for m in methods:
            if m == "sc" and sc == "exact" and panel.N1 == 1:
                results[m] = SyntheticControl(**shared, prediction=prediction).fit(data)
            else:
                results[m] = SyntheticDiD(method=m, **shared, **block)._fit_panel(panel)
    return SyntheticComparison(results)


def cross_validate_synthetic(
    data: pd.DataFrame,
    *,
    holdout: int = 1,
    methods: Sequence[str] = ("sc", "sdid", "did"),
    sc: Literal["exact", "synthdid"] = "exact",
    by_year: bool = False,
    **options: Any,
) -> pd.DataFrame:
    """How well each method predicts pre-period years it was not fitted to.

    A pseudo-post-period check: the last ``holdout`` pre-period years are held out and
    treated as if the programme had started then (it had not), each method is fitted on the
    earlier years only, and its gaps in the held-out years are reported. A method whose
    pretend effect is far from zero, or whose held-out gaps are much larger than its fit
    before, would have misread a year without any programme, and may misread the real ones.

    Parameters
    ----------
    data
        Area-by-year rows, as :func:`compare_synthetic` takes them (the post-period rows are
        not used).
    holdout
        How many of the last observed pre-period years to hold out (default 1). At least two
        pre-period years must remain to fit on.
    methods, sc, **options
        As :func:`compare_synthetic`: column names, ``missing``, ``donor_pool``,
        ``donor_pool_columns`` and ``donors_within``; placebos are not run.
    by_year
        ``False`` (default): one row per method; ``True``: one row per method and held-out
        year.

    Returns
    -------
    pandas.DataFrame
        One row per method: ``method``, ``label``, ``n_fit_years`` (pre-years fitted on),
        ``holdout_years``, ``pseudo_effect`` (the estimate of the pretend programme: near
        zero for a trustworthy comparison), ``holdout_rmse`` (root mean squared gap over the
        held-out years), ``holdout_max_abs_gap`` and ``fit_rmse`` (root mean squared gap over
        the years fitted on). With ``by_year=True``: ``method, label, year, gap``.

    Raises
    ------
    TooFewPreYearsError
        When holding out ``holdout`` years would leave fewer than two pre-period years.

    Notes
    -----
    The held-out years are the last observed years before the first programme year (a year
    with no data is skipped). Warnings about non-unique weights are not repeated for these
    shorter fits (the full fit gives them).

    Examples
    --------
    >>> from cpdimpact.datasets import maths_challenge
    >>> panel = area_year_outcomes(maths_challenge(seed=0, scale=0.2))
    >>> check = cross_validate_synthetic(panel, holdout=1)
    >>> list(check["method"]), check["holdout_years"].iloc[0]
    (['sc', 'sdid', 'did'], '2020')
    """
    check_positive_int(holdout, "holdout")
    check_bool(by_year, "by_year")
    extra = sorted(set(options) - {f.name for f in fields(_AreaSpec)} - set(_OLD_NAMES))
    if extra:  # e.g. covariates=, which compare_synthetic does not take
        raise ArgumentTypeError(f"cross_validate_synthetic() got unexpected options {extra}")
    spec = SyntheticDiD(**{**options, "placebo": False})
    panel = spec._panel(data)
    rows, held = pseudo_post_rows(
        data, unit=spec.unit, time=spec.time, treatment=spec.treatment,
        treated=panel.treated, pre_years=panel.years[: panel.T0], holdout=holdout,
    )  # fmt: skip
    shared = {f.name: getattr(spec, f.name) for f in fields(_AreaSpec)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonUniqueWeightsWarning)
        warnings.simplefilter("ignore", SmallSampleWarning)
        table = compare_synthetic(rows, methods=methods, sc=sc, **shared)
    return holdout_table(table.results, held, by_year=by_year)
