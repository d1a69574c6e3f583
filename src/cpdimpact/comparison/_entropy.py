r"""Entropy balancing of comparison schools (Hainmueller 2012).

Comparison schools are reweighted so that their weighted covariate moments equal the treated
schools' moments exactly, with weights as close as possible (in Kullback-Leibler divergence)
to base weights :math:`q_c` (uniform unless given):

.. math::

    \min_{w}\ \sum_{c} w_c \log\frac{w_c}{q_c}
    \quad\text{s.t.}\quad \sum_c w_c\, g(x_c) = \bar g_T,\quad \sum_c w_c = 1,\quad w_c \ge 0,

where :math:`g(x)` holds the covariates (and, with ``moments=2``, the squares of the non-binary
ones, so that variances match too) and :math:`\bar g_T` their treated means. The solution has
the form :math:`w_c \propto q_c \exp(\lambda' (g(x_c)-\bar g_T))`; :math:`\lambda` minimises the
convex dual

.. math:: L(\lambda) = \log \sum_c q_c \exp\{\lambda'(g(x_c) - \bar g_T)\},

whose gradient is the weighted moment imbalance :math:`\sum_c w_c (g(x_c)-\bar g_T)` and whose
Hessian is the weighted covariance of :math:`g`. Newton's method with a backtracking line
search solves it in a few iterations (Hainmueller 2012, *Political Analysis* 20(1), section 3).
The constraints are solvable only when the treated moments lie inside the convex hull of the
comparison schools' :math:`g(x_c)`; otherwise the dual is unbounded and the fit raises an error
naming the covariates still out of balance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cpdimpact._validate import check_choice, check_number, check_positive_int
from cpdimpact.errors import (
    DesignError,
    EstimationError,
    InvalidValueError,
    format_rows,
)

from ._balance import covariate_matrix
from ._matching import _finish, _gram_rank, _normalise_covariates, prepare_schools

__all__ = ["EntropyBalancing", "entropy_weights"]


def _log_sum_exp(a: np.ndarray) -> float:
    top = a.max()
    return float(top + np.log(np.exp(a - top).sum()))


def entropy_weights(
    G: np.ndarray,
    target: np.ndarray,
    *,
    base: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
):
    """Solve the entropy-balancing dual by Newton's method with backtracking.

    Parameters
    ----------
    G
        Moment functions of the comparison units, one row each (already scaled).
    target
        Target means of the columns of ``G``.
    base
        Base weights (positive); uniform when ``None``.
    tol
        Stop when every weighted mean is within ``tol`` of its target.
    max_iter
        Newton iterations before giving up.

    Returns
    -------
    tuple
        ``(weights summing to 1, lambda, iterations, max_abs_gap, converged)``.
    """
    n, k = G.shape
    C = G - target
    logq = np.zeros(n) if base is None else np.log(base / base.sum())
    lam = np.zeros(k)

    def objective(lam):
        return _log_sum_exp(logq + C @ lam)

    f = objective(lam)
    gap = np.inf
    for it in range(1, max_iter + 1):
        a = logq + C @ lam
        p = np.exp(a - a.max())
        p /= p.sum()
        grad = p @ C
        gap = float(np.max(np.abs(grad)))
        if gap < tol:
            return p, lam, it - 1, gap, True
        H = (C * p[:, None]).T @ C - np.outer(grad, grad)
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, grad, rcond=None)[0]
        slope = float(grad @ step)
        if slope < 1e-13 * (1 + abs(f)):
            # The predicted decrease of the dual is below its rounding: Armijo cannot judge a
            # step any more. Near the optimum Newton converges quadratically, so take the full
            # step when it shrinks the imbalance (the gradient); otherwise stop.
            new = lam - step
            a_new = logq + C @ new
            p_new = np.exp(a_new - a_new.max())
            if float(np.max(np.abs((p_new / p_new.sum()) @ C))) < gap:
                lam, f = new, objective(new)
                continue
            break
        # Armijo backtracking on the (convex) dual
        t = 1.0
        while True:
            new = lam - t * step
            f_new = objective(new)
            if f_new <= f - 1e-4 * t * slope or t < 1e-12:
                break
            t /= 2
        if t < 1e-12:  # no progress possible: infeasible or numerically stuck
            break
        lam, f = new, f_new
    a = logq + C @ lam
    p = np.exp(a - a.max())
    p /= p.sum()
    gap = float(np.max(np.abs(p @ C)))
    return p, lam, max_iter, gap, gap < tol


@dataclass(frozen=True, kw_only=True)
class EntropyBalancing:
    r"""Entropy balancing: comparison-school weights whose moments equal the treated schools'.

    Parameters
    ----------
    covariates
        Columns of the schools table to balance (text columns as 0/1 levels).
    treatment, unit
        Treatment indicator and school id columns.
    moments
        ``1``: balance means (default); ``2``: means and variances (adds the squares of the
        non-binary covariates as constraints).
    base_weights
        Optional column of positive base weights :math:`q_c` for the comparison schools
        (e.g. pupil numbers); uniform by default.
    tol
        Largest allowed difference between a weighted comparison mean and the treated mean,
        in standard deviations of the covariate over all schools.
    max_iter
        Newton iterations before the fit fails.

    Notes
    -----
    See :mod:`cpdimpact.comparison._entropy` for the programme and its dual (Hainmueller 2012,
    *Political Analysis* 20(1): 25-46). Weights are for the ATT: treated schools 1, comparison
    schools :math:`n_C w_c` (so they average 1); every comparison school keeps a positive
    weight, so none is dropped. Exact balance on the chosen moments says nothing about other
    moments or interactions: check the balance table and the effective number of comparison
    schools (:attr:`ComparisonWeights.effective_n_control`); a small one means a few schools
    carry the comparison.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.comparison import EntropyBalancing
    >>> rng = np.random.default_rng(2)
    >>> schools = pd.DataFrame({"school": range(300), "level": rng.normal(size=300),
    ...                         "fsm_share": rng.uniform(0, 0.5, 300)})
    >>> schools["treated"] = rng.random(300) < 1 / (1 + np.exp(1 - schools["level"]))
    >>> eb = EntropyBalancing(covariates=["level", "fsm_share"]).fit(schools)
    >>> after = eb.balance[eb.balance["sample"] == "after"]
    >>> bool(np.abs(after["treated_mean"] - after["control_mean"]).max() < 1e-8)
    True
    """

    covariates: Sequence[str]
    treatment: str = "treated"
    unit: str = "school"
    moments: int = 1
    base_weights: str | None = None
    tol: float = 1e-10
    max_iter: int = 200

    def __post_init__(self):
        object.__setattr__(self, "covariates", _normalise_covariates(self.covariates))
        check_choice(self.moments, "moments", (1, 2))
        check_number(self.tol, "tol", minimum=0, strict=True)
        check_positive_int(self.max_iter, "max_iter")

    def fit(self, schools: pd.DataFrame):
        """Weight the comparison schools of ``schools`` (one row per school); see the class."""
        prep = prepare_schools(
            schools, unit=self.unit, treatment=self.treatment, covariates=self.covariates
        )
        t = prep.treated
        X, names, _ = covariate_matrix(schools, prep.covariates, drop_first=True)
        cols, labels = [X], list(names)
        if self.moments == 2:
            # squares of the centred, scaled covariates: the same constraint set as raw
            # squares (given the means), but not nearly collinear with the means when a
            # covariate's mean is large against its spread
            binary = np.all((X == 0) | (X == 1), axis=0)
            Xn = X[:, ~binary]
            spread = Xn.std(axis=0)
            cols.append(((Xn - Xn.mean(axis=0)) / np.where(spread > 0, spread, 1)) ** 2)
            labels += [f"{n}^2" for n, b in zip(names, binary, strict=True) if not b]
        raw = np.column_stack(cols)
        scale = raw.std(axis=0)
        constant = scale == 0
        if constant.any():
            raise InvalidValueError(
                f"covariates {[labels[j] for j in np.flatnonzero(constant)]} are constant across "
                "schools; leave them out."
            )
        G = (raw - raw.mean(axis=0)) / scale
        target = G[t].mean(axis=0)
        Gc = G[~t]
        base = None
        if self.base_weights is not None:
            if self.base_weights not in schools.columns:
                raise InvalidValueError(
                    f"base_weights column {self.base_weights!r} is not in the schools table"
                )
            q = schools[self.base_weights].to_numpy(dtype=float)[~t]
            bad = ~np.isfinite(q) | (q <= 0)
            if bad.any():
                raise InvalidValueError(
                    f"base_weights {self.base_weights!r} must be positive for every comparison "
                    f"school, but is not at {format_rows(schools.index[~t][bad])}."
                )
            base = q
        # quick infeasibility check: a treated mean outside the comparison schools' range
        lo, hi = Gc.min(axis=0), Gc.max(axis=0)
        outside = (target < lo - 1e-12) | (target > hi + 1e-12)
        if outside.any():
            rc = raw[~t]
            detail = "; ".join(
                f"{labels[j]} (treated mean {raw[t, j].mean():.4g}, comparison schools "
                f"{rc[:, j].min():.4g} to {rc[:, j].max():.4g})"
                for j in np.flatnonzero(outside)
            )
            raise DesignError(
                "entropy balancing is infeasible: the treated mean of "
                f"{detail} lies outside the range of the comparison schools, so no weighting "
                "of them can match it. Drop or coarsen these covariates, or find comparison "
                "schools that cover the treated schools' range."
            )
        k = _gram_rank(np.column_stack([np.ones(len(Gc)), Gc - Gc.mean(axis=0)]))
        if k < Gc.shape[1] + 1:
            raise EstimationError(
                f"the balancing constraints are collinear among the comparison schools (rank "
                f"{k} for {Gc.shape[1] + 1}); leave out redundant covariates or levels "
                f"({', '.join(labels)})."
            )
        p, lam, iterations, gap, converged = entropy_weights(
            Gc, target, base=base, tol=self.tol, max_iter=self.max_iter
        )
        if not converged:
            imbalance = np.abs(p @ (Gc - target))
            worst = np.argsort(-imbalance)[:3]
            shown = ", ".join(f"{labels[j]} ({imbalance[j]:.3g} SD)" for j in worst)
            raise DesignError(
                f"entropy balancing did not reach balance within {self.max_iter} iterations "
                f"(largest remaining gap {gap:.3g} SD; worst: {shown}). The treated moments "
                "are (nearly) outside what the comparison schools can reach: balance fewer "
                "moments (moments=1), coarsen or drop these covariates, or trim treated schools "
                "without comparable schools."
            )
        n0 = int((~t).sum())
        w = np.ones(len(t))
        w[~t] = p * n0
        q = np.full(n0, 1 / n0) if base is None else base / base.sum()
        kl = float(np.sum(p * np.log(p / q)))
        return _finish(
            "entropy",
            self,
            schools,
            prep,
            w,
            notes=(f"moments balanced: {', '.join(labels)}",),
            diagnostics={
                "iterations": iterations,
                "max_moment_gap_sd": gap,
                "kl_divergence": kl,
                "converged": converged,
            },
        )
