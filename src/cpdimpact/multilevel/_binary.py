r"""Pass/fail (0/1) outcomes in the trial designs and the multilevel DiD: the logistic faces.

With ``family="binomial"`` a design's treatment coefficient is a log odds ratio, conditional
on the random effects. What the designs report beside it comes from here, one rule each:

* :func:`binary_effects`: the **odds ratio** with its Wald interval (the log odds ratio's
  interval exponentiated) and the **marginal difference in percentage points**
  (population-averaged over the random effects,
  :func:`cpdimpact.effects.marginal_difference`, with its delta-method interval);
* :func:`odds_ratio_rows`: the **Cox** effect size (the headline) and Hasselblad-Hedges'
  (:func:`cpdimpact.effects.odds_ratio_effect_size`), as rows of a trial's ``effect_sizes``;
* :func:`logistic_regression`: the single-level logistic regression of a pupil-randomised
  trial (R's ``glm(family = binomial)``), with the separation guard the mixed model uses.

No months of progress are given for a pass/fail outcome (:data:`NO_MONTHS`), as in the
pipeline's report.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy import special

from .._results import interval
from ..effects import difference_effect_size, marginal_difference, odds_ratio_effect_size
from ..errors import EstimationError, InvalidValueError, SeparationError
from ._glmm import SEPARATION_BOUND
from ._model import _check_separation

__all__ = [
    "BINARY_EFFECT_COLUMNS",
    "binary_row",
    "percentage_points",
    "BINARY_NOTE",
    "NO_MONTHS",
    "binary_effects",
    "difference_rows",
    "logistic_regression",
    "odds_ratio_rows",
]

#: Why a pass/fail outcome's effect size has no months of progress (the report's words).
NO_MONTHS = (
    "No months of progress are given for a pass/fail outcome: the EEF's months measure "
    "converts effect sizes of attainment scores, and its use for an odds ratio converted to an "
    "effect size (Cox 1970) is not established."
)

#: What the odds-ratio effect sizes are, printed with them.
BINARY_NOTE = (
    "The outcome is pass/fail. The effect sizes convert the log odds ratio (of a logistic "
    "model, or implied by a linear probability estimate and the treated pupils' proportion) "
    "to a standardised difference: Cox (1970), ln OR / 1.65, the headline, as the What Works "
    "Clearinghouse reports; Hasselblad & Hedges (1995), ln OR x sqrt(3) / pi, beside it. "
    "They assume a latent continuous outcome cut at the pass mark and are not a Hedges' g of "
    "test scores. The percentage points are the difference in the share of pupils passing."
)

#: Columns of a result's ``binary_effects`` table.
BINARY_EFFECT_COLUMNS = ("measure", "estimate", "std_error", "ci_lower", "ci_upper", "scale")

_EFFECT_SIZE_METHODS = (("cox", "cox"), ("hasselblad-hedges", "hasselblad_hedges"))


def binary_effects(
    params: pd.Series,
    cov: pd.DataFrame,
    design: pd.DataFrame,
    treatment: str,
    *,
    variance: float = 0.0,
    treated_variance: float | None = None,
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, object]:
    r"""The treatment's log odds ratio, odds ratio and marginal percentage-point difference.

    ``design`` holds the rows averaged over (their fixed-effects design, columns named as
    ``params``); ``variance`` is the latent random-effect variance integrated over (the sum of
    the random-intercept variances; 0 for a single-level model) and ``treated_variance`` the
    variance with the treatment set to 1 when a random treatment slope makes it differ.
    Returns the table (rows ``log_odds_ratio``, ``odds_ratio``, ``percentage_points``; the
    odds ratio's interval is the log odds ratio's exponentiated and it has no standard error)
    and the :class:`~cpdimpact.effects.MarginalDifference`.
    """
    lor, se = float(params[treatment]), float(np.sqrt(cov.loc[treatment, treatment]))
    lower, upper = interval(lor, se, alpha=alpha)
    n = len(design)
    marginal = marginal_difference(
        params,
        cov,
        design,
        treatment,
        row_variances=np.full(n, float(variance)),
        treated_row_variances=None
        if treated_variance is None
        else np.full(n, float(treated_variance)),
        alpha=alpha,
    )
    rows = [
        ("log_odds_ratio", lor, se, float(lower), float(upper), "log odds (conditional)"),
        ("odds_ratio", np.exp(lor), np.nan, float(np.exp(lower)), float(np.exp(upper)), "odds"),
        (
            "percentage_points",
            100 * marginal.estimate,
            100 * marginal.std_error,
            100 * marginal.ci_lower,
            100 * marginal.ci_upper,
            f"percentage points ({marginal.kind})",
        ),
    ]
    return pd.DataFrame(rows, columns=list(BINARY_EFFECT_COLUMNS)), marginal


def odds_ratio_rows(lor: float, se: float, alpha: float, marginal) -> list[dict]:
    """Effect-size rows (a trial's ``effect_sizes`` layout) from the log odds ratio: Cox's
    (``definition="cox"``, the headline) and Hasselblad-Hedges' conversions, on the latent
    scale, with the marginal proportions kept for reports."""
    rows = []
    for method, name in _EFFECT_SIZE_METHODS:
        es = odds_ratio_effect_size(
            lor,
            se,
            method=method,
            alpha=alpha,
            p_treatment=marginal.p_treated,
            p_comparison=marginal.p_untreated,
        )
        rows.append(
            {
                "model": "conditional",
                "variance": "latent",
                "definition": name,
                "estimate": es.estimate,
                "std_error": es.std_error,
                "ci_lower": es.ci_lower,
                "ci_upper": es.ci_upper,
                "headline": method == "cox",
            }
        )
    return rows


def difference_rows(
    difference: float, std_error: float, *, p_treated: float | None, df: float, alpha: float
) -> list[dict]:
    """Effect-size rows for a linear probability model's estimate (a difference in
    proportions, as a fraction): the odds ratio implied by :math:`p_0 = p_1 - \\hat\\tau`
    (:func:`cpdimpact.effects.difference_effect_size`) converted by Cox and by
    Hasselblad-Hedges; missing when :math:`p_0` falls outside (0, 1) (the fit has warned)."""
    rows = []
    for method, name in _EFFECT_SIZE_METHODS:
        values = dict.fromkeys(("estimate", "std_error", "ci_lower", "ci_upper"), np.nan)
        if p_treated is not None and np.isfinite(difference) and np.isfinite(std_error):
            try:
                es = difference_effect_size(
                    difference,
                    std_error,
                    p_treated=p_treated,
                    method=method,
                    df=df if np.isfinite(df) else None,
                    alpha=alpha,
                )
            except InvalidValueError:
                pass
            else:
                values = {
                    "estimate": es.estimate,
                    "std_error": es.std_error,
                    "ci_lower": es.ci_lower,
                    "ci_upper": es.ci_upper,
                }
        rows.append(
            {
                "model": "conditional",
                "variance": "latent",
                "definition": name,
                **values,
                "headline": method == "cox",
            }
        )
    return rows


def logistic_regression(
    x: np.ndarray, y: np.ndarray, names: list[str], outcome: str, *, max_iter: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    r"""Maximum-likelihood logistic regression (R's ``glm(family = binomial)``): the
    coefficients and their covariance :math:`(X^\top W X)^{-1}` at the optimum.

    Newton-Raphson (IRLS) from glm's start (:math:`\mu = (y + 1/2)/2`) until the largest step
    is below 1e-12 of the coefficients' scale. A 0/1 column at one of whose values the outcome
    never varies is refused first (the mixed model's guard), and a coefficient running off to
    infinity (beyond the mixed model's bound per SD of its column) is refused after, with
    :class:`~cpdimpact.errors.SeparationError` naming the columns.
    """
    spec = SimpleNamespace(covariates=tuple(names[1:]), outcome=outcome, family="binomial")
    _check_separation(spec, None, x, y)
    mu = (y + 0.5) / 2
    eta = np.log(mu / (1 - mu))
    beta = np.linalg.lstsq(x, eta, rcond=None)[0]
    converged = False
    with np.errstate(all="ignore"):
        for _ in range(max_iter):
            mu = special.expit(x @ beta)
            w = mu * (1 - mu)
            try:  # under separation the weights collapse to 0 as the coefficients run off
                step = np.linalg.solve(x.T @ (x * w[:, None]), x.T @ (y - mu))
            except np.linalg.LinAlgError:
                break
            if not np.isfinite(step).all():
                break
            beta = beta + step
            if np.max(np.abs(step)) < 1e-12 * max(1.0, np.max(np.abs(beta))):
                converged = True
                break
    _runaway(x, beta, names, outcome)
    if not converged:
        raise EstimationError(
            f"the logistic regression of {outcome!r} did not converge in {max_iter} Newton "
            "steps; check the covariates for near-perfect prediction of the outcome"
        )
    mu = special.expit(x @ beta)
    cov = np.linalg.inv(x.T @ (x * (mu * (1 - mu))[:, None]))
    return beta, cov


def _runaway(x: np.ndarray, beta: np.ndarray, names: list[str], outcome: str) -> None:
    """Refuse coefficients beyond :data:`SEPARATION_BOUND` per SD of their column."""
    sd = x.std(axis=0)
    runaway = [names[j] for j in range(1, x.shape[1]) if abs(beta[j]) * sd[j] > SEPARATION_BOUND]
    if runaway:
        raise SeparationError(
            f"the coefficients of {runaway} run off to infinity (complete or quasi-complete "
            f"separation: they predict {outcome!r} perfectly for some pupils), so their "
            "estimates do not exist. Remove or merge the covariates that separate the outcome, "
            "or report raw proportions instead."
        )


_INTERVAL = ["estimate", "std_error", "ci_lower", "ci_upper"]


def binary_row(binary_effects: pd.DataFrame | None, measure: str) -> pd.Series | None:
    """One measure's row of a result's ``binary_effects`` (``estimate, std_error, ci_lower,
    ci_upper``); ``None`` without a logistic fit."""
    if binary_effects is None:
        return None
    return binary_effects.set_index("measure").loc[measure, _INTERVAL].rename(measure)


def percentage_points(result, lead) -> pd.Series | None:
    """A trial's or a multilevel DiD's effect in percentage points with its interval: the
    logistic model's marginal difference, or the linear probability coefficient (``lead()``,
    its row with ``estimate, std_error, ci_lower, ci_upper``) x 100 over the pass value;
    ``None`` for a score."""
    if result.binary_effects is not None:
        return binary_row(result.binary_effects, "percentage_points")
    if result.outcome_kind != "pass_fail":
        return None
    row, scale = lead(), 100.0 / result.pass_value
    return pd.Series({k: scale * float(row[k]) for k in _INTERVAL}, name="percentage_points")
