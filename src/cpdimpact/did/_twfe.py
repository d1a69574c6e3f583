"""The two-way fixed-effects engine behind :class:`DiD` and :class:`EventStudy`.

One code path serves pupil rows (a repeated cross-section within units) and unit-year rows:
the unit fixed effects are absorbed by ``linearmodels.iv.absorbing.AbsorbingLS`` (an exact
one-way within transformation, weighted when weights are given) and the period fixed effects
enter as explicit dummies, so the small-sample correction can count them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cpdimpact.errors import EstimationError

__all__ = [
    "Design",
    "Fit",
    "fit_twfe",
    "fit_facts",
    "wald_f",
    "FEW_CLUSTERS",
    "FEW_TREATED_CLUSTERS",
    "COV_TYPE",
]

#: Below this many clusters the sandwich estimator is known to over-reject.
FEW_CLUSTERS = 40

#: Below this many treated (or untreated) clusters the sandwich can be badly anti-conservative.
FEW_TREATED_CLUSTERS = 5

#: Label of the covariance estimator, shown in every result.
COV_TYPE = "cluster-robust CR1: G/(G-1)*(N-1)/(N-K), unit FE nested in clusters not in K"

# Relative size below which a regressor counts as explained by the others (after the within
# transformation): far above rounding error, far below any real variation.
_COLLINEAR_TOL = 1e-8

_CONST = "__cpd_const"


@dataclass(frozen=True)
class Prepared:
    """Validated arrays common to both estimators (no copy of the caller's DataFrame)."""

    index: pd.Index
    y: np.ndarray
    unit: np.ndarray
    time: np.ndarray
    time_levels: pd.Index
    cluster: np.ndarray
    weights: np.ndarray | None
    covariates: dict[str, np.ndarray]

    @property
    def n_clusters(self) -> int:
        return int(self.cluster.max()) + 1


@dataclass(frozen=True)
class Design:
    """One fit: the prepared data and the reported terms (``targets``) before the covariates.

    ``target_roles`` holds, per target, the message raised if the fixed effects explain it.
    """

    data: Prepared
    targets: dict[str, np.ndarray]
    target_roles: dict[str, str]


@dataclass(frozen=True)
class Fit:
    """Coefficients of the reported terms and their small-sample-corrected covariance."""

    params: pd.Series
    cov: pd.DataFrame
    n_obs: int
    n_units: int
    n_periods: int
    n_clusters: int
    n_params: int
    units_nested: bool
    small_sample_factor: float

    @property
    def df(self) -> int:
        """Degrees of freedom of t and F reference distributions: clusters minus one."""
        return self.n_clusters - 1

    @property
    def std_errors(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov.to_numpy())), index=self.params.index)


def _within(matrix: np.ndarray, unit: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Weighted deviations from unit means, scaled by sqrt(weights) (the absorbed design)."""
    n_units = int(unit.max()) + 1
    w = np.ones(unit.shape[0]) if weights is None else weights
    wsum = np.bincount(unit, weights=w, minlength=n_units)
    out = np.empty_like(matrix)
    for j in range(matrix.shape[1]):
        means = np.bincount(unit, weights=w * matrix[:, j], minlength=n_units) / wsum
        out[:, j] = matrix[:, j] - means[unit]
    return out * np.sqrt(w)[:, None]


def _check_identified(
    names: list[str], roles: dict[str, str], exog: np.ndarray, design: Design
) -> None:
    """Raise EstimationError if a regressor is explained by the fixed effects and earlier columns.

    An unpivoted QR of the within-transformed design gives, in ``|R_jj|``, the norm of column j
    after partialling out the unit effects and every earlier column; comparing it with the
    column's own (weighted, centred) norm flags exact collinearity whatever the scale.
    """
    within = _within(exog, design.data.unit, design.data.weights)
    w = np.ones(exog.shape[0]) if design.data.weights is None else design.data.weights
    centred = (exog - np.average(exog, axis=0, weights=w)) * np.sqrt(w)[:, None]
    scale = np.linalg.norm(centred, axis=0)
    r_diag = np.abs(np.diag(np.linalg.qr(within, mode="r")))
    for j, name in enumerate(names):
        if r_diag[j] <= _COLLINEAR_TOL * scale[j]:
            raise EstimationError(roles[name])


def fit_twfe(design: Design) -> Fit:
    """Fit y = unit FE + period FE + targets + covariates; clustered CR1 covariance.

    The sandwich comes from linearmodels unadjusted (``debiased=False``); the factor
    ``G/(G-1) * (N-1)/(N-K)`` is applied here so that the convention does not depend on the
    linearmodels version. K counts the constant, the T-1 period dummies, the targets and the
    covariates, plus the U-1 unit effects only when units are not nested in clusters.
    """
    from linearmodels.iv.absorbing import AbsorbingLS  # heavy import: only when fitting

    n_obs = design.data.y.shape[0]
    n_units = int(design.data.unit.max()) + 1
    n_periods = len(design.data.time_levels)
    n_clusters = int(design.data.cluster.max()) + 1
    if n_clusters < 2:
        raise EstimationError(
            "cluster-robust inference needs at least 2 clusters; the data have "
            f"{n_clusters}. Cluster at the level of assignment (e.g. school)."
        )
    if n_periods < 2:
        raise EstimationError(
            f"the data cover a single period ({design.data.time_levels[0]!r}); a difference-in-"
            "differences needs at least one period before and one after the start."
        )
    # Period dummies for every level but the first; the first is the baseline.
    time_names = [f"__cpd_period_{k}" for k in range(1, n_periods)]
    time_dummies = (design.data.time[:, None] == np.arange(1, n_periods)[None, :]).astype(float)
    reported = list(design.targets) + list(design.data.covariates)
    # Collinearity order: period dummies, covariates, then targets, so that a target that the
    # rest explains is the one named in the error.
    check_names = time_names + list(design.data.covariates) + list(design.targets)
    check_cols = [time_dummies] + [
        np.column_stack([v for v in d.values()])
        for d in (design.data.covariates, design.targets)
        if d
    ]
    roles = dict.fromkeys(
        time_names,
        "the period fixed effects are not identified from the unit fixed effects: "
        "each unit must be observed in at least two periods",
    )
    roles.update(
        {
            n: f"covariate {n!r} is explained by the unit and period fixed effects (for "
            "example it is constant within units) or by the other covariates; remove it"
            for n in design.data.covariates
        }
    )
    roles.update(design.target_roles)
    _check_identified(check_names, roles, np.column_stack(check_cols), design)

    exog = np.column_stack(
        [np.ones(n_obs), time_dummies]
        + [design.targets[n] for n in design.targets]
        + [design.data.covariates[n] for n in design.data.covariates]
    )
    exog_names = [_CONST, *time_names, *reported]
    model = AbsorbingLS(
        pd.Series(design.data.y, name="__cpd_outcome"),
        pd.DataFrame(exog, columns=exog_names),
        absorb=pd.DataFrame({"__cpd_unit": pd.Categorical(design.data.unit)}),
        weights=design.data.weights,
    )
    res = model.fit(
        cov_type="clustered", clusters=design.data.cluster, debiased=False, use_cache=False
    )

    units_nested = _nested(design.data.unit, design.data.cluster, n_units)
    n_params = len(exog_names) + (0 if units_nested else n_units - 1)
    if n_obs - n_params <= 0:
        raise EstimationError(
            f"{n_obs} rows cannot estimate {n_params} parameters; add rows or use fewer covariates."
        )
    factor = n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - n_params)
    params = res.params.loc[reported].astype(float)
    cov = res.cov.loc[reported, reported].astype(float) * factor
    params.index.name = cov.index.name = cov.columns.name = "term"
    return Fit(
        params=params,
        cov=cov,
        n_obs=n_obs,
        n_units=n_units,
        n_periods=n_periods,
        n_clusters=n_clusters,
        n_params=n_params,
        units_nested=units_nested,
        small_sample_factor=factor,
    )


def fit_facts(fit: Fit, spec, std_errors: pd.Series, notes) -> dict:
    """Keyword arguments every :class:`~cpdimpact.did.results.TwfeFit` takes from a fit."""
    return {
        "params": fit.params,
        "std_errors": std_errors,
        "cov": fit.cov,
        "df": fit.df,
        "n_clusters": fit.n_clusters,
        "n_obs": fit.n_obs,
        "n_units": fit.n_units,
        "n_periods": fit.n_periods,
        "n_params": fit.n_params,
        "small_sample_factor": fit.small_sample_factor,
        "cov_type": COV_TYPE,
        "cluster": spec.cluster,
        "outcome": spec.outcome,
        "weights": spec.weights,
        "alpha": spec.alpha,
        "notes": tuple(notes),
    }


def _nested(unit: np.ndarray, cluster: np.ndarray, n_units: int) -> bool:
    """True if every unit lies in exactly one cluster (its effects then cost no cluster df)."""
    pairs = np.unique(unit.astype(np.int64) * (int(cluster.max()) + 1) + cluster)
    return pairs.shape[0] == n_units


def wald_f(estimates: np.ndarray, cov: np.ndarray, df_denom: int) -> tuple[float, int, float]:
    """Cluster-robust Wald test that all ``estimates`` are 0, scaled as F(q, G-1).

    Returns ``(F, q, p)`` with ``F = b' V^{-1} b / q``; NaN when V is singular (q >= G).
    """
    q = estimates.shape[0]
    try:
        solved = np.linalg.solve(cov, estimates)
    except np.linalg.LinAlgError:
        return float("nan"), q, float("nan")
    stat = float(estimates @ solved) / q
    return stat, q, float(stats.f.sf(stat, q, df_denom))
