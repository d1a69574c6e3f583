"""Two-group standardised mean differences: Cohen's d, Hedges' g and Glass's delta.

Each comes from raw data (two arrays of pupil outcomes) or from summary statistics (means,
SDs, sizes), with the large-sample variance of Hedges & Olkin (1985) in the form given by
Borenstein et al. (2009, ch. 4) and a normal (Wald) interval. Results are
:class:`~cpdimpact.effects.EffectSize` objects.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .._results import critical_value
from .._validate import check_alpha
from ..errors import InvalidValueError, format_rows
from ._hedges import EffectSize, improvement_index
from ._inputs import finite, label_text, positive_sd, whole

__all__ = [
    "cohens_d_from_data",
    "cohens_d_from_summary",
    "glass_delta_from_data",
    "glass_delta_from_summary",
    "hedges_g_from_data",
    "hedges_g_from_summary",
    "improvement_index",
]

_LS_NOTE = (
    "Large-sample (Wald) interval from the Hedges & Olkin (1985) variance; the variance "
    "includes the sampling error of the standardising SD. Pupils are treated as independent: "
    "for school-randomised designs use cluster_d_within / cluster_d_total instead."
)


# --- input checks ------------------------------------------------------------------------


def _group(name: str, values: object) -> np.ndarray:
    """A 1-D float array of one group's outcomes; missing or non-finite values are an error."""
    if isinstance(values, pd.DataFrame):
        raise InvalidValueError(
            f"{name} must be one column of outcomes (a Series, array or list), not a DataFrame."
        )
    labels = values.index if isinstance(values, pd.Series) else None
    if isinstance(values, str | bytes) or np.ndim(values) != 1:
        raise InvalidValueError(
            f"{name} must be a one-dimensional array of pupil outcomes, got {values!r:.60}."
        )
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InvalidValueError(
            f"{name} must hold numbers; convert the column to float first "
            f"(e.g. pd.to_numeric(..., errors='raise'))."
        ) from None
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        where = labels[bad] if labels is not None else bad
        raise InvalidValueError(
            f"{name} has missing or non-finite values at {format_rows(where)}; drop those "
            f"pupils first (e.g. {name}[~np.isnan({name})]) and report them as attrition."
        )
    if array.size < 2:
        raise InvalidValueError(f"{name} needs at least 2 pupils, got {array.size}.")
    return array


def _summary_inputs(
    mean_treatment, sd_treatment, n_treatment, mean_control, sd_control, n_control
) -> tuple[float, float, int, float, float, int]:
    return (
        finite("mean_treatment", mean_treatment),
        positive_sd("sd_treatment", sd_treatment),
        whole("n_treatment", n_treatment, 2),
        finite("mean_control", mean_control),
        positive_sd("sd_control", sd_control),
        whole("n_control", n_control, 2),
    )


def _data_inputs(treatment, control) -> tuple[float, float, int, float, float]:
    """Validated groups as (mean difference, SD treatment, n treatment, SD control, n control)."""
    t, c = _group("treatment", treatment), _group("control", control)
    return float(t.mean() - c.mean()), float(t.std(ddof=1)), t.size, float(c.std(ddof=1)), c.size


def _pooled_sd(s_t: float, n_t: int, s_c: float, n_c: int) -> float:
    return math.sqrt(((n_t - 1) * s_t**2 + (n_c - 1) * s_c**2) / (n_t + n_c - 2))


def _bias_factor(m: int) -> float:
    """Hedges' approximation :math:`J(m) = 1 - 3/(4m - 1)` for an SD on ``m`` degrees of freedom."""
    return 1.0 - 3.0 / (4.0 * m - 1.0)


def wald_effect_size(
    *,
    d: float,
    variance: float,
    correction: float = 1.0,
    sd: float,
    n: int | None = None,
    alpha: float,
    label: str,
    method: str,
    symbol: str,
    sd_name: str,
    details: tuple[tuple[str, object], ...],
    note: str,
) -> EffectSize:
    """An :class:`EffectSize` with its large-sample (Wald) normal interval.

    Parameters
    ----------
    d : float
        The uncorrected standardised difference.
    variance : float
        Its large-sample sampling variance.
    correction : float, default 1.0
        Small-sample factor *J*: the estimate is ``J * d`` and its standard error
        ``J * sqrt(variance)``.
    sd : float
        The standardising SD.
    n : int or None, default None
        Pupils behind the SD when a small-sample correction was asked for.
    alpha : float
        Significance level of the interval.
    label, method, symbol, sd_name : str
        As :class:`EffectSize`.
    details : tuple of (str, object)
        Design facts shown with the result.
    note : str
        What the interval assumes.

    Returns
    -------
    EffectSize
        With ``df=None`` (a normal interval).
    """
    estimate = correction * d
    std_error = correction * math.sqrt(variance)
    q = critical_value(alpha, None)
    return EffectSize(
        estimate=estimate,
        std_error=std_error,
        ci_lower=estimate - q * std_error,
        ci_upper=estimate + q * std_error,
        alpha=alpha,
        df=None,
        sd=sd,
        correction=correction,
        n=n,
        label=label,
        method=method,
        symbol=symbol,
        sd_name=sd_name,
        details=details,
        notes=(note,),
    )


# --- Cohen's d and Hedges' g ---------------------------------------------------------------


def _pooled_effect(
    difference: float,
    s_t: float,
    n_t: int,
    s_c: float,
    n_c: int,
    *,
    hedges: bool,
    alpha: float,
    label: str,
) -> EffectSize:
    alpha, label = check_alpha(alpha), label_text(label)
    pooled = _pooled_sd(s_t, n_t, s_c, n_c)
    if not pooled > 0:
        raise InvalidValueError(
            "treatment and control are both constant (pooled SD 0): a standardised difference "
            "is undefined."
        )
    total = n_t + n_c
    d = difference / pooled
    var_d = total / (n_t * n_c) + d**2 / (2 * total)
    if hedges:
        if total < 4:
            raise InvalidValueError(
                f"Hedges' g needs at least 4 pupils in all (n_treatment + n_control), got {total}."
            )
        j = _bias_factor(total - 2)
        method, symbol = "Hedges' g (two groups)", "g"
    else:
        j = 1.0
        method, symbol = "Cohen's d (two groups)", "d"
    return wald_effect_size(
        d=d,
        variance=var_d,
        correction=j,
        sd=pooled,
        n=total,
        alpha=alpha,
        label=label,
        method=method,
        symbol=symbol,
        sd_name="pooled SD",
        details=(("pupils (treatment, control)", (n_t, n_c)),),
        note=_LS_NOTE,
    )


def cohens_d_from_summary(
    *,
    mean_treatment: float,
    sd_treatment: float,
    n_treatment: int,
    mean_control: float,
    sd_control: float,
    n_control: int,
    alpha: float = 0.05,
    label: str = "effect size",
) -> EffectSize:
    r"""Cohen's d of two independent groups from their means, SDs and sizes.

    Parameters
    ----------
    mean_treatment, sd_treatment, n_treatment : float, float, int
        Mean, standard deviation (denominator n - 1) and number of pupils, treated group.
    mean_control, sd_control, n_control : float, float, int
        The same for the comparison group.
    alpha : float, default 0.05
        Significance level of the (normal) interval.
    label : str, default "effect size"
        Name of the effect.

    Returns
    -------
    EffectSize
        With ``sd`` the pooled SD, ``n = n_treatment + n_control``, ``correction = 1`` and
        ``df = None``.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If an SD is not positive, a size is not a whole number of at least 2, or a mean is not
        finite; the message names the argument.

    Notes
    -----
    With :math:`N = n_t + n_c` (Cohen 1988; Hedges & Olkin 1985; Borenstein et al. 2009,
    eqs. 4.18-4.20):

    .. math::

        S_p = \sqrt{\frac{(n_t - 1)s_t^2 + (n_c - 1)s_c^2}{N - 2}}, \qquad
        d = \frac{\bar y_t - \bar y_c}{S_p}, \qquad
        V(d) = \frac{N}{n_t n_c} + \frac{d^2}{2N},

    and the interval is :math:`d \mp z_{1-\alpha/2}\sqrt{V(d)}`. *d* is biased away from
    zero in small samples; :func:`hedges_g_from_summary` removes the bias.

    References
    ----------
    Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009).
    *Introduction to Meta-Analysis*, chapter 4. Wiley.

    Cohen, J. (1988). *Statistical Power Analysis for the Behavioral Sciences* (2nd ed.).
    Erlbaum.

    Hedges, L. V., & Olkin, I. (1985). *Statistical Methods for Meta-Analysis*. Academic Press.

    Examples
    --------
    Borenstein et al. (2009, p. 27): means 103 and 100, SDs 5.5 and 4.5, 50 pupils each.

    >>> from cpdimpact.effects import cohens_d_from_summary
    >>> d = cohens_d_from_summary(
    ...     mean_treatment=103, sd_treatment=5.5, n_treatment=50,
    ...     mean_control=100, sd_control=4.5, n_control=50,
    ... )
    >>> round(d.estimate, 4), round(d.variance, 4)
    (0.597, 0.0418)
    """
    m_t, s_t, n_t, m_c, s_c, n_c = _summary_inputs(
        mean_treatment, sd_treatment, n_treatment, mean_control, sd_control, n_control
    )
    return _pooled_effect(m_t - m_c, s_t, n_t, s_c, n_c, hedges=False, alpha=alpha, label=label)


def hedges_g_from_summary(
    *,
    mean_treatment: float,
    sd_treatment: float,
    n_treatment: int,
    mean_control: float,
    sd_control: float,
    n_control: int,
    alpha: float = 0.05,
    label: str = "effect size",
) -> EffectSize:
    r"""Hedges' g of two independent groups from their means, SDs and sizes.

    Parameters
    ----------
    mean_treatment, sd_treatment, n_treatment : float, float, int
        Mean, standard deviation (with denominator n - 1) and number of pupils, treated group.
    mean_control, sd_control, n_control : float, float, int
        The same for the comparison group.
    alpha : float, default 0.05
        Significance level of the (normal) interval.
    label : str, default "effect size"
        Name of the effect.

    Returns
    -------
    EffectSize
        With ``sd`` the pooled SD, ``n = n_treatment + n_control`` and ``df = None``.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If an SD is not positive, a size is not a whole number of at least 2, or a mean is not
        finite; the message names the argument.

    Notes
    -----
    .. math::

        S_p = \sqrt{\frac{(n_t - 1)s_t^2 + (n_c - 1)s_c^2}{n_t + n_c - 2}}, \quad
        d = \frac{\bar y_t - \bar y_c}{S_p}, \quad g = J d, \quad J = 1 - \frac{3}{4N - 9},

    with :math:`N = n_t + n_c`, and the large-sample variance (Hedges & Olkin 1985;
    Borenstein et al. 2009, eqs. 4.22-4.24)

    .. math:: V(g) = J^2 \left(\frac{N}{n_t n_c} + \frac{d^2}{2N}\right).

    *J* is Hedges' (1981) approximation :math:`1 - 3/(4m - 1)` to the exact bias factor with
    :math:`m = N - 2` degrees of freedom. This is the What Works Clearinghouse's Hedges' g for
    a simple two-group comparison (its :math:`\omega`); it ignores clustering, so use it for
    checks and unclustered designs only.

    References
    ----------
    Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009).
    *Introduction to Meta-Analysis*, chapter 4. Wiley.

    Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size and related
    estimators. *Journal of Educational Statistics*, 6(2), 107-128.

    Hedges, L. V., & Olkin, I. (1985). *Statistical Methods for Meta-Analysis*. Academic Press.

    What Works Clearinghouse. *Procedures and Standards Handbook*, version 4.1 / 5.0.

    Examples
    --------
    The What Works Clearinghouse check: treatment (5, 6, 7) against control (4, 5, 6).

    >>> from cpdimpact.effects import hedges_g_from_summary
    >>> es = hedges_g_from_summary(
    ...     mean_treatment=6, sd_treatment=1, n_treatment=3,
    ...     mean_control=5, sd_control=1, n_control=3,
    ... )
    >>> round(es.estimate, 10)
    0.8
    """
    m_t, s_t, n_t, m_c, s_c, n_c = _summary_inputs(
        mean_treatment, sd_treatment, n_treatment, mean_control, sd_control, n_control
    )
    return _pooled_effect(m_t - m_c, s_t, n_t, s_c, n_c, hedges=True, alpha=alpha, label=label)


def cohens_d_from_data(
    treatment, control, *, alpha: float = 0.05, label: str = "effect size"
) -> EffectSize:
    r"""Cohen's d of two independent groups of pupil outcomes.

    Parameters
    ----------
    treatment, control : array_like or pandas.Series
        One outcome per pupil in each group (at least 2 each). Missing values are an error:
        drop them first and count them as attrition.
    alpha : float, default 0.05
        Significance level of the (normal) interval.
    label : str, default "effect size"
        Name of the effect.

    Returns
    -------
    EffectSize
        As :func:`cohens_d_from_summary` on the groups' means, SDs (ddof 1) and sizes.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If a group is not one-dimensional and numeric, has missing values (the message names
        the group and the first offending positions), has fewer than 2 pupils, or both groups
        are constant.

    Notes
    -----
    :math:`d = (\bar y_t - \bar y_c)/S_p` with the pooled SD and
    :math:`V(d) = N/(n_t n_c) + d^2/(2N)`; see :func:`cohens_d_from_summary`. Because the
    numerator and the SD share the outcome's units, *d* is unchanged by any rescaling
    :math:`a y + b` (:math:`a > 0`).

    References
    ----------
    Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009).
    *Introduction to Meta-Analysis*, chapter 4. Wiley.

    Examples
    --------
    >>> from cpdimpact.effects import cohens_d_from_data
    >>> d = cohens_d_from_data([5, 6, 7], [4, 5, 6])
    >>> d.estimate
    1.0
    """
    return _pooled_effect(*_data_inputs(treatment, control), hedges=False, alpha=alpha, label=label)


def hedges_g_from_data(
    treatment, control, *, alpha: float = 0.05, label: str = "effect size"
) -> EffectSize:
    r"""Hedges' g of two independent groups of pupil outcomes.

    Parameters
    ----------
    treatment, control : array_like or pandas.Series
        One outcome per pupil in each group (at least 2 each, 4 in all). Missing values are an
        error: drop them first and count them as attrition.
    alpha : float, default 0.05
        Significance level of the (normal) interval.
    label : str, default "effect size"
        Name of the effect.

    Returns
    -------
    EffectSize
        As :func:`hedges_g_from_summary` on the groups' means, SDs (ddof 1) and sizes.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        As :func:`cohens_d_from_data`.

    Notes
    -----
    :math:`g = J d`, :math:`J = 1 - 3/(4N - 9)`,
    :math:`V(g) = J^2\,(N/(n_t n_c) + d^2/(2N))` (Hedges & Olkin 1985; Borenstein et al.
    2009); see :func:`hedges_g_from_summary`.

    References
    ----------
    Hedges, L. V., & Olkin, I. (1985). *Statistical Methods for Meta-Analysis*. Academic Press.

    Examples
    --------
    The What Works Clearinghouse check:

    >>> from cpdimpact.effects import hedges_g_from_data
    >>> round(hedges_g_from_data([5, 6, 7], [4, 5, 6]).estimate, 10)
    0.8
    """
    return _pooled_effect(*_data_inputs(treatment, control), hedges=True, alpha=alpha, label=label)


# --- Glass's delta ------------------------------------------------------------------------


def _glass(
    difference: float,
    n_t: int,
    s_c: float,
    n_c: int,
    *,
    correct: bool,
    alpha: float,
    label: str,
) -> EffectSize:
    alpha, label = check_alpha(alpha), label_text(label)
    if not s_c > 0:
        raise InvalidValueError(
            "control has no variation (SD 0): Glass's delta standardises by the control "
            "group's SD, so it is undefined; use the pooled SD (hedges_g_from_data) instead."
        )
    if not isinstance(correct, bool):
        raise InvalidValueError(f"correct must be True or False, got {correct!r}.")
    m = n_c - 1
    delta = difference / s_c
    var = (n_t + n_c) / (n_t * n_c) + delta**2 / (2 * m)
    if correct and m < 2:
        raise InvalidValueError(
            f"the small-sample correction of Glass's delta needs n_control of at least 3, got {n_c}."
        )
    j = _bias_factor(m) if correct else 1.0
    return wald_effect_size(
        d=delta,
        variance=var,
        correction=j,
        sd=s_c,
        n=n_c if correct else None,
        alpha=alpha,
        label=label,
        method="Glass's delta (control-group SD)" + (", bias-corrected" if correct else ""),
        symbol="delta",
        sd_name="control-group SD",
        details=(("pupils (treatment, control)", (n_t, n_c)),),
        note=_LS_NOTE,
    )


def glass_delta_from_summary(
    *,
    mean_treatment: float,
    n_treatment: int,
    mean_control: float,
    sd_control: float,
    n_control: int,
    correct: bool = False,
    alpha: float = 0.05,
    label: str = "effect size",
) -> EffectSize:
    r"""Glass's delta: the mean difference over the control group's standard deviation.

    Parameters
    ----------
    mean_treatment, n_treatment : float, int
        Mean and number of pupils, treated group (its SD is not used).
    mean_control, sd_control, n_control : float, float, int
        Mean, standard deviation (denominator n - 1) and number of pupils, control group.
    correct : bool, default False
        Multiply by Hedges' small-sample factor :math:`J(n_c - 1)` (an approximately unbiased
        delta); needs ``n_control >= 3``.
    alpha : float, default 0.05
        Significance level of the (normal) interval.
    label : str, default "effect size"
        Name of the effect.

    Returns
    -------
    EffectSize
        With ``sd`` the control SD; ``n = n_control`` when corrected, else ``None``.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If ``sd_control`` is not positive, a size is not a whole number of at least 2, or a
        mean is not finite; the message names the argument.

    Notes
    -----
    Glass (1976) standardised by the control group's SD so that an intervention which also
    changes the spread of outcomes does not change the yardstick. With
    :math:`m = n_c - 1` degrees of freedom behind :math:`s_c`, the large-sample variance is
    (Hedges 1981; Hedges & Olkin 1985, ch. 5)

    .. math::

        \Delta = \frac{\bar y_t - \bar y_c}{s_c}, \qquad
        V(\Delta) = \frac{n_t + n_c}{n_t n_c} + \frac{\Delta^2}{2 m}.

    With ``correct=True`` both are multiplied by :math:`J(m) = 1 - 3/(4m - 1)` (estimate) and
    :math:`J(m)^2` (variance). The interval is the normal (Wald) interval.

    References
    ----------
    Glass, G. V. (1976). Primary, secondary, and meta-analysis of research. *Educational
    Researcher*, 5(10), 3-8.

    Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size and related
    estimators. *Journal of Educational Statistics*, 6(2), 107-128.

    Hedges, L. V., & Olkin, I. (1985). *Statistical Methods for Meta-Analysis*. Academic Press.

    Examples
    --------
    >>> from cpdimpact.effects import glass_delta_from_summary
    >>> es = glass_delta_from_summary(
    ...     mean_treatment=103, n_treatment=50, mean_control=100, sd_control=4.5, n_control=50
    ... )
    >>> round(es.estimate, 4), round(es.variance, 5)
    (0.6667, 0.04454)
    """
    m_t = finite("mean_treatment", mean_treatment)
    n_t = whole("n_treatment", n_treatment, 2)
    m_c = finite("mean_control", mean_control)
    s_c = positive_sd("sd_control", sd_control)
    n_c = whole("n_control", n_control, 2)
    return _glass(m_t - m_c, n_t, s_c, n_c, correct=correct, alpha=alpha, label=label)


def glass_delta_from_data(
    treatment,
    control,
    *,
    correct: bool = False,
    alpha: float = 0.05,
    label: str = "effect size",
) -> EffectSize:
    r"""Glass's delta of two independent groups of pupil outcomes.

    Parameters
    ----------
    treatment, control : array_like or pandas.Series
        One outcome per pupil in each group (at least 2 each). Missing values are an error.
    correct : bool, default False
        Apply Hedges' small-sample factor :math:`J(n_c - 1)`.
    alpha : float, default 0.05
        Significance level of the (normal) interval.
    label : str, default "effect size"
        Name of the effect.

    Returns
    -------
    EffectSize
        As :func:`glass_delta_from_summary`.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        As :func:`cohens_d_from_data`; also when the control group is constant.

    Notes
    -----
    :math:`\Delta = (\bar y_t - \bar y_c)/s_c`,
    :math:`V(\Delta) = (n_t + n_c)/(n_t n_c) + \Delta^2/(2(n_c - 1))`; see
    :func:`glass_delta_from_summary`.

    References
    ----------
    Glass, G. V. (1976). Primary, secondary, and meta-analysis of research. *Educational
    Researcher*, 5(10), 3-8.

    Examples
    --------
    >>> from cpdimpact.effects import glass_delta_from_data
    >>> glass_delta_from_data([5, 7, 9], [4, 5, 6]).estimate
    2.0
    """
    difference, _, n_t, s_c, n_c = _data_inputs(treatment, control)
    return _glass(difference, n_t, s_c, n_c, correct=correct, alpha=alpha, label=label)
