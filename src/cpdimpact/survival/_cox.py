"""Cox proportional hazards of leaving, with the hazard ratio of participation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from cpdimpact._results import EstimateResult, critical_value, tidy_frame
from cpdimpact._validate import check_alpha, check_choice, check_treatment_not_covariate
from cpdimpact.estimator import adjustment_in_words
from cpdimpact.survival._checks import (
    normalise_names,
    prepare_spells,
    require_leavers_in_both_arms,
)
from cpdimpact.survival._coxfit import fit_cox

__all__ = ["CoxModel", "CoxResult", "robust_variance"]

#: Ways of treating tied times (R ``coxph``'s ``ties``).
TIES = ("efron", "breslow")


def robust_variance(
    scores: np.ndarray, weight: np.ndarray, inverse: np.ndarray, cluster: np.ndarray, n: int
) -> np.ndarray:
    """The sandwich ``D'D`` with ``D`` the weighted dfbeta residuals summed within clusters
    (R ``coxph``'s robust variance: no small-sample factor)."""
    dfbeta = (weight[:, None] * scores) @ inverse
    summed = np.column_stack(
        [np.bincount(cluster, weights=dfbeta[:, j], minlength=n) for j in range(dfbeta.shape[1])]
    )
    return summed.T @ summed


@dataclass(frozen=True, kw_only=True)
class CoxModel:
    r"""Cox proportional hazards of leaving: the hazard ratio of participating teachers.

    Parameters
    ----------
    duration : str
        Column of each spell's length (years in post), positive.
    event : str
        Column that is 1 when the spell ended in leaving, 0 when censored.
    treatment : str
        Column that is 1 for a participating teacher, 0 for a comparison teacher (default
        ``"treated"``, as :func:`cpdimpact.workforce.spells` names it).
    covariates : sequence of str
        Numeric covariates adjusted for (experience, role dummies...).
    cluster : str or None
        Column of the clusters (the school): the variance is then the robust sandwich of Lin &
        Wei (1989) summed within clusters, as R ``coxph(... + cluster(school))``. ``None``:
        the model-based variance (or, with weights that are not whole numbers, the sandwich
        with each spell its own cluster, as ``coxph`` does).
    weights : str or None
        Column of case weights (e.g. matching or entropy-balancing weights); rows of weight 0
        are set aside and counted in the notes.
    ties : {"efron", "breslow"}
        Approximation for spells ending at the same time: Efron's (1977), ``coxph``'s default
        and the more accurate with the heavy ties of yearly census data, or Breslow's.
    alpha : float
        1 minus the confidence level.

    Notes
    -----
    The hazard of leaving of teacher :math:`i` at time :math:`t` is
    :math:`\lambda_0(t)\exp(\beta D_i + \gamma' X_i)` (Cox 1972), with an unspecified baseline
    :math:`\lambda_0`; :math:`e^\beta` is the hazard ratio of participants. The estimate
    maximises the weighted log partial likelihood; at a time :math:`t_j` where :math:`m_j`
    spells end, Efron's approximation is

    .. math::

        \ell_j = \sum_{i \in D_j} w_i \eta_i - \bar w_j \sum_{k=0}^{m_j-1}
        \log\Bigl(\sum_{i \in R_j} w_i e^{\eta_i} - \frac{k}{m_j}\sum_{i\in D_j} w_i
        e^{\eta_i}\Bigr),

    with :math:`D_j` the spells ending then, :math:`R_j` those at risk, :math:`\bar w_j` the
    mean weight in :math:`D_j` (Breslow's drops the :math:`k/m_j` term). The model-based
    variance is the inverse information :math:`I^{-1}`. With ``cluster`` it is the sandwich
    :math:`\hat V = D'D`, :math:`D = \sum_{i\in g} w_i L_i I^{-1}` summed within cluster
    :math:`g`, where :math:`L_i` are the score residuals (Lin & Wei 1989; Therneau &
    Grambsch 2000, sec. 8.2), which is what ``coxph`` reports as "robust se". Intervals are
    normal: :math:`\exp(\hat\beta \mp z\,\mathrm{se})` for the hazard ratio.

    With weights from a comparison design (participants weight 1, comparison teachers
    reweighted to them) the hazard ratio compares participants with comparison teachers like
    them (a marginal hazard ratio); the cluster-robust variance then treats the weights as
    fixed.

    References
    ----------
    Cox, D. R. (1972). Regression models and life-tables. *Journal of the Royal Statistical
    Society B* 34(2), 187-220.
    Efron, B. (1977). The efficiency of Cox's likelihood function for censored data.
    *Journal of the American Statistical Association* 72(359), 557-565.
    Lin, D. Y. & Wei, L. J. (1989). The robust inference for the Cox proportional hazards
    model. *Journal of the American Statistical Association* 84(408), 1074-1078.
    Therneau, T. M. & Grambsch, P. M. (2000). *Modeling Survival Data: Extending the Cox
    Model*. Springer.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.survival import CoxModel
    >>> rng = np.random.default_rng(3)
    >>> n = 600
    >>> arm = rng.integers(0, 2, n)
    >>> years = rng.exponential(np.where(arm == 1, 8.0, 5.0))
    >>> spells = pd.DataFrame({"years": np.minimum(years, 6.0), "left": (years < 6).astype(int),
    ...                        "cpd": arm, "school": rng.integers(0, 60, n)})
    >>> res = CoxModel(duration="years", event="left", treatment="cpd",
    ...                cluster="school").fit(spells)
    >>> bool(res.hazard_ratio < 1)
    True
    """

    #: Rows it fits: one per teacher's spell in post.
    data_level: ClassVar[str] = "teacher"
    #: Its estimate is a log hazard ratio.
    effect_scale: ClassVar[str] = "log_hazard_ratio"

    duration: str = "duration"
    event: str = "event"
    treatment: str = "treated"
    covariates: Sequence[str] = field(default=())
    cluster: str | None = None
    weights: str | None = None
    ties: str = "efron"
    alpha: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", normalise_names(self.covariates, "covariates"))
        check_choice(self.ties, "ties", TIES)
        check_alpha(self.alpha)
        check_treatment_not_covariate(self.treatment, self.covariates)

    def describe(self) -> str:
        """The estimator and its inference in plain words, for a report."""
        inference = (
            f"robust standard errors clustered by {self.cluster} (Lin and Wei)"
            if self.cluster
            else "model-based standard errors"
            + (" (robust if the weights are not whole numbers)" if self.weights else "")
        )
        return (
            f"Cox proportional hazards model of leaving with {self.ties.capitalize()} ties"
            f"{adjustment_in_words(self.covariates, self.weights)}; {inference}"
        )

    def fit(self, data: pd.DataFrame) -> CoxResult:
        """Estimate the model on ``data`` (one row per spell; not modified).

        Parameters
        ----------
        data : pandas.DataFrame
            One row per teacher's spell in post with the named columns.

        Returns
        -------
        CoxResult
            Log hazard ratios with their intervals; ``hazard_ratio`` is the treatment's.

        Raises
        ------
        cpdimpact.errors.MissingColumnError
            A named column is absent.
        cpdimpact.errors.DurationError
            A duration is missing, zero or negative.
        cpdimpact.errors.EventCodingError
            The event column is not 0/1.
        cpdimpact.errors.SingleArmError
            Every teacher used is in the same arm.
        cpdimpact.errors.InvalidValueError
            A missing cluster, a treatment that is not 0/1, bad weights or covariates.
        cpdimpact.errors.EstimationError
            No leaver, a constant or separating covariate.
        """
        spells = prepare_spells(
            data,
            duration=self.duration,
            event=self.event,
            treatment=self.treatment,
            covariates=self.covariates,
            cluster=self.cluster,
            weights=self.weights,
        )
        require_leavers_in_both_arms(spells, self.treatment, self.event)
        x = np.column_stack([spells.arm, spells.covariates])
        w = spells.weight
        fit = fit_cox(spells.time, spells.event, w, x, efron=self.ties == "efron")
        inverse = np.linalg.inv(fit.information)
        whole = bool(np.all(w == np.round(w)))
        if self.cluster is not None:
            cov = robust_variance(
                fit.score_residuals, w, inverse, spells.cluster, spells.n_clusters
            )
            variance = "robust"
        elif spells.weighted and not whole:
            cov = robust_variance(fit.score_residuals, w, inverse, np.arange(w.size), w.size)
            variance = "robust"
        else:
            cov, variance = inverse, "model"
        terms = [self.treatment, *self.covariates]
        params = pd.Series(fit.beta, index=terms)
        return CoxResult(
            params=params,
            cov=pd.DataFrame(cov, index=terms, columns=terms),
            model_cov=pd.DataFrame(inverse, index=terms, columns=terms),
            variance=variance,
            ties=self.ties,
            loglik=fit.loglik,
            loglik_null=fit.loglik_null,
            iterations=fit.iterations,
            n_spells=int(w.size),
            n_events=int(spells.event.sum()),
            n_clusters=spells.n_clusters if self.cluster is not None else None,
            treatment=self.treatment,
            duration=self.duration,
            event=self.event,
            cluster=self.cluster,
            weights=self.weights,
            alpha=self.alpha,
            notes=spells.notes,
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class CoxResult(EstimateResult):
    """Result of :class:`CoxModel`: log hazard ratios, their covariance and the fit.

    :meth:`to_frame` holds the log hazard ratios (R ``coxph``'s ``coef``) with normal
    intervals; :meth:`hazard_ratios` the same on the ratio scale. The headline is the
    treatment's.

    Attributes
    ----------
    params : pandas.Series
        Log hazard ratios, by term (the treatment first).
    cov : pandas.DataFrame
        Their covariance: robust (clustered) or model-based, as ``variance`` says.
    model_cov : pandas.DataFrame
        The model-based covariance, the inverse information (``coxph``'s ``naive.var`` when
        robust).
    variance : {"robust", "model"}
        Which covariance ``cov`` is.
    ties : str
        Efron or Breslow.
    loglik, loglik_null : float
        Log partial likelihood at the estimate and at zero.
    iterations : int
        Newton-Raphson iterations.
    n_spells, n_events : int
        Spells used and those ending in leaving.
    n_clusters : int or None
        Clusters of the robust variance.
    treatment, duration, event : str
        The columns used.
    cluster, weights : str or None
        The cluster and weights columns, if any.
    alpha : float
        1 minus the confidence level.
    notes : tuple of str
        Rows set aside.
    """

    params: pd.Series
    cov: pd.DataFrame
    model_cov: pd.DataFrame
    variance: str
    ties: str
    loglik: float
    loglik_null: float
    iterations: int
    n_spells: int
    n_events: int
    n_clusters: int | None
    treatment: str
    duration: str
    event: str
    cluster: str | None
    weights: str | None
    alpha: float
    notes: tuple[str, ...] = ()

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors of the log hazard ratios."""
        return pd.Series(np.sqrt(np.diag(self.cov.to_numpy())), index=self.params.index)

    def _tidy(self, alpha: float) -> pd.DataFrame:
        return tidy_frame(self.params, self.std_errors, df=None, alpha=alpha)

    def hazard_ratios(self, alpha: float | None = None) -> pd.DataFrame:
        """``term, hazard_ratio, ci_lower, ci_upper``: exp of the log ratios and their limits."""
        frame = self.to_frame(alpha)
        return pd.DataFrame(
            {
                "term": frame["term"],
                "hazard_ratio": np.exp(frame["estimate"]),
                "ci_lower": np.exp(frame["ci_lower"]),
                "ci_upper": np.exp(frame["ci_upper"]),
            }
        )

    @property
    def hazard_ratio(self) -> float:
        """The treatment's hazard ratio, :math:`e^{\\hat\\beta}` (below 1: participants leave
        less)."""
        return float(np.exp(self.params.iloc[0]))

    @property
    def hazard_ratio_ci(self) -> tuple[float, float]:
        """The treatment's hazard ratio interval at the result's ``alpha``."""
        q = critical_value(self.alpha)
        b, se = float(self.params.iloc[0]), float(self.std_errors.iloc[0])
        return float(np.exp(b - q * se)), float(np.exp(b + q * se))

    def _title(self) -> str:
        return "Cox proportional hazards of leaving"

    def _facts(self) -> tuple[tuple[str, str], ...]:
        lower, upper = self.hazard_ratio_ci
        if self.variance == "robust":
            se = (
                f"robust, clustered by {self.cluster!r} ({self.n_clusters:,} clusters)"
                if self.cluster
                else "robust (each spell its own cluster: weights are not whole numbers)"
            )
        else:
            se = "model-based (inverse information)"
        return (
            ("Duration, event", f"{self.duration}, {self.event}"),
            ("Spells, leavers", f"{self.n_spells:,}, {self.n_events:,}"),
            ("Ties", self.ties.capitalize()),
            ("Weights", self.weights or "none"),
            ("Standard errors", se),
            (
                f"Hazard ratio of {self.treatment}",
                f"{self.hazard_ratio:.3f} ({1 - self.alpha:.0%} CI {lower:.3f} to {upper:.3f})",
            ),
            ("Estimates", "log hazard ratios (exp gives the hazard ratio)"),
            ("Log partial likelihood", f"{self.loglik:.4f} (null {self.loglik_null:.4f})"),
        )
