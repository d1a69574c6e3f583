"""Hedges' g: a model estimate standardised by a pupil-level standard deviation."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .._results import EstimateResult, Summary, critical_value, p_value, tidy_frame
from .._validate import check_alpha
from ..errors import InvalidValueError
from ._inputs import label_text, real
from ._months import months_of_progress

__all__ = ["EffectSize", "hedges_correction", "hedges_g", "improvement_index"]

_SD_NOTE = (
    "The standard error and interval treat the pupil-level SD as known; they omit the "
    "sampling error of the SD itself, which is negligible with hundreds of pupils."
)


def _check_df(df: object) -> float | None:
    if df is None:
        return None
    df = real("df", df)
    if not df > 0:  # also rejects NaN
        raise InvalidValueError(
            f"df must be positive (e.g. the number of clusters minus one) or None for a "
            f"normal interval, got {df!r}."
        )
    return df


def _plain(value: object) -> object:
    """A JSON-safe plain Python value (numpy scalars to Python, tuples to lists)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value


def _fact(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple | list):
        return ", ".join(_fact(v) for v in value)
    return str(value)


def hedges_correction(n: int | None) -> float:
    r"""Hedges' small-sample correction factor *J* for a pooled SD from ``n`` pupils.

    Parameters
    ----------
    n : int or None
        Total number of pupils behind the standard deviation (both arms together). ``None``
        means no correction (``J = 1``), the usual choice with hundreds of pupils.

    Returns
    -------
    float
        :math:`J = 1 - 3 / (4n - 9)`, in (0, 1].

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If ``n`` is not a whole number of at least 4.

    Notes
    -----
    Hedges (1981) showed that the standardised mean difference *d* is biased upwards in small
    samples and that :math:`g = J(m)\,d` with

    .. math:: J(m) = \frac{\Gamma(m/2)}{\sqrt{m/2}\,\Gamma((m-1)/2)} \approx 1 - \frac{3}{4m - 1}

    is (nearly) unbiased, where *m* is the degrees of freedom of the SD. For an SD pooled over
    two groups :math:`m = n - 2`, which gives the form used by the What Works Clearinghouse,
    :math:`\omega = 1 - 3/(4n - 9)` (Hedges & Olkin 1985, ch. 5). ``n`` must be at least 4
    (two degrees of freedom); below that the approximation breaks down.

    References
    ----------
    Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size and related
    estimators. *Journal of Educational Statistics*, 6(2), 107-128.

    Hedges, L. V., & Olkin, I. (1985). *Statistical Methods for Meta-Analysis*. Academic Press.

    Examples
    --------
    >>> from cpdimpact.effects import hedges_correction
    >>> hedges_correction(6)
    0.8
    >>> hedges_correction(None)
    1.0
    """
    if n is None:
        return 1.0
    valid = (
        isinstance(n, numbers.Real)
        and not isinstance(n, bool | np.bool_)
        and math.isfinite(n)
        and float(n).is_integer()
        and n >= 4
    )
    if not valid:
        raise InvalidValueError(
            f"n must be the whole number of pupils behind the SD, at least 4, or None for no "
            f"small-sample correction; got {n!r}."
        )
    return 1.0 - 3.0 / (4.0 * int(n) - 9.0)


@dataclass(frozen=True, kw_only=True)
class EffectSize(EstimateResult):
    """A standardised effect size with its standard error and confidence interval.

    Build one with :func:`hedges_g` (a model estimate over a pupil-level SD), the two-group
    functions (:func:`~cpdimpact.effects.cohens_d_from_data`,
    :func:`~cpdimpact.effects.hedges_g_from_summary`, ...) or the cluster-design functions
    (:func:`~cpdimpact.effects.cluster_d_total`, ...) rather than directly.

    Attributes
    ----------
    estimate : float
        The effect size in standard deviations.
    std_error : float
        Its standard error, on the same scale (:attr:`variance` is its square).
    ci_lower, ci_upper : float
        The ``1 - alpha`` confidence interval.
    alpha : float
        Significance level of the stored interval.
    df : float or None
        Degrees of freedom of the t reference distribution; ``None`` for the normal.
    sd : float
        The standard deviation used as denominator, in outcome units (see :attr:`sd_name`).
    correction : float
        Hedges' small-sample factor *J* applied (1.0 when not applied).
    n : int or None
        Pupils behind the SD, used for *J*; ``None`` when no correction was applied.
    label : str
        The name of the effect, used as the ``term`` in :meth:`to_frame`.
    method : str
        How the effect size was computed, e.g. ``"Hedges' g (two groups)"`` or
        ``"Hedges (2007) d_T"``.
    symbol : str
        Short symbol used when printing: ``"g"``, ``"d"``, ``"delta"``, ``"d_W"``, ``"d_T"``.
    sd_name : str
        What :attr:`sd` is, e.g. ``"pupil-level SD"``, ``"pooled SD"``, ``"control-group SD"``.
    details : tuple of (str, object) pairs
        Design facts behind the variance (ICC, cluster counts, ...), shown by :meth:`summary`.
    notes : tuple of str
        Caveats printed under the summary.
    """

    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    alpha: float
    df: float | None
    sd: float
    correction: float
    n: int | None
    label: str
    method: str = "model estimate / pupil-level SD"
    symbol: str = "g"
    sd_name: str = "pupil-level SD"
    details: tuple[tuple[str, object], ...] = ()
    notes: tuple[str, ...] = (_SD_NOTE,)

    @property
    def variance(self) -> float:
        """Sampling variance of :attr:`estimate`, ``std_error ** 2``."""
        return self.std_error**2

    @property
    def improvement_index(self) -> float:
        """What Works Clearinghouse improvement index ``100 * Phi(estimate) - 50``."""
        return improvement_index(self.estimate)

    @property
    def months(self) -> int:
        """Months of additional progress (EEF Toolkit) of :attr:`estimate`."""
        return months_of_progress(self.estimate)

    @property
    def statistic(self) -> float:
        """Wald statistic ``estimate / std_error`` (t when :attr:`df` is set, else z)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.float64(self.estimate) / np.float64(self.std_error))

    @property
    def p_value(self) -> float:
        """Two-sided p-value of :attr:`statistic`."""
        return float(p_value(self.statistic, self.df))

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """The tidy one-row table (``term`` is the label), the interval at ``alpha`` on the same
        reference distribution (t with :attr:`df`, else normal).

        Examples
        --------
        >>> from cpdimpact.effects import hedges_g
        >>> es = hedges_g(1.0, 0.5, 5.0)
        >>> es.conf_int(0.10).loc["effect size"].round(4).tolist()
        [0.0355, 0.3645]
        """
        return tidy_frame(
            pd.Series([self.estimate], index=[self.label]),
            pd.Series([self.std_error], index=[self.label]),
            df=self.df,
            alpha=alpha,
        )

    def to_dict(self) -> dict[str, object]:
        """Plain, JSON-safe dictionary of the fields plus ``months``, ``p_value``, ``variance``
        and ``improvement_index``; ``details`` becomes a dictionary."""
        return {
            "label": self.label,
            "estimate": self.estimate,
            "std_error": self.std_error,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "alpha": self.alpha,
            "df": self.df,
            "p_value": self.p_value,
            "months": self.months,
            "sd": self.sd,
            "correction": self.correction,
            "n": self.n,
            "method": self.method,
            "symbol": self.symbol,
            "sd_name": self.sd_name,
            "variance": self.variance,
            "improvement_index": self.improvement_index,
            "details": {name: _plain(value) for name, value in self.details},
        }

    def summary(self) -> Summary:
        """Printable summary: the effect size, interval, months of progress and its basis."""
        level = f"{100 * (1 - self.alpha):g}%"
        if self.n is None or self.correction == 1.0:
            correction = "not applied (J = 1)"
        else:
            correction = f"J = {self.correction:.4f} (n = {self.n} pupils)"
        reference = "normal" if self.df is None else f"t with {self.df:g} df"
        facts = (
            ("Method", self.method),
            (f"Effect size ({self.symbol})", f"{self.estimate:.3f}"),
            ("Standard error", f"{self.std_error:.3f} (variance {self.variance:.5f})"),
            (f"{level} interval", f"[{self.ci_lower:.3f}, {self.ci_upper:.3f}] ({reference})"),
            ("p-value", f"{self.p_value:.4f}"),
            ("Months of progress", self._months_fact()),
            ("Improvement index", f"{self.improvement_index:+.1f} (WWC)"),
            (self.sd_name[:1].upper() + self.sd_name[1:], f"{self.sd:.4g}"),
            ("Small-sample correction", correction),
        ) + tuple((name, _fact(value)) for name, value in self.details)
        return Summary(
            title=f"Effect size: {self.label}",
            facts=facts,
            table=self.to_frame(),
            notes=self.notes,
        )

    def _months_fact(self) -> str:
        """The months line of :meth:`summary` (a subclass may say why there is none)."""
        return f"{self.months:+d} (EEF Toolkit)"

    def _months_text(self) -> str:
        """The months as printed after the interval: ``"+3 months"``."""
        return f"{self.months:+d} months"

    def __str__(self) -> str:
        return (
            f"{self.label}: {self.symbol} = {self.estimate:.3f} "
            f"[{self.ci_lower:.3f}, {self.ci_upper:.3f}], {self._months_text()}"
        )

    def plot(self, *, ax=None):
        """One-row forest plot: the effect size, its interval and a line at zero.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on; a new small figure when omitted.

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt  # lazily: importing cpdimpact stays cheap

        if ax is None:
            _, ax = plt.subplots(figsize=(6.0, 1.6), layout="constrained")
        ax.axvline(0.0, color="0.5", linestyle="--", linewidth=1)
        ax.errorbar(
            [self.estimate],
            [0.0],
            xerr=[[self.estimate - self.ci_lower], [self.ci_upper - self.estimate]],
            fmt="o",
            color="C0",
            capsize=4,
        )
        ax.set_yticks([0.0], [self.label])
        ax.set_ylim(-1.0, 1.0)
        ax.set_xlabel("Effect size (pupil standard deviations)")
        level = f"{100 * (1 - self.alpha):g}%"
        ax.set_title(
            f"{self.symbol} = {self.estimate:.2f}, {level} CI [{self.ci_lower:.2f}, "
            f"{self.ci_upper:.2f}]; {self._months_text()}",
            fontsize="medium",
        )
        return ax


def hedges_g(
    estimate: float,
    std_error: float,
    sd: float,
    *,
    n: int | None = None,
    df: float | None = None,
    alpha: float = 0.05,
    label: str = "effect size",
) -> EffectSize:
    r"""Standardise a model estimate by a pupil-level standard deviation (Hedges' g).

    Parameters
    ----------
    estimate : float
        The effect in outcome units, e.g. a difference-in-differences ATT in scaled-score
        points.
    std_error : float
        Its standard error (from the model: cluster-robust, bootstrap, ...). At least 0.
    sd : float
        The **pupil-level** standard deviation of the outcome, in the same units. Never the SD
        of school means, which is several times smaller and would inflate the effect size.
    n : int, optional
        Total pupils behind ``sd``, for Hedges' small-sample correction
        :math:`J = 1 - 3/(4n - 9)`. Omit for no correction (``J = 1``).
    df : float, optional
        Degrees of freedom of the model's inference (e.g. clusters minus one) for a t
        interval; omit for a normal interval.
    alpha : float, default 0.05
        Significance level of the stored interval.
    label : str, default "effect size"
        Name of the effect (``term`` in tables).

    Returns
    -------
    EffectSize

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If ``sd`` is not positive and finite, ``std_error`` is negative or not finite,
        ``estimate`` is not finite, or ``n``, ``df`` or ``alpha`` are out of range.

    Notes
    -----
    With *b* the estimate, :math:`s_b` its standard error, :math:`\sigma` the pupil SD and
    *q* the :math:`1 - \alpha/2` quantile of Student's t on ``df`` degrees of freedom (the
    normal when ``df`` is None):

    .. math::

        g = J\,\frac{b}{\sigma}, \qquad
        \mathrm{SE}(g) = J\,\frac{s_b}{\sigma}, \qquad
        \mathrm{CI} = J\,\frac{b \mp q\,s_b}{\sigma},

    with Hedges' correction :math:`J = 1 - 3/(4n - 9)` (Hedges 1981; Hedges & Olkin 1985; the
    What Works Clearinghouse's :math:`\omega`), see :func:`hedges_correction`.

    The standard error treats :math:`\sigma` as fixed: it carries the model's uncertainty
    about *b* but not the sampling error of the SD, which adds roughly
    :math:`g^2 / (2n)` to the variance (Hedges & Olkin 1985) and is negligible for the
    hundreds or thousands of pupils in a school evaluation. The EEF Teaching and Learning
    Toolkit guidance expresses effects in pupil standard deviations in this way and converts
    them to months of progress (:attr:`EffectSize.months`). Because *b*, :math:`s_b` and
    :math:`\sigma` share the outcome's units, *g* is unchanged by any rescaling
    :math:`a y + c` (:math:`a > 0`) of the outcome.

    References
    ----------
    Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size and related
    estimators. *Journal of Educational Statistics*, 6(2), 107-128.

    Hedges, L. V., & Olkin, I. (1985). *Statistical Methods for Meta-Analysis*. Academic Press.

    Education Endowment Foundation. *Teaching and Learning Toolkit* guidance and *Statistical
    analysis guidance for EEF evaluations*.

    Examples
    --------
    A DiD estimate of 1.2 KS2 scaled-score points (SE 0.4, 20 areas) with a pupil SD of 6.0
    from 400 pupils:

    >>> from cpdimpact.effects import hedges_g
    >>> es = hedges_g(1.2, 0.4, 6.0, n=400, df=19, label="ATT")
    >>> round(es.estimate, 4), round(es.std_error, 4)
    (0.1996, 0.0665)
    >>> es.months
    3
    >>> print(es)
    ATT: g = 0.200 [0.060, 0.339], +3 months
    """
    estimate = real("estimate", estimate)
    std_error = real("std_error", std_error)
    sd = real("sd", sd)
    if not math.isfinite(estimate):
        raise InvalidValueError(f"estimate must be finite, got {estimate!r}.")
    if not (math.isfinite(std_error) and std_error >= 0):
        raise InvalidValueError(
            f"std_error must be finite and at least 0, got {std_error!r}; check that the model "
            f"converged and that a variance rather than a standard error was not passed."
        )
    if not (math.isfinite(sd) and sd > 0):
        raise InvalidValueError(
            f"sd must be a positive, finite pupil-level standard deviation, got {sd!r}; an SD "
            f"of 0 or NaN means the outcome has no variation or is all missing."
        )
    alpha = check_alpha(alpha)
    df = _check_df(df)
    label = label_text(label)
    j = hedges_correction(n)
    q = critical_value(alpha, df)
    return EffectSize(
        estimate=j * estimate / sd,
        std_error=j * std_error / sd,
        ci_lower=j * (estimate - q * std_error) / sd,
        ci_upper=j * (estimate + q * std_error) / sd,
        alpha=alpha,
        df=df,
        sd=sd,
        correction=j,
        n=None if n is None else int(n),
        label=label,
    )


# --- WWC improvement index ----------------------------------------------------------------


def improvement_index(effect_size):
    r"""What Works Clearinghouse improvement index of an effect size.

    Parameters
    ----------
    effect_size : float, array_like or EffectSize
        Hedges' *g* (or any standardised effect size). An :class:`EffectSize` uses its
        :attr:`~EffectSize.estimate`.

    Returns
    -------
    float or numpy.ndarray
        :math:`100\,\Phi(g) - 50`, in percentile points, from -50 to 50 (not rounded; the
        WWC reports it as a whole number).

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If the input is not numeric.

    Notes
    -----
    The expected change in percentile rank of an average comparison-group pupil had they
    received the intervention: :math:`\Phi` is the standard normal CDF, so the index assumes
    normally distributed outcomes (What Works Clearinghouse, *Procedures and Standards
    Handbook* v4.1/v5.0, as transcribed in ``docs/sources.md`` section "WWC figures", a
    secondary source).

    References
    ----------
    What Works Clearinghouse. *Procedures and Standards Handbook*, versions 4.1 and 5.0.

    Examples
    --------
    >>> from cpdimpact.effects import improvement_index
    >>> round(improvement_index(0.25))
    10
    >>> round(improvement_index(-0.25), 2)
    -9.87
    """
    if isinstance(effect_size, EffectSize):
        effect_size = effect_size.estimate
    if isinstance(effect_size, bool | np.bool_ | str | bytes):
        raise InvalidValueError(
            f"improvement_index needs a numeric effect size, got {effect_size!r}."
        )
    try:
        values = np.asarray(effect_size, dtype=float)
    except (TypeError, ValueError):
        raise InvalidValueError(
            f"improvement_index needs numeric effect sizes, got {effect_size!r:.60}."
        ) from None
    out = 100.0 * stats.norm.cdf(values) - 50.0
    return float(out) if out.ndim == 0 else out
