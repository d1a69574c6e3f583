r"""Prediction intervals for synthetic control (Cattaneo, Feng & Titiunik 2021).

The synthetic-control effect in programme year :math:`t` is the treated area's outcome minus
the synthetic one, :math:`\hat\tau_t = Y_{1t} - \hat Y_{1t}(0)`, with
:math:`\hat Y_{1t}(0) = p_t'\hat w` (:math:`p_t` the donors' outcomes in year :math:`t`). The
true untreated outcome differs from the prediction by

.. math::
    Y_{1t}(0) - p_t'\hat w = p_t'(w_0 - \hat w) + e_t,

an **in-sample** error (the weights were estimated from a few noisy pre-period years) and an
**out-of-sample** error :math:`e_t` (the programme year's own shock, which no weights can
predict). The interval for :math:`Y_{1t}(0)` is
:math:`[p_t'\hat w + M_{L,t} + E_{L,t},\; p_t'\hat w + M_{U,t} + E_{U,t}]`, where :math:`M`
bounds the in-sample error with probability :math:`1 - \alpha_{in}` and :math:`E` the
out-of-sample error with probability :math:`1 - \alpha_{out}`; by the union bound the interval
covers :math:`Y_{1t}(0)`, and hence the effect interval covers :math:`\tau_t`, with probability
at least :math:`1 - \alpha_{in} - \alpha_{out}` (90% with the defaults 0.05 and 0.05, as scpi).

This module implements the simplex (Abadie et al.) case of the ``scpi`` package (Python
``scpi-pkg`` 4.0, Cattaneo, Feng, Palomba & Titiunik 2025) for one treated area and outcome-only
weights, with scpi's defaults: see :class:`PredictionIntervals` for what is computed and where
it departs from scpi.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from cpdimpact._validate import check_choice, check_number, check_positive_int, check_seed
from cpdimpact.errors import DesignError, ExactFitWarning, InvalidArgumentError

__all__ = ["PredictionIntervals"]

OUT_OF_SAMPLE = ("gaussian", "ls", "qreg")
#: The smallest number of pre-period years for which residuals can say anything about spread.
MIN_PRE = 3


@dataclass(frozen=True, kw_only=True)
class PredictionIntervals:
    r"""Prediction intervals for synthetic-control effects, in the manner of ``scpi``.

    Pass one as ``SyntheticControl(prediction=PredictionIntervals())``; the result then carries
    ``prediction_intervals``: for each programme year the effect, the interval allowing for
    in-sample uncertainty only and the interval allowing for both.

    Parameters
    ----------
    out_of_sample
        How the out-of-sample error :math:`e_t` is bounded from the pre-period residuals:
        ``"gaussian"`` (default; sub-Gaussian bound from the conditional mean and variance),
        ``"ls"`` (location-scale: the empirical quantiles of the standardised residuals) or
        ``"qreg"`` (quantile regression of the residuals).
    alpha_in_sample, alpha_out_of_sample
        Error probabilities of the two parts (scpi's ``u_alpha`` and ``e_alpha``, default 0.05
        each); the combined interval covers with probability at least one minus their sum.
    n_simulations
        Draws used to simulate the in-sample error (scpi's ``sims``, default 200 as scpi).
        More draws make the bounds less dependent on the seed (the Monte Carlo error of a
        2.5% quantile falls as one over the square root of the draws).
    seed
        None, an int, a :class:`numpy.random.SeedSequence` or a :class:`numpy.random.Generator`
        for the simulation.
    rho_max
        Upper limit of the tuning constant :math:`\rho` that decides which weights count as
        zero (scpi's ``rho_max``, default 0.2).

    Raises
    ------
    InvalidArgumentError
        A level outside (0, 1), levels summing to 1 or more, an unknown ``out_of_sample``,
        fewer than 10 ``n_simulations``, a ``rho_max`` outside (0, 1) or a bad ``seed``.

    See Also
    --------
    cpdimpact.comparison.SyntheticControl : the estimator that uses these options.

    Notes
    -----
    **In-sample error.** With :math:`B` the donors' pre-period outcomes (:math:`T_0` years by
    :math:`J` donors), :math:`\hat u = A - B\hat w` the pre-period residuals and
    :math:`Q = B'B/T_0`, the estimation error :math:`\delta = w - \hat w` of the weights is
    approximated, conditionally on the data, by the set of :math:`\delta` solving
    :math:`\delta'Q\delta - 2G'\delta \le 0` with :math:`G \sim N(0, \hat\Sigma)`,
    :math:`\hat\Sigma = B'\operatorname{diag}(\hat\omega)B / T_0^2` (Cattaneo, Feng & Titiunik
    2021, section 4). For each draw of :math:`G` the smallest and largest :math:`-p_t'\delta`
    over that set intersected with the *localised* simplex are found; :math:`M_{L,t}`,
    :math:`M_{U,t}` are their :math:`\alpha_{in}/2` and :math:`1 - \alpha_{in}/2` quantiles
    over the draws. scpi's choices implemented here (its defaults for ``w_constr="simplex"``):

    - ``u_missp=True`` with ``u_order=1``, ``u_lags=0``: the residuals are centred on their
      least-squares fit on the outcomes of the donors whose weight exceeds :math:`\rho` (and a
      constant), or on their mean when :math:`T_0 - 10` does not exceed the number of those
      regressors;
    - ``u_sigma="HC1"``: :math:`\hat\omega_t = (\hat u_t - \hat E[u_t])^2 T_0 / (T_0 - d)`
      with :math:`d` the number of non-zero weights minus one (at most :math:`T_0 - 1`);
    - ``rho="type-2"``: :math:`\rho = \hat\sigma_u \max_j s_j / \min_j s_j^2 \cdot
      \sqrt{\log(J)\, d_0 \log(T_0) / T_0}`, capped at ``rho_max``; below 0.001 it is
      replaced by the larger of the type-1 (:math:`\hat\sigma_u / \min_j s_j` in place of the
      first factor) and type-2 values, each capped at 0.2, and by ``rho_max`` if that is below
      0.05 (an exact fit gives ``rho_max``); :math:`s_j` is the SD of donor :math:`j`'s
      pre-period outcomes, :math:`d_0` the number of non-zero weights and :math:`\hat\sigma_u`
      the SD of the residuals;
    - the localised constraint set: weights above :math:`\rho` may move in either direction
      (down to zero), weights below it only up (they are treated as zero);
    - ``V`` the identity, no covariates, no constant, ``cointegrated_data=False``.

    Each simulated problem (a linear objective over the simplex intersected with an
    ellipsoid) is solved through its dual, a convex problem in at most
    :math:`\min(T_0, J)` unknowns, by Newton's method on a smoothed dual with the smoothing
    driven to :math:`10^{-7}` of the outcome scale; scpi solves the primal with the ECOS
    conic solver. The two agree to Monte Carlo error (``tests/reference/scpi/``).

    **Out-of-sample error** (scpi's ``e_order=1``, ``e_lags=0``): the pre-period residuals are
    regressed on a constant and the outcomes of the donors above :math:`\rho` (a constant alone
    when :math:`T_0 - 10` does not exceed the number of regressors or they are as many as
    :math:`T_0 - 1`); the fit predicts the mean :math:`\hat\mu_t` of :math:`e_t` from the
    programme year's donor outcomes, a regression of the log squared residuals its variance
    :math:`\hat\sigma_t^2`, and :math:`\hat\sigma_t` is capped by the predicted interquartile
    range over 1.34. ``"gaussian"``: :math:`\hat\mu_t \pm \hat\sigma_t
    \sqrt{2\log(2/\alpha_{out})}`; ``"ls"``: :math:`\hat\mu_t + \hat\sigma_t q`, :math:`q` the
    :math:`\alpha_{out}/2` and :math:`1-\alpha_{out}/2` quantiles of the standardised
    residuals; ``"qreg"``: the quantile regressions at those levels (the residuals' sample
    quantiles when the design is a constant alone).

    **Few pre-years.** With two or three pre-period years and dozens of donors the weights
    usually reproduce the treated area's pre-period path exactly: the residuals are zero and
    neither part of the interval has anything to measure. The intervals then shrink to the
    range of synthetic outcomes that fit exactly (the weights are not unique), an
    :class:`~cpdimpact.errors.ExactFitWarning` says so, and they must not be read as
    uncertainty about the effect.

    Not implemented: scpi's simultaneous (joint over years) intervals, covariates and
    features other than the outcome, the lasso, ridge and L1-L2 constraints, several treated
    areas.

    References
    ----------
    Cattaneo, M. D., Feng, Y. & Titiunik, R. (2021). Prediction intervals for synthetic control
    methods. *Journal of the American Statistical Association* 116(536), 1865-1880.

    Cattaneo, M. D., Feng, Y., Palomba, F. & Titiunik, R. (2025). scpi: uncertainty
    quantification for synthetic control methods. *Journal of Statistical Software* 113(1).

    Examples
    --------
    >>> from cpdimpact.comparison import PredictionIntervals
    >>> PredictionIntervals(out_of_sample="ls", n_simulations=500, seed=1).out_of_sample
    'ls'
    """

    out_of_sample: Literal["gaussian", "ls", "qreg"] = "gaussian"
    alpha_in_sample: float = 0.05
    alpha_out_of_sample: float = 0.05
    n_simulations: int = 200
    seed: int | np.random.SeedSequence | np.random.Generator | None = None
    rho_max: float = 0.2

    def __post_init__(self):
        check_choice(self.out_of_sample, "out_of_sample", OUT_OF_SAMPLE)
        hint = (
            " It is the error probability of one part of the interval; the whole covers with"
            " probability at least 1 - alpha_in_sample - alpha_out_of_sample (0.05 each: 90%)."
        )
        for name in ("alpha_in_sample", "alpha_out_of_sample"):
            check_number(getattr(self, name), name, minimum=0, maximum=1, strict=True, hint=hint)
        if self.alpha_in_sample + self.alpha_out_of_sample >= 1:
            raise InvalidArgumentError(
                f"alpha_in_sample + alpha_out_of_sample is "
                f"{self.alpha_in_sample + self.alpha_out_of_sample:g}; the combined interval "
                "covers with probability at least 1 minus their sum, so keep the sum below 1 "
                "(e.g. 0.05 each for at least 90%)."
            )
        check_positive_int(self.n_simulations, "n_simulations", minimum=10)
        check_seed(self.seed)
        check_number(
            self.rho_max,
            "rho_max",
            minimum=0,
            maximum=1,
            strict=True,
            hint=" A weight below rho counts as zero; scpi's default rho_max is 0.2.",
        )

    @property
    def level(self) -> float:
        """Coverage guaranteed by the combined interval: ``1 - alpha_in - alpha_out``."""
        return 1 - self.alpha_in_sample - self.alpha_out_of_sample

    def describe(self) -> str:
        """The intervals in plain words, for a report."""
        return (
            f"prediction intervals (Cattaneo, Feng & Titiunik 2021) covering each year's effect "
            f"with probability at least {self.level:.0%}: in-sample uncertainty of the weights "
            f"from {self.n_simulations} simulations, out-of-sample uncertainty "
            f"({self.out_of_sample}) from the pre-period residuals"
        )


# --------------------------------------------------------------------------------------------
# The computation (called by SyntheticControl)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bounds:
    """Bounds on the synthetic outcome's error in each post year, and what scpi tuned."""

    in_lower: np.ndarray
    in_upper: np.ndarray
    out_lower: np.ndarray
    out_upper: np.ndarray
    rho: float
    exact_fit: bool
    in_lower_se: np.ndarray  # Monte Carlo standard errors of the in-sample bounds
    in_upper_se: np.ndarray


def prediction_bounds(
    spec: PredictionIntervals,
    B: np.ndarray,
    a: np.ndarray,
    P: np.ndarray,
    w: np.ndarray,
    rng: np.random.Generator,
) -> _Bounds:
    """Bounds for :math:`Y_{1t}(0) - p_t'\\hat w` given pre-period donors ``B`` (T0 x J),
    treated ``a`` (T0), post-period donors ``P`` (T1 x J) and the fitted weights ``w``; a last
    row for the average over the post-period years.

    The average's in-sample bound is simulated with the average donor row :math:`\\bar p`
    (a linear functional of the weights, like each year's); its out-of-sample bound is the
    average of the years' bounds, which for ``"gaussian"`` is the sub-Gaussian bound of the
    average error (the sub-Gaussian scale of a mean is at most the mean of the scales, whatever
    the dependence between years) and for ``"ls"`` and ``"qreg"`` an approximation of the same
    kind (exact when the years' errors move together, not proven conservative otherwise).
    """
    T0, J = B.shape
    if T0 < MIN_PRE:
        raise DesignError(
            f"prediction intervals need at least {MIN_PRE} pre-period years to measure the "
            f"spread of the pre-period fit; the data have {T0}. Add earlier years, or leave "
            "prediction=None and rely on the placebo inference."
        )
    res = a - B @ w
    scale = max(float(np.abs(a).max()), 1e-300)
    exact = bool(np.all(np.abs(res) <= 1e-7 * scale))
    if exact:
        warnings.warn(
            f"the synthetic control reproduces the {T0} pre-period years exactly (more donors "
            "than years): the residuals are zero, so the prediction intervals measure only "
            "how far the exact-fit weights can vary, not the uncertainty of the effect.",
            ExactFitWarning,
            stacklevel=5,
        )
        res = np.zeros(T0)
    rho = _rho(res, B, w, spec.rho_max)
    active = w > rho
    if not active.any():
        active[int(np.argmax(w))] = True
    nonzero = int(np.sum(np.abs(w) >= 1e-6))

    # In-sample: scpi's u_missp=True, u_order=1 mean and HC1 variance of the residuals.
    design = np.column_stack([B[:, active], np.ones(T0)])
    if T0 - 10 <= design.shape[1]:
        design = np.ones((T0, 1))
    u_mean = design @ np.linalg.lstsq(design, res, rcond=None)[0]
    df = min(nonzero - 1, T0 - 1)
    omega = (res - u_mean) ** 2 * T0 / (T0 - df)
    lower_x = np.where(w < rho, w, 0.0)
    P_all = np.vstack([P, P.mean(axis=0)])
    lows, highs = in_sample_draws(B, P_all, w, lower_x, np.sqrt(omega), spec.n_simulations, rng)
    qa = spec.alpha_in_sample / 2
    lo, hi = np.quantile(lows, qa, axis=0), np.quantile(highs, 1 - qa, axis=0)
    lo_se, hi_se = _quantile_se(lows, qa), _quantile_se(highs, 1 - qa)

    # Out-of-sample: scpi's e_order=1 design with its fallbacks.
    if exact:
        e_lo = e_hi = np.zeros(P.shape[0])
    else:
        e_lo, e_hi = _out_of_sample(res, B[:, active], P[:, active], spec)
    e_lo, e_hi = np.append(e_lo, e_lo.mean()), np.append(e_hi, e_hi.mean())
    return _Bounds(lo, hi, e_lo, e_hi, rho, exact, lo_se, hi_se)


def _quantile_se(draws, q):
    """Monte Carlo standard error of the ``q`` quantile of each column of ``draws``: half the
    distance between the quantiles one binomial SD either side (distribution-free)."""
    n = draws.shape[0]
    half = math.sqrt(q * (1 - q) / n)
    upper = np.quantile(draws, min(q + half, 1.0), axis=0)
    lower = np.quantile(draws, max(q - half, 0.0), axis=0)
    return (upper - lower) / 2


def _rho(res, B, w, rho_max) -> float:
    """scpi's type-2 rule for the threshold below which a weight counts as zero."""
    T0, J = B.shape
    d0 = int(np.sum(np.abs(w) >= 1e-6))
    sigma_u = float(np.sqrt(np.mean((res - res.mean()) ** 2)))
    sd = B.std(axis=0, ddof=1)
    if sd.min() == 0:
        raise DesignError(
            "a donor area's outcome does not change over the pre-period, so the scale of the "
            "weights' uncertainty cannot be set; drop that donor."
        )
    root = math.sqrt(math.log(J) * d0 * math.log(T0) / T0) if J > 1 else 0.0

    def rule(kind, cap):
        cc = sigma_u / sd.min() if kind == 1 else sigma_u * sd.max() / sd.min() ** 2
        return min(cc * root, cap)

    rho = rule(2, rho_max)
    if rho < 0.001:
        rho = max(rule(1, 0.2), rule(2, 0.2))
        if rho < 0.05:
            rho = rho_max
    return float(rho)


def in_sample_draws(B, P, w, lower_x, root_omega, sims, rng):
    """Per simulated draw (rows) and post year (columns): the smallest and the largest
    in-sample error :math:`p_t'(\\hat w - x)` over the simulated constraint set."""
    T0, J = B.shape
    T1 = P.shape[0]
    # G = B'h with h = sqrt(omega) * xi / T0 has the law N(0, Sigma) of scpi's draws.
    h = rng.standard_normal((sims, T0)) * root_omega / T0
    if not np.any(root_omega > 0):
        # No residual variance: the set is {delta : B delta = 0}; the same for every draw.
        low, high = _exact_fit_range(B, P, w, lower_x)
        return np.tile(low, (sims, 1)), np.tile(high, (sims, 1))
    # Move to the span of the centred donors (x'1 = 1, so B x - B w = (B - B w 1')(x - w)).
    Bc = B - (B @ w)[:, None]
    U, sv, Vt = np.linalg.svd(Bc, full_matrices=False)
    keep = sv > sv.max() * 1e-12
    Bt = sv[keep, None] * Vt[keep]  # m x J, with |Bc x|^2 = |Bt x|^2
    # Ball {v : |v - T0 h|^2 <= T0^2 |h|^2} in the original coordinates, projected.
    centre = (T0 * h) @ U[:, keep]  # (sims, m)
    radius2 = np.sum(centre**2, axis=1)
    # The part of T0 h orthogonal to the donors' span shrinks the radius: |v - c|^2 <= |c|^2
    # with v in the span means |v - c_par|^2 <= |c_par|^2.
    norm = np.sqrt(radius2)
    ok = norm > 0
    e = np.where(ok[:, None], centre / np.where(ok, norm, 1.0)[:, None], 0.0)
    K = float(np.sqrt((Bt**2).sum(axis=0)).max())
    Bt = Bt / K
    rad = norm / K  # ball: |Bt x - rad e| <= rad
    s = 1.0 - lower_x.sum()
    m = P @ w
    # Row t: max p_t'x (gives the lower bound of p_t'(w - x)); row T1 + t: max -p_t'x.
    directions = np.vstack([P - m[:, None], m[:, None] - P])  # (2 T1, J)
    values = _max_linear(Bt, directions, lower_x, s, e, rad)  # (sims, 2 T1)
    return -values[:, :T1], values[:, T1:]


def _max_linear(Bt, directions, low, s, e, rad, *, chunk=4096):
    r"""For every draw k and direction d: :math:`\max d'x` over :math:`x \ge l`,
    :math:`1'x = 1`, :math:`|B_t x - r_k e_k| \le r_k`, by its dual

    .. math::
        \min_\lambda\; l'(d - B_t'\lambda) + s \max_j (d - B_t'\lambda)_j
        + r_k (e_k'\lambda + |\lambda|),

    solved by Newton's method on the smoothed dual (log-sum-exp for the max, :math:`\sqrt{
    |\lambda|^2 + \epsilon^2 / (1 + r_k)^2}` for the norm) with :math:`\epsilon` driven from
    0.1 to :math:`10^{-7}` (times the largest :math:`|d_j|`). The value returned is the exact
    dual objective at the final :math:`\lambda`: an upper bound on the maximum, above it by at
    most the smoothing error :math:`\epsilon (s \log J + 1)` plus the Newton tolerance, about
    :math:`10^{-6}` of the scale of ``d``, far below the Monte Carlo error of the bounds.
    """
    sims, D = len(rad), len(directions)
    scale = np.abs(directions).max(axis=1)
    scale[scale == 0] = 1.0
    p_all = np.repeat((directions / scale[:, None])[None], sims, axis=0).reshape(sims * D, -1)
    e_all = np.repeat(e, D, axis=0)
    r_all = np.repeat(rad, D)
    out = np.empty(sims * D)
    for start in range(0, sims * D, chunk):
        sl = slice(start, start + chunk)
        out[sl] = _dual_newton(Bt, p_all[sl], low, s, e_all[sl], r_all[sl])
    return out.reshape(sims, D) * scale[None, :]


def _dual_objective(Bt, p, low, s, e, rad, lam):
    U = p - lam @ Bt
    inner = np.einsum("km,km->k", e, lam) + np.linalg.norm(lam, axis=1)
    return U @ low + s * U.max(axis=1) + rad * inner


def _smoothed(Bt, p, low, s, e, rad, lam, eps, *, hessian):
    U = (p - lam @ Bt) / eps
    top = U.max(axis=1, keepdims=True)
    ex = np.exp(U - top)
    Z = ex.sum(axis=1, keepdims=True)
    lse = eps * (np.log(Z[:, 0]) + top[:, 0])
    # The norm is smoothed by eps / (1 + r), so its smoothing error r * eps / (1 + r) < eps.
    N = np.sqrt(np.sum(lam**2, axis=1) + (eps / (1 + rad)) ** 2)
    value = (U * eps) @ low + s * lse + rad * (np.einsum("km,km->k", e, lam) + N)
    if not hessian:
        return value, None, None
    pi = ex / Z
    Bpi = pi @ Bt.T  # (k, m)
    grad = -(Bt @ low)[None, :] - s * Bpi + rad[:, None] * (e + lam / N[:, None])
    m = lam.shape[1]
    # sum_j pi_j b_j b_j' for every row at once: one product with the outer products of Bt's
    # columns (m*m by J), far faster than a stack of small matrix products.
    outer = (Bt[:, None, :] * Bt[None, :, :]).reshape(m * m, -1)
    H = (pi @ outer.T).reshape(-1, m, m) - Bpi[:, :, None] * Bpi[:, None, :]
    H *= s / eps
    unit = lam / N[:, None]
    H += (rad / N)[:, None, None] * (np.eye(m)[None] - unit[:, :, None] * unit[:, None, :])
    return value, grad, H


def _dual_newton(Bt, p, low, s, e, rad):
    k, m = e.shape
    lam = np.zeros((k, m))
    eye = np.eye(m)[None]
    for eps in 10.0 ** -np.arange(1, 8):
        # Newton decrement (about twice the gap to the smoothed optimum) small against eps.
        tol = (1e-4 if eps < 1e-6 else 1e-1) * eps
        todo = np.arange(k)
        for _ in range(40):
            if todo.size == 0:
                break
            args = (Bt, p[todo], low, s, e[todo], rad[todo])
            value, grad, H = _smoothed(*args, lam[todo], eps, hessian=True)
            H += eye * (1e-12 * np.abs(H).max(axis=(1, 2)) + 1e-300)[:, None, None]
            step = np.linalg.solve(H, -grad[:, :, None])[:, :, 0]
            decrement = -np.einsum("km,km->k", grad, step)
            going = decrement > tol
            todo, value, step, decrement = todo[going], value[going], step[going], decrement[going]
            args = (Bt, p[todo], low, s, e[todo], rad[todo])
            # Start the line search where the step moves no piece of the max by more than
            # 30 eps: beyond that the quadratic model of the log-sum-exp means little.
            reach = np.abs(step @ Bt).max(axis=1)
            t = np.minimum(1.0, 30 * eps / np.maximum(reach, 1e-300))
            bad = np.zeros(todo.size, dtype=bool)
            for _ in range(30):
                trial, _, _ = _smoothed(*args, lam[todo] + t[:, None] * step, eps, hessian=False)
                bad = trial > value - 0.25 * t * decrement
                if not bad.any():
                    break
                t = np.where(bad, t / 4, t)
            # A row whose step cannot lower the value is at its optimum to rounding.
            lam[todo[~bad]] += t[~bad, None] * step[~bad]
            todo = todo[~bad]
    return _dual_objective(Bt, p, low, s, e, rad, lam)


def _exact_fit_range(B, P, w, lower_x):
    """Smallest and largest p_t'(w - x) over x >= l, 1'x = 1, B x = B w (a linear programme)."""
    from scipy.optimize import linprog

    J = B.shape[1]
    A_eq = np.vstack([B, np.ones((1, J))])
    b_eq = np.append(B @ w, 1.0)
    bounds = list(zip(lower_x, [None] * J, strict=True))
    low, high = [], []
    for p in P:
        m = p @ w
        top = linprog(-p, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")
        bottom = linprog(p, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")
        low.append(m + top.fun if top.status == 0 else 0.0)
        high.append(m - bottom.fun if bottom.status == 0 else 0.0)
    return np.array(low), np.array(high)


def _out_of_sample(res, B_active, P_active, spec):
    """scpi's e_method bounds for e_t from the residuals (e_order=1, e_lags=0)."""
    T0 = len(res)
    x0 = np.column_stack([np.ones(T0), B_active])
    x1 = np.column_stack([np.ones(P_active.shape[0]), P_active])
    # scpi's fallbacks: too few residuals for the regressors, or as many as T0 - 1.
    if T0 - 10 <= x0.shape[1] or x0.shape[1] >= T0 - 1:
        x0, x1 = x0[:, :1], x1[:, :1]
    alpha = spec.alpha_out_of_sample / 2
    if spec.out_of_sample == "qreg":
        if x0.shape[1] == 1:
            lo = np.full(len(x1), np.quantile(res, alpha))
            hi = np.full(len(x1), np.quantile(res, 1 - alpha))
            return lo, hi
        q = _quantile_fit(res, x0, x1, (alpha, 1 - alpha))
        return q[:, 0], q[:, 1]
    coef = np.linalg.lstsq(x0, res, rcond=None)[0]
    mean_post, fit = x1 @ coef, x0 @ coef
    dev = res - fit
    with np.errstate(divide="ignore"):
        log_sq = np.log(dev**2)
    if not np.all(np.isfinite(log_sq)):
        # A residual fitted exactly: its log square is -inf. Floor it at the smallest
        # positive squared deviation (scpi would give up with NaN bounds).
        positive = dev[dev != 0] ** 2
        log_sq = np.log(np.maximum(dev**2, positive.min() if positive.size else 1e-300))
    vcoef = np.linalg.lstsq(x0, log_sq, rcond=None)[0]
    var_post = np.exp(x1 @ vcoef)
    q = _quantile_fit(dev, x0, x1, (0.25, 0.75))
    sig = np.minimum(np.sqrt(var_post), np.abs(q[:, 1] - q[:, 0]) / 1.34)
    if spec.out_of_sample == "gaussian":
        half = math.sqrt(-2 * math.log(alpha)) * sig
        return mean_post - half, mean_post + half
    standardised = dev / np.sqrt(np.exp(x0 @ vcoef))
    return (
        mean_post + sig * np.quantile(standardised, alpha),
        mean_post + sig * np.quantile(standardised, 1 - alpha),
    )


def _quantile_fit(y, x0, x1, levels):
    """Predictions at x1 of linear quantile regressions of y on x0 (statsmodels, as scpi)."""
    from statsmodels.regression.quantile_regression import QuantReg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' iteration and max-iteration notices
        model = QuantReg(y, x0)
        return np.column_stack([model.fit(q=q).predict(x1) for q in levels])


def prediction_frame(years, treated, synthetic, bounds: _Bounds) -> pd.DataFrame:
    """Per post year: effect and its intervals (effect = treated - synthetic outcome)."""
    treated = np.asarray(treated, dtype=float)
    synthetic = np.asarray(synthetic, dtype=float)
    effect = treated - synthetic
    return pd.DataFrame(
        {
            "effect": effect,
            "lower_in_sample": effect - bounds.in_upper,
            "upper_in_sample": effect - bounds.in_lower,
            "lower": effect - bounds.in_upper - bounds.out_upper,
            "upper": effect - bounds.in_lower - bounds.out_lower,
            "synthetic": synthetic,
            "synthetic_lower": synthetic + bounds.in_lower + bounds.out_lower,
            "synthetic_upper": synthetic + bounds.in_upper + bounds.out_upper,
        },
        index=pd.Index(list(years), name="year"),
    )


def prediction_facts(pi: pd.DataFrame | None, options) -> list[tuple[str, str]]:
    """Summary lines for a result's prediction intervals (none without them)."""
    if pi is None:
        return []
    level = options.get("prediction_level", float("nan"))
    years = "; ".join(
        f"{k} {r.effect:.3f} [{r.lower:.3f}, {r.upper:.3f}]" for k, r in pi.iloc[:-1].iterrows()
    )
    average = pi.iloc[-1]
    return [
        (
            f"Prediction intervals (>= {level:.0%})",
            f"average {average.effect:.3f} [{average.lower:.3f}, {average.upper:.3f}] "
            f"(in-sample only [{average.lower_in_sample:.3f}, {average.upper_in_sample:.3f}])",
        ),
        ("Effect by year", years),
    ]


def prediction_band(ax, pi: pd.DataFrame | None) -> None:
    """Shade the effect's prediction intervals on a gaps figure (in+out light, in-sample
    only darker)."""
    if pi is None:
        return
    by_year = pi.iloc[:-1]
    x = np.asarray(by_year.index, dtype=float)
    ax.fill_between(
        x,
        by_year["lower"],
        by_year["upper"],
        color="C0",
        alpha=0.15,
        linewidth=0,
        label="prediction interval",
    )
    ax.fill_between(
        x,
        by_year["lower_in_sample"],
        by_year["upper_in_sample"],
        color="C0",
        alpha=0.3,
        linewidth=0,
        label="in-sample uncertainty",
    )
    ax.legend(loc="best", frameon=False)
