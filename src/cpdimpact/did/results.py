"""Immutable results of the two-way fixed-effects estimators.

Both results are :class:`~cpdimpact._results.EstimateResult` (the uniform faces derived from one
tidy table; the event study is also an :class:`~cpdimpact._results.EventStudyEstimates`) and state their inference explicitly: covariance
type, degrees of freedom, number of clusters, observations and units, and the cluster variable.
Under ``inference=ClusterRobust("CR2")`` every term has its own Satterthwaite degrees of freedom (``df_terms``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import pandas as pd

from cpdimpact._results import EstimateResult, EventStudyEstimates, tidy_frame
from cpdimpact.did._common import outcome_scale_facts, units_text

__all__ = ["DiDResult", "EventStudyResult", "PretrendTest", "TwfeFit"]


class PretrendTest(NamedTuple):
    """Joint Wald test that every pre-period event-time coefficient is zero.

    Attributes
    ----------
    statistic : float
        CR1: ``F = b' V^{-1} b / q`` with the cluster-robust covariance ``V``. CR2: the HTZ
        statistic ``F = (nu - q + 1) / nu * b' V^{-1} b / q`` (Pustejovsky & Tipton 2018).
    df_num : int
        ``q``, the number of pre-period coefficients tested.
    df_denom : int or float
        CR1: ``G - 1``, clusters minus one. CR2: ``nu - q + 1`` from the HTZ approximation.
    p_value : float
        Upper tail of ``F(df_num, df_denom)``.
    method : str
        A one-line description of the test.
    terms : tuple of str
        The tested terms.
    """

    statistic: float
    df_num: int
    df_denom: int
    p_value: float
    method: str
    terms: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"F({self.df_num}, {self.df_denom:.4g}) = {self.statistic:.3f}, "
            f"p = {self.p_value:.4f} [{self.method}]"
        )


def sample_facts(res) -> list[tuple[str, str]]:
    """The estimation sample of a two-way fixed-effects fit, as summary facts (and, for a 0/1
    outcome, that the estimates are differences in proportions)."""
    return [
        ("Outcome", res.outcome),
        *outcome_scale_facts(res),
        ("Observations", f"{res.n_obs:,}"),
        ("Units (absorbed fixed effects)", f"{res.n_units:,}"),
        ("Periods (fixed effects)", f"{res.n_periods:,}"),
        ("Weights", res.weights or "none"),
    ]


def reference_years_fact(years: pd.Series | None) -> list[tuple[str, str]]:
    """The summary line naming each cohort's reference year (none without cohorts)."""
    if years is None or years.empty:
        return []
    shown = ", ".join(f"cohort {g}: {y}" for g, y in years.items())
    return [("Reference year by cohort", shown)]


def _inference_facts(res) -> list[tuple[str, str]]:
    if res.df_terms is None:
        factor = f"{res.small_sample_factor:.6f} (K = {res.n_params})"
        df = f"{res.df} (t and F with G - 1)"
    else:
        factor = "none (CR2 adjustment matrices)"
        df = _cr2_df_text(res)
    facts = [
        *sample_facts(res),
        ("Standard errors", res.cov_type),
        ("Cluster variable", res.cluster),
        ("Clusters (G)", f"{res.n_clusters:,}"),
        ("Small-sample factor", factor),
        ("Degrees of freedom", df),
        ("Confidence level", f"{1 - res.alpha:.0%}"),
    ]
    return facts


def _cr2_df_text(res) -> str:
    values = ", ".join(f"{t} {v:.3g}" for t, v in res.df_terms.items())
    return f"Satterthwaite, per term (G - 1 = {res.n_clusters - 1}): {values}"


@dataclass(frozen=True, kw_only=True, eq=False)
class TwfeFit(EstimateResult):
    """Coefficients, covariance and inference facts shared by every two-way FE result.

    Attributes
    ----------
    params, std_errors : pandas.Series
        Reported coefficients and their standard errors, indexed by term.
    cov : pandas.DataFrame
        Their small-sample-corrected cluster-robust covariance.
    df : int or float
        Degrees of freedom of the t reference distribution: ``G - 1`` under CR1; under CR2 the
        Satterthwaite df of the treatment (DiD) or the smallest among the event-time terms.
    n_clusters, n_obs, n_units, n_periods, n_params : int
        Clusters, rows, units (absorbed effects), periods and ``K`` of the small-sample factor.
    small_sample_factor : float
        ``G/(G-1) * (N-1)/(N-K)`` applied to the sandwich.
    cov_type, cluster, outcome : str
        Covariance estimator, cluster column and outcome column.
    df_terms : pandas.Series or None
        CR2: Satterthwaite degrees of freedom of every term (used by ``to_frame`` and
        ``conf_int``); ``None`` under CR1, where every term has ``df``.
    weights : str or None
        Weights column, if any.
    alpha : float
        Level used by ``to_frame`` and the ``ci_*`` properties.
    notes : tuple of str
        Warnings raised during the fit, repeated for the report.
    outcome_kind : {"score", "pass_fail"}
        ``"pass_fail"`` when the outcome is pass/fail, coded 0/1 (or True/False) or 0/100: the
        estimates are then differences in proportions from a linear probability model (x100 =
        percentage points; already percentage points for 0/100), and :attr:`estimate_units`
        says so.
    pass_value : float or None
        The value coding a pass: 1.0 (0/1) or 100.0 (0/100); ``None`` for a continuous
        outcome.
    treated_proportion : float or None
        For a pass/fail outcome, the proportion passing among the treated rows after the start
        (pupil-weighted with ``weights``): :math:`p_1`, from which the proportion without the
        programme is :math:`p_1` minus the estimate, and the odds ratio follows
        (:func:`cpdimpact.effects.difference_effect_size`). ``None`` for a continuous outcome.
    """

    params: pd.Series
    std_errors: pd.Series
    cov: pd.DataFrame
    df: int
    n_clusters: int
    n_obs: int
    n_units: int
    n_periods: int
    n_params: int
    small_sample_factor: float
    cov_type: str
    cluster: str
    outcome: str
    weights: str | None
    alpha: float
    notes: tuple[str, ...] = ()
    df_terms: pd.Series | None = None
    outcome_kind: str = "score"
    treated_proportion: float | None = None
    pass_value: float | None = None

    @property
    def estimate_units(self) -> str:
        """What the estimates measure: the outcome's units, or for a pass/fail outcome
        differences in proportions (x100 = percentage points)."""
        return units_text(self.outcome_kind, self.pass_value, self.outcome)

    @property
    def inference(self) -> str:
        """One line: which covariance and which reference distribution the tests use."""
        if self.df_terms is None:
            return (
                f"CR1 cluster-robust standard errors ({self.n_clusters} clusters of "
                f"{self.cluster!r}); t and F on G - 1 = {self.df} degrees of freedom"
            )
        return (
            f"CR2 cluster-robust standard errors ({self.n_clusters} clusters of "
            f"{self.cluster!r}); t on Satterthwaite degrees of freedom per term "
            f"({self.df_terms.min():.3g} to {self.df_terms.max():.3g})"
        )

    def _term_df(self):
        return self.df if self.df_terms is None else self.df_terms

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """Every reported term; intervals ``estimate -/+ t_df * std_error`` (CR2: each term's
        df)."""
        return tidy_frame(self.params, self.std_errors, df=self._term_df(), alpha=alpha)


@dataclass(frozen=True, kw_only=True, eq=False)
class DiDResult(TwfeFit):
    """Result of :class:`cpdimpact.did.DiD`: the two-way fixed-effects treatment coefficient.

    Attributes
    ----------
    term : str
        Name of the treatment column; the row of ``params`` holding the DiD estimate.
    estimate, std_error : float
        The treatment coefficient (in outcome units) and its cluster-robust standard error.
    params, std_errors, cov, df, n_clusters, ...
        The inference facts of :class:`TwfeFit`; ``params`` holds the treatment and
        covariate coefficients.
    """

    term: str

    def _headline_term(self) -> str:
        """The headline is the treatment (exposure) coefficient, :attr:`term`."""
        return self.term

    def _title(self) -> str:
        return "Difference-in-differences (two-way fixed effects)"

    def _facts(self) -> tuple[tuple[str, str], ...]:
        return (("Treatment", self.term), *_inference_facts(self))

    def __repr__(self) -> str:
        return (
            f"DiDResult(estimate={self.estimate:.4g}, std_error={self.std_error:.4g}, "
            f"df={self.df:.4g}, n_clusters={self.n_clusters}, n_obs={self.n_obs})"
        )

    def plot(self, *, ax=None):
        """Point estimate with its ``1 - alpha`` confidence interval; returns the Axes."""
        import matplotlib.pyplot as plt  # lazy: importing cpdimpact stays cheap

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 1.8))
        lo, hi = self.ci_lower, self.ci_upper
        ax.errorbar(
            [self.estimate],
            [0],
            xerr=[[self.estimate - lo], [hi - self.estimate]],
            fmt="o",
            color="C0",
            capsize=4,
        )
        ax.axvline(0, color="0.5", linewidth=0.8)
        ax.set_yticks([0], [self.term])
        ax.set_ylim(-1, 1)
        ax.set_xlabel(
            f"Effect on {self.outcome} ({1 - self.alpha:.0%} CI, t with {self.df:.3g} df)"
        )
        ax.set_title("Difference-in-differences estimate")
        return ax


@dataclass(frozen=True, kw_only=True, eq=False)
class EventStudyResult(TwfeFit, EventStudyEstimates):
    """Result of :class:`cpdimpact.did.EventStudy`: effects by event time.

    Attributes
    ----------
    coefficients : pandas.DataFrame
        Indexed by ``event_time``; columns ``term, estimate, std_error, ci_lower, ci_upper,
        reference, binned``. The reference period is a row of zeros (``reference`` True, no
        standard error); ``binned`` marks end points that collect event times beyond the window.
    pretrend : PretrendTest or None
        Joint test that all pre-period coefficients (event time < 0, reference excluded) are
        zero; ``None`` when there are no such coefficients.
    params, std_errors : pandas.Series
        Event-time and covariate coefficients and standard errors, indexed by term.
    cov : pandas.DataFrame
        Their small-sample-corrected cluster-robust covariance.
    reference : int
        The omitted event time (the spec's ``reference``; when every cohort's year at that
        event time has no data, the latest event time they are measured against instead).
    window : tuple of int or None
        The binning window, if any.
    reference_years : pandas.Series or None
        Treated cohort -> the calendar year it is measured against: the year at event time
        ``reference``, or, when that year has no data (2020 and 2021), the last observed year
        before it. Event times in years with no data have no row.
    params, std_errors, cov, df, n_clusters, ...
        The inference facts of :class:`TwfeFit`.
    """

    coefficients: pd.DataFrame
    pretrend: PretrendTest | None
    reference: int
    window: tuple[int, int] | None
    reference_years: pd.Series | None = None

    def _title(self) -> str:
        return "Event study (two-way fixed effects)"

    def _facts(self) -> tuple[tuple[str, str], ...]:
        window = "all event times" if self.window is None else f"binned to {self.window}"
        pre = "no pre-period coefficients" if self.pretrend is None else str(self.pretrend)
        return (
            ("Reference event time", str(self.reference)),
            *reference_years_fact(self.reference_years),
            ("Window", window),
            *_inference_facts(self),
            ("Pre-trend test", pre),
        )

    def _headline(self) -> pd.Series:
        raise AttributeError(
            "an event study has no single headline estimate: read the coefficients by event "
            "time (result.coefficients, result.to_frame()), or fit DiD for one estimate"
        )

    def event_time_frame(self, alpha: float | None = None) -> pd.DataFrame:
        """:attr:`coefficients` with intervals at ``alpha`` (t with each term's df)."""
        coef = self.coefficients.copy()
        estimated = ~coef["reference"].to_numpy(bool)
        ci = self.conf_int(self._level(alpha)).loc[coef.loc[estimated, "term"]]
        coef.loc[estimated, ["ci_lower", "ci_upper"]] = ci.to_numpy()
        return coef

    def event_time_cov(self) -> pd.DataFrame:
        """Cluster-robust covariance of the event-time coefficients (binned ends included)."""
        coef = self.coefficients.loc[~self.coefficients["reference"].to_numpy(bool)]
        terms = coef["term"].tolist()
        cov = self.cov.loc[terms, terms]
        return pd.DataFrame(cov.to_numpy(), index=coef.index, columns=coef.index)

    def __repr__(self) -> str:
        return (
            f"EventStudyResult(event_times={list(self.coefficients.index)}, "
            f"reference={self.reference}, df={self.df:.4g}, n_clusters={self.n_clusters}, "
            f"n_obs={self.n_obs})"
        )
