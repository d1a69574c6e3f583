r"""The effect of a logistic (mixed) model in percentage points: average predicted
probabilities with the treatment set to 1 and to 0, over the analysed pupils.

A logistic model's treatment coefficient is a log odds ratio *conditional* on the random
effects (a pupil in a school at the average); what an evaluation reports in percentage points
is the difference in the share of pupils reaching the standard. :func:`marginal_difference`
computes it either population-averaged (integrating over the random effects by Gauss-Hermite
quadrature) or conditional (random effects at 0), with a delta-method standard error.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import special

from .._results import interval
from .._validate import check_alpha
from ..errors import InvalidValueError

__all__ = ["MarginalDifference", "marginal_difference"]

_KINDS = ("population-averaged", "conditional")
_BLOCK = 100_000  # rows per block: 100,000 x 30 nodes of float64 is 24 MB


class MarginalDifference(NamedTuple):
    """The treatment's effect on the probability scale, averaged over the analysed pupils.

    Attributes
    ----------
    estimate : float
        ``mean(p_treated) - mean(p_untreated)``, a fraction (x100 = percentage points).
    std_error : float
        Delta-method standard error (fixed effects' uncertainty; the random-effect variances
        are treated as known).
    ci_lower, ci_upper : float
        Wald interval at ``alpha``.
    alpha : float
        Its significance level.
    p_treated, p_untreated : float
        Average predicted probability with the treatment set to 1 and to 0.
    kind : {"population-averaged", "conditional"}
        Integrated over the random effects, or with them at 0.
    gradient : numpy.ndarray
        Derivative of :attr:`estimate` with respect to the fixed effects.
    """

    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    alpha: float
    p_treated: float
    p_untreated: float
    kind: str
    gradient: np.ndarray

    @property
    def percentage_points(self) -> float:
        """:attr:`estimate` x 100."""
        return 100.0 * self.estimate


def _matrix(design, n_params: int) -> tuple[np.ndarray, list | None]:
    columns = list(design.columns) if isinstance(design, pd.DataFrame) else None
    try:
        x = np.asarray(design, dtype=float)
    except (TypeError, ValueError):
        raise InvalidValueError(
            "design must be a numeric matrix (pupils x fixed effects)."
        ) from None
    if x.ndim != 2 or x.shape[1] != n_params or x.shape[0] == 0:
        raise InvalidValueError(
            f"design must be a matrix with one row per analysed pupil and one column per fixed "
            f"effect ({n_params}), got shape {x.shape}."
        )
    if not np.isfinite(x).all():
        raise InvalidValueError("design has missing or infinite values; drop those pupils first.")
    return x, columns


def _column(name: str, which, columns: list | None, n_params: int) -> int:
    if columns is not None and which in columns:
        return columns.index(which)
    if isinstance(which, numbers.Integral) and not isinstance(which, bool):
        if 0 <= which < n_params:
            return int(which)
    raise InvalidValueError(
        f"{name} {which!r} is not a column of the design"
        + (f" (columns: {', '.join(map(str, columns))})." if columns else " (give its index).")
    )


def _row_variances(variance, row_variances, n_rows: int) -> np.ndarray:
    if row_variances is not None:
        v = np.asarray(row_variances, dtype=float)
        if v.shape != (n_rows,):
            raise InvalidValueError(
                f"row_variances must hold one latent variance per design row ({n_rows}), got "
                f"shape {v.shape}."
            )
    else:
        parts = [variance] if isinstance(variance, numbers.Real) else list(variance)
        for part in parts:
            if isinstance(part, bool) or not isinstance(part, numbers.Real):
                raise InvalidValueError(
                    f"variance must be a number or a sequence of numbers (one per level), got "
                    f"{variance!r}."
                )
        v = np.full(n_rows, float(sum(parts)))
    if not (np.isfinite(v).all() and (v >= 0).all()):
        raise InvalidValueError("random-effect variances must be finite and at least 0.")
    return v


def marginal_difference(
    params: Sequence[float] | pd.Series,
    cov,
    design,
    treatment: str | int,
    *,
    variance: float | Sequence[float] = 0.0,
    row_variances=None,
    treated_row_variances=None,
    interactions: Mapping[str | int, str | int] | None = None,
    kind: Literal["population-averaged", "conditional"] = "population-averaged",
    n_quadrature: int = 30,
    alpha: float = 0.05,
) -> MarginalDifference:
    r"""A logistic (mixed) model's treatment effect as a difference in proportions.

    Parameters
    ----------
    params : sequence of float or pandas.Series
        Fixed effects :math:`\beta` on the logit scale (a Series may be indexed like
        ``design``'s columns).
    cov : array_like or pandas.DataFrame
        Their covariance matrix (a labelled frame is put in the design's column order).
    design : array_like or pandas.DataFrame
        Fixed-effects design matrix of the analysed pupils (one row each, intercept column
        included), at their observed values.
    treatment : str or int
        The treatment column (name when ``design`` is a DataFrame, else index); set to 1 and to
        0 for every pupil.
    variance : float or sequence of float, default 0
        Random-intercept variances on the latent (logit) scale, one per level (school, class,
        ...); nested intercepts add, so their sum is the variance integrated over.
    row_variances : array_like, optional
        Instead: each row's latent random-effect variance :math:`z_i'\Sigma z_i` (random
        slopes make it differ by row).
    treated_row_variances : array_like, optional
        Each row's latent random-effect variance with the treatment set to 1, when a random
        slope of the treatment itself makes it differ from the variance at 0 (a multisite
        trial: :math:`\sigma_{00} + 2\sigma_{01} + \sigma_{11}` against :math:`\sigma_{00}`);
        by default the same as at 0.
    interactions : mapping, optional
        Interaction columns of the treatment: ``{column: other}`` where ``design[column] =
        design[treatment] * design[other]``; they are reset with the treatment.
    kind : {"population-averaged", "conditional"}, default "population-averaged"
        Integrate over the random effects (the share of pupils who would reach the standard),
        or set them to 0 (a pupil in an average school).
    n_quadrature : int, default 30
        Gauss-Hermite nodes for the population-averaged integral.
    alpha : float, default 0.05
        Significance level of the interval.

    Returns
    -------
    MarginalDifference

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If shapes disagree, the treatment or an interaction is not a column, a variance is
        negative, or ``kind``/``n_quadrature``/``alpha`` are out of range.

    Notes
    -----
    With :math:`\eta_i(t)` the linear predictor of pupil *i* with the treatment set to *t*
    (interactions reset too) and :math:`\sigma_i^2` its random-effect variance, the
    population-averaged probability is

    .. math::

        \bar p_i(t) = \int \operatorname{expit}(\eta_i(t) + \sigma_i z)\,\phi(z)\,dz
        \approx \sum_{k=1}^{K} \frac{w_k}{\sqrt\pi}\,
        \operatorname{expit}\big(\eta_i(t) + \sqrt 2\,\sigma_i x_k\big)

    with Gauss-Hermite nodes :math:`x_k` and weights :math:`w_k` (exact for polynomials of
    degree :math:`2K-1`; the logistic curve is smooth, so 30 nodes give about 1e-10 for
    latent SDs up to 3). The conditional version sets :math:`\sigma_i = 0`. The effect is
    :math:`\Delta = n^{-1}\sum_i [\bar p_i(1) - \bar p_i(0)]` (the average marginal effect,
    Williams 2012; population-averaged in the sense of Zeger, Liang & Albert 1988). Its
    gradient is :math:`\partial\Delta/\partial\beta = n^{-1}\sum_i [g_i(1)\,x_i(1) -
    g_i(0)\,x_i(0)]` with :math:`g_i(t)` the same average of :math:`\mu(1-\mu)`, and
    :math:`\mathrm{SE}(\Delta) = \sqrt{\nabla' V \nabla}` (delta method). The uncertainty of
    the variance components and the sampling of the pupils are left out, as in Stata's
    ``margins`` and R's ``emmeans`` for mixed models.

    References
    ----------
    Zeger, S. L., Liang, K.-Y., & Albert, P. S. (1988). Models for longitudinal data: a
    generalized estimating equation approach. *Biometrics*, 44(4), 1049-1060.

    Williams, R. (2012). Using the margins command to estimate and interpret adjusted
    predictions and marginal effects. *Stata Journal*, 12(2), 308-331.

    Examples
    --------
    Intercept -0.5, treatment +0.4 on the logit scale, a school variance of 0.5:

    >>> import numpy as np
    >>> from cpdimpact.effects import marginal_difference
    >>> design = np.array([[1.0, 1.0], [1.0, 0.0]])
    >>> cov = np.diag([0.01, 0.02])
    >>> pa = marginal_difference([-0.5, 0.4], cov, design, 1, variance=0.5)
    >>> cond = marginal_difference([-0.5, 0.4], cov, design, 1, kind="conditional")
    >>> round(100 * pa.estimate, 2), round(100 * cond.estimate, 2)
    (8.82, 9.75)
    """
    if kind not in _KINDS:
        raise InvalidValueError(
            f"kind must be 'population-averaged' or 'conditional', got {kind!r}."
        )
    alpha = check_alpha(alpha)
    if isinstance(n_quadrature, bool) or not isinstance(n_quadrature, numbers.Integral):
        raise InvalidValueError(f"n_quadrature must be a whole number, got {n_quadrature!r}.")
    if not 1 <= n_quadrature <= 200:
        raise InvalidValueError(f"n_quadrature must be from 1 to 200, got {n_quadrature!r}.")
    beta = np.asarray(params, dtype=float).ravel()
    x, columns = _matrix(design, beta.size)
    if isinstance(params, pd.Series) and columns is not None:
        beta = params.reindex(columns).to_numpy(dtype=float)
    if isinstance(cov, pd.DataFrame) and columns is not None:
        if not (set(columns) <= set(cov.index) and set(columns) <= set(cov.columns)):
            raise InvalidValueError(
                "cov is labelled but does not label every design column; give it in the "
                "design's column order or with their names."
            )
        cov = cov.loc[columns, columns]
    v = np.asarray(cov, dtype=float)
    if v.shape != (beta.size, beta.size) or not np.isfinite(v).all() or not np.isfinite(beta).all():
        raise InvalidValueError(
            f"params must be {beta.size} finite fixed effects and cov their finite "
            f"{beta.size} x {beta.size} covariance, got shapes {beta.shape} and {v.shape}."
        )
    t_col = _column("treatment", treatment, columns, beta.size)
    pairs = [
        (
            _column("interaction", a, columns, beta.size),
            _column("interaction", b, columns, beta.size),
        )
        for a, b in (interactions or {}).items()
    ]
    sd = np.sqrt(_row_variances(variance, row_variances, x.shape[0]))
    sd_treated = sd
    if treated_row_variances is not None:
        sd_treated = np.sqrt(_row_variances(0.0, treated_row_variances, x.shape[0]))
    if kind == "conditional":
        sd = sd_treated = np.zeros_like(sd)
        nodes, weights = np.zeros(1), np.ones(1)
    else:
        nodes, weights = np.polynomial.hermite.hermgauss(int(n_quadrature))
        nodes, weights = math.sqrt(2.0) * nodes, weights / math.sqrt(math.pi)

    def at(t: float, sd: np.ndarray) -> tuple[float, np.ndarray]:
        # In blocks of rows: a national cohort times 30 nodes would not fit in memory at once.
        total, grad = 0.0, np.zeros(beta.size)
        for start in range(0, x.shape[0], _BLOCK):
            block = x[start : start + _BLOCK]
            xt = block.copy()
            xt[:, t_col] = t
            for column, other in pairs:
                xt[:, column] = t * block[:, other]
            eta = xt @ beta
            mu = special.expit(eta[:, None] + sd[start : start + _BLOCK, None] * nodes[None, :])
            total += float((mu @ weights).sum())
            grad += ((mu * (1.0 - mu)) @ weights) @ xt
        return total / x.shape[0], grad / x.shape[0]

    p1, grad1 = at(1.0, sd_treated)
    p0, grad0 = at(0.0, sd)
    gradient = grad1 - grad0
    estimate = p1 - p0
    std_error = float(math.sqrt(max(gradient @ v @ gradient, 0.0)))
    lower, upper = interval(estimate, std_error, alpha=alpha)
    return MarginalDifference(
        estimate=estimate,
        std_error=std_error,
        ci_lower=float(lower),
        ci_upper=float(upper),
        alpha=alpha,
        p_treated=p1,
        p_untreated=p0,
        kind=kind,
        gradient=gradient,
    )
