"""Two-way fixed-effects event study with a joint pre-trend test."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from cpdimpact._guards import require_residual_variation
from cpdimpact._results import interval
from cpdimpact.did._checks import key_column
from cpdimpact.did._common import (
    ClusterRobustOptions,
    check_event_window,
    choose_cov_type,
    few_clusters,
    gap_references,
    outcome_scale,
    prepare_event_time,
    warn,
)
from cpdimpact.did._twfe import Design, fit_facts, fit_twfe, wald_f
from cpdimpact.did.results import EventStudyResult, PretrendTest
from cpdimpact.errors import (
    DesignError,
    EmptyComparisonGroupError,
    StaggeredTimingWarning,
)
from cpdimpact.estimator import (
    ClusterRobust,
    adjustment_in_words,
    deprecated_options,
    from_cov_type,
)

__all__ = ["EventStudy"]


@deprecated_options(cov_type=("inference", from_cov_type))
@dataclass(frozen=True, kw_only=True)
class EventStudy(ClusterRobustOptions):
    r"""Two-way fixed-effects event study (dynamic DiD) with a joint pre-trend test.

    Parameters
    ----------
    outcome, unit, time, cluster, covariates, weights, alpha
        As in :class:`cpdimpact.did.DiD`. ``time`` must hold whole periods (e.g. years).
    inference : ClusterRobust
        :class:`~cpdimpact.estimator.ClusterRobust` ``("CR1")`` (default), ``("CR2")`` or
        ``("auto")``, as in :class:`cpdimpact.did.DiD` (the wild bootstrap tests one
        coefficient and is an option of ``DiD`` only). The old ``cov_type=`` still works for
        one release (deprecated).
    first_treated : str
        Period in which the unit was first treated; 0 or missing means never treated. Must be
        constant within a unit.
    reference : int
        Event time whose coefficient is normalised to zero (default -1, the last period before
        treatment). For a cohort whose year at this event time has no data (no KS2 tests in
        2020 and 2021), its last observed year before it is its reference instead (see Notes).
    window : tuple of int (lo, hi) or None
        Bin event times: every event time below ``lo`` is coded as ``lo`` and every one above
        ``hi`` as ``hi``, so the end dummies estimate the average effect over the binned periods
        (Schmidheiny & Siegloch 2023). ``None`` keeps a dummy for every observed event time.
        ``lo <= reference <= hi`` is required.

    Notes
    -----
    With event time :math:`e_{it} = t - g_i` for a unit first treated in :math:`g_i`,

    .. math::

        y_{kit} = \alpha_i + \lambda_t + \sum_{e \ne r} \beta_e \mathbf 1[e_{it} = e]
                  + \gamma' X_{kit} + \varepsilon_{kit},

    where :math:`r` is ``reference``; never-treated units have every dummy equal to zero. Unit
    effects are absorbed and period effects enter as dummies, on pupil rows (a repeated
    cross-section within units) or unit-year rows alike. Without never-treated units, keeping
    every event time makes the dummies collinear with the unit and period effects (relative
    and calendar time cannot both be separated); bin the ends with ``window`` or add a
    comparison group (Borusyak, Jaravel & Spiess 2024).

    **Years with no data.** Event time is measured in years, :math:`e = t - g`, and the
    periods are the years observed: event times that fall in a gap have no row and no
    coefficient (they are absent, not zero). A cohort whose year :math:`g + r` has no data (a
    2022 start with 2021 missing) is measured against its last observed year before it (2019,
    :math:`e = -3`): its rows there carry no dummy, as the reference rows of the other cohorts
    do; the result's ``reference_years`` and summary name each cohort's year, and a note says
    which moved. With one cohort the table's reference row is then at that event time. A
    cohort starting in a year with no data (2020 or 2021) is kept: its first post-start row
    is in 2022 (:math:`e = 2` or :math:`1`). The window bins observed event times only. The
    pre-trend test covers the observed pre-period coefficients.

    Standard errors are cluster-robust with the factor
    :math:`G/(G-1)\cdot(N-1)/(N-K)` (unit effects nested in clusters not in :math:`K`; the
    convention of Stata ``xtreg, fe vce(cluster)`` and R ``fixest``) and t with :math:`G-1`
    degrees of freedom; see :class:`cpdimpact.did.DiD`.

    The pre-trend test is the cluster-robust Wald test that every pre-period coefficient
    (:math:`e < 0`, :math:`e \ne r`) is zero,

    .. math::

        F = \hat\beta_{pre}' \hat V_{pre}^{-1} \hat\beta_{pre} / q \sim F(q, G - 1),

    the scaling Stata's ``test`` uses after ``vce(cluster)`` (Cameron & Miller 2015). It is
    ``NaN`` when :math:`q > G - 1` (the clustered covariance is then singular). Passing it is
    weak evidence: such tests have low power against the violations that matter, and
    conditioning the analysis on passing distorts the estimates and their coverage (Roth 2022;
    Freyaldenhoven, Hansen & Shapiro 2019). Report the event-study figure and consider
    sensitivity analysis rather than treating the test as a gate.

    With ``inference=ClusterRobust("CR2")`` each coefficient has its own Satterthwaite degrees of freedom
    (``df_terms``, used by the table and intervals; ``df`` is the smallest among the event-time
    terms) and the pre-trend test is the HTZ test of Pustejovsky & Tipton (2018, sec. 3.3),
    ``clubSandwich``'s ``Wald_test(test = "HTZ")``: with :math:`Q = \hat\beta_{pre}'
    V^{CR2\,-1}_{pre}\hat\beta_{pre}` and degrees of freedom :math:`\nu_Z` from the
    Satterthwaite-type approximation of the whole covariance,

    .. math::

        F = \frac{\nu_Z - q + 1}{\nu_Z}\,\frac{Q}{q} \sim F(q, \nu_Z - q + 1).

    Its denominator degrees of freedom can be small, or not positive (p-value ``NaN``), when
    clusters are few or unbalanced: the honest answer that the data say little.

    With staggered start periods the TWFE event-study coefficients mix effects of other event
    times and cohorts (Sun & Abraham 2021), so a
    :class:`~cpdimpact.errors.StaggeredTimingWarning` is emitted;
    :class:`~cpdimpact.did.StaggeredDiD` is the estimator for such designs.

    References
    ----------
    Borusyak, K., Jaravel, X. & Spiess, J. (2024). Revisiting event-study designs: robust and
    efficient estimation. *Review of Economic Studies* 91(6), 3253-3285.
    Freyaldenhoven, S., Hansen, C. & Shapiro, J. M. (2019). Pre-event trends in the panel
    event-study design. *American Economic Review* 109(9), 3307-3338.
    Roth, J. (2022). Pretest with caution: event-study estimates after testing for parallel
    trends. *American Economic Review: Insights* 4(3), 305-322.
    Schmidheiny, K. & Siegloch, S. (2023). On event studies and distributed-lags in two-way
    fixed effects models. *Journal of Applied Econometrics* 38(5), 695-713.
    Sun, L. & Abraham, S. (2021). Estimating dynamic treatment effects in event studies with
    heterogeneous treatment effects. *Journal of Econometrics* 225(2), 175-199.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.did import EventStudy
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame([(s, y) for s in range(60) for y in range(2014, 2022)],
    ...                   columns=["school", "year"])
    >>> df["unit"] = df["school"]
    >>> df["first_treated"] = np.where(df["school"] < 30, 2018, 0)
    >>> effect = np.where((df["first_treated"] > 0) & (df["year"] >= 2018), 1.5, 0.0)
    >>> df["outcome"] = 100 + 0.05 * df["school"] + effect + rng.normal(0, 1, len(df))
    >>> res = EventStudy(window=(-3, 2)).fit(df)
    >>> res.coefficients.index.tolist()
    [-3, -2, -1, 0, 1, 2]
    >>> bool(res.coefficients.loc[-1, "reference"]), res.pretrend.df_num
    (True, 2)
    """

    #: Rows it fits: pupil records or unit-year means alike.
    data_level: ClassVar[str] = "any"
    #: Its estimates are in the outcome's units, averaged over pupils (or pupil-weighted rows).
    effect_scale: ClassVar[str] = "outcome"

    outcome: str = "outcome"
    unit: str = "unit"
    time: str = "year"
    first_treated: str = "first_treated"
    cluster: str = "school"
    covariates: Sequence[str] = field(default=())
    weights: str | None = None
    reference: int = -1
    window: tuple[int, int] | None = None
    alpha: float = 0.05
    inference: ClusterRobust = field(default=ClusterRobust())

    def __post_init__(self) -> None:
        self._check_options()
        object.__setattr__(self, "window", check_event_window(self.reference, self.window))

    def describe(self) -> str:
        """The estimator and its inference in plain words, for a report."""
        ref = self.reference
        against = (
            "the last period before the start"
            if ref == -1
            else f"{-ref} periods before the start"
            if ref < 0
            else f"{ref} periods after the start"
        )
        return (
            "Two-way fixed-effects event study: one effect per period since the start, each "
            f"against {against} (a cohort whose year there has no data: its last observed "
            f"year before it){adjustment_in_words(self.covariates, self.weights)}, with a "
            "joint test of the effects before "
            "the start; " + self.inference.describe(self.cluster)
        )

    def fit(self, data: pd.DataFrame) -> EventStudyResult:
        """Estimate the event study on ``data`` (pupil or unit-year rows); ``data`` is not modified.

        Parameters
        ----------
        data : pandas.DataFrame
            One row per pupil-year or per unit-year with the named columns.

        Returns
        -------
        EventStudyResult

        Raises
        ------
        cpdimpact.errors.MissingColumnError
            A named column is absent.
        cpdimpact.errors.InvalidValueError
            Non-numeric or missing values; non-integer periods; ``first_treated`` varying
            within a unit; weights <= 0.
        cpdimpact.errors.DesignError
            No treated units, no comparison rows, or no treated row at the reference event time.
        cpdimpact.errors.EstimationError
            An event-time dummy is collinear with the fixed effects.
        """
        prep, period, first = prepare_event_time(data, self, "The event study")
        treated = first != 0
        if not treated.any():
            raise DesignError(
                f"column {self.first_treated!r} is 0 or missing in every row: there are no "
                "treated units."
            )
        event = np.where(treated, period - first, np.nan)
        if np.all(treated & (event >= 0)):
            raise EmptyComparisonGroupError(
                "every row belongs to a treated unit in or after its first treated period: "
                "there are neither never-treated units nor pre-periods to compare with."
            )
        binned_lo = binned_hi = False
        if self.window is not None:
            lo, hi = self.window
            binned_lo = bool(np.any(event[treated] < lo))
            binned_hi = bool(np.any(event[treated] > hi))
            event = np.where(treated, np.clip(event, lo, hi), np.nan)
        refs = gap_references(period, first, treated, self.reference, self.window)
        at_ref = refs.rows(first, event, treated)
        if not at_ref.any():
            raise DesignError(
                f"no treated row is at the reference event time {self.reference}: choose a "
                "reference period that the treated units are observed in."
            )
        values = [int(v) for v in np.unique(event[treated & ~at_ref])]
        if not values:
            raise DesignError("treated units are observed only at the reference event time.")

        notes: list[str] = []
        if refs.note():
            notes.append(refs.note())
        starts = np.unique(first[treated])
        if starts.size > 1:
            shown = ", ".join(f"{s:g}" for s in starts[:8])
            warn(
                notes,
                f"treated units start in {starts.size} different periods ({shown}): with "
                "staggered timing and heterogeneous effects the two-way fixed-effects "
                "event-study coefficients mix effects from other event times and cohorts "
                "(Sun & Abraham 2021; Goodman-Bacon 2021). Use them for comparison only; "
                "StaggeredDiD(...).fit(...).aggregate('dynamic') gives a clean event study.",
                StaggeredTimingWarning,
                depth=1,
            )
        few_clusters(notes, prep.cluster, treated, self.cluster)
        cov_type = choose_cov_type(self.inference.kind, prep, treated)

        ref_times = sorted(set(refs.event_times.values()) - set(values))
        lo_end = min(values + ref_times)
        hi_end = max(values + ref_times)
        names = {v: self._term(v, lo_end, hi_end, binned_lo, binned_hi) for v in values}
        collinear = (
            "the event-time dummy {name!r} is collinear with the unit and period fixed effects: "
            "without never-treated units (or with a single start period and no never-treated "
            "units) relative and calendar time cannot both be separated. Bin the ends with "
            "window=(lo, hi) or add never-treated comparison units."
        )
        design = Design(
            data=prep,
            targets={names[v]: ((event == v) & ~at_ref).astype(float) for v in values},
            target_roles={names[v]: collinear.format(name=names[v]) for v in values},
            cluster_levels=key_column(data, self.cluster, "cluster")[1]
            if cov_type == "CR2"
            else None,
        )
        fit = fit_twfe(design, cov_type, notes)
        std_errors = fit.std_errors
        exact = require_residual_variation(
            fit.params[list(names.values())],
            std_errors[list(names.values())],
            prep.y,
            self.outcome,
            explained_by="the unit and period fixed effects, the event-time terms and the "
            "covariates",
        )
        if exact:
            notes.append(exact)
        df = fit.df if fit.df_terms is None else fit.df_terms
        coefficients = self._coefficients(
            fit.params, std_errors, names, df, ref_times, (lo_end, hi_end), binned_lo, binned_hi
        )
        pre = [names[v] for v in values if v < 0]
        pretrend = None
        if pre and cov_type == "CR2":
            stat, delta, q, df_denom, p = fit.htz(pre)
            method = (
                "HTZ Wald test of all pre-period coefficients = 0 with CR2 (Pustejovsky & "
                f"Tipton 2018; clubSandwich Wald_test 'HTZ'), F = {delta:.4g} * Q/q ~ "
                "F(q, nu - q + 1)"
            )
            if not np.isfinite(p):
                method += "; p not computed: denominator df not positive or V singular"
            pretrend = PretrendTest(stat, q, df_denom, p, method, tuple(pre))
        elif pre:
            stat, q, p = wald_f(
                fit.params[pre].to_numpy(), fit.cov.loc[pre, pre].to_numpy(), fit.df
            )
            method = "cluster-robust Wald test of all pre-period coefficients = 0, F(q, G-1)"
            if q > fit.df:
                stat, p = float("nan"), float("nan")
                method += f"; not computed: q = {q} exceeds G - 1 = {fit.df}"
            pretrend = PretrendTest(stat, q, fit.df, p, method, tuple(pre))
        post = treated & (event >= 0)  # binned ends count as post when at or after 0
        scale = outcome_scale(
            prep.y,
            prep.weights,
            [
                (f"event time {v}", treated & (event == v) & ~at_ref, fit.params[names[v]])
                for v in values
                if v >= 0
            ],
            notes,
            after=post,
        )
        return EventStudyResult(
            coefficients=coefficients,
            pretrend=pretrend,
            reference=refs.reported,
            reference_years=refs.series(),
            window=self.window,
            **fit_facts(fit, self, std_errors, notes, headline=list(names.values())),
            **scale,
        )

    def _term(self, v: int, lo: int, hi: int, binned_lo: bool, binned_hi: bool) -> str:
        if v == lo and binned_lo:
            return f"event_time<={v}"
        if v == hi and binned_hi:
            return f"event_time>={v}"
        return f"event_time={v}"

    def _coefficients(
        self, params, std_errors, names, df, ref_times, ends, binned_lo, binned_hi
    ) -> pd.DataFrame:
        lo_end, hi_end = ends
        times = sorted([*names, *ref_times])
        terms = [names.get(v, f"event_time={v}") for v in times]
        est = np.array([params[names[v]] if v in names else 0.0 for v in times])
        se = np.array([std_errors[names[v]] if v in names else np.nan for v in times])
        if isinstance(df, pd.Series):  # CR2: each term's Satterthwaite df
            df = np.array([df[names[v]] if v in names else np.inf for v in times])
        lower, upper = interval(est, se, alpha=self.alpha, df=df)
        is_ref = np.array([v not in names for v in times])
        lower = np.where(is_ref, 0.0, lower)
        upper = np.where(is_ref, 0.0, upper)
        binned = [(v == lo_end and binned_lo) or (v == hi_end and binned_hi) for v in times]
        out = pd.DataFrame(
            {
                "term": terms,
                "estimate": est,
                "std_error": se,
                "ci_lower": lower,
                "ci_upper": upper,
                "reference": is_ref,
                "binned": binned,
            },
            index=pd.Index(times, name="event_time"),
        )
        return out
