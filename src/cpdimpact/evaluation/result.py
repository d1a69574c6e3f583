"""The result of an evaluation: what every stage produced, as data and faces.

:class:`EvaluationResult` holds the spec that was run, the cohort, one
:class:`GroupEstimate` per group, the event study and (for a staggered headline) the
:class:`StaggeredDetail`; its faces are the tables (``headline``, ``subgroup_effects``,
``gap_table``...), ``summary()``, ``to_frame()``, ``conf_int()`` and ``plot()``.

Publishing (the report, ``results.json`` and the files) lives in
:mod:`cpdimpact.report.publish`, which depends on this module and never the reverse:
:meth:`EvaluationResult.report`, :meth:`~EvaluationResult.to_json_dict`,
:meth:`~EvaluationResult.to_json` and :meth:`~EvaluationResult.save` hand the result to the
publisher that :mod:`cpdimpact.evaluation` installs (:func:`use_publisher`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd

from .._breakdown import GapEstimate, effect_size_variants, points_interval
from .._results import HtmlFromSummary, Summary, interval
from ..cohort import Cohort
from ..did import Aggregate, DiDResult, EventStudyResult, WildBootstrapResult
from ..effects import EffectSize, percentages_odds_ratio
from ..errors import CpdImpactError
from ..published import FIGURE_PUPILS

if TYPE_CHECKING:  # pragma: no cover
    from ..did.staggered import PretrendWald
    from ..report import Document
    from .spec import Evaluation

__all__ = [
    "EvaluationResult",
    "GroupEstimate",
    "Publisher",
    "RunWarning",
    "StaggeredDetail",
    "TWFE_COMPARISON_LABEL",
    "allocated_attrition",
    "group_rows",
    "inference_text",
    "plot_staggered_event_study",
    "use_publisher",
]

#: How a two-way fixed-effects estimate shown beside a staggered headline is labelled.
TWFE_COMPARISON_LABEL = (
    "Two-way fixed effects, for comparison: biased when effects differ between cohorts or grow "
    "with exposure"
)


@dataclass(frozen=True)
class RunWarning:
    """A warning an evaluation raised (once, however many stages raised it).

    ``category`` is the warning class, ``message`` its text; ``str()`` reads
    ``"FewClustersWarning: only 12 clusters ..."``.
    """

    category: type[Warning]
    message: str

    def __str__(self) -> str:
        return f"{self.category.__name__}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"category": self.category.__name__, "message": self.message}


@dataclass(frozen=True, eq=False)
class GroupEstimate:
    """The headline estimate for one group of pupils (all pupils, or a subgroup).

    ``did`` and ``effect_size`` are ``None`` when a subgroup could not be estimated; ``note``
    then says why (the report repeats it among its caveats).
    """

    label: str
    arms: pd.DataFrame
    did: DiDResult | None
    effect_size: EffectSize | None
    note: str = ""


@dataclass(frozen=True, eq=False)
class StaggeredDetail:
    """What a staggered headline adds to the evaluation: its event study, its aggregates by
    start cohort and by year, and a two-way fixed-effects estimate kept for comparison.

    Attributes
    ----------
    dynamic, group, calendar
        :class:`~cpdimpact.did.Aggregate` of the all-pupils fit: group-time effects averaged by
        years since the start (the event study), by start cohort and by calendar year.
    pretrend
        Wald test that every pre-treatment group-time effect is zero (``None`` without any).
    uniform_bands
        Whether the pieces' ``band_lower``/``band_upper`` are uniform (simultaneous) bands from
        the multiplier bootstrap; without the bootstrap they are the pointwise intervals.
    twfe
        Static TWFE difference-in-differences (:class:`~cpdimpact.did.DiD`) on the rows the
        staggered estimator was given (the unit-year means, unweighted), with unit and year
        fixed effects, clustered as the staggered fit (or by unit). For comparison only:
        biased when effects differ between cohorts or grow with exposure. ``None`` if it could
        not be fitted (``twfe_note`` says why).
    twfe_event_study_note
        Why an explicitly requested TWFE event study (``Evaluation(event_study=...)``) could
        not be fitted, if it could not (it is a comparison; the evaluation goes on without it).
    """

    dynamic: Aggregate
    group: Aggregate
    calendar: Aggregate
    pretrend: PretrendWald | None
    uniform_bands: bool
    twfe: DiDResult | None
    twfe_note: str = ""
    twfe_event_study_note: str = ""

    def pieces(self, kind: Literal["dynamic", "group", "calendar"]) -> pd.DataFrame:
        """The pieces of one aggregate with pointwise intervals.

        Columns: the key (``event_time``, ``group`` or ``time``), ``estimate, std_error,
        ci_lower, ci_upper`` (pointwise, normal, at the aggregate's level) and ``band_lower,
        band_upper`` (uniform bands; missing when not bootstrapped).
        """
        agg = getattr(self, kind)
        pieces = agg.pieces
        lower, upper = interval(pieces["estimate"], pieces["std_error"], alpha=agg.alpha)
        bands = ["band_lower", "band_upper"]
        out = pieces.drop(columns=[c for c in bands if c in pieces.columns]).assign(
            ci_lower=lower, ci_upper=upper
        )
        for column in bands:
            out[column] = pieces[column] if self.uniform_bands else np.nan
        return out.reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class EvaluationResult(HtmlFromSummary):
    """Everything an evaluation produced; immutable.

    Attributes
    ----------
    evaluation
        The :class:`Evaluation` spec that was run.
    cohort
        The :class:`~cpdimpact.cohort.Cohort`.
    groups
        One :class:`GroupEstimate` per group: all pupils first, then the subgroups.
    event_study
        The two-way fixed-effects event-study result (or ``None``): the report's event study
        when the headline is not staggered, a labelled comparison when it is.
    version, fingerprint, seed
        Package version, SHA-256 fingerprint of the input tables, and the seed.
    effect_size_sd, effect_size_sd_source
        The SD every effect size divides by, and where it comes from.
    estimator
        The headline estimator actually used (the spec's, or the one chosen by the design).
    staggered
        :class:`StaggeredDetail` when the headline is staggered (``StaggeredDiD``): the
        dynamic, group and calendar aggregates, the pre-trend Wald test and the TWFE estimate
        kept for comparison; ``None`` otherwise.
    warnings
        Each distinct warning the run raised, once (:class:`RunWarning`), in the order first
        raised; the report lists them among its caveats and ``results.json`` under
        ``warnings``.
    estimand_weighting
        Whose average effect the headline is (schools or pupil records), in words
        (:func:`cpdimpact.evaluation.stages.estimand_weighting`).
    """

    evaluation: Evaluation
    cohort: Cohort
    groups: tuple[GroupEstimate, ...]
    event_study: EventStudyResult | None
    version: str
    fingerprint: str
    seed: int | None
    effect_size_sd: float
    effect_size_sd_source: str
    estimator: object = None
    staggered: StaggeredDetail | None = None
    breakdown: tuple[GroupEstimate, ...] = ()
    gaps: tuple[GapEstimate, ...] = ()
    comparison: Any = None
    warnings: tuple[RunWarning, ...] = ()
    estimand_weighting: str = ""

    def __repr__(self) -> str:
        # the dataclass's repr would print every table of the cohort (over 10,000 characters)
        row = self.headline.iloc[0]
        es = self.effect_size
        if es is not None:
            effect = (
                f"effect_size={es.estimate:.3f} [{es.ci_lower:.3f}, {es.ci_upper:.3f}], "
                f"months={es.months}"
            )
        else:
            effect = (
                f"estimate={row['estimate']:.3f} {self.outcome_units} "
                f"[{row['estimate_lower']:.3f}, {row['estimate_upper']:.3f}]"
            )
        groups = [g.label for g in self.groups]
        return (
            f"EvaluationResult({type(self.estimator).__name__}, {effect}, groups={groups}, "
            f"seed={self.seed}, warnings={len(self.warnings)})"
        )

    # ------------------------------------------------------------------ views
    @property
    def headline(self) -> pd.DataFrame:
        """EEF-style headline table: one row per group.

        Columns: ``group, effect_size, ci_lower, ci_upper, months, pupils_treated,
        pupils_comparison, schools_treated, schools_comparison, estimate, std_error,
        estimate_lower, estimate_upper`` (``estimate``, its ``std_error`` and interval in
        outcome units; the effect-size columns missing when there is no pupil-level SD, as
        with published figures given none).
        """
        return group_rows(self.groups, self.evaluation.alpha)

    @property
    def subgroup_effects(self) -> pd.DataFrame:
        """Every group's effect: the headline rows, then the other pupils of each gap and the
        prior-attainment bands (columns as :attr:`headline`)."""
        return group_rows((*self.groups, *self.breakdown), self.evaluation.alpha)

    @property
    def outcome_units(self) -> str:
        """The units of an estimate: ``"points"`` of the outcome, or ``"percentage points"``
        for a pass/fail outcome or a published percentage."""
        return self.cohort.outcome_units

    @property
    def percentage_effect_sizes(self) -> pd.DataFrame | None:
        r"""For a pass/fail outcome or a published percentage, each group's effect in
        percentage points as an odds ratio and as an effect size by Cox's method; ``None``
        for a score.

        With :math:`p_1` the participating units' percentage passing in the programme years
        (pupil-weighted for published figures) and :math:`\hat\tau` the effect in percentage
        points, the percentage without the programme is :math:`p_0 = p_1 - \hat\tau`, the odds
        ratio is :math:`OR = \frac{p_1/(100-p_1)}{p_0/(100-p_0)}` and

        .. math:: d_{Cox} = \ln OR / 1.65

        (:func:`cpdimpact.effects.cox_index`); the intervals convert the ends of the
        percentage-point interval the same way (both increase with :math:`\hat\tau`). It is
        not a Hedges' g and gives no months of progress.

        Columns: ``group, percent_participating, percent_without, odds_ratio,
        odds_ratio_lower, odds_ratio_upper, effect_size, ci_lower, ci_upper``; missing where
        a percentage falls outside 0-100.
        """
        if self.outcome_units != "percentage points":
            return None
        head = self.headline
        columns = (None, *self.evaluation.subgroups)
        rows = []
        for g, column, (_, row) in zip(self.groups, columns, head.iterrows(), strict=True):
            if g.did is None:
                continue
            frame = rows_where(self.cohort, column, 1)
            after = frame[frame["exposed"].to_numpy(dtype=bool)]
            weights = after[FIGURE_PUPILS] if FIGURE_PUPILS in after.columns else None
            p1 = float(np.average(after["outcome"], weights=weights)) if len(after) else np.nan
            shifts = (row["estimate"], row["estimate_lower"], row["estimate_upper"])
            (odds, cox), (odds_lo, cox_lo), (odds_hi, cox_hi) = (
                percentages_odds_ratio(p1, p1 - shift) for shift in shifts
            )
            rows.append(
                {
                    "group": g.label,
                    "percent_participating": p1,
                    "percent_without": p1 - row["estimate"],
                    "odds_ratio": odds,
                    "odds_ratio_lower": odds_lo,
                    "odds_ratio_upper": odds_hi,
                    "effect_size": cox,
                    "ci_lower": cox_lo,
                    "ci_upper": cox_hi,
                }
            )
        return pd.DataFrame(rows)

    @property
    def has_effect_size(self) -> bool:
        """Whether effect sizes were computed: ``False`` when no pupil-level SD was available
        (published figures without ``CohortSpec(pupil_sd=...)``); the estimates are then in
        outcome units only."""
        return self.groups[0].effect_size is not None

    @property
    def gap_table(self) -> pd.DataFrame:
        """The change in each attainment gap: ``gap, subgroup, rest, effect_size, ci_lower,
        ci_upper, months, estimate, std_error, df, method`` (effect sizes: subgroup minus rest;
        positive narrows the gap)."""
        columns = ["gap", "subgroup", "rest", "effect_size", "ci_lower", "ci_upper", "months"]
        rows = [
            {
                "gap": g.label,
                "subgroup": g.subgroup,
                "rest": g.rest,
                "effect_size": g.estimate,
                "ci_lower": g.ci_lower,
                "ci_upper": g.ci_upper,
                "months": g.months,
                "estimate": g.points,
                "std_error": g.points_std_error,
                "df": g.df,
                "method": g.method,
            }
            for g in self.gaps
        ]
        return pd.DataFrame(rows, columns=[*columns, "estimate", "std_error", "df", "method"])

    @property
    def effect_size_variants(self) -> pd.DataFrame:
        """The headline as an effect size under each SD (see
        :func:`cpdimpact._breakdown.effect_size_variants`)."""
        return effect_size_variants(self)

    @property
    def attrition(self):
        """Pupil attrition from the allocated sample to the analysis
        (:class:`~cpdimpact.effects.AttritionRates`); ``None`` if the flow log lacks it or an
        arm was allocated nobody (a roll-out with no comparison arm)."""
        return allocated_attrition(self.cohort, "pupils")

    @property
    def cost(self):
        """The EEF cost estimate (:class:`~cpdimpact.effects.CostEstimate`) or ``None``."""
        cost = self.evaluation.report.cost
        return None if cost is None else cost.estimate()

    @property
    def security(self):
        """The padlock assessment (:class:`~cpdimpact.effects.PadlockAssessment`) or ``None``.

        Without an MDES in :class:`SecurityOptions` it uses the analysis' own:
        :math:`(t_{1-\alpha/2} + t_{0.8})` times the headline effect size's SE.
        """
        options = self.evaluation.report.security
        if options is None or not self.has_effect_size:  # the padlocks need an effect size
            return None
        attrition = self.attrition
        return options.assess(
            mdes=self.analysis_mdes, attrition=0.0 if attrition is None else attrition.overall
        )

    @property
    def analysis_mdes(self) -> float:
        """The MDES implied by the headline's SE at 80% power and the report's alpha (``nan``
        without effect sizes)."""
        from scipy import stats

        es = self.effect_size
        if es is None:
            return math.nan
        df = es.df if es.df is not None and math.isfinite(es.df) else None
        dist = stats.norm if df is None else stats.t(df)
        multiplier = dist.ppf(1 - self.evaluation.alpha / 2) + dist.ppf(0.8)
        return float(multiplier * es.std_error)

    @property
    def effect_size(self) -> EffectSize | None:
        """The headline (all pupils) effect size; ``None`` without a pupil-level SD."""
        return self.groups[0].effect_size

    def to_frame(self) -> pd.DataFrame:
        """Tidy effect sizes, one row per group (``term`` is the group): ``term, effect_size,
        effect_size_se, statistic, p_value, ci_lower, ci_upper``, the interval that of the
        effect size (as in :attr:`headline`, where ``estimate`` is in outcome units). Without
        effect sizes (see :attr:`has_effect_size`): the estimates in outcome units, ``term,
        estimate, std_error, ci_lower, ci_upper, units``."""
        if not self.has_effect_size:
            return self._outcome_frame(self.evaluation.alpha)
        frames = [g.effect_size.to_frame() for g in self.groups if g.effect_size is not None]
        # "estimate" means outcome units in every other table of the result
        names = {"estimate": "effect_size", "std_error": "effect_size_se"}
        return pd.concat(frames, ignore_index=True).rename(columns=names)

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Effect-size intervals at level ``1 - alpha`` (default the evaluation's alpha),
        indexed by group; in outcome units without effect sizes."""
        alpha = self.evaluation.alpha if alpha is None else alpha
        if not self.has_effect_size:
            frame = self._outcome_frame(alpha).set_index("term")
            return frame[["ci_lower", "ci_upper"]]
        frames = [g.effect_size.conf_int(alpha) for g in self.groups if g.effect_size is not None]
        return pd.concat(frames)

    def _outcome_frame(self, alpha: float) -> pd.DataFrame:
        head = group_rows(self.groups, alpha).dropna(subset=["estimate"])
        return pd.DataFrame(
            {
                "term": head["group"],
                "estimate": head["estimate"],
                "std_error": head["std_error"],
                "ci_lower": head["estimate_lower"],
                "ci_upper": head["estimate_upper"],
                "units": self.outcome_units,
            }
        ).reset_index(drop=True)

    def summary(self) -> Summary:
        """Printable headline."""
        es = self.effect_size
        did = self.groups[0].did
        level = f"{100 * (1 - self.evaluation.alpha):g}%"
        units = self.outcome_units
        if es is None:
            row = self.headline.iloc[0]
            sizes = (
                (
                    f"effect ({units})",
                    f"{did.estimate:.2f} ({level} CI {row['estimate_lower']:.2f} to "
                    f"{row['estimate_upper']:.2f})",
                ),
                *self._converted_summary(level),
            )
        else:
            sizes = (
                (
                    "effect size",
                    f"{es.estimate:.2f} ({level} CI {es.ci_lower:.2f} to {es.ci_upper:.2f})",
                ),
                ("months of progress", str(es.months)),
                (f"estimate ({units})", f"{did.estimate:.3f} (SE {did.std_error:.3f})"),
            )
        data = ()
        if self.cohort.published is not None:
            published = self.cohort.published
            data = (("data", f"published {published.noun}: {published.source}"),)
        sd = (
            (("effect-size SD", f"{self.effect_size_sd:.3f} ({self.effect_size_sd_source})"),)
            if es is not None
            else ()
        )
        facts = (
            *data,
            *sizes,
            ("inference", inference_text(did)),
            *sd,
            ("data fingerprint", self.fingerprint[:16]),
        )
        if self.staggered is not None:
            p = self.staggered.pretrend
            if p is not None:
                facts += (
                    (
                        "pre-trend test",
                        f"Wald chi2({p.df}) = {p.statistic:.2f}, p = {p.p_value:.3f}",
                    ),
                )
            twfe = self.staggered.twfe
            if twfe is not None:
                facts += (
                    (
                        "TWFE, for comparison only",
                        f"{twfe.estimate:.3f} (SE {twfe.std_error:.3f}); biased when effects "
                        f"differ between cohorts or grow with exposure",
                    ),
                )
        elif self.event_study is not None and self.event_study.pretrend is not None:
            p = self.event_study.pretrend
            facts += (("pre-trend test", f"F = {p.statistic:.2f}, p = {p.p_value:.3f}"),)
        table = self.headline
        if es is None:  # effect-size columns of nothing but NaN say nothing
            table = table.drop(columns=["effect_size", "ci_lower", "ci_upper", "months"])
        return Summary(title=self.evaluation.report.title, facts=facts, table=table)

    def _converted_summary(self, level: str) -> tuple[tuple[str, str], ...]:
        """The summary's lines for a result without an SD-based effect size: a percentage's
        odds ratio and Cox effect size, or why there is none."""
        converted = self.percentage_effect_sizes
        if converted is None or converted.empty or np.isnan(converted["odds_ratio"].iloc[0]):
            reason = (
                "a percentage of 0 or 100 cannot be converted"
                if converted is not None
                else self.effect_size_sd_source
            )
            return (("effect size", f"not computed: {reason}"),)
        row = converted.iloc[0]
        return (
            (
                "odds ratio",
                f"{row['odds_ratio']:.2f} ({level} CI {row['odds_ratio_lower']:.2f} to "
                f"{row['odds_ratio_upper']:.2f})",
            ),
            (
                "effect size (Cox)",
                f"{row['effect_size']:.2f} ({level} CI {row['ci_lower']:.2f} to "
                f"{row['ci_upper']:.2f}); the log odds ratio / 1.65, not a Hedges' g, so no "
                "months of progress",
            ),
        )

    def plot(self, *, ax=None):
        """The report's event-study figure (or the headline effect size without one).

        For a staggered headline: the dynamic aggregate with pointwise intervals and, when
        bootstrapped, uniform bands.
        """
        if self.staggered is not None:
            return plot_staggered_event_study(self.staggered, ax=ax)
        if self.event_study is not None:
            return self.event_study.plot(ax=ax)
        if self.effect_size is None:
            return self.groups[0].did.plot(ax=ax)
        return self.effect_size.plot(ax=ax)

    # ------------------------------------------------------------------ outputs
    def to_json_dict(self) -> dict[str, Any]:
        """``results.json`` content: spec, version, fingerprint, seed and every number reported.

        Published counts (headline, flow, exclusions, balance) obey the report's small-number
        suppression (``"<10"`` strings); a group's ``n_obs`` is ``"suppressed"`` when one of
        its arm counts is (see ``docs/report.md``). Built by
        :func:`cpdimpact.report.publish.results_json_dict`.
        """
        return _publisher().results_json_dict(self)

    def to_json(self) -> str:
        """``results.json`` as text (sorted keys, two-space indent, trailing newline)."""
        return _publisher().results_json(self)

    def report(self) -> Document:
        """The report as a :class:`cpdimpact.report.Document`."""
        return _publisher().evaluation_report(self)

    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write ``report.html``, ``report.md``, ``report.docx``, ``results.json`` and the figures.

        Returns the written paths by name (see :func:`cpdimpact.report.publish.save`). For the
        same input and seed, ``results.json`` and ``report.md`` are byte-identical across runs
        and machines, and ``report.docx`` across runs.
        """
        return _publisher().save(self, folder)


def rows_where(cohort: Cohort, column: str | None, value: int) -> pd.DataFrame:
    """The cohort's rows with ``column == value`` (all of them for ``column=None``): pupil
    records, or for published figures the rows of the disadvantaged split."""
    if column is None:
        return cohort.pupils
    rows = cohort.pupils if cohort.published is None else cohort.published.groups
    return rows[(rows[column] == value).to_numpy()]


def inference_text(did) -> str:
    """One sentence on how a headline estimate's uncertainty was computed."""
    if hasattr(did, "placebo_method"):  # synthetic control / synthetic DiD
        return (
            f"Standard error from placebos ({did.placebo_method}): the spread of the estimates "
            "when each comparison area in turn plays the treated one, with a normal reference "
            "distribution (Arkhangelsky et al. 2021, Algorithm 4)."
        )
    if isinstance(did, WildBootstrapResult):
        return (
            f"Interval and p-value from the wild cluster bootstrap, clustered by {did.cluster} "
            f"({did.n_clusters} clusters; {did.method}): it holds its level with few clusters, "
            "where cluster-robust standard errors are too small (Cameron, Gelbach & Miller "
            "2008; MacKinnon & Webb 2017)."
        )
    if math.isinf(did.df):
        return f"Standard errors: {did.cov_type}; normal reference distribution."
    if did.cov_type.startswith("cluster"):
        return (
            f"Standard errors are clustered by {did.cluster} ({did.n_clusters} clusters; "
            f"{did.cov_type}), with t on {did.df:g} degrees of freedom."
        )
    return (
        f"Standard errors are {did.cov_type} (t on {did.df:.1f} degrees of freedom; "
        f"{did.n_clusters} {did.cluster} groups)."
    )


def group_rows(groups, alpha: float = 0.05) -> pd.DataFrame:
    """One row per group: effect size, interval, months, arm counts and the estimate, with
    the estimate's interval at ``alpha`` in outcome units (t on the fit's degrees of freedom,
    as the effect size's)."""
    rows = []
    for g in groups:
        es = g.effect_size
        lower = upper = math.nan
        if g.did is not None:
            lower, upper = points_interval(g.did, alpha)
        rows.append(
            {
                "group": g.label,
                "effect_size": es.estimate if es else math.nan,
                "ci_lower": es.ci_lower if es else math.nan,
                "ci_upper": es.ci_upper if es else math.nan,
                "months": es.months if es else pd.NA,
                "pupils_treated": int(g.arms.loc["treated", "pupils"]),
                "pupils_comparison": int(g.arms.loc["comparison", "pupils"]),
                "schools_treated": int(g.arms.loc["treated", "schools"]),
                "schools_comparison": int(g.arms.loc["comparison", "schools"]),
                "estimate": g.did.estimate if g.did else math.nan,
                "std_error": g.did.std_error if g.did else math.nan,
                "estimate_lower": float(lower),
                "estimate_upper": float(upper),
            }
        )
    return pd.DataFrame(rows)


def allocated_attrition(cohort: Cohort, level: str):
    """Attrition from the cohort's allocated sample, or ``None`` without allocation rows."""
    from ..effects import attrition_rates

    allocated = cohort.flow.allocated
    if allocated is None or (allocated[level] == 0).any():
        return None  # e.g. a roll-out in which every unit takes part: no comparison arm
    return attrition_rates(cohort, level=level)


def plot_staggered_event_study(detail, *, ax=None):
    """The staggered event study of a :class:`StaggeredDetail`: its dynamic aggregate drawn by
    :func:`cpdimpact.did.plot_event_study` (pointwise intervals, and the uniform band when the
    standard errors come from the multiplier bootstrap). Returns the Axes."""
    from ..did import plot_event_study

    return plot_event_study(detail.dynamic, ax=ax)


# ---------------------------------------------------------------------- publishing
class Publisher(Protocol):
    """What publishes a result (:mod:`cpdimpact.report.publish`): the report, ``results.json``
    and the files. The result calls it; it never imports it, so publishing depends on the
    result and not the reverse."""

    def evaluation_report(self, result: EvaluationResult) -> Document: ...

    def results_json_dict(self, result: EvaluationResult) -> dict[str, Any]: ...

    def results_json(self, result: EvaluationResult) -> str: ...

    def save(self, result: EvaluationResult, folder: str | Path) -> dict[str, Path]: ...


_PUBLISHER: list[Publisher] = []


def use_publisher(publisher: Publisher) -> None:
    """Make ``publisher`` the one :class:`EvaluationResult` hands itself to for its report,
    ``results.json`` and files (:mod:`cpdimpact.evaluation` installs
    :mod:`cpdimpact.report.publish` when it is imported)."""
    _PUBLISHER[:] = [publisher]


def _publisher() -> Publisher:
    if not _PUBLISHER:
        raise CpdImpactError(
            "no publisher is installed for evaluation results; import cpdimpact.evaluation "
            "(it installs cpdimpact.report.publish)"
        )
    return _PUBLISHER[0]
