"""The specification of an evaluation: what to run, once, as frozen data.

:class:`Evaluation` names every stage (cohort, estimator, event study, subgroups and gaps,
comparison design, weighting, ``alpha``, seed) and the report's options
(:class:`ReportOptions`, with :class:`ProgrammeCost` and :class:`SecurityOptions`).
``Evaluation(...).run(records)`` runs the stages of :mod:`cpdimpact.evaluation.stages` and
returns an :class:`~cpdimpact.evaluation.result.EvaluationResult`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .._user_names import user_message
from .._validate import check_alpha, check_choice, check_int
from ..cohort import Cohort, CohortSpec
from ..did import DiD, EventStudy, StaggeredDiD
from ..errors import (
    ArgumentTypeError,
    CpdImpactWarning,
    InvalidArgumentError,
    format_value,
)
from ..estimator import Inference, fitted_rows
from ..records import Records, as_records
from .result import EvaluationResult, RunWarning
from .stages import check_stage_alpha, evaluate, explicit_event_study

if TYPE_CHECKING:  # pragma: no cover
    from ..multilevel import MultilevelDiD

__all__ = ["Evaluation", "ProgrammeCost", "ReportOptions", "SecurityOptions", "spec_dict"]


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
        from ..effects import eef_cost

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
        from ..effects import propose_padlocks

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
        ``"unit_year"``: fit on unit-by-year means weighted by the number of pupils. It applies
        to estimators that take either (``data_level="any"``: ``DiD``, ``EventStudy``); a
        :class:`~cpdimpact.did.StaggeredDiD` panel is always fitted on school-year means,
        weighted as ``weighting`` says, whatever the level.
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
        ``None`` receives one derived from this (:func:`~cpdimpact.evaluation.stages.stage_seed`: the headline estimator
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
        for stage in (self.estimator, explicit_event_study(self)):
            check_stage_alpha(stage, self.alpha)
        if (
            self.level == "unit_year"
            and self.estimator is not None
            and fitted_rows(self.estimator, self.level) == "pupil"
        ):
            raise InvalidArgumentError(
                f"{type(self.estimator).__name__} models pupil records; use level='pupil'"
            )

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-ready data, each stage tagged with its class name."""
        return spec_dict(self)

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
                result = evaluate(self, as_records(records))
        except Exception:
            _issue_once(caught, failed=True)
            raise
        return dataclasses.replace(result, warnings=_issue_once(caught, result.cohort))


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


def spec_dict(spec) -> dict[str, Any]:
    """A spec as plain JSON-ready data, each stage (a dataclass) tagged with its class name."""
    if isinstance(spec, Inference):  # its own "kind" field would clash with the class's key
        return spec.to_dict()
    out: dict[str, Any] = {"kind": type(spec).__name__}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        out[f.name] = spec_dict(value) if dataclasses.is_dataclass(value) else value
    return out
