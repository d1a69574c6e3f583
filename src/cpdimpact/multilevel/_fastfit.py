r"""Batched two-level fits from per-site sufficient statistics, for resampling and profiles.

The trial analyses refit the same two-level model hundreds of times (bootstrap, permutation,
profile likelihood). Their models are narrow: pupils in sites with a random intercept
(:math:`q=1`) or a random intercept and a random slope on a 0/1 treatment (:math:`q=2`). For
those the likelihood of :mod:`._engine` has closed forms per site, and many data sets ("draws")
can be evaluated at once as arrays with a leading draw axis.

With :math:`W = [X\;y]` (:math:`k = p + 1` columns), per draw *b* and site *g*: :math:`n_g`
pupils, :math:`n_{Tg}` treated pupils, site sums :math:`r_g = \sum_i w_i` and treated-pupil sums
:math:`t_g = \sum_{i: T_i = 1} w_i`, and :math:`C = W^\top W`. With :math:`V = \sigma^2 M`:

* random intercept, relative variance :math:`\theta^2`: :math:`K_g = 1 + \theta^2 n_g`,
  :math:`\log|M| = \sum_g \log K_g` and
  :math:`W^\top M^{-1} W = C - \sum_g \frac{\theta^2}{K_g} r_g r_g^\top`;
* intercept and slope, :math:`\Lambda = \begin{pmatrix} a & 0\\ b & c\end{pmatrix}` (lme4's
  relative Cholesky factor), :math:`Z_g^\top Z_g = \begin{pmatrix} n_g & n_{Tg}\\ n_{Tg} &
  n_{Tg}\end{pmatrix}`, :math:`K_g = I + \Lambda^\top Z_g^\top Z_g \Lambda` and, with
  :math:`u_g = a r_g + b t_g`, :math:`v_g = c\,t_g`,

  .. math:: W^\top M^{-1} W = C - \sum_g \frac{k_{22} u_g u_g^\top - k_{12}(u_g v_g^\top +
            v_g u_g^\top) + k_{11} v_g v_g^\top}{\det K_g},\quad
            \log|M| = \sum_g \log\det K_g

  (Woodbury). The profiled deviances then follow as in :mod:`._engine`.

Prior weights :math:`w_i` (lme4's ``weights``, see :mod:`._engine`) replace the counts and sums
by weighted ones: :math:`n_g = \sum_i w_i`, :math:`r_g = \sum_i w_i W_i`, :math:`C = W^\top
\mathrm{diag}(w) W` (and likewise the treated sums). The deviances then lack the constant
:math:`-\sum_i \log w_i`, which neither the optimum nor a profile (differences of deviances)
depends on.

A random-intercept REML fit is a one-dimensional problem: it is solved for all draws at once
by golden-section search on :math:`\psi = \theta^2/(1+\theta^2) \in [0, 1)`. A slope model has
three parameters: all draws take damped Newton steps together (:func:`fit_slope`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SiteStats", "canonical_slope", "fit_intercept", "fit_slope", "newton_minimise"]

LOG_2PI = float(np.log(2 * np.pi))
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True, eq=False)
class SiteStats:
    """Sufficient statistics of ``B`` data sets with ``G`` sites each (axis 0: draws).

    ``r`` are site sums of ``W = [X, y]`` (B, G, k); ``rt`` the same over treated pupils
    (slope models only); ``cross`` is ``W'W`` (B, k, k); ``p`` the number of X columns.
    """

    n: np.ndarray
    r: np.ndarray
    cross: np.ndarray
    n_obs: np.ndarray
    p: int
    nt: np.ndarray | None = None
    rt: np.ndarray | None = None

    @property
    def n_draws(self) -> int:
        return self.n.shape[0]

    def take(self, index) -> SiteStats:
        """The statistics of some draws."""

        def pick(a):
            return None if a is None else a[index]

        return SiteStats(
            n=self.n[index],
            r=self.r[index],
            cross=self.cross[index],
            n_obs=self.n_obs[index],
            p=self.p,
            nt=pick(self.nt),
            rt=pick(self.rt),
        )

    @classmethod
    def build(
        cls,
        w: np.ndarray,
        site: np.ndarray,
        n_sites: int,
        p: int,
        *,
        draw: np.ndarray | None = None,
        n_draws: int = 1,
        treated: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> SiteStats:
        """Statistics from rows ``w`` (T, k) with site codes ``0..n_sites-1`` per draw.

        ``draw`` gives each row's draw (``0..n_draws-1``); ``treated`` (0/1 per row) adds the
        treated-pupil sums a slope model needs; ``weights`` are prior weights per row (None:
        unweighted).
        """
        k = w.shape[1]
        draw = np.zeros(len(w), dtype=np.int64) if draw is None else draw
        cell = draw * n_sites + site
        size = n_draws * n_sites

        def sums(weights=None):
            return np.bincount(cell, weights=weights, minlength=size)

        n_obs = np.bincount(draw, minlength=n_draws).astype(float)
        rows = w
        if weights is None:
            n = sums().astype(float).reshape(n_draws, n_sites)
        else:
            n = sums(weights).reshape(n_draws, n_sites)
            w = w * weights[:, None]  # weighted sums; the cross-products pair w with rows
        r = np.stack([sums(w[:, j]) for j in range(k)], axis=-1).reshape(n_draws, n_sites, k)
        cross = np.empty((n_draws, k, k))
        for i in range(k):
            for j in range(i, k):
                cross[:, i, j] = cross[:, j, i] = np.bincount(
                    draw, weights=w[:, i] * rows[:, j], minlength=n_draws
                )
        nt = rt = None
        if treated is not None:
            tw = w * treated[:, None]
            t_weight = treated.astype(float) if weights is None else treated * weights
            nt = sums(t_weight).reshape(n_draws, n_sites)
            rt = np.stack([sums(tw[:, j]) for j in range(k)], axis=-1).reshape(n_draws, n_sites, k)
        return cls(n=n, r=r, cross=cross, n_obs=n_obs, p=p, nt=nt, rt=rt)

    # ------------------------------------------------------------------ likelihood
    def evaluate_intercept(self, theta2: np.ndarray):
        """``log|M|`` (B,) and ``W'M^-1 W`` (B, k, k) of the random-intercept model."""
        theta2 = np.asarray(theta2, dtype=float)
        big_k = 1.0 + theta2[:, None] * self.n
        logdet = np.log(big_k).sum(axis=1)
        kappa = theta2[:, None] / big_k
        q = self.cross - _weighted_gram(kappa, self.r, self.r)
        return logdet, q

    def evaluate_slope(self, phi: np.ndarray):
        """``log|M|`` and ``W'M^-1 W`` of the intercept-and-slope model; ``phi`` (B, 3)."""
        a, b, c = (phi[:, i][:, None] for i in range(3))
        n, nt = self.n, self.nt
        k11 = 1.0 + a * a * n + (2 * a * b + b * b) * nt
        k12 = c * nt * (a + b)
        k22 = 1.0 + c * c * nt
        det = k11 * k22 - k12 * k12
        logdet = np.log(det).sum(axis=1)
        # K^-1 = R R' with R lower triangular: [u v] K^-1 [u v]' = w1 w1' + w2 w2'
        r11 = np.sqrt(k22 / det)
        r21 = -k12 / (det * r11)
        r22 = 1.0 / np.sqrt(k22)
        w1 = (a * r11)[..., None] * self.r + (b * r11 + c * r21)[..., None] * self.rt
        w2 = (c * r22)[..., None] * self.rt
        w = np.concatenate([w1, w2], axis=1)
        return logdet, self.cross - np.matmul(np.swapaxes(w, 1, 2), w)

    def profiled(self, logdet: np.ndarray, q: np.ndarray, reml: bool):
        """Deviance (B,), GLS coefficients (B, p) and ``r^2`` (B,) from an evaluation."""
        p = self.p
        a = q[:, :p, :p]
        rhs = q[:, :p, p]
        with np.errstate(invalid="ignore", divide="ignore"):
            sign, logdet_a = np.linalg.slogdet(a)
            ok = sign > 0
            safe = np.where(ok[:, None, None], a, np.eye(p))
            beta = np.linalg.solve(safe, rhs[..., None])[..., 0]
            r2 = q[:, p, p] - np.einsum("bi,bi->b", rhs, beta)
            ok &= r2 > 0
            if reml:
                dof = self.n_obs - p
                dev = logdet + logdet_a + dof * (1.0 + LOG_2PI + np.log(r2 / dof))
            else:
                dof = self.n_obs
                dev = logdet + dof * (1.0 + LOG_2PI + np.log(r2 / dof))
        dev = np.where(ok, dev, np.inf)
        return dev, beta, r2


def _weighted_gram(weights: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per draw, ``sum_g weights_g a_g b_g'``: (B, G), (B, G, k), (B, G, k) -> (B, k, k)."""
    return np.matmul(np.swapaxes(a * weights[..., None], 1, 2), b)


@dataclass(frozen=True)
class BatchFit:
    """Per draw: fixed effects, residual variance, random-effect covariance, success."""

    beta: np.ndarray  # (B, p)
    sigma2: np.ndarray  # (B,)
    cov: np.ndarray  # (B, q, q): sigma^2 Lambda Lambda'
    ok: np.ndarray  # (B,) bool
    phi: np.ndarray  # (B, n_params)


def fit_intercept(stats: SiteStats, *, reml: bool = True, iterations: int = 60) -> BatchFit:
    """REML (or ML) random-intercept fits of every draw at once, by golden-section search.

    The profiled criterion is minimised over ``psi = theta^2 / (1 + theta^2)`` in [0, 1); the
    boundary psi = 0 (no site variance) is compared explicitly. Sixty iterations shrink the
    bracket below the criterion's numerical flatness at its optimum.
    """
    b = stats.n_draws

    def crit(psi):
        theta2 = psi / (1.0 - psi)
        logdet, q = stats.evaluate_intercept(theta2)
        return stats.profiled(logdet, q, reml)[0]

    lo = np.zeros(b)
    hi = np.full(b, 1.0 - 1e-10)
    x1 = hi - _GOLDEN * (hi - lo)
    x2 = lo + _GOLDEN * (hi - lo)
    f1, f2 = crit(x1), crit(x2)
    for _ in range(iterations):
        left = f1 <= f2  # the minimum lies in [lo, x2]
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        new_x1 = hi - _GOLDEN * (hi - lo)
        new_x2 = lo + _GOLDEN * (hi - lo)
        x_eval = np.where(left, new_x1, new_x2)
        f_eval = crit(x_eval)
        x2, f2, x1, f1 = (
            np.where(left, x1, new_x2),
            np.where(left, f1, f_eval),
            np.where(left, new_x1, x2),
            np.where(left, f_eval, f2),
        )
    psi = np.where(f1 <= f2, x1, x2)
    f_best = np.minimum(f1, f2)
    f_zero = crit(np.zeros(b))
    psi = np.where(f_zero <= f_best, 0.0, psi)
    theta2 = psi / (1.0 - psi)
    logdet, q = stats.evaluate_intercept(theta2)
    dev, beta, r2 = stats.profiled(logdet, q, reml)
    dof = stats.n_obs - stats.p if reml else stats.n_obs
    sigma2 = r2 / dof
    return BatchFit(
        beta=beta,
        sigma2=sigma2,
        cov=(sigma2 * theta2)[:, None, None],
        ok=np.isfinite(dev),
        phi=np.sqrt(theta2)[:, None],
    )


def fit_slope(
    stats: SiteStats, start: np.ndarray, *, reml: bool = True, max_iter: int = 60
) -> BatchFit:
    r"""Intercept-and-slope fits of every draw at once, by damped Newton steps.

    The criterion depends on :math:`\Lambda` only through :math:`\Lambda\Lambda^\top =
    \begin{pmatrix} a^2 & ab\\ ab & b^2 + c^2\end{pmatrix}`, so it is minimised over
    unconstrained :math:`(a, b, c)` (lme4's bounds ``a, c >= 0`` are restored by sign flips
    that leave it unchanged; a variance or a correlation on its boundary is an ordinary
    stationary point there), by :func:`newton_minimise`. All draws start from ``start``
    (lme4's theta of the full sample), moved off the boundary.
    """
    b_all = stats.n_draws
    start = np.asarray(start, dtype=float)
    start = np.array([max(abs(start[0]), 0.05), start[1], max(abs(start[2]), 0.05)])

    cache: dict = {}

    def crit(index: np.ndarray, phi: np.ndarray) -> np.ndarray:
        # newton_minimise passes the same index array for a whole iteration: subset once
        if cache.get("index") is not index:
            cache["index"], cache["sub"] = index, stats.take(index)
        sub = cache["sub"]
        logdet, q = sub.evaluate_slope(phi)
        return sub.profiled(logdet, q, reml)[0]

    phi, _ = newton_minimise(crit, np.tile(start, (b_all, 1)), max_iter=max_iter)
    phi = canonical_slope(phi)
    logdet, q = stats.evaluate_slope(phi)
    dev, beta, r2 = stats.profiled(logdet, q, reml)
    dof = stats.n_obs - stats.p if reml else stats.n_obs
    sigma2 = r2 / dof
    a, bb, c = phi[:, 0], phi[:, 1], phi[:, 2]
    cov = np.empty((b_all, 2, 2))
    cov[:, 0, 0] = sigma2 * a * a
    cov[:, 0, 1] = cov[:, 1, 0] = sigma2 * a * bb
    cov[:, 1, 1] = sigma2 * (bb * bb + c * c)
    return BatchFit(beta=beta, sigma2=sigma2, cov=cov, ok=np.isfinite(dev), phi=phi)


def canonical_slope(phi: np.ndarray) -> np.ndarray:
    """lme4's sign convention for (a, b, c): a >= 0 (b flips with it), c >= 0."""
    phi = np.array(phi, dtype=float)
    flip = phi[:, 0] < 0
    phi[flip, :2] *= -1
    phi[:, 2] = np.abs(phi[:, 2])
    return phi


def newton_minimise(crit, x0: np.ndarray, *, max_iter: int = 60):
    """Minimise ``crit(index, x)`` for many problems at once by damped Newton steps.

    ``crit(index, x)`` evaluates problems ``index`` at rows ``x`` (len(index), k) and
    returns (len(index),) values (``inf`` where undefined). Gradient and Hessian by central
    differences; the Hessian is shifted to be positive definite (Levenberg-Marquardt) and
    each step backtracks until the criterion falls enough (Armijo). Problems that have
    converged drop out. Returns the minimisers and their values.
    """
    x_all = np.array(x0, dtype=float)
    b_all, k = x_all.shape
    every = np.arange(b_all)
    value = crit(every, x_all)
    active = np.flatnonzero(np.isfinite(value))
    for _ in range(max_iter):
        if active.size == 0:
            break
        x, f = x_all[active], value[active]
        grad, hess = _central_derivatives(lambda v, a=active: crit(a, v), x, f)
        eig_min = np.linalg.eigvalsh(hess)[:, 0]
        scale = np.maximum(np.abs(np.diagonal(hess, axis1=1, axis2=2)).max(axis=1), 1.0)
        shift = np.maximum(0.0, -eig_min) + 1e-8 * scale
        step = np.linalg.solve(hess + shift[:, None, None] * np.eye(k), grad[..., None])[..., 0]
        slope = -np.einsum("bi,bi->b", grad, step)  # directional derivative (< 0)
        t = np.ones(len(active))
        new_x, new_f = x.copy(), f.copy()
        pending = np.ones(len(active), dtype=bool)
        for _ in range(40):
            idx = np.flatnonzero(pending)
            if idx.size == 0:
                break
            cand = x[idx] - t[idx, None] * step[idx]
            fc = crit(active[idx], cand)
            good = np.isfinite(fc) & (fc <= f[idx] + 1e-4 * t[idx] * slope[idx])
            new_x[idx[good]], new_f[idx[good]] = cand[good], fc[good]
            pending[idx[good]] = False
            t[idx[~good]] *= 0.5
        moved = np.abs(new_x - x).max(axis=1)
        x_all[active], value[active] = new_x, new_f
        done = (moved < 1e-9 * np.maximum(1.0, np.abs(x).max(axis=1))) | (
            np.abs(f - new_f) < 1e-12 * np.maximum(1.0, np.abs(f))
        )
        active = active[~done]
    return x_all, value


def _central_derivatives(fun, x: np.ndarray, f0: np.ndarray):
    """Batched gradient and Hessian of ``fun`` (B, k) -> (B,) by central differences."""
    b, k = x.shape
    h = 1e-4 * np.maximum(np.abs(x), 0.1)
    grad = np.empty((b, k))
    hess = np.empty((b, k, k))
    plus = []
    for i in range(k):
        e = np.zeros((b, k))
        e[:, i] = h[:, i]
        fp, fm = fun(x + e), fun(x - e)
        plus.append(e)
        grad[:, i] = (fp - fm) / (2 * h[:, i])
        hess[:, i, i] = (fp - 2 * f0 + fm) / h[:, i] ** 2
    for i in range(k):
        for j in range(i):
            ei, ej = plus[i], plus[j]
            value = (fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)) / (
                4 * h[:, i] * h[:, j]
            )
            hess[:, i, j] = hess[:, j, i] = value
    return grad, hess
