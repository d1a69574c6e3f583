"""Sun & Abraham (2021) interaction-weighted (IW) event study for staggered adoption."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import linalg, sparse

from cpdimpact._guards import (
    require_residual_variation,
    require_variation,
)
from cpdimpact._results import EventStudyEstimates, interval, tidy_frame
from cpdimpact._validate import check_choice
from cpdimpact.did._common import (
    check_alpha,
    check_event_window,
    few_clusters,
    gap_references,
    normalise_covariates,
    outcome_scale,
    prepare_event_time,
    warn,
)
from cpdimpact.did._twfe import COV_TYPE, wald_f
from cpdimpact.did.results import PretrendTest, reference_years_fact, sample_facts
from cpdimpact.errors import (
    DesignError,
    EmptyComparisonGroupError,
    EstimationError,
    SmallSampleWarning,
)
from cpdimpact.estimator import ClusterRobust, adjustment_in_words, deprecated_options

__all__ = ["SunAbraham", "SunAbrahamResult"]

_CONTROLS = ("never_treated", "last_treated")

#: Name of the headline average in :attr:`SunAbrahamResult.averages`.
ATT = "ATT (post, treated-observation weights)"
#: Name of the equal-weight average over post-treatment event times.
POST_AVERAGE = "post average (equal weights over event times)"

# A regressor whose residual sum of squares, after the unit effects and the earlier columns, is
# below this fraction of its own centred sum of squares counts as collinear. The check works on
# the cross-product matrix, whose rounding error is about machine epsilon times the largest
# entries, so the threshold sits far above that and far below any real variation.
_COLLINEAR_TOL = 1e-9


@deprecated_options(control="control_group")
@dataclass(frozen=True, kw_only=True)
class SunAbraham:
    r"""Sun & Abraham (2021) interaction-weighted event study for staggered adoption.

    Parameters
    ----------
    outcome, unit, time, cluster, covariates, weights, alpha
        As in :class:`cpdimpact.did.EventStudy`: rows are unit-periods or pupils within units
        (a repeated cross-section; the unit fixed effects sit at the unit, e.g. the school).
        ``time`` must hold whole periods. With ``weights`` the regression is weighted and the
        cohort shares are shares of the weights.
    first_treated : str
        Period in which the unit was first treated; 0 or missing means never treated. It must be
        constant within a unit: treatment is absorbing (a unit that stops being treated is
        outside this design). Units starting after the last period count as never treated.
    control_group : {"never_treated", "last_treated"}
        The comparison cohort :math:`C`. ``"never_treated"`` (the default) compares with units
        never treated. ``"last_treated"`` compares with the cohort that starts last, drops every
        row from the period it starts in (no clean comparison is left after it), and drops any
        never-treated units: use it for roll-outs that reach everyone.
    reference : int
        Event time omitted for every cohort (default -1, the last period before treatment).
        A cohort whose year at this event time has no data (no KS2 tests in 2020 and 2021)
        omits its last observed year before it instead (see Notes).
    window : tuple of int (lo, hi) or None
        Bin event times beyond ``lo`` and ``hi`` into the end points, per cohort, as
        :class:`~cpdimpact.did.EventStudy` does. A binned end estimates the cohort's average
        effect over the binned event times (Sun & Abraham warn that binning pre-periods whose
        effects are not zero contaminates the other coefficients). ``None`` (the default)
        keeps every observed event time.

    Notes
    -----
    Write :math:`E_i` for unit i's first treated period, :math:`\ell = t - E_i` for event time
    and :math:`r` for ``reference``. The estimator has three steps (Sun & Abraham 2021,
    Section 4.1).

    1. A regression saturated in cohort :math:`\times` event time, on the treated cohorts and
       the comparison cohort :math:`C`,

       .. math::

           y_{kit} = \alpha_i + \lambda_t
                     + \sum_{e \notin C} \sum_{\ell \ne r} \delta_{e\ell}\,
                       \mathbf 1[E_i = e]\,\mathbf 1[t - E_i = \ell]
                     + \gamma' X_{kit} + \varepsilon_{kit},

       whose :math:`\hat\delta_{e\ell}` estimate the cohort-specific effects
       :math:`CATT_{e,\ell}` (relative to event time :math:`r`) under parallel trends and no
       anticipation. Unit effects are absorbed (a weighted within transformation from per-unit
       sums: no dummies, so millions of rows fit in seconds), period effects enter as
       dummies. The comparison cohort has no interactions.
    2. Cohort shares at each event time, :math:`\hat w_{e\ell} = n_{e\ell} / \sum_{e'} n_{e'\ell}`
       with :math:`n_{e\ell}` the treated observations (rows, or weights) of cohort e at event
       time :math:`\ell`.
    3. The IW estimate :math:`\hat\nu_\ell = \sum_e \hat w_{e\ell}\,\hat\delta_{e\ell}`.

    **Years with no data.** Event time is in years (:math:`\ell = t - E_i`) and the periods
    are the years observed, so event times in a gap have no cell. A cohort whose year
    :math:`E_i + r` has no data (a 2022 start with 2021 missing) omits its last observed year
    before it instead (2019, :math:`\ell = -3`): each cohort's interactions are then relative
    to its own last observed pre-year, as the base period of
    :class:`~cpdimpact.did.StaggeredDiD` is. ``reference_years`` and the summary name the year
    of every cohort. A cohort starting in a year with no data (2020, 2021) has its first cell
    at the first observed year after its start. The pre-trend test uses the observed pre-period
    estimates.

    Two post-treatment averages are reported. The headline :attr:`SunAbrahamResult.estimate`
    is the ATT weighting every post-treatment cohort-event-time cell by its treated
    observations, :math:`\sum_{\ell \ge 0} \sum_e n_{e\ell}\hat\delta_{e\ell} /
    \sum_{\ell\ge 0}\sum_e n_{e\ell}` (fixest's ``summary(agg = "ATT")`` and diff-diff's
    ``overall_att``); the equal-weight mean of :math:`\hat\nu_\ell` over post-treatment event
    times is also given (a binned end counts as one event time).

    **Why.** A TWFE event study with one coefficient per event time estimates, under
    heterogeneous effects, a weighted sum of cohort effects at that event time *plus* effects
    from other event times, with weights that can be negative; pre-trend coefficients can then
    be non-zero with parallel trends holding (Sun & Abraham 2021, Section 3). The
    saturated regression removes the contamination and the shares restore a meaningful average.

    **Standard errors.** The interaction coefficients get the cluster-robust CR1 covariance of
    :class:`~cpdimpact.did.DiD` and :class:`~cpdimpact.did.EventStudy`:
    :math:`G/(G-1)\cdot(N-1)/(N-K)` with :math:`K` counting the constant, period dummies,
    interactions and covariates (unit effects nested in clusters are not counted, as Stata
    ``xtreg, fe`` and R ``fixest``), and t on :math:`G-1` degrees of freedom. The variance of an
    IW estimate (and of the averages) adds the estimation of the shares, by the delta method:

    .. math::

        \widehat{V}(\hat\nu) = \hat w' \widehat V_\delta \hat w
            + \hat\delta' \widehat V_w \hat\delta,

    the two-term form of Sun & Abraham (2021, Proposition 6), as in the authors' Stata command
    ``eventstudyinteract``; the cross term has expectation zero, because the shares depend on
    cohort membership alone and the regression scores have mean zero given it.
    :math:`\widehat V_w` comes from cluster sums of the shares' influence functions,
    :math:`\psi_c(\hat\nu) = \sum_{i \in c} m_i (\hat\delta_{k(i)} - \hat\nu) / D` summed over
    the cluster's treated observations :math:`i` (weight :math:`m_i`) in the aggregated cells
    (of total weight :math:`D`), scaled by :math:`G/(G-1)`. ``eventstudyinteract`` estimates the
    share covariance from observation-level (not clustered) scores; ``fixest`` (``sunab`` with
    ``aggregate``/``summary(agg=)``) and diff-diff treat the shares as fixed and report
    :math:`\hat w' \widehat V_\delta \hat w` alone, available here as
    ``std_error_fixed_shares``. With one treated cohort the two coincide.

    The pre-trend test is the Wald test that every pre-period IW estimate (event time below 0,
    reference excluded) is zero, :math:`F = \hat\nu' \widehat V^{-1} \hat\nu / q` on
    :math:`F(q, G-1)` with the full covariance above; ``NaN`` when :math:`q > G - 1`. As for
    any pre-test, passing it is weak evidence (Roth 2022).

    References
    ----------
    Sun, L. & Abraham, S. (2021). Estimating dynamic treatment effects in event studies with
    heterogeneous treatment effects. *Journal of Econometrics* 225(2), 175-199.
    Callaway, B. & Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time
    periods. *Journal of Econometrics* 225(2), 200-230.
    Bergé, L. (2018). Efficient estimation of maximum likelihood models with multiple
    fixed-effects: the R package FENmlm. *CREA Discussion Papers* 13 (``fixest::sunab``).
    Roth, J. (2022). Pretest with caution: event-study estimates after testing for parallel
    trends. *American Economic Review: Insights* 4(3), 305-322.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.did.sun_abraham import SunAbraham
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame([(s, y) for s in range(90) for y in range(2014, 2022)],
    ...                   columns=["school", "year"])
    >>> df["unit"] = df["school"]
    >>> df["first_treated"] = np.select([df["school"] < 30, df["school"] < 60], [2017, 2019], 0)
    >>> event = df["year"] - df["first_treated"]
    >>> slope = np.where(df["first_treated"] == 2017, 0.5, 1.0)   # effects differ by cohort
    >>> effect = np.where((df["first_treated"] > 0) & (event >= 0), slope * (event + 1), 0.0)
    >>> df["outcome"] = 100 + 0.05 * df["school"] + effect + rng.normal(0, 0.5, len(df))
    >>> res = SunAbraham().fit(df)
    >>> res.event_study["event_time"].tolist()
    [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4]
    >>> res.cohort_effects.groupby("cohort").size().to_dict()
    {2017: 7, 2019: 7}
    >>> bool(abs(res.event_study.set_index("event_time").loc[0, "estimate"] - 0.75) < 0.2)
    True
    """

    #: Rows it fits: pupil records or unit-year means alike.
    data_level: ClassVar[str] = "any"
    #: Its estimates are in the outcome's units, averaged over pupils (or pupil-weighted rows).
    effect_scale: ClassVar[str] = "outcome"

    outcome: str = "outcome"
    unit: str = "unit"
    time: str = "year"
    first_treated: str = "first_treated"
    control_group: str = "never_treated"
    reference: int = -1
    window: tuple[int, int] | None = None
    covariates: Sequence[str] = field(default=())
    weights: str | None = None
    cluster: str = "school"
    alpha: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", normalise_covariates(self.covariates))
        check_alpha(self.alpha)
        check_choice(self.control_group, "control_group", _CONTROLS)
        window = check_event_window(self.reference, self.window)
        object.__setattr__(self, "reference", int(self.reference))
        object.__setattr__(self, "window", window)

    def describe(self) -> str:
        """The estimator and its inference in plain words, for a report."""
        controls = {
            "never_treated": "never-treated units",
            "last_treated": "the cohort that starts last",
        }[self.control_group]
        return (
            "Interaction-weighted event study (Sun & Abraham 2021): effects of each start "
            f"cohort against {controls}{adjustment_in_words(self.covariates, self.weights)}, "
            "averaged with cohort-share "
            f"weights; {ClusterRobust('CR1').describe(self.cluster)}"
        )

    # ------------------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame) -> SunAbrahamResult:
        """Estimate the IW event study on ``data`` (pupil or unit-period rows), unmodified.

        Parameters
        ----------
        data : pandas.DataFrame
            One row per unit-period or per pupil-period with the named columns.

        Returns
        -------
        SunAbrahamResult

        Raises
        ------
        cpdimpact.errors.MissingColumnError
            A named column is absent.
        cpdimpact.errors.InvalidValueError
            Non-numeric or missing values; non-integer periods; ``first_treated`` varying
            within a unit (treatment switching off); weights <= 0.
        cpdimpact.errors.EmptyComparisonGroupError
            No never-treated unit with ``control_group="never_treated"``.
        cpdimpact.errors.DesignError
            No treated cohort, a cohort never observed at the reference event time, or no
            post-treatment row.
        cpdimpact.errors.EstimationError
            An interaction or covariate is collinear with the fixed effects; fewer than two
            clusters.
        """
        prep, period, first = prepare_event_time(data, self, "The Sun & Abraham design")

        notes: list[str] = []
        sample = self._sample(period, first, prep.unit, data.index, notes)
        keep, cohort, control_row = sample.keep, sample.cohort, sample.control_row
        treated_row = keep & ~control_row
        event = np.where(treated_row, period - cohort, 0.0)
        binned_lo = binned_hi = False
        if self.window is not None:
            lo, hi = self.window
            binned_lo = bool(np.any(event[treated_row] < lo))
            binned_hi = bool(np.any(event[treated_row] > hi))
            event = np.where(treated_row, np.clip(event, lo, hi), 0.0)
        refs = gap_references(
            period[keep], cohort[keep], treated_row[keep], self.reference, self.window
        )
        at_ref = refs.rows(cohort, event, treated_row)
        self._check_reference(cohort, at_ref, treated_row)
        if refs.note():
            notes.append(refs.note())
        cell_row = treated_row & ~at_ref
        if not np.any(cell_row & (event >= 0)):
            raise DesignError(
                "no treated row is at or after its start (event time >= 0) in the estimation "
                "sample: there is no post-treatment effect to estimate."
            )

        # Cells: cohort x event time, ordered by cohort then event time (integer keys, O(n)).
        starts = np.sort(pd.unique(cohort[cell_row]))
        e_min = int(event[cell_row].min())
        span = int(event[cell_row].max()) - e_min + 1
        rows = np.flatnonzero(cell_row)
        key = np.searchsorted(starts, cohort[rows]) * span + (event[rows] - e_min).astype(np.intp)
        present = np.flatnonzero(np.bincount(key, minlength=starts.size * span))
        code = np.full(starts.size * span, -1, dtype=np.intp)
        code[present] = np.arange(present.size)
        cell = np.full(first.shape[0], -1, dtype=np.intp)
        cell[rows] = code[key]
        cell_cohort = starts[present // span].astype(np.int64)
        cell_event = (present % span + e_min).astype(np.int64)
        ref_times = sorted(set(refs.event_times.values()) - set(cell_event.tolist()))
        lo_end = int(min(cell_event.min(), *ref_times))
        hi_end = int(max(cell_event.max(), *ref_times))
        event_label = {
            e: _event_term(e, lo_end, hi_end, binned_lo, binned_hi)
            for e in sorted({*cell_event.tolist(), *ref_times})
        }
        cell_names = [
            f"cohort={g}, {event_label[e]}" for g, e in zip(cell_cohort, cell_event, strict=True)
        ]

        # Restrict to the estimation sample and re-code the identifiers.
        idx = np.flatnonzero(keep)
        require_variation(prep.y[idx], self.outcome, where="in the rows of the estimation sample")
        unit = _recode(prep.unit[idx])
        time = _recode(prep.time[idx])
        cluster = _recode(prep.cluster[idx])
        w = None if prep.weights is None else prep.weights[idx]
        covs = {name: values[idx] for name, values in prep.covariates.items()}
        cell = cell[idx]
        # One entry per cluster (treated if any of its rows is): the same answer as passing
        # every row, without sorting millions of codes.
        n_clust = int(cluster.max()) + 1
        has_treated = np.bincount(cluster, weights=treated_row[idx], minlength=n_clust) > 0
        few_clusters(notes, np.arange(n_clust), has_treated, self.cluster)

        roles = {
            name: (
                f"the cohort x event-time dummy {name!r} is collinear with the unit and period "
                "fixed effects and the other dummies: no comparison rows (the comparison cohort "
                "or the cohort's own reference period) pin down the period effects it spans. "
                "Check that comparison units are observed in every period, or bin with window."
            )
            for name in cell_names
        }
        roles.update(
            {
                n: f"covariate {n!r} is explained by the unit and period fixed effects (for "
                "example it is constant within units) or by the other covariates; remove it"
                for n in covs
            }
        )
        fit = _fit_saturated(
            y=prep.y[idx],
            unit=unit,
            time=time,
            cell=cell,
            n_cells=len(cell_names),
            covariates=covs,
            weights=w,
            cluster=cluster,
            names=cell_names,
            roles=roles,
        )

        # Cohort shares and the aggregates.
        mass = np.ones(idx.shape[0]) if w is None else w
        in_cell = cell >= 0
        n_cell = np.bincount(cell[in_cell], weights=mass[in_cell], minlength=len(cell_names))
        rows_cell = np.bincount(cell[in_cell], minlength=len(cell_names))
        cluster_mass = sparse.csr_matrix(
            (mass[in_cell], (cluster[in_cell], cell[in_cell])),
            shape=(fit.n_clusters, len(cell_names)),
        )
        n_cells = len(cell_names)
        delta = fit.params[:n_cells]
        v_delta = fit.cov[:n_cells, :n_cells]
        agg = _aggregate(delta, v_delta, cell_event, n_cell, cluster_mass)

        params = pd.Series(fit.params, index=pd.Index(fit.names, name="term"))
        cov = pd.DataFrame(fit.cov, index=params.index, columns=params.index)
        se = np.sqrt(np.diag(fit.cov))
        exact = require_residual_variation(
            delta,
            se[:n_cells],
            prep.y[idx],
            self.outcome,
            explained_by="the unit and period fixed effects, the cohort x event-time terms "
            "and the covariates",
        )
        if exact:
            notes.append(exact)
        c_lo, c_hi = interval(delta, se[:n_cells], alpha=self.alpha, df=fit.df)
        share = agg.pi[np.searchsorted(agg.event_times, cell_event), np.arange(n_cells)]
        cohort_effects = pd.DataFrame(
            {
                "cohort": cell_cohort,
                "event_time": cell_event,
                "term": cell_names,
                "estimate": delta,
                "std_error": se[:n_cells],
                "ci_lower": c_lo,
                "ci_upper": c_hi,
                "n_obs": rows_cell,
                "weight": n_cell,
                "share": share,
            }
        )

        event_study = self._event_study(agg, event_label, fit.df, ref_times, binned_lo, binned_hi)
        event_cov = pd.DataFrame(
            agg.cov[: agg.n_event, : agg.n_event],
            index=pd.Index(agg.event_times, name="event_time"),
            columns=pd.Index(agg.event_times, name="event_time"),
        )
        a_est = agg.estimate[agg.n_event :]
        a_se = np.sqrt(np.diag(agg.cov)[agg.n_event :])
        a_fixed = np.sqrt(np.diag(agg.cov_fixed)[agg.n_event :])
        a_lo, a_hi = interval(a_est, a_se, alpha=self.alpha, df=fit.df)
        averages = pd.DataFrame(
            {
                "term": [ATT, POST_AVERAGE],
                "estimate": a_est,
                "std_error": a_se,
                "std_error_fixed_shares": a_fixed,
                "ci_lower": a_lo,
                "ci_upper": a_hi,
            }
        )

        pretrend = None
        pre = [k for k, e in enumerate(agg.event_times) if e < 0]
        if pre:
            stat, q, p = wald_f(agg.estimate[pre], agg.cov[np.ix_(pre, pre)], fit.df)
            method = (
                "cluster-robust Wald test of all pre-period IW estimates = 0 (cohort-share "
                "variance included), F(q, G-1)"
            )
            if q > fit.df:
                stat, p = float("nan"), float("nan")
                method += f"; not computed: q = {q} exceeds G - 1 = {fit.df}"
            terms = tuple(event_label[int(agg.event_times[k])] for k in pre)
            pretrend = PretrendTest(stat, q, fit.df, p, method, terms)

        scale = outcome_scale(
            prep.y,
            prep.weights,
            [(f"the {ATT}", treated_row & (period >= cohort), float(a_est[0]))],
            notes,
        )
        return SunAbrahamResult(
            event_study=event_study,
            cohort_effects=cohort_effects,
            averages=averages,
            event_study_cov=event_cov,
            params=params,
            cov=cov,
            pretrend=pretrend,
            cohorts=sample.cohorts,
            df=fit.df,
            n_obs=fit.n_obs,
            n_units=fit.n_units,
            n_periods=fit.n_periods,
            n_clusters=fit.n_clusters,
            n_params=fit.n_params,
            small_sample_factor=fit.factor,
            cov_type=COV_TYPE,
            cluster=self.cluster,
            outcome=self.outcome,
            weights=self.weights,
            control=self.control_group,
            reference=refs.reported,
            reference_years=refs.series(),
            window=self.window,
            n_always_treated_dropped=sample.n_always,
            alpha=self.alpha,
            notes=tuple(notes),
            **scale,
        )

    # ------------------------------------------------------------------------ helpers
    def _sample(self, period, first, unit, index, notes) -> _Sample:
        """Rows kept, cohort of each row, comparison rows; drops and notes as documented."""
        t_min, t_max = float(period.min()), float(period.max())
        cohort = first.copy()
        late = cohort > t_max
        if late.any():
            n_late = np.unique(unit[late]).size
            notes.append(
                f"{n_late} units first treated after the last period ({t_max:g}) are untreated "
                "in every observed period and serve as never treated"
            )
            cohort = np.where(late, 0.0, cohort)
        keep = np.ones(cohort.shape[0], dtype=bool)
        always = (cohort != 0) & (cohort <= t_min)
        n_always = 0
        if always.any():
            n_always = int(np.unique(unit[always]).size)
            warn(
                notes,
                f"{n_always} always-treated units (first treated in or before the first period, "
                f"{t_min:g}, so never observed untreated) were dropped with their "
                f"{int(always.sum())} rows: they identify no effect relative to a pre-period.",
                SmallSampleWarning,
                depth=2,
            )
            keep &= ~always
        treated = keep & (cohort != 0)
        if not treated.any():
            raise DesignError(
                f"column {self.first_treated!r} gives no unit first treated within the data's "
                "periods: there are no treated cohorts."
            )
        if self.control_group == "never_treated":
            if not np.any(keep & (cohort == 0)):
                raise EmptyComparisonGroupError(
                    f"control_group='never_treated' but no unit is never treated ({self.first_treated!r}"
                    " is 0 or missing for none of them). For a roll-out that reaches every unit "
                    "use control_group='last_treated': the cohort starting last serves as the "
                    "comparison and periods from its start are dropped."
                )
            control_row = keep & (cohort == 0)
            control_label = "never treated"
        else:
            starts = np.unique(cohort[treated])
            if starts.size < 2:
                raise DesignError(
                    f"control_group='last_treated' needs at least two start cohorts; the data have "
                    f"one ({starts[0]:g}). Add never-treated units and use "
                    "control_group='never_treated'."
                )
            last = float(starts[-1])
            never = keep & (cohort == 0)
            if never.any():
                notes.append(
                    f"control_group='last_treated': {np.unique(unit[never]).size} never-treated units "
                    "were dropped; the comparison is the last-treated cohort alone"
                )
                keep &= ~never
            late_rows = keep & (period >= last)
            notes.append(
                f"control_group='last_treated': cohort {last:g} is the comparison; {int(late_rows.sum()):,}"
                f" rows in periods {last:g} and later were dropped (no comparison is left there)"
            )
            keep &= ~late_rows
            control_row = keep & (cohort == last)
            control_label = "last treated"
        unit_cohort = np.zeros(int(unit.max()) + 1)
        seen = np.zeros(unit_cohort.shape[0], dtype=bool)
        unit_cohort[unit[keep]] = cohort[keep]
        seen[unit[keep]] = True
        sizes = pd.Series(unit_cohort[seen]).value_counts().sort_index()
        rows = pd.Series(cohort[keep]).value_counts()
        control_cohorts = set(np.unique(cohort[control_row]).tolist())
        cohorts = pd.DataFrame(
            {
                "cohort": sizes.index.astype(np.int64),
                "role": [
                    f"comparison ({control_label})" if g in control_cohorts else "treated"
                    for g in sizes.index
                ],
                "n_units": sizes.to_numpy(),
                "n_obs": rows.reindex(sizes.index).to_numpy(),
            }
        )
        single = cohorts.loc[(cohorts["n_units"] == 1) & (cohorts["cohort"] != 0), "cohort"]
        if len(single):
            warn(
                notes,
                f"cohorts {single.tolist()} hold a single unit: their cohort x event-time effects "
                "rest on one unit, and with unit clusters its variance is poorly estimated.",
                SmallSampleWarning,
                depth=2,
            )
        return _Sample(
            keep=keep, cohort=cohort, control_row=control_row, cohorts=cohorts, n_always=n_always
        )

    def _check_reference(self, cohort, at_ref_row, treated_row) -> None:
        starts = pd.unique(cohort[treated_row])
        at_ref = pd.unique(cohort[at_ref_row])
        missing = np.setdiff1d(starts, at_ref)
        if missing.size:
            shown = ", ".join(f"{g:g}" for g in missing[:8])
            raise DesignError(
                f"cohorts {shown} have no row at the reference event time {self.reference}: "
                "their interactions would be collinear with their unit effects. Choose a "
                "reference period every cohort is observed in, or drop those cohorts' units."
            )

    def _event_study(self, agg, event_label, df, ref_times, binned_lo, binned_hi) -> pd.DataFrame:
        times = sorted([*agg.event_times.tolist(), *ref_times])
        pos = {int(e): k for k, e in enumerate(agg.event_times)}
        est = np.array([agg.estimate[pos[e]] if e in pos else 0.0 for e in times])
        var = np.diag(agg.cov)
        var_fixed = np.diag(agg.cov_fixed)
        se = np.array([np.sqrt(var[pos[e]]) if e in pos else np.nan for e in times])
        se_fixed = np.array([np.sqrt(var_fixed[pos[e]]) if e in pos else np.nan for e in times])
        lower, upper = interval(est, se, alpha=self.alpha, df=df)
        is_ref = np.array([e not in pos for e in times])
        lo_end, hi_end = min(times), max(times)
        return pd.DataFrame(
            {
                "event_time": np.asarray(times, dtype=np.int64),
                "term": [event_label[e] for e in times],
                "estimate": est,
                "std_error": se,
                "std_error_fixed_shares": se_fixed,
                "ci_lower": np.where(is_ref, 0.0, lower),
                "ci_upper": np.where(is_ref, 0.0, upper),
                "n_cohorts": [agg.n_cohorts[pos[e]] if e in pos else 0 for e in times],
                "weight": [agg.total[pos[e]] if e in pos else np.nan for e in times],
                "reference": is_ref,
                "binned": [
                    (e == lo_end and binned_lo) or (e == hi_end and binned_hi) for e in times
                ],
            }
        )


# ---------------------------------------------------------------------------- sample
@dataclass(frozen=True)
class _Sample:
    keep: np.ndarray
    cohort: np.ndarray
    control_row: np.ndarray
    cohorts: pd.DataFrame
    n_always: int


def _event_term(e: int, lo: int, hi: int, binned_lo: bool, binned_hi: bool) -> str:
    if e == lo and binned_lo:
        return f"event_time<={e}"
    if e == hi and binned_hi:
        return f"event_time>={e}"
    return f"event_time={e}"


def _recode(codes: np.ndarray) -> np.ndarray:
    """Consecutive codes 0..k-1 for the levels present, in the original order (O(n))."""
    present = np.zeros(int(codes.max()) + 1, dtype=bool)
    present[codes] = True
    return (np.cumsum(present) - 1)[codes].astype(np.intp)


# ---------------------------------------------------------------------------- engine
@dataclass(frozen=True)
class _Saturated:
    """Interaction and covariate coefficients of the saturated regression, CR1 covariance."""

    params: np.ndarray
    cov: np.ndarray
    names: list[str]
    n_obs: int
    n_units: int
    n_periods: int
    n_clusters: int
    n_params: int
    factor: float

    @property
    def df(self) -> int:
        return self.n_clusters - 1


def _unit_means(values: np.ndarray, unit: np.ndarray, w: np.ndarray, wsum: np.ndarray):
    """Weighted unit means of each column of ``values`` (1-d or 2-d), one row per unit."""
    if values.ndim == 1:
        return np.bincount(unit, weights=w * values, minlength=wsum.shape[0]) / wsum
    out = np.empty((wsum.shape[0], values.shape[1]))
    for j in range(values.shape[1]):
        out[:, j] = np.bincount(unit, weights=w * values[:, j], minlength=wsum.shape[0]) / wsum
    return out


def _fit_saturated(
    *,
    y: np.ndarray,
    unit: np.ndarray,
    time: np.ndarray,
    cell: np.ndarray,
    n_cells: int,
    covariates: dict[str, np.ndarray],
    weights: np.ndarray | None,
    cluster: np.ndarray,
    names: list[str],
    roles: dict[str, str],
) -> _Saturated:
    """Weighted LS of y on unit FE (absorbed), period dummies, cell dummies and covariates.

    The same estimator and CR1 convention as :func:`cpdimpact.did._twfe.fit_twfe`, computed
    from sparse cross-products instead of a dense within-transformed design: every row holds at
    most one period and one cell indicator, so ``X'WX`` minus its unit-mean part
    (``Z' diag(1/W_u) Z`` with ``Z`` the per-unit weighted sums) is built from sparse products,
    and the cluster scores ``sum_{i in c} w_i e_i (x_i - xbar_u)`` likewise. Outcome and
    covariates are demeaned within units directly (dense, one column at a time) so that their
    cross-products keep full precision. Memory is O(N) plus O(units x columns) sparse.
    """
    n_obs = y.shape[0]
    n_units = int(unit.max()) + 1
    n_periods = int(time.max()) + 1
    n_clusters = int(cluster.max()) + 1
    if n_clusters < 2:
        raise EstimationError(
            "cluster-robust inference needs at least 2 clusters; the estimation sample has "
            f"{n_clusters}. Cluster at the level of assignment (e.g. school)."
        )
    if n_periods < 2:
        raise EstimationError(
            "the estimation sample covers a single period; an event study needs at least one "
            "period before and one after the start."
        )
    w = np.ones(n_obs) if weights is None else weights
    wsum = np.bincount(unit, weights=w, minlength=n_units)
    n_pd = n_periods - 1
    n_ind = n_pd + n_cells
    # Indicator design, never materialised: period dummies (every period but the first) in
    # columns 0..n_pd-1, cells after them; each row holds at most one of each.
    r_p = np.flatnonzero(time > 0)
    r_c = np.flatnonzero(cell >= 0)
    ind_rows = np.concatenate([r_p, r_c])
    ind_cols = np.concatenate([time[r_p] - 1, n_pd + cell[r_c]])
    w_ind = w[ind_rows]
    col_sum = np.bincount(ind_cols, weights=w_ind, minlength=n_ind)
    both = (time > 0) & (cell >= 0)
    cross = np.bincount(
        (time[both] - 1) * n_cells + cell[both], weights=w[both], minlength=n_pd * n_cells
    ).reshape(n_pd, n_cells)
    dwd = np.diag(col_sum)
    dwd[:n_pd, n_pd:] = cross
    dwd[n_pd:, :n_pd] = cross.T
    # Per-unit weighted sums (duplicates are summed) and means of the indicators.
    z = sparse.csr_matrix((w_ind, (unit[ind_rows], ind_cols)), shape=(n_units, n_ind))
    zbar = sparse.csr_matrix(z.multiply(1.0 / wsum[:, None]))
    h_dd = dwd - (z.T @ zbar).toarray()

    cov_names = list(covariates)
    q = len(cov_names)
    xc = np.column_stack([covariates[n] for n in cov_names]) if q else np.empty((n_obs, 0))
    xc_t = xc - _unit_means(xc, unit, w, wsum)[unit] if q else xc
    y_t = y - _unit_means(y, unit, w, wsum)[unit]
    h_dc = (
        np.column_stack(
            [np.bincount(ind_cols, weights=w_ind * c[ind_rows], minlength=n_ind) for c in xc_t.T]
        )
        if q
        else np.empty((n_ind, 0))
    )
    h_cc = xc_t.T @ (w[:, None] * xc_t)
    hessian = np.block([[h_dd, h_dc], [h_dc.T, h_cc]])
    rhs = np.concatenate(
        [np.bincount(ind_cols, weights=w_ind * y_t[ind_rows], minlength=n_ind), xc_t.T @ (w * y_t)]
    )

    # Identification, in the order periods, covariates, cells (so that the error names the
    # interaction or covariate, as fit_twfe does).
    wtot = w.sum()
    scale = np.concatenate(
        [
            col_sum - col_sum**2 / wtot,
            [np.sum(w * (c - np.average(c, weights=w)) ** 2) for c in xc.T],
        ]
    )
    order = [*range(n_pd), *range(n_ind, n_ind + q), *range(n_pd, n_ind)]
    labels = (
        ["__period"] * n_pd + list(names) + cov_names
    )  # position -> name (cells then covariates)
    period_role = (
        "the period fixed effects are not identified from the unit fixed effects: each unit "
        "must be observed in at least two periods"
    )
    _check_identified(hessian, scale, order, [roles.get(n, period_role) for n in labels])

    factor_chol = linalg.cho_factor(hessian, lower=True, check_finite=False)
    beta = linalg.cho_solve(factor_chol, rhs, check_finite=False)
    bread = linalg.cho_solve(factor_chol, np.eye(hessian.shape[0]), check_finite=False)

    period_effect = np.concatenate([[0.0], beta[:n_pd]])
    fitted = period_effect[time]
    fitted[r_c] += beta[n_pd + cell[r_c]]
    resid = y_t - (fitted - _unit_means(fitted, unit, w, wsum)[unit]) - xc_t @ beta[n_ind:]
    we = w * resid
    # Cluster scores sum_{i in c} w_i e_i (x_i - xbar_u): indicator part from cluster sums minus
    # cluster-by-unit sums times unit means (zero when units are nested in clusters).
    by_cluster = sparse.csr_matrix(
        (we[ind_rows], (cluster[ind_rows], ind_cols)), shape=(n_clusters, n_ind)
    )
    owner = np.empty(n_units, dtype=cluster.dtype)
    owner[unit] = cluster
    nested = bool(np.all(owner[unit] == cluster))  # every unit in exactly one cluster
    if nested:  # one (cluster, unit) pair per unit: sum by unit first
        pair = sparse.csr_matrix(
            (np.bincount(unit, weights=we, minlength=n_units), (owner, np.arange(n_units))),
            shape=(n_clusters, n_units),
        )
    else:
        pair = sparse.csr_matrix((we, (cluster, unit)), shape=(n_clusters, n_units))
    score_d = sparse.csr_matrix(by_cluster - pair @ zbar)
    score_c = (
        np.column_stack(
            [np.bincount(cluster, weights=we * c, minlength=n_clusters) for c in xc_t.T]
        )
        if q
        else np.empty((n_clusters, 0))
    )
    m_dd = (score_d.T @ score_d).toarray()
    m_dc = np.asarray(score_d.T @ score_c)
    meat = np.block([[m_dd, m_dc], [m_dc.T, score_c.T @ score_c]])

    n_params = 1 + n_pd + n_cells + q + (0 if nested else n_units - 1)
    if n_obs - n_params <= 0:
        raise EstimationError(
            f"{n_obs} rows cannot estimate {n_params} parameters; add rows or use fewer "
            "covariates or a window."
        )
    factor = n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - n_params)
    cov = factor * bread @ meat @ bread
    cov = (cov + cov.T) / 2
    keep = np.r_[n_pd : n_ind + q]
    return _Saturated(
        params=beta[keep],
        cov=cov[np.ix_(keep, keep)],
        names=list(names) + cov_names,
        n_obs=n_obs,
        n_units=n_units,
        n_periods=n_periods,
        n_clusters=n_clusters,
        n_params=n_params,
        factor=factor,
    )


def _check_identified(hessian, scale, order, roles) -> None:
    """Incremental Cholesky of the within cross-product matrix in ``order``.

    The squared pivot of column j is its residual sum of squares after the unit effects and
    every earlier column; a pivot below ``_COLLINEAR_TOL`` times the column's own centred sum
    of squares means the column is (numerically) explained by them.
    """
    p = hessian.shape[0]
    chol = np.zeros((p, p))
    done: list[int] = []
    for step, j in enumerate(order):
        h = hessian[np.ix_(done, [j])].ravel()
        if done:
            z = linalg.solve_triangular(chol[:step, :step], h, lower=True, check_finite=False)
        else:
            z = h
        pivot = hessian[j, j] - z @ z
        if not pivot > _COLLINEAR_TOL * scale[j]:
            raise EstimationError(roles[j])
        chol[step, :step] = z
        chol[step, step] = np.sqrt(pivot)
        done.append(j)


# ---------------------------------------------------------------------------- aggregation
@dataclass(frozen=True)
class _Aggregates:
    """IW event-study estimates and the two averages, with fixed-share and full covariances.

    Rows: one per event time (``event_times``), then the ATT, then the equal-weight average.
    """

    event_times: np.ndarray
    estimate: np.ndarray
    cov: np.ndarray
    cov_fixed: np.ndarray
    pi: np.ndarray
    n_cohorts: np.ndarray
    total: np.ndarray

    @property
    def n_event(self) -> int:
        return self.event_times.shape[0]


def _aggregate(delta, v_delta, cell_event, n_cell, cluster_mass) -> _Aggregates:
    """Ratio aggregates sum_k n_k delta_k / sum_k n_k over sets of cells, and their variance.

    A ratio aggregate ``a = sum_{k in A} n_k delta_k / D`` (``D = sum_{k in A} n_k``) has,
    holding delta fixed, the cluster influence function
    ``psi_c = sum_{k in A} n_{ck} (delta_k - a) / D`` (``n_{ck}`` the cluster's weight in cell
    k); the share part of the covariance is ``G/(G-1) psi' psi``.
    """
    event_times = np.unique(cell_event)
    post = event_times >= 0
    members = np.vstack([cell_event[None, :] == event_times[:, None], (cell_event >= 0)[None, :]])
    weight = members * n_cell[None, :]
    total = weight.sum(axis=1)
    pi = weight / total[:, None]
    est = pi @ delta
    q = (members * (delta[None, :] - est[:, None]) / total[:, None]).T  # cells x aggregates
    psi = np.asarray(cluster_mass @ q)
    n_clusters = psi.shape[0]
    cov_shares = n_clusters / (n_clusters - 1) * psi.T @ psi
    cov_fixed = pi @ v_delta @ pi.T
    # Final rows: event times, ATT, and the equal-weight mean of the post event times.
    n_event = event_times.shape[0]
    lin = np.zeros((n_event + 2, n_event + 1))
    lin[: n_event + 1, : n_event + 1] = np.eye(n_event + 1)
    lin[n_event + 1, :n_event] = post / post.sum()
    return _Aggregates(
        event_times=event_times,
        estimate=lin @ est,
        cov=lin @ (cov_fixed + cov_shares) @ lin.T,
        cov_fixed=lin @ cov_fixed @ lin.T,
        pi=pi[:n_event],
        n_cohorts=members[:n_event].sum(axis=1),
        total=total[:n_event],
    )


# ---------------------------------------------------------------------------- result
@dataclass(frozen=True, kw_only=True, eq=False)
class SunAbrahamResult(EventStudyEstimates):
    """Result of :class:`SunAbraham`: IW event study, cohort effects and averages.

    Attributes
    ----------
    event_study : pandas.DataFrame
        One row per event time: ``event_time, term, estimate, std_error,
        std_error_fixed_shares, ci_lower, ci_upper, n_cohorts, weight, reference, binned``.
        ``std_error`` includes the estimation of the cohort shares; ``std_error_fixed_shares``
        holds them fixed (what fixest and diff-diff report). ``weight`` is the treated
        observations (or weights) at that event time. The reference is a row of zeros.
    cohort_effects : pandas.DataFrame
        The interaction coefficients: ``cohort, event_time, term, estimate, std_error,
        ci_lower, ci_upper, n_obs, weight, share`` (``share`` is the cohort's weight in the IW
        estimate of its event time).
    averages : pandas.DataFrame
        The ATT (treated-observation weights over post cells; the headline) and the equal-weight
        mean over post event times, with both standard errors and intervals.
    event_study_cov : pandas.DataFrame
        Covariance of the event-study estimates (reference excluded), shares included.
    params, cov
        Interaction and covariate coefficients and their CR1 covariance.
    pretrend : PretrendTest or None
        Wald test that every pre-period IW estimate is zero.
    cohorts : pandas.DataFrame
        Units and rows of each cohort in the estimation sample (``cohort`` 0 is never treated)
        and its role (treated or comparison).
    df : int
        ``G - 1``, degrees of freedom of t and F.
    n_obs, n_units, n_periods, n_clusters, n_params : int
        Estimation sample sizes and ``K`` of the small-sample factor.
    small_sample_factor : float
        ``G/(G-1) * (N-1)/(N-K)``.
    cov_type, cluster, outcome, weights, control, reference, window, alpha
        How it was fitted.
    n_always_treated_dropped : int
        Always-treated units dropped before fitting.
    notes : tuple of str
        Warnings and sample decisions, repeated for the report.
    reference_years : pandas.Series or None
        Treated cohort -> the calendar year its effects are measured against: the year at event
        time ``reference``, or, when that year has no data (2020 and 2021), the last observed
        year before it. ``reference`` is the spec's unless every cohort moved.
    """

    event_study: pd.DataFrame
    cohort_effects: pd.DataFrame
    averages: pd.DataFrame
    event_study_cov: pd.DataFrame
    params: pd.Series
    cov: pd.DataFrame
    pretrend: PretrendTest | None
    cohorts: pd.DataFrame
    df: int
    n_obs: int
    n_units: int
    n_periods: int
    n_clusters: int
    n_params: int
    small_sample_factor: float
    cov_type: str
    cluster: str
    outcome: str
    weights: str | None
    control: str
    reference: int
    window: tuple[int, int] | None
    n_always_treated_dropped: int
    alpha: float
    notes: tuple[str, ...] = ()
    reference_years: pd.Series | None = None
    #: ``"pass_fail"`` when the outcome is 0/1: the estimates are differences in proportions
    #: (a linear probability model; x100 = percentage points).
    outcome_kind: str = "score"
    #: For a pass/fail outcome, the proportion passing among treated rows after their start.
    treated_proportion: float | None = None
    #: The value coding a pass (1.0 or 100.0); ``None`` for a continuous outcome.
    pass_value: float | None = None

    @property
    def inference(self) -> str:
        """One line: covariance, clusters, degrees of freedom and the share variance."""
        return (
            f"{self.cov_type}; {self.n_clusters} clusters of {self.cluster!r}; t and F with "
            f"G - 1 = {self.df} df; IW estimates and averages add the variance of the "
            "estimated cohort shares (delta method, Sun & Abraham 2021 Prop. 6)"
        )

    def _reported(self) -> tuple[pd.Series, pd.Series]:
        es = self.event_study.loc[~self.event_study["reference"]]
        terms = [*self.averages["term"], *es["term"]]
        est = pd.Series([*self.averages["estimate"], *es["estimate"]], index=terms)
        se = pd.Series([*self.averages["std_error"], *es["std_error"]], index=terms)
        return est, se

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """The two averages, then the IW estimate at each event time (no reference); intervals
        ``estimate -/+ t_{G-1} * std_error``."""
        est, se = self._reported()
        return tidy_frame(est, se, df=self.df, alpha=alpha)

    def _title(self) -> str:
        return "Interaction-weighted event study (Sun & Abraham 2021)"

    def _facts(self) -> tuple[tuple[str, str], ...]:
        window = "all event times" if self.window is None else f"binned to {self.window}"
        pre = "no pre-period estimates" if self.pretrend is None else str(self.pretrend)
        treated = self.cohorts.loc[self.cohorts["role"] == "treated"]
        comparison = self.cohorts.loc[self.cohorts["role"] != "treated"]
        cohorts_text = ", ".join(
            f"{g} ({n:,} units)" for g, n in zip(treated["cohort"], treated["n_units"], strict=True)
        )
        return (
            ("Comparison", f"{self.control} ({int(comparison['n_units'].sum()):,} units)"),
            ("Treated cohorts", cohorts_text),
            ("Reference event time", str(self.reference)),
            *reference_years_fact(self.reference_years),
            ("Window", window),
            ("Headline", f"{ATT}"),
            *sample_facts(self),
            ("Standard errors", self.inference),
            ("Small-sample factor", f"{self.small_sample_factor:.6f} (K = {self.n_params})"),
            ("Confidence level", f"{1 - self.alpha:.0%}"),
            ("Pre-trend test", pre),
        )

    def event_time_frame(self, alpha: float | None = None) -> pd.DataFrame:
        """:attr:`event_study` indexed by event time, intervals at ``alpha`` (t with G - 1 df)."""
        alpha = self._level(alpha)
        frame = self.event_study.set_index("event_time")
        estimated = ~frame["reference"].to_numpy(bool)
        lower, upper = interval(
            frame.loc[estimated, "estimate"],
            frame.loc[estimated, "std_error"],
            alpha=alpha,
            df=self.df,
        )
        frame.loc[estimated, "ci_lower"], frame.loc[estimated, "ci_upper"] = lower, upper
        return frame

    def event_time_cov(self) -> pd.DataFrame:
        """:attr:`event_study_cov`: the IW estimates' covariance, cohort shares estimated."""
        return self.event_study_cov

    def _event_study_title(self) -> str:
        return "Interaction-weighted event study"

    def __repr__(self) -> str:
        return (
            f"SunAbrahamResult(estimate={self.estimate:.4g}, std_error={self.std_error:.4g}, "
            f"event_times={self.event_study['event_time'].tolist()}, control={self.control!r}, "
            f"df={self.df}, n_clusters={self.n_clusters}, n_obs={self.n_obs})"
        )
