"""Static two-way fixed-effects difference-in-differences (the 2x2 DiD generalised)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from cpdimpact._guards import check_absorbing, require_residual_variation
from cpdimpact._validate import check_treatment_not_covariate
from cpdimpact.did._checks import FIRST_TREATED, key_column, numeric_column
from cpdimpact.did._common import (
    ClusterRobustOptions,
    choose_cov_type,
    few_clusters,
    outcome_scale,
    prepare_spec,
    warn,
)
from cpdimpact.did._twfe import Design, fit_facts, fit_twfe
from cpdimpact.did.results import DiDResult
from cpdimpact.did.wild import WildBootstrapResult, wild_cluster_bootstrap
from cpdimpact.errors import (
    DesignError,
    EmptyComparisonGroupError,
    StaggeredTimingWarning,
    format_value,
)
from cpdimpact.estimator import (
    ClusterRobust,
    WildBootstrap,
    adjustment_in_words,
    deprecated_options,
    from_cov_type,
)

__all__ = ["DiD"]


@deprecated_options(cov_type=("inference", from_cov_type))
@dataclass(frozen=True, kw_only=True)
class DiD(ClusterRobustOptions):
    r"""Two-way fixed-effects difference-in-differences with cluster-robust inference.

    Parameters
    ----------
    outcome : str
        Outcome column (e.g. a scaled score), in the units the estimate is reported in.
    unit : str
        Unit whose fixed effects are absorbed: the school for school-level exposure,
        ``"school/teacher"`` ids for teacher-level exposure.
    time : str
        Period column (e.g. ``year``); one fixed effect per distinct value.
    treatment : str
        ``D_it``: 1 (or True) in the rows of treated units from their first treated period on,
        0 otherwise. Must be numeric or boolean.
    cluster : str
        Cluster column for the standard errors: the level of assignment (school; area or hub
        for area roll-outs).
    covariates : sequence of str
        Numeric covariates ``X`` (e.g. prior attainment, FSM). Covariates constant within units
        are absorbed by the unit effects and rejected.
    weights : str or None
        Analytic weights, e.g. ``"n_pupils"`` when fitting school-year means.
    alpha : float
        ``1 - alpha`` is the level of the intervals in ``to_frame()`` and ``ci_lower/upper``.
    inference : ClusterRobust or WildBootstrap
        :class:`~cpdimpact.estimator.ClusterRobust` ``("CR1")`` (default): the sandwich with
        the small-sample factor below and t on :math:`G-1` degrees of freedom. ``("CR2")``:
        the bias-reduced linearisation (CR2) with Satterthwaite degrees of freedom per term,
        for few clusters (see Notes). ``("auto")`` (what
        :class:`~cpdimpact.pipeline.Evaluation` uses when it chooses the estimator): CR2 when
        fewer than 100 clusters hold treated rows, or fewer than 100 hold none, and units nest
        in clusters; CR1 otherwise. The number of *treated* clusters, not the total, decides:
        with a third of 160 schools treated CR1 intervals covered about 93%. The result's
        ``cov_type`` says which was used. :class:`~cpdimpact.estimator.WildBootstrap`: the
        wild cluster bootstrap-t for few clusters; ``fit`` then returns a
        :class:`~cpdimpact.did.WildBootstrapResult` (the CR1 estimate and standard error, the
        bootstrap's p-value and test-inverted interval; see ``docs/wild.md``). The old
        ``cov_type="CR2"`` still works for one release (deprecated).

    Notes
    -----
    The model, for pupil :math:`k` in unit :math:`i` and period :math:`t`, is

    .. math::

        y_{kit} = \alpha_i + \lambda_t + \beta D_{it} + \gamma' X_{kit} + \varepsilon_{kit},

    with unit effects :math:`\alpha_i` absorbed (a within-unit transformation) and period
    effects :math:`\lambda_t` as dummies. On pupil rows this is a repeated cross-section within
    units: different children each year, not a pupil panel. On one row per unit-year (e.g.
    school-year means with ``weights="n_pupils"``) it is the classic panel TWFE. With one start
    period and the same number of pupils in every unit-year, :math:`\hat\beta` equals the
    difference of four means
    :math:`(\bar y_{T,post} - \bar y_{T,pre}) - (\bar y_{C,post} - \bar y_{C,pre})`
    (Angrist & Pischke 2009, ch. 5).

    Inference is cluster-robust (Liang & Zeger 1986; Cameron & Miller 2015). The sandwich
    :math:`\hat V_0 = (\tilde X'W\tilde X)^{-1}\sum_g \tilde X_g'W_g\hat e_g\hat e_g'W_g
    \tilde X_g(\tilde X'W\tilde X)^{-1}` comes from ``linearmodels`` ``AbsorbingLS`` without
    adjustment and is multiplied here by

    .. math::

        c = \frac{G}{G-1}\,\frac{N-1}{N-K},

    where :math:`G` is the number of clusters, :math:`N` the number of rows and :math:`K` the
    constant, the :math:`T-1` period dummies, the treatment and the covariates. Unit effects
    nested within clusters are not counted in :math:`K` (they cost no cluster degrees of
    freedom); if units are not nested in clusters their :math:`U-1` effects are counted. This is
    the convention of Stata ``xtreg, fe vce(cluster)`` and of R ``fixest`` (default
    ``ssc(fixef.K = "nested")``). Intervals and p-values use Student's t with :math:`G-1`
    degrees of freedom (Cameron, Gelbach & Miller 2008; Cameron & Miller 2015, sec. VI), not
    the normal. With fewer than about 40 clusters a :class:`~cpdimpact.errors.FewClustersWarning`
    is emitted: the sandwich over-rejects there.

    With ``inference=ClusterRobust("CR2")`` the covariance is the bias-reduced linearisation of Bell &
    McCaffrey (2002) in the form of Pustejovsky & Tipton (2018), computed on the full design
    with the fixed effects, with no further factor: each cluster's residuals are multiplied by
    :math:`A_g = G_g^{+1/2}`, :math:`G_g = [(I-H)(I-H)']_{gg}` (:math:`= I - H_{gg}`
    without weights; the Moore-Penrose pseudo-inverse where singular). Each term's t test
    and interval use Satterthwaite degrees of freedom (``df_terms``; ``df`` is the
    treatment's), which can be far below :math:`G-1` when clusters differ in size or few are
    treated (Imbens & Kolesar 2016). With weights the adjustment follows ``clubSandwich``'s
    convention for weighted ``lm`` (working model of independent equal-variance rows). It
    reproduces ``clubSandwich`` ``vcovCR(type = "CR2")`` and ``coef_test(test =
    "Satterthwaite")`` and needs units nested in clusters; the algebra, in :math:`k \times k`
    matrices per cluster, is in :mod:`cpdimpact.did._cr2`.

    With staggered start periods and effects that vary over time or between cohorts,
    :math:`\hat\beta` is a weighted average of 2x2 comparisons, some using already-treated
    units as controls with possibly negative weights (Goodman-Bacon 2021; de Chaisemartin &
    D'Haultfoeuille 2020). The fit then warns :class:`~cpdimpact.errors.StaggeredTimingWarning`;
    :class:`~cpdimpact.did.StaggeredDiD` (group-time effects) is the estimator for such designs;
    TWFE is kept for comparison.

    On a 0/1 (pass/fail) outcome the model is a linear probability model and
    :math:`\hat\beta` a difference in proportions (x100 = percentage points), the default
    estimand for DiD on such outcomes; nothing changes in the fit. The result says so
    (``outcome_kind == "pass_fail"``, :attr:`~cpdimpact.did.results.TwfeFit.estimate_units`, a
    summary line) and keeps the proportion observed among the treated rows,
    ``treated_proportion`` (:math:`p_1`), so that
    :func:`cpdimpact.effects.difference_effect_size` can turn the estimate into an odds ratio
    and a Cox effect size through :math:`p_0 = p_1 - \hat\beta`. When :math:`p_0` falls
    outside [0, 1] the fit warns :class:`~cpdimpact.errors.ProbabilityBoundsWarning`: the
    linear model has extrapolated and no odds ratio exists.

    Rows are never dropped: missing values in any used column raise
    :class:`~cpdimpact.errors.InvalidValueError`.

    References
    ----------
    Angrist, J. D. & Pischke, J.-S. (2009). *Mostly Harmless Econometrics*. Princeton UP.
    Cameron, A. C., Gelbach, J. B. & Miller, D. L. (2008). Bootstrap-based improvements for
    inference with clustered errors. *Review of Economics and Statistics* 90(3), 414-427.
    Liang, K.-Y. & Zeger, S. L. (1986). Longitudinal data analysis using generalized linear
    models. *Biometrika* 73(1), 13-22.
    Cameron, A. C. & Miller, D. L. (2015). A practitioner's guide to cluster-robust inference.
    *Journal of Human Resources* 50(2), 317-372.
    de Chaisemartin, C. & D'Haultfoeuille, X. (2020). Two-way fixed effects estimators with
    heterogeneous treatment effects. *American Economic Review* 110(9), 2964-2996.
    Goodman-Bacon, A. (2021). Difference-in-differences with variation in treatment timing.
    *Journal of Econometrics* 225(2), 254-277.
    Bell, R. M. & McCaffrey, D. F. (2002). Bias reduction in standard errors for linear
    regression with multi-stage samples. *Survey Methodology* 28(2), 169-181.
    Imbens, G. W. & Kolesar, M. (2016). Robust standard errors in small samples: some practical
    advice. *Review of Economics and Statistics* 98(4), 701-712.
    Pustejovsky, J. E. & Tipton, E. (2018). Small-sample methods for cluster-robust variance
    estimation and hypothesis testing in fixed effects models. *Journal of Business &
    Economic Statistics* 36(4), 672-683.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.did import DiD
    >>> rng = np.random.default_rng(0)
    >>> rows = [(s, y) for s in range(50) for y in range(2016, 2022) for _ in range(10)]
    >>> df = pd.DataFrame(rows, columns=["school", "year"])
    >>> df["unit"] = df["school"]
    >>> df["exposed"] = (df["school"] < 25) & (df["year"] >= 2019)
    >>> df["outcome"] = (100 + 0.1 * df["school"] + 0.5 * (df["year"] - 2016)
    ...                  + 2.0 * df["exposed"] + rng.normal(0, 5, len(df)))
    >>> res = DiD().fit(df)
    >>> round(res.estimate, 1), res.n_clusters, res.df
    (1.9, 50, 49)
    >>> list(res.to_frame().columns)
    ['term', 'estimate', 'std_error', 'statistic', 'p_value', 'ci_lower', 'ci_upper']
    >>> from cpdimpact.estimator import ClusterRobust
    >>> cr2 = DiD(inference=ClusterRobust("CR2")).fit(df)
    >>> cr2.cov_type.startswith("cluster-robust CR2"), bool(cr2.df < 49)
    (True, True)
    """

    #: Rows it fits: pupil records or unit-year means alike.
    data_level: ClassVar[str] = "any"
    #: Its estimate is in the outcome's units, averaged over pupils (or pupil-weighted rows).
    effect_scale: ClassVar[str] = "outcome"

    outcome: str = "outcome"
    unit: str = "unit"
    time: str = "year"
    treatment: str = "exposed"
    cluster: str = "school"
    covariates: Sequence[str] = field(default=())
    weights: str | None = None
    alpha: float = 0.05
    inference: ClusterRobust | WildBootstrap = field(default=ClusterRobust())

    def __post_init__(self) -> None:
        self._check_options()
        check_treatment_not_covariate(self.treatment, self.covariates)

    def describe(self) -> str:
        """The estimator and its inference in plain words, for a report."""
        return (
            f"Difference-in-differences with {self.unit} and {self.time} fixed effects"
            f"{adjustment_in_words(self.covariates, self.weights)}; "
            + self.inference.describe(self.cluster)
        )

    def fit(self, data: pd.DataFrame) -> DiDResult | WildBootstrapResult:
        """Estimate the model on ``data`` (pupil rows or unit-year rows); ``data`` is not modified.

        Parameters
        ----------
        data : pandas.DataFrame
            One row per pupil-year or per unit-year with the named columns.

        Returns
        -------
        DiDResult or WildBootstrapResult
            A :class:`~cpdimpact.did.WildBootstrapResult` with ``inference=WildBootstrap()``.

        Raises
        ------
        cpdimpact.errors.MissingColumnError
            A named column is absent.
        cpdimpact.errors.InvalidValueError
            Non-numeric outcome, treatment, covariate or weights; missing or infinite values;
            weights <= 0; an outcome that does not vary
            (:class:`~cpdimpact.errors.ConstantOutcomeError`).
        cpdimpact.errors.NonAbsorbingTreatmentError
            The treatment switches off after switching on within a unit.
        cpdimpact.errors.InconsistentTreatmentError
            The treatment disagrees with a ``first_treated`` column of the same frame.
        cpdimpact.errors.DesignError
            No treated rows, or no comparison rows (:class:`EmptyComparisonGroupError`).
        cpdimpact.errors.EstimationError
            The treatment (or a covariate) has no variation left after absorbing the fixed
            effects, fewer than two clusters or periods.
        cpdimpact.errors.ConstantOutcomeError
            The outcome does not vary beyond the fixed effects (estimate and standard error
            would be rounding noise).

        Warns
        -----
        cpdimpact.errors.ExactFitWarning
            The model explains the outcome exactly: the standard error is rounding noise.
        cpdimpact.errors.ProbabilityBoundsWarning
            The outcome is 0/1 and the proportion the treated rows would have had without the
            programme (observed minus the estimate) lies outside [0, 1].
        """
        if isinstance(self.inference, WildBootstrap):
            return self._fit_wild(data)
        prep = prepare_spec(data, self, ((self.treatment, "treatment indicator", "treatment"),))
        d = numeric_column(data, self.treatment, "treatment indicator")
        treated = d != 0
        if not treated.any():
            raise DesignError(
                f"column {self.treatment!r} (the treatment) is 0 in every row: there are no "
                "treated rows to estimate an effect from."
            )
        if treated.all():
            raise EmptyComparisonGroupError(
                f"column {self.treatment!r} (the treatment) is non-zero in every row: there "
                "are no comparison rows (untreated units or pre-periods of treated units)."
            )
        check_absorbing(
            data,
            treatment=self.treatment,
            unit=self.unit,
            time=self.time,
            treated=treated,
            first_treated=FIRST_TREATED,
        )
        notes: list[str] = []
        self._check_timing(prep, treated, notes)
        self._check_pre_periods(prep, treated, data, notes)
        few_clusters(notes, prep.cluster, treated, self.cluster)
        cov_type = choose_cov_type(self.inference.kind, prep, treated)
        design = Design(
            data=prep,
            targets={self.treatment: d},
            target_roles={
                self.treatment: f"the treatment {self.treatment!r} has no variation left after "
                "absorbing the unit and period fixed effects (and covariates): for example "
                "every unit starts in the same period with no untreated comparison units, or "
                "treatment never changes within a unit. A DiD needs units that switch and "
                "units that do not (yet)."
            },
            cluster_levels=key_column(data, self.cluster, "cluster")[1]
            if cov_type == "CR2"
            else None,
        )
        fit = fit_twfe(design, cov_type, notes)
        exact = require_residual_variation(
            fit.params[self.treatment],
            fit.std_errors[self.treatment],
            prep.y,
            self.outcome,
            explained_by="the unit and period fixed effects, the treatment and the covariates",
        )
        if exact:
            notes.append(exact)
        scale = outcome_scale(
            prep.y, prep.weights, [("the estimate", treated, fit.params[self.treatment])], notes
        )
        facts = fit_facts(fit, self, fit.std_errors, notes, headline=(self.treatment,))
        return DiDResult(term=self.treatment, **facts, **scale)

    def _fit_wild(self, data: pd.DataFrame) -> WildBootstrapResult:
        """The CR1 coefficient tested with the wild cluster bootstrap (``inference``)."""
        boot = self.inference
        return wild_cluster_bootstrap(
            data,
            outcome=self.outcome,
            unit=self.unit,
            time=self.time,
            treatment=self.treatment,
            cluster=self.cluster,
            covariates=self.covariates,
            weights=self.weights,
            n_bootstrap=boot.n_bootstrap,
            weights_type=boot.weights,
            restricted=boot.restricted,
            alpha=self.alpha,
            seed=boot.seed,
        )

    def _check_pre_periods(self, prep, treated: np.ndarray, data, notes: list[str]) -> None:
        """Warn when treated units have no untreated period in the data (no pre-period).

        Their unit effects absorb all their rows, so they enter only as already-treated
        comparisons for the other units' later periods: biased when effects change over time.
        """
        n_units = int(prep.unit.max()) + 1
        ever = np.bincount(prep.unit[treated], minlength=n_units) > 0
        before = np.bincount(prep.unit[~treated], minlength=n_units) > 0
        always = np.flatnonzero(ever & ~before)
        if always.size == 0:
            return
        levels = key_column(data, self.unit, "unit")[1]
        shown = ", ".join(format_value(v) for v in levels[always[:5]])
        more = f" and {always.size - 5} more" if always.size > 5 else ""
        units = "1 treated unit has" if always.size == 1 else f"{always.size} treated units have"
        warn(
            notes,
            f"{units} no untreated period in the data (column {self.unit!r}: "
            f"{shown}{more}): with no pre-period their own change cannot be measured, and "
            "two-way fixed effects uses them only as already-treated comparisons for the other "
            "units, which biases the estimate when effects change over time. Add their years "
            "before the start, or drop them.",
            StaggeredTimingWarning,
        )

    def _check_timing(self, prep, treated: np.ndarray, notes: list[str]) -> None:
        """Warn when treated units start in more than one period (staggered adoption).

        A unit's start is only known to lie after its last observed untreated period and at
        its first treated one; units missing a year are not staggered unless these intervals
        cannot share a common start.
        """
        n_units = int(prep.unit.max()) + 1
        big = np.iinfo(np.intp).max
        upper = np.full(n_units, big)
        np.minimum.at(upper, prep.unit[treated], prep.time[treated])
        before = ~treated & (prep.time < upper[prep.unit])
        lower = np.zeros(n_units, dtype=np.intp)
        np.maximum.at(lower, prep.unit[before], prep.time[before] + 1)
        is_treated = upper != big
        lo, hi = lower[is_treated].max(), upper[is_treated].min()
        if lo > hi:
            starts = np.unique(upper[is_treated])
            shown = ", ".join(str(prep.time_levels[s]) for s in starts[:8])
            warn(
                notes,
                f"treated units start in different periods (first treated periods {shown}): "
                "with staggered timing and effects that vary, the two-way fixed-effects "
                "estimate is a weighted average of 2x2 comparisons, some with negative weights "
                "(Goodman-Bacon 2021; de Chaisemartin & D'Haultfoeuille 2020). Use it for "
                "comparison only; use cpdimpact.did.StaggeredDiD (group-time effects).",
                StaggeredTimingWarning,
            )
