"""The stages of an evaluation, as public functions of the spec.

:meth:`Evaluation.run <cpdimpact.evaluation.spec.Evaluation.run>` is :func:`evaluate`:

1. :func:`build_cohort`: the cohort (with every covariate a stage needs) and, with a
   comparison design, the schools it keeps and their weights;
2. :func:`choose_estimator`: the headline estimator given, or the one the design calls for;
3. :func:`configure`: the evaluation's ``alpha`` and seed (:func:`stage_seed`) given to a
   stage; :func:`weighted`: the weights the evaluation's level, comparison design and
   ``weighting`` call for; :func:`analysis_rows`: the rows the estimator sees (pupil records
   or unit-year means);
4. :func:`fit_group`: the estimator fitted to each group of pupils (all pupils, subgroups,
   the rest of each gap, prior-attainment bands);
5. :func:`effect_size`: each estimate in effect-size units, on the SD of
   :func:`effect_size_sd` (one scale for every group);
6. :func:`fit_event_study` and :func:`staggered_detail`: the event study, and what a
   staggered headline adds.

:func:`cpdimpact.planning.diagnose` runs the same stages on simulated records.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import __version__
from .._breakdown import (
    complement_label,
    gap_estimate,
    interacted_gap,
    prior_band_masks,
    subgroup_label,
)
from .._comparison_stage import WEIGHT, WEIGHT_X_PUPILS, apply_comparison, with_weights
from .._user_names import user_message
from ..cohort import Cohort, CohortSpec, unit_year_means
from ..did import DiD, EventStudy, StaggeredDiD, StaggeredResult
from ..effects import EffectSize, hedges_g
from ..errors import (
    CpdImpactError,
    CpdImpactWarning,
    DesignError,
    EstimationError,
    InvalidValueError,
    SmallSampleWarning,
    format_rows,
)
from ..estimator import ClusterRobust, WildBootstrap, fitted_rows, with_seed
from ..published import DISADVANTAGED, FIGURE_PUPILS, PublishedRecords
from ..records import Records
from .result import EvaluationResult, GroupEstimate, StaggeredDetail, rows_where

if TYPE_CHECKING:  # pragma: no cover
    from .spec import Evaluation

__all__ = [
    "SEED_STAGES",
    "UNIT_PUPILS",
    "analysis_rows",
    "arms_behind",
    "breakdown",
    "build_cohort",
    "check_flag",
    "check_stage_alpha",
    "check_weighting",
    "choose_estimator",
    "cohort_spec",
    "configure",
    "effect_size",
    "effect_size_sd",
    "estimand_weighting",
    "estimate_group",
    "evaluate",
    "event_study_for",
    "event_study_words",
    "explicit_event_study",
    "fit_event_study",
    "fit_group",
    "fit_stage",
    "for_records",
    "subgroup_rows",
    "stage_seed",
    "staggered_detail",
    "weighted",
]

#: The column of each school's mean pupil records per year (times its comparison weight, with
#: a comparison design) that weights a staggered panel under ``weighting="pupils"``.
UNIT_PUPILS = "unit_mean_pupils"

#: The key of each stochastic stage in the seed derivation of :func:`stage_seed`. Fixed per
#: stage (never renumbered), so adding a stage never shifts another stage's draws.
SEED_STAGES = {"estimator": 0, "comparison": 1, "event_study": 2}


# ---------------------------------------------------------------------- the whole run
def evaluate(evaluation: Evaluation, records: Records | PublishedRecords) -> EvaluationResult:
    """Every stage of ``evaluation`` on ``records``, in order (warnings are the caller's:
    :meth:`Evaluation.run <cpdimpact.evaluation.spec.Evaluation.run>` collects them)."""
    evaluation = for_records(evaluation, records)
    cohort, matching = build_cohort(evaluation, records)
    # The first group (all pupils) fixes the effect-size SD, so every row shares one scale:
    # the model's own SD when the estimator provides one, else the cohort's pupil-level SD.
    estimator = configure(evaluation, choose_estimator(evaluation, cohort), "estimator")
    check_weighting(evaluation, estimator)
    first = fit_group(evaluation, "All pupils", cohort.pupils, cohort, estimator)
    sd, sd_source = effect_size_sd(first.did, cohort)
    estimates = [_with_effect_size(evaluation, first, sd, cohort)]
    for column in evaluation.subgroups:
        pupils = subgroup_rows(evaluation, cohort, estimator, column, 1)
        estimates.append(
            estimate_group(evaluation, subgroup_label(column), pupils, cohort, estimator, sd)
        )
    extra, gaps = breakdown(evaluation, cohort, estimator, estimates, sd)
    event_study, event_note = fit_event_study(evaluation, estimator, cohort)
    staggered = None
    if isinstance(first.did, StaggeredResult):
        staggered = staggered_detail(
            first.did,
            weighted(evaluation, estimator),
            analysis_rows(evaluation, cohort.pupils, cohort, estimator),
            event_note,
            cohort,
        )
    return EvaluationResult(
        evaluation=evaluation,
        cohort=cohort,
        groups=tuple(estimates),
        event_study=event_study,
        version=__version__,
        fingerprint=records.fingerprint(),
        seed=evaluation.seed,
        effect_size_sd=float(sd),
        effect_size_sd_source=sd_source,
        estimator=estimator,
        staggered=staggered,
        breakdown=extra,
        gaps=gaps,
        comparison=matching,
        estimand_weighting=estimand_weighting(evaluation, estimator, cohort),
    )


def for_records(evaluation: Evaluation, records) -> Evaluation:
    """``evaluation`` as it runs on ``records``: unchanged for pupil records; for published
    figures (:class:`~cpdimpact.published.PublishedRecords`) fitted on the unit-year figures
    weighted by their pupils (``level="unit_year"``, a staggered panel
    ``weighting="pupils"`` unless told otherwise), the subgroups and gaps those of the
    published disadvantaged split (the default ``("fsm",)`` means it; none without one), and
    no prior-attainment bands; a synthetic control or synthetic DiD left at its default
    columns reads each unit and its programme years (``unit="unit"``,
    ``treatment="exposed"``). Estimators that need pupil records and comparison designs
    (which match schools on their pupils' records) are refused with the alternative."""
    if not isinstance(records, PublishedRecords):
        return evaluation
    estimator = evaluation.estimator
    if estimator is not None and getattr(estimator, "data_level", "any") == "pupil":
        raise DesignError(
            f"{type(estimator).__name__} is fitted on pupil records; published figures are "
            "school or area means. Use DiD or StaggeredDiD (fitted on the figures weighted by "
            "their pupils), or SyntheticControl / SyntheticDiD for one treated area."
        )
    if evaluation.comparison is not None:
        raise DesignError(
            f"{type(evaluation.comparison).__name__} matches schools on their pupils' records, "
            "which published figures do not have. Leave comparison=None (every school that "
            "never takes part), or choose donors with SyntheticControl / SyntheticDiD."
        )
    if getattr(estimator, "effect_scale", "") == "area_mean":
        # synthetic control / DiD read the cohort's rows: each unit, and its programme years
        changes = {"unit": "unit"} if estimator.unit == "area" else {}
        if estimator.treatment == "treated":
            changes["treatment"] = "exposed"
        estimator = dataclasses.replace(estimator, **changes)
    split = "disadvantaged" in records.groups and "not disadvantaged" in records.groups

    def published(columns, name):
        if tuple(columns) == _DEFAULT_SUBGROUPS:
            return (DISADVANTAGED,) if split else ()
        wrong = [c for c in columns if c != DISADVANTAGED]
        if wrong or (columns and not split):
            raise DesignError(
                f"{name}={tuple(columns)!r}: published figures are split only into "
                "disadvantaged and other pupils ('disadvantaged'"
                + ("" if split else ", which these figures do not publish")
                + f"). Use {name}=('disadvantaged',)"
                + (" or ()" if split else "; give ()")
                + "."
            )
        return tuple(columns)

    return dataclasses.replace(
        evaluation,
        estimator=estimator,
        level="unit_year",
        weighting=evaluation.weighting or "pupils",
        subgroups=published(evaluation.subgroups, "subgroups"),
        gaps=published(evaluation.gaps, "gaps"),
        prior_bands=0,
    )


#: The default subgroups and gaps of an evaluation (FSM pupils), which on published figures
#: mean the disadvantaged split DfE publishes.
_DEFAULT_SUBGROUPS = ("fsm",)


# ---------------------------------------------------------------------- 1. the cohort
def cohort_spec(evaluation: Evaluation) -> CohortSpec:
    """The evaluation's cohort spec, with every covariate its estimators adjust for."""
    explicit = explicit_event_study(evaluation)
    covariates = tuple(
        dict.fromkeys(
            (
                *evaluation.cohort.covariates,
                *(getattr(evaluation.estimator, "covariates", ()) or ()),
                *(explicit.covariates if explicit else ()),
            )
        )
    )
    return dataclasses.replace(evaluation.cohort, covariates=covariates)


def build_cohort(evaluation: Evaluation, records: Records) -> tuple[Cohort, Any]:
    """The cohort and the comparison design's weights (``None`` without a design).

    With a comparison design the cohort is rebuilt on the schools the design keeps
    (:func:`~cpdimpact._comparison_stage.apply_comparison`). The subgroup and gap columns are
    checked (:func:`check_flag`).
    """
    comparison = configure(evaluation, evaluation.comparison, "comparison")
    spec = cohort_spec(evaluation)
    cohort = spec.build(records)
    matching = None
    if comparison is not None:
        cohort, matching = apply_comparison(comparison, records, cohort)
    if cohort.published is None:
        for field_name in ("subgroups", "gaps"):
            for column in getattr(evaluation, field_name):
                check_flag(cohort.pupils, column, field_name)
    return cohort, matching


def check_flag(pupils: pd.DataFrame, column: str, field_name: str) -> None:
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


# ---------------------------------------------------------------------- 2. the estimator
def choose_estimator(evaluation: Evaluation, cohort):
    """The headline estimator: the one given, else chosen by the design."""
    if evaluation.estimator is not None:
        return evaluation.estimator
    if cohort.is_staggered:
        never = bool((cohort.pupils["first_treated"] == 0).any())
        return StaggeredDiD(control_group="never_treated" if never else "not_yet_treated")
    return DiD(inference=ClusterRobust("auto"))  # CR1 or CR2 by the number of treated clusters


def explicit_event_study(evaluation: Evaluation) -> EventStudy | None:
    """The event study the evaluation was given (``None`` for ``"auto"`` or none)."""
    return None if evaluation.event_study in (None, "auto") else evaluation.event_study


def event_study_for(evaluation: Evaluation, estimator) -> EventStudy | None:
    """The TWFE event study to fit: the one given, or by default one unless the headline
    is staggered (whose dynamic aggregate is then the event study)."""
    if evaluation.event_study == "auto":
        if isinstance(estimator, StaggeredDiD):
            return None
        return EventStudy(inference=ClusterRobust("auto"))
    return evaluation.event_study


# ---------------------------------------------------------------------- 3. configuration
def check_stage_alpha(spec, alpha: float) -> None:
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


def configure(evaluation: Evaluation, spec, stage: str):
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
    if "alpha" in fields and spec.alpha != evaluation.alpha:
        check_stage_alpha(spec, evaluation.alpha)
        changes["alpha"] = evaluation.alpha
    spec = dataclasses.replace(spec, **changes) if changes else spec
    if evaluation.seed is None:
        return spec
    # into its seed option, or its inference's (a WildBootstrap); its own seed is kept
    return with_seed(spec, stage_seed(evaluation.seed, stage))


def _panel(spec) -> bool:
    """Whether ``spec`` is a staggered estimator on a school-year panel (unit-year means)."""
    return isinstance(spec, StaggeredDiD) and fitted_rows(spec, "pupil") == "unit_year"


def _per_school(evaluation: Evaluation, spec) -> bool:
    """Whether ``spec`` is a staggered school-year panel to be weighted by pupils."""
    return _panel(spec) and evaluation.weighting == "pupils"


def _on_means(evaluation: Evaluation, spec) -> bool:
    """Whether ``spec`` is fitted on unit-year means rather than pupil records."""
    return fitted_rows(spec, evaluation.level) == "unit_year"


def check_weighting(evaluation: Evaluation, estimator) -> None:
    """``weighting="schools"`` needs a headline that weights schools: a staggered panel. A
    logistic headline (``family="binomial"``) is refused: the evaluation reports a pass/fail
    outcome in percentage points, from the linear probability model, and its tables, effect
    sizes and report read the headline in those units, not as a log odds ratio."""
    family = getattr(estimator, "family", "gaussian")
    if family != "gaussian":
        raise DesignError(
            f"{type(estimator).__name__}(family={family!r}) gives a log odds ratio, which "
            "the evaluation does not report yet: it reports a pass/fail outcome in percentage "
            "points (a linear probability model), with the odds ratio and Cox effect size "
            f"converted from them. Leave family unset here; fit {type(estimator).__name__}("
            f"family={family!r}) on the pupils' 0/1 outcome directly for the odds ratio and "
            "the marginal percentage points (docs/multilevel_binary.md)."
        )
    if evaluation.weighting == "schools" and not _panel(estimator):
        raise DesignError(
            f"Evaluation(weighting='schools') weights schools equally in a StaggeredDiD on "
            f"school-year means; {type(estimator).__name__} here is fitted on pupil "
            "records or pupil-weighted means and estimates the average over pupils. Use "
            "weighting='pupils' (or None), or estimator=StaggeredDiD()."
        )


def weighted(evaluation: Evaluation, spec):
    """``spec`` with the weights the evaluation calls for.

    Unit-year means are weighted by their number of pupils unless told otherwise (an
    estimator that takes pupil records or means, ``data_level="any"``, at
    ``level="unit_year"``; a staggered panel of school-year means keeps its own weighting,
    schools equally, unless ``weighting="pupils"``); with a comparison design every row also
    carries its school's weight; a staggered panel weighted by pupils carries each school's
    mean pupils (times its comparison weight).
    """
    pupil_counts = evaluation.level == "unit_year" and fitted_rows(spec, "any") == "any"
    if _per_school(evaluation, spec):
        if spec.weights is not None:
            raise DesignError(
                f"{type(spec).__name__}(weights={spec.weights!r}) and "
                "Evaluation(weighting='pupils') both weight the schools; remove one of them"
            )
        return dataclasses.replace(spec, weights=UNIT_PUPILS)
    if evaluation.comparison is not None:
        if getattr(spec, "weights", None) is not None:
            raise DesignError(
                f"{type(spec).__name__}(weights={spec.weights!r}) and a comparison design "
                f"both weight the rows; remove one of them"
            )
        return dataclasses.replace(spec, weights=WEIGHT_X_PUPILS if pupil_counts else WEIGHT)
    if pupil_counts and getattr(spec, "weights", "") is None:
        return dataclasses.replace(spec, weights="n_pupils")
    return spec


def analysis_rows(evaluation: Evaluation, pupils: pd.DataFrame, cohort, spec) -> pd.DataFrame:
    """The rows an estimator sees: pupil records, or their unit-year means."""
    if not _on_means(evaluation, spec):
        return pupils
    if pupils is cohort.pupils:
        frame = cohort.unit_years
    else:
        frame = with_weights(unit_year_means(pupils), pupils)
    if _per_school(evaluation, spec):
        # A panel's sampling weights belong to units: each school's mean pupils per year.
        size = frame.groupby(spec.unit, sort=False)["n_pupils"].transform("mean")
        if evaluation.comparison is not None:
            size = size * frame[WEIGHT]
        frame = frame.assign(**{UNIT_PUPILS: size.to_numpy(dtype=float)})
    return frame


#: The estimand of a panel estimator whose schools count equally (the report's technical
#: appendix says how to weight them by their pupils instead).
SCHOOLS_EQUALLY = (
    "schools: every school counts equally whatever its size, in each group-time effect (mean "
    "changes of school-year means) and in the cohort shares that average them (numbers of "
    "schools)"
)


def estimand_weighting(evaluation: Evaluation, estimator, cohort: Cohort | None = None) -> str:
    """Whose average effect ``estimator`` estimates in ``evaluation``, in words (``cohort``
    says whether its rows are published figures)."""
    spec = weighted(evaluation, estimator)
    if getattr(spec, "effect_scale", "") == "area_mean":  # synthetic control / DiD
        return (
            "the participating area's pupils: its yearly figures are means over its pupils, "
            "compared with a weighted average of comparison areas whose weights the method "
            "chooses (not their numbers of pupils)"
        )
    if cohort is not None and cohort.published is not None:
        noun = cohort.published.noun
        if _panel(spec) and spec.weights == UNIT_PUPILS:
            return (
                f"pupils: each {cohort.published.level} is weighted by its mean number of "
                f"pupils per year in the published {noun}, so the estimate approximates the "
                "average effect over pupils"
            )
        if getattr(spec, "weights", None) in ("n_pupils", WEIGHT, WEIGHT_X_PUPILS):
            return f"pupils: each of the published {noun} is weighted by its number of pupils"
    design = " and by the comparison design's weights" if evaluation.comparison else ""
    if _panel(spec):
        if spec.weights == UNIT_PUPILS:
            return (
                "pupils: each school is weighted by its mean number of pupil records per year"
                f"{design}, in each group-time effect and in the cohort shares that average "
                "them, so the estimate approximates the average effect over pupil records"
            )
        if spec.weights is not None:
            return f"schools weighted by {spec.weights!r} (sampling weights)"
        return SCHOOLS_EQUALLY
    if getattr(spec, "weights", None) not in (None, "n_pupils", WEIGHT, WEIGHT_X_PUPILS):
        return f"pupil records weighted by {spec.weights!r}"
    return f"pupils: every analysed pupil record counts once{design}"


# ---------------------------------------------------------------------- 4. fitting
def fit_stage(spec, frame: pd.DataFrame, cohort: Cohort):
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


def fit_group(
    evaluation: Evaluation, label: str, pupils: pd.DataFrame, cohort: Cohort, estimator
) -> GroupEstimate:
    """Fit the estimator to one group of pupils (without its effect size: see
    :func:`estimate_group`). A subgroup that cannot be estimated is returned with a note
    saying why (and a :class:`~cpdimpact.errors.SmallSampleWarning`); the headline raises."""
    arms = cohort.arms(pupils)
    subgroup = label != "All pupils"
    # A staggered cohort may have no never-treated arm: its controls are later starters.
    needed = ["treated"] if cohort.spec.comparison == "staggered" else ["treated", "comparison"]
    if subgroup and (arms.loc[needed, "pupils"] < 2).any():
        return _not_estimated(label, arms, "an arm has fewer than two pupil records")
    frame = analysis_rows(evaluation, pupils, cohort, estimator)
    try:
        did = fit_stage(weighted(evaluation, estimator), frame, cohort)
    except (DesignError, EstimationError) as err:
        if not subgroup:
            raise
        # A subgroup that cannot be estimated must not sink the headline: say why instead.
        return _not_estimated(label, arms, str(err))
    if isinstance(did, StaggeredResult):
        arms = arms_behind(did, frame)  # the arms of the estimate, not of the cohort
    elif getattr(did, "excluded_donors", ()):  # a synthetic comparison's donor pool
        arms = cohort.arms(pupils[~pupils["unit"].isin(did.excluded_donors).to_numpy()])
    return GroupEstimate(label=label, arms=arms, did=did, effect_size=None)


def _not_estimated(label: str, arms: pd.DataFrame, reason: str) -> GroupEstimate:
    note = f"{label}: not estimated: {reason}"
    warnings.warn(note, SmallSampleWarning, stacklevel=4)
    return GroupEstimate(label=label, arms=arms, did=None, effect_size=None, note=note)


def estimate_group(
    evaluation: Evaluation, label: str, pupils: pd.DataFrame, cohort: Cohort, estimator, sd
) -> GroupEstimate:
    """:func:`fit_group` with the estimate's :func:`effect_size` on the SD ``sd``."""
    group = fit_group(evaluation, label, pupils, cohort, estimator)
    return _with_effect_size(evaluation, group, sd, cohort)


def _with_effect_size(evaluation, group: GroupEstimate, sd: float, cohort) -> GroupEstimate:
    if group.did is None or not math.isfinite(sd):  # no pupil-level SD: outcome units only
        return group
    es = effect_size(group.did, sd, cohort, alpha=evaluation.alpha, label=group.label)
    return dataclasses.replace(group, effect_size=es)


def breakdown(evaluation: Evaluation, cohort: Cohort, estimator, estimates, sd):
    """Groups beyond the headline (the rest of each gap's pupils, prior-attainment bands)
    and the change in each gap."""
    pupils = cohort.pupils
    fitted = {g.label: g for g in estimates}
    extra: list[GroupEstimate] = []
    gaps = []
    for column in evaluation.gaps:
        sub = fitted.get(subgroup_label(column))
        if sub is None:
            label = subgroup_label(column)
            rows = subgroup_rows(evaluation, cohort, estimator, column, 1)
            sub = estimate_group(evaluation, label, rows, cohort, estimator, sd)
            extra.append(sub)
        rows = subgroup_rows(evaluation, cohort, estimator, column, 0)
        rest = estimate_group(evaluation, complement_label(column), rows, cohort, estimator, sd)
        extra.append(rest)
        if sub.did is None or rest.did is None:
            continue
        joint = None
        if isinstance(estimator, DiD):
            spec = weighted(evaluation, estimator)
            frames = tuple(
                analysis_rows(evaluation, rows_where(cohort, column, value), cohort, spec)
                for value in (0, 1)
            )
            try:
                joint = interacted_gap(spec, frames)
            except (DesignError, EstimationError):
                joint = None  # falls back to the independent-estimates interval, labelled
        # without a pupil-level SD (published figures) the change is in outcome units only
        scale = sub.effect_size.correction / sd if sub.effect_size is not None else math.nan
        gaps.append(
            gap_estimate(column, sub, rest, scale=scale, alpha=evaluation.alpha, joint=joint)
        )
    if evaluation.prior_bands and "prior" in pupils.columns and pupils["prior"].notna().any():
        for label, mask in prior_band_masks(pupils["prior"], evaluation.prior_bands):
            rows = _group_pupils(evaluation, cohort, estimator, mask)
            extra.append(estimate_group(evaluation, label, rows, cohort, estimator, sd))
    return tuple(extra), tuple(gaps)


def subgroup_rows(evaluation: Evaluation, cohort: Cohort, estimator, column: str, value: int):
    """The rows of one group (``column == value``: a subgroup, or the rest of a gap) as
    :func:`fit_group` takes them: pupil records (:func:`_group_pupils`), or for published
    figures the disadvantaged or other pupils' figures."""
    if cohort.published is not None:
        return rows_where(cohort, column, value)
    return _group_pupils(evaluation, cohort, estimator, cohort.pupils[column] == value)


def _group_pupils(evaluation: Evaluation, cohort: Cohort, estimator, mask) -> pd.DataFrame:
    """The cohort's pupil records in ``mask`` (a subgroup, the rest of a gap, a band), as
    :func:`fit_group` takes them.

    Fitted on pupil records, the estimator sees every column. Fitted on unit-year means, it
    sees only the means (:func:`~cpdimpact.cohort.unit_year_means`), so only the columns they
    and the arm counts read are copied: the columns of ``cohort.unit_years`` and the
    comparison weight. The fit is the same; copying every column of millions of records
    (text columns most of all) for each group cost seconds.
    """
    pupils = cohort.pupils
    if not _on_means(evaluation, estimator) or getattr(cohort, "unit_years", None) is None:
        return pupils[mask]
    read = {*cohort.unit_years.columns, "unit", "year", "school", "treated", WEIGHT, FIGURE_PUPILS}
    return pupils.loc[mask, [c for c in pupils.columns if c in read]]


# ---------------------------------------------------------------------- 5. effect sizes
def effect_size_sd(fit, cohort) -> tuple[float, str]:
    """The SD every effect size divides by, and its source: the model's own SD when the
    estimator provides one (a multilevel model's total variance), else the cohort's
    pupil-level SD. A pass/fail outcome has none: its effect sizes convert percentages
    (:attr:`EvaluationResult.percentage_effect_sizes`)."""
    if cohort.outcome_kind == "pass_fail":  # not the SD of a 0/100 variable, even a model's
        return cohort.outcome_sd, cohort.outcome_sd_source
    if hasattr(fit, "effect_size_sd"):
        return fit.effect_size_sd, fit.effect_size_sd_source
    if not math.isfinite(cohort.outcome_sd):  # published figures without a pupil-level SD
        return cohort.outcome_sd, cohort.outcome_sd_source
    return cohort.outcome_sd, f"pupil-level SD: {cohort.outcome_sd_source}"


def effect_size(fit, sd: float, cohort, *, alpha: float, label: str) -> EffectSize:
    """``fit``'s estimate as Hedges' g on the SD ``sd`` (small-sample correction from the
    cohort's ``outcome_sd_n``), its interval at ``alpha`` on the fit's degrees of freedom."""
    return hedges_g(
        fit.estimate,
        fit.std_error,
        sd,
        n=cohort.outcome_sd_n,
        df=getattr(fit, "df", None),  # None: a normal reference (e.g. a wild bootstrap)
        alpha=alpha,
        label=label,
    )


# ---------------------------------------------------------------------- 6. event study
def fit_event_study(evaluation: Evaluation, estimator, cohort: Cohort):
    """The TWFE event study (or ``None``) and, when one asked for beside a staggered headline
    could not be fitted, why."""
    event_study, note = None, ""
    spec = configure(evaluation, event_study_for(evaluation, estimator), "event_study")
    if spec is None:
        return event_study, note
    frame = analysis_rows(evaluation, cohort.pupils, cohort, spec)
    if isinstance(estimator, StaggeredDiD):
        # A comparison only: its staggered-timing warning is the report's label, and
        # a failure (e.g. no never-treated units to separate event and calendar time)
        # must not sink the headline.
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CpdImpactWarning)
                event_study = fit_stage(weighted(evaluation, spec), frame, cohort)
        except (DesignError, EstimationError) as err:
            note = f"The two-way fixed-effects event study could not be fitted: {err}"
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CpdImpactWarning)
            event_study = fit_stage(weighted(evaluation, spec), frame, cohort)
        for w in caught:
            message = str(w.message)
            if issubclass(w.category, CpdImpactWarning):
                message = event_study_words(message, estimator)
            warnings.warn(message, w.category, stacklevel=2)
    return event_study, note


def event_study_words(message: str, estimator) -> str:
    """A warning of the TWFE event study as the run and the report give it: labelled as the
    event study's when the headline is tested by the wild cluster bootstrap, so that a
    caveat about cluster-robust intervals with few schools is not read as one about the
    headline (the event study's intervals stay cluster-robust)."""
    if isinstance(getattr(estimator, "inference", None), WildBootstrap):
        return (
            "In the event study, whose intervals are cluster-robust (the wild cluster "
            f"bootstrap tests the headline only): {message}"
        )
    return message


def staggered_detail(
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
            twfe = twfe_spec.fit(rows) if cohort is None else fit_stage(twfe_spec, rows, cohort)
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
