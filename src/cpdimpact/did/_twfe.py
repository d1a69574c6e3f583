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

from cpdimpact._validate import check_choice
from cpdimpact.errors import EstimationError

__all__ = [
    "Design",
    "Fit",
    "fit_twfe",
    "fit_facts",
    "wald_f",
    "check_cov_type",
    "FEW_CLUSTERS",
    "FEW_TREATED_CLUSTERS",
    "COV_TYPE",
    "COV_TYPES",
]

#: Below this many clusters the sandwich estimator is known to over-reject.
FEW_CLUSTERS = 40

#: Below this many treated (or untreated) clusters the sandwich can be badly anti-conservative.
FEW_TREATED_CLUSTERS = 5

#: ``inference=ClusterRobust("auto")`` keeps CR1 only with at least this many clusters holding treated rows
#: and as many holding none (every cluster treated: the treated count alone); below, CR2. What
#: limits the sandwich is the smaller side, not the total (MacKinnon & Webb 2017): with a
#: third of 160 schools treated CR1 intervals covered about 93%, CR2 about 96.5%.
AUTO_CR1_MIN_CLUSTERS = 100

#: Label of the covariance estimator, shown in every result.
COV_TYPE = "cluster-robust CR1: G/(G-1)*(N-1)/(N-K), unit FE nested in clusters not in K"

#: The ``cov_type`` options of :class:`DiD` and :class:`EventStudy`.
COV_TYPES = ("CR1", "CR2", "auto")

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
    #: Cluster labels by code, to name clusters in CR2 warnings.
    cluster_levels: pd.Index | None = None


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
    cov_type: str = "CR1"
    #: CR2 only: Satterthwaite degrees of freedom of the reported terms.
    df_terms: pd.Series | None = None
    #: CR2 only: the pieces behind the HTZ test, its coefficients and the reported positions.
    cr2: object | None = None
    cr2_beta: np.ndarray | None = None
    cr2_index: dict[str, int] | None = None

    @property
    def df(self) -> int:
        """Degrees of freedom of the CR1 t and F reference distributions: clusters minus one."""
        return self.n_clusters - 1

    def htz(self, terms: list[str]) -> tuple[float, float, int, float, float]:
        """CR2 only: HTZ test that ``terms`` are all zero, ``(F, delta, q, df_denom, p)``."""
        index = [self.cr2_index[t] for t in terms]
        return self.cr2.htz(index, self.cr2_beta)

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


def check_cov_type(cov_type: str) -> None:
    check_choice(cov_type, "cov_type", COV_TYPES)


def fit_twfe(design: Design, cov_type: str = "CR1", notes: list[str] | None = None) -> Fit:
    """Fit y = unit FE + period FE + targets + covariates; clustered CR1 or CR2 covariance.

    The sandwich comes from linearmodels unadjusted (``debiased=False``); the factor
    ``G/(G-1) * (N-1)/(N-K)`` is applied here so that the convention does not depend on the
    linearmodels version. K counts the constant, the T-1 period dummies, the targets and the
    covariates, plus the U-1 unit effects only when units are not nested in clusters.
    With ``inference=ClusterRobust("CR2")`` the covariance and the per-term Satterthwaite degrees of freedom
    come from :mod:`cpdimpact.did._cr2` instead (no factor); its warnings go to ``notes``.
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
    facts = {
        "n_obs": n_obs,
        "n_units": n_units,
        "n_periods": n_periods,
        "n_clusters": n_clusters,
        "n_params": n_params,
        "units_nested": units_nested,
    }
    if cov_type == "CR2":
        return _fit_cr2(design, exog[:, 1:], exog_names[1:], params, facts, notes)
    return Fit(params=params, cov=cov, small_sample_factor=factor, **facts)


def _fit_cr2(design: Design, x, names, params, facts, notes) -> Fit:
    """CR2 covariance and Satterthwaite df of the reported terms (``x``: no constant)."""
    import warnings

    from cpdimpact.did._cr2 import cr2, singular_message
    from cpdimpact.errors import SmallSampleWarning

    if not facts["units_nested"]:
        raise EstimationError(
            "cov_type='CR2' needs every unit inside one cluster (the unit fixed effects nested "
            "in the clusters), but some units span several clusters. Cluster at the unit level "
            "or at a level that contains whole units (e.g. school or area for school units), "
            "or use cov_type='CR1'."
        )
    data = design.data
    beta, parts = cr2(x, data.y, unit=data.unit, cluster=data.cluster, weights=data.weights)
    index = {n: i for i, n in enumerate(names)}
    reported = list(params.index)
    pos = [index[n] for n in reported]
    cov = pd.DataFrame(parts.cov[np.ix_(pos, pos)], index=params.index, columns=params.index)
    cov.columns.name = "term"
    df_terms = pd.Series(parts.satterthwaite(pos), index=params.index, name="df")
    if parts.singular:
        # Name the reported terms only; period effects are nuisance parameters here.
        labels = [repr(n) if n in params.index else None for n in names]
        message = singular_message(parts.singular, labels, design.cluster_levels)
        warnings.warn(message, SmallSampleWarning, stacklevel=4)
        if notes is not None:
            notes.append(message)
    return Fit(
        params=params,
        cov=cov,
        small_sample_factor=1.0,
        cov_type="CR2",
        df_terms=df_terms,
        cr2=parts,
        cr2_beta=beta,
        cr2_index=index,
        **facts,
    )


def fit_facts(fit: Fit, spec, std_errors: pd.Series, notes, headline=()) -> dict:
    """Keyword arguments every :class:`~cpdimpact.did.results.TwfeFit` takes from a fit.

    Under CR2, ``df`` is the smallest Satterthwaite df among the ``headline`` terms (the
    treatment of a DiD; the event-time terms of an event study).
    """
    df = fit.df
    cov_type = COV_TYPE
    if fit.cov_type == "CR2":
        from cpdimpact.did._cr2 import COV_TYPE_CR2, COV_TYPE_CR2_WEIGHTS

        df = float(fit.df_terms[list(headline)].min())
        cov_type = COV_TYPE_CR2 + (COV_TYPE_CR2_WEIGHTS if spec.weights is not None else "")
    return {
        "params": fit.params,
        "std_errors": std_errors,
        "cov": fit.cov,
        "df": df,
        "df_terms": fit.df_terms,
        "n_clusters": fit.n_clusters,
        "n_obs": fit.n_obs,
        "n_units": fit.n_units,
        "n_periods": fit.n_periods,
        "n_params": fit.n_params,
        "small_sample_factor": fit.small_sample_factor,
        "cov_type": cov_type,
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
