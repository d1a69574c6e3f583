r"""Donor pools, covariates, the exact-fit statement and held-out pre-years for synthetic control.

A city-wide programme in one English local authority is compared with other authorities over
two to four comparable pre-years (KS2 was reformed in 2016; there were no tests in 2020 and
2021). Four things decide whether such a comparison can be trusted, and this module holds the
rules for each; :mod:`cpdimpact.comparison._synthetic` calls them from a few hooks.

- **Donor pool** (:func:`pool_rows`): which areas may serve as comparisons, given as a list,
  as a table of statistical neighbours (one row per treated area and neighbour) or as "same
  value of a column as the treated area" (region). The areas left out are named in the result.
- **Covariates for synthetic DiD** (:func:`residualise_on_covariates`): the outcome net of
  time-varying covariates, :math:`Y_{it} - X_{it}'\hat\beta`, with :math:`\hat\beta` from a
  two-way fixed-effects regression on the untreated cells only (Arkhangelsky et al. 2021,
  section 8; the "projected" covariates of Clarke, Pailañir, Athey & Imbens 2024).
- **The exact-fit statement** (:func:`pre_fit_statement`): whether the pre-period fit is exact
  and, in plain English, what that means for the evaluation.
- **Held-out pre-years** (:func:`pseudo_post_rows`, :func:`holdout_table`): the rows for a
  pseudo-post-period check and the tidy table of its result.

References
----------
Arkhangelsky, D., Athey, S., Hirshberg, D. A., Imbens, G. W. & Wager, S. (2021). Synthetic
difference-in-differences. *American Economic Review* 111(12), 4088-4118.

Clarke, D., Pailañir, D., Athey, S. & Imbens, G. (2024). On synthetic difference-in-differences
and related estimation methods in Stata. *The Stata Journal* 24(4), 557-598.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cpdimpact.errors import (
    ArgumentTypeError,
    EmptyComparisonGroupError,
    InvalidArgumentError,
    InvalidValueError,
    MissingColumnError,
    TooFewPreYearsError,
    format_rows,
    format_value,
)

__all__ = [
    "EXACT_FIT_THRESHOLD",
    "holdout_table",
    "normalise_pool",
    "pool_notes",
    "pool_rows",
    "pre_fit_statement",
    "pseudo_post_rows",
    "residualise_on_covariates",
]

#: The pre-period fit counts as exact when its root mean squared error is below this share of
#: the standard deviation of the outcome over all areas and pre-period years.
EXACT_FIT_THRESHOLD = 1e-3


# --------------------------------------------------------------------------------------------
# Donor pools
# --------------------------------------------------------------------------------------------


def normalise_pool(pool: Any, columns: Sequence[str]) -> tuple | None:
    """The ``donor_pool`` option as an immutable value: ``None``, a tuple of areas, or for a
    table a tuple of ``(treated, donor)`` pairs (a spec stays hashable and the table is
    copied). An area is never a tuple, so the two forms cannot be confused."""
    if pool is None:
        return None
    if isinstance(pool, pd.DataFrame):
        if len(columns) != 2 or not all(isinstance(c, str) for c in columns):
            raise InvalidArgumentError(
                "donor_pool_columns needs two column names: the treated area's and its "
                f"donor's, e.g. ('la_code', 'neighbour_code'); got {columns!r}."
            )
        missing = [c for c in columns if c not in pool.columns]
        if missing:
            raise MissingColumnError(
                f"the donor_pool table has no column(s) {missing}; found {list(pool.columns)}. "
                "Pass donor_pool_columns=(treated_area_column, donor_column) to name yours."
            )
        blank = pool.index[pool[list(columns)].isna().any(axis=1)]
        if len(blank):
            raise InvalidValueError(
                f"the donor_pool table has a missing area in {format_rows(blank)}; every row "
                "names a treated area and one of its donors."
            )
        pairs = tuple(zip(pool[columns[0]].tolist(), pool[columns[1]].tolist(), strict=True))
        return pairs
    if isinstance(pool, str) or not isinstance(pool, Sequence | np.ndarray | pd.Index):
        raise InvalidArgumentError(
            "donor_pool takes a list of donor areas or a table (DataFrame) with one row per "
            f"treated area and donor; got {type(pool).__name__}."
        )
    return tuple(pool)


def pool_rows(
    data: pd.DataFrame,
    *,
    unit: str,
    treatment: str,
    pool: tuple | None,
    within: str | None,
) -> tuple[pd.Series | None, tuple]:
    """The rows of the areas in the donor pool (and every treated area), and the donor areas
    left out of it in the data's order.

    Returns ``(None, ())`` when there is no pool, or when the columns it needs are absent (the
    panel's own checks then name the problem).
    """
    if (pool is None and within is None) or not isinstance(data, pd.DataFrame):
        return None, ()
    if unit not in data.columns or treatment not in data.columns:
        return None, ()
    flag = pd.to_numeric(data[treatment], errors="coerce") == 1
    treated = list(pd.unique(data.loc[flag, unit]))
    if not treated:
        return None, ()
    areas = [a for a in pd.unique(data[unit]) if not pd.isna(a)]
    candidates = [a for a in areas if a not in set(treated)]
    allowed = set(candidates)
    how = []
    if pool is not None:
        if pool and isinstance(pool[0], tuple):  # a table: (treated, donor) pairs
            listed = {}
            for tr, donor in pool:
                listed.setdefault(tr, []).append(donor)
            without = [a for a in treated if a not in listed]
            if without:
                raise InvalidValueError(
                    f"the donor_pool table lists no donors for the treated area(s) "
                    f"{_join(without)}; add their rows (treated area, donor), or pass "
                    "the donors as a list."
                )
            named = [d for tr in treated for d in listed[tr]]
            how.append("the statistical neighbours listed for the treated area")
        else:
            named = list(pool)
            how.append("the donor_pool list")
        unknown = [d for d in dict.fromkeys(named) if d not in set(areas)]
        if unknown:
            raise InvalidValueError(
                f"the donor pool names {len(unknown)} area(s) that are not in column {unit!r} "
                f"of the data: {_join(unknown)}; correct the codes (they must be spelled "
                "as in the data) or remove them from the pool."
            )
        allowed &= set(named)
    if within is not None:
        if not isinstance(within, str):
            raise ArgumentTypeError(
                f"donors_within takes the name of one column (e.g. 'region'); got {within!r}."
            )
        if within not in data.columns:
            raise MissingColumnError(
                f"donors_within={within!r} is not a column of the data; found {list(data.columns)}."
            )
        per_area = data.groupby(unit, sort=False)[within].nunique(dropna=False)
        varying = per_area.index[per_area > 1]
        if len(varying):
            rows = data.index[data[unit].isin(varying)]
            raise InvalidValueError(
                f"column {within!r} changes over the years within area(s) "
                f"{_join(list(varying))} ({format_rows(rows)}); donors_within needs one "
                "value per area (e.g. its region)."
            )
        value = data.drop_duplicates(unit).set_index(unit)[within]
        no_value = [a for a in treated if pd.isna(value[a])]
        if no_value:
            raise InvalidValueError(
                f"column {within!r} is missing for the treated area(s) {_join(no_value)}; "
                "fill it so its donors can be chosen."
            )
        wanted = {value[a] for a in treated}
        allowed &= {a for a in candidates if not pd.isna(value[a]) and value[a] in wanted}
        how.append(f"the areas with the treated area's {within} ({_join(sorted(wanted, key=str))})")
    kept = [a for a in candidates if a in allowed]
    if len(kept) < 2:
        raise EmptyComparisonGroupError(
            f"the donor pool ({' and '.join(how)}) leaves {len(kept)} donor area(s)"
            + (f" ({_join(kept)})" if kept else "")
            + "; synthetic control needs at least two. Widen the pool: more statistical "
            "neighbours, a larger region (or donors_within=None), or an explicit list."
        )
    excluded = tuple(a for a in candidates if a not in allowed)
    keep = ~data[unit].isin(excluded)
    return keep, excluded


def pool_notes(excluded: tuple) -> tuple[str, ...]:
    """The summary note naming the donor areas outside the pool (none when none were)."""
    if not excluded:
        return ()
    return (f"Donor pool: {len(excluded)} area(s) outside the pool left out ({_names(excluded)}).",)


def _names(areas: Sequence, limit: int = 10) -> str:
    shown = ", ".join(str(a) for a in areas[:limit])
    more = len(areas) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _join(values: Sequence) -> str:
    return ", ".join(format_value(v) for v in values)


# --------------------------------------------------------------------------------------------
# Covariates for synthetic DiD
# --------------------------------------------------------------------------------------------


def residualise_on_covariates(
    data: pd.DataFrame,
    Y: np.ndarray,
    *,
    areas: Sequence,
    years: Sequence,
    n_donors: int,
    n_pre: int,
    unit: str,
    time: str,
    covariates: Sequence[str],
) -> tuple[np.ndarray, dict[str, float]]:
    r"""The outcome matrix net of covariates, :math:`Y_{it} - X_{it}'\hat\beta`, and
    :math:`\hat\beta` by covariate.

    :math:`\hat\beta` is the coefficient of :math:`X` in the least-squares fit of
    :math:`Y_{it} = \alpha_i + \gamma_t + X_{it}'\beta + \varepsilon_{it}` on the untreated
    cells (every donor year, the treated areas' pre-period years), so the programme's effect
    cannot leak into it. Rows of ``Y`` are ``areas`` (donors first), columns ``years``.
    """
    missing = [c for c in covariates if c not in data.columns]
    if missing:
        raise MissingColumnError(
            f"covariate column(s) {missing} not in the data; found {list(data.columns)}."
        )
    used = data[data[unit].isin(set(areas)) & data[time].isin(set(years))]
    X = np.empty((len(covariates), *Y.shape))
    for k, name in enumerate(covariates):
        values = pd.to_numeric(used[name], errors="coerce")
        bad = used.index[values.isna() | ~np.isfinite(values.fillna(0.0))]
        if len(bad):
            raise InvalidValueError(
                f"covariate {name!r} is missing or not a finite number in {format_rows(bad)}; "
                "synthetic DiD with covariates needs every area and year (fill them, or drop "
                "the area)."
            )
        wide = (
            pd.DataFrame({"a": used[unit], "t": used[time], "x": values})
            .pivot(index="a", columns="t", values="x")
            .reindex(index=list(areas), columns=list(years))
        )
        X[k] = wide.to_numpy(float)
    untreated = np.ones(Y.shape, dtype=bool)
    untreated[n_donors:, n_pre:] = False
    rows, cols = np.nonzero(untreated)
    # Two-way fixed effects by Frisch-Waugh: partial the area and year dummies out of the
    # outcome and each covariate, then regress the one on the others.
    D = np.hstack(
        [np.eye(Y.shape[0])[rows], np.eye(Y.shape[1])[cols][:, 1:]]
    )  # area dummies, year dummies less the first

    def partial(v: np.ndarray) -> np.ndarray:
        coef, *_ = np.linalg.lstsq(D, v, rcond=None)
        return v - D @ coef

    y_r = partial(Y[rows, cols])
    X_r = np.column_stack([partial(X[k][rows, cols]) for k in range(len(covariates))])
    scale = np.array([max(np.std(X[k][rows, cols]), 1e-300) for k in range(len(covariates))])
    absorbed = [
        c for c, s, col in zip(covariates, scale, X_r.T, strict=True) if np.std(col) <= 1e-9 * s
    ]
    if absorbed:
        raise InvalidValueError(
            f"covariate(s) {absorbed} do not change within areas over the years beyond what "
            "changes for every area alike, so the area and year effects absorb them and they "
            "cannot adjust the outcome. Use a time-varying covariate (e.g. each year's FSM "
            "share), or match on a fixed one with SyntheticControl(predictors=...) or "
            "donors_within=."
        )
    if np.linalg.matrix_rank(X_r / scale) < len(covariates):
        raise InvalidValueError(
            f"covariates {list(covariates)} are collinear once area and year effects are "
            "removed; drop one of them."
        )
    beta, *_ = np.linalg.lstsq(X_r, y_r, rcond=None)
    adjusted = Y - np.tensordot(beta, X, axes=1)
    return adjusted, {c: float(b) for c, b in zip(covariates, beta, strict=True)}


# --------------------------------------------------------------------------------------------
# The exact-fit statement
# --------------------------------------------------------------------------------------------


def pre_fit_statement(
    *,
    method: str,
    pre_gap: np.ndarray,
    Y_pre: np.ndarray,
    n_donors: int,
    n_equations: int,
    treated: Sequence,
    first_treated: Any,
) -> tuple[bool, str]:
    """Whether the pre-period fit is exact, and what the fit means for the evaluation in words.

    Exact: the root mean squared pre-period gap is below :data:`EXACT_FIT_THRESHOLD` times the
    standard deviation of the outcome over every area and pre-period year.
    """
    rmse = float(np.sqrt(np.mean(np.asarray(pre_gap) ** 2)))
    spread = float(np.std(Y_pre, ddof=1)) if Y_pre.size > 1 else 0.0
    relative = rmse / spread if spread > 0 else float("inf")
    exact = bool(relative < EXACT_FIT_THRESHOLD)
    name = ", ".join(str(a) for a in treated)
    T0 = Y_pre.shape[1]
    fit = (
        f"The comparison reproduces {name}'s outcomes in the {T0} years before "
        f"{first_treated} exactly (root mean squared gap {rmse:.2g}, under "
        f"{EXACT_FIT_THRESHOLD:.1%} of the spread of outcomes across areas)"
        if exact
        else f"The comparison misses {name}'s outcomes in the {T0} years before "
        f"{first_treated} by {rmse:.3g} on average (root mean square; "
        f"{relative:.1%} of the spread of outcomes across areas)"
    )
    if method == "did":
        return exact, (
            fit + ". Difference-in-differences does not try to match the pre-period; it "
            "assumes the treated area would have moved in parallel with the average "
            "comparison area."
        )
    many = n_donors > n_equations
    if exact and many:
        meaning = (
            f". This is not evidence that the comparison is right: with {n_donors} comparison "
            f"areas and only {n_equations} figures to match, many different mixes of areas fit "
            "the past exactly, and they can disagree about what would have happened after the "
            "start. Read the estimate as one of several that fit equally well: compare it with "
            "synthetic DiD and DiD, and check how well the comparison predicts pre-years it was "
            "not fitted to (a held-out-years check)."
        )
    elif exact:
        meaning = (
            ". With at least as many figures to match as comparison areas an exact fit is "
            "unusual; it suggests the comparison tracks the treated area closely, but check "
            "how it predicts pre-years it was not fitted to (a held-out-years check)."
        )
    elif many and method == "sc":
        # synthetic DiD's ridge penalty pins its weights down; synthetic control's does not
        meaning = (
            f". With {n_donors} comparison areas and {n_equations} figures to match, the "
            "weights need not be unique. The estimate is only as good as this fit: a gap of "
            "this size before the start could also open after it without any programme. Check "
            "how the comparison predicts pre-years it was not fitted to (a held-out-years "
            "check)."
        )
    else:
        meaning = (
            ". The estimate is only as good as this fit: a gap of this size before the start "
            "could also open after it without any programme."
        )
    return exact, fit + meaning


# --------------------------------------------------------------------------------------------
# Held-out pre-years (pseudo-post-period cross-validation)
# --------------------------------------------------------------------------------------------


def pseudo_post_rows(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    treatment: str,
    treated: Sequence,
    pre_years: Sequence,
    holdout: int,
) -> tuple[pd.DataFrame, tuple]:
    """The pre-period rows with the treated area's last ``holdout`` pre-years marked as
    programme years: a pretend programme that did not happen. Returns the rows (a copy) and
    the held-out years."""
    n_pre = len(pre_years)
    if n_pre - holdout < 2:
        raise TooFewPreYearsError(
            f"holding out {holdout} of the {n_pre} pre-period years "
            f"({', '.join(str(y) for y in pre_years)}) leaves {n_pre - holdout} to fit on; at "
            "least 2 are needed. Hold out fewer years"
            + (" (holdout=1)" if holdout > 1 and n_pre >= 3 else "")
            + (
                "; with 2 pre-period years there is nothing to hold out: say in the report "
                "that the fit could not be checked out of sample"
                if n_pre <= 2
                else ""
            )
            + "."
        )
    held = tuple(pre_years[n_pre - holdout :])
    rows = data.loc[data[time].isin(set(pre_years))].copy()
    flag = rows[unit].isin(set(treated)) & rows[time].isin(set(held))
    rows[treatment] = flag.astype(int)
    return rows, held


def holdout_table(
    results: Mapping[str, Any], held: tuple, *, by_year: bool = False
) -> pd.DataFrame:
    """The tidy table of a pseudo-post-period check from each method's fit on the pretend rows.

    One row per method: ``method, label, n_fit_years, holdout_years, pseudo_effect,
    holdout_rmse, holdout_max_abs_gap, fit_rmse``; with ``by_year=True`` one row per method and
    held-out year: ``method, label, year, gap``.
    """
    if by_year:
        return pd.DataFrame(
            [
                {"method": m, "label": r.label, "year": year, "gap": float(gap)}
                for m, r in results.items()
                for year, gap in r.effect_by_year.items()
            ]
        )
    rows = []
    for m, r in results.items():
        gaps = r.effect_by_year.to_numpy(float)
        rows.append(
            {
                "method": m,
                "label": r.label,
                "n_fit_years": r.n_pre,
                "holdout_years": ", ".join(str(y) for y in held),
                "pseudo_effect": float(r.estimate),
                "holdout_rmse": float(np.sqrt(np.mean(gaps**2))),
                "holdout_max_abs_gap": float(np.max(np.abs(gaps))),
                "fit_rmse": float(r.pre_rmspe),
            }
        )
    return pd.DataFrame(rows)
