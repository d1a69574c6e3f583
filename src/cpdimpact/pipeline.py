"""The evaluation pipeline: a frozen specification of every stage, run on records in one call.

``Evaluation(...).run(records)`` builds the cohort, fits the difference-in-differences model
for all pupils and for each subgroup (FSM pupils by default), fits the event study (for a
staggered headline: its aggregates by event time, start cohort and year, and a two-way
fixed-effects estimate kept for comparison), converts the estimates to effect sizes and months
of progress, and returns one immutable :class:`EvaluationResult` that carries everything needed
to reproduce its report: the spec, the package version, a fingerprint of the input tables and
the seed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from . import __version__
from ._breakdown import (
    GapEstimate,
    complement_label,
    effect_size_variants,
    gap_estimate,
    interacted_gap,
    prior_band_masks,
)
from ._comparison_stage import WEIGHT, WEIGHT_X_PUPILS, apply_comparison, with_weights
from ._results import HtmlFromSummary, Summary, interval
from ._user_names import user_message
from ._validate import check_alpha, check_choice, check_int
from .cohort import Cohort, CohortSpec, unit_year_means
from .did import (
    Aggregate,
    DiD,
    DiDResult,
    EventStudy,
    EventStudyResult,
    StaggeredDiD,
    StaggeredResult,
)
from .effects import EffectSize, hedges_g
from .errors import (
    ArgumentTypeError,
    CpdImpactError,
    CpdImpactWarning,
    DesignError,
    EstimationError,
    InvalidArgumentError,
    InvalidValueError,
    SmallSampleWarning,
    format_rows,
    format_value,
)
from .estimator import ClusterRobust, Inference, fitted_rows, with_seed
from .records import Records, as_records

if TYPE_CHECKING:  # pragma: no cover
    from .did.staggered import PretrendWald
    from .multilevel import MultilevelDiD

__all__ = [
    "Evaluation",
    "EvaluationResult",
    "ProgrammeCost",
    "ReportOptions",
    "SecurityOptions",
    "GroupEstimate",
    "RunWarning",
    "StaggeredDetail",
    "inference_text",
    "stage_seed",
    "SEED_STAGES",
    "TWFE_COMPARISON_LABEL",
]

#: The column of each school's mean pupil records per year (times its comparison weight, with
#: a comparison design) that weights a staggered panel under ``weighting="pupils"``.
UNIT_PUPILS = "unit_mean_pupils"

#: How a two-way fixed-effects estimate shown beside a staggered headline is labelled.
TWFE_COMPARISON_LABEL = (
    "Two-way fixed effects, for comparison: biased when effects differ between cohorts or grow "
    "with exposure"
)


@dataclass(frozen=True, kw_only=True)
class ProgrammeCost:
    """What the programme cost, for the EEF cost rating (:func:`~cpdimpact.effects.eef_cost`).

    Parameters
    ----------
    pupils
        Pupils reached each year (e.g. pupils taught by trained teachers).
    total
        Cumulative cost over ``years`` in pounds; or give ``one_off`` and ``per_year``.
    one_off, per_year
        Start-up costs, and recurring costs each year, in pounds.
    years
        Years the cost is spread over (the EEF uses three).

    Examples
    --------
    >>> ProgrammeCost(pupils=600, one_off=30_000, per_year=6_000).estimate().rating
    'very low'
    """

    pupils: float
    total: float | None = None
    one_off: float = 0.0
    per_year: float = 0.0
    years: int = 3

    def __post_init__(self):
        self.estimate()  # invalid costs fail when the spec is made, not after the analysis

    def estimate(self):
        """The :class:`~cpdimpact.effects.CostEstimate`: cost per pupil per year and rating."""
        from .effects import eef_cost

        return eef_cost(
            pupils=self.pupils,
            total=self.total,
            one_off=self.one_off,
            per_year=self.per_year,
            years=self.years,
        )


@dataclass(frozen=True, kw_only=True)
class SecurityOptions:
    """The evaluator's inputs to the security (padlock) rating of the report.

    The assistant (:func:`~cpdimpact.effects.propose_padlocks`) proposes a rating from the
    design, the minimum detectable effect size (MDES), the cohort's attrition and the threats
    recorded here; the report shows each step. The evaluator has the final word: ``final``
    with a ``reason``; until then the report says the rating is a proposal.

    Parameters
    ----------
    design
        A key of :data:`~cpdimpact.effects.EEF_DESIGN_PADLOCKS` (e.g. ``"randomised"``,
        ``"well-matched comparison"``) or padlocks 0-5.
    mdes
        The design's MDES (e.g. from the power calculation at the start). ``None``: computed
        from the analysis, :math:`(t_{1-\alpha/2} + t_{0.8})` times the headline effect
        size's standard error, and labelled as computed after the fact.
    threats
        Threat to validity -> ``"low" | "moderate" | "high"``, optionally followed by the
        direction, e.g. ``{"contamination": "moderate", "missing data": "moderate inflates"}``.
    final, reason
        The evaluator's rating (0-5) and why; both or neither.
    """

    design: str | int = "well-matched comparison"
    mdes: float | None = None
    threats: Mapping[str, str] = field(default_factory=dict)
    final: int | None = None
    reason: str = ""

    def __post_init__(self):
        object.__setattr__(self, "threats", dict(self.threats))
        if (self.final is None) != (not self.reason):
            raise InvalidArgumentError(
                "security final and reason go together: give the evaluator's final rating "
                "(0-5) with the reason for it, or neither"
            )
        self.assess(mdes=self.mdes or 0.2, attrition=0.0)  # fail early on bad inputs

    def assess(self, *, mdes: float, attrition):
        """The :class:`~cpdimpact.effects.PadlockAssessment` for these inputs."""
        from .effects import propose_padlocks

        threats = {
            name: tuple(value.replace(",", " ").split()) or ("low",)
            for name, value in self.threats.items()
        }
        assessment = propose_padlocks(
            design=self.design,
            mdes=self.mdes if self.mdes is not None else mdes,
            attrition=attrition,
            threats={k: v[0] if len(v) == 1 else v for k, v in threats.items()},
        )
        if self.final is not None:
            assessment = assessment.override(self.final, reason=self.reason)
        return assessment


@dataclass(frozen=True, kw_only=True)
class ReportOptions:
    """What the published report says about the programme, and how it protects privacy.

    Parameters
    ----------
    title
        Report title.
    programme
        One-line description of the programme, shown under the title.
    suppress_below
        Counts of pupils or schools from 1 to ``suppress_below - 1`` are shown as
        ``"<{suppress_below}"`` (small-number suppression); ``0`` turns it off.
    cost
        :class:`ProgrammeCost` for the report's cost section (EEF cost per pupil per year and
        rating); ``None`` leaves the section saying the cost was not given.
    security
        :class:`SecurityOptions` for the security (padlock) section; ``None`` leaves it out.
    """

    title: str = "Impact evaluation"
    programme: str = ""
    suppress_below: int = 10
    cost: ProgrammeCost | None = None
    security: SecurityOptions | None = None

    def __post_init__(self):
        for name in ("title", "programme"):
            if not isinstance(getattr(self, name), str):
                raise ArgumentTypeError(
                    f"{name} must be text, got {format_value(getattr(self, name))}."
                )
        check_int(self.suppress_below, "suppress_below", minimum=0, hint=" Use 0 for none.")
        for name, cls in (("cost", ProgrammeCost), ("security", SecurityOptions)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, cls):
                raise ArgumentTypeError(
                    f"{name} must be a {cls.__name__} or None, got {type(value).__name__}."
                )


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """A whole evaluation, specified once: cohort, estimator, effect size and report.

    Parameters
    ----------
    cohort
        How records become a cohort (:class:`~cpdimpact.cohort.CohortSpec`).
    estimator
        The headline estimator, fitted for all pupils and for each subgroup:
        :class:`~cpdimpact.did.DiD` (fixed effects, cluster-robust errors),
        :class:`~cpdimpact.multilevel.MultilevelDiD` (random intercepts, model-based errors,
        effect size over the model's total variance) or :class:`~cpdimpact.did.StaggeredDiD`
        (group-time effects on unit-year means). ``None`` (default) chooses by design:
        ``StaggeredDiD`` when treated units start in different years, ``DiD(inference=ClusterRobust("auto"))``
        otherwise (CR2 unless at least 100 clusters hold treated rows and 100 hold none). Its
        intervals are at ``alpha`` and its bootstrap (if any) seeded from ``seed``.
    event_study
        The two-way fixed-effects (TWFE) :class:`~cpdimpact.did.EventStudy`. What it does
        depends on the headline estimator:

        * Headline ``DiD`` or ``MultilevelDiD`` (one start year, or TWFE chosen on purpose):
          this is the report's event study, with its joint pre-trend F test. ``"auto"``
          (default) fits ``EventStudy(inference=ClusterRobust("auto"))``; ``None`` skips it.
        * Headline ``StaggeredDiD``: the report's event study is always the staggered dynamic
          aggregate (group-time effects averaged by years since the start, with pointwise
          intervals, uniform bands when bootstrapped and the Callaway & Sant'Anna pre-trend
          Wald test), from the headline fit itself. ``"auto"`` and ``None`` fit no TWFE event
          study; an explicit ``EventStudy`` is fitted and shown only as a labelled comparison
          (biased when effects differ between cohorts or grow with exposure), never as the
          event study.
    level
        ``"pupil"``: fit on pupil records (a repeated cross-section within units);
        ``"unit_year"``: fit on unit-by-year means weighted by the number of pupils.
    subgroups
        0/1 pupil columns; for each, the headline estimator is refitted on pupils with value 1
        (``"fsm"``: pupils eligible for free school meals). These rows join the headline table.
    gaps
        0/1 pupil columns whose gap the report examines: the headline estimator is also
        refitted on the other pupils (e.g. non-FSM pupils) and the change in the gap (the
        subgroup's effect minus the others', as an effect size and in months) is reported
        with its interval (:class:`~cpdimpact._breakdown.GapEstimate`).
    prior_bands
        Refit the headline estimator in this many equal-count bands of prior attainment
        (the ``prior`` column; 3 gives thirds); 0 for none.
    comparison
        How the comparison group is formed from the schools that never take part: a
        :mod:`cpdimpact.comparison` spec (:class:`~cpdimpact.comparison.NearestMatching`,
        :class:`~cpdimpact.comparison.MahalanobisMatching`,
        :class:`~cpdimpact.comparison.CoarsenedExactMatching` or
        :class:`~cpdimpact.comparison.EntropyBalancing`) fitted to the schools'
        characteristics before the programme
        (:func:`~cpdimpact.comparison.school_characteristics`: attainment level and trend,
        prior attainment, FSM share, size...). Schools it leaves out are excluded (and counted
        in the flow log); every estimate weights the schools kept by their weights. ``None``
        (default): every school that never takes part, unweighted.
    weighting
        Whose average effect the headline is: ``"schools"`` or ``"pupils"``. It matters for a
        :class:`~cpdimpact.did.StaggeredDiD` on school-year means (a panel), which by default
        (``None``, or ``"schools"``) weights every school equally, whatever its size: each
        group-time effect compares mean changes of schools, and cohorts are weighted by their
        number of schools. ``"pupils"`` weights each school by its mean number of pupil
        records per year (sampling weights constant within the school, as the panel needs), so
        the estimate approximates the average effect over pupil records; with a comparison
        design the two weights multiply. The other estimators are fitted on pupil records, or
        on school-year means weighted by their pupils, and so always weight pupils
        (``"schools"`` is not available for them). The result states the weighting used
        (:attr:`EvaluationResult.estimand_weighting`).
    alpha
        1 minus the confidence level of every interval: the headline, subgroups, gaps, event
        study, staggered aggregates and effect sizes, and every label that states the level.
        Stages take it from here; a stage given a different ``alpha`` of its own (not its
        default) is refused with :class:`~cpdimpact.errors.DesignError`.
    seed
        Seed of every stochastic stage (a bootstrapped headline estimator, matching with
        ``order="random"``), recorded in the result. Each stage whose own ``seed`` is
        ``None`` receives one derived from this (:func:`stage_seed`: the headline estimator
        the seed itself, other stages a fixed child of ``numpy.random.SeedSequence(seed)``);
        a stage given its own seed keeps it. ``None``: stages draw their own seeds.
    report
        :class:`ReportOptions`.

    Notes
    -----
    Effect sizes divide the estimate in outcome points by the cohort's pupil-level SD
    (pooled within-year SD of the comparison arm), with Hedges' small-sample correction; the
    same SD serves every subgroup, so subgroup effect sizes are on one scale (``docs/sources.md``
    section "Effect-size standard deviations").

    Examples
    --------
    >>> from cpdimpact import Evaluation
    >>> from cpdimpact.datasets import city_partnership
    >>> result = Evaluation().run(city_partnership(seed=3, scale=0.25))
    >>> list(result.headline["group"])
    ['All pupils', 'FSM pupils']
    """

    cohort: CohortSpec = field(default_factory=CohortSpec)
    estimator: DiD | MultilevelDiD | StaggeredDiD | None = None
    event_study: EventStudy | Literal["auto"] | None = "auto"
    level: Literal["pupil", "unit_year"] = "pupil"
    subgroups: tuple[str, ...] = ("fsm",)
    gaps: tuple[str, ...] = ("fsm",)
    prior_bands: int = 3
    comparison: Any = None
    weighting: Literal["schools", "pupils"] | None = None
    alpha: float = 0.05
    seed: int | None = None
    report: ReportOptions = field(default_factory=ReportOptions)

    def __post_init__(self):
        check_choice(self.level, "level", ("pupil", "unit_year"))
        check_choice(self.weighting, "weighting", (None, "schools", "pupils"))
        for name, cls in (("cohort", CohortSpec), ("report", ReportOptions)):
            if not isinstance(getattr(self, name), cls):
                raise ArgumentTypeError(
                    f"{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}."
                )
        for name in ("estimator", "comparison"):
            value = getattr(self, name)
            if value is not None and not callable(getattr(value, "fit", None)):
                raise ArgumentTypeError(
                    f"{name} must be a cpdimpact spec such as "
                    f"{'DiD()' if name == 'estimator' else 'NearestMatching(...)'} or None, "
                    f"got {format_value(value)}."
                )
        for name in ("subgroups", "gaps"):
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, (getattr(self, name),))
        if (
            isinstance(self.prior_bands, bool)
            or not isinstance(self.prior_bands, int | np.integer)
            or self.prior_bands not in range(0, 11)
        ):
            raise InvalidArgumentError(
                f"prior_bands must be a whole number from 2 to 10 (0 for none), got "
                f"{format_value(self.prior_bands)}."
            )
        if self.prior_bands == 1:
            raise InvalidArgumentError(
                "prior_bands=1 is all pupils: use 0 for no bands, or 2 to 10"
            )
        check_alpha(self.alpha)
        if isinstance(self.event_study, str) and self.event_study != "auto":
            raise InvalidArgumentError(
                f"event_study must be an EventStudy, 'auto' or None, got "
                f"{format_value(self.event_study)}."
            )
        if self.seed is not None:
            # Recorded in results.json and the report, so a whole number (not a Generator).
            check_int(self.seed, "seed", minimum=0, hint=" It is recorded with the results.")
        for stage in (self.estimator, self._explicit_event_study):
            _check_stage_alpha(stage, self.alpha)
        if (
            self.level == "unit_year"
            and self.estimator is not None
            and self.estimator.data_level == "pupil"
        ):
            raise InvalidArgumentError(
                f"{type(self.estimator).__name__} models pupil records; use level='pupil'"
            )

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-ready data, each stage tagged with its class name."""
        return _spec_dict(self)

    def run(self, records: Records | Mapping[str, pd.DataFrame]) -> EvaluationResult:
        """Run every stage on ``records`` (never modified) and return the result.

        ``records`` is a :class:`~cpdimpact.records.Records` or a dict of the tables.

        Each distinct warning (:class:`~cpdimpact.errors.CpdImpactWarning`) the stages raise
        is issued once, when the run ends, attributed to the line that called ``run``, and
        kept in :attr:`EvaluationResult.warnings` (and ``results.json``), whatever the
        caller's warning filters; the filters apply when it is issued, so
        ``warnings.simplefilter("error", CpdImpactWarning)`` still makes it an error.
        """
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                # Collect every occurrence, so the result records the same warnings whatever
                # the caller's filters and whatever ran before; they are issued below.
                warnings.simplefilter("always", CpdImpactWarning)
                result = self._run(as_records(records))
        except Exception:
            _issue_once(caught, failed=True)
            raise
        return dataclasses.replace(result, warnings=_issue_once(caught, result.cohort))

    def _run(self, records: Records) -> EvaluationResult:
        comparison = self._stage_spec(self.comparison, "comparison")
        covariates = tuple(
            dict.fromkeys(
                (
                    *self.cohort.covariates,
                    *(self.estimator.covariates if self.estimator else ()),
                    *(self._explicit_event_study.covariates if self._explicit_event_study else ()),
                )
            )
        )
        cohort_spec = dataclasses.replace(self.cohort, covariates=covariates)
        cohort = cohort_spec.build(records)
        matching = None
        if comparison is not None:
            cohort, matching = apply_comparison(comparison, cohort_spec, records, cohort)
        for field_name in ("subgroups", "gaps"):
            for column in getattr(self, field_name):
                _check_flag(cohort.pupils, column, field_name)

        groups = {"All pupils": cohort.pupils}
        for column in self.subgroups:
            groups[_subgroup_label(column)] = cohort.pupils[cohort.pupils[column] == 1]
        # The first group (all pupils) fixes the effect-size SD, so every row shares one scale:
        # the model's own SD when the estimator provides one, else the cohort's pupil-level SD.
        estimator = self._stage_spec(self._estimator_for(cohort), "estimator")
        self._check_weighting(estimator)
        first = self._estimate_group("All pupils", cohort.pupils, cohort, estimator)
        sd, sd_source = (
            (first.did.effect_size_sd, first.did.effect_size_sd_source)
            if hasattr(first.did, "effect_size_sd")
            else (cohort.outcome_sd, f"pupil-level SD: {cohort.outcome_sd_source}")
        )
        first = dataclasses.replace(first, effect_size=self._effect_size(first, sd, cohort))
        estimates = [first]
        for label, pupils in list(groups.items())[1:]:
            group = self._estimate_group(label, pupils, cohort, estimator)
            estimates.append(
                dataclasses.replace(group, effect_size=self._effect_size(group, sd, cohort))
            )

        breakdown, gaps = self._breakdown(cohort, estimator, estimates, sd)

        event_study, event_note = None, ""
        event_spec = self._stage_spec(self._event_study_for(estimator), "event_study")
        if event_spec is not None:
            frame = self._frame(cohort.pupils, cohort, event_spec)
            if isinstance(estimator, StaggeredDiD):
                # A comparison only: its staggered-timing warning is the report's label, and
                # a failure (e.g. no never-treated units to separate event and calendar time)
                # must not sink the headline.
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", CpdImpactWarning)
                        event_study = _fit(self._weighted(event_spec), frame, cohort)
                except (DesignError, EstimationError) as err:
                    event_note = f"The two-way fixed-effects event study could not be fitted: {err}"
            else:
                event_study = _fit(self._weighted(event_spec), frame, cohort)
        staggered = None
        if isinstance(first.did, StaggeredResult):
            staggered = _staggered_detail(
                first.did,
                self._weighted(estimator),
                self._frame(cohort.pupils, cohort, estimator),
                event_note,
                cohort,
            )
            staggered = dataclasses.replace(
                staggered,
                arms_note=arms_behind_text(first.did, first.arms, self.report.suppress_below),
            )
        return EvaluationResult(
            evaluation=self,
            cohort=cohort,
            groups=tuple(estimates),
            event_study=event_study,
            version=__version__,
            fingerprint=records.fingerprint(),
            seed=self.seed,
            effect_size_sd=float(sd),
            effect_size_sd_source=sd_source,
            estimator=estimator,
            staggered=staggered,
            breakdown=breakdown,
            gaps=gaps,
            comparison=matching,
        )

    def _group(self, label, pupils, cohort, estimator, sd) -> GroupEstimate:
        group = self._estimate_group(label, pupils, cohort, estimator)
        return dataclasses.replace(group, effect_size=self._effect_size(group, sd, cohort))

    def _breakdown(self, cohort, estimator, estimates, sd):
        """Groups beyond the headline (the rest of each gap's pupils, prior-attainment bands)
        and the change in each gap."""
        pupils = cohort.pupils
        fitted = {g.label: g for g in estimates}
        extra: list[GroupEstimate] = []
        gaps: list[GapEstimate] = []
        for column in self.gaps:
            inside = pupils[column] == 1
            sub = fitted.get(_subgroup_label(column))
            if sub is None:
                sub = self._group(_subgroup_label(column), pupils[inside], cohort, estimator, sd)
                extra.append(sub)
            outside = pupils[column] == 0
            rest = self._group(complement_label(column), pupils[outside], cohort, estimator, sd)
            extra.append(rest)
            if sub.did is None or rest.did is None:
                continue
            joint = None
            if isinstance(estimator, DiD):
                spec = self._weighted(estimator)
                frames = tuple(
                    self._frame(pupils[mask], cohort, spec) for mask in (outside, inside)
                )
                try:
                    joint = interacted_gap(spec, frames)
                except (DesignError, EstimationError):
                    joint = None  # falls back to the independent-estimates interval, labelled
            scale = sub.effect_size.correction / sd
            gaps.append(gap_estimate(column, sub, rest, scale=scale, alpha=self.alpha, joint=joint))
        if self.prior_bands and "prior" in pupils.columns and pupils["prior"].notna().any():
            for label, mask in prior_band_masks(pupils["prior"], self.prior_bands):
                extra.append(self._group(label, pupils[mask], cohort, estimator, sd))
        return tuple(extra), tuple(gaps)

    @property
    def _explicit_event_study(self) -> EventStudy | None:
        return None if self.event_study in (None, "auto") else self.event_study

    def _event_study_for(self, estimator) -> EventStudy | None:
        """The TWFE event study to fit: the one given, or by default one unless the headline
        is staggered (whose dynamic aggregate is then the event study)."""
        if self.event_study == "auto":
            return (
                None
                if isinstance(estimator, StaggeredDiD)
                else EventStudy(inference=ClusterRobust("auto"))
            )
        return self.event_study

    def _estimator_for(self, cohort: Cohort):
        """The headline estimator: the one given, else chosen by the design."""
        if self.estimator is not None:
            return self.estimator
        if cohort.is_staggered:
            never = bool((cohort.pupils["first_treated"] == 0).any())
            return StaggeredDiD(control_group="never_treated" if never else "not_yet_treated")
        return DiD(inference=ClusterRobust("auto"))  # CR1 or CR2 by the number of treated clusters

    def _stage_spec(self, spec, stage: str):
        """``spec`` with the evaluation's ``alpha`` and, unless it has its own, its seed.

        Every stage with an ``alpha`` states its intervals at the evaluation's level; one that
        was given another level (not its default) contradicts the evaluation and is refused.
        A stage with a ``seed`` left at ``None`` receives :func:`stage_seed` of the
        evaluation's seed; a seed of its own takes precedence.
        """
        if spec is None or not dataclasses.is_dataclass(spec):
            return spec
        fields = {f.name for f in dataclasses.fields(spec)}
        changes: dict[str, Any] = {}
        if "alpha" in fields and spec.alpha != self.alpha:
            _check_stage_alpha(spec, self.alpha)
            changes["alpha"] = self.alpha
        if self.seed is not None:  # into its seed option, or its inference's (WildBootstrap)
            spec = with_seed(spec, stage_seed(self.seed, stage))
        return dataclasses.replace(spec, **changes) if changes else spec

    def _frame(self, pupils: pd.DataFrame, cohort: Cohort, spec) -> pd.DataFrame:
        """The rows an estimator sees: pupil records, or their unit-year means."""
        if fitted_rows(spec, self.level) == "pupil":
            return pupils
        if pupils is cohort.pupils:
            frame = cohort.unit_years
        else:
            frame = with_weights(unit_year_means(pupils), pupils)
        if self._per_school(spec):
            # A panel's sampling weights belong to units: each school's mean pupils per year.
            size = frame.groupby(spec.unit, sort=False)["n_pupils"].transform("mean")
            if self.comparison is not None:
                size = size * frame[WEIGHT]
            frame = frame.assign(**{UNIT_PUPILS: size.to_numpy(dtype=float)})
        return frame

    def _per_school(self, spec) -> bool:
        """Whether ``spec`` is a staggered school-year panel to be weighted by pupils."""
        panel = isinstance(spec, StaggeredDiD) and fitted_rows(spec, "pupil") == "unit_year"
        return panel and self.weighting == "pupils"

    def _check_weighting(self, estimator) -> None:
        """``weighting="schools"`` needs a headline that weights schools: a staggered panel."""
        panel = (
            isinstance(estimator, StaggeredDiD) and fitted_rows(estimator, "pupil") == "unit_year"
        )
        if self.weighting == "schools" and not panel:
            raise DesignError(
                f"Evaluation(weighting='schools') weights schools equally in a StaggeredDiD on "
                f"school-year means; {type(estimator).__name__} here is fitted on pupil "
                "records or pupil-weighted means and estimates the average over pupils. Use "
                "weighting='pupils' (or None), or estimator=StaggeredDiD()."
            )

    def _weighted(self, spec):
        """Unit-year means are weighted by their number of pupils unless told otherwise; with a
        comparison design every row also carries its school's weight; a staggered panel
        weighted by pupils carries each school's mean pupils (times its comparison weight)."""
        pupil_counts = self.level == "unit_year" and fitted_rows(spec, "any") == "any"
        if self._per_school(spec):
            if spec.weights is not None:
                raise DesignError(
                    f"{type(spec).__name__}(weights={spec.weights!r}) and "
                    "Evaluation(weighting='pupils') both weight the schools; remove one of them"
                )
            return dataclasses.replace(spec, weights=UNIT_PUPILS)
        if self.comparison is not None:
            if getattr(spec, "weights", None) is not None:
                raise DesignError(
                    f"{type(spec).__name__}(weights={spec.weights!r}) and a comparison design "
                    f"both weight the rows; remove one of them"
                )
            return dataclasses.replace(spec, weights=WEIGHT_X_PUPILS if pupil_counts else WEIGHT)
        if self.level == "unit_year" and getattr(spec, "weights", "") is None:
            return dataclasses.replace(spec, weights="n_pupils")
        return spec

    def _estimate_group(
        self, label: str, pupils: pd.DataFrame, cohort: Cohort, estimator
    ) -> GroupEstimate:
        """Fit the estimator to one group of pupils (the effect size is added by the caller)."""
        arms = cohort.arms(pupils)
        subgroup = label != "All pupils"
        # A staggered cohort may have no never-treated arm: its controls are later starters.
        needed = ["treated"] if cohort.spec.comparison == "staggered" else ["treated", "comparison"]
        if subgroup and (arms.loc[needed, "pupils"] < 2).any():
            return _not_estimated(label, arms, "an arm has fewer than two pupil records")
        frame = self._frame(pupils, cohort, estimator)
        try:
            did = _fit(self._weighted(estimator), frame, cohort)
        except (DesignError, EstimationError) as err:
            if not subgroup:
                raise
            # A subgroup that cannot be estimated must not sink the headline: say why instead.
            return _not_estimated(label, arms, str(err))
        if isinstance(did, StaggeredResult):
            arms = arms_behind(did, frame)  # the arms of the estimate, not of the cohort
        return GroupEstimate(label=label, arms=arms, did=did, effect_size=None)

    def _effect_size(self, group: GroupEstimate, sd: float, cohort: Cohort) -> EffectSize | None:
        if group.did is None:
            return None
        return hedges_g(
            group.did.estimate,
            group.did.std_error,
            sd,
            n=cohort.outcome_sd_n,
            df=group.did.df,
            alpha=self.alpha,
            label=group.label,
        )


def _fit(spec, frame: pd.DataFrame, cohort: Cohort):
    """``spec.fit(frame)``; an error names the user's columns and rows, not the cohort's
    (:func:`~cpdimpact._user_names.user_message`), and keeps its class and cause."""
    try:
        return spec.fit(frame)
    except CpdImpactError as err:
        message = user_message(str(err), cohort, frame)
        try:
            translated = type(err)(message) if message != str(err) else None
        except TypeError:  # a class that takes more than a message: keep it as raised
            translated = None
        if translated is None:
            raise
        raise translated from err


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


def _issue_once(
    caught, cohort: Cohort | None = None, *, failed: bool = False
) -> tuple[RunWarning, ...]:
    """Issue each distinct cpdimpact warning of ``caught`` once, at the caller of ``run``
    (three frames up), under the caller's filters, in the user's column names when the
    ``cohort`` is known; show other warnings as they were.

    After a failed run the error is what matters: a warning the caller's filters turn into an
    error is then not raised in its place.
    """
    distinct: dict[tuple[type[Warning], str], Warning | str] = {}
    for w in caught:
        if issubclass(w.category, CpdImpactWarning):
            text = str(w.message)
            words = text if cohort is None else user_message(text, cohort)
            distinct.setdefault((w.category, words), w.message if words == text else words)
        else:  # recorded under the caller's filters already: show it as Python would have
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
    for (category, _), message in distinct.items():
        try:
            warnings.warn(message, category, stacklevel=3)
        except Warning:
            if not failed:
                raise
    return tuple(RunWarning(category=c, message=m) for c, m in distinct)


def arms_behind(fit: StaggeredResult, frame: pd.DataFrame) -> pd.DataFrame:
    """Schools, units, pupil records and school-years behind a staggered estimate, by arm.

    The treated arm holds each start cohort's rows in the years of its post-treatment cells
    that were estimated and in their base years; the comparison arm holds the rows of those
    cells' controls (never-treated or not-yet-treated units) in the same years. A school that
    starts late can serve both arms (a control before it starts). ``frame`` is the data the
    fit was given; on unit-year means ``pupils`` sums their ``n_pupils``, on pupil rows it
    counts them. Also carries the
    years of each arm (``first_year``, ``last_year``).
    """
    used = fit.rows_behind
    table = {}
    for arm in ("treated", "comparison"):
        rows = frame.iloc[used.index[used[arm].to_numpy()]]
        means = "n_pupils" in rows and "pupil" not in rows  # unit-year means, not pupil rows
        pupils = rows["n_pupils"].sum() if means else len(rows)
        years = rows[fit.spec.time]
        table[arm] = {
            "schools": rows["school"].nunique()
            if "school" in rows
            else rows[fit.spec.unit].nunique(),
            "units": rows[fit.spec.unit].nunique() if fit.spec.unit in rows else 0,
            "pupils": int(pupils),
            "school_years": len(rows[["school", fit.spec.time]].drop_duplicates())
            if "school" in rows
            else len(rows),
            "first_year": int(years.min()) if len(rows) else 0,
            "last_year": int(years.max()) if len(rows) else 0,
        }
    out = pd.DataFrame.from_dict(table, orient="index")
    out.index.name = "arm"
    return out


def arms_behind_text(fit: StaggeredResult, arms: pd.DataFrame, threshold: int = 0) -> str:
    """One sentence naming the schools and years behind a staggered estimate, by arm (school
    counts from 1 to ``threshold - 1`` shown as ``"<threshold"``)."""
    gt = fit.group_time
    post = gt[gt["time"] >= gt["group"] - fit.spec.anticipation]
    cohorts = ", ".join(str(int(g)) for g in sorted(set(post["group"])))
    controls = fit.spec.control_group.replace("_", "-")

    def arm(name: str) -> str:
        row = arms.loc[name]
        span = (
            f"{row['first_year']}"
            if row["first_year"] == row["last_year"]
            else f"{row['first_year']}-{row['last_year']}"
        )
        return (
            f"{_hide(int(row['schools']), threshold)} schools in {span} "
            f"({_hide(int(row['school_years']), threshold)} school-years, "
            f"{_hide(int(row['pupils']), threshold)} pupil records)"
        )

    missing = sorted(set(fit.cohort_share) - set(post["group"]))
    left_out = (
        f" Start cohort{'s' if len(missing) > 1 else ''} "
        f"{', '.join(str(int(g)) for g in missing)} "
        f"{'have' if len(missing) > 1 else 'has'} no estimated effect after the start (no "
        f"{controls} schools to compare with) and {'are' if len(missing) > 1 else 'is'} not in "
        "the estimate."
        if missing
        else ""
    )
    return (
        f"The estimate compares the schools starting in {cohorts} after their start with "
        f"{controls} schools over the same years: treated: {arm('treated')}, counting each "
        f"cohort's base year; comparison ({controls}): {arm('comparison')}. A school can serve "
        f"in both arms, as a comparison before it starts.{left_out}"
    )


def estimand_weighting(evaluation: Evaluation, estimator) -> str:
    """Whose average effect ``estimator`` estimates in ``evaluation``, in words."""
    spec = evaluation._weighted(estimator)
    design = " and by the comparison design's weights" if evaluation.comparison else ""
    if isinstance(spec, StaggeredDiD) and fitted_rows(spec, "pupil") == "unit_year":
        if spec.weights == UNIT_PUPILS:
            return (
                "pupils: each school is weighted by its mean number of pupil records per year"
                f"{design}, in each group-time effect and in the cohort shares that average "
                "them, so the estimate approximates the average effect over pupil records"
            )
        if spec.weights is not None:
            return f"schools weighted by {spec.weights!r} (sampling weights)"
        return (
            "schools: every school counts equally whatever its size, in each group-time effect "
            "(mean changes of school-year means) and in the cohort shares that average them "
            "(numbers of schools); Evaluation(weighting='pupils') weights schools by their pupils"
        )
    if getattr(spec, "weights", None) not in (None, "n_pupils", WEIGHT, WEIGHT_X_PUPILS):
        return f"pupil records weighted by {spec.weights!r}"
    return f"pupils: every analysed pupil record counts once{design}"


def _not_estimated(label: str, arms: pd.DataFrame, reason: str) -> GroupEstimate:
    note = f"{label}: not estimated: {reason}"
    warnings.warn(note, SmallSampleWarning, stacklevel=4)
    return GroupEstimate(label=label, arms=arms, did=None, effect_size=None, note=note)


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
    #: The schools and years behind the headline estimate, by arm (:func:`arms_behind_text`).
    arms_note: str = ""

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

    def to_json_dict(self) -> dict[str, Any]:
        """The aggregates, the pre-trend test and the TWFE comparison as plain data."""

        def aggregate(kind):
            agg = getattr(self, kind)
            lower, upper = agg.conf_int()
            return {
                "estimate": agg.estimate,
                "std_error": agg.std_error,
                "ci_lower": lower,
                "ci_upper": upper,
                "alpha": agg.alpha,
                "pieces": self.pieces(kind).to_dict(orient="records"),
            }

        pre = self.pretrend
        twfe = self.twfe
        return {
            "dynamic": aggregate("dynamic"),
            "group": aggregate("group"),
            "calendar": aggregate("calendar"),
            "uniform_bands": self.uniform_bands,
            "arms_behind": self.arms_note,
            "pretrend": None
            if pre is None
            else {"statistic": pre.statistic, "df": pre.df, "p_value": pre.p_value},
            "comparison_twfe": {
                "label": TWFE_COMPARISON_LABEL,
                "did": None if twfe is None else twfe.to_frame().to_dict(orient="records"),
                "df": None if twfe is None else twfe.df,
                "n_clusters": None if twfe is None else twfe.n_clusters,
                "cluster": None if twfe is None else twfe.cluster,
                "n_obs": None if twfe is None else twfe.n_obs,
                "n_units": None if twfe is None else twfe.n_units,
                "note": self.twfe_note,
                "event_study_note": self.twfe_event_study_note,
            },
        }


def _staggered_detail(
    fit: StaggeredResult,
    spec: StaggeredDiD,
    rows: pd.DataFrame,
    event_study_note: str = "",
    cohort: Cohort | None = None,
) -> StaggeredDetail:
    """Aggregates of a staggered fit and the TWFE comparison on the same rows."""
    twfe, note = None, ""
    try:
        with warnings.catch_warnings():
            # The staggered-timing and few-cluster warnings describe a comparison, not the
            # headline: the report labels the comparison instead.
            warnings.simplefilter("ignore", CpdImpactWarning)
            twfe_spec = DiD(
                outcome=spec.outcome,
                unit=spec.unit,
                time=spec.time,
                cluster=spec.cluster or spec.unit,
                alpha=spec.alpha,
                weights=spec.weights,
            )
            twfe = twfe_spec.fit(rows) if cohort is None else _fit(twfe_spec, rows, cohort)
    except (DesignError, EstimationError) as err:
        note = f"two-way fixed effects could not be fitted for comparison: {err}"
    return StaggeredDetail(
        dynamic=fit.aggregate("dynamic"),
        group=fit.aggregate("group"),
        calendar=fit.aggregate("calendar"),
        pretrend=fit.pretrend,
        uniform_bands=spec.n_bootstrap > 0,
        twfe=twfe,
        twfe_note=note,
        twfe_event_study_note=event_study_note,
    )


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

    # ------------------------------------------------------------------ views
    @property
    def headline(self) -> pd.DataFrame:
        """EEF-style headline table: one row per group.

        Columns: ``group, effect_size, ci_lower, ci_upper, months, pupils_treated,
        pupils_comparison, schools_treated, schools_comparison, estimate, std_error``
        (``estimate`` and ``std_error`` in outcome points).
        """
        return _group_rows(self.groups)

    @property
    def estimand_weighting(self) -> str:
        """Whose average effect the headline is (schools or pupil records), in words."""
        return estimand_weighting(self.evaluation, self.estimator)

    @property
    def subgroup_effects(self) -> pd.DataFrame:
        """Every group's effect: the headline rows, then the other pupils of each gap and the
        prior-attainment bands (columns as :attr:`headline`)."""
        return _group_rows((*self.groups, *self.breakdown))

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
        return _attrition(self.cohort, "pupils")

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
        if options is None:
            return None
        attrition = self.attrition
        return options.assess(
            mdes=self.analysis_mdes, attrition=0.0 if attrition is None else attrition.overall
        )

    @property
    def analysis_mdes(self) -> float:
        """The MDES implied by the headline's SE at 80% power and the report's alpha."""
        from scipy import stats

        es = self.effect_size
        df = es.df if es.df is not None and math.isfinite(es.df) else None
        dist = stats.norm if df is None else stats.t(df)
        multiplier = dist.ppf(1 - self.evaluation.alpha / 2) + dist.ppf(0.8)
        return float(multiplier * es.std_error)

    @property
    def effect_size(self) -> EffectSize:
        """The headline (all pupils) effect size."""
        return self.groups[0].effect_size

    def to_frame(self) -> pd.DataFrame:
        """Tidy effect sizes, one row per group (``term`` is the group)."""
        frames = [g.effect_size.to_frame() for g in self.groups if g.effect_size is not None]
        return pd.concat(frames, ignore_index=True)

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Effect-size intervals at level ``1 - alpha`` (default the evaluation's alpha),
        indexed by group."""
        alpha = self.evaluation.alpha if alpha is None else alpha
        frames = [g.effect_size.conf_int(alpha) for g in self.groups if g.effect_size is not None]
        return pd.concat(frames)

    def summary(self) -> Summary:
        """Printable headline."""
        es = self.effect_size
        did = self.groups[0].did
        level = f"{100 * (1 - es.alpha):g}%"
        facts = (
            (
                "effect size",
                f"{es.estimate:.2f} ({level} CI {es.ci_lower:.2f} to {es.ci_upper:.2f})",
            ),
            ("months of progress", str(es.months)),
            ("estimate (outcome points)", f"{did.estimate:.3f} (SE {did.std_error:.3f})"),
            ("inference", inference_text(did)),
            ("effect-size SD", f"{self.effect_size_sd:.3f} ({self.effect_size_sd_source})"),
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
        return Summary(title=self.evaluation.report.title, facts=facts, table=self.headline)

    def plot(self, *, ax=None):
        """The report's event-study figure (or the headline effect size without one).

        For a staggered headline: the dynamic aggregate with pointwise intervals and, when
        bootstrapped, uniform bands.
        """
        if self.staggered is not None:
            from .report.evaluation import plot_staggered_event_study

            return plot_staggered_event_study(self.staggered, ax=ax)
        if self.event_study is not None:
            return self.event_study.plot(ax=ax)
        return self.effect_size.plot(ax=ax)

    # ------------------------------------------------------------------ outputs
    def to_json_dict(self) -> dict[str, Any]:
        """``results.json`` content: spec, version, fingerprint, seed and every number reported.

        Published counts (headline, flow, exclusions, balance) obey the report's small-number
        suppression (``"<10"`` strings); a group's ``n_obs`` is ``"suppressed"`` when one of
        its arm counts is (see ``docs/report.md``).

        Floats are rounded to 8 significant digits so the file is byte-identical across
        machines whose floating-point arithmetic differs only in the last bits (variance
        parameters found by an optimiser agree to about 1e-9 relative, well inside that).
        """
        from .report.evaluation import published_json_tables

        cohort = self.cohort
        published = published_json_tables(self)
        payload = {
            "cpdimpact_version": self.version,
            "data_fingerprint": self.fingerprint,
            "seed": self.seed,
            "spec": self.evaluation.to_dict(),
            "estimator_used": _spec_dict(self.estimator),
            "estimand_weighting": self.estimand_weighting,
            "cohort": {
                "years": list(cohort.years),
                "start_years": list(cohort.start_years),
                "outcome_sd": cohort.outcome_sd,
                "effect_size_sd": self.effect_size_sd,
                "effect_size_sd_source": self.effect_size_sd_source,
                "outcome_sd_n": cohort.outcome_sd_n,
                "outcome_sd_source": cohort.outcome_sd_source,
                "flow": published["flow"],
                "allocated": published["allocated"],
                "exclusions": published["exclusions"],
                "balance": published["balance"],
                "balance_allocated": published["balance_allocated"],
                "attrition": published["attrition"],
                "dip_check": _dip_json(cohort, self.evaluation.report.suppress_below),
            },
            "headline": published["headline"],
            "subgroups": {
                "groups": published["subgroups"],
                "gaps": [g.to_dict() for g in self.gaps],
            },
            "effect_size_variants": self.effect_size_variants.to_dict(orient="records"),
            "comparison": None
            if self.comparison is None
            else _comparison_json(self.comparison, self.evaluation.report.suppress_below),
            "warnings": [w.to_dict() for w in self.warnings],
            "cost": None if self.cost is None else self.cost.to_dict(),
            "security": None if self.security is None else self.security.to_dict(),
            "estimates": {
                g.label: (
                    None
                    if g.did is None
                    else {
                        "did": g.did.to_frame().to_dict(orient="records"),
                        "df": g.did.df,
                        "n_clusters": g.did.n_clusters,
                        "n_obs": published["n_obs"][g.label],
                        "cov_type": g.did.cov_type,
                        "effect_size": g.effect_size.to_frame().to_dict(orient="records"),
                    }
                )
                for g in self.groups
            },
        }
        if self.event_study is not None:
            es = self.event_study
            twfe_event_study = {
                "coefficients": es.coefficients.reset_index().to_dict(orient="records"),
                "pretrend": None
                if es.pretrend is None
                else {
                    "statistic": es.pretrend.statistic,
                    "df_num": es.pretrend.df_num,
                    "df_denom": es.pretrend.df_denom,
                    "p_value": es.pretrend.p_value,
                },
            }
            if self.staggered is None:
                payload["event_study"] = twfe_event_study
        if self.staggered is not None:
            payload["staggered"] = self.staggered.to_json_dict()
            if self.event_study is not None:
                payload["staggered"]["comparison_twfe"]["event_study"] = twfe_event_study
        return _jsonable(payload)

    def to_json(self) -> str:
        """``results.json`` as text (sorted keys, two-space indent, trailing newline)."""
        return json.dumps(self.to_json_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def report(self):
        """The report as a :class:`cpdimpact.report.Document`."""
        from .report.evaluation import evaluation_report

        return evaluation_report(self)

    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write ``report.html``, ``report.md``, ``results.json`` and the figures to ``folder``.

        Returns the written paths by name. For the same input and seed, ``results.json`` and
        ``report.md`` are byte-identical across runs and machines.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = dict(self.report().save(folder))
        results = folder / "results.json"
        results.write_text(self.to_json(), encoding="utf-8")
        paths["results.json"] = results
        return paths


# ---------------------------------------------------------------------- helpers
#: The key of each stochastic stage in the seed derivation of :func:`stage_seed`. Fixed per
#: stage (never renumbered), so adding a stage never shifts another stage's draws.
SEED_STAGES = {"estimator": 0, "comparison": 1, "event_study": 2}


def _check_stage_alpha(spec, alpha: float) -> None:
    """A stage's own ``alpha``, if changed from its default, must be the evaluation's."""
    if not dataclasses.is_dataclass(spec):
        return
    default = {f.name: f.default for f in dataclasses.fields(spec)}.get("alpha", alpha)
    if spec.alpha in (alpha, default):
        return
    name = type(spec).__name__
    raise DesignError(
        f"{name}(alpha={spec.alpha:g}) contradicts Evaluation(alpha={alpha:g}): the "
        f"evaluation's alpha sets every interval. Give the level once, as "
        f"Evaluation(alpha={spec.alpha:g}) ([evaluation] alpha in a spec file), and leave "
        f"{name}'s alpha unset"
    )


def stage_seed(seed: int, stage: str) -> int:
    """The seed an evaluation with ``seed`` gives one of its stochastic stages.

    The headline estimator (fitted for all pupils and every subgroup) receives ``seed``
    itself, so its bootstrap equals a direct fit with ``seed=seed``; every other stage the
    first 32-bit word of ``numpy.random.SeedSequence(seed, spawn_key=(key,))``, i.e. of the
    ``key``-th child of ``SeedSequence(seed).spawn``, with ``key`` from :data:`SEED_STAGES`.
    """
    key = SEED_STAGES[stage]
    if key == 0:
        return seed
    return int(np.random.SeedSequence(seed, spawn_key=(key,)).generate_state(1, np.uint32)[0])


def inference_text(did) -> str:
    """One sentence on how a headline estimate's uncertainty was computed."""
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


def _hide(n, threshold: int):
    """A count as published: ``"<threshold"`` from 1 to ``threshold - 1``."""
    return f"<{threshold}" if threshold and isinstance(n, int) and 1 <= n < threshold else n


def _dip_json(cohort: Cohort, threshold: int) -> dict[str, Any] | None:
    """The selection-on-a-dip check, its school counts suppressed like the rest."""
    check = getattr(cohort, "dip_check", None)
    if check is None:
        return None
    out = check.to_dict()
    for row in out["cohorts"]:
        for key in ("n_treated", "n_comparison"):
            if key in row:
                row[key] = _hide(row[key], threshold)
    return out


def _comparison_json(weights, threshold: int) -> dict[str, Any]:
    """The comparison design's weights summary, its school counts suppressed like the rest."""
    out = weights.to_dict()
    out["counts"] = {
        g: {k: _hide(v, threshold) for k, v in row.items()} for g, row in out["counts"].items()
    }
    for row in out["balance"]:
        for key in ("n_treated", "n_control"):
            if key in row:
                row[key] = _hide(row[key], threshold)
    return out


def _group_rows(groups) -> pd.DataFrame:
    """One row per group: effect size, interval, months, arm counts and the estimate."""
    rows = []
    for g in groups:
        es = g.effect_size
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
            }
        )
    return pd.DataFrame(rows)


def _attrition(cohort: Cohort, level: str):
    """Attrition from the cohort's allocated sample, or ``None`` without allocation rows."""
    from .effects import attrition_rates

    allocated = cohort.flow.allocated
    if allocated is None or (allocated[level] == 0).any():
        return None  # e.g. a roll-out in which every unit takes part: no comparison arm
    return attrition_rates(cohort, level=level)


def _check_flag(pupils: pd.DataFrame, column: str, field_name: str) -> None:
    """A subgroup or gap column must exist and hold 0/1."""
    what = {"subgroups": "subgroup", "gaps": "gap"}[field_name]
    if column not in pupils.columns:
        raise CpdImpactError(
            f"{what} column {column!r} is not in the pupils table; remove it from "
            f"Evaluation({field_name}=...) or add the column"
        )
    values = pupils[column].dropna()
    if not values.isin([0, 1]).all():
        bad = values.index[~values.isin([0, 1])]
        raise InvalidValueError(
            f"{what} column {column!r} must be 0/1 (1 marks the subgroup); "
            f"{format_rows(bad)} of the analysed pupils hold "
            f"{', '.join(map(repr, values.loc[bad[:3]].tolist()))}. Recode it first."
        )


def _subgroup_label(column: str) -> str:
    return {"fsm": "FSM pupils", "sen": "SEN pupils", "eal": "EAL pupils"}.get(
        column, f"{column} = 1"
    )


def _spec_dict(spec) -> dict[str, Any]:
    if isinstance(spec, Inference):  # its own "kind" field would clash with the class's key
        return spec.to_dict()
    out: dict[str, Any] = {"kind": type(spec).__name__}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        out[f.name] = _spec_dict(value) if dataclasses.is_dataclass(value) else value
    return out


def _jsonable(value):
    """Plain JSON types with floats rounded to 8 significant digits; NaN becomes null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or value is pd.NA or isinstance(value, str | bool):
        return None if value is pd.NA else value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        if not math.isfinite(value):
            return None
        return float(f"{value:.8g}") if value != 0 else 0.0
    if isinstance(value, dict | list):
        return value
    if dataclasses.is_dataclass(value):
        return _spec_dict(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)
