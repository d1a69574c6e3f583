"""The Cox partial likelihood with Efron or Breslow ties, case weights and score residuals.

Vectorised over the distinct times: the risk-set sums are reverse cumulative sums, and Efron's
correction is one term per spell ending in the event (its rank among the tied events), so the
work is O(n p^2) per Newton step whatever the number of ties. The arithmetic follows R
``survival``'s ``coxph`` (``coxfit6`` and ``coxscore``) so that estimates, the information and
the robust variance agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cpdimpact.errors import EstimationError

__all__ = ["CoxFit", "fit_cox"]

#: Convergence: relative change of the log partial likelihood (coxph's default ``eps``).
EPS = 1e-9
MAX_ITER = 30


@dataclass(frozen=True)
class CoxFit:
    """Coefficients, information, log-likelihoods and score residuals of one fit."""

    beta: np.ndarray
    information: np.ndarray
    loglik: float
    loglik_null: float
    iterations: int
    score_residuals: np.ndarray


class _Design:
    """The sorted data and what does not change between Newton steps."""

    def __init__(self, time, event, weight, x, efron: bool):
        order = np.argsort(time, kind="stable")
        self.order = order
        self.x = x[order] - x.mean(axis=0)  # centred, as coxph, for exp() to stay in range
        self.w = weight[order]
        self.dead = event[order] > 0
        times, self.where = np.unique(time[order], return_inverse=True)
        self.k = times.size
        p = x.shape[1]
        self.p = p
        dead_rows = np.flatnonzero(self.dead)
        self.dead_rows = dead_rows
        group = self.where[dead_rows]
        self.group = group
        m = np.bincount(group, minlength=self.k).astype(float)
        start = np.searchsorted(group, np.arange(self.k))
        rank = np.arange(dead_rows.size) - start[group]
        self.f = rank / m[group] if efron else np.zeros(dead_rows.size)
        wd = np.bincount(group, weights=self.w[dead_rows], minlength=self.k)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.meanwt = np.where(m > 0, wd / np.maximum(m, 1), 0.0)[group]
        self.pairs = [(a, b) for a in range(p) for b in range(a, p)]

    def _reverse(self, values: np.ndarray) -> np.ndarray:
        """Sum over the risk set of every distinct time: spells lasting at least that long."""
        per_time = np.bincount(self.where, weights=values, minlength=self.k)
        return np.cumsum(per_time[::-1])[::-1]

    def _dead_sum(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.group, weights=values[self.dead_rows], minlength=self.k)

    def terms(self, beta: np.ndarray):
        """Per event row: the denominator, the weighted mean ``a`` of x, and the sums needed."""
        eta = self.x @ beta
        r = np.exp(eta)
        rw = self.w * r
        x = self.x
        g = self.group
        s0 = self._reverse(rw)[g]
        e0 = self._dead_sum(rw)[g]
        denom = s0 - self.f * e0
        s1 = np.column_stack([self._reverse(rw * x[:, a]) for a in range(self.p)])[g]
        e1 = np.column_stack([self._dead_sum(rw * x[:, a]) for a in range(self.p)])[g]
        a = (s1 - self.f[:, None] * e1) / denom[:, None]
        return eta, r, rw, denom, a

    def loglik(self, beta: np.ndarray) -> float:
        eta, _, _, denom, _ = self.terms(beta)
        d = self.dead_rows
        return float(np.sum(self.w[d] * eta[d]) - np.sum(self.meanwt * np.log(denom)))

    def derivatives(self, beta: np.ndarray):
        """Log partial likelihood, score and information at ``beta``."""
        eta, _, rw, denom, a = self.terms(beta)
        d, g, x = self.dead_rows, self.group, self.x
        loglik = float(np.sum(self.w[d] * eta[d]) - np.sum(self.meanwt * np.log(denom)))
        score = (self.w[d, None] * x[d]).sum(axis=0) - (self.meanwt[:, None] * a).sum(axis=0)
        info = np.zeros((self.p, self.p))
        for i, j in self.pairs:
            xx = x[:, i] * x[:, j]
            s2 = self._reverse(rw * xx)[g]
            e2 = self._dead_sum(rw * xx)[g]
            second = (s2 - self.f * e2) / denom
            info[i, j] = info[j, i] = np.sum(self.meanwt * (second - a[:, i] * a[:, j]))
        return loglik, score, info

    def score_residuals(self, beta: np.ndarray) -> np.ndarray:
        """Each spell's score residual (unweighted; summing ``w_i L_i`` gives the score), in the
        caller's row order: ``delta_i (x_i - abar) - r_i sum_k c_ik h_k (x_i - a_k)`` with
        Efron's share ``c_ik = 1 - k/m`` for the tied events themselves (coxph's coxscore)."""
        _, r, _, denom, a = self.terms(beta)
        h = self.meanwt / denom
        g, k, x = self.group, self.k, self.x
        share = 1.0 - self.f

        def per_time(values):
            return np.bincount(g, weights=values, minlength=k)

        big_h = per_time(h)
        big_a = np.column_stack([per_time(h * a[:, j]) for j in range(self.p)])
        own_h = per_time(share * h)
        own_a = np.column_stack([per_time(share * h * a[:, j]) for j in range(self.p)])
        m = np.bincount(g, minlength=k).astype(float)
        abar = (
            np.column_stack([per_time(a[:, j]) for j in range(self.p)]) / np.maximum(m, 1)[:, None]
        )
        cum_h, cum_a = np.cumsum(big_h), np.cumsum(big_a, axis=0)
        t = self.where
        before_h = cum_h[t] - big_h[t]
        before_a = cum_a[t] - big_a[t]
        dead = self.dead
        # censored at t: at risk at every event time up to and including t
        use_h = np.where(dead, before_h + own_h[t], cum_h[t])
        use_a = np.where(dead[:, None], before_a + own_a[t], cum_a[t])
        resid = -r[:, None] * (x * use_h[:, None] - use_a)
        resid[dead] += x[dead] - abar[t[dead]]
        out = np.empty_like(resid)
        out[self.order] = resid
        return out


def fit_cox(
    time: np.ndarray, event: np.ndarray, weight: np.ndarray, x: np.ndarray, *, efron: bool
) -> CoxFit:
    """Maximise the weighted log partial likelihood by Newton-Raphson with step halving.

    Raises
    ------
    cpdimpact.errors.EstimationError
        No event at all, or the information is singular (a covariate constant among the
        spells, or one that separates leavers from stayers) or the iterations do not converge.
    """
    if not np.any(event > 0):
        raise EstimationError(
            "no spell ends in the event: with no teacher leaving there is no hazard to "
            "compare. Check the event column (1 = left)."
        )
    design = _Design(time, event, weight, x, efron)
    beta = np.zeros(x.shape[1])
    loglik, score, info = design.derivatives(beta)
    null = loglik
    iterations = 0
    for _ in range(MAX_ITER):
        iterations += 1
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError as exc:
            raise EstimationError(
                "the Cox information matrix is singular: a covariate does not vary among the "
                "spells or is collinear with others. Remove it."
            ) from exc
        new = beta + step
        new_loglik = design.loglik(new)
        halvings = 0
        while not np.isfinite(new_loglik) or new_loglik < loglik - 1e-12 * abs(loglik):
            halvings += 1
            if halvings > 30:
                break
            new = (beta + new) / 2
            new_loglik = design.loglik(new)
        converged = abs(new_loglik - loglik) <= EPS * abs(new_loglik)
        beta = new
        loglik, score, info = design.derivatives(beta)
        if converged:
            break
    else:
        raise EstimationError(
            f"the Cox model did not converge in {MAX_ITER} iterations: a covariate (or the "
            "treatment) may separate leavers from stayers, so that its hazard ratio is "
            "infinite. Check that both arms have leavers."
        )
    if not np.all(np.isfinite(beta)) or np.linalg.matrix_rank(info) < info.shape[0]:
        raise EstimationError(
            "the Cox model has no finite estimate: a covariate or the treatment separates "
            "leavers from stayers (or is constant). Check that both arms have leavers."
        )
    return CoxFit(
        beta=beta,
        information=info,
        loglik=loglik,
        loglik_null=null,
        iterations=iterations,
        score_residuals=design.score_residuals(beta),
    )
