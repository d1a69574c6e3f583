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
proportional to the number of groups: bounded Brent for one parameter, damped Newton steps
(:func:`._fastfit.newton_minimise`) for a random slope's three. A fit on the boundary (a variance
or a correlation at its limit) can leave the profile with local optima: every point is
optimised from the previous point's optimum and from the ML optimum, keeping the best.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from ._fastfit import canonical_slope, newton_minimise

__all__ = ["ProfileLikelihood"]

LOG_2PI = float(np.log(2 * np.pi))


class ProfileLikelihood:
    """The ML profile of the fixed effects of one two-level model.

    Parameters
    ----------
    evaluate
        ``phis (B, k) -> (log|M| (B,), [X y]' M^-1 [X y] (B, p+1, p+1))``: the model at ``B``
        values of its variance parameters (lme4's theta).
    n_obs, p
        Pupils and fixed effects (the last row/column of the cross-products is ``y``).
    start
        Where to start the ML fit (the REML optimum).
    slope
        ``True`` for the intercept-and-slope parametrisation (three parameters, see
        :func:`._fastfit.fit_slope`); ``False`` for a random intercept (theta >= 0).
    """

    def __init__(self, evaluate, n_obs: int, p: int, start: np.ndarray, *, slope: bool):
        self.evaluate = evaluate
        self.n, self.p, self.slope = int(n_obs), int(p), slope
        self.dev_ml, self.phi_ml = self._minimise(None, 0.0, [np.asarray(start, dtype=float)])
        logdet, q = evaluate(self.phi_ml[None, :])
        q = q[0]
        a = q[:p, :p]
        self.beta_ml = np.linalg.solve(a, q[:p, p])
        r2 = float(q[p, p] - q[:p, p] @ self.beta_ml)
        self.se_ml = np.sqrt(np.diag(r2 / self.n * np.linalg.inv(a)))
        self._known: dict[int, list] = {}

    def _fixed_deviance(self, phis: np.ndarray, j: int | None, b) -> np.ndarray:
        """ML deviance at each row of ``phis``, the coefficients profiled out but ``beta_j = b``
        (``b`` a number or one per row)."""
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            logdet, q = self.evaluate(phis)
            p = self.p
            others = [k for k in range(p) if k != j]
            if j is None:
                c, s = q[:, others, p], q[:, p, p]
            else:
                b = np.broadcast_to(np.asarray(b, dtype=float), (len(phis),))
                c = q[:, others, p] - b[:, None] * q[:, others, j]
                s = q[:, p, p] - 2 * b * q[:, j, p] + b * b * q[:, j, j]
            a = q[:, others][:, :, others]
            sign, _ = np.linalg.slogdet(a)
            ok = sign > 0
            safe = np.where(ok[:, None, None], a, np.eye(len(others)))
            r2 = s - np.einsum("bi,bi->b", c, np.linalg.solve(safe, c[..., None])[..., 0])
            dev = logdet + self.n * (1.0 + LOG_2PI + np.log(r2 / self.n))
        return np.where(ok & (r2 > 0) & np.isfinite(logdet), dev, np.inf)

    def _minimise(self, j: int | None, b, starts) -> tuple[float, np.ndarray]:
        """Minimum over the variance parameters at one ``b`` (``j = None``: the ML fit)."""
        values, phis = self._minimise_many(j, np.atleast_1d(float(b)), [starts])
        return float(values[0]), phis[0]

    def _minimise_many(self, j, bs: np.ndarray, starts: list) -> tuple[np.ndarray, np.ndarray]:
        """Minima at several values ``bs`` of ``beta_j``, each from its own list of starts."""
        if not self.slope:
            out_v, out_x = [], []
            for b, group in zip(bs, starts, strict=True):

                def fun(x, b=b):
                    return float(self._fixed_deviance(np.array([[x]]), j, b)[0])

                upper = max(4.0, 4.0 * max(abs(float(s[0])) for s in group))
                best = (fun(0.0), 0.0)
                while True:
                    res = optimize.minimize_scalar(
                        fun, bounds=(0.0, upper), method="bounded", options={"xatol": 1e-10}
                    )
                    if res.fun < best[0]:
                        best = (float(res.fun), float(res.x))
                    if best[1] < 0.9 * upper or upper > 1e6:  # else: beyond the bracket
                        break
                    upper *= 10
                out_v.append(best[0])
                out_x.append([best[1]])
            return np.array(out_v), np.array(out_x)
        rows = [(k, np.asarray(x, dtype=float)) for k, group in enumerate(starts) for x in group]
        owner = np.array([k for k, _ in rows])
        x0 = canonical_slope(np.array([x for _, x in rows]))
        x0[:, 0] = np.maximum(x0[:, 0], 0.05)
        x0[:, 2] = np.maximum(x0[:, 2], 0.05)  # off the boundary (see fit_slope)
        b_rows = np.asarray(bs, dtype=float)[owner]
        x, values = newton_minimise(lambda index, v: self._fixed_deviance(v, j, b_rows[index]), x0)
        x = canonical_slope(x)
        out_v = np.full(len(bs), np.inf)
        out_x = np.zeros((len(bs), x.shape[1]))
        for row, k in enumerate(owner):
            if values[row] < out_v[k]:
                out_v[k], out_x[k] = values[row], x[row]
        return out_v, out_x

    def zeta_many(self, j: int, bs) -> np.ndarray:
        """Signed roots of the deviance increase at ``beta_j = b`` for each ``b`` in ``bs``.

        Each point is optimised from the ML optimum and from the optimum found at the nearest
        point evaluated so far.
        """
        bs = np.asarray(bs, dtype=float)
        known = self._known.setdefault(j, [])
        starts = []
        for b in bs:
            group = [self.phi_ml]
            if known:
                group.insert(0, min(known, key=lambda item: abs(item[0] - b))[1])
            starts.append(group)
        values, phis = self._minimise_many(j, bs, starts)
        known.extend(zip(bs.tolist(), phis, strict=True))
        increase = np.maximum(0.0, values - self.dev_ml)
        return np.sign(bs - self.beta_ml[j]) * np.sqrt(increase)

    def zeta(self, j: int, b: float) -> float:
        """Signed square root of the deviance increase at ``beta_j = b``."""
        return float(self.zeta_many(j, [b])[0])

    def interval(self, j: int, alpha: float = 0.05) -> tuple[float, float]:
        """Profile interval of coefficient ``j`` at level ``1 - alpha``.

        Both roots are found together: first a bracket from points near the Wald limits
        (zeta is close to linear), then false-position steps with the Illinois modification,
        each step evaluating the two sides in one batch, to ``|zeta - target| < 1e-11``.
        """
        z = float(stats.norm.ppf(1 - alpha / 2))
        est, se = float(self.beta_ml[j]), float(self.se_ml[j])
        targets = np.array([-z, z])
        inner = np.full(2, est)  # zeta(est) = 0: inside the interval
        f_inner = -np.abs(targets)
        outer = np.full(2, np.nan)
        f_outer = np.full(2, np.nan)
        # bracket: the Wald limits, widened until zeta passes the target
        step = np.full(2, 1.0)
        for _ in range(40):
            open_ = np.flatnonzero(np.isnan(outer))
            if open_.size == 0:
                break
            cand = est + targets[open_] * se * step[open_]
            f = np.abs(self.zeta_many(j, cand)) - z
            for k, side in enumerate(open_):
                if f[k] >= 0:
                    outer[side], f_outer[side] = cand[k], f[k]
                else:
                    inner[side], f_inner[side] = cand[k], f[k]
                    step[side] *= 2
        bounds = np.where(np.isnan(outer), targets * np.inf, np.nan)
        live = np.flatnonzero(~np.isnan(outer))
        last = np.zeros(2, dtype=int)  # Illinois: which end was kept last time
        for _ in range(100):
            if live.size == 0:
                break
            new = inner[live] - f_inner[live] * (outer[live] - inner[live]) / (
                f_outer[live] - f_inner[live]
            )
            f = np.abs(self.zeta_many(j, new)) - z
            done = []
            for k, side in enumerate(live):
                if f[k] >= 0:
                    outer[side], f_outer[side] = new[k], f[k]
                    if last[side] == 1:
                        f_inner[side] /= 2
                    last[side] = 1
                else:
                    inner[side], f_inner[side] = new[k], f[k]
                    if last[side] == -1:
                        f_outer[side] /= 2
                    last[side] = -1
                width = abs(outer[side] - inner[side])
                if abs(f[k]) < 1e-11 or width < 1e-11 * (abs(new[k]) + se):
                    bounds[side] = new[k]
                    done.append(side)
            live = np.array([side for side in live if side not in done], dtype=int)
        for side in live:  # not converged in 100 steps (never seen): best point
            bounds[side] = inner[side] if abs(f_inner[side]) < abs(f_outer[side]) else outer[side]
        return float(bounds[0]), float(bounds[1])

    def p_value(self, j: int, null: float = 0.0) -> float:
        """Likelihood-ratio test of ``beta_j = null``: ``2 * (1 - Phi(|zeta(null)|))``."""
        return float(2 * stats.norm.sf(abs(self.zeta(j, null))))
