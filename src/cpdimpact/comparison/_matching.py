r"""Matching schools: nearest neighbour on the propensity score, Mahalanobis, coarsened exact.

Each method is a frozen specification whose ``fit(schools)`` returns a
:class:`~cpdimpact.comparison.ComparisonWeights` of ATT weights, following R MatchIt's
(Ho, Imai, King & Stuart 2011; version 4.5) conventions so that results can be checked against
it unit by unit:

* **treated** schools with a match have weight 1, unmatched ones 0;
* **matching without replacement or with replacement** (nearest neighbour): a comparison
  school matched to treated schools :math:`i` with :math:`k_i` matches each gets
  :math:`\sum_i 1/k_i`, then the comparison weights are scaled to sum to the number of
  comparison schools used;
* **strata** (coarsened exact matching): a comparison school in stratum :math:`s` gets
  :math:`n_{T,s}/n_{C,s}`, scaled in the same way.

Greedy nearest-neighbour matching (Rosenbaum & Rubin 1985) processes treated schools in order
of decreasing propensity score (MatchIt's ``m.order = "largest"``; ``"data"`` when matching with
replacement, where order does not matter). Each treated school takes the closest available
comparison school.

**Ties.** Distances computed in floating point carry rounding noise of a few units in the last
place, which changes with the BLAS build and thread count; a matched sample must not depend on
it. Two distances are therefore *tied* when they differ by at most :data:`TIE_TOLERANCE` times
the spread (range) of the distance over all schools, far above rounding noise and far below any
difference that matters. Ties are broken by a fixed rule: schools with tied scores are ordered
by their row in the table; when the closest comparison school below and the closest above a
treated school are tied, the one above wins (on exact ties MatchIt takes the one below, but
which of two tied schools it sees as closer depends on the last bit of its arithmetic; on
MatchIt's ``lalonde`` data the rule reproduces its published matches on every BLAS kernel
tested, see ``tests/test_comparison_matching.py``); for a distance matrix (Mahalanobis), the
tied school earliest in the table wins.
With ``ratio = k`` the matching runs in ``k`` rounds, each giving every treated school one more
match. A caliper (Austin 2011: 0.2 standard deviations of the logit of the propensity score) is
measured in standard deviations of the distance over all schools.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cpdimpact._validate import (
    check_bool,
    check_choice,
    check_number,
    check_positive_int,
    check_seed,
    resolve_seed,
)
from cpdimpact.errors import (
    ArgumentTypeError,
    DesignError,
    DuplicateRowsError,
    EmptyComparisonGroupError,
    EstimationError,
    InvalidArgumentError,
    InvalidValueError,
    format_rows,
    format_value,
)

from ._balance import balance_table, covariate_matrix, require_column, treatment_indicator
from ._result import ComparisonWeights

__all__ = [
    "NearestMatching",
    "MahalanobisMatching",
    "CoarsenedExactMatching",
    "propensity_score",
    "prepare_schools",
]

_ORDERS = ("largest", "smallest", "data", "random")

#: Relative tolerance under which two matching distances count as tied (times the range of the
#: distance over all schools). Rounding noise is about 1e-16 of it; see the module notes.
TIE_TOLERANCE = 1e-9


# ---------------------------------------------------------------------------- preparation
@dataclass(frozen=True)
class _Prepared:
    ids: pd.Index
    treated: np.ndarray
    covariates: tuple[str, ...]


def _normalise_covariates(covariates) -> tuple[str, ...]:
    if isinstance(covariates, str):
        return (covariates,)
    names = tuple(covariates)
    if not names:
        raise InvalidArgumentError("covariates must name at least one column of the schools table")
    if len(set(names)) != len(names):
        raise InvalidArgumentError(
            f"covariates are repeated: {format_value(names)}; list each column once."
        )
    return names


def prepare_schools(schools: pd.DataFrame, *, unit: str, treatment: str, covariates) -> _Prepared:
    """Check the schools table: unique ids, a 0/1 treatment with both groups, covariates."""
    if not isinstance(schools, pd.DataFrame):
        raise ArgumentTypeError(f"schools must be a pandas DataFrame, got {type(schools).__name__}")
    require_column(schools, unit, "school id", "unit")
    ids = schools[unit]
    if ids.isna().any():
        raise InvalidValueError(
            f"column {unit!r} (the school id) is missing at "
            f"{format_rows(schools.index[ids.isna().to_numpy()])}."
        )
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        raise DuplicateRowsError(
            f"the schools table must have one row per school, but {unit!r} repeats at "
            f"{format_rows(schools.index[dup])} (school {ids[dup].iloc[0]!r}). Aggregate to "
            "one row per school first (see school_characteristics)."
        )
    treated = treatment_indicator(schools, treatment)
    n1 = int(treated.sum())
    if n1 == 0 or n1 == len(treated):
        raise EmptyComparisonGroupError(
            f"column {treatment!r} marks {'no' if n1 == 0 else 'every'} school as treated; "
            "matching needs treated and comparison schools."
        )
    covariates = _normalise_covariates(covariates)
    if treatment in covariates or unit in covariates:
        raise InvalidArgumentError(
            f"the treatment ({format_value(treatment)}) and school id ({format_value(unit)}) "
            "columns cannot be covariates; remove them from covariates."
        )
    return _Prepared(pd.Index(ids.to_numpy(), name=unit), treated, covariates)


# ---------------------------------------------------------------------------- propensity
def _separating(X: np.ndarray, names: list[str], sources: list[str], t: np.ndarray) -> list[str]:
    """Covariates (or levels) that on their own split the groups completely or quasi-completely."""
    found = []
    for j, name in enumerate(names):
        x = X[:, j]
        lo1, hi1, lo0, hi0 = x[t].min(), x[t].max(), x[~t].min(), x[~t].max()
        if hi0 <= lo1 or hi1 <= lo0:  # ranges touch at most at one value
            binary = np.all((x == 0) | (x == 1))
            if binary:
                # a level held only by treated (or only by comparison) schools
                only = "treated" if hi0 <= lo1 else "comparison"
                found.append(f"{name} (held only by {only} schools)")
            else:
                side = "above" if hi0 <= lo1 else "below"
                edge = lo1 if hi0 <= lo1 else hi1
                found.append(
                    f"{name} (every treated school is {side} every comparison school, "
                    f"split at {edge:g})"
                )
    return found


def _logit_fit(Z: np.ndarray, t: np.ndarray, *, max_iter: int = 200):
    """Logistic regression by Newton-Raphson (iteratively reweighted least squares).

    Starts as R's ``glm`` (``mu = (y + 1/2)/2``) and stops when the relative change in
    deviance falls below 1e-12 (``glm`` stops at 1e-8). Returns ``(beta, eta, converged)``;
    under separation the coefficients diverge and ``converged`` may be False.
    """
    y = t.astype(float)
    beta = np.zeros(Z.shape[1])
    mu = (y + 0.5) / 2
    eta = np.log(mu / (1 - mu))
    dev_old = np.inf
    converged = False
    tiny = 1e-15
    for _ in range(max_iter):
        mu_c = np.clip(mu, tiny, 1 - tiny)
        w = mu_c * (1 - mu_c)
        z = eta + (y - mu_c) / w
        Zw = Z * w[:, None]
        try:
            beta_new = np.linalg.solve(Zw.T @ Z, Zw.T @ z)
        except np.linalg.LinAlgError:  # weights collapsed under separation
            break
        eta_new = Z @ beta_new
        if not np.all(np.isfinite(eta_new)):
            break
        mu_new = 1 / (1 + np.exp(-eta_new))
        mu_d = np.clip(mu_new, tiny, 1 - tiny)
        dev = -2 * float(np.sum(y * np.log(mu_d) + (1 - y) * np.log1p(-mu_d)))
        beta, eta, mu = beta_new, eta_new, mu_new
        if abs(dev - dev_old) / (abs(dev) + 0.1) < 1e-12:
            converged = True
            break
        dev_old = dev
    return beta, eta, converged


def _gram_rank(Z: np.ndarray) -> int:
    """Numerical rank of ``Z`` from the eigenvalues of its (small) Gram matrix."""
    eig = np.linalg.eigvalsh(Z.T @ Z / len(Z))
    return int((eig > eig.max() * 1e-10).sum())


def propensity_score(
    schools: pd.DataFrame, *, treatment: str, covariates, unit: str = "school"
) -> pd.Series:
    r"""Propensity score of each school from a logistic regression on the covariates.

    :math:`e(x) = P(T=1\mid x) = 1/(1+\exp(-x'\beta))` (Rosenbaum & Rubin 1983), with an
    intercept; a categorical covariate enters as 0/1 columns for its levels after the first.

    Raises
    ------
    DesignError
        When the groups are (quasi-)completely separated: some schools get fitted scores of 0
        or 1, so there is no overlap to match on. The message names the covariates that split
        the groups.
    """
    prep = prepare_schools(schools, unit=unit, treatment=treatment, covariates=covariates)
    eta = _linear_predictor(schools, prep)
    return pd.Series(1 / (1 + np.exp(-eta)), index=prep.ids, name="propensity_score")


def _linear_predictor(schools: pd.DataFrame, prep: _Prepared) -> np.ndarray:
    X, names, sources = covariate_matrix(schools, prep.covariates, drop_first=True)
    t = prep.treated
    # Standardised columns: the fit (and so the scores) do not depend on the covariates'
    # scale, and the normal equations below stay well conditioned.
    sd = X.std(axis=0)
    Z = np.column_stack([np.ones(len(t)), (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1)])
    rank = _gram_rank(Z)
    if rank < Z.shape[1]:
        constant = [n for j, n in enumerate(names) if np.ptp(X[:, j]) == 0]
        raise EstimationError(
            "the propensity-score covariates are collinear"
            + (f" ({', '.join(constant)} constant)" if constant else "")
            + f": the design has rank {rank} for {Z.shape[1]} columns. Leave out redundant "
            "covariates or levels."
        )
    culprits = _separating(X, names, sources, t)
    extreme = np.zeros(len(t), dtype=bool)
    if not culprits:
        beta, eta, converged = _logit_fit(Z, t)
        p = 1 / (1 + np.exp(-eta))
        extreme = (p < 1e-9) | (p > 1 - 1e-9)
        if extreme.any() or not converged:
            # separation by a combination of covariates: name the dominant coefficients
            scale = np.abs(beta[1:])  # columns are standardised
            top = np.argsort(-scale)[:3]
            culprits = [f"{names[j]} (standardised coefficient {scale[j]:.3g})" for j in top]
    if culprits:
        raise DesignError(
            "no overlap between treated and comparison schools: the propensity-score model "
            "separates the groups"
            + (
                f" ({int(extreme.sum())} schools get fitted scores of 0 or 1)"
                if extreme.any()
                else ""
            )
            + f". Separating covariates: {'; '.join(culprits)}. Matching cannot find "
            "comparable schools there: drop or coarsen these covariates, restrict the schools "
            "table to the region of common support, or match exactly on them."
        )
    return eta


# ---------------------------------------------------------------------------- weights
def _weights_from_matches(mm: np.ndarray, treated_idx: np.ndarray, n: int, control_mask):
    """MatchIt's weights from a match matrix (rows: treated; entries: unit index or -1).

    Each control gets the sum over its treated schools of 1/(matches of that treated school),
    added in the order MatchIt adds them (by treated row, then rank)."""
    got = mm >= 0
    per_row = got.sum(axis=1)
    r, c = np.nonzero(got)
    w = np.bincount(mm[r, c], weights=1.0 / per_row[r], minlength=n).astype(float)
    w[treated_idx[per_row > 0]] = 1.0
    cw = w[control_mask]
    total = cw.sum()
    if total > 0:
        w[control_mask] = cw * (cw > 0).sum() / total
    return w


def _weights_from_strata(stratum: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """ATT weights from strata (-1: unmatched): controls get n_T/n_C, scaled to their count."""
    w = np.zeros(len(stratum))
    used = stratum >= 0
    k = stratum.max() + 1 if used.any() else 0
    n_t = np.bincount(stratum[used & treated], minlength=k)
    n_c = np.bincount(stratum[used & ~treated], minlength=k)
    w[used & treated] = 1.0
    c = used & ~treated
    w[c] = n_t[stratum[c]] / n_c[stratum[c]]
    if c.any():
        w[c] *= c.sum() / w[c].sum()
    return w


def _subclass_from_matches(mm: np.ndarray, treated_idx: np.ndarray, n: int) -> np.ndarray:
    """Matched set of each unit (-1 when unused), numbered 1.. by the treated school's row."""
    got = mm >= 0
    rows = np.flatnonzero(got.any(axis=1))
    label = np.full(len(mm), -1)
    label[rows] = np.arange(1, len(rows) + 1)
    out = np.full(n, -1)
    out[treated_idx[rows]] = label[rows]
    r, c = np.nonzero(got)
    out[mm[r, c]] = label[r]
    return out


def _as_subclass(sub: np.ndarray, ids: pd.Index) -> pd.Series:
    values = pd.array(np.where(sub >= 0, sub, 0), dtype="Int64")
    values[sub < 0] = pd.NA
    return pd.Series(values, index=ids, name="subclass")


def _matches_frame(mm, dist_mm, treated_idx, ids) -> pd.DataFrame:
    rows_t, rows_r = np.nonzero(mm >= 0)
    order = np.lexsort((rows_r, rows_t))
    rows_t, rows_r = rows_t[order], rows_r[order]
    return pd.DataFrame(
        {
            "treated": ids[treated_idx[rows_t]],
            "control": ids[mm[rows_t, rows_r]],
            "rank": rows_r + 1,
            "distance": dist_mm[rows_t, rows_r],
        }
    )


def _check_controls(n1: int, n0: int, ratio: int, replace: bool) -> None:
    if not replace and n0 < ratio * n1:
        raise DesignError(
            f"{ratio}:1 matching without replacement needs at least {ratio * n1} comparison "
            f"schools for {n1} treated schools, but there are {n0}. Match with replace=True, "
            f"lower the ratio (at most {max(n0 // n1, 0)}:1 here), or use entropy balancing."
        )


def _matching_sample(spec, schools: pd.DataFrame) -> tuple[_Prepared, np.ndarray, int]:
    """The prepared schools of a nearest-neighbour ``spec``, the treated mask and the number of
    treated schools, after checking that the comparison pool can serve ``spec.ratio``."""
    prep = prepare_schools(
        schools, unit=spec.unit, treatment=spec.treatment, covariates=spec.covariates
    )
    t = prep.treated
    n1 = int(t.sum())
    _check_controls(n1, int((~t).sum()), spec.ratio, spec.replace)
    return prep, t, n1


def _from_matches(mm: np.ndarray, t: np.ndarray, replace: bool, ids):
    """The treated rows, MatchIt's weights and (without replacement) the matched sets as
    subclasses, from the match matrix ``mm`` of a nearest-neighbour matching."""
    treated_idx = np.flatnonzero(t)
    w = _weights_from_matches(mm, treated_idx, len(t), ~t)
    subclass = (
        None if replace else _as_subclass(_subclass_from_matches(mm, treated_idx, len(t)), ids)
    )
    return treated_idx, w, subclass


def _check_ratio(ratio) -> int:
    return check_positive_int(ratio, "ratio", hint=" It is k for k:1 matching.")


def _all_dropped(n1: int, caliper, width) -> None:
    raise EmptyComparisonGroupError(
        f"the caliper of {caliper} SD (width {width:.4g} on the distance) leaves none of the "
        f"{n1} treated schools with a comparison school inside it; 0 of {n1} matched. Widen "
        "the caliper (Austin 2011 suggests 0.2 SD of the logit propensity score) or review "
        "the covariates: treated and comparison schools may barely overlap."
    )


def _finish(
    method,
    spec,
    schools,
    prep,
    w,
    *,
    distance=None,
    subclass=None,
    matches=None,
    notes=(),
    diagnostics=None,
) -> ComparisonWeights:
    n1 = int(prep.treated.sum())
    matched_t = int((w[prep.treated] > 0).sum())
    notes = list(notes)
    if matched_t < n1:
        notes.append(
            f"{n1 - matched_t} of {n1} treated schools found no match and get weight 0; the "
            "estimate then applies to the matched treated schools only."
        )
    balance = balance_table(
        schools, treatment=spec.treatment, covariates=list(prep.covariates), weights=w
    )
    return ComparisonWeights(
        method=method,
        unit=spec.unit,
        weights=pd.Series(w, index=prep.ids, name="weight"),
        treated=pd.Series(prep.treated, index=prep.ids, name="treated"),
        balance=balance,
        spec=spec,
        distance=None if distance is None else pd.Series(distance, index=prep.ids, name="distance"),
        subclass=subclass,
        matches=matches,
        notes=tuple(notes),
        diagnostics=dict(diagnostics or {}),
    )


# ---------------------------------------------------------------------------- ties
def tie_tolerance(d: np.ndarray) -> float:
    """Absolute tolerance under which two of the distances ``d`` count as tied."""
    spread = float(np.ptp(d)) if len(d) else 0.0
    return TIE_TOLERANCE * (spread if spread > 0 else 1.0)


def _tie_aware_order(d: np.ndarray, tol: float) -> np.ndarray:
    """Indices that sort ``d`` ascending, with tied values (chains of neighbours at most
    ``tol`` apart) in table order: the same permutation whatever the rounding noise."""
    by_value = np.argsort(d, kind="stable")
    gaps = np.diff(d[by_value]) > tol
    tie_group = np.empty(len(d), dtype=np.int64)
    tie_group[by_value] = np.concatenate(([0], np.cumsum(gaps)))
    return np.lexsort((np.arange(len(d)), tie_group))


# ---------------------------------------------------------------------------- nearest on a score
def _treated_order(d1: np.ndarray, order: str, rng) -> np.ndarray:
    if order == "largest":
        return _tie_aware_order(-d1, tie_tolerance(d1))
    if order == "smallest":
        return _tie_aware_order(d1, tie_tolerance(d1))
    if order == "random":
        return rng.permutation(len(d1))
    return np.arange(len(d1))


def _find(parent: np.ndarray, i: int) -> int:
    """Union-find 'next available' lookup with path compression (``parent[i] == i``: free)."""
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        parent[i], i = root, parent[i]
    return root


def _nearest_on_score(d, treated, ratio, replace, caliper_width, order_t):
    """Greedy nearest-neighbour matching on a scalar distance, as MatchIt's nn_matchC_vec.

    Returns the match matrix (treated rows in table order, ``ratio`` columns, unit indices or
    -1) and the absolute distance of each match.
    """
    n = len(d)
    tol = tie_tolerance(d)
    sort = _tie_aware_order(d, tol)
    is_c_sorted = ~treated[sort]
    controls = sort[is_c_sorted]  # unit indices of controls in distance order
    cd = d[controls]
    n0 = len(controls)
    # position of each treated school among the sorted controls: controls before it
    before = np.cumsum(is_c_sorted) - is_c_sorted
    split = np.empty(n, dtype=np.int64)
    split[sort] = before
    treated_idx = np.flatnonzero(treated)
    n1 = len(treated_idx)
    mm = np.full((n1, ratio), -1, dtype=np.int64)
    dist = np.full((n1, ratio), np.nan)
    cal = np.inf if caliper_width is None else caliper_width
    if replace:
        # every treated school takes its nearest controls; the r matched so far form a
        # contiguous block [lo, hi) of the sorted controls around its position
        dt = d[treated_idx]
        lo = split[treated_idx].copy()
        hi = lo.copy()
        for r in range(ratio):
            has_l, has_r = lo > 0, hi < n0
            dl = np.where(has_l, np.abs(dt - cd[np.maximum(lo - 1, 0)]), np.inf)
            dr = np.where(has_r, np.abs(cd[np.minimum(hi, n0 - 1)] - dt), np.inf)
            ok_l, ok_r = has_l & (dl <= cal), has_r & (dr <= cal)
            take_l = ok_l & (~ok_r | (dl < dr - tol))  # a tie goes to the school above
            take_r = ok_r & ~take_l
            pos = np.where(take_l, lo - 1, hi)
            got = take_l | take_r
            mm[got, r] = controls[pos[got]]
            dist[got, r] = np.where(take_l, dl, dr)[got]
            lo = lo - take_l
            hi = hi + take_r
        return mm, dist
    # without replacement: union-find over sorted controls for the next free one each side
    left = np.arange(n0 + 1)  # left[j+1] -> free index <= j, via sentinel 0 meaning none
    right = np.arange(n0 + 1)  # right[j] -> free index >= j; n0 is the sentinel
    rows_of = np.arange(n1)
    remaining = n0
    for r in range(ratio):
        for row in order_t:
            if remaining == 0:
                return mm, dist
            i = treated_idx[rows_of[row]]
            p = split[i]
            di = d[i]
            a = _find(left, p) - 1  # free control index on the left (or -1)
            b = _find(right, p)  # free control index on the right (or n0)
            dl = abs(di - cd[a]) if a >= 0 else np.inf
            dr = abs(cd[b] - di) if b < n0 else np.inf
            ok_l, ok_r = dl <= cal, dr <= cal
            if ok_l and (not ok_r or dl < dr - tol):
                k, dk = a, dl
            elif ok_r:
                k, dk = b, dr
            else:
                continue
            mm[row, r] = controls[k]
            dist[row, r] = dk
            left[k + 1] = k  # k+1 now points to k (i.e. 'free <= k-1')
            right[k] = k + 1
            remaining -= 1
    return mm, dist


@dataclass(frozen=True, kw_only=True)
class NearestMatching:
    r"""Greedy nearest-neighbour matching of schools on the propensity score.

    Parameters
    ----------
    covariates
        Columns of the schools table for the propensity-score model (pre-period attainment
        level and trend, FSM share, size, phase...). Text columns enter as 0/1 levels.
    treatment
        Column marking treated schools (0/1 or True/False).
    unit
        School id column (unique per row).
    distance
        ``"logit"`` (default): match on the logit of the propensity score, as Rosenbaum &
        Rubin (1985) and Austin (2011) recommend; ``"probability"``: on the score itself
        (MatchIt's default, ``distance = "glm"``).
    ratio
        Comparison schools per treated school (k:1).
    replace
        Match with replacement (a comparison school may serve several treated schools).
    caliper
        Maximum distance of a match in standard deviations of the distance over all schools
        (MatchIt's ``std.caliper = TRUE``); ``None`` for none. Treated schools without a
        comparison school inside the caliper are dropped (weight 0) and counted.
    order
        Order in which treated schools choose: ``"largest"`` propensity score first (MatchIt's
        default), ``"smallest"``, ``"data"`` (table order) or ``"random"`` (uses ``seed``).
        Ignored with replacement, where every treated school gets its nearest neighbours
        whatever the order.
    seed
        Seed for ``order="random"``: an int, a numpy ``SeedSequence`` (``n`` and
        ``SeedSequence(n)`` give the same order) or ``Generator`` (drawn from), or ``None``.

    Notes
    -----
    The propensity score :math:`e(x)=P(T=1\mid x)` is estimated by logistic regression
    (Rosenbaum & Rubin 1983); conditioning on it balances the covariates in expectation. The
    distance between schools :math:`i, j` is :math:`|\operatorname{logit} e(x_i) -
    \operatorname{logit} e(x_j)|` (or on the probability scale). The greedy algorithm and
    the weights are MatchIt's (Ho et al. 2011), see :mod:`cpdimpact.comparison._matching`;
    Stuart (2010) reviews the choices. Austin (2011, *Pharmaceutical Statistics* 10) found a
    caliper of 0.2 SD of the logit score removes most bias with little loss of precision.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.comparison import NearestMatching
    >>> rng = np.random.default_rng(1)
    >>> schools = pd.DataFrame({"school": range(200), "level": rng.normal(size=200)})
    >>> schools["treated"] = rng.random(200) < 1 / (1 + np.exp(1 + schools["level"]))
    >>> m = NearestMatching(covariates=["level"], caliper=0.2).fit(schools)
    >>> int(m.weights[schools["school"][schools["treated"]]].min()) in (0, 1)
    True
    """

    covariates: Sequence[str]
    treatment: str = "treated"
    unit: str = "school"
    distance: str = "logit"
    ratio: int = 1
    replace: bool = False
    caliper: float | None = None
    order: str = "largest"
    seed: int | np.random.SeedSequence | np.random.Generator | None = None

    def __post_init__(self):
        object.__setattr__(self, "covariates", _normalise_covariates(self.covariates))
        check_choice(self.distance, "distance", ("logit", "probability"))
        _check_ratio(self.ratio)
        check_bool(self.replace, "replace")
        check_choice(self.order, "order", _ORDERS)
        if self.caliper is not None:
            check_number(
                self.caliper,
                "caliper",
                minimum=0,
                strict=True,
                hint=" It is in SDs of the distance (0.2 is common); None for no caliper.",
            )
        check_seed(self.seed)

    def fit(self, schools: pd.DataFrame) -> ComparisonWeights:
        """Match the treated schools of ``schools`` (one row per school); see the class."""
        prep, t, n1 = _matching_sample(self, schools)
        eta = _linear_predictor(schools, prep)
        d = eta if self.distance == "logit" else 1 / (1 + np.exp(-eta))
        width = None
        if self.caliper is not None:
            width = float(self.caliper * np.std(d, ddof=1))
        order = "data" if self.replace else self.order
        rng = resolve_seed(self.seed) if order == "random" else None
        order_t = _treated_order(d[t], order, rng)
        mm, dist = _nearest_on_score(d, t, self.ratio, self.replace, width, order_t)
        if (mm[:, 0] < 0).all():
            _all_dropped(n1, self.caliper, width)
        treated_idx, w, subclass = _from_matches(mm, t, self.replace, prep.ids)
        notes = []
        if width is not None:
            notes.append(f"caliper {self.caliper} SD = {width:.4g} on the {self.distance} scale")
        short = int(((mm >= 0).sum(axis=1) < self.ratio).sum() - (mm[:, 0] < 0).sum())
        if short:
            notes.append(f"{short} matched treated schools got fewer than {self.ratio} matches")
        return _finish(
            "nearest",
            self,
            schools,
            prep,
            w,
            distance=d,
            subclass=subclass,
            matches=_matches_frame(mm, dist, treated_idx, prep.ids),
            notes=notes,
            diagnostics={"caliper_width": width, "order": order},
        )


# ---------------------------------------------------------------------------- Mahalanobis
def _constant_columns(X: np.ndarray) -> np.ndarray:
    """Columns that do not vary across schools (left out of the distance, as MatchIt does)."""
    return np.ptp(X, axis=0) < np.sqrt(np.finfo(float).eps)


def _whiten(X: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Rows mapped so that Euclidean distance is the Mahalanobis distance under the pooled
    within-group covariance (as MatchIt and Rubin 1980); constant columns are left out."""
    X = X[:, ~_constant_columns(X)]
    X = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    centred = X.copy()
    for g in (t, ~t):
        centred[g] -= X[g].mean(axis=0)
    S = centred.T @ centred / (len(X) - 2)
    inv = np.linalg.pinv(S) if np.linalg.det(S) <= 1e-8 else np.linalg.inv(S)
    eigval, eigvec = np.linalg.eigh((inv + inv.T) / 2)
    root = eigvec * np.sqrt(np.clip(eigval, 0, None))
    return X @ root


def _nearest_on_matrix(Z, t, ratio, replace, order_t):
    """MatchIt's nn_matchC on whitened covariates: first minimum in table order."""
    treated_idx = np.flatnonzero(t)
    controls = np.flatnonzero(~t)
    n1 = len(treated_idx)
    mm = np.full((n1, ratio), -1, dtype=np.int64)
    dist = np.full((n1, ratio), np.nan)
    Zc = Z[controls]
    # one tolerance for the whole matching: the spread of the coordinates sets the scale
    tol = tie_tolerance(Z.ravel())
    if replace:
        for row in order_t:
            dd = np.sqrt(((Zc - Z[treated_idx[row]]) ** 2).sum(axis=1))
            pick = _tie_aware_order(dd, tol)[:ratio]
            mm[row, : len(pick)] = controls[pick]
            dist[row, : len(pick)] = dd[pick]
        return mm, dist
    free = np.ones(len(controls), dtype=bool)
    for r in range(ratio):
        for row in order_t:
            if not free.any():
                return mm, dist
            dd = np.sqrt(((Zc - Z[treated_idx[row]]) ** 2).sum(axis=1))
            dd[~free] = np.inf
            k = int(np.argmax(dd <= dd.min() + tol))  # the first of the tied nearest
            mm[row, r] = controls[k]
            dist[row, r] = dd[k]
            free[k] = False
    return mm, dist


@dataclass(frozen=True, kw_only=True)
class MahalanobisMatching:
    r"""Greedy nearest-neighbour matching of schools on the Mahalanobis distance.

    Parameters
    ----------
    covariates
        Columns of the schools table; text columns become 0/1 columns for their levels
        after the first.
    treatment, unit
        Treatment indicator and school id columns.
    ratio, replace
        k:1 matching, with or without replacement.
    order
        ``"data"`` (default, MatchIt's for a distance without a propensity score) or
        ``"random"`` (uses ``seed``).
    seed
        Seed for ``order="random"`` (as :class:`NearestMatching`).

    Notes
    -----
    .. math:: d(i,j) = \sqrt{(x_i-x_j)' S^{-1} (x_i-x_j)},

    with :math:`S` the pooled within-group covariance matrix of the covariates (Rubin 1980;
    MatchIt 4). Constant covariates are left out. Each treated school in turn takes the
    nearest available comparison school (the first in table order on a tie); with
    ``ratio = k`` the matching runs in ``k`` rounds. Weights as MatchIt (see
    :class:`NearestMatching`).
    """

    covariates: Sequence[str]
    treatment: str = "treated"
    unit: str = "school"
    ratio: int = 1
    replace: bool = False
    order: str = "data"
    seed: int | np.random.SeedSequence | np.random.Generator | None = None

    def __post_init__(self):
        object.__setattr__(self, "covariates", _normalise_covariates(self.covariates))
        _check_ratio(self.ratio)
        check_bool(self.replace, "replace")
        check_choice(self.order, "order", ("data", "random"))
        check_seed(self.seed)

    def fit(self, schools: pd.DataFrame) -> ComparisonWeights:
        """Match the treated schools of ``schools`` (one row per school); see the class."""
        prep, t, n1 = _matching_sample(self, schools)
        X, names, _ = covariate_matrix(schools, prep.covariates, drop_first=True)
        constant = [name for name, c in zip(names, _constant_columns(X), strict=True) if c]
        if len(constant) == len(names):
            raise DesignError(
                f"every covariate is the same for all schools ({', '.join(constant)}), so "
                "there is nothing to match on and the matches would follow table order. "
                "Choose covariates that differ between schools (pre-period attainment, FSM "
                "share, size)."
            )
        Z = _whiten(X, t)
        rng = resolve_seed(self.seed) if self.order == "random" else None
        order_t = _treated_order(np.zeros(n1), self.order, rng)
        mm, dist = _nearest_on_matrix(Z, t, self.ratio, self.replace, order_t)
        treated_idx, w, subclass = _from_matches(mm, t, self.replace, prep.ids)
        return _finish(
            "mahalanobis",
            self,
            schools,
            prep,
            w,
            subclass=subclass,
            matches=_matches_frame(mm, dist, treated_idx, prep.ids),
            notes=[
                f"left out of the distance because they are the same for every school: "
                f"{', '.join(constant)}"
            ]
            if constant
            else [],
        )


# ---------------------------------------------------------------------------- CEM
def _sturges(n: int) -> int:
    return int(math.ceil(math.log2(n) + 1))


def _breaks(x: np.ndarray, rule) -> np.ndarray:
    if isinstance(rule, str):
        if rule != "sturges":
            raise InvalidArgumentError(
                f"cutpoints rule must be 'sturges', a number of bins or cut points, got {rule!r}"
            )
        rule = _sturges(len(x))
    if np.ndim(rule) == 0:
        bins = int(rule)
        lo, hi = float(x.min()), float(x.max())
        by = (hi - lo) / bins
        inner = lo + np.arange(1, bins) * by  # as R's seq(min, max, length = bins + 1)
        return np.concatenate([[-np.inf], inner, [np.inf]])
    cuts = np.unique(np.asarray(rule, dtype=float))
    return np.concatenate([[-np.inf], cuts, [np.inf]])


@dataclass(frozen=True, kw_only=True)
class CoarsenedExactMatching:
    r"""Coarsened exact matching of schools (Iacus, King & Porro 2012).

    Each numeric covariate is cut into bins; schools are matched exactly on the bins (and on
    the levels of text covariates). Strata holding both treated and comparison schools are
    kept; the rest get weight 0 (treated schools there are dropped and counted).

    Parameters
    ----------
    covariates
        Columns of the schools table.
    cutpoints
        Per numeric covariate: ``"sturges"`` (default: :math:`\lceil\log_2 n + 1\rceil` equal
        bins between the minimum and maximum, as MatchIt and ``cem``), a number of equal bins,
        a sequence of cut points (bins ``[c_j, c_{j+1})``), or ``0`` for no coarsening (exact
        matching on the values). Covariates not named use ``"sturges"``.
    treatment, unit
        Treatment indicator and school id columns.

    Notes
    -----
    Within stratum :math:`s` with :math:`n_{T,s}` treated and :math:`n_{C,s}` comparison
    schools, comparison schools get weight :math:`n_{T,s}/n_{C,s}`, rescaled so that the
    comparison weights sum to the number of comparison schools kept; treated schools get 1
    (MatchIt's ATT weights; Iacus, King & Porro 2012, *Political Analysis* 20(1)).
    """

    covariates: Sequence[str]
    cutpoints: Mapping[str, object] = field(default_factory=dict)
    treatment: str = "treated"
    unit: str = "school"

    def __post_init__(self):
        object.__setattr__(self, "covariates", _normalise_covariates(self.covariates))
        unknown = set(self.cutpoints) - set(self.covariates)
        if unknown:
            raise InvalidArgumentError(
                f"cutpoints names {sorted(unknown)}, which are not covariates "
                f"{list(self.covariates)}; name only covariates in cutpoints."
            )

    def fit(self, schools: pd.DataFrame) -> ComparisonWeights:
        """Coarsen, stratify and weight ``schools`` (one row per school); see the class."""
        prep = prepare_schools(
            schools, unit=self.unit, treatment=self.treatment, covariates=self.covariates
        )
        covariate_matrix(schools, prep.covariates, drop_first=False)  # checks missing values
        t = prep.treated
        codes = []
        for column in prep.covariates:
            series = schools[column]
            rule = self.cutpoints.get(column, "sturges")
            numeric = pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
            if not numeric or (np.ndim(rule) == 0 and not isinstance(rule, str) and rule == 0):
                codes.append(pd.factorize(series, sort=True)[0])
                continue
            x = series.to_numpy(dtype=float)
            codes.append(np.searchsorted(_breaks(x, rule), x, side="right"))
        keys = pd.MultiIndex.from_arrays(codes) if len(codes) > 1 else pd.Index(codes[0])
        cell = pd.factorize(keys)[0]
        has_t = np.bincount(cell[t], minlength=cell.max() + 1) > 0
        has_c = np.bincount(cell[~t], minlength=cell.max() + 1) > 0
        both = has_t & has_c
        if not both.any():
            raise EmptyComparisonGroupError(
                f"no stratum of the coarsened covariates holds both treated and comparison "
                f"schools ({int(has_t.sum())} strata with treated, {int(has_c.sum())} with "
                "comparison schools). Coarsen further (fewer bins) or match on fewer covariates."
            )
        kept_cells = np.flatnonzero(both)
        stratum = np.where(both[cell], np.searchsorted(kept_cells, cell), -1)
        w = _weights_from_strata(stratum, t)
        return _finish(
            "cem",
            self,
            schools,
            prep,
            w,
            subclass=_as_subclass(np.where(stratum >= 0, stratum + 1, -1), prep.ids),
            diagnostics={"strata": int(both.sum()), "strata_all": int(len(has_t))},
        )
