r"""Imputation estimator for staggered adoption (Borusyak, Jaravel & Spiess 2024).

The estimator fits a model of untreated outcomes on untreated observations only, imputes the
untreated outcome of every treated observation from it, and averages the differences:

1. Fit :math:`Y_{it} = \alpha_i + \lambda_t + X_{it}'\gamma + \varepsilon_{it}` by (weighted)
   least squares on :math:`\Omega_0`, the never-treated and not-yet-treated observations.
2. Impute :math:`\hat Y_{it}(0) = \hat\alpha_i + \hat\lambda_t + X_{it}'\hat\gamma` and set
   :math:`\hat\tau_{it} = Y_{it} - \hat Y_{it}(0)` for every treated observation
   :math:`it \in \Omega_1`.
3. Average: :math:`\hat\tau_w = \sum_{it\in\Omega_1} w_{it}\hat\tau_{it}` with weights summing to 1
   (every treated observation, or those at one horizon :math:`e = t - E_i`).

Already-treated observations never serve as controls, so there are no "forbidden comparisons"
and no negative weights, whatever the heterogeneity of effects across cohorts and horizons.
See :class:`ImputationDiD` for the variance, the pre-trend test and the edge cases.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, NamedTuple

import numpy as np
import pandas as pd
from scipy import linalg, sparse
from scipy.sparse import csgraph

from cpdimpact._guards import (
    require_residual_variation,
    require_variation,
)
from cpdimpact._results import EventStudyEstimates, interval, tidy_frame
from cpdimpact._validate import check_int
from cpdimpact.did._common import check_alpha, normalise_covariates, prepare_event_time, warn
from cpdimpact.did._twfe import FEW_CLUSTERS, FEW_TREATED_CLUSTERS, wald_f
from cpdimpact.errors import (
    ArgumentTypeError,
    CpdImpactError,
    CpdImpactWarning,
    DesignError,
    DuplicateRowsError,
    EmptyComparisonGroupError,
    EstimationError,
    FewClustersWarning,
    InvalidArgumentError,
    SmallSampleWarning,
    format_rows,
    format_value,
)

__all__ = ["ImputationDiD", "ImputationResult", "ImputationPretrend", "ImputationPlacebo"]

#: Label of the variance estimator, shown in every result.
COV_TYPE = (
    "BJS (2024) Theorem 3 conservative cluster-robust variance; auxiliary effect averages by "
    "cohort x period (eq. 8, sums within clusters), no leave-out, no small-sample factor"
)

# Repeated unit-periods in under this share of the occupied ones mark unit-level data with
# duplicated rows (an error); more are pupil rows within units (the design).
_UNIT_LEVEL_REPEATS = 0.1

# A regressor whose residual norm, after the fixed effects and the earlier regressors, is below
# this share of its own (weighted, centred) norm counts as explained by them (as in _twfe).
_COLLINEAR_TOL = 1e-8


@dataclass(frozen=True, kw_only=True)
class ImputationDiD:
    r"""Imputation difference-in-differences for staggered adoption (Borusyak, Jaravel & Spiess).

    Parameters
    ----------
    outcome, unit, time : str
        Outcome, unit (whose fixed effects are fitted: the school on pupil rows) and period
        columns. ``time`` must hold whole numbers (e.g. years); gaps between periods are allowed.
    first_treated : str
        First treated period of the unit; 0 or missing for never-treated units. It must be
        constant within each unit: the design needs absorbing treatment.
    covariates : sequence of str
        Time-varying regressors of the model of untreated outcomes (estimated on untreated rows
        only). A covariate constant within units is absorbed by the unit effects and rejected.
    weights : str or None
        Positive weights, e.g. ``"n_pupils"`` on school-year means. They weight the step-1 least
        squares *and* the averages of step 3 (as ``aweight`` in Stata's ``did_imputation``).
    cluster : str or None
        Cluster column of the standard errors; ``None`` clusters by ``unit``.
    anticipation : int
        Periods before ``first_treated`` in which units may already react; those rows count as
        treated (horizons ``-anticipation .. -1``) and are excluded from step 1.
    horizons : sequence of int or None
        Event times :math:`e = t - E_i` of the event study; ``None`` gives every horizon with
        treated rows. They do not change the overall ATT, which averages every treated row.
    pretrend_leads : int
        :math:`K` of the pre-trend test (BJS Test 1); 0 skips it. Lead :math:`k` marks untreated
        rows :math:`k` units of ``time`` before the start (less ``anticipation``). With
        :math:`K \ge 2` the fit also estimates the placebo event study that
        :func:`~cpdimpact.did.honest.sensitivity` reads (``result.placebo``; see Notes).
    alpha : float
        ``1 - alpha`` is the level of the intervals.

    Notes
    -----
    **Estimator** (Borusyak, Jaravel & Spiess 2024, Theorem 2). With :math:`\Omega_0` the rows
    with :math:`E_i = 0` (never treated) or :math:`t < E_i - \delta` (anticipation
    :math:`\delta`), step 1 is the weighted least-squares fit

    .. math::

        \min_{\alpha,\lambda,\gamma}\sum_{it\in\Omega_0} \omega_{it}
        (Y_{it} - \alpha_i - \lambda_t - X_{it}'\gamma)^2,

    step 2 imputes :math:`\hat\tau_{it} = Y_{it} - \hat\alpha_i - \hat\lambda_t - X_{it}'\hat\gamma`
    on :math:`\Omega_1`, and step 3 reports :math:`\hat\tau_w = \sum_{\Omega_1} w_{it}\hat\tau_{it}`
    with :math:`w_{it} = \omega_{it}/\sum_{\Omega_1}\omega` over all treated rows (the overall
    ATT) or over the rows at horizon :math:`e` (the event study). Unit effects are eliminated
    exactly (within units) and the period effects and covariates solve a small dense system, so
    no unit dummies are formed: the cost is linear in the rows.

    On pupil rows (a repeated cross-section within schools) :math:`i` is the school, as in
    Stata's ``did_imputation Y i t Ei, fe(school t) cluster(school)``; every pupil is one
    observation of step 1 and of the averages.

    **Variance** (Theorem 3). The estimator is linear, :math:`\hat\tau_w = \sum_{it} v_{it}Y_{it}`,
    with :math:`v_{it} = w_{it}` on :math:`\Omega_1` and
    :math:`v_{\Omega_0} = -\,W_0 A_0 (A_0'W_0A_0)^{-1}A_1'w` (the imputation weights; :math:`A`
    the fixed-effect and covariate design, :math:`W_0` the step-1 weights). The conservative
    clustered variance is

    .. math::

        \hat\sigma^2_w = \sum_c \Big(\sum_{it\in c} v_{it}\tilde\varepsilon_{it}\Big)^2,

    with :math:`\tilde\varepsilon_{it}` the step-1 residual on :math:`\Omega_0` and
    :math:`\tilde\varepsilon_{it} = \hat\tau_{it} - \tilde\tau_{g(it)}` on :math:`\Omega_1`,
    where :math:`g` is the cohort x period cell and, by BJS eq. (8),

    .. math::

        \tilde\tau_g = \frac{\sum_c \big(\sum_{it\in c\cap g} v_{it}\big)
        \big(\sum_{it\in c\cap g} v_{it}\hat\tau_{it}\big)}
        {\sum_c \big(\sum_{it\in c\cap g} v_{it}\big)^2}.

    Why this choice: the cohort x period cells are the finest cells over which effects are
    averaged without a model of heterogeneity, so the variance is exact when effects are constant
    within cells and conservative otherwise (the excess is the dispersion of effects within
    cells, not across them); the eq. (8) weights minimise that excess. Sums are within the
    clusters of the variance, as in Stata's ``did_imputation`` (default ``avgeffectsby(Ei t)``,
    "adjusted for any clustering"). With the default (clusters = units) this is the formula of
    the paper and of ``diff_diff.ImputationDiD``; diff_diff forms the sums within units even
    when clustering more coarsely, so its standard errors differ slightly then. The leave-out
    refinement of BJS Appendix A.9 (less downward small-sample bias with small cohorts) is not
    applied: as the paper notes, the leave-out-free estimator is consistent when every cell
    holds many clusters; with small cohorts, read the standard errors with care. No
    small-sample factor is applied and the reference distribution is the normal (``df = inf``),
    as in the paper and both peer implementations.

    **Pre-trend test** (BJS Test 1, Section 4.4). On :math:`\Omega_0` only, fit step 1 with lead
    indicators :math:`1[t = E_i - \delta - k]`, :math:`k = 1..K` added, and test that their
    coefficients are jointly zero with a cluster-robust Wald test,
    :math:`F = \hat\beta'\hat V^{-1}\hat\beta / K` against :math:`F(K, G - 1)`. :math:`\hat V` is
    CR1 with the small-sample factor :math:`\frac{G}{G-1}\frac{N-1}{N-k}` of
    :class:`~cpdimpact.did.DiD` (unit effects nested in clusters not counted in :math:`k`). The
    test does not change the effect estimates, which always assume parallel trends: unlike a
    TWFE event study, the pre-period coefficients are not the reference for the post-period ones.

    **Placebo event study** (for :func:`~cpdimpact.did.honest.sensitivity`). Rambachan & Roth
    (2023) need pre- and post-period estimates :math:`\hat\beta \approx N(\tau + \delta,
    \Sigma)` that are relative to one reference period and built the same way, with their
    joint covariance. Neither the effects (relative to the average of all untreated periods of
    a unit) nor the Test 1 leads (another regression, relative to the periods before lead
    :math:`K`) are (Roth 2024, Section 3). With :math:`K` = ``pretrend_leads`` :math:`\ge 2`,
    the fit therefore refits the estimator with the start moved :math:`K` periods earlier
    (anticipation :math:`\delta + K`): step 1 on :math:`\Omega_0^K`, the rows with
    :math:`E_i = 0` or :math:`t < E_i - \delta - K`, and imputed effects
    :math:`\hat p_e` averaged at every event time :math:`e = -\delta-K, \dots, H` (:math:`H`
    the last horizon of the event study). Pre- and post-period averages are then the same
    estimator of :math:`E[Y_{it} - Y_{it}(0)]` plus the same kind of bias, the post-periods
    estimate the effects and the pre-periods zero under parallel trends and no anticipation,
    and the estimates are re-expressed relative to :math:`r = -\delta - 1`:

    .. math::

        \hat\beta_e = \hat p_e - \hat p_r, \qquad
        \hat\Sigma = \sum_c (\psi_{c,e} - \psi_{c,r})(\psi_{c,e'} - \psi_{c,r}),

    with :math:`\psi_{c,e}` the per-cluster sum of Theorem 3 for :math:`\hat p_e` (exact for
    the difference: the auxiliary averages of eq. 8 are cell by cell and each cohort x period
    cell is one event time). Without staggering (one start, never-treated units, a balanced
    panel) :math:`\hat\beta_e = (\bar Y^D_e - \bar Y^N_e) - (\bar Y^D_r - \bar Y^N_r)`,
    the TWFE event-study coefficient, whatever :math:`K`: a linear difference in trends is
    then exactly linear in :math:`\hat\beta`, which :math:`\Delta^{SD}(0)` removes. With
    staggered starts not-yet-treated rows also fit the period effects, so the bias of each
    :math:`\hat\beta_e` is a weighted mix of trend differences, as for any estimator using
    them. Costs: the post-period :math:`\hat\beta_e` use fewer untreated periods than the
    fit's effects (those before :math:`E_i - \delta - K`, then the reference) and so are
    noisier; units with no row before :math:`E_i - \delta - K` and periods with no row in
    :math:`\Omega_0^K` drop out of it (counted in ``placebo.n_dropped`` and ``notes``). The
    fit's own estimates, intervals and warnings are unchanged.

    **Edge cases.** Units treated in every period they are observed have no untreated row, so
    their unit effect is not identified: their rows are dropped, counted in ``notes`` and warned
    (:class:`~cpdimpact.errors.SmallSampleWarning`). So are treated rows in a period with no
    untreated row (with no never-treated units, every period from the last cohort's start on;
    BJS Proposition 5), and treated rows whose unit and period are not linked through untreated
    rows (the untreated rows split into disconnected groups; rare, in unbalanced panels). Rows
    count as unit level when fewer than 10% of the unit-periods hold more than one row: the
    repeats are then duplicates, an error (:class:`~cpdimpact.errors.DuplicateRowsError`). With
    several rows in more unit-periods (pupils), repeats are the design.

    **When to prefer it over** :class:`~cpdimpact.did.StaggeredDiD`: under parallel trends in
    *every* period and homoskedastic, serially uncorrelated errors it is the efficient linear
    unbiased estimator (Theorem 2), using all pre-periods and all not-yet-treated units, so its
    intervals are usually shorter. Callaway & Sant'Anna assume parallel trends only against
    their chosen base period and controls, so they are more robust when trends diverge long
    before treatment or errors are strongly serially correlated. See ``docs/imputation.md``.

    References
    ----------
    Borusyak, K., Jaravel, X. & Spiess, J. (2024). Revisiting event-study designs: robust and
    efficient estimation. *Review of Economic Studies* 91(6), 3253-3285.
    Callaway, B. & Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time
    periods. *Journal of Econometrics* 225(2), 200-230.
    Gardner, J. (2022). Two-stage differences in differences. arXiv:2207.05943.
    Rambachan, A. & Roth, J. (2023). A more credible approach to parallel trends. *Review of
    Economic Studies* 90(5), 2555-2591.
    Roth, J. (2024). Interpreting event-studies from recent difference-in-differences methods.
    arXiv:2401.12309.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.did.imputation import ImputationDiD
    >>> rng = np.random.default_rng(1)
    >>> unit, year = np.divmod(np.arange(120 * 8), 8)
    >>> start = np.array([0, 2019, 2021])[unit % 3]
    >>> df = pd.DataFrame({"unit": unit, "year": 2016 + year, "first_treated": start[unit]})
    >>> e = df["year"] - df["first_treated"]
    >>> treated = (df["first_treated"] > 0) & (e >= 0)
    >>> df["outcome"] = (0.1 * unit + 0.3 * year + np.where(treated, 1 + 0.5 * e, 0)
    ...                  + rng.normal(0, 1, len(df)))
    >>> res = ImputationDiD(pretrend_leads=2).fit(df)
    >>> round(res.estimate, 1), res.n_clusters, res.df
    (1.8, 120, inf)
    >>> res.event_study["event_time"].tolist()
    [0, 1, 2, 3, 4]
    >>> res.pretrend.df
    2
    """

    #: Rows it fits: unit-period rows, or pupil rows within units (a repeated cross-section).
    data_level: ClassVar[str] = "any"
    #: Its estimates are in the outcome's units, averaged over pupils (or pupil-weighted rows).
    effect_scale: ClassVar[str] = "outcome"

    outcome: str = "outcome"
    unit: str = "unit"
    time: str = "year"
    first_treated: str = "first_treated"
    covariates: Sequence[str] = field(default=())
    weights: str | None = None
    cluster: str | None = None
    anticipation: int = 0
    horizons: Sequence[int] | None = None
    pretrend_leads: int = 0
    alpha: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", normalise_covariates(self.covariates))
        check_alpha(self.alpha)
        for name in ("anticipation", "pretrend_leads"):
            check_int(getattr(self, name), name, minimum=0)
        if self.horizons is not None:
            values = (
                [self.horizons] if isinstance(self.horizons, int | np.integer) else self.horizons
            )
            if any(isinstance(h, bool) or not isinstance(h, int | np.integer) for h in values):
                raise ArgumentTypeError(
                    f"horizons must be whole numbers (periods since the start), got "
                    f"{format_value(self.horizons)}."
                )
            horizons = tuple(sorted({int(h) for h in values}))
            if not horizons:
                raise InvalidArgumentError(
                    "horizons is empty; pass None for every available horizon"
                )
            if horizons[0] < -self.anticipation:
                raise InvalidArgumentError(
                    f"horizons include {horizons[0]}, which lies before treatment (and before the "
                    f"anticipation window of {self.anticipation} periods): pre-treatment rows "
                    "are not estimated as effects; test them with pretrend_leads instead"
                )
            object.__setattr__(self, "horizons", horizons)
        roles = [self.outcome, self.unit, self.time, self.first_treated]
        clash = [c for c in self.covariates if c in roles]
        if clash:
            raise InvalidArgumentError(
                f"covariates {', '.join(map(format_value, clash))} are also the outcome, unit, "
                "time or first_treated column; remove them from covariates."
            )

    def describe(self) -> str:
        """The estimator and its inference in plain words, for a report."""
        cluster = self.cluster or self.unit
        return (
            "Imputation difference-in-differences (Borusyak, Jaravel & Spiess 2024): unit and "
            "period effects fitted on untreated observations only, untreated outcomes imputed "
            "for treated observations, effects averaged; conservative standard errors "
            f"clustered by {cluster}, with normal intervals"
        )

    # ------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame) -> ImputationResult:
        """Estimate the overall ATT and the event study on ``data`` (not modified).

        Parameters
        ----------
        data : pandas.DataFrame
            One row per unit and period, or per pupil within unit and period.

        Returns
        -------
        ImputationResult

        Raises
        ------
        cpdimpact.errors.MissingColumnError
            A named column is absent.
        cpdimpact.errors.InvalidValueError
            Non-numeric or fractional periods or starts, missing values, weights <= 0,
            ``first_treated`` varying within a unit (treatment must be absorbing).
        cpdimpact.errors.DuplicateRowsError
            A unit-period repeated in unit-level data.
        cpdimpact.errors.DesignError
            No treated row can be imputed; no untreated row
            (:class:`~cpdimpact.errors.EmptyComparisonGroupError`); leads without rows.
        cpdimpact.errors.EstimationError
            A covariate or lead explained by the fixed effects; fewer than two clusters.
        """
        d = self._design(data)
        notes = d.notes
        model = _Projection(
            d.unit0, d.period0, d.w0, d.x0, d.n_units0, d.n_periods0, d.period_comp, d.roles
        )
        coef = model.coefficients(d.y0)
        residual0 = d.y0 - coef.fitted
        fitted1 = coef.alpha[d.unit1] + coef.lam[d.period1] + d.x1 @ coef.gamma
        tau = d.y1 - fitted1
        _few_clusters(notes, d, self.cluster or self.unit)

        # Targets: the overall ATT, then one per horizon.
        event = d.event1
        available = np.unique(event)
        horizons = available if self.horizons is None else np.asarray(self.horizons)
        absent = [int(h) for h in horizons if h not in set(available.tolist())]
        if absent:
            warn(
                notes,
                f"horizons {absent} have no treated rows that can be imputed; they are reported "
                "as missing (NaN). Available horizons: "
                f"{[int(h) for h in available]}.",
                SmallSampleWarning,
                depth=1,
            )
        masks = [np.ones(tau.shape[0], dtype=bool)] + [event == h for h in horizons]
        terms = ["ATT"] + [f"event_time={int(h)}" for h in horizons]
        estimates, psis, counts = _averages(d, model, residual0, tau, masks)
        influence = pd.DataFrame(np.column_stack(psis), columns=terms)
        influence.index = pd.Index(d.cluster_levels, name=self.cluster or self.unit)
        std_errors = np.sqrt((influence.to_numpy() ** 2).sum(axis=0))
        exact = require_residual_variation(
            estimates[0],
            std_errors[0],
            np.concatenate([d.y0, d.y1]),
            self.outcome,
            explained_by="the unit and period fixed effects (and covariates) of the untreated "
            "rows and a constant effect",
        )
        if exact:
            notes.append(exact)
        lower, upper = interval(estimates[1:], std_errors[1:], alpha=self.alpha)
        event_study = pd.DataFrame(
            {
                "event_time": [int(h) for h in horizons],
                "estimate": estimates[1:],
                "std_error": std_errors[1:],
                "ci_lower": lower,
                "ci_upper": upper,
                "n_obs": counts[1:],
            }
        )
        effects = pd.DataFrame(
            {
                "unit": d.unit_values1,
                "time": d.t1.astype(np.int64),
                "first_treated": d.g1.astype(np.int64),
                "event_time": event.astype(np.int64),
                "y0_hat": fitted1,
                "tau": tau,
                "weight": d.w1 / d.w1.sum(),
            },
            index=d.index1,
        )
        pretrend = self._pretrend(d) if self.pretrend_leads else None
        with_rows = [int(h) for h, n in zip(horizons, counts[1:], strict=True) if n > 0]
        placebo, placebo_note = self._placebo(data, max(with_rows, default=-1))
        return ImputationResult(
            spec=self,
            estimate=float(estimates[0]),
            std_error=float(std_errors[0]),
            event_study=event_study,
            treatment_effects=effects,
            influence=influence,
            pretrend=pretrend,
            n_obs=int(d.y0.shape[0] + tau.shape[0]),
            n_treated_obs=int(tau.shape[0]),
            n_untreated_obs=int(d.y0.shape[0]),
            n_units=d.n_units,
            n_clusters=d.n_clusters,
            n_dropped=d.n_dropped,
            notes=tuple(notes),
            placebo=placebo,
            placebo_note=placebo_note,
        )

    # ------------------------------------------------------------------ data
    def _design(self, data: pd.DataFrame) -> _Design:
        cluster = self.cluster or self.unit
        prep, t, g = prepare_event_time(data, self, "The imputation estimator", cluster=cluster)
        index = data.index
        unit, period = prep.unit, prep.time
        n_units, n_periods = int(unit.max()) + 1, len(prep.time_levels)
        unit_values = data[self.unit].to_numpy()
        start = np.empty(n_units)  # absorbing treatment: one start per unit (checked above)
        start[unit] = g

        # Repeated unit-periods are the design on pupil rows, an error on unit-level rows.
        cell = unit.astype(np.int64) * n_periods + period
        counts = np.bincount(cell, minlength=n_units * n_periods)
        occupied = counts[counts > 0]
        n_repeated = int(np.count_nonzero(occupied > 1))
        if 0 < n_repeated < _UNIT_LEVEL_REPEATS * occupied.size:
            repeated = counts[cell] > 1
            raise DuplicateRowsError(
                f"({self.unit}, {self.time}) repeats in {format_rows(index[repeated])}, but only "
                f"{n_repeated} of {occupied.size} unit-periods hold more than one row, so the "
                "data look unit level (one row per unit and period) with duplicates. Drop the "
                "duplicated rows, or check that the unit column identifies units (pupil rows, "
                "with several per unit and period, may repeat)."
            )

        treated = (g != 0) & (t >= g - self.anticipation)
        if not treated.any():
            raise DesignError(
                f"no treated rows: every row is of a never-treated unit or before its unit's "
                f"{self.first_treated!r} (minus anticipation). There is no effect to estimate."
            )
        untreated = ~treated
        if not untreated.any():
            raise EmptyComparisonGroupError(
                "every row is treated: there are no never-treated or not-yet-treated rows to fit "
                "the model of untreated outcomes on."
            )
        notes: list[str] = []
        has0 = np.bincount(unit[untreated], minlength=n_units) > 0
        per0 = np.bincount(period[untreated], minlength=n_periods) > 0

        # Units and periods linked through untreated rows (connected components).
        u0, p0 = unit[untreated], period[untreated]
        map_u = np.full(n_units, -1)
        map_u[has0] = np.arange(int(has0.sum()))
        map_p = np.full(n_periods, -1)
        map_p[per0] = np.arange(int(per0.sum()))
        n_units0, n_periods0 = int(has0.sum()), int(per0.sum())
        n_comp, comp = _components(map_u[u0], map_p[p0], n_units0, n_periods0)

        keep = treated.copy()
        no_unit = treated & ~has0[unit]
        if no_unit.any():
            units = np.unique(unit[no_unit])
            keep &= ~no_unit
            warn(
                notes,
                f"{units.size} units are treated in every period they are observed (e.g. "
                f"{_first_values(unit_values, unit, units)}): with no "
                "untreated row their unit effect is not identified, so their "
                f"{int(no_unit.sum())} rows were dropped.",
                SmallSampleWarning,
                depth=2,
            )
        no_period = keep & ~per0[period]
        if no_period.any():
            periods = np.unique(period[no_period])
            keep &= ~no_period
            shown = ", ".join(format_value(p) for p in prep.time_levels[periods])
            warn(
                notes,
                f"{int(no_period.sum())} treated rows in periods {shown} were dropped: every "
                "unit observed then is already treated, so the period effect cannot be "
                "estimated and their untreated outcomes cannot be imputed (BJS 2024, "
                "Proposition 5; a never-treated group would identify them).",
                SmallSampleWarning,
                depth=2,
            )
        if n_comp > 1:
            unit_comp = comp[map_u[np.where(keep, unit, 0)]]
            period_comp = comp[n_units0 + map_p[np.where(keep, period, 0)]]
            apart = keep & (unit_comp != period_comp)
            if apart.any():
                keep &= ~apart
                warn(
                    notes,
                    f"{int(apart.sum())} treated rows were dropped: the untreated rows split "
                    f"into {n_comp} groups of units and periods with no untreated row linking "
                    "them, and these rows' unit and period lie in different groups, so their "
                    f"untreated outcome cannot be imputed ({format_rows(index[apart])}).",
                    SmallSampleWarning,
                    depth=2,
                )
        if not keep.any():
            raise DesignError(
                "no treated row can be imputed: every treated row belongs to a unit without "
                "untreated rows or to a period in which every unit is already treated."
            )
        n_dropped = int((treated & ~keep).sum())

        # Clusters among the rows used, renumbered in sorted order of their labels.
        used = untreated | keep
        require_variation(prep.y[used], self.outcome, where="in the rows used")
        present = np.bincount(prep.cluster[used], minlength=prep.n_clusters) > 0
        renumber = np.cumsum(present) - 1
        cluster_full = np.where(used, renumber[prep.cluster], -1)
        n_clusters = int(present.sum())
        cluster_levels = _labels(data[cluster].to_numpy(), prep.cluster)[present]
        if n_clusters < 2:
            raise EstimationError(
                f"cluster-robust inference needs at least 2 clusters of {cluster!r}; the rows "
                f"used hold {n_clusters}."
            )
        w = np.ones(index.shape[0]) if prep.weights is None else prep.weights
        x = (
            np.column_stack([prep.covariates[c] for c in self.covariates])
            if self.covariates
            else np.zeros((index.shape[0], 0))
        )
        # Cohort x period cells of the auxiliary averages (cohorts found among units, not rows).
        cohorts, cohort_of_unit = np.unique(start, return_inverse=True)
        cell1 = _compress(cohort_of_unit[unit[keep]] * n_periods + period[keep])
        n_units_used = int(np.count_nonzero(np.bincount(unit[used], minlength=n_units)))
        roles = [
            f"covariate {c!r} is explained by the unit and period fixed effects among the "
            "untreated rows (for example it is constant within units) or by the other "
            "covariates; remove it"
            for c in self.covariates
        ]
        return _Design(
            index1=index[keep],
            y0=prep.y[untreated],
            y1=prep.y[keep],
            unit0=map_u[u0],
            period0=map_p[p0],
            unit1=map_u[unit[keep]],
            period1=map_p[period[keep]],
            unit_values1=unit_values[keep],
            t0=t[untreated],
            g0=g[untreated],
            t1=t[keep],
            g1=g[keep],
            event1=(t[keep] - g[keep]).astype(np.int64),
            w0=w[untreated],
            w1=w[keep],
            x0=x[untreated],
            x1=x[keep],
            cluster0=cluster_full[untreated],
            cluster1=cluster_full[keep],
            cluster_levels=cluster_levels,
            cell1=cell1,
            period_comp=comp[n_units0:],
            n_units0=n_units0,
            n_periods0=n_periods0,
            n_units=n_units_used,
            n_clusters=n_clusters,
            n_dropped=n_dropped,
            roles=roles,
            notes=notes,
            units_nested=_nested(u0, cluster_full[untreated]),
        )

    # ------------------------------------------------------------------ Test 1
    def _pretrend(self, d: _Design) -> ImputationPretrend:
        """BJS Test 1: lead indicators added to the step-1 model on untreated rows only."""
        k = self.pretrend_leads
        lead_of = d.g0 - self.anticipation - d.t0  # periods before (effective) treatment
        ever = d.g0 != 0
        leads = np.column_stack([(ever & (lead_of == j)).astype(float) for j in range(1, k + 1)])
        n_lead = leads.sum(axis=0).astype(int)
        if (n_lead == 0).any():
            empty = [j + 1 for j in np.flatnonzero(n_lead == 0)]
            raise DesignError(
                f"pretrend_leads={k}, but no untreated row lies {empty} period(s) before its "
                f"unit's first treated period{' (minus anticipation)' if self.anticipation else ''}"
                f"; lower pretrend_leads to at most {min(empty) - 1}."
            )
        roles = d.roles + [
            f"lead {j} (the indicator of {j} period(s) before treatment) is explained by the "
            "fixed effects, the covariates and the other leads: with as many leads as "
            "pre-periods the leads add up to the unit effects of treated units. Lower "
            "pretrend_leads."
            for j in range(1, k + 1)
        ]
        x = np.column_stack([d.x0, leads])
        model = _Projection(
            d.unit0, d.period0, d.w0, x, d.n_units0, d.n_periods0, d.period_comp, roles
        )
        coef = model.coefficients(d.y0)
        residual = d.y0 - coef.fitted
        scores = model.cluster_scores(residual, d.cluster0, d.n_clusters)
        bread = model.inverse()
        cov = bread @ (scores.T @ scores) @ bread
        n = d.y0.shape[0]
        n_clusters = int(np.count_nonzero(np.bincount(d.cluster0, minlength=d.n_clusters)))
        # K: constant, free period effects, covariates and leads; unit effects only if not
        # nested in clusters (the DiD / fixest convention).
        n_params = 1 + model.n_free + x.shape[1]
        if not d.units_nested:
            n_params += d.n_units0 - 1
        if n - n_params <= 0 or n_clusters < 2:
            raise EstimationError(
                f"the pre-trend regression has {n} untreated rows, {n_params} parameters and "
                f"{n_clusters} clusters: too few to test {k} leads."
            )
        factor = n_clusters / (n_clusters - 1) * (n - 1) / (n - n_params)
        lead_idx = np.arange(model.n_free + d.x0.shape[1], model.n_free + x.shape[1])
        beta = coef.gamma[d.x0.shape[1] :]
        v = cov[np.ix_(lead_idx, lead_idx)] * factor
        statistic, q, p = wald_f(beta, v, n_clusters - 1)
        table = pd.DataFrame(
            {
                "lead": np.arange(1, k + 1),
                "event_time": -np.arange(1, k + 1) - self.anticipation,
                "estimate": beta,
                "std_error": np.sqrt(np.diag(v)),
                "n_obs": n_lead,
            }
        )
        return ImputationPretrend(
            statistic=statistic,
            df=q,
            df_denom=n_clusters - 1,
            p_value=p,
            leads=table,
            method=(
                "BJS Test 1: leads added to the untreated-only model; cluster-robust CR1 "
                f"(factor {factor:.6f}), F({q}, {n_clusters - 1})"
            ),
        )

    # ------------------------------------------------------------------ placebo event study
    def _placebo(self, data: pd.DataFrame, last: int) -> tuple[ImputationPlacebo | None, str]:
        """The symmetric event study of :func:`~cpdimpact.did.honest.sensitivity` (see the
        class Notes), or ``None`` and the reason it could not be formed."""
        k, a = self.pretrend_leads, self.anticipation
        if k < 2:
            return None, (
                f"it needs pretrend_leads >= 2 (got {k}): the placebo event study estimates "
                "pretrend_leads pre-periods, one of which is the reference period"
            )
        shifted = replace(self, anticipation=a + k, horizons=None, pretrend_leads=0)
        reference = -a - 1
        try:
            with warnings.catch_warnings():
                # the main fit has already warned about the data; the placebo fit's own
                # warnings (rows it cannot impute) are kept in its notes instead
                warnings.simplefilter("ignore", CpdImpactWarning)
                d = shifted._design(data)
                model = _Projection(
                    d.unit0, d.period0, d.w0, d.x0, d.n_units0, d.n_periods0, d.period_comp, d.roles
                )
        except CpdImpactError as exc:
            return None, f"the placebo fit (treatment moved {k} periods earlier) failed: {exc}"
        notes = list(d.notes)
        coef = model.coefficients(d.y0)
        tau = d.y1 - (coef.alpha[d.unit1] + coef.lam[d.period1] + d.x1 @ coef.gamma)
        horizons = np.arange(-a - k, max(last, reference + 1) + 1)
        present = np.isin(horizons, d.event1)
        if not present[horizons <= reference].all():
            missing = horizons[(horizons <= reference) & ~present].tolist()
            return None, (
                f"no treated row at pre-period event time(s) {missing} could be imputed in the "
                f"placebo fit (treatment moved {k} periods earlier); lower pretrend_leads"
            )
        if not present.all():
            stop = int(np.argmin(present))
            notes.append(
                f"the placebo event study stops at event time {int(horizons[stop - 1])}: no "
                f"treated row at event time {int(horizons[stop])} could be imputed in it"
            )
            horizons = horizons[:stop]
        if horizons[-1] <= reference:
            return None, "no post-period event time could be imputed in the placebo fit"
        residual0 = d.y0 - coef.fitted
        estimates, psis, counts = _averages(
            d, model, residual0, tau, [d.event1 == h for h in horizons]
        )
        raw, psi = np.asarray(estimates), np.column_stack(psis)
        ref = int(np.flatnonzero(horizons == reference)[0])
        keep = horizons != reference
        times = horizons[keep].astype(int)
        beta = raw[keep] - raw[ref]
        psi = psi[:, keep] - psi[:, [ref]]  # the influence of a difference of linear estimators
        index = pd.Index(times, name="event_time")
        cov = pd.DataFrame(psi.T @ psi, index=index, columns=index)
        table = pd.DataFrame(
            {
                "estimate": beta,
                "std_error": np.sqrt(np.diag(cov.to_numpy())),
                "imputed": raw[keep],
                "n_obs": np.asarray(counts)[keep],
            },
            index=index,
        )
        influence = pd.DataFrame(psi, columns=index)
        influence.index = pd.Index(d.cluster_levels, name=self.cluster or self.unit)
        return (
            ImputationPlacebo(
                estimates=table,
                cov=cov,
                influence=influence,
                reference=reference,
                reference_estimate=float(raw[ref]),
                leads=k,
                n_dropped=d.n_dropped,
                notes=tuple(notes),
            ),
            "",
        )


# ====================================================================== internals
@dataclass(frozen=True, eq=False)
class _Design:
    """Validated arrays: untreated rows (suffix 0) and imputable treated rows (suffix 1)."""

    index1: pd.Index
    y0: np.ndarray
    y1: np.ndarray
    unit0: np.ndarray  # unit index among units with untreated rows
    period0: np.ndarray  # period index among periods with untreated rows
    unit1: np.ndarray
    period1: np.ndarray
    unit_values1: np.ndarray  # the unit column of the treated rows
    t0: np.ndarray
    g0: np.ndarray
    t1: np.ndarray
    g1: np.ndarray
    event1: np.ndarray
    w0: np.ndarray
    w1: np.ndarray
    x0: np.ndarray
    x1: np.ndarray
    cluster0: np.ndarray
    cluster1: np.ndarray
    cluster_levels: np.ndarray
    cell1: np.ndarray  # cohort x period cell of each treated row
    n_units0: int
    n_periods0: int
    n_units: int
    n_clusters: int
    n_dropped: int
    roles: list[str]
    notes: list[str]
    period_comp: np.ndarray  # connected component of each period with untreated rows
    units_nested: bool


def _first_values(values: np.ndarray, codes: np.ndarray, wanted: np.ndarray, limit: int = 5) -> str:
    """The column values of the first ``limit`` of the ``wanted`` codes, for messages."""
    labels = _labels(values, codes)
    shown = ", ".join(format_value(labels[c]) for c in wanted[:limit])
    return shown + (f" and {wanted.size - limit} more" if wanted.size > limit else "")


def _nested(unit: np.ndarray, cluster: np.ndarray) -> bool:
    """True if every unit lies in exactly one cluster."""
    one = np.empty(int(unit.max()) + 1, dtype=cluster.dtype)
    one[unit] = cluster
    return bool((one[unit] == cluster).all())


def _labels(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The value of ``values`` at the first row of each code 0..max(codes)."""
    first = np.empty(int(codes.max()) + 1, dtype=np.intp)
    first[codes[::-1]] = np.arange(codes.shape[0] - 1, -1, -1)
    return values[first]


def _compress(codes: np.ndarray) -> np.ndarray:
    """Renumber non-negative integer codes 0..k-1 in increasing order (no sort of the rows)."""
    present = np.bincount(codes) > 0
    return (np.cumsum(present) - 1)[codes]


def _components(unit, period, n_units, n_periods) -> tuple[int, np.ndarray]:
    """Connected components of the bipartite graph of units and periods linked by rows.

    Returns the number of components and the label of each node, units first then periods.
    """
    link = sparse.csr_matrix(
        (np.ones(unit.shape[0]), (unit, n_units + period)), shape=(n_units + n_periods,) * 2
    )
    return csgraph.connected_components(link, directed=False)


class _Coefficients(NamedTuple):
    alpha: np.ndarray  # one per unit with untreated rows
    lam: np.ndarray  # one per period with untreated rows (0 at each component's reference)
    gamma: np.ndarray
    fitted: np.ndarray  # on the untreated rows


class _Projection:
    r"""Weighted least squares of untreated rows on unit and period effects and regressors.

    The unit effects are eliminated exactly by the within-unit transformation; the period
    dummies (less one reference period per connected component of units and periods) and the
    regressors enter the Schur complement :math:`S = \tilde M'W\tilde M`, a small dense matrix
    built from per-cell sums. Any right-hand side :math:`A_1'w` of the imputation weights is
    solved through the same factorisation in time linear in the rows.
    """

    def __init__(self, unit, period, w, x, n_units, n_periods, period_comp, roles):
        self.unit, self.period, self.w, self.x = unit, period, w, x
        self.n_units, self.n_periods = n_units, n_periods
        self.wu = np.bincount(unit, weights=w, minlength=n_units)
        cell = sparse.csr_matrix((w, (unit, period)), shape=(n_units, n_periods))
        cell.sum_duplicates()
        self.share = sparse.diags(1.0 / self.wu) @ cell  # row u: period shares of unit u
        # One reference period (the first) per component of the untreated unit-period graph.
        _, first = np.unique(period_comp, return_index=True)
        reference = np.zeros(n_periods, dtype=bool)
        reference[first] = True
        self.free = np.flatnonzero(~reference)
        self.n_free = self.free.size
        self.xbar = _sums(unit, w[:, None] * x, n_units) / self.wu[:, None]
        self.xt = x - self.xbar[unit]
        wp = np.bincount(period, weights=w, minlength=n_periods)
        spp = np.diag(wp) - (cell.T @ self.share).toarray()
        spx = _sums(period, w[:, None] * self.xt, n_periods)
        sxx = (self.xt * w[:, None]).T @ self.xt
        f = self.free
        self.s = np.block([[spp[np.ix_(f, f)], spx[f]], [spx[f].T, sxx]])
        self._check_regressors(roles)
        self.factor = linalg.cho_factor(self.s) if self.s.size else None

    def _check_regressors(self, roles) -> None:
        """Raise if a regressor is explained by the fixed effects and the earlier regressors.

        Each regressor's residual after the unit and period effects is formed row by row (the
        within-unit deviation less its fitted period part), then an unpivoted QR of the weighted
        residuals gives in ``|R_jj|`` the norm left after the earlier regressors too; comparing
        it with the column's own weighted, centred norm flags exact collinearity at any scale
        (as :func:`cpdimpact.did._twfe._check_identified`), unlike the normal equations.
        """
        k = self.x.shape[1]
        if k == 0:
            return
        f = self.free
        spp = self.s[: self.n_free, : self.n_free]
        rhs = self.s[: self.n_free, self.n_free :]  # period sums of the within deviations
        lam = np.zeros((self.n_periods, k))
        if self.n_free:
            lam[f] = linalg.solve(spp, rhs, assume_a="pos")
        residual = self.xt - (lam[self.period] - (self.share @ lam)[self.unit])
        root = np.sqrt(self.w)[:, None]
        r_diag = np.abs(np.diag(np.linalg.qr(root * residual, mode="r")))
        for j in range(k):
            column = self.x[:, j]
            centred = column - (self.w @ column) / self.w.sum()
            scale = np.sqrt(self.w @ centred**2)
            if not r_diag[j] > _COLLINEAR_TOL * scale:
                raise EstimationError(roles[j])

    def _solve(self, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = linalg.cho_solve(self.factor, rhs) if self.factor is not None else rhs
        z_p = np.zeros(self.n_periods)
        z_p[self.free] = z[: self.n_free]
        return z_p, z[self.n_free :]

    def coefficients(self, y: np.ndarray) -> _Coefficients:
        w, unit, period = self.w, self.unit, self.period
        ybar = np.bincount(unit, weights=w * y, minlength=self.n_units) / self.wu
        yt = y - ybar[unit]
        rhs = np.concatenate(
            [
                np.bincount(period, weights=w * yt, minlength=self.n_periods)[self.free],
                self.xt.T @ (w * yt),
            ]
        )
        lam, gamma = self._solve(rhs)
        alpha = ybar - self.share @ lam - self.xbar @ gamma
        fitted = alpha[unit] + lam[period] + self.x @ gamma
        return _Coefficients(alpha, lam, gamma, fitted)

    def imputation_weights(self, unit1, period1, x1, v1) -> np.ndarray:
        r"""Weights :math:`v_{\Omega_0} = -W_0A_0(A_0'W_0A_0)^{-1}A_1'v_1` of the untreated rows."""
        r_u = np.bincount(unit1, weights=v1, minlength=self.n_units)
        r_p = np.bincount(period1, weights=v1, minlength=self.n_periods) - self.share.T @ r_u
        r_x = (x1 - self.xbar[unit1]).T @ v1
        z_p, z_x = self._solve(np.concatenate([r_p[self.free], r_x]))
        zbar = self.share @ z_p
        a0z = (r_u / self.wu - zbar)[self.unit] + z_p[self.period] + self.xt @ z_x
        return -self.w * a0z

    def inverse(self) -> np.ndarray:
        return linalg.cho_solve(self.factor, np.eye(self.s.shape[0]))

    def cluster_scores(self, residual, cluster, n_clusters) -> np.ndarray:
        r"""Per-cluster sums of :math:`\omega e \tilde m` for the free periods and regressors,
        :math:`\tilde m` the within-unit-demeaned regressors (exact when units cross clusters)."""
        we = self.w * residual
        raw = sparse.csr_matrix(
            (we, (cluster, self.period)), shape=(n_clusters, self.n_periods)
        ).toarray()
        by_unit = sparse.csr_matrix((we, (cluster, self.unit)), shape=(n_clusters, self.n_units))
        periods = raw - (by_unit @ self.share).toarray()
        regressors = _sums(cluster, we[:, None] * self.xt, n_clusters)
        return np.column_stack([periods[:, self.free], regressors])


def _averages(d: _Design, model: _Projection, residual0, tau, masks) -> tuple[list, list, list]:
    """Estimate, per-cluster influence (BJS Theorem 3) and row count of the weighted average
    of the imputed effects over each mask of treated rows (NaN where a mask is empty)."""
    aux = _Auxiliary(d.cluster1, d.cell1, d.n_clusters)
    estimates, psis, counts = [], [], []
    for mask in masks:
        n = int(mask.sum())
        counts.append(n)
        if n == 0:
            estimates.append(np.nan)
            psis.append(np.full(d.n_clusters, np.nan))
            continue
        v1 = np.where(mask, d.w1, 0.0)
        v1 /= v1.sum()
        estimates.append(float(v1 @ tau))
        v0 = model.imputation_weights(d.unit1, d.period1, d.x1, v1)
        psi = np.bincount(d.cluster0, weights=v0 * residual0, minlength=d.n_clusters)
        psi += aux.cluster_sums(v1, tau)
        psis.append(psi)
    return estimates, psis, counts


def _sums(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Column sums of ``values`` (rows x k) within ``codes``: an n x k array (k may be 0)."""
    out = np.zeros((n, values.shape[1]))
    for j in range(values.shape[1]):
        out[:, j] = np.bincount(codes, weights=values[:, j], minlength=n)
    return out


class _Auxiliary:
    """Auxiliary effect averages by cohort x period cell (BJS eq. 8), sums within clusters."""

    def __init__(self, cluster1, cell1, n_clusters):
        self.cluster1, self.n_clusters = cluster1, n_clusters
        self.n_cells = int(cell1.max()) + 1
        pair = cluster1.astype(np.int64) * self.n_cells + cell1
        if n_clusters * self.n_cells <= 50_000_000:
            present = np.flatnonzero(np.bincount(pair, minlength=n_clusters * self.n_cells))
            renumber = np.zeros(n_clusters * self.n_cells, dtype=np.intp)
            renumber[present] = np.arange(present.size)
            keys, self.pair = present, renumber[pair]
        else:
            keys, self.pair = np.unique(pair, return_inverse=True)
        self.pair_cell = keys % self.n_cells
        self.n_pairs = keys.size
        self.cell1 = cell1

    def cluster_sums(self, v1: np.ndarray, tau: np.ndarray) -> np.ndarray:
        a = np.bincount(self.pair, weights=v1, minlength=self.n_pairs)
        b = np.bincount(self.pair, weights=v1 * tau, minlength=self.n_pairs)
        num = np.bincount(self.pair_cell, weights=a * b, minlength=self.n_cells)
        den = np.bincount(self.pair_cell, weights=a * a, minlength=self.n_cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            tilde = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        residual = tau - tilde[self.cell1]
        return np.bincount(self.cluster1, weights=v1 * residual, minlength=self.n_clusters)


def _few_clusters(notes: list[str], d: _Design, cluster: str) -> None:
    """Warn when clusters are few overall or few hold treated rows (Conley & Taber 2011)."""
    if d.n_clusters < FEW_CLUSTERS:
        warn(
            notes,
            f"only {d.n_clusters} clusters of {cluster!r}: cluster-robust standard errors are "
            f"unreliable with fewer than about {FEW_CLUSTERS} clusters (Cameron, Gelbach & "
            "Miller 2008). Read intervals with caution.",
            FewClustersWarning,
            depth=2,
        )
    treated = int(np.count_nonzero(np.bincount(d.cluster1, minlength=d.n_clusters)))
    if treated < FEW_TREATED_CLUSTERS:
        warn(
            notes,
            f"only {treated} {'cluster' if treated == 1 else 'clusters'} of {cluster!r} "
            f"{'holds' if treated == 1 else 'hold'} treated rows: with so few treated "
            "clusters the variance of the effect is estimated from very little and intervals "
            "can be far too narrow (Conley & Taber 2011). Do not rely on them.",
            FewClustersWarning,
            depth=2,
        )


# ====================================================================== results
class ImputationPretrend(NamedTuple):
    """BJS Test 1: joint cluster-robust Wald test that the lead coefficients are zero.

    Attributes
    ----------
    statistic : float
        ``F = b' V^{-1} b / K`` with the CR1 covariance of the leads.
    df : int
        ``K``, the number of leads tested.
    df_denom : int
        ``G - 1``, clusters (of the untreated rows) minus one.
    p_value : float
        Upper tail of ``F(K, G - 1)``.
    leads : pandas.DataFrame
        ``lead, event_time, estimate, std_error, n_obs`` of each lead.
    method : str
        One line describing the test.
    """

    statistic: float
    df: int
    df_denom: int
    p_value: float
    leads: pd.DataFrame
    method: str

    def __str__(self) -> str:
        return (
            f"F({self.df}, {self.df_denom}) = {self.statistic:.3f}, p = {self.p_value:.4f} "
            f"[{self.method}]"
        )


class ImputationPlacebo(NamedTuple):
    r"""Placebo event study of an imputation fit, relative to one reference period.

    The input of :func:`~cpdimpact.did.honest.sensitivity` for an :class:`ImputationResult`:
    pre- and post-period estimates built the same way and relative to the same period, with
    their joint covariance. See the Notes of :class:`ImputationDiD` for the construction.

    Attributes
    ----------
    estimates : pandas.DataFrame
        Indexed by ``event_time`` (the reference omitted): ``estimate`` (the placebo-fit
        imputation estimate at that event time less the one at the reference), ``std_error``,
        ``imputed`` (the placebo-fit imputation estimate itself) and ``n_obs`` (treated rows
        averaged).
    cov : pandas.DataFrame
        Joint covariance of ``estimate``, event time by event time: the cross-product of
        ``influence``.
    influence : pandas.DataFrame
        Per-cluster influence of each estimate (BJS Theorem 3 sums of the placebo fit, the
        reference's subtracted), one column per event time.
    reference : int
        The omitted event time, :math:`-\delta - 1` (the period before the anticipation-shifted
        start).
    reference_estimate : float
        The placebo-fit imputation estimate at the reference (subtracted from every estimate).
    leads : int
        :math:`K`, the number of pre-periods moved into the placebo's treated rows
        (``pretrend_leads``); the pre-period estimates are event times
        :math:`-\delta-K, \dots, -\delta-2`.
    n_dropped : int
        Rows the placebo fit could not impute (units with no row before the shifted start).
    notes : tuple of str
        What the placebo fit dropped or truncated.
    """

    estimates: pd.DataFrame
    cov: pd.DataFrame
    influence: pd.DataFrame
    reference: int
    reference_estimate: float
    leads: int
    n_dropped: int
    notes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, eq=False)
class ImputationResult(EventStudyEstimates):
    """Result of :class:`ImputationDiD`.

    Attributes
    ----------
    estimate, std_error : float
        Overall ATT (average effect over every imputed treated row, or weighted by ``weights``)
        and its conservative cluster-robust standard error.
    event_study : pandas.DataFrame
        ``event_time, estimate, std_error, ci_lower, ci_upper, n_obs`` per horizon.
    treatment_effects : pandas.DataFrame
        One row per imputed treated row (indexed as the input): ``unit, time, first_treated,
        event_time, y0_hat, tau, weight`` (``weight`` is the row's weight in the overall ATT).
    influence : pandas.DataFrame
        Per-cluster sums :math:`\\sum_{it\\in c} v_{it}\\tilde\\varepsilon_{it}`, one column
        per term of :meth:`to_frame`; :meth:`vcov` is ``influence.T @ influence``.
    pretrend : ImputationPretrend or None
        BJS Test 1 when ``pretrend_leads > 0``.
    n_obs, n_treated_obs, n_untreated_obs : int
        Rows used: untreated rows (step 1) plus imputed treated rows.
    n_units, n_clusters : int
        Units and clusters among the rows used.
    n_dropped : int
        Treated rows that could not be imputed (see ``notes``).
    notes : tuple of str
        Warnings raised during the fit, repeated for the report.
    placebo : ImputationPlacebo or None
        The placebo event study relative to event time :math:`-\\delta-1` that
        :func:`~cpdimpact.did.honest.sensitivity` uses (``pretrend_leads >= 2``; see the Notes
        of :class:`ImputationDiD`); ``None`` otherwise, with the reason in ``placebo_note``.
    placebo_note : str
        Why ``placebo`` is ``None`` (empty when it is not).
    """

    spec: ImputationDiD
    estimate: float
    std_error: float
    event_study: pd.DataFrame
    treatment_effects: pd.DataFrame
    influence: pd.DataFrame
    pretrend: ImputationPretrend | None
    n_obs: int
    n_treated_obs: int
    n_untreated_obs: int
    n_units: int
    n_clusters: int
    n_dropped: int
    notes: tuple[str, ...] = ()
    placebo: ImputationPlacebo | None = None
    placebo_note: str = ""

    @property
    def df(self) -> float:
        """Normal reference distribution (``inf``), as in BJS and the peer implementations."""
        return float("inf")

    @property
    def alpha(self) -> float:
        return self.spec.alpha

    @property
    def outcome(self) -> str:
        return self.spec.outcome

    @property
    def weights(self) -> str | None:
        return self.spec.weights

    @property
    def cluster(self) -> str:
        """Column the standard errors are clustered by."""
        return self.spec.cluster or self.spec.unit

    @property
    def cov_type(self) -> str:
        return COV_TYPE

    @property
    def inference(self) -> str:
        """How the standard errors were computed: estimator, clusters, reference distribution."""
        return (
            f"{COV_TYPE}; clustered by {self.cluster} ({self.n_clusters} clusters); normal "
            "reference distribution"
        )

    def vcov(self) -> pd.DataFrame:
        """Conservative covariance of the overall ATT and the horizons (terms of to_frame)."""
        psi = self.influence.to_numpy()
        cov = psi.T @ psi
        terms = list(self.influence.columns)
        return pd.DataFrame(cov, index=terms, columns=terms)

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """``ATT`` then ``event_time=e`` for each horizon (normal intervals)."""
        terms = list(self.influence.columns)
        estimates = pd.Series([self.estimate, *self.event_study["estimate"]], index=terms)
        std_errors = pd.Series([self.std_error, *self.event_study["std_error"]], index=terms)
        return tidy_frame(estimates, std_errors, df=None, alpha=alpha)

    def _title(self) -> str:
        return "Imputation DiD (Borusyak, Jaravel & Spiess 2024)"

    def _facts(self) -> tuple[tuple[str, str], ...]:
        facts = [
            ("Outcome", self.spec.outcome),
            ("Overall ATT", f"{self.estimate:.4f} (SE {self.std_error:.4f})"),
            (
                "Rows used",
                f"{self.n_obs:,} ({self.n_untreated_obs:,} untreated, {self.n_treated_obs:,} "
                "treated imputed)",
            ),
            ("Treated rows dropped", f"{self.n_dropped:,}"),
            ("Units", f"{self.n_units:,}"),
            ("Weights", self.spec.weights or "none"),
            ("Anticipation", str(self.spec.anticipation)),
            ("Standard errors", COV_TYPE),
            ("Cluster variable", self.cluster),
            ("Clusters (G)", f"{self.n_clusters:,}"),
            ("Reference distribution", "normal"),
            ("Confidence level", f"{1 - self.spec.alpha:.0%}"),
        ]
        if self.pretrend is not None:
            facts.append(("Pre-trend test (BJS Test 1)", str(self.pretrend)))
        return tuple(facts)

    def event_time_frame(self, alpha: float | None = None) -> pd.DataFrame:
        """The effects by horizon (normal intervals at ``alpha``) and, after a pre-trend test,
        its lead coefficients flagged ``separate_test``: they come from a separate regression on
        untreated rows (BJS Test 1) and are not relative to a reference period (the sensitivity
        analysis reads :attr:`placebo` instead)."""
        alpha = self._level(alpha)
        parts = [self.event_study.assign(separate_test=False)]
        if self.pretrend is not None:
            parts.insert(0, self.pretrend.leads.assign(separate_test=True))
        frame = pd.concat(parts, ignore_index=True).sort_values("event_time")
        frame = frame.set_index("event_time")[["estimate", "std_error", "separate_test"]]
        frame["ci_lower"], frame["ci_upper"] = interval(
            frame["estimate"], frame["std_error"], alpha=alpha
        )
        frame["reference"] = False
        frame["binned"] = False
        return frame

    def event_time_cov(self) -> pd.DataFrame:
        """Covariance of the effects by horizon (from :meth:`vcov`; the Test 1 leads have no
        joint covariance with them)."""
        cov = self.vcov().iloc[1:, 1:]
        index = pd.Index(self.event_study["event_time"].to_numpy(dtype=int), name="event_time")
        return pd.DataFrame(cov.to_numpy(), index=index, columns=index)

    def _event_study_title(self) -> str:
        return "Imputation event study"
