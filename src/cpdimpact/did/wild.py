r"""Wild cluster bootstrap for the two-way fixed-effects DiD coefficient, for few clusters.

With few clusters (an area roll-out over 9 areas) the cluster-robust t-test over-rejects even
with the ``G/(G-1)*(N-1)/(N-K)`` factor and t on ``G - 1`` degrees of freedom (Cameron, Gelbach
& Miller 2008). The wild cluster bootstrap of the t statistic, with the null imposed (WCR), is
the standard remedy (Cameron, Gelbach & Miller 2008; MacKinnon & Webb 2017, 2018; Roodman,
MacKinnon, Nielsen & Webb 2019). See ``docs/wild.md``.

The model is the one of :class:`cpdimpact.did.DiD`,

.. math::

    y_{it} = \alpha_i + \lambda_t + \beta D_{it} + \gamma' X_{it} + \varepsilon_{it},

and the test is :math:`H_0: \beta = 0`. Nothing is refitted per draw: the fixed effects and
covariates are partialled out once (Frisch-Waugh-Lovell), after which every bootstrap
coefficient and its CR1 standard error are linear and quadratic forms in the ``G`` cluster
weights, computed for all draws at once from ``G x G`` matrices of per-cluster sums.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cpdimpact._results import TIDY_COLUMNS, EstimateResult
from cpdimpact._results import p_value as t_p_value
from cpdimpact._validate import (
    check_alpha,
    check_choice,
    check_positive_int,
    check_seed,
    check_treatment_not_covariate,
    recordable_sequence,
    recorded_seed,
)
from cpdimpact.did._checks import numeric_column
from cpdimpact.did._common import normalise_covariates, prepare
from cpdimpact.errors import (
    EstimationError,
    FewClustersWarning,
)

__all__ = ["wild_cluster_bootstrap", "WildBootstrapResult", "WEIGHT_TYPES"]

#: Webb's (2023) six-point distribution: +-sqrt(1/2), +-1, +-sqrt(3/2), each with probability 1/6.
_WEBB = np.sqrt(np.array([3.0, 2.0, 1.0, 1.0, 2.0, 3.0]) / 2.0) * np.array([-1, -1, -1, 1, 1, 1])

#: Auxiliary weight distributions offered.
WEIGHT_TYPES = ("webb", "rademacher")

#: Below this many clusters Rademacher weights allow at most 2^G = 32 distinct draws.
_FEW_FOR_RADEMACHER = 6

#: Below this many treated (or untreated) clusters the wild bootstrap itself is unreliable.
_FEW_TREATED = 3

# |t*| within this relative distance of |t| counts as a tie (the identity draw of an
# enumeration reproduces t up to rounding); ties count as "at least as extreme".
_TIE_RTOL = 1e-10

# Relative size below which the treatment counts as explained by the fixed effects/covariates.
_COLLINEAR_TOL = 1e-8


@dataclass(frozen=True)
class _Inversion:
    """Per-draw pieces from which t*(beta0) follows for any null value beta0 in O(B).

    Under ``H0: beta = beta0`` the bootstrap numerator is ``ny - beta0 * nx`` and the squared
    sum of bootstrap scores is ``a - 2 beta0 b + beta0^2 c`` (WCR); for WCU ``nx = b = c = 0``.
    """

    ny: np.ndarray
    nx: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    scale: float  # sqrt(CR1 factor) / x'x: se* = scale * sqrt(sum of squared scores)

    def t_boot(self, beta0: float) -> np.ndarray:
        num = self.ny - beta0 * self.nx
        ss = self.a - 2.0 * beta0 * self.b + beta0 * beta0 * self.c
        with np.errstate(divide="ignore", invalid="ignore"):
            return num / (self.scale * np.sqrt(np.maximum(ss, 0.0)))


def _bootstrap_p(t_obs: float, t_boot: np.ndarray) -> float:
    """Symmetric two-sided p-value: share of draws with ``|t*| >= |t|`` (ties counted)."""
    threshold = abs(t_obs) * (1.0 - _TIE_RTOL)
    return float(np.mean(np.abs(t_boot) >= threshold))


class _WildTestFaces(EstimateResult):
    """Faces shared by the wild bootstrap results: the draws described, the p-value function
    and its inversion, the tidy row and the histogram. Subclasses give ``_kind`` (the scheme),
    ``_null_label`` (what ``H0`` sets to zero) and ``_t_boot(null)``."""

    @property
    def statistic(self) -> float:
        """Alias of :attr:`t_statistic` (the ``statistic`` column of ``to_frame``)."""
        return self.t_statistic

    @property
    def method(self) -> str:
        draws = (
            f"all {self.n_bootstrap} Rademacher sign vectors (enumerated)"
            if self.enumerated
            else f"{self.n_bootstrap} draws, {self.weights_type.capitalize()} weights, "
            f"seed {self.seed}"
        )
        return f"wild cluster bootstrap-t, {self._kind}, {draws}"

    def p_value_at(self, null: float) -> float:
        """Bootstrap p-value of ``H0: parameter = null`` (the function inverted for the
        interval)."""
        t_obs = (self.estimate - null) / self.std_error
        return _bootstrap_p(t_obs, self._t_boot(null))

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """One row: the bootstrap p-value and the interval at ``alpha`` (the stored one at the
        result's level, else the inversion of the bootstrap test at ``alpha``)."""
        if alpha == self.alpha:
            lower, upper = self.ci_lower, self.ci_upper
        else:
            lower, upper = _invert(self, alpha)
        row = (
            self.term,
            self.estimate,
            self.std_error,
            self.t_statistic,
            self.p_value,
            lower,
            upper,
        )
        return pd.DataFrame([row], columns=list(TIDY_COLUMNS))

    def plot(self, *, ax=None):
        """Histogram of the bootstrap t statistics with the observed ``+-t``; returns the Axes."""
        import matplotlib.pyplot as plt  # lazy: importing cpdimpact stays cheap

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        finite = self.t_boot[np.isfinite(self.t_boot)]
        ax.hist(finite, bins=min(60, max(10, finite.size // 50)), color="C0", alpha=0.7)
        t_abs = abs(self.t_statistic)
        ax.axvline(t_abs, color="C3", label=f"observed |t| = {t_abs:.3f}")
        ax.axvline(-t_abs, color="C3", linestyle="--")
        ax.set_xlabel(f"bootstrap t statistic under H0: {self._null_label} = 0")
        ax.set_ylabel("draws")
        ax.set_title(f"Wild cluster bootstrap (p = {self.p_value:.4f}, G = {self.n_clusters})")
        ax.legend(frameon=False, fontsize="small")
        return ax


@dataclass(frozen=True, kw_only=True, eq=False)
class WildBootstrapResult(_WildTestFaces):
    """Result of :func:`wild_cluster_bootstrap`: the DiD coefficient and its bootstrap test.

    Attributes
    ----------
    term : str
        The treatment column.
    estimate : float
        The two-way fixed-effects DiD coefficient (as :class:`cpdimpact.did.DiD`).
    std_error : float
        Its cluster-robust CR1 standard error (``G/(G-1)*(N-1)/(N-K)``, as ``DiD``).
    t_statistic : float
        ``estimate / std_error``; identical to ``DiD(...).fit(data).statistic``.
    p_value : float
        Wild cluster bootstrap p-value of ``H0: beta = 0``, two-sided symmetric: the share of
        bootstrap draws with ``|t*| >= |t|``.
    ci_lower, ci_upper : float
        ``1 - alpha`` confidence interval by inversion of the bootstrap test: the values
        ``beta0`` that the bootstrap test of ``H0: beta = beta0`` does not reject at ``alpha``.
        With ``restricted=False`` this is the symmetric bootstrap-t interval.
    cr1_p_value : float
        The conventional p-value (t with ``G - 1`` df), for comparison.
    t_boot : numpy.ndarray
        The bootstrap t statistics under ``H0: beta = 0`` (one per draw).
    n_clusters, n_obs, n_units, n_periods, n_params : int
        Clusters ``G``, rows ``N``, units, periods and ``K`` of the small-sample factor.
    n_bootstrap : int
        Draws used (``2**G`` when the Rademacher draws are enumerated).
    enumerated : bool
        True when every one of the ``2**G`` Rademacher sign vectors was used (exact p-value).
    weights_type : str
        ``"webb"`` or ``"rademacher"``.
    restricted : bool
        True for WCR (null imposed on the bootstrap DGP), False for WCU.
    seed : int or None
        Seed of the draws; ``None`` if a ``numpy.random.Generator`` (or a spawned
        ``SeedSequence``) was supplied or the draws were enumerated.
    small_sample_factor : float
        ``G/(G-1)*(N-1)/(N-K)``, used for the observed and every bootstrap t.
    alpha : float
        Level of ``ci_lower``/``ci_upper`` and ``to_frame``.
    outcome, cluster : str
        Outcome and cluster columns; ``weights`` the weights column or ``None``.
    notes : tuple of str
        Warnings raised, repeated for the report.
    """

    term: str
    estimate: float
    std_error: float
    t_statistic: float
    p_value: float
    ci_lower: float
    ci_upper: float
    cr1_p_value: float
    t_boot: np.ndarray = field(repr=False)
    n_clusters: int
    n_obs: int
    n_units: int
    n_periods: int
    n_params: int
    n_bootstrap: int
    enumerated: bool
    weights_type: str
    restricted: bool
    seed: int | None
    small_sample_factor: float
    alpha: float
    outcome: str
    cluster: str
    weights: str | None
    notes: tuple[str, ...] = ()
    _inversion: _Inversion = field(repr=False, default=None)

    _null_label = "beta"

    @property
    def _kind(self) -> str:
        return "WCR (null imposed)" if self.restricted else "WCU (null not imposed)"

    def _t_boot(self, null: float) -> np.ndarray:
        return self._inversion.t_boot(null)

    def _title(self) -> str:
        return "Wild cluster bootstrap test of the DiD coefficient"

    def _facts(self) -> tuple[tuple[str, str], ...]:
        return (
            ("Treatment", self.term),
            ("Outcome", self.outcome),
            ("Observations", f"{self.n_obs:,}"),
            ("Units (absorbed fixed effects)", f"{self.n_units:,}"),
            ("Periods (fixed effects)", f"{self.n_periods:,}"),
            ("Weights", self.weights or "none"),
            ("Cluster variable", self.cluster),
            ("Clusters (G)", f"{self.n_clusters:,}"),
            ("Standard error", "cluster-robust CR1: G/(G-1)*(N-1)/(N-K)"),
            ("Small-sample factor", f"{self.small_sample_factor:.6f} (K = {self.n_params})"),
            ("Bootstrap", self.method),
            ("p-value", "share of draws with |t*| >= |t| (two-sided, symmetric)"),
            ("Interval", f"{1 - self.alpha:.0%}, inversion of the bootstrap test"),
            ("CR1 t-test p (t, G - 1 df)", f"{self.cr1_p_value:.4f}"),
        )

    def __repr__(self) -> str:
        return (
            f"WildBootstrapResult(estimate={self.estimate:.4g}, std_error={self.std_error:.4g}, "
            f"t={self.t_statistic:.4g}, p_value={self.p_value:.4g}, "
            f"n_clusters={self.n_clusters}, n_bootstrap={self.n_bootstrap}, "
            f"weights_type={self.weights_type!r}, restricted={self.restricted})"
        )


def _with_interval(res, alpha: float):
    """``res`` with its test-inversion interval at level ``1 - alpha`` filled in."""
    lower, upper = _invert(res, alpha)
    object.__setattr__(res, "ci_lower", lower)
    object.__setattr__(res, "ci_upper", upper)
    return res


def _invert(res: WildBootstrapResult, alpha: float) -> tuple[float, float]:
    """The set ``{beta0 : p(beta0) > alpha}``, assumed an interval around the estimate.

    Each end is bracketed by stepping out from the estimate in doubling multiples of the
    standard error until the test rejects, then found by bisection to ~1e-10 standard errors.
    """
    se = res.std_error
    ends = []
    for sign in (-1.0, 1.0):
        inside, step = res.estimate, se
        outside = None
        for _ in range(60):
            trial = res.estimate + sign * step
            if res.p_value_at(trial) <= alpha:
                outside = trial
                break
            inside, step = trial, 2 * step
        if outside is None:
            ends.append(sign * np.inf)
            continue
        for _ in range(200):
            if abs(outside - inside) <= 1e-10 * se:
                break
            mid = 0.5 * (inside + outside)
            if res.p_value_at(mid) <= alpha:
                outside = mid
            else:
                inside = mid
        ends.append(0.5 * (inside + outside))
    return float(ends[0]), float(ends[1])


def _cluster_sums(values: np.ndarray, order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per-cluster column sums of a (N,) or (N, p) array; rows sorted by cluster via ``order``."""
    return np.add.reduceat(values[order], starts, axis=0)


def _check_options(alpha, weights_type, n_bootstrap, seed) -> None:
    """The options every wild cluster bootstrap takes, checked before any data are read."""
    check_alpha(alpha)
    check_choice(weights_type, "weights_type", WEIGHT_TYPES)
    check_positive_int(n_bootstrap, "n_bootstrap")
    check_seed(seed)


def _test_facts(
    t_obs: float,
    t_boot: np.ndarray,
    n_clusters: int,
    draws: tuple[np.ndarray, bool, int | None],
    weights_type: str,
    restricted: bool,
    alpha: float,
) -> dict:
    """What every wild bootstrap result records about its test and its ``draws``.

    ``draws`` is what :func:`_draws` returned. The interval is left ``nan`` here: it needs
    the finished result, and :func:`_with_interval` fills it in.
    """
    v, enumerated, seed = draws
    return {
        "t_statistic": t_obs,
        "p_value": _bootstrap_p(t_obs, t_boot),
        "ci_lower": np.nan,
        "ci_upper": np.nan,
        "t_boot": t_boot,
        "n_clusters": n_clusters,
        "n_bootstrap": int(v.shape[1]),
        "enumerated": enumerated,
        "weights_type": weights_type,
        "restricted": bool(restricted),
        "seed": seed,
        "alpha": alpha,
    }


def _draws(
    n_clusters: int, n_bootstrap: int, weights_type: str, seed
) -> tuple[np.ndarray, bool, int | None]:
    """Weights matrix (G, B), whether it is the full Rademacher enumeration, and the seed."""
    if weights_type == "rademacher" and 2**n_clusters <= n_bootstrap:
        codes = np.arange(2**n_clusters, dtype=np.int64)
        bits = (codes[None, :] >> np.arange(n_clusters, dtype=np.int64)[:, None]) & 1
        return (2.0 * bits - 1.0), True, None
    if isinstance(seed, np.random.Generator):
        rng, recorded = seed, None
    else:
        sequence = recordable_sequence(seed)  # an int n is SeedSequence(n)
        rng, recorded = np.random.default_rng(sequence), recorded_seed(sequence)
    if weights_type == "webb":
        v = _WEBB[rng.integers(0, 6, size=(n_clusters, n_bootstrap))]
    else:
        v = 2.0 * rng.integers(0, 2, size=(n_clusters, n_bootstrap)) - 1.0
    return v, False, recorded


def wild_cluster_bootstrap(
    data: pd.DataFrame,
    *,
    outcome: str = "outcome",
    unit: str = "unit",
    time: str = "year",
    treatment: str = "exposed",
    cluster: str = "area",
    covariates: Sequence[str] = (),
    weights: str | None = None,
    n_bootstrap: int = 9999,
    weights_type: str = "webb",
    restricted: bool = True,
    alpha: float = 0.05,
    seed: int | np.random.Generator | None = None,
) -> WildBootstrapResult:
    r"""Wild cluster bootstrap-t test of the two-way fixed-effects DiD coefficient.

    Parameters
    ----------
    data : pandas.DataFrame
        Pupil rows or unit-year rows (as for :class:`cpdimpact.did.DiD`); not modified.
    outcome, unit, time, treatment, cluster : str
        Columns: outcome, unit whose fixed effects are absorbed, period (one fixed effect per
        value), treatment indicator ``D_it`` and cluster (the level of assignment, e.g. area).
    covariates : sequence of str
        Numeric covariates, partialled out with the fixed effects.
    weights : str or None
        Analytic weights (weighted least squares), e.g. pupils per school-year mean.
    n_bootstrap : int
        Number of draws ``B``. With Rademacher weights and ``2**G <= n_bootstrap`` all ``2**G``
        sign vectors are enumerated instead (the p-value is then exact, not simulated).
    weights_type : {"webb", "rademacher"}
        Auxiliary distribution of the cluster multipliers ``v_g``. Webb's six-point weights
        (default) suit very few clusters; Rademacher (+-1) has only ``2**G`` distinct draws.
    restricted : bool
        True (default): WCR, the bootstrap DGP imposes ``beta = 0``. False: WCU.
    alpha : float
        ``1 - alpha`` is the level of the interval.
    seed : int, numpy.random.SeedSequence, numpy.random.Generator or None
        Seed of the draws. ``None`` draws a seed and records it in the result; the same int
        seed gives identical output, and ``SeedSequence(n)`` the same as ``n``. A Generator is
        drawn from.

    Returns
    -------
    WildBootstrapResult

    Raises
    ------
    cpdimpact.errors.MissingColumnError
        A named column is absent.
    cpdimpact.errors.InvalidValueError
        Non-numeric or missing values (the message names the column and rows); weights <= 0.
    cpdimpact.errors.EstimationError
        Fewer than 2 clusters or periods, or a treatment (covariate) with no variation left
        after absorbing the fixed effects.

    Notes
    -----
    Let :math:`\tilde y, \tilde x` be the outcome and treatment after partialling out the unit
    effects (exact weighted within-unit demeaning), the period dummies and the covariates, and
    :math:`\tilde e = \tilde y - \tilde x\beta_0` the restricted residuals (WCR; for WCU the
    unrestricted residuals :math:`\hat u`). A draw multiplies cluster :math:`g`'s residuals by
    :math:`v_g`; then :math:`\hat\beta^*_b - \beta_0 = \sum_g v_{gb} s_g / \tilde x'\tilde x`
    with :math:`s_g = \tilde x_g'\tilde e_g`, and the bootstrap cluster scores are
    :math:`S^* = K V` for a ``G x G`` matrix :math:`K` of per-cluster cross-products
    (Roodman et al. 2019). The CR1 factor :math:`G/(G-1)\,(N-1)/(N-K)`, with :math:`K` = the
    constant, :math:`T-1` period dummies, the treatment and the covariates (plus :math:`U-1`
    unit effects if units are not nested in clusters), enters the observed and every bootstrap
    t alike, so it cancels from the p-value.

    The p-value is the share of draws with :math:`|t^*| \ge |t|`; ties (the identity draw of
    an enumeration reproduces :math:`t`) count as at least as extreme, so an enumerated
    p-value is never below :math:`2/2^G`. The interval inverts the bootstrap test over
    :math:`\beta_0` (boottest's default for WCR); for WCU it is the symmetric bootstrap-t
    interval :math:`\hat\beta \pm q^*_{1-\alpha}\,\mathrm{se}`.

    References
    ----------
    Cameron, A. C., Gelbach, J. B. & Miller, D. L. (2008). Bootstrap-based improvements for
    inference with clustered errors. *Review of Economics and Statistics* 90(3), 414-427.
    MacKinnon, J. G. & Webb, M. D. (2017). Wild bootstrap inference for wildly different
    cluster sizes. *Journal of Applied Econometrics* 32(2), 233-254.
    MacKinnon, J. G. & Webb, M. D. (2018). The wild bootstrap for few (treated) clusters.
    *Econometrics Journal* 21(2), 114-135.
    Roodman, D., MacKinnon, J. G., Nielsen, M. O. & Webb, M. D. (2019). Fast and wild:
    bootstrap inference in Stata using boottest. *Stata Journal* 19(1), 4-60.
    Webb, M. D. (2023). Reworking wild bootstrap-based inference for clustered errors.
    *Canadian Journal of Economics* 56(3), 839-858.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.did.wild import wild_cluster_bootstrap
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame([(s, y) for s in range(27) for y in range(2016, 2022)],
    ...                   columns=["unit", "year"])
    >>> df["area"] = df["unit"] % 9
    >>> df["exposed"] = (df["area"] < 4) & (df["year"] >= 2019)
    >>> df["outcome"] = 0.1 * df["unit"] + 1.0 * df["exposed"] + rng.normal(0, 1, len(df))
    >>> res = wild_cluster_bootstrap(df, seed=1)
    >>> res.n_clusters, res.weights_type, res.restricted, res.n_bootstrap
    (9, 'webb', True, 9999)
    >>> list(res.to_frame().columns)
    ['term', 'estimate', 'std_error', 'statistic', 'p_value', 'ci_lower', 'ci_upper']
    """
    covariates = normalise_covariates(covariates)
    _check_options(alpha, weights_type, n_bootstrap, seed)
    check_treatment_not_covariate(treatment, covariates)

    prep = prepare(
        data,
        outcome=outcome,
        unit=unit,
        time=time,
        cluster=cluster,
        covariates=covariates,
        weights=weights,
        extra=((treatment, "treatment indicator", "treatment"),),
    )
    d = numeric_column(data, treatment, "treatment indicator")
    n_obs = prep.y.shape[0]
    n_clusters = prep.n_clusters
    n_units = int(prep.unit.max()) + 1
    n_periods = len(prep.time_levels)
    if n_clusters < 2:
        raise EstimationError(
            f"the wild cluster bootstrap needs at least 2 clusters of {cluster!r}; the data "
            f"have {n_clusters}. Cluster at the level of assignment (e.g. area)."
        )
    if n_periods < 2:
        raise EstimationError(
            f"the data cover a single period ({prep.time_levels[0]!r}); a difference-in-"
            "differences needs at least one period before and one after the start."
        )

    notes: list[str] = []
    _warn_clusters(notes, prep.cluster, d != 0, cluster, weights_type, n_clusters)

    # ---- partial out unit FE (exact within), period dummies and covariates (FWL) -----------
    w = np.ones(n_obs) if prep.weights is None else prep.weights
    sw = np.sqrt(w)
    wsum = np.bincount(prep.unit, weights=w, minlength=n_units)

    def within(mat: np.ndarray) -> np.ndarray:
        """M_U on sqrt(w)-scaled columns: subtract sqrt(w) * weighted unit means."""
        mat2 = mat.reshape(n_obs, -1)
        out = np.empty_like(mat2)
        for j in range(mat2.shape[1]):
            means = np.bincount(prep.unit, weights=sw * mat2[:, j], minlength=n_units) / wsum
            out[:, j] = mat2[:, j] - sw * means[prep.unit]
        return out.reshape(mat.shape)

    time_dummies = prep.time[:, None] == np.arange(1, n_periods)[None, :]
    extra = [prep.covariates[c] for c in covariates]
    w_mat = np.column_stack([time_dummies.astype(float), *extra]) * sw[:, None]
    w_t = within(w_mat)
    x_u = within(d * sw)
    y_u = within(prep.y * sw)
    raw = np.column_stack([time_dummies.astype(float), *extra, d])
    _check_identified(np.column_stack([w_t, x_u]), raw, w, n_periods, covariates, treatment)
    q_mat, r_mat = np.linalg.qr(w_t)
    keep = np.abs(np.diag(r_mat)) > _COLLINEAR_TOL * max(1.0, np.abs(np.diag(r_mat)).max())
    q_mat = q_mat[:, keep]
    x_t = x_u - q_mat @ (q_mat.T @ x_u)
    y_t = y_u - q_mat @ (q_mat.T @ y_u)

    xx = float(x_t @ x_t)
    beta = float(x_t @ y_t) / xx
    u_hat = y_t - x_t * beta

    nested = _nested(prep.unit, prep.cluster, n_units)
    n_params = 1 + (n_periods - 1) + 1 + len(covariates) + (0 if nested else n_units - 1)
    if n_obs - n_params <= 0:
        raise EstimationError(
            f"{n_obs} rows cannot estimate {n_params} parameters; add rows or use fewer covariates."
        )
    factor = n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - n_params)

    order = np.argsort(prep.cluster, kind="stable")
    starts = np.searchsorted(prep.cluster[order], np.arange(n_clusters))
    csum = lambda v: _cluster_sums(v, order, starts)  # noqa: E731
    score = csum(x_t * u_hat)
    se = float(np.sqrt(factor * score @ score)) / xx
    t_obs = beta / se

    # ---- the bootstrap -----------------------------------------------------------------------
    f_x = csum(x_t[:, None] * q_mat)  # (G, p): x_g' Q_g
    c_g = csum(x_t * x_t)

    def k_matrix(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(s, K): s_g = x_g'e_g and K with bootstrap scores S* = K V for residuals e."""
        s = csum(x_t * e)
        if nested:
            # M(e 1_h) = e 1_h - Q Q_h'e_h when units are nested in clusters.
            q_part = np.diag(s) - f_x @ csum(e[:, None] * q_mat).T
        else:
            q_part = np.empty((n_clusters, n_clusters))
            for h in range(n_clusters):
                e_h = np.where(prep.cluster == h, e, 0.0)
                m_e = within(e_h)
                m_e -= q_mat @ (q_mat.T @ m_e)
                q_part[:, h] = csum(x_t * m_e)
        return s, q_part - np.outer(c_g, s) / xx

    draws = _draws(n_clusters, int(n_bootstrap), weights_type, seed)
    v = draws[0]
    e = y_t if restricted else u_hat
    s_e, k_e = k_matrix(e)
    ny = (s_e @ v) / xx
    s_star = k_e @ v
    a = np.einsum("gb,gb->b", s_star, s_star)
    if restricted:
        s_x, k_x = k_matrix(x_t)
        nx = (s_x @ v) / xx
        sx_star = k_x @ v
        b = np.einsum("gb,gb->b", s_star, sx_star)
        c = np.einsum("gb,gb->b", sx_star, sx_star)
    else:
        nx = b = c = np.zeros_like(ny)
    inversion = _Inversion(ny=ny, nx=nx, a=a, b=b, c=c, scale=float(np.sqrt(factor)) / xx)
    t_boot = inversion.t_boot(0.0)

    res = WildBootstrapResult(
        term=treatment,
        estimate=beta,
        std_error=se,
        **_test_facts(t_obs, t_boot, n_clusters, draws, weights_type, restricted, alpha),
        cr1_p_value=float(t_p_value(t_obs, n_clusters - 1)),
        n_obs=n_obs,
        n_units=n_units,
        n_periods=n_periods,
        n_params=n_params,
        small_sample_factor=factor,
        outcome=outcome,
        cluster=cluster,
        weights=weights,
        notes=tuple(notes),
        _inversion=inversion,
    )
    return _with_interval(res, alpha)


def _nested(unit: np.ndarray, cluster: np.ndarray, n_units: int) -> bool:
    """True if every unit lies in exactly one cluster (its effects then cost no cluster df)."""
    pairs = np.unique(unit.astype(np.int64) * (int(cluster.max()) + 1) + cluster)
    return pairs.shape[0] == n_units


def _check_identified(within_cols, raw, w, n_periods, covariates, treatment) -> None:
    """Raise EstimationError if a period dummy, a covariate or the treatment is explained by
    the unit effects and the earlier columns.

    An unpivoted QR of the within design gives, in ``|R_jj|``, the norm of column j after
    partialling out the unit effects and every earlier column; it is compared with the
    column's own weighted, centred norm.
    """
    r_diag = np.abs(np.diag(np.linalg.qr(within_cols, mode="r")))
    centred = (raw - np.average(raw, axis=0, weights=w)) * np.sqrt(w)[:, None]
    scale = np.linalg.norm(centred, axis=0)
    names = [f"period {k}" for k in range(1, n_periods)] + list(covariates) + [treatment]
    for j, name in enumerate(names):
        if scale[j] > 0 and r_diag[j] > _COLLINEAR_TOL * scale[j]:
            continue
        if j == len(names) - 1:
            raise EstimationError(
                f"the treatment {treatment!r} has no variation left after absorbing the "
                "unit and period fixed effects (and covariates): for example it is "
                "constant, every unit starts in the same period with no untreated "
                "comparison units, or treatment never changes within a unit. A DiD needs "
                "units that switch and units that do not (yet)."
            )
        if j >= n_periods - 1:
            raise EstimationError(
                f"covariate {name!r} is explained by the unit and period fixed effects "
                "(for example it is constant within units) or by the other covariates; "
                "remove it"
            )
        raise EstimationError(
            "the period fixed effects are not identified from the unit fixed effects: "
            "each unit must be observed in at least two periods"
        )


def _warn_clusters(notes, cluster_codes, treated, cluster, weights_type, n_clusters) -> None:
    treated_clusters = np.unique(cluster_codes[treated]).size
    sides = {"treated": treated_clusters, "untreated": n_clusters - treated_clusters}
    _warn_few_clusters(
        notes,
        n_clusters,
        {side: n for side, n in sides.items() if n > 0},
        cluster,
        weights_type,
        stacklevel=4,
    )


def _warn_few_clusters(
    notes: list[str],
    n_clusters: int,
    sides: dict[str, int],
    cluster: str,
    weights_type: str,
    *,
    where: str = "",
    stacklevel: int,
) -> None:
    """Warn (and note) where the wild cluster bootstrap has too few clusters to be trusted.

    Too few for Rademacher weights in all, or too few on one side: ``sides`` maps each side
    (treated, untreated or comparison) to its number of clusters. ``where`` follows the
    cluster's name in the message; ``stacklevel`` is that of the warning from here.
    """

    def emit(message: str) -> None:
        warnings.warn(message, FewClustersWarning, stacklevel=stacklevel + 1)
        notes.append(message)

    if weights_type == "rademacher" and n_clusters < _FEW_FOR_RADEMACHER:
        emit(
            f"only {n_clusters} clusters of {cluster!r}: Rademacher weights give at most "
            f"2^{n_clusters} = {2**n_clusters} distinct bootstrap samples, too few for a "
            "useful p-value; use weights_type='webb' (Webb 2023)."
        )
    thin = {side: n for side, n in sides.items() if n < _FEW_TREATED}
    if thin:
        shown = " and ".join(f"{n} {side}" for side, n in thin.items())
        emit(
            f"only {shown} {'cluster' if list(thin.values())[-1] == 1 else 'clusters'} of {cluster!r}{where}: with so few clusters on one side "
            "the wild cluster bootstrap is itself unreliable (the restricted version under-"
            "rejects, the unrestricted over-rejects; MacKinnon & Webb 2017, 2018)."
        )
