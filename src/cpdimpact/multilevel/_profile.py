r"""Profile-likelihood intervals for a fixed effect, as lme4's ``confint(method = "profile")``.

lme4 profiles the **ML** deviance (a REML fit is refitted by ML first): for a value *b* of
coefficient *j* the model is refitted with :math:`\beta_j = b` held fixed and the variance
parameters and the other coefficients re-optimised. The signed root

.. math:: \zeta(b) = \operatorname{sign}(b - \hat\beta_j^{ML})\sqrt{d(b) - d(\hat\beta^{ML})}

is approximately standard normal, and the interval is :math:`\{b: |\zeta(b)| \le z_{1-\alpha/2}\}`
(Bates, Mächler, Bolker & Walker 2015, sec. 5.1). lme4 interpolates the roots with splines
through a few profile points; here they are solved for (Brent's method).

With :math:`\beta_j` fixed the other coefficients still profile out in closed form: writing
:math:`Q = [X\;y]^\top M^{-1}[X\;y]` (what :func:`._engine.evaluate` returns), the residual
quadratic form of :math:`y - b x_j` on the other columns is

.. math:: r^2(b) = s(b) - c(b)^\top Q_{-j,-j}^{-1} c(b),\quad
          c(b) = Q_{-j,y} - b\,Q_{-j,j},\quad s(b) = Q_{yy} - 2bQ_{jy} + b^2 Q_{jj},

so each profile point costs one optimisation of the variance parameters, each evaluation work
proportional to the number of groups. A fit on the boundary (a variance or a correlation at its
limit) can leave the profile with local optima: every point is optimised from the ML optimum,
from the previous point's optimum and from lme4's default start, keeping the best.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

__all__ = ["ProfileLikelihood", "minimise"]

LOG_2PI = float(np.log(2 * np.pi))


class ProfileLikelihood:
    """The ML profile of the fixed effects of one model.

    Parameters
    ----------
    evaluate
        ``phi -> (log|M|, [X y]' M^-1 [X y])`` at the variance parameters ``phi``.
    n_obs, p
        Pupils and fixed effects (the last row/column of the cross-products is ``y``).
    bounds
        Bounds of ``phi`` (lme4's: 0 below for diagonal Cholesky entries).
    start
        Where to start the ML fit (e.g. the REML optimum).
    """

    def __init__(self, evaluate, n_obs: int, p: int, bounds, start: np.ndarray):
        self.evaluate = evaluate
        self.n, self.p = int(n_obs), int(p)
        self.bounds = list(bounds)
        self.dev_ml, self.phi_ml = minimise(
            lambda phi: self._fixed_deviance(phi, None, 0.0), [start], self.bounds
        )
        logdet, q = evaluate(self.phi_ml)
        a = q[:p, :p]
        self.beta_ml = np.linalg.solve(a, q[:p, p])
        r2 = float(q[p, p] - q[:p, p] @ self.beta_ml)
        self.se_ml = np.sqrt(np.diag(r2 / self.n * np.linalg.inv(a)))
        self._last: dict[int, np.ndarray] = {}

    def _fixed_deviance(self, phi: np.ndarray, j: int | None, b: float) -> float:
        """ML deviance at ``phi``, the coefficients profiled out except ``beta_j = b``."""
        try:
            logdet, q = self.evaluate(phi)
        except (np.linalg.LinAlgError, FloatingPointError):
            return float("inf")
        p = self.p
        others = [k for k in range(p) if k != j]
        if j is None:
            c, s = q[others, p], q[p, p]
        else:
            c = q[others, p] - b * q[others, j]
            s = q[p, p] - 2 * b * q[j, p] + b * b * q[j, j]
        try:
            r2 = float(s - c @ np.linalg.solve(q[np.ix_(others, others)], c)) if others else s
        except np.linalg.LinAlgError:
            return float("inf")
        if not (np.isfinite(logdet) and r2 > 0):
            return float("inf")
        return float(logdet + self.n * (1.0 + LOG_2PI + np.log(r2 / self.n)))

    def deviance_at(self, j: int, b: float) -> float:
        """Minimum ML deviance with coefficient ``j`` held at ``b``."""
        starts = [self._last.get(j, self.phi_ml), self.phi_ml]
        value, phi = minimise(lambda phi: self._fixed_deviance(phi, j, b), starts, self.bounds)
        self._last[j] = phi
        return value

    def zeta(self, j: int, b: float) -> float:
        """Signed square root of the deviance increase at ``beta_j = b``."""
        increase = max(0.0, self.deviance_at(j, b) - self.dev_ml)
        return float(np.sign(b - self.beta_ml[j]) * np.sqrt(increase))

    def interval(self, j: int, alpha: float = 0.05) -> tuple[float, float]:
        """Profile interval of coefficient ``j`` at level ``1 - alpha``."""
        z = float(stats.norm.ppf(1 - alpha / 2))
        est, se = float(self.beta_ml[j]), float(self.se_ml[j])
        bounds = []
        for direction in (-1.0, 1.0):
            target = direction * z
            self._last.pop(j, None)
            step, inner, outer = se * z, est, None
            for _ in range(40):
                candidate = est + direction * step
                if direction * (self.zeta(j, candidate) - target) >= 0:
                    outer = candidate
                    break
                inner, step = candidate, step * 2
            if outer is None:
                bounds.append(direction * np.inf)
                continue
            root = optimize.brentq(
                lambda b, t=target: self.zeta(j, b) - t,
                min(inner, outer),
                max(inner, outer),
                xtol=1e-10,
                rtol=1e-12,
            )
            bounds.append(float(root))
        return bounds[0], bounds[1]

    def p_value(self, j: int, null: float = 0.0) -> float:
        """Likelihood-ratio test of ``beta_j = null``: ``2 * (1 - Phi(|zeta(null)|))``."""
        return float(2 * stats.norm.sf(abs(self.zeta(j, null))))


def minimise(objective, starts, bounds) -> tuple[float, np.ndarray]:
    """Minimise a smooth function of the variance parameters from several starts.

    One parameter: bounded Brent on ``[0, upper]``. Several: SLSQP from each start (distinct
    starts only), then, for a parameter left near its lower bound, probes inside the feasible
    region polished by Powell's method, since the deviance is even in a diagonal Cholesky entry
    and a gradient method can stop on the bound though the optimum lies inside. Returns the
    best value and its parameters.
    """
    starts = [np.asarray(s, dtype=float) for s in starts]
    if len(bounds) == 1 and bounds[0][0] == 0.0:
        upper = max(4.0, 4.0 * max(float(s[0]) for s in starts))
        fun = lambda x: objective(np.array([x]))  # noqa: E731
        res = optimize.minimize_scalar(
            fun, bounds=(0.0, upper), method="bounded", options={"xatol": 1e-10, "maxiter": 500}
        )
        best = (float(res.fun), np.array([float(res.x)]))
        at_zero = float(fun(0.0))
        if at_zero <= best[0]:
            best = (at_zero, np.array([0.0]))
        while best[1][0] > 0.9 * upper and upper < 1e6:  # optimum beyond the bracket
            upper *= 10
            res = optimize.minimize_scalar(
                fun, bounds=(0.0, upper), method="bounded", options={"xatol": 1e-10}
            )
            if res.fun < best[0]:
                best = (float(res.fun), np.array([float(res.x)]))
        return best
    best_value, best_phi = np.inf, starts[0]
    seen: list[np.ndarray] = []
    for start in starts:
        if any(np.allclose(start, s) for s in seen):
            continue
        seen.append(start)
        res = optimize.minimize(
            objective,
            start,
            method="SLSQP",
            bounds=bounds,
            options={"ftol": 1e-15, "maxiter": 500},
        )
        if np.isfinite(res.fun) and res.fun < best_value:
            best_value, best_phi = float(res.fun), np.asarray(res.x)
    for i, (low, _) in enumerate(bounds):
        if low is not None and best_phi[i] < 1e-4:
            for value in (0.01, 0.1, 0.5):
                x0 = best_phi.copy()
                x0[i] = value
                if objective(x0) < best_value:
                    res = optimize.minimize(
                        objective,
                        x0,
                        method="Powell",
                        bounds=bounds,
                        options={"xtol": 1e-10, "ftol": 1e-14, "maxiter": 5000},
                    )
                    if res.fun < best_value:
                        best_value, best_phi = float(res.fun), np.asarray(res.x)
    return best_value, best_phi
