"""Degrees of freedom for fixed effects: Satterthwaite, between-within, or normal."""

from __future__ import annotations

import numpy as np

from ._blas import single_threaded_blas
from ._engine import Structure, evaluate, full_deviance, gls

__all__ = ["satterthwaite_df", "between_within_df", "varpar_hessian"]


def _richardson_hessian(fun, x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Central-difference Hessian with one Richardson extrapolation (error O(h^4))."""

    def central(h):
        k = x.size
        out = np.empty((k, k))
        f0 = fun(x)
        for i in range(k):
            ei = np.zeros(k)
            ei[i] = h[i]
            out[i, i] = (fun(x + ei) - 2 * f0 + fun(x - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(k)
                ej[j] = h[j]
                out[i, j] = out[j, i] = (
                    fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)
                ) / (4 * h[i] * h[j])
        return out

    coarse, fine = central(steps), central(steps / 2)
    return fine + (fine - coarse) / 3


def _richardson_gradient(fun, x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Central-difference gradient of a scalar function, with Richardson extrapolation."""
    return _richardson_jacobian(lambda v: np.atleast_1d(fun(v)), x, steps)[0]


def _richardson_jacobian(fun, x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian with one Richardson extrapolation; rows are outputs."""

    def central(h):
        cols = []
        for i in range(x.size):
            ei = np.zeros(x.size)
            ei[i] = h[i]
            cols.append((fun(x + ei) - fun(x - ei)) / (2 * h[i]))
        return np.column_stack(cols)

    coarse, fine = central(steps), central(steps / 2)
    return fine + (fine - coarse) / 3


def varpar_hessian(st: Structure, phi: np.ndarray, sigma: float, reml: bool) -> np.ndarray:
    """Hessian of the (REML) deviance in the variance parameters ``(phi, sigma)``."""
    varpar = np.append(phi, sigma)
    steps = 1e-3 * np.maximum(np.abs(varpar), 0.1)
    return _richardson_hessian(lambda v: full_deviance(st, v[:-1], v[-1], reml), varpar, steps)


def satterthwaite_df(st: Structure, phi: np.ndarray, sigma: float, reml: bool) -> np.ndarray:
    r"""Satterthwaite degrees of freedom for each fixed effect, as lmerTest computes them.

    .. math:: \nu_k = \frac{2\,\mathrm{Var}(\hat\beta_k)^2}{g_k^\top \Sigma_\psi\, g_k},\qquad
              \Sigma_\psi = 2\,H^{-1},

    where :math:`\psi = (\theta, \sigma)` are the variance parameters, :math:`H` the Hessian
    of the REML (or ML) deviance in :math:`\psi`, and :math:`g_k` the gradient of
    :math:`\mathrm{Var}(\hat\beta_k) = \sigma^2 [(X^\top M^{-1}X)^{-1}]_{kk}` in :math:`\psi`
    (Satterthwaite 1946; Kuznetsova, Brockhoff & Christensen 2017, *J. Stat. Softw.* 82(13)).
    Derivatives are central differences with Richardson extrapolation (their many small
    BLAS calls on one thread, :func:`._blas.single_threaded_blas`).
    """
    with single_threaded_blas():
        return _satterthwaite_df(st, phi, sigma, reml)


def _satterthwaite_df(st: Structure, phi: np.ndarray, sigma: float, reml: bool) -> np.ndarray:
    varpar = np.append(phi, sigma)
    steps = 1e-3 * np.maximum(np.abs(varpar), 0.1)
    hessian = varpar_hessian(st, phi, sigma, reml)
    cov_varpar = 2 * np.linalg.pinv(hessian)

    def variances(v):
        ev = evaluate(st, v[:-1])
        _, _, a, _ = gls(st, ev)
        return v[-1] ** 2 * np.diag(np.linalg.inv(a))

    grad = _richardson_jacobian(variances, varpar, steps)  # (p, k)
    var_beta = variances(varpar)
    denom = np.einsum("pi,ij,pj->p", grad, cov_varpar, grad)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2 * var_beta**2 / denom


def between_within_df(
    level_of_term: list[int], n_groups: tuple[int, ...], n_obs: int
) -> np.ndarray:
    """Between-within ("containment") degrees of freedom (Pinheiro & Bates 2000, sec. 2.4.2).

    Levels are numbered 1 (outermost group) to L (innermost group), and L + 1 for pupils. A
    term is estimated at the outermost level within whose groups it is constant (pupils when it
    varies within the innermost groups). The degrees of freedom at level i are
    ``m_i - m_{i-1} - p_i`` with ``m_0 = 1``, ``m_{L+1} = n`` and ``p_i`` the number of terms
    estimated at level i. As in nlme, the intercept (passed as level 0) is not counted and
    takes the pupil-level degrees of freedom.
    """
    sizes = [1, *n_groups, n_obs]
    levels = np.asarray(level_of_term)
    counts = np.bincount(levels[levels > 0], minlength=len(sizes))
    per_level = [sizes[i] - sizes[i - 1] - counts[i] for i in range(1, len(sizes))]
    pupil_level = len(sizes) - 1
    return np.array([per_level[(level or pupil_level) - 1] for level in levels], dtype=float)
