r"""Effect sizes for pass/fail (0/1) outcomes: odds ratios, the Cox and Hasselblad-Hedges
conversions, percentage points, the WWC improvement index and the EEF months rule.

One rule, one place: every conversion of a log odds ratio or of two proportions to a
standardised effect size in cpdimpact goes through :func:`odds_ratio_effect_size` (and the
constants :data:`COX_SCALE` and :data:`LOGISTIC_SD` here); :func:`~cpdimpact.effects.cox_index`
uses the same constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

from .._results import Summary, interval, json_safe
from .._validate import check_alpha
from ..errors import InvalidValueError
from ._hedges import EffectSize, _check_df, hedges_correction
from ._inputs import finite, label_text, real, whole
from ._months import months_of_progress

__all__ = [
    "COX_SCALE",
    "EEF_BINARY_MONTHS_RULE",
    "LOGISTIC_SD",
    "BinaryEffectSize",
    "OddsRatioConversion",
    "binary_months",
    "difference_effect_size",
    "difference_to_odds_ratio",
    "odds_ratio_effect_size",
    "odds_ratio_to_difference",
    "percentages_odds_ratio",
    "proportions_effect_size",
]

#: Cox's (1970) divisor: a log odds ratio over 1.65 is on the scale of a standardised mean
#: difference (the What Works Clearinghouse's Cox index).
COX_SCALE = 1.65

#: Standard deviation of the standard logistic distribution, :math:`\pi/\sqrt{3} \approx 1.814`:
#: the Hasselblad & Hedges (1995) divisor, ``d = ln(OR) * sqrt(3) / pi``.
LOGISTIC_SD = math.pi / math.sqrt(3.0)

_METHODS = {
    "cox": (COX_SCALE, "Cox (1970): ln(OR) / 1.65", "d_Cox", "Cox divisor (1.65)"),
    "hasselblad-hedges": (
        LOGISTIC_SD,
        "Hasselblad & Hedges (1995): ln(OR) x sqrt(3) / pi",
        "d_HH",
        "logistic SD (pi / sqrt(3))",
    ),
}

#: The EEF rule this module applies to months of progress for a pass/fail outcome, as printed
#: with every converted figure.
EEF_BINARY_MONTHS_RULE = (
    "Months of progress for a pass/fail outcome: the EEF's months measure is 'based on the "
    "effect size of the intervention' and measures impact 'on attainment' (EEF, The EEF's "
    "months of additional progress measure; Teaching and Learning Toolkit guide, 2021). The "
    "effect size here is the odds ratio converted to a standardised difference (Cox 1970), not "
    "a difference in test scores, so the months figure is a conversion of a conversion: report "
    "it with the odds ratio and the percentage points, and only for an attainment outcome "
    "(reaching a standard), never for attendance, exclusions or other non-attainment outcomes."
)

_LOR_NOTE = (
    "The effect size converts the log odds ratio assuming a latent continuous outcome that is "
    "logistic (Hasselblad & Hedges 1995) or close to normal (Cox 1970) and is cut at the pass "
    "mark; its interval is the log odds ratio's interval converted. It is not a Hedges' g of "
    "test scores."
)


def _method(method: object) -> tuple[float, str, str, str]:
    if method not in _METHODS:
        raise InvalidValueError(
            f"method must be 'cox' (ln OR / 1.65, the What Works Clearinghouse's index) or "
            f"'hasselblad-hedges' (ln OR x sqrt(3)/pi), got {method!r}."
        )
    return _METHODS[method]  # type: ignore[index]


def _probability(name: str, value: object) -> float:
    value = real(name, value)
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        hint = " Proportions are fractions: 0.65 for 65%." if 1.0 < value <= 100.0 else ""
        raise InvalidValueError(
            f"{name} must be a proportion strictly between 0 and 1, got {value!r}; at 0 or 1 "
            f"the log odds are infinite and no odds ratio exists.{hint}"
        )
    return value


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass(frozen=True, kw_only=True)
class BinaryEffectSize(EffectSize):
    """A standardised effect size converted from an odds ratio (a pass/fail outcome).

    Build with :func:`odds_ratio_effect_size`, :func:`proportions_effect_size` or
    :func:`difference_effect_size`. It has every face of :class:`EffectSize` (``estimate``,
    ``std_error``, the interval, ``improvement_index``, ``summary()``, ``to_frame()``, ...);
    :attr:`sd` is the divisor (1.65 or :math:`\\pi/\\sqrt 3`) on the log-odds scale.

    Attributes
    ----------
    odds_ratio : float
        The odds ratio, treatment over comparison.
    log_odds_ratio, log_odds_ratio_se : float
        Its logarithm and that logarithm's standard error (``NaN`` when unknown).
    scale : {"cox", "hasselblad-hedges"}
        Which conversion gave :attr:`estimate`.
    attainment : bool
        Whether the outcome is attainment (reaching a standard); months of progress are given
        only then (:func:`binary_months`).
    p_treatment, p_comparison : float or None
        The two proportions, when known.
    """

    odds_ratio: float
    log_odds_ratio: float
    log_odds_ratio_se: float
    scale: str
    attainment: bool = True
    p_treatment: float | None = None
    p_comparison: float | None = None

    @property
    def months(self) -> int | None:
        """Months of additional progress (EEF Toolkit table applied to the converted effect
        size) for an attainment outcome; ``None`` otherwise. See :func:`binary_months`."""
        if not self.attainment:
            return None
        return months_of_progress(self.estimate)

    @property
    def months_caveat(self) -> str:
        """The rule applied to :attr:`months`, to print beside it."""
        return EEF_BINARY_MONTHS_RULE

    @property
    def odds_ratio_ci(self) -> tuple[float, float]:
        """The interval of the odds ratio (the effect-size interval converted back)."""
        c = self.sd / self.correction
        return math.exp(self.ci_lower * c), math.exp(self.ci_upper * c)

    @property
    def percentage_points(self) -> float | None:
        """``100 * (p_treatment - p_comparison)`` when both proportions are known."""
        if self.p_treatment is None or self.p_comparison is None:
            return None
        return 100.0 * (self.p_treatment - self.p_comparison)

    def _months_fact(self) -> str:
        if self.months is None:
            return "none: not an attainment outcome (EEF months measure attainment)"
        return f"{self.months:+d} (EEF Toolkit, from the converted odds ratio; see note)"

    def _months_text(self) -> str:
        if self.months is None:
            return "no months (not attainment)"
        return f"{self.months:+d} months (converted)"

    def to_dict(self) -> dict[str, object]:
        """As :meth:`EffectSize.to_dict` plus the odds ratio (and interval), its log and SE, the
        scale, the proportions and the months rule; values that are unknown (``nan``) are
        ``None``."""
        out = super().to_dict()
        out.update(
            {
                "odds_ratio": self.odds_ratio,
                "odds_ratio_ci": list(self.odds_ratio_ci),
                "log_odds_ratio": self.log_odds_ratio,
                "log_odds_ratio_se": self.log_odds_ratio_se,
                "scale": self.scale,
                "attainment": self.attainment,
                "p_treatment": self.p_treatment,
                "p_comparison": self.p_comparison,
                "percentage_points": self.percentage_points,
                "months_caveat": self.months_caveat,
            }
        )
        return json_safe(out)

    def summary(self) -> Summary:
        """As :meth:`EffectSize.summary`, with the odds ratio, the proportions and the months
        rule."""
        base = super().summary()
        lo, hi = self.odds_ratio_ci
        extra = [("Odds ratio", f"{self.odds_ratio:.3f} [{lo:.3f}, {hi:.3f}]")]
        if self.p_treatment is not None and self.p_comparison is not None:
            extra.append(
                (
                    "Proportions (treatment, comparison)",
                    f"{100 * self.p_treatment:.1f}%, {100 * self.p_comparison:.1f}% "
                    f"({self.percentage_points:+.1f} percentage points)",
                )
            )
        notes = base.notes + ((self.months_caveat,) if self.attainment else ())
        return Summary(
            title=base.title, facts=base.facts + tuple(extra), table=base.table, notes=notes
        )


def odds_ratio_effect_size(
    log_odds_ratio: float,
    std_error: float,
    *,
    method: Literal["cox", "hasselblad-hedges"] = "cox",
    n: int | None = None,
    df: float | None = None,
    alpha: float = 0.05,
    label: str = "effect size",
    attainment: bool = True,
    p_treatment: float | None = None,
    p_comparison: float | None = None,
) -> BinaryEffectSize:
    r"""A log odds ratio and its standard error as a standardised effect size.

    Parameters
    ----------
    log_odds_ratio : float
        :math:`\ln(\mathrm{OR})`, treatment over comparison (e.g. a logistic model's treatment
        coefficient).
    std_error : float
        Its standard error (at least 0; ``nan`` when unknown: the interval is then ``nan``).
    method : {"cox", "hasselblad-hedges"}, default "cox"
        ``"cox"``: :math:`d = \ln(\mathrm{OR})/1.65` (Cox 1970), the What Works Clearinghouse's
        index. ``"hasselblad-hedges"``: :math:`d = \ln(\mathrm{OR})\sqrt 3/\pi` (Hasselblad &
        Hedges 1995; also called the logit method).
    n : int, optional
        Total pupils, for the small-sample factor :math:`\omega = 1 - 3/(4n - 9)` the WWC
        applies to the Cox index. Omit for none.
    df : float, optional
        Degrees of freedom for a t interval; omit for a normal one.
    alpha : float, default 0.05
        Significance level of the interval.
    label : str, default "effect size"
        Name of the effect (``term`` in tables).
    attainment : bool, default True
        Whether the outcome is attainment (reaching a standard): months of progress are given
        only then (:func:`binary_months`).
    p_treatment, p_comparison : float, optional
        The two proportions, kept for reports.

    Returns
    -------
    BinaryEffectSize

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If the log odds ratio is not finite, the standard error is negative or infinite, the
        method is unknown, or ``n``, ``df``, ``alpha`` or ``label`` are out of range.

    See Also
    --------
    proportions_effect_size : the same from two proportions.
    difference_effect_size : the same from a difference in proportions (a linear probability
        model, e.g. a DiD on a 0/1 outcome).

    Notes
    -----
    With :math:`L = \ln(\mathrm{OR})`, :math:`s_L` its standard error, *c* the divisor (1.65 or
    :math:`\pi/\sqrt 3 \approx 1.814`), :math:`\omega` the small-sample factor (1 unless ``n``)
    and *q* the :math:`1-\alpha/2` quantile (t on ``df``, else normal):

    .. math::

        d = \omega L / c, \qquad \mathrm{Var}(d) = \omega^2\,\mathrm{Var}(L)/c^2, \qquad
        \mathrm{CI} = \omega\,(L \mp q\,s_L)/c.

    For Hasselblad-Hedges :math:`\mathrm{Var}(d) = 3\,\mathrm{Var}(L)/\pi^2` (Borenstein et
    al. 2009, ch. 7, eq. 7.2). Both assume a continuous latent outcome cut at the pass mark:
    logistic with SD :math:`\pi/\sqrt 3` (Hasselblad-Hedges), or a divisor of 1.65 that
    Sánchez-Meca, Marín-Martínez & Chacón-Moscoso (2003) found the least biased approximation
    of *d* under normal latent outcomes. The Cox version is what the What Works Clearinghouse
    reports for dichotomous outcomes; its improvement index (:attr:`EffectSize.improvement_index`)
    is :math:`100\,\Phi(d) - 50` of that index, as for a continuous outcome.

    References
    ----------
    Cox, D. R. (1970). *Analysis of Binary Data*. Methuen.

    Hasselblad, V., & Hedges, L. V. (1995). Meta-analysis of screening and diagnostic tests.
    *Psychological Bulletin*, 117(1), 167-178.

    Sánchez-Meca, J., Marín-Martínez, F., & Chacón-Moscoso, S. (2003). Effect-size indices
    for dichotomized outcomes in meta-analysis. *Psychological Methods*, 8(4), 448-467.

    Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009).
    *Introduction to Meta-Analysis*, ch. 7. Wiley.

    What Works Clearinghouse. *Procedures and Standards Handbook*, versions 4.1 and 5.0.

    Examples
    --------
    >>> import math
    >>> from cpdimpact.effects import odds_ratio_effect_size
    >>> es = odds_ratio_effect_size(math.log(1.5), 0.1)
    >>> round(es.estimate, 4), round(es.std_error, 4), round(es.odds_ratio, 2)
    (0.2457, 0.0606, 1.5)
    >>> hh = odds_ratio_effect_size(math.log(1.5), 0.1, method="hasselblad-hedges")
    >>> round(hh.estimate, 4), round(hh.variance, 6)
    (0.2235, 0.00304)
    """
    scale, method_text, symbol, sd_name = _method(method)
    lor = finite("log_odds_ratio", log_odds_ratio)
    se = real("std_error", std_error)
    if not (math.isnan(se) or (math.isfinite(se) and se >= 0)):
        raise InvalidValueError(
            f"std_error must be finite and at least 0 (or nan when unknown), got {se!r}; pass "
            "the standard error of the log odds ratio, not of the odds ratio or a variance."
        )
    alpha, df, label = check_alpha(alpha), _check_df(df), label_text(label)
    if not isinstance(attainment, bool):
        raise InvalidValueError(f"attainment must be True or False, got {attainment!r}.")
    omega = hedges_correction(n)
    lower, upper = interval(lor, se, alpha=alpha, df=df)
    details: tuple[tuple[str, object], ...] = (
        ("log odds ratio", lor),
        ("standard error of the log odds ratio", se),
    )
    return BinaryEffectSize(
        estimate=omega * lor / scale,
        std_error=omega * se / scale,
        ci_lower=float(omega * lower / scale),
        ci_upper=float(omega * upper / scale),
        alpha=alpha,
        df=df,
        sd=scale,
        correction=omega,
        n=None if n is None else int(n),
        label=label,
        method=method_text,
        symbol=symbol,
        sd_name=sd_name,
        details=details,
        notes=(_LOR_NOTE,),
        odds_ratio=math.exp(lor),
        log_odds_ratio=lor,
        log_odds_ratio_se=se,
        scale=method,
        attainment=attainment,
        p_treatment=p_treatment,
        p_comparison=p_comparison,
    )


def proportions_effect_size(
    p_treatment: float,
    p_comparison: float,
    *,
    n_treatment: int | None = None,
    n_comparison: int | None = None,
    method: Literal["cox", "hasselblad-hedges"] = "cox",
    small_sample: bool = True,
    alpha: float = 0.05,
    label: str = "effect size",
    attainment: bool = True,
) -> BinaryEffectSize:
    r"""The odds ratio of two proportions, as a standardised effect size (the WWC's rule for a
    dichotomous outcome).

    Parameters
    ----------
    p_treatment, p_comparison : float
        Proportions reaching the outcome (e.g. the expected standard), strictly between 0 and 1.
    n_treatment, n_comparison : int, optional
        Pupils behind each proportion. With both, the log odds ratio has a standard error and
        the effect size an interval; without, they are ``nan``.
    method : {"cox", "hasselblad-hedges"}, default "cox"
        As :func:`odds_ratio_effect_size`.
    small_sample : bool, default True
        With both sizes, apply the WWC factor :math:`\omega = 1 - 3/(4N - 9)`,
        :math:`N = n_t + n_c`, as the WWC does for the Cox index.
    alpha : float, default 0.05
        Significance level of the interval.
    label : str, default "effect size"
        Name of the effect.
    attainment : bool, default True
        Whether the outcome is attainment (months of progress only then).

    Returns
    -------
    BinaryEffectSize
        With ``odds_ratio``, ``log_odds_ratio``, ``log_odds_ratio_se``, the two proportions and
        the WWC improvement index (:attr:`~EffectSize.improvement_index`).

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If a proportion is not strictly between 0 and 1 (the message suggests fractions when
        given percents), only one size is given, or a size is not a whole number of at least 1.

    Notes
    -----
    .. math::

        \mathrm{OR} = \frac{p_t/(1-p_t)}{p_c/(1-p_c)}, \qquad
        \mathrm{Var}(\ln \mathrm{OR}) = \frac{1}{n_t p_t (1-p_t)} + \frac{1}{n_c p_c (1-p_c)},

    the second being Woolf's :math:`1/a + 1/b + 1/c + 1/d` of the 2x2 table of counts
    (Borenstein et al. 2009, ch. 5). The WWC computes the effect size of a dichotomous outcome
    as the Cox index :math:`\omega\,\ln(\mathrm{OR})/1.65` and its improvement index as for any
    effect size, the expected percentile gain of an average comparison pupil,
    :math:`100\,[\Phi(d) - 0.5]` (What Works Clearinghouse *Procedures Handbook* v5.0; as
    transcribed in ``docs/sources.md``, a secondary source). The pupils are treated as
    independent: with pupils clustered in schools give the log odds ratio and a clustered
    standard error from a model to :func:`odds_ratio_effect_size` instead.

    References
    ----------
    Cox, D. R. (1970). *Analysis of Binary Data*. Methuen.

    Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009).
    *Introduction to Meta-Analysis*, chs. 5 and 7. Wiley.

    What Works Clearinghouse (2022). *Procedures and Standards Handbook*, version 5.0.

    Examples
    --------
    65% of 400 treated pupils and 58% of 500 comparison pupils reach the expected standard:

    >>> from cpdimpact.effects import proportions_effect_size
    >>> es = proportions_effect_size(0.65, 0.58, n_treatment=400, n_comparison=500)
    >>> round(es.odds_ratio, 4), round(es.log_odds_ratio_se, 4)
    (1.3448, 0.1386)
    >>> round(es.estimate, 4), round(es.improvement_index, 1)
    (0.1794, 7.1)
    """
    p_t = _probability("p_treatment", p_treatment)
    p_c = _probability("p_comparison", p_comparison)
    if (n_treatment is None) != (n_comparison is None):
        raise InvalidValueError(
            "give both n_treatment and n_comparison (the pupils behind each proportion), or "
            "neither."
        )
    if not isinstance(small_sample, bool):
        raise InvalidValueError(f"small_sample must be True or False, got {small_sample!r}.")
    lor = _logit(p_t) - _logit(p_c)
    se, n = math.nan, None
    if n_treatment is not None:
        n_t = whole("n_treatment", n_treatment, 1)
        n_c = whole("n_comparison", n_comparison, 1)
        se = math.sqrt(1.0 / (n_t * p_t * (1.0 - p_t)) + 1.0 / (n_c * p_c * (1.0 - p_c)))
        if small_sample:
            n = n_t + n_c
    return odds_ratio_effect_size(
        lor,
        se,
        method=method,
        n=n,
        alpha=alpha,
        label=label,
        attainment=attainment,
        p_treatment=p_t,
        p_comparison=p_c,
    )


def percentages_odds_ratio(percent_1: float, percent_0: float) -> tuple[float, float]:
    """The odds ratio and Cox's effect size of two percentages passing (0-100): the rule of
    :func:`proportions_effect_size` without sample sizes, as a pair of floats, ``nan`` when
    either percentage is 0, 100 or missing (no finite odds ratio).

    Examples
    --------
    >>> from cpdimpact.effects import percentages_odds_ratio
    >>> [round(v, 3) for v in percentages_odds_ratio(60.0, 50.0)]
    [1.5, 0.246]
    >>> percentages_odds_ratio(100.0, 50.0)
    (nan, nan)
    """
    if not (0 < percent_1 < 100 and 0 < percent_0 < 100):
        return math.nan, math.nan
    converted = proportions_effect_size(percent_1 / 100, percent_0 / 100)
    return float(converted.odds_ratio), float(converted.estimate)


class OddsRatioConversion(NamedTuple):
    """A difference in proportions and the odds ratio it implies, with delta-method SEs.

    Attributes
    ----------
    p_treated, p_comparison : float
        The two proportions (one observed, one implied by the difference).
    difference : float
        ``p_treated - p_comparison`` (a fraction; x100 = percentage points).
    difference_se : float
        Its standard error (``nan`` when not given).
    log_odds_ratio, log_odds_ratio_se : float
        :math:`\\operatorname{logit}(p_t) - \\operatorname{logit}(p_c)` and its delta-method
        standard error (``nan`` when no standard error was given).
    odds_ratio : float
        ``exp(log_odds_ratio)``.
    """

    p_treated: float
    p_comparison: float
    difference: float
    difference_se: float
    log_odds_ratio: float
    log_odds_ratio_se: float
    odds_ratio: float


def _one_anchor(p_treated, p_comparison) -> str:
    if (p_treated is None) == (p_comparison is None):
        raise InvalidValueError(
            "give exactly one of p_treated (the proportion observed among the treated, e.g. "
            "after the start in a DiD) and p_comparison (the proportion without the programme)."
        )
    return "treated" if p_treated is not None else "comparison"


def _implied(name: str, value: float, what: str) -> float:
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise InvalidValueError(
            f"the implied {name} is {value:.4g}, outside (0, 1): {what} A linear-probability "
            "estimate this large cannot be converted to an odds ratio; report the percentage "
            "points only."
        )
    return value


def _optional_se(std_error) -> float:
    if std_error is None:
        return math.nan
    se = real("std_error", std_error)
    if not (math.isfinite(se) and se >= 0):
        raise InvalidValueError(f"std_error must be finite and at least 0, got {se!r}.")
    return se


def difference_to_odds_ratio(
    difference: float,
    *,
    p_treated: float | None = None,
    p_comparison: float | None = None,
    std_error: float | None = None,
) -> OddsRatioConversion:
    r"""The odds ratio implied by a difference in proportions, given one of the proportions.

    Parameters
    ----------
    difference : float
        The effect as a difference in proportions, a fraction (0.05 for 5 percentage points),
        e.g. a linear-probability DiD estimate on a 0/1 outcome.
    p_treated : float, optional
        The proportion observed among the treated (in a DiD: treated rows after the start).
        The proportion without the programme is then ``p_treated - difference``.
    p_comparison : float, optional
        Instead: the proportion without the programme; ``p_treated = p_comparison +
        difference``.
    std_error : float, optional
        Standard error of ``difference``, for the delta-method SE of the log odds ratio.

    Returns
    -------
    OddsRatioConversion

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If not exactly one proportion is given, it is not strictly between 0 and 1, or the
        implied one is not (the linear model has left [0, 1]).

    Notes
    -----
    With :math:`p_1` observed and :math:`p_0 = p_1 - \tau`,
    :math:`L = \operatorname{logit}(p_1) - \operatorname{logit}(p_0)` and, treating
    :math:`p_1` as known,
    :math:`\partial L/\partial\tau = 1/[p_0(1-p_0)]`, so
    :math:`\mathrm{SE}(L) = \mathrm{SE}(\tau)/[p_0(1-p_0)]` (delta method). With :math:`p_0`
    given instead, :math:`\mathrm{SE}(L) = \mathrm{SE}(\tau)/[p_1(1-p_1)]`. The observed
    proportion's own sampling error is left out: it is small beside the effect's with hundreds
    of pupils.

    Examples
    --------
    A DiD estimate of +4 percentage points (SE 1.5) where 62% of treated pupils reached the
    standard after the start:

    >>> from cpdimpact.effects import difference_to_odds_ratio
    >>> r = difference_to_odds_ratio(0.04, p_treated=0.62, std_error=0.015)
    >>> round(r.p_comparison, 2), round(r.odds_ratio, 4), round(r.log_odds_ratio_se, 4)
    (0.58, 1.1815, 0.0616)
    """
    tau = finite("difference", difference)
    anchor = _one_anchor(p_treated, p_comparison)
    se = _optional_se(std_error)
    if anchor == "treated":
        p1 = _probability("p_treated", p_treated)
        p0 = _implied(
            "proportion without the programme",
            p1 - tau,
            f"p_treated {p1:.4g} minus the difference {tau:.4g}.",
        )
        slope = 1.0 / (p0 * (1.0 - p0))
    else:
        p0 = _probability("p_comparison", p_comparison)
        p1 = _implied(
            "treated proportion", p0 + tau, f"p_comparison {p0:.4g} plus the difference {tau:.4g}."
        )
        slope = 1.0 / (p1 * (1.0 - p1))
    lor = _logit(p1) - _logit(p0)
    return OddsRatioConversion(p1, p0, tau, se, lor, slope * se, math.exp(lor))


def odds_ratio_to_difference(
    log_odds_ratio: float,
    *,
    p_comparison: float | None = None,
    p_treated: float | None = None,
    std_error: float | None = None,
) -> OddsRatioConversion:
    r"""The difference in proportions implied by an odds ratio, given one of the proportions.

    The inverse of :func:`difference_to_odds_ratio`.

    Parameters
    ----------
    log_odds_ratio : float
        :math:`\ln(\mathrm{OR})`, treatment over comparison.
    p_comparison : float, optional
        The proportion without the programme: :math:`p_1 =
        \operatorname{expit}(\operatorname{logit}(p_0) + L)`.
    p_treated : float, optional
        Instead: the treated proportion; :math:`p_0 = \operatorname{expit}(\operatorname{logit}
        (p_1) - L)`.
    std_error : float, optional
        Standard error of the log odds ratio, for the delta-method SE of the difference.

    Returns
    -------
    OddsRatioConversion

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If not exactly one proportion is given or it is not strictly between 0 and 1.

    Notes
    -----
    With :math:`p_0` given, :math:`\partial p_1/\partial L = p_1(1-p_1)`, so
    :math:`\mathrm{SE}(\tau) = p_1(1-p_1)\,\mathrm{SE}(L)`; with :math:`p_1` given,
    :math:`\mathrm{SE}(\tau) = p_0(1-p_0)\,\mathrm{SE}(L)`.

    Examples
    --------
    >>> import math
    >>> from cpdimpact.effects import odds_ratio_to_difference
    >>> r = odds_ratio_to_difference(math.log(1.5), p_comparison=0.5)
    >>> round(r.p_treated, 4), round(100 * r.difference, 2)
    (0.6, 10.0)
    """
    lor = finite("log_odds_ratio", log_odds_ratio)
    anchor = _one_anchor(p_treated, p_comparison)
    se = _optional_se(std_error)
    if anchor == "comparison":
        p0 = _probability("p_comparison", p_comparison)
        p1 = _expit(_logit(p0) + lor)
        slope = p1 * (1.0 - p1)
    else:
        p1 = _probability("p_treated", p_treated)
        p0 = _expit(_logit(p1) - lor)
        slope = p0 * (1.0 - p0)
    return OddsRatioConversion(p1, p0, p1 - p0, slope * se, lor, se, math.exp(lor))


def difference_effect_size(
    difference: float,
    std_error: float,
    *,
    p_treated: float,
    method: Literal["cox", "hasselblad-hedges"] = "cox",
    df: float | None = None,
    alpha: float = 0.05,
    label: str = "effect size",
    attainment: bool = True,
) -> BinaryEffectSize:
    r"""A linear-probability estimate (a difference in proportions) as an odds-ratio effect size.

    What a difference-in-differences on a 0/1 outcome needs: the estimate :math:`\hat\tau`
    (a fraction; x100 = percentage points), its standard error, and the proportion observed
    among the treated after the start, :math:`p_1`. The proportion without the programme is
    :math:`p_0 = p_1 - \hat\tau`.

    Parameters
    ----------
    difference, std_error : float
        The estimate and its standard error, as fractions.
    p_treated : float
        :math:`p_1`, strictly between 0 and 1.
    method : {"cox", "hasselblad-hedges"}, default "cox"
        As :func:`odds_ratio_effect_size`.
    df : float, optional
        Degrees of freedom of the estimate's inference (t interval); omit for normal.
    alpha : float, default 0.05
        Significance level of the interval.
    label : str, default "effect size"
        Name of the effect.
    attainment : bool, default True
        Whether the outcome is attainment (months of progress only then).

    Returns
    -------
    BinaryEffectSize

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If :math:`p_1` or the implied :math:`p_0` is not strictly between 0 and 1 (a
        :class:`~cpdimpact.errors.ProbabilityBoundsWarning` from the DiD fit says so first).

    Notes
    -----
    :math:`L = \operatorname{logit}(p_1) - \operatorname{logit}(p_1 - \hat\tau)`,
    :math:`\mathrm{SE}(L) = \mathrm{SE}(\hat\tau)/[p_0(1-p_0)]` (delta method,
    :func:`difference_to_odds_ratio`), then :func:`odds_ratio_effect_size`. The interval is
    the Wald interval of *L* converted; converting the ends of the percentage-point interval
    instead agrees to first order.

    Examples
    --------
    >>> from cpdimpact.effects import difference_effect_size
    >>> es = difference_effect_size(0.04, 0.015, p_treated=0.62, df=59)
    >>> round(es.estimate, 4), round(es.percentage_points, 1)
    (0.1011, 4.0)
    """
    converted = difference_to_odds_ratio(difference, p_treated=p_treated, std_error=std_error)
    if math.isnan(converted.log_odds_ratio_se):
        raise InvalidValueError("std_error is required.")
    return odds_ratio_effect_size(
        converted.log_odds_ratio,
        converted.log_odds_ratio_se,
        method=method,
        df=df,
        alpha=alpha,
        label=label,
        attainment=attainment,
        p_treatment=converted.p_treated,
        p_comparison=converted.p_comparison,
    )


def binary_months(effect_size, *, attainment: bool = True) -> int:
    """Months of progress of a pass/fail outcome's effect size, under the EEF rule.

    Parameters
    ----------
    effect_size : BinaryEffectSize or float
        A converted effect size (:func:`odds_ratio_effect_size` and friends) or its value.
    attainment : bool, default True
        Whether the outcome is attainment (reaching a standard). Ignored for a
        :class:`BinaryEffectSize`, which records it.

    Returns
    -------
    int
        The EEF Toolkit table applied to the converted effect size
        (:func:`~cpdimpact.effects.months_of_progress`). Print :data:`EEF_BINARY_MONTHS_RULE`
        beside it.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        For a non-attainment outcome (attendance, exclusions): the EEF's months measure is of
        attainment; or for a plain :class:`EffectSize` (a Hedges' g has its own months).

    Notes
    -----
    The EEF's page on the measure says "the measure is based on the 'effect size' of the
    intervention" and the Toolkit guide (2021) describes each approach by "its average impact
    on attainment". The EEF's *Statistical analysis guidance for EEF evaluations* (2018,
    updated 2022) was not available to this project, so its rule for dichotomous outcomes could
    not be quoted or checked here; what is implemented is the reading above: months only for an
    attainment outcome, only through the converted effect size (Cox 1970 unless the result
    says otherwise), labelled as a conversion (:data:`EEF_BINARY_MONTHS_RULE`).

    References
    ----------
    Education Endowment Foundation. *The EEF's months of additional progress measure*; and
    *Teaching and Learning Toolkit guide* (September 2021).

    Cox, D. R. (1970). *Analysis of Binary Data*. Methuen.

    Examples
    --------
    >>> from cpdimpact.effects import binary_months, proportions_effect_size
    >>> binary_months(proportions_effect_size(0.65, 0.58))
    2
    """
    if isinstance(effect_size, BinaryEffectSize):
        attainment, value = effect_size.attainment, effect_size.estimate
    elif isinstance(effect_size, EffectSize):
        raise InvalidValueError(
            "binary_months converts effect sizes of pass/fail outcomes (BinaryEffectSize); an "
            "EffectSize of scores has its own .months."
        )
    else:
        value = finite("effect_size", effect_size)
    if not attainment:
        raise InvalidValueError(
            "months of progress are given only for attainment outcomes (the EEF's months "
            "measure attainment); report the odds ratio and percentage points for this outcome."
        )
    return months_of_progress(value)
