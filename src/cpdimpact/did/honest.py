r"""How robust is an event-study conclusion to violations of parallel trends?

Rambachan & Roth (2023) replace "parallel trends holds exactly" by "the post-programme
difference in trends is not too different from the pre-programme one", and report confidence
intervals that stay valid under that weaker assumption for a range of its strength. The
evaluator reads off the *breakdown value*: how large a violation the conclusion survives.

With event-study coefficients :math:`\hat\beta = (\hat\beta_{pre}', \hat\beta_{post}')'`
relative to a reference period (normalised to zero), :math:`\hat\beta \approx N(\tau + \delta,
\Sigma)` where :math:`\tau_{pre} = 0` and :math:`\delta` is the difference in trends. The target
is :math:`\theta = l'\tau_{post}`. Two restrictions on :math:`\delta` are offered:

Relative magnitudes, :math:`\Delta^{RM}(\bar M)`
    post-programme period-on-period changes of :math:`\delta` are at most :math:`\bar M` times
    the largest pre-programme one,
    :math:`|\delta_{t+1} - \delta_t| \le \bar M \max_{s<0} |\delta_{s+1} - \delta_s|`
    for :math:`t \ge 0`. Confidence set: the conditional-least-favourable hybrid test of
    Andrews, Roth & Pakes (ARP) inverted over :math:`\theta` (``method="C-LF"``) for each of
    the polyhedra whose union is :math:`\Delta^{RM}`.
Smoothness, :math:`\Delta^{SD}(M)`
    the slope of :math:`\delta` changes by at most :math:`M` between consecutive periods,
    :math:`|(\delta_{t+1} - \delta_t) - (\delta_t - \delta_{t-1})| \le M`; :math:`M = 0` is
    a linear trend extrapolated from the pre-periods. Confidence set: the optimal fixed-length
    confidence interval (FLCI) of Armstrong & Kolesar (``method="FLCI"``).

Both are HonestDiD's defaults; see ``docs/honest.md`` for the equations and how to read the
result.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import optimize, special

from cpdimpact._results import EstimateResult, EventStudyEstimates, Summary
from cpdimpact._validate import check_alpha, check_choice
from cpdimpact.errors import (
    ArgumentTypeError,
    CpdImpactWarning,
    DesignError,
    InvalidArgumentError,
    InvalidValueError,
)

__all__ = ["SensitivityResult", "sensitivity", "sensitivity_from_estimates"]

RESTRICTIONS = ("relative_magnitude", "smoothness")
METHODS = {
    "smoothness": ("FLCI", "C-LF", "Conditional"),
    "relative_magnitude": ("C-LF", "Conditional"),
}
DEFAULT_METHOD = {"smoothness": "FLCI", "relative_magnitude": "C-LF"}
BOUND_NAME = {"smoothness": "M", "relative_magnitude": "Mbar"}

#: Draws for the least-favourable critical value of the hybrid test (HonestDiD uses 1,000);
#: antithetic, with a fixed seed so results are reproducible.
_LF_DRAWS = 10_000
_LF_SEED = 20230901
#: Grid points for the test inversion before each end point is refined by bisection.
_GRID_POINTS = 1000
#: Most candidate dual bases enumerated for the conditional test (about 10 post periods).
_MAX_BASES = 400_000


# --------------------------------------------------------------------------- the problem
@dataclass(frozen=True)
class _Problem:
    """Event-study coefficients (pre then post, reference omitted) and the target weights."""

    beta: np.ndarray
    sigma: np.ndarray
    n_pre: int
    weights: np.ndarray  # l, one per post period

    @property
    def n_post(self) -> int:
        return self.weights.size

    @property
    def estimate(self) -> float:
        return float(self.weights @ self.beta[self.n_pre :])

    @property
    def std_error(self) -> float:
        post = slice(self.n_pre, None)
        return float(np.sqrt(self.weights @ self.sigma[post, post] @ self.weights))


# --------------------------------------------------------------------------- normal helpers
def _folded_normal_quantile(t: float, alpha: float) -> float:
    """``cv_alpha(t)``: the ``1 - alpha`` quantile of ``|N(t, 1)|``."""
    t = abs(float(t))
    if t == 0:
        return float(special.ndtri(1 - alpha / 2))
    lo, hi = t + special.ndtri(1 - alpha), t + special.ndtri(1 - alpha / 2)

    def excess(c):
        return special.ndtr(c - t) - special.ndtr(-c - t) - (1 - alpha)

    if excess(lo) >= 0:
        return float(lo)
    return float(optimize.brentq(excess, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps))


def _folded_normal_slope(c: float, t: float) -> float:
    """``d cv / d t`` by the implicit function theorem."""
    a, b = np.exp(-0.5 * (c - t) ** 2), np.exp(-0.5 * (c + t) ** 2)
    return float((a - b) / (a + b))


def _truncnorm_quantile(p: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Quantile ``p`` of the standard normal truncated to ``[lo, hi]`` (vectorised, stable in
    either tail: computed in log space from the nearer tail)."""
    lo, hi = np.broadcast_arrays(np.asarray(lo, float), np.asarray(hi, float))
    out = np.empty(lo.shape)
    upper = lo > 0  # whole interval in the upper tail: work with survival functions
    with np.errstate(divide="ignore", invalid="ignore"):
        # lower tail form: Phi(q) = (1 - p) Phi(lo) + p Phi(hi)
        low_side = np.logaddexp(
            np.log1p(-p) + special.log_ndtr(lo), np.log(p) + special.log_ndtr(hi)
        )
        # upper tail form: Phi(-q) = (1 - p) Phi(-lo) + p Phi(-hi)
        up_side = np.logaddexp(
            np.log1p(-p) + special.log_ndtr(-lo), np.log(p) + special.log_ndtr(-hi)
        )
        out = np.where(
            upper,
            -special.ndtri_exp(np.minimum(up_side, 0.0)),
            special.ndtri_exp(np.minimum(low_side, 0.0)),
        )
    return np.clip(out, lo, hi)


# --------------------------------------------------------------------------- FLCI (Delta^SD)
def _flci(problem: _Problem, m: float, alpha: float) -> tuple[float, float]:
    r"""Optimal fixed-length confidence interval for :math:`\Delta^{SD}(M)`.

    Affine estimators :math:`v_{pre}'\hat\beta_{pre} + l'\hat\beta_{post}` with a finite worst-case
    bias satisfy :math:`\sum_t t\,v_t = 0` (unbiased under any linear trend). Writing
    :math:`\delta` through its slope and second differences :math:`a_k`, the bias is
    :math:`\sum_k a_k c_k(v)` with :math:`c_k = \sum_{t<k} v_t (k - t)` (:math:`k \le 0`) and
    :math:`c_k = \sum_{t>k} l_t (t - k)` (:math:`k \ge 1`), so the worst case over
    :math:`|a_k| \le M` is :math:`M \sum_k |c_k|`. The half-length
    :math:`h\,cv_\alpha(\text{bias}/h)` (:math:`h` the standard deviation) is jointly convex in
    :math:`v`; it is minimised with SLSQP on the epigraph of the absolute values.
    """
    T, P = problem.n_pre, problem.n_post
    lw = problem.weights
    scale = problem.std_error
    S = problem.sigma / scale**2
    m = m / scale
    s_pp, s_pq = S[:T, :T], S[:T, T:] @ lw
    s_qq = float(lw @ S[T:, T:] @ lw)
    t_pre = np.arange(-T, 0, dtype=float)
    rhs = -float(np.arange(1, P + 1) @ lw)
    # c_k(v) = K v for k = -T+1..0
    ks = np.arange(-T + 1, 1)
    K = np.clip(ks[:, None] - t_pre[None, :], 0, None)
    post_bias = sum(abs(float(lw[k:] @ np.arange(1, P - k + 1))) for k in range(1, P))

    # M = 0 (or T = 1): the minimum-variance estimator among those unbiased under linear trends.
    solve = np.linalg.solve
    a_inv = solve(s_pp, t_pre)
    b_inv = solve(s_pp, s_pq)
    lam = (rhs + t_pre @ b_inv) / (t_pre @ a_inv)
    v0 = lam * a_inv - b_inv

    def sd(v):
        return float(np.sqrt(v @ s_pp @ v + 2 * v @ s_pq + s_qq))

    def half(v):
        h = sd(v)
        return h * _folded_normal_quantile(m * (post_bias + np.abs(K @ v).sum()) / h, alpha)

    best_v, best = v0, half(v0)
    if m > 0 and T > 1:

        def objective(x):
            v, u = x[:T], x[T:]
            h = sd(v)
            t = m * (post_bias + u.sum()) / h
            c = _folded_normal_quantile(t, alpha)
            slope = _folded_normal_slope(c, t)
            grad_v = (c - t * slope) * (s_pp @ v + s_pq) / h
            grad_u = np.full(T, slope * m)
            return h * c, np.concatenate([grad_v, grad_u])

        eye = np.eye(T)
        constraints = [
            {
                "type": "eq",
                "fun": lambda x: t_pre @ x[:T] - rhs,
                "jac": lambda x: np.r_[t_pre, np.zeros(T)],
            },
            {
                "type": "ineq",
                "fun": lambda x: x[T:] - K @ x[:T],
                "jac": lambda x: np.hstack([-K, eye]),
            },
            {
                "type": "ineq",
                "fun": lambda x: x[T:] + K @ x[:T],
                "jac": lambda x: np.hstack([K, eye]),
            },
        ]
        v_min_bias = np.zeros(T)
        v_min_bias[-1] = -rhs  # all weight on the last pre-period: least extrapolation
        for start in (v0, v_min_bias):
            res = optimize.minimize(
                objective,
                np.concatenate([start, np.abs(K @ start)]),
                jac=True,
                method="SLSQP",
                constraints=constraints,
                options={"ftol": 1e-15, "maxiter": 1000},
            )
            v = res.x[:T]
            v = v + (rhs - t_pre @ v) * t_pre / (t_pre @ t_pre)  # exact feasibility
            value = half(v)
            if value < best:
                best_v, best = v, value
    centre = float(best_v @ problem.beta[:T] + lw @ problem.beta[T:])
    return centre - scale * best, centre + scale * best


# --------------------------------------------------------------------------- polyhedra
def _second_differences(T: int, P: int) -> np.ndarray:
    """Rows ``delta_{t+1} - 2 delta_t + delta_{t-1}`` for t = -T+1..P-1 (column of 0 dropped)."""
    n = T + P + 1
    D = np.zeros((n - 2, n))
    for r in range(n - 2):
        D[r, r : r + 3] = (1.0, -2.0, 1.0)
    return np.delete(D, T, axis=1)


def _smoothness_polyhedra(T: int, P: int, m: float) -> list[tuple[np.ndarray, np.ndarray]]:
    D = _second_differences(T, P)
    A = np.vstack([D, -D])
    return [(A, np.full(A.shape[0], float(m)))]


def _relative_magnitude_polyhedra(
    T: int, P: int, mbar: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    r""":math:`\Delta^{RM}(\bar M)` as the union over the pre-period difference :math:`s` that
    is largest and its sign: :math:`|\delta_{t+1} - \delta_t| \le \pm(\delta_s - \delta_{s-1})`
    before the programme and :math:`\le \pm\bar M(\delta_s - \delta_{s-1})` after it, for
    :math:`s = -T+1, \dots, 0` (every one of the :math:`T` pre-period differences)."""
    n = T + P + 1
    D = np.zeros((n - 1, n))
    for r in range(n - 1):
        D[r, r : r + 2] = (-1.0, 1.0)
    out = []
    for s in range(-T + 1, 1):
        for sign in (1.0, -1.0):
            v = np.zeros(n)
            v[T + s - 1], v[T + s] = -sign, sign  # delta_s - delta_{s-1}
            bound = np.vstack([np.tile(v, (T, 1)), np.tile(mbar * v, (P, 1))])
            A = np.vstack([D - bound, -D - bound])
            A = A[(A**2).sum(axis=1) > 1e-10]
            A = np.delete(A, T, axis=1)
            out.append((A, np.zeros(A.shape[0])))
    return out


def _polyhedra(restriction: str, T: int, P: int, bound: float):
    if restriction == "smoothness":
        return _smoothness_polyhedra(T, P, bound)
    return _relative_magnitude_polyhedra(T, P, bound)


def _identified_set(problem: _Problem, polyhedra) -> tuple[float, float]:
    """Union over polyhedra of ``{l'(beta_post - delta_post): A delta <= d, delta_pre = beta_pre}``
    at the estimated coefficients (NaN, NaN when every polyhedron is infeasible)."""
    T, P = problem.n_pre, problem.n_post
    c = np.r_[np.zeros(T), problem.weights]
    a_eq = np.hstack([np.eye(T), np.zeros((T, P))])
    lows, highs = [], []
    for A, d in polyhedra:
        ends = []
        for sense in (1.0, -1.0):
            res = optimize.linprog(
                sense * c,
                A_ub=A,
                b_ub=d,
                A_eq=a_eq,
                b_eq=problem.beta[:T],
                bounds=[(None, None)] * (T + P),
                method="highs",
            )
            if res.status == 3:
                ends.append(-np.inf)
            elif res.status != 0:
                break
            else:
                ends.append(res.fun)
        else:
            lows.append(problem.estimate + ends[1])  # minus the largest bias
            highs.append(problem.estimate - ends[0])  # minus the smallest bias
    if not lows:
        return float("nan"), float("nan")
    return float(min(lows)), float(max(highs))


# --------------------------------------------------------------------------- ARP tests
def _dual_vertices(X: np.ndarray, sd: np.ndarray) -> np.ndarray:
    r"""Vertices of :math:`\{\gamma \ge 0: X'\gamma = 0,\ \sigma'\gamma = 1\}`, one per row.

    The test statistic :math:`\min_\tau \max_j (Y - X\tau)_j/\sigma_j` is the largest
    :math:`\gamma'Y` over these vertices (linear-programming duality), which makes the
    statistic, the conditioning event of the conditional test and the least-favourable
    critical value exact and vectorised. Basic solutions are enumerated: supports of size
    ``k + 1`` (``k`` nuisance parameters)."""
    m, k = X.shape
    if k == 0:
        return np.diag(1.0 / sd)
    n_bases = math.comb(m, k + 1)
    if n_bases > _MAX_BASES:
        raise DesignError(
            f"the conditional test would enumerate {n_bases:,} candidate bases ({k + 1} post "
            "periods): too many. Restrict the post periods (e.g. aggregate('dynamic', max_e=...) "
            "or a binning window), or use restriction='smoothness' with method='FLCI'."
        )
    W = np.column_stack([X, sd])
    supports = np.array(list(combinations(range(m), k + 1)))
    B = np.transpose(W[supports], (0, 2, 1))  # (n, k+1, k+1): B gamma_S = e_last
    svals = np.linalg.svd(B, compute_uv=False)
    ok = svals[:, -1] > 1e-10 * svals[:, 0]
    e = np.zeros(k + 1)
    e[-1] = 1.0
    g = np.linalg.solve(B[ok], np.broadcast_to(e, (int(ok.sum()), k + 1))[..., None])[..., 0]
    keep = (g >= -1e-10).all(axis=1)
    vertices = np.zeros((int(keep.sum()), m))
    rows = np.repeat(np.arange(vertices.shape[0]), k + 1)
    vertices[rows, supports[ok][keep].ravel()] = np.clip(g[keep], 0, None).ravel()
    if vertices.shape[0] == 0:
        return vertices
    scale = np.abs(vertices).max()
    _, first = np.unique(np.round(vertices / scale, 9), axis=0, return_index=True)
    return vertices[np.sort(first)]


@functools.lru_cache(maxsize=8)
def _standard_normals(dim: int) -> np.ndarray:
    """The least-favourable simulation's draws: fixed seed, so results are reproducible, and
    antithetic, so flipping the sign of every coefficient flips the intervals exactly."""
    half = np.random.default_rng(_LF_SEED).standard_normal((dim, _LF_DRAWS // 2))
    draws = np.hstack([half, -half])  # antithetic: the +/- polyhedra get mirrored draws
    draws.flags.writeable = False
    return draws


@dataclass(frozen=True)
class _MomentTest:
    """The moment inequalities ``E[y0 - a*theta - X tau] <= 0`` of one polyhedron, prepared."""

    vy0: np.ndarray  # V y0
    va: np.ndarray  # V a
    q: np.ndarray  # V Sigma_Y V'
    lf_cv: float
    nuisance: bool

    @classmethod
    def build(cls, problem: _Problem, A: np.ndarray, d: np.ndarray, hybrid: bool, kappa: float):
        T, P = problem.n_pre, problem.n_post
        lw = problem.weights
        if P > 1:  # as HonestDiD: moments that involve post-period coefficients only
            rows = np.abs(A[:, T:]).sum(axis=1) > 0
            A, d = A[rows], d[rows]
        u = lw / (lw @ lw)  # any u with l'u = 1; the nuisance absorbs the rest
        basis = np.linalg.svd(lw[None, :])[2][1:].T  # null space of l'
        y0 = A @ problem.beta - d
        a = A[:, T:] @ u
        X = A[:, T:] @ basis
        sigma_y = A @ problem.sigma @ A.T
        sd = np.sqrt(np.clip(np.diag(sigma_y), 0, None))
        V = _dual_vertices(X, sd)
        if V.shape[0] == 0:
            return None  # statistic unbounded below: no value of theta is rejected
        lf_cv = np.inf
        if hybrid:
            root = np.linalg.cholesky(
                problem.sigma + 1e-14 * np.trace(problem.sigma) * np.eye(T + P)
            )
            draws = (V @ (A @ root)) @ _standard_normals(T + P)
            lf_cv = float(np.quantile(draws.max(axis=0), 1 - kappa))
        return cls(V @ y0, V @ a, V @ sigma_y @ V.T, lf_cv, P > 1)

    def accepts(self, theta: np.ndarray, alpha: float, hybrid: bool, kappa: float) -> np.ndarray:
        theta = np.atleast_1d(np.asarray(theta, dtype=float))
        vy = self.vy0[:, None] - self.va[:, None] * theta[None, :]
        best = vy.argmax(axis=0)
        cols = np.arange(theta.size)
        eta = vy[best, cols]
        var_b = self.q[best, best]
        rho = self.q[:, best] / var_b
        gs = vy - rho * eta
        denom = 1.0 - rho
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = gs / denom
        vlo = np.where(denom > 1e-10, ratio, -np.inf).max(axis=0)
        vup = np.where(denom < -1e-10, ratio, np.inf).min(axis=0)
        size = alpha
        reject = np.zeros(theta.size, dtype=bool)
        if hybrid:
            size = (alpha - kappa) / (1 - kappa)
            reject |= eta > self.lf_cv
            if self.nuisance:  # HonestDiD adds the first stage to the conditioning event here
                vup = np.minimum(vup, self.lf_cv)
        sd_b = np.sqrt(np.clip(var_b, 0, None))
        degenerate = sd_b < 1e-12
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = eta / sd_b
            zlo, zup = vlo / sd_b, vup / sd_b
        inside = (zlo <= stat + 1e-9) & (stat <= zup + 1e-9)
        cv = np.maximum(0.0, _truncnorm_quantile(1 - size, zlo, np.maximum(zup, zlo)))
        second = np.where(degenerate, eta > 0, inside & (stat > cv))
        return ~(reject | second)


def _grid_range(problem: _Problem, restriction: str, bound: float) -> tuple[float, float]:
    """A range that holds the identified set (cheap outer bound) plus 20 standard errors; the
    search widens it when the interval reaches an end."""
    T, P = problem.n_pre, problem.n_post
    lw, t = problem.weights, np.arange(1, P + 1)
    sd = problem.std_error
    if restriction == "relative_magnitude":
        changes = np.diff(np.r_[problem.beta[:T], 0.0])
        half = bound * float(np.abs(changes).max()) * float(t @ np.abs(lw))
        return problem.estimate - half - 20 * sd, problem.estimate + half + 20 * sd
    # smoothness: linear extrapolation of the last pre-period change, +- the curvature allowance
    v = np.zeros(T + P)
    v[T - 1], v[T:] = float(t @ lw), lw
    centre = float(v @ problem.beta)
    sd = max(sd, float(np.sqrt(v @ problem.sigma @ v)))
    half = bound * float(np.abs(lw) @ (t * (t + 1) / 2))
    return centre - half - 20 * sd, centre + half + 20 * sd


def _arp_interval(
    problem: _Problem, restriction: str, bound: float, alpha: float, hybrid: bool
) -> tuple[float, float]:
    """Invert the (hybrid) conditional test over theta: union over the polyhedra, reported as the
    smallest interval holding every accepted value (as HonestDiD). End points: located on a grid,
    then on finer grids between the last rejected and first accepted points (to 1e-10 SE)."""
    kappa = alpha / 10
    polyhedra = _polyhedra(restriction, problem.n_pre, problem.n_post, bound)
    tests = [t for A, d in polyhedra if (t := _MomentTest.build(problem, A, d, hybrid, kappa))]
    if len(tests) < len(polyhedra):
        return -np.inf, np.inf

    def accept(theta):
        out = np.zeros(theta.size, dtype=bool)
        for test in tests:
            out |= test.accepts(theta, alpha, hybrid, kappa)
        return out

    lo, hi = _grid_range(problem, restriction, bound)
    for _ in range(8):
        grid = np.linspace(lo, hi, _GRID_POINTS)
        ok = accept(grid)
        if not ok.any():
            return float("nan"), float("nan")
        first, last = np.flatnonzero(ok)[[0, -1]]
        if first > 0 and last < grid.size - 1:
            break
        width = hi - lo
        lo, hi = (lo - width if first == 0 else lo), (hi + width if last == grid.size - 1 else hi)
    else:
        return (-np.inf if first == 0 else float(grid[first])), (
            np.inf if last == grid.size - 1 else float(grid[last])
        )

    def refine(outside, inside):
        for _ in range(6):
            if abs(inside - outside) <= 1e-10 * problem.std_error:
                break
            fine = np.linspace(outside, inside, 201)
            hit = int(np.flatnonzero(accept(fine))[0])  # the last point always accepts
            outside, inside = fine[hit - 1], fine[hit]
        return float(inside)

    return refine(grid[first - 1], grid[first]), refine(grid[last + 1], grid[last])


def _robust_interval(problem: _Problem, restriction: str, bound: float, method: str, alpha: float):
    if method == "FLCI":
        return _flci(problem, bound, alpha)
    return _arp_interval(problem, restriction, bound, alpha, hybrid=(method == "C-LF"))


def _breakdown(problem, restriction, method, alpha, start: float) -> float | None:
    """Largest bound whose robust interval excludes zero: the root of the interval end nearest
    zero as a function of the bound (Brent's method, relative precision 1e-4). ``None`` if the
    bound-0 interval already includes zero, ``inf`` if no bound up to ``2**10 * start`` does."""
    lo, hi = _robust_interval(problem, restriction, 0.0, method, alpha)
    if not (lo > 0 or hi < 0):
        return None
    positive = lo > 0

    def margin(b):  # > 0 while the interval excludes zero (an empty interval does)
        lo, hi = _robust_interval(problem, restriction, b, method, alpha)
        value = float(lo) if positive else -float(hi)
        return 1e3 * problem.std_error if np.isnan(value) else max(value, -1e3 * problem.std_error)

    good, bad = 0.0, start
    while margin(bad) > 0:
        good, bad = bad, 2 * bad
        if bad > start * 2.0**10:
            return float("inf")
    root = optimize.brentq(margin, good, bad, xtol=1e-12, rtol=1e-4)
    return float(root) if margin(root) > 0 else float(root * (1 - 1e-4))


# --------------------------------------------------------------------------- the result
@dataclass(frozen=True, kw_only=True, eq=False)
class SensitivityResult(EstimateResult):
    r"""Robust confidence intervals for an event-study target over a range of restrictions.

    Attributes
    ----------
    restriction : str
        ``"relative_magnitude"`` (bound :math:`\bar M`) or ``"smoothness"`` (bound :math:`M`).
    method : str
        ``"C-LF"``, ``"Conditional"`` or ``"FLCI"``.
    table : pandas.DataFrame
        Columns ``bound, ci_lower, ci_upper, method``: first the conventional interval
        (``method="conventional"``, ``bound=0``: exact parallel trends), then one row per bound.
    breakdown : float or None
        Largest bound for which the robust interval excludes zero (to a relative 1e-4); ``None``
        when even the bound-0 robust interval includes zero, ``inf`` when no bound tried does.
    estimate, std_error : float
        The target :math:`l'\hat\beta_{post}` and its standard error.
    target : str
        What is estimated, in words; ``weights`` the vector :math:`l` over ``post_event_times``.
    pre_event_times, post_event_times : tuple of int
        Event times of the coefficients used; ``reference`` is the omitted one.
    alpha : float
        1 minus the confidence level.
    betahat, sigma : numpy.ndarray
        The coefficients (pre then post) and their covariance, as used.
    notes : tuple of str
        Warnings and choices made on the way (dropped binned ends, varying base period, ...).
    """

    restriction: str
    method: str
    table: pd.DataFrame
    breakdown: float | None
    estimate: float
    std_error: float
    target: str
    weights: tuple[float, ...]
    pre_event_times: tuple[int, ...]
    post_event_times: tuple[int, ...]
    reference: int
    alpha: float
    betahat: np.ndarray = field(repr=False)
    sigma: np.ndarray = field(repr=False)
    notes: tuple[str, ...] = ()

    @property
    def bound_name(self) -> str:
        """``"Mbar"`` or ``"M"``."""
        return BOUND_NAME[self.restriction]

    def _table(self, alpha: float) -> pd.DataFrame:
        """:attr:`table` at level ``alpha`` (recomputed from ``betahat`` and ``sigma``)."""
        if alpha == self.alpha:
            return self.table.copy()
        bounds = tuple(self.table["bound"].iloc[1:])
        return _compute(
            _Problem(self.betahat, self.sigma, len(self.pre_event_times), np.array(self.weights)),
            self.restriction,
            bounds,
            self.method,
            alpha,
            breakdown=False,
        )[0]

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """One term per row of the table (``conventional``, then ``Mbar=0.5``, ...): the target
        and its standard error, the conventional test, and each interval at ``alpha``."""
        table = self._table(alpha)
        terms = ["conventional"] + [f"{self.bound_name}={b:g}" for b in table["bound"].iloc[1:]]
        statistic = self.estimate / self.std_error
        conventional = table["method"].to_numpy() == "conventional"
        return pd.DataFrame(
            {
                "term": terms,
                "estimate": self.estimate,
                "std_error": self.std_error,
                "statistic": np.where(conventional, statistic, np.nan),
                "p_value": np.where(conventional, 2 * special.ndtr(-abs(statistic)), np.nan),
                "ci_lower": table["ci_lower"].to_numpy(dtype=float),
                "ci_upper": table["ci_upper"].to_numpy(dtype=float),
            }
        )

    def to_frame(self, alpha: float | None = None) -> pd.DataFrame:
        """The table: one row per bound (``bound, ci_lower, ci_upper, method``), conventional
        first; at level ``alpha`` when given (recomputed from ``betahat`` and ``sigma``)."""
        return self._table(self._level(alpha))

    def interpretation(self) -> str:
        """One sentence for an evaluator: what the breakdown value means."""
        if self.breakdown is None:
            return (
                f"The {1 - self.alpha:.0%} interval includes zero even under exact parallel trends "
                "(robust version), so there is no conclusion about the sign to stress-test."
            )
        sign = "positive" if self.table["ci_lower"].iloc[0] > 0 else "negative"
        if self.breakdown == float("inf"):
            return f"The effect stays {sign} for every bound tried."
        if self.restriction == "relative_magnitude":
            return (
                f"The effect stays {sign} unless post-programme trend differences are more than "
                f"{self.breakdown:.2g} times the largest pre-programme one (breakdown Mbar = "
                f"{self.breakdown:.3g})."
            )
        return (
            f"The effect stays {sign} unless the slope of the difference in trends changes by more "
            f"than {self.breakdown:.3g} outcome units per period between consecutive periods "
            f"(breakdown M = {self.breakdown:.3g})."
        )

    def summary(self) -> Summary:
        """Facts (target, restriction, method, breakdown) and the table."""
        conventional = self.table.iloc[0]
        facts = (
            ("Target", self.target),
            ("Estimate", f"{self.estimate:.4f} (SE {self.std_error:.4f})"),
            (
                f"Conventional {1 - self.alpha:.0%} CI",
                f"[{conventional['ci_lower']:.4f}, {conventional['ci_upper']:.4f}]",
            ),
            ("Restriction", f"{self.restriction} ({self.bound_name})"),
            ("Method", self.method),
            ("Pre / post periods", f"{len(self.pre_event_times)} / {len(self.post_event_times)}"),
            ("Reference event time", str(self.reference)),
            (
                f"Breakdown {self.bound_name}",
                "none" if self.breakdown is None else f"{self.breakdown:.4g}",
            ),
        )
        return Summary(
            title="Sensitivity to violations of parallel trends (Rambachan & Roth 2023)",
            facts=facts,
            table=self.table,
            notes=(self.interpretation(), *self.notes),
        )

    def __repr__(self) -> str:
        return (
            f"SensitivityResult(restriction={self.restriction!r}, method={self.method!r}, "
            f"bounds={list(self.table['bound'].iloc[1:])}, breakdown={self.breakdown})"
        )

    def plot(self, *, ax=None):
        """The sensitivity plot: intervals against the bound, conventional interval at left."""
        import matplotlib.pyplot as plt  # lazy: importing cpdimpact stays cheap

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 4))
        robust = self.table.iloc[1:]
        bounds = robust["bound"].to_numpy(dtype=float)
        gap = np.min(np.diff(np.unique(bounds))) if np.unique(bounds).size > 1 else 0.5
        gap = gap if np.isfinite(gap) and gap > 0 else 0.5
        conventional = self.table.iloc[0]
        x0 = bounds.min() - gap if bounds.size else 0.0
        ax.vlines(x0, conventional["ci_lower"], conventional["ci_upper"], color="C1", linewidth=3)
        ax.plot([], [], color="C1", linewidth=3, label="conventional (exact parallel trends)")
        ax.vlines(bounds, robust["ci_lower"], robust["ci_upper"], color="C0", linewidth=3)
        ax.plot([], [], color="C0", linewidth=3, label=f"robust ({self.method})")
        ax.axhline(0, color="0.5", linewidth=0.8)
        if self.breakdown is not None and np.isfinite(self.breakdown):
            ax.axvline(self.breakdown, color="0.3", linestyle="--", linewidth=0.8)
            ax.plot([], [], color="0.3", linestyle="--", label=f"breakdown = {self.breakdown:.3g}")
        ticks = np.r_[x0, bounds]
        ax.set_xticks(ticks, ["conv."] + [f"{b:g}" for b in bounds])
        if self.restriction == "relative_magnitude":
            label = r"$\bar M$ (relative magnitudes)"
        else:
            label = "M (smoothness)"
        ax.set_xlabel(label)
        ax.set_ylabel(f"{self.target} ({1 - self.alpha:.0%} CI)")
        ax.set_title("Sensitivity to violations of parallel trends")
        ax.legend(frameon=False, fontsize="small")
        return ax


# --------------------------------------------------------------------------- computation
def _compute(problem, restriction, bounds, method, alpha, *, breakdown=True):
    z = float(special.ndtri(1 - alpha / 2))
    est, se = problem.estimate, problem.std_error
    rows = [(0.0, est - z * se, est + z * se, "conventional")]
    for b in bounds:
        lo, hi = _robust_interval(problem, restriction, float(b), method, alpha)
        rows.append((float(b), float(lo), float(hi), method))
    table = pd.DataFrame(rows, columns=["bound", "ci_lower", "ci_upper", "method"])
    value = None
    if breakdown:
        positive = [float(b) for b in bounds if b > 0]
        start = max(positive) if positive else (1.0 if restriction == "relative_magnitude" else se)
        value = _breakdown(problem, restriction, method, alpha, start)
    return table, value


def _default_bounds(problem: _Problem, restriction: str) -> tuple[float, ...]:
    """Mbar in 0, 0.5, ..., 2; M from 0 to an upper confidence bound on the largest pre-period
    change of slope, ``max_j |D2 b|_j + z_{0.975} se_j`` (10 values, as HonestDiD's default)."""
    if restriction == "relative_magnitude":
        return (0.0, 0.5, 1.0, 1.5, 2.0)
    T = problem.n_pre
    if T < 2:
        upper = float(np.sqrt(problem.sigma[0, 0]))
    else:
        D = _second_differences(T, problem.n_post)[: T - 1, :T]  # pre-period curvature only
        se = np.sqrt(np.einsum("ij,jk,ik->i", D, problem.sigma[:T, :T], D))
        upper = float(np.max(np.abs(D @ problem.beta[:T]) + special.ndtri(0.975) * se))
    return tuple(float(b) for b in np.linspace(0.0, upper, 10))


def _check_options(restriction, method, alpha, bounds):
    check_choice(restriction, "restriction", RESTRICTIONS)
    method = DEFAULT_METHOD[restriction] if method is None else method
    if method not in METHODS[restriction]:
        raise InvalidArgumentError(
            f"method for restriction={restriction!r} must be one of {METHODS[restriction]} "
            f"(or None for {DEFAULT_METHOD[restriction]!r}), got {method!r}"
        )
    check_alpha(alpha)
    if bounds is not None:
        values = np.atleast_1d(np.asarray(bounds, dtype=float))
        if values.size == 0 or not np.all(np.isfinite(values)) or (values < 0).any():
            raise InvalidArgumentError(
                f"bounds must be finite values >= 0 ({BOUND_NAME[restriction]}), got {bounds!r}"
            )
        bounds = tuple(float(b) for b in np.unique(values))
    return method, bounds


def _target_weights(target, post_times: np.ndarray) -> tuple[np.ndarray, str]:
    P = post_times.size
    if isinstance(target, str):
        if target == "first_post":
            w = np.zeros(P)
            w[0] = 1.0
            return w, f"effect at event time {post_times[0]}"
        if target == "average_post":
            return np.full(P, 1.0 / P), (
                f"average effect over event times {post_times[0]} to {post_times[-1]}"
            )
        raise InvalidArgumentError(
            f"target must be 'first_post', 'average_post', a post-period event time or a weight "
            f"vector over the {P} post periods, got {target!r}"
        )
    if isinstance(target, int | np.integer) and not isinstance(target, bool):
        if int(target) not in set(post_times.tolist()):
            raise InvalidArgumentError(
                f"target event time {target} is not a post period; post periods are "
                f"{post_times.tolist()}"
            )
        w = (post_times == int(target)).astype(float)
        return w, f"effect at event time {int(target)}"
    w = np.asarray(target, dtype=float).ravel()
    if w.size != P or not np.all(np.isfinite(w)) or not np.any(w != 0):
        raise InvalidArgumentError(
            f"a weight vector target needs {P} finite weights (post event times "
            f"{post_times.tolist()}), not all zero; got {target!r}"
        )
    shown = ", ".join(f"{e}: {x:g}" for e, x in zip(post_times, w, strict=True))
    return w, f"weighted effect ({shown})"


def _check_estimates(beta, sigma) -> tuple[np.ndarray, np.ndarray]:
    beta = np.asarray(beta, dtype=float).ravel()
    sigma = np.asarray(sigma, dtype=float)
    if sigma.shape != (beta.size, beta.size):
        raise InvalidValueError(
            f"sigma must be {beta.size} x {beta.size} to match betahat, got shape {sigma.shape}"
        )
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(sigma))):
        raise InvalidValueError("betahat and sigma must be finite (no NaN or infinite values)")
    if not np.allclose(sigma, sigma.T, rtol=1e-8, atol=1e-14 * np.abs(sigma).max()):
        raise InvalidValueError("sigma must be symmetric (a covariance matrix)")
    if np.linalg.eigvalsh(sigma).min() <= -1e-10 * np.abs(sigma).max():
        raise InvalidValueError("sigma must be positive semi-definite (a covariance matrix)")
    return beta, sigma


def _run(inputs: tuple, restriction, bounds, target, alpha, method, breakdown):
    """The analysis of ``inputs = (beta, sigma, pre, post, reference, notes)`` with the
    options of :func:`sensitivity`."""
    beta, sigma, pre, post, reference, notes = inputs
    method, bounds = _check_options(restriction, method, alpha, bounds)
    beta, sigma = _check_estimates(beta, sigma)
    pre, post = np.asarray(pre, dtype=int), np.asarray(post, dtype=int)
    if pre.size == 0:
        raise DesignError(
            "there are no pre-period coefficients (event times before the reference period): "
            "sensitivity to parallel-trend violations is calibrated on them"
        )
    if post.size == 0:
        raise DesignError("there are no post-period coefficients (event times after the reference)")
    weights, description = _target_weights(target, post)
    problem = _Problem(beta, sigma, pre.size, weights)
    if bounds is None:
        bounds = _default_bounds(problem, restriction)
    table, breakdown = _compute(problem, restriction, bounds, method, alpha, breakdown=breakdown)
    return SensitivityResult(
        restriction=restriction,
        method=method,
        table=table,
        breakdown=breakdown,
        estimate=problem.estimate,
        std_error=problem.std_error,
        target=description,
        weights=tuple(float(w) for w in weights),
        pre_event_times=tuple(int(e) for e in pre),
        post_event_times=tuple(int(e) for e in post),
        reference=int(reference),
        alpha=float(alpha),
        betahat=beta,
        sigma=sigma,
        notes=tuple(notes),
    )


def _consecutive(times: np.ndarray) -> bool:
    return bool(np.all(np.diff(times) == 1))


def _split(times: np.ndarray, reference: int, what: str):
    pre, post = times[times < reference], times[times > reference]
    if (
        not (_consecutive(pre) and _consecutive(post))
        or (pre.size and pre[-1] != reference - 1)
        or (post.size and post[0] != reference + 1)
    ):
        raise DesignError(
            f"{what}: event times {times.tolist()} around the reference {reference} are not "
            "consecutive; the restrictions compare consecutive periods, so every event time "
            "between the first and the last must be present"
        )
    return pre, post


# --------------------------------------------------------------------------- inputs
def _from_event_time_estimates(res) -> tuple:
    """Coefficients, covariance and reference of any event-study result (binned ends out)."""
    name = type(res).__name__
    frame = res.event_time_frame()
    if "separate_test" in frame:  # leads of another regression: no joint covariance
        frame = frame.loc[~frame["separate_test"].to_numpy(bool)]
    reference = res.reference_event_time
    if reference is None:
        raise DesignError(
            f"sensitivity needs event-study coefficients relative to one omitted reference "
            f"period and their joint covariance; a {name} has no reference period. Pass "
            "coefficients and covariance to sensitivity_from_estimates"
        )
    binned = frame["binned"].to_numpy(bool)
    usable = ~frame["reference"].to_numpy(bool) & ~binned
    notes = list(getattr(res, "notes", ()))
    if binned.any():
        labels = frame["term"] if "term" in frame else frame.index.to_series()
        dropped = [str(t) for t in labels[binned]]
        notes.append(
            f"binned end points {dropped} were left out: they average several event times, "
            "which the period-to-period restrictions cannot describe"
        )
    times = frame.index.to_numpy()[usable].astype(int)
    beta = frame["estimate"].to_numpy(dtype=float)[usable]
    sigma = res.event_time_cov().loc[times, times].to_numpy(dtype=float)
    pre, post = _split(times, int(reference), name)
    if np.isfinite(getattr(res, "df", np.inf)):
        notes.append(
            "intervals use normal critical values (as HonestDiD), not t with G - 1 degrees of "
            f"freedom as the event study's own intervals (G = {res.n_clusters})"
        )
    return beta, sigma, pre, post, int(reference), notes


def _from_imputation(res) -> tuple:
    """The placebo event study of an imputation fit (``res.placebo``), relative to one period."""
    placebo = res.placebo
    if placebo is None:
        raise DesignError(
            "sensitivity of an imputation fit uses its placebo event study (pre- and "
            "post-period estimates from one fit with treatment moved pretrend_leads periods "
            f"earlier, relative to one reference period), and this fit has none: "
            f"{res.placebo_note}. Refit with ImputationDiD(pretrend_leads=K), K >= 2"
        )
    times = placebo.estimates.index.to_numpy(dtype=int)
    beta = placebo.estimates["estimate"].to_numpy(dtype=float)
    sigma = placebo.cov.loc[times, times].to_numpy(dtype=float)
    pre, post = _split(times, placebo.reference, "imputation placebo event study")
    notes = [
        *res.notes,
        *placebo.notes,
        f"coefficients from the placebo event study (treatment moved {placebo.leads} periods "
        f"earlier), each relative to event time {placebo.reference}; its post-period estimates "
        "differ from the fit's event_study, which is relative to the average of all untreated "
        "periods (docs/honest.md)",
    ]
    return beta, sigma, pre, post, placebo.reference, notes


def _from_aggregate(agg, *, reference=None, varying=None, clusters=None, stacklevel=4) -> tuple:
    if agg.kind != "dynamic":
        raise InvalidArgumentError(
            f"an event study is needed: pass result.aggregate('dynamic'), not the {agg.kind!r} "
            "aggregate"
        )
    if agg.piece_influence is None:
        raise InvalidArgumentError("the aggregate carries no influence functions (piece_influence)")
    times = agg.pieces["event_time"].to_numpy(dtype=int)
    order = np.argsort(times)
    times = times[order]
    beta = agg.pieces["estimate"].to_numpy(dtype=float)[order]
    psi = np.asarray(agg.piece_influence, dtype=float)[:, order]
    notes = []
    if reference is None:
        missing = sorted(set(range(times.min(), times.max() + 1)) - set(times.tolist()))
        if len(missing) == 1:
            reference, varying = missing[0], False
        elif not missing and (times < 0).any():
            reference, varying = -1, True
        elif not missing:
            raise DesignError("the dynamic aggregate has no pre-period event times (min_e < 0)")
        else:
            raise DesignError(
                f"event times {times.tolist()} of the dynamic aggregate have gaps at {missing}"
            )
    if varying:
        message = (
            "this dynamic aggregate uses a varying base period: its pre-period estimates compare "
            "consecutive periods, so they are not event-study coefficients relative to one "
            "reference period and the sensitivity analysis is not interpretable. Refit with "
            "StaggeredDiD(base_period='universal') (HonestDiD's recommendation for did results)."
        )
        warnings.warn(message, CpdImpactWarning, stacklevel=stacklevel)
        notes.append(message)
    keep = times != reference
    times, beta, psi = times[keep], beta[keep], psi[:, keep]
    n = psi.shape[0]
    if clusters is not None:
        summed = np.zeros((int(clusters.max()) + 1, psi.shape[1]))
        np.add.at(summed, clusters, psi)
        sigma = summed.T @ summed / n**2
        notes.append(
            f"covariance from the influence functions summed within {summed.shape[0]} clusters"
        )
    else:
        sigma = psi.T @ psi / n**2
        notes.append("covariance from the influence functions (analytic, units independent)")
    pre, post = _split(times, int(reference), "dynamic aggregate")
    return beta, sigma, pre, post, int(reference), notes


def sensitivity(
    event_study,
    *,
    restriction: str = "relative_magnitude",
    bounds: Sequence[float] | None = None,
    target="first_post",
    alpha: float = 0.05,
    method: str | None = None,
    breakdown: bool = True,
) -> SensitivityResult:
    r"""Robust confidence intervals under bounded violations of parallel trends.

    Parameters
    ----------
    event_study : EventStudyEstimates
        Any event-study result: a two-way fixed-effects :class:`~cpdimpact.did.EventStudyResult`
        (its coefficients and cluster-robust covariance; binned end points are left out), a
        :class:`~cpdimpact.did.SunAbrahamResult` (the IW estimates and their covariance, cohort
        shares estimated), an :class:`~cpdimpact.did.ImputationResult` fitted with
        ``pretrend_leads >= 2`` (its placebo event study ``result.placebo``, relative to event
        time ``-anticipation - 1``; see Notes), a :class:`~cpdimpact.did.StaggeredResult` (its
        ``aggregate("dynamic")``, with the covariance clustered as the fit was), or a dynamic
        :class:`~cpdimpact.did.Aggregate` (covariance :math:`\Psi'\Psi/n^2` from
        ``piece_influence``). Fit staggered designs with
        ``base_period="universal"``: with a varying base period the pre-period estimates are not
        relative to one reference period, and a :class:`~cpdimpact.errors.CpdImpactWarning` says
        so.
    restriction : {"relative_magnitude", "smoothness"}
        :math:`\Delta^{RM}(\bar M)` or :math:`\Delta^{SD}(M)` (see Notes).
    bounds : sequence of float, optional
        Values of :math:`\bar M` (relative magnitudes) or :math:`M` (smoothness, in outcome
        units per period squared). Default: :math:`\bar M = 0, 0.5, \dots, 2`; ten values of
        :math:`M` from 0 to an upper confidence bound on the largest pre-period change of slope.
    target : {"first_post", "average_post"}, int or array-like
        The effect studied: at the first post-period (event time 0 with reference -1), the
        average over the post-periods, at one post-period event time, or
        :math:`l'\tau_{post}` for a weight vector :math:`l` over the post-periods.
    alpha : float
        1 minus the confidence level.
    method : str, optional
        ``"C-LF"`` (conditional-least-favourable hybrid; default for relative magnitudes),
        ``"Conditional"`` (ARP conditional test) or, for smoothness only, ``"FLCI"`` (default).
    breakdown : bool
        Search for the breakdown value (a dozen or so further intervals); ``False`` skips it and
        leaves ``result.breakdown`` as ``None``.

    Returns
    -------
    SensitivityResult
        A row per bound, the conventional interval, and the breakdown value.

    Notes
    -----
    Write the coefficients as :math:`\hat\beta \sim N(\tau + \delta, \Sigma)` with
    :math:`\tau_{pre} = 0` and :math:`\delta_0 = 0` at the reference period (Rambachan & Roth
    2023). The target :math:`\theta = l'\tau_{post}` is partially identified when
    :math:`\delta \in \Delta`:

    .. math::

        \Delta^{RM}(\bar M) = \{\delta: |\delta_{t+1} - \delta_t| \le
            \bar M \max_{s<0} |\delta_{s+1} - \delta_s|,\ t \ge 0\},

        \Delta^{SD}(M) = \{\delta: |(\delta_{t+1} - \delta_t) - (\delta_t - \delta_{t-1})|
            \le M \ \forall t\}.

    For :math:`\Delta^{SD}` the interval is the optimal fixed-length confidence interval
    :math:`v'\hat\beta \pm \min_v h(v)\,cv_\alpha(\bar b(v)/h(v))`, with :math:`h` the standard
    deviation and :math:`\bar b` the worst-case bias of the affine estimator, and
    :math:`cv_\alpha(t)` the :math:`1-\alpha` quantile of :math:`|N(t, 1)|` (Armstrong &
    Kolesar 2018, 2020). For :math:`\Delta^{RM}` (a union of :math:`2T` polyhedra) each
    :math:`\bar\theta` is tested with the moment inequalities
    :math:`E[A(\hat\beta - L_{post}\tau) - d] \le 0`: the statistic
    :math:`\hat\eta = \min_\tau \max_j (\cdot)_j/\sigma_j`, a conditional test given the active
    dual vertex, with a first stage at size :math:`\kappa = \alpha/10` against the
    least-favourable critical value and the second stage at
    :math:`(\alpha-\kappa)/(1-\kappa)` (Andrews, Roth & Pakes 2023). The interval is the
    smallest one holding every accepted :math:`\bar\theta`; its end points are located on a
    grid and refined by bisection. Differences from HonestDiD: dual vertices are enumerated
    (exact truncation points instead of a bisection), the least-favourable critical value uses
    10,000 draws with a fixed seed (HonestDiD: 1,000), and end points are not restricted to a
    grid.

    The breakdown value is the largest bound whose robust interval excludes zero, located by
    bisection (relative precision 1e-4), assuming intervals widen with the bound. "The effect
    stays positive unless post-programme trend differences are more than 1.3 times the largest
    pre-programme one" is a breakdown :math:`\bar M = 1.3`.

    Intervals use normal critical values, as HonestDiD does, including for a TWFE event study
    whose own intervals use t with :math:`G-1` degrees of freedom.

    **Imputation fits.** The effects of :class:`~cpdimpact.did.ImputationDiD` are relative to
    the average of every untreated period, and its Test 1 leads come from another regression
    with their own reference, so neither can be read as :math:`\tau + \delta` with
    :math:`\delta = 0` at one period (Roth 2024). The fit therefore also estimates a placebo
    event study: the imputation estimator refitted with the start moved :math:`K`
    (``pretrend_leads``) periods earlier, so that event times :math:`-a-K, \dots, -a-1`
    (:math:`a` the anticipation) are imputed exactly as the post-periods are, from one model of
    untreated outcomes fitted on the rows before the shifted start; each estimate
    :math:`\hat p_e` then has the one at the reference :math:`r = -a-1` subtracted,
    :math:`\hat\beta_e = \hat p_e - \hat p_r`, and the covariance is the cross-product of the
    per-cluster BJS influence sums, :math:`\psi_e - \psi_r`. Without staggering (one start,
    a never-treated group, a balanced panel) :math:`\hat\beta_e` is exactly the TWFE
    event-study coefficient relative to :math:`r`, for any :math:`K`. The post-period estimates
    used here are therefore not the fit's ``event_study`` (and the conventional row is theirs);
    they estimate the same effects under parallel trends. See ``docs/honest.md``.

    References
    ----------
    Rambachan, A. & Roth, J. (2023). A more credible approach to parallel trends. *Review of
    Economic Studies* 90(5), 2555-2591.
    Andrews, I., Roth, J. & Pakes, A. (2023). Inference for linear conditional moment
    inequalities. *Review of Economic Studies* 90(6), 2763-2791.
    Armstrong, T. B. & Kolesar, M. (2018). Optimal inference in a class of regression models.
    *Econometrica* 86(2), 655-683.
    Borusyak, K., Jaravel, X. & Spiess, J. (2024). Revisiting event-study designs: robust and
    efficient estimation. *Review of Economic Studies* 91(6), 3253-3285.
    Roth, J. (2024). Interpreting event-studies from recent difference-in-differences methods.
    arXiv:2401.12309.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.did import StaggeredDiD
    >>> from cpdimpact.did.honest import sensitivity
    >>> rng = np.random.default_rng(0)
    >>> panel = pd.DataFrame([(u, y) for u in range(300) for y in range(2014, 2022)],
    ...                      columns=["unit", "year"])
    >>> panel["first_treated"] = np.select([panel.unit < 100, panel.unit < 200], [2018, 2020], 0)
    >>> treated = (panel.first_treated > 0) & (panel.year >= panel.first_treated)
    >>> panel["outcome"] = 0.1 * panel.unit % 7 + 0.5 * treated + rng.normal(0, 1, len(panel))
    >>> fit = StaggeredDiD(base_period="universal", n_bootstrap=0).fit(panel)
    >>> res = sensitivity(fit, bounds=[0.5, 1.0])
    >>> res.pre_event_times, res.post_event_times
    ((-6, -5, -4, -3, -2), (0, 1, 2, 3))
    >>> res.to_frame().columns.tolist()
    ['bound', 'ci_lower', 'ci_upper', 'method']
    >>> res.table["method"].tolist()
    ['conventional', 'C-LF', 'C-LF']
    """
    from cpdimpact.did.imputation import ImputationResult
    from cpdimpact.did.staggered import Aggregate, StaggeredResult

    if isinstance(event_study, ImputationResult):
        inputs = _from_imputation(event_study)
    elif isinstance(event_study, StaggeredResult):
        spec = event_study.spec
        boot = event_study.bootstrap
        inputs = _from_aggregate(
            event_study.aggregate("dynamic"),
            reference=-1 - int(spec.anticipation),
            varying=spec.base_period == "varying",
            clusters=None if boot is None else boot.clusters,
        )
    elif isinstance(event_study, Aggregate):
        inputs = _from_aggregate(event_study)
    elif isinstance(event_study, EventStudyEstimates):
        inputs = _from_event_time_estimates(event_study)
    else:
        raise ArgumentTypeError(
            "event_study must be an event-study result (EventStudyResult, SunAbrahamResult, "
            "ImputationResult, StaggeredResult or its dynamic aggregate); got "
            f"{type(event_study).__name__} (use sensitivity_from_estimates for raw estimates)"
        )
    return _run(inputs, restriction, bounds, target, alpha, method, breakdown)


def sensitivity_from_estimates(
    betahat,
    sigma,
    *,
    event_times: Sequence[int] | None = None,
    num_pre_periods: int | None = None,
    restriction: str = "relative_magnitude",
    bounds: Sequence[float] | None = None,
    target="first_post",
    alpha: float = 0.05,
    method: str | None = None,
    breakdown: bool = True,
) -> SensitivityResult:
    """:func:`sensitivity` for coefficients from elsewhere (HonestDiD's ``betahat``/``sigma``).

    Parameters
    ----------
    betahat, sigma : array-like
        Event-study coefficients, pre-periods first, the reference period omitted, and their
        covariance (event-study terms only: drop covariates first).
    event_times : sequence of int, optional
        Event time of each coefficient; the single missing value between the pre- and
        post-periods is the reference.
    num_pre_periods : int, optional
        Number of pre-period coefficients (HonestDiD's ``numPrePeriods``); with it alone the
        event times are taken to be ``-num_pre_periods-1, ..., -2`` and ``0, 1, ...``.
    restriction, bounds, target, alpha, method, breakdown
        As in :func:`sensitivity`.

    Examples
    --------
    >>> import numpy as np
    >>> from cpdimpact.did.honest import sensitivity_from_estimates
    >>> beta = np.array([0.01, -0.005, 0.0, 0.05, 0.06])
    >>> res = sensitivity_from_estimates(beta, np.eye(5) * 1e-4, event_times=[-4, -3, -2, 0, 1],
    ...                                  restriction="smoothness", bounds=[0.0, 0.01])
    >>> res.table["method"].tolist()
    ['conventional', 'FLCI', 'FLCI']
    """
    beta = np.asarray(betahat, dtype=float).ravel()
    if event_times is None and num_pre_periods is None:
        raise InvalidArgumentError(
            "give event_times or num_pre_periods (which coefficients are pre-periods)"
        )
    if event_times is None:
        T = int(num_pre_periods)
        if not 0 <= T <= beta.size:
            raise InvalidArgumentError(
                f"num_pre_periods must lie in 0..{beta.size}, got {num_pre_periods}"
            )
        times = np.r_[np.arange(-T - 1, -1), np.arange(0, beta.size - T)]
        reference = -1
    else:
        times = np.asarray(event_times)
        if times.shape != beta.shape or not np.all(times == np.round(times)):
            raise InvalidArgumentError(
                f"event_times must hold {beta.size} whole numbers, one per coefficient; got "
                f"{list(event_times)}"
            )
        times = times.astype(int)
        if not np.all(np.diff(times) > 0):
            raise InvalidArgumentError("event_times must be increasing (pre-periods first)")
        if num_pre_periods is not None:
            T = int(num_pre_periods)
            if not 0 < T < times.size or times[T] - times[T - 1] != 2:
                raise InvalidArgumentError(
                    f"with num_pre_periods={num_pre_periods} the reference period must be the one "
                    f"missing value between event times {times[:T].tolist()} and "
                    f"{times[T:].tolist()}"
                )
            reference = int(times[T - 1] + 1)
        else:
            gaps = np.flatnonzero(np.diff(times) == 2)
            if gaps.size != 1 or np.any(np.diff(times) > 2):
                raise InvalidArgumentError(
                    f"event_times {times.tolist()} must be consecutive except for the one omitted "
                    "reference period (e.g. [-4, -3, -2, 0, 1] with reference -1)"
                )
            reference = int(times[gaps[0]] + 1)
    pre, post = _split(times, reference, "event_times")
    return _run(
        (beta, sigma, pre, post, reference, ()),
        restriction,
        bounds,
        target,
        alpha,
        method,
        breakdown,
    )
