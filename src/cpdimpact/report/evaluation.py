"""Compose the published report of an :class:`~cpdimpact.evaluation.result.EvaluationResult`.

The report leads with the EEF-style headline table (effect size with its confidence interval
at the evaluation's level, pupils and schools per arm, months of progress, and the same row
for FSM pupils), then the event study, attainment trends of both arms, balance before the
programme, and the flow of schools, teachers and pupil records. Every count is subject to
small-number suppression; no pupil-level row is ever written.

For a staggered headline (:class:`~cpdimpact.did.StaggeredDiD`) the event study is the
dynamic aggregate of the group-time effects, with pointwise intervals, the uniform band when
bootstrapped and the Callaway & Sant'Anna pre-trend Wald test; the effects by start cohort and
by year follow, and two-way fixed effects appear only in a comparison table, labelled as biased
when effects differ between cohorts or grow with exposure. The design section lists the start
cohorts, the trends figure draws one line per cohort, and when no school is never treated the
balance table compares the earliest cohort with the later ones.
"""

from __future__ import annotations

import numbers
import re

import pandas as pd

from .._disclosure import is_suppressed, marker, published_count
from .._results import interval
from .._user_names import user_message
from ..dfe import academic_year, year_convention
from ..estimator import fitted_rows
from ..evaluation.result import (
    TWFE_COMPARISON_LABEL,
    allocated_attrition,
    inference_text,
    plot_staggered_event_study,
)
from ..evaluation.stages import SCHOOLS_EQUALLY, event_study_words
from ._alt import event_study_alt, flow_alt, forest_alt, trends_alt
from ._blocks import Figure, Heading, Paragraph, Table
from ._document import Document
from ._figures import _ARM_LABELS, count_text, plot_flow_diagram, plot_forest
from ._headline import headline_paragraph
from ._privacy import published_table

__all__ = [
    "arms_behind_text",
    "attrition_hidden",
    "describe_comparison",
    "evaluation_report",
    "flow_figure_blocks",
    "headline_table",
    "plot_flow_diagram",
    "plot_forest",
    "plot_staggered_event_study",
    "staggered_arms_text",
    "subgroup_figure_blocks",
]


def _ci(estimate: float, lower: float, upper: float) -> str:
    if pd.isna(estimate):
        return "not estimated"
    return f"{estimate:.2f} ({lower:.2f} to {upper:.2f})"


def _pair(a, b) -> str:
    return f"{_grouped(a)}; {_grouped(b)}"


def _grouped(count) -> object:
    """A published count with thousands separators (``20,470``); a suppression marker as it
    is."""
    return f"{count:,}" if isinstance(count, numbers.Integral) else count


def _mean_text(value) -> object:
    """A mean as a table shows it: to one decimal from 10 up (a school size of 248.9 pupils, a
    scaled score of 103.6), to three below (a share of 0.353, a standardised score)."""
    if pd.isna(value):
        return value
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3f}"


def _published_counts(frame: pd.DataFrame, counts, threshold: int) -> pd.DataFrame:
    """:func:`~cpdimpact.report._privacy.published_table` (the one suppression rule), with
    the counts that remain written as the report's text writes numbers: ``20,470``."""
    shown = published_table(frame, counts, threshold)
    return shown.assign(**{c: shown[c].map(_grouped) for c in counts if c in shown.columns})


def headline_table(result, *, suppress_below: int = 10, groups=None) -> pd.DataFrame:
    """The headline table as printed: one row per group, counts suppressed below a threshold.

    ``groups`` is a frame like :attr:`~cpdimpact.evaluation.result.EvaluationResult.headline` (default)
    or :attr:`~cpdimpact.evaluation.result.EvaluationResult.subgroup_effects`.
    """
    head = result.headline if groups is None else groups
    counts = ["pupils_treated", "pupils_comparison", "schools_treated", "schools_comparison"]
    shown = _published_counts(head, counts, suppress_below)
    level = 100 * (1 - result.evaluation.alpha)
    sizes = result.has_effect_size
    effect, lower, upper = (
        ("effect_size", "ci_lower", "ci_upper")
        if sizes
        else ("estimate", "estimate_lower", "estimate_upper")
    )
    effect_label = (
        f"Effect size ({level:g}% CI)"
        if sizes
        else f"Effect in {result.outcome_units} ({level:g}% CI)"
    )
    units = "Areas" if _unit_noun(result) == "area" else "Schools"
    # A staggered headline counts the arms of its estimate (the cohorts after their start and
    # their controls in the same years; see the table's note). Another estimator on a
    # staggered cohort counts the cohort's arms: its comparison arm holds only the schools
    # that never take part.
    if result.staggered is not None:
        arms = "treated; comparison"
    elif result.cohort.spec.comparison == "staggered":
        arms = "took part; never took part"
    else:
        arms = "intervention; comparison"
    table = pd.DataFrame(
        {
            "Group": head["group"],
            effect_label: [
                _ci(e, lo, hi)
                for e, lo, hi in zip(head[effect], head[lower], head[upper], strict=True)
            ],
            f"Pupils ({arms})": [
                _pair(a, b)
                for a, b in zip(shown["pupils_treated"], shown["pupils_comparison"], strict=True)
            ],
            f"{units} ({arms})": [
                _pair(a, b)
                for a, b in zip(shown["schools_treated"], shown["schools_comparison"], strict=True)
            ],
            "Months of progress": [_months_text(m) for m in head["months"]],
        }
    )
    # months of progress convert an effect size: without one there is nothing to convert
    return table if sizes else table.drop(columns="Months of progress")


def _months_text(months) -> str:
    return "—" if pd.isna(months) else f"{int(months):+d}" if months else "0"


def _unit_noun(result) -> str:
    """``"area"`` for an evaluation of area figures, else ``"school"``."""
    published = result.cohort.published
    return "school" if published is None else published.level


def _design_text(result) -> str:
    """The design in plain words: which years, who counts as exposed, the comparison group,
    the covariates and whose average effect. The method and its inference are in the
    technical appendix (:func:`_method_text`)."""
    cohort = result.cohort
    starts = _starts_text(cohort.start_years)
    noun = _unit_noun(result)
    comparison = {
        "never_treated": f"{noun}s that never took part",
        "not_yet_treated": f"{noun}s that had not yet started (and any that never took part)",
        "staggered": f"chosen for each start cohort and year by the estimator: {noun}s that "
        "never took part or had not yet started",
    }[cohort.spec.comparison]
    exposure = {
        "school": f"every pupil in a participating {noun} counts as exposed from the {noun}'s "
        "start year",
        "teacher": "a pupil counts as exposed in a year when taught by a participating teacher",
    }[cohort.spec.exposure]
    years = cohort.spec.lag
    lag = f", after a lag of {years} year{'s' if years > 1 else ''}" if years else ""
    # covariates under the user's own column names
    names = getattr(cohort, "user_columns", None) or {}
    covariates = [names.get(c, c) for c in (getattr(result.estimator, "covariates", ()) or ())]
    adjusted = (
        f"Adjusted for: {', '.join(covariates)}."
        if covariates
        else "Not adjusted for pupil characteristics."
    )
    return (
        f"{_design_name(result)}. {year_convention(min(cohort.start_years))} {starts}; "
        f"{exposure}{lag}. The comparison group is {comparison}. {adjusted} Years analysed: "
        f"{min(cohort.years)}-{max(cohort.years)}. Whose average effect: "
        f"{result.estimand_weighting}. The method and how its uncertainty was measured are in "
        "the technical appendix."
    )


def _model_clause(result) -> str:
    """The estimator's clause of ``describe()`` (its inference follows), its unit column named
    as the cohort names it ("school" for the cohort's "unit" column)."""
    model = result.estimator.describe().split("; ")[0]
    if getattr(result.estimator, "unit", None) == "unit":
        model = re.sub(r"\bunit\b", result.cohort.unit, model)
    return model


def _design_name(result) -> str:
    """The design's name in words, without the estimator's options: its clause up to the
    first colon, parenthesis or "adjusting for" (the design text names the covariates)."""
    return re.split(r"[:(]|, adjusting for", _model_clause(result), maxsplit=1)[0].strip()


def _method_text(result) -> str:
    """The method for the technical appendix: the estimator as it describes itself, the rows
    it was fitted on and how the standard errors were computed."""
    spec = result.evaluation
    did = result.groups[0].did
    estimator = result.estimator
    rows = fitted_rows(estimator, spec.level)
    fitted_on = {
        "pupil": "pupil records (new pupils each year: a repeated cross-section within units)",
        "unit_year": "unit-by-year means weighted by the number of pupils"
        if getattr(estimator, "weights", None) or spec.level == "unit_year"
        else "unit-by-year means",
    }[rows]
    if getattr(estimator, "effect_scale", "") == "area_mean":  # the method weights the areas
        fitted_on = "unit-by-year means (each a mean over its pupils)"
    model = _model_clause(result)
    inference = inference_text(did) if did is not None else ""
    return f"{model}, fitted on {fitted_on}. {inference}".strip()


def _starts_text(start_years) -> str:
    """The start cohorts in words: the first tests each could affect and their school year
    ("The first results the programme could affect were the summer 2020 tests (school year
    2019/20)")."""
    years = sorted(int(y) for y in start_years)
    plural = "s" if len(years) > 1 else ""
    return (
        f"The first results the programme could affect were the summer {_and(map(str, years))} "
        f"tests (school year{plural} {_and(map(academic_year, years))})"
    )


def _and(words) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


#: An estimator's name for one group-time effect, ``ATT(2019,2021)``: the report says it in words.
_GROUP_TIME = re.compile(r"ATT\((\d+),\s*(\d+)\)")


def _group_time_words(match: re.Match) -> str:
    return f"the {match.group(1)} starters in {match.group(2)}"


def _caveats(result) -> list[str]:
    """Warnings raised while estimating (few clusters, staggered timing), the cohort's
    selection-on-a-dip check when it found a dip, and any other warning of the run, each once.

    A TWFE event study kept for comparison beside a staggered headline adds none: its
    staggered-timing warning is the comparison's label.
    """
    notes = [g.note for g in result.groups if g.note]
    notes += _synthetic_fit_notes(result.groups[0].did)
    dip = getattr(result.cohort, "dip_check", None)
    if dip is not None and dip.detected:
        notes.append(dip.message)
    notes += [n for g in result.groups if g.did is not None for n in g.did.notes]
    if result.event_study is not None and result.staggered is None:
        notes += [event_study_words(n, result.estimator) for n in result.event_study.notes]
    notes = [user_message(n, result.cohort) for n in notes]
    notes += [w.message for w in getattr(result, "warnings", ())]
    return list(dict.fromkeys(_GROUP_TIME.sub(_group_time_words, n) for n in notes))


def _synthetic_fit_notes(fit) -> list[str]:
    """A synthetic comparison's pre-period fit in words (what an exact fit with few years
    means) and the comparison areas its donor pool left out; none for other estimators."""
    notes = [getattr(fit, "pre_fit_statement", "")]
    left_out = getattr(fit, "excluded_donors", ())
    if left_out:
        shown = ", ".join(map(str, left_out[:10])) + (" and others" if len(left_out) > 10 else "")
        notes.append(
            f"{len(left_out)} areas were left out of the comparison by the donor pool: {shown}."
        )
    return [n for n in notes if n]


def _labelled_event_study(result, ax):
    """An event-study figure's axes in the report's words: the outcome as the user named it,
    in its units, and event time as years since the start."""
    cohort = result.cohort
    what = cohort.outcome_words()
    if what == "the outcome":  # a score: the user's column
        what = cohort.user_columns.get("outcome", "outcome") if cohort.user_columns else what
    ax.set_ylabel(f"effect on {what} ({_units(result)})")
    ax.set_xlabel("years since the start (0: the first results the programme could affect)")
    return ax


def _units(result) -> str:
    """The units of the report's estimates in a caption: "outcome points" or "percentage
    points"."""
    return "outcome points" if result.outcome_units == "points" else result.outcome_units


def _effect_size_note(result) -> str:
    if result.cohort.outcome_kind == "pass_fail":
        return (
            "The effects are in percentage points: the change in the percentage of pupils "
            "passing. A pass/fail outcome has no effect size in the usual sense (a difference "
            "divided by the spread of pupils' scores); the effect size below converts the two "
            "percentages instead."
        )
    if result.outcome_units == "percentage points" and not result.has_effect_size:
        return (
            "The effects are in percentage points: the change in the published percentage of "
            "pupils. Published figures give no spread of pupils' results to divide by, so "
            "there is no effect size in the usual sense; "
            + (
                "the effect size below converts the two percentages instead."
                if _cox_notes(result)
                else "nor can the two percentages be converted to one (one of them is 0 or 100)."
            )
        )
    if not result.has_effect_size:
        return (
            f"The effects are in {result.outcome_units} of the outcome. There is no effect size "
            "and no months of progress: they divide by the spread of pupils' scores, and "
            "published figures give only school or area means, whose spread is much smaller "
            "than pupils'. A pupil-level standard deviation from another source (national "
            "statistics) would give them (the technical appendix says how)."
        )
    return (
        f"Effect sizes are the difference-in-differences estimate divided by a pupil-level "
        f"standard deviation of the outcome ({result.effect_size_sd:.3f} points; "
        f"{result.effect_size_sd_source}), with Hedges' small-sample correction; the same SD "
        f"is used for every group. Months of progress follow the EEF Teaching and Learning "
        f"Toolkit conversion, applied to the effect size rounded to two decimals."
    )


def _cox_notes(result) -> list[str]:
    """For a published percentage: the headline converted to an effect size by Cox's method,
    labelled as such."""
    table = result.percentage_effect_sizes
    if table is None or table.empty or pd.isna(table["effect_size"].iloc[0]):
        return []
    row = table.iloc[0]
    level = _level(result.evaluation.alpha)
    return [
        f"As an effect size by Cox's method (the log odds ratio divided by 1.65, a conversion "
        f"for yes/no outcomes): {_ci(row['effect_size'], row['ci_lower'], row['ci_upper'])} "
        f"({level} CI) for all pupils, from {row['percent_participating']:.1f}% in the "
        f"participating {_unit_noun(result)}s after the start against the "
        f"{row['percent_without']:.1f}% the estimate implies without the programme (an "
        f"odds ratio of {row['odds_ratio']:.2f}). "
        + (
            ""
            if result.cohort.published is None
            else "It treats the published percentage as the share of pupils reaching the standard. "
        )
        + "It is a conversion, not a Hedges' g. No months of progress are given for it: "
        "the EEF's months measure converts effect sizes of attainment scores, and its use for "
        "a converted odds ratio is not established."
    ]


def _reference_words(event_study) -> str:
    """Which year the event study measures against: the year before the start, or, when that
    year has no data (2020, 2021), each cohort's last observed year before it."""
    years = getattr(event_study, "reference_years", None)
    if years is None or all(y == g - 1 for g, y in years.items()):
        return "the year before the start"
    shown = ", ".join(f"{y} for the {g} starters" for g, y in years.items())
    return f"the last year with data before the start ({shown})"


def _coefficients(result) -> pd.DataFrame:
    table = result.event_study.coefficients.reset_index()
    reference = table["reference"].to_numpy(bool)  # with 2020-21 gaps, one per cohort
    shown = table[["event_time", "estimate", "std_error", "ci_lower", "ci_upper"]].astype(
        {"event_time": int}
    )
    # The reference year is fixed at zero by construction: it has no standard error or interval.
    shown.loc[reference, ["std_error", "ci_lower", "ci_upper"]] = float("nan")
    return shown.rename(columns=_LABELS)


_LABELS = {
    "event_time": "Event time",
    "estimate": "Estimate",
    "std_error": "SE",
    "ci_lower": "CI lower",
    "ci_upper": "CI upper",
    "band_lower": "Uniform band lower",
    "band_upper": "Uniform band upper",
    "variable": "Variable",
    "level": "Level",
    "treated_mean": "Intervention mean",
    "comparison_mean": "Comparison mean",
    "std_difference": "Standardised difference",
    "variance_ratio": "Variance ratio",
    "n_treated": "n intervention",
    "n_comparison": "n comparison",
    "stage": "Stage",
    "arm": "Group",
    "reason": "Reason",
    "schools": "Schools",
    "teachers": "Teachers",
    "pupils": "Pupil records",
}
_VARIABLES = {
    "prior": "Prior attainment",
    "fsm": "FSM (share)",
    "outcome": "Outcome",
    "size": "School size",
}
_ARMS = {arm: label.lower() for arm, label in _ARM_LABELS.items()}  # as in the flow diagram


def _figure_section(
    heading: str,
    name: str,
    title: str,
    caption: str,
    draw,
    *,
    level: int = 2,
    figsize=(7, 4),
    tight: bool = False,
    alt: str = "",
) -> list:
    """A heading and a figure drawn by ``draw(ax=...)``, with ``alt`` its text alternative
    (what it shows, :mod:`cpdimpact.report._alt`); the figure is closed after."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    draw(ax=ax)
    ax.set_title(title)
    if tight:
        fig.tight_layout()
    blocks = [Heading(heading, level=level), Figure(fig, name=name, caption=caption, alt=alt)]
    plt.close(fig)
    return blocks


def _level(alpha: float) -> str:
    return f"{100 * (1 - alpha):g}%"


def _pieces_table(detail, kind: str, *, bands: bool) -> pd.DataFrame:
    table = detail.pieces(kind)
    if not bands:
        table = table.drop(columns=["band_lower", "band_upper"])
    key = {"dynamic": "event_time", "group": "group", "calendar": "time"}[kind]
    return table.astype({key: int}).rename(columns=_LABELS | _KEYS)


_KEYS = {"event_time": "Event time", "group": "Start cohort", "time": "Year"}


def _with_overall(detail, kind: str, label: str) -> pd.DataFrame:
    """Pieces of an aggregate (pointwise intervals) and its overall value as a last row."""
    agg = getattr(detail, kind)
    table = detail.pieces(kind).drop(columns=["band_lower", "band_upper"])
    key = table.columns[0]
    lower, upper = agg.conf_int().iloc[0]
    table = pd.concat(
        [
            table.assign(**{key: table[key].astype(int).astype(str)}),
            pd.DataFrame(
                [[label, agg.estimate, agg.std_error, lower, upper]],
                columns=[key, "estimate", "std_error", "ci_lower", "ci_upper"],
            ),
        ],
        ignore_index=True,
    )
    return table.rename(columns=_LABELS | _KEYS)


def _rows_text(result, estimator) -> str:
    """What an estimator was fitted on: ``"school-year means"`` or ``"pupil records"``."""
    rows = fitted_rows(estimator, result.evaluation.level)
    return "pupil records" if rows == "pupil" else f"{result.cohort.unit}-year means"


def _staggered_section(result, threshold: int) -> list:
    """Event study, effects by cohort and year, and the TWFE comparison of a staggered fit."""
    detail, fit, spec = result.staggered, result.groups[0].did, result.estimator
    level = _level(detail.dynamic.alpha)
    band = (
        f"; shaded, the {level} uniform band, which covers the effects of all event times at "
        f"once (multiplier bootstrap)"
        if detail.uniform_bands
        else ""
    )
    blocks = _figure_section(
        "Event study",
        "event_study",
        f"Effect by years since the start ({_units(result)})",
        f"Group-time effects (Callaway & Sant'Anna 2021) averaged over start cohorts by years "
        f"since the start, weighted by cohort size; bars: pointwise {level} confidence "
        f"intervals{band}.",
        lambda ax: _labelled_event_study(result, plot_staggered_event_study(detail, ax=ax)),
        alt=event_study_alt(detail.dynamic, _units(result), level),
    )
    pre = detail.pretrend
    if pre is not None:
        blocks.append(
            Paragraph(
                f"Test that every pre-programme group-time effect is zero (Callaway & "
                f"Sant'Anna 2021): p = {pre.p_value:.3f} (Wald chi-squared statistic "
                f"{pre.statistic:.2f} on {pre.df} degrees of freedom). A non-significant test "
                f"does not prove parallel trends; it may lack power (Roth 2022)."
            )
        )
    notes = [
        "Before the start (negative event times) each estimate compares a year with the year "
        "before it (varying base period), a placebo test of trends year by year; from the start "
        "on, each compares with the year before the cohort started."
        if spec.base_period == "varying"
        else "Every estimate compares with the year before the cohort started (universal base "
        "period)."
    ]
    event = detail.pieces("dynamic")["event_time"]
    if (event >= 0).any():
        low, high = detail.dynamic.conf_int().iloc[0]
        notes.append(
            f"Average of the effects at event times {int(event[event >= 0].min())} to "
            f"{int(event.max())}, each event time weighted equally: "
            f"{detail.dynamic.estimate:.3f} (SE {detail.dynamic.std_error:.3f}; {level} CI "
            f"{low:.3f} to {high:.3f}). The headline instead averages every post-start "
            f"group-time effect, weighted by cohort size."
        )
    if detail.uniform_bands:
        notes.append(
            "The uniform band is wider than the pointwise intervals: read it when judging the "
            "whole path at once (for example, whether any pre-programme year departs from zero)."
        )
    notes.append(f"Standard errors: {fit.inference}.")
    blocks += [
        Table(
            _pieces_table(detail, "dynamic", bands=detail.uniform_bands),
            caption=f"Event study: effects by years since the start ({_units(result)}, {level} "
            f"intervals)",
            notes=tuple(notes),
        ),
        Heading("Effects by start cohort and by year", level=3),
        Table(
            _with_overall(detail, "group", "All cohorts (weighted by cohort size)"),
            caption=f"Effect by start cohort: average over the cohort's years since its start "
            f"({_units(result)}, pointwise {level} intervals)",
        ),
        Table(
            _with_overall(detail, "calendar", "Average over years"),
            caption=f"Effect by year: average over the cohorts started by then, weighted by "
            f"cohort size ({_units(result)}, pointwise {level} intervals)",
        ),
        Heading("Comparison with two-way fixed effects", level=3),
    ]
    twfe = detail.twfe
    if twfe is None:
        return [*blocks, Paragraph(detail.twfe_note), *_twfe_event_study(result)]
    lower, upper = interval(fit.estimate, fit.std_error, alpha=spec.alpha)
    comparison = pd.DataFrame(
        {
            "Estimator": [
                "Staggered DiD (Callaway & Sant'Anna 2021): the headline",
                TWFE_COMPARISON_LABEL,
            ],
            "Estimate": [fit.estimate, twfe.estimate],
            "SE": [fit.std_error, twfe.std_error],
            "CI lower": [float(lower), twfe.ci_lower],
            "CI upper": [float(upper), twfe.ci_upper],
            "Inference": [
                fit.inference,
                f"clustered by {result.cohort.unit if twfe.cluster == 'unit' else twfe.cluster} "
                f"({twfe.n_clusters} clusters), t on {twfe.df:g} df",
            ],
        }
    )
    rows = _rows_text(result, spec)
    blocks.append(
        Table(
            comparison,
            caption=f"The headline and two-way fixed effects on the same {rows} (outcome "
            f"points, {level} CI)",
            notes=(
                f"Both are fitted on the same {count_text(twfe.n_obs, threshold, grouping=False)} "
                f"unweighted {rows} ({count_text(twfe.n_units, threshold, grouping=False)} "
                f"{result.cohort.unit}s). The TWFE coefficient averages every "
                "two-group, two-period comparison, including ones that use units already "
                "started as controls, with weights that can be negative (Goodman-Bacon 2021; "
                "de Chaisemartin & D'Haultfoeuille 2020). It is shown only to explain why the "
                "headline does not use it.",
            ),
        )
    )
    return [*blocks, *_twfe_event_study(result)]


def _twfe_event_study(result) -> list:
    """An explicitly requested TWFE event study, beside a staggered headline: a comparison."""
    if result.staggered.twfe_event_study_note:
        return [Paragraph(result.staggered.twfe_event_study_note)]
    if result.event_study is None:
        return []
    return [
        Table(
            _coefficients(result),
            caption=f"{TWFE_COMPARISON_LABEL}. Event study ({_units(result)}; year "
            f"{result.event_study.reference} relative to the start is the reference)",
        )
    ]


def _cohorts_table(result, threshold: int) -> pd.DataFrame:
    """Schools (teachers) and pupil records by start year, never-takers last."""
    pupils = result.cohort.pupils
    grouped = pupils.groupby("first_treated", sort=True)
    table = pd.DataFrame(
        {"schools": grouped["school"].nunique(), "pupils": grouped.size()}
        | ({"teachers": grouped["unit"].nunique()} if result.cohort.unit == "teacher" else {})
    )
    order = [g for g in table.index if g > 0] + [g for g in table.index if g == 0]
    table = table.loc[order].reset_index()
    table.insert(
        0,
        "Start year",
        ["never took part" if g == 0 else str(int(g)) for g in table.pop("first_treated")],
    )
    counts = [c for c in ("schools", "teachers", "pupils") if c in table.columns]
    return _suppress(table[["Start year", *counts]], counts, threshold)


def _balance_section(result, threshold: int) -> list:
    cohort = result.cohort
    balance = cohort.balance.assign(variable=cohort.balance["variable"].replace(_VARIABLES))
    first, second = cohort.balance_groups
    labels = dict(_LABELS)
    caption = "Pre-period means and standardised differences"
    notes = [
        "Standardised difference: difference in means over the square root of the average of "
        "the two arms' variances; |d| above 0.25 is a serious imbalance (WWC), 0.05-0.25 needs "
        "statistical adjustment."
    ]
    if (first, second) != ("intervention", "comparison"):
        before = min(cohort.start_years)
        labels |= {
            "treated_mean": "Earliest cohort mean",
            "comparison_mean": "Later cohort mean",
            "n_treated": "n earliest cohort",
            "n_comparison": "n later cohort",
        }
        caption = (
            f"Before anyone started (years before {before}): {first} against {second}; "
            f"means and standardised differences"
        )
        notes.insert(
            0,
            "Every school takes part, so there is no never-treated group to compare with: the "
            "table compares the first cohort with the schools that started later, in the years "
            "before either started. Later starters are the controls of the staggered estimate.",
        )

    def shown(frame):
        frame = _published_counts(frame, ["n_treated", "n_comparison"], threshold)
        means = {c: frame[c].map(_mean_text) for c in ("treated_mean", "comparison_mean")}
        return frame.assign(**means).rename(columns=labels)

    blocks = [Heading("Balance before the programme", level=2)]
    if cohort.balance_allocated is not None:
        allocated = cohort.balance_allocated.assign(
            variable=cohort.balance_allocated["variable"].replace(_VARIABLES)
        )
        blocks.append(
            Table(
                shown(allocated),
                caption=f"As allocated (every record of the schools in each group). {caption}",
                notes=(
                    "As allocated: before any record was excluded; as analysed: the records "
                    "the estimate uses. A difference between the two tables shows what the "
                    "exclusions did to the comparison.",
                ),
            )
        )
    blocks.append(Table(shown(balance), caption=f"As analysed. {caption}", notes=tuple(notes)))
    return blocks


def evaluation_report(result) -> Document:
    """Build the :class:`~cpdimpact.report.Document` for an evaluation result."""
    options = result.evaluation.report
    cohort = result.cohort
    blocks: list = []
    if options.programme:
        blocks.append(Paragraph(options.programme))

    staggered_cohort = cohort.spec.comparison == "staggered"
    head_notes = [_effect_size_note(result), *_cox_notes(result)]
    if result.staggered is not None:
        head_notes.append(staggered_arms_text(result))
    if staggered_cohort and not (cohort.pupils["first_treated"] == 0).any():
        head_notes.append(
            "Every school took part, so none is never treated: each start cohort is compared "
            "with the schools that had not yet started (start cohorts in the design section)."
        )
    head_notes.append(
        f"Counts from 1 to {options.suppress_below - 1} are suppressed."
        if options.suppress_below
        else "Counts are not suppressed."
    )
    # The answer in words first, then the numbers, then what limits them (the caveats sit
    # beside the finding, not below the design).
    caveats = _caveats(result)
    blocks += [
        Heading("Headline findings", level=2),
        Paragraph(headline_paragraph(result)),
        Table(
            headline_table(result, suppress_below=options.suppress_below),
            caption="Impact on attainment",
            notes=tuple(head_notes),
        ),
    ]
    if caveats:
        blocks += [Heading("Caveats", level=3), *(Paragraph(c) for c in caveats)]
    blocks += [
        *_published_blocks(result, options.suppress_below),
        *subgroup_figure_blocks(result),
        Heading("Design", level=2),
        Paragraph(_design_text(result)),
    ]
    if staggered_cohort and cohort.is_staggered:
        blocks.append(
            Table(
                _cohorts_table(result, options.suppress_below),
                caption="Start cohorts: schools and pupil records by the year they started",
            )
        )
    blocks += _comparison_blocks(result, options.suppress_below)

    if result.staggered is not None:
        blocks += _staggered_section(result, options.suppress_below)
    elif result.event_study is not None:
        blocks += _figure_section(
            "Event study",
            "event_study",
            f"Effect by year relative to the start ({_units(result)})",
            f"Estimates with {_level(result.event_study.alpha)} confidence intervals; "
            f"{_reference_words(result.event_study)} is the reference.",
            lambda ax: _labelled_event_study(result, result.event_study.plot(ax=ax)),
            alt=event_study_alt(
                result.event_study, _units(result), _level(result.event_study.alpha)
            ),
        )
        pretrend = result.event_study.pretrend
        if pretrend is not None:
            blocks.append(
                Paragraph(
                    f"Joint test that all pre-programme coefficients are zero: "
                    f"p = {pretrend.p_value:.3f} (F statistic {pretrend.statistic:.2f} on "
                    f"{pretrend.df_num:g} and {pretrend.df_denom:g} degrees of freedom). A "
                    f"non-significant test does not prove parallel trends; it may lack power "
                    f"(Roth 2022)."
                )
            )
        blocks.append(
            Table(
                _coefficients(result),
                caption=f"Event-study coefficients ({_units(result)})",
            )
        )

    blocks += _figure_section(
        "Attainment trends",
        "trends",
        "Mean outcome by year",
        "Mean outcome of pupils in each start cohort (and in schools that never took part, if "
        "any); dotted lines mark the starts."
        if staggered_cohort and cohort.is_staggered
        else "Mean outcome of pupils in the intervention and comparison groups; dotted lines "
        "mark the start.",
        cohort.plot,
        alt=trends_alt(cohort.mean_outcomes(), cohort.mean_outcome_words()),
    )

    blocks += _variants_section(result)
    blocks += _balance_section(result, options.suppress_below)
    flow_notes = ()
    if cohort.published is not None:
        flow_notes = (
            f"Each record counted here is one published figure (one {cohort.flow.record}), "
            "not a pupil; the pupils behind the analysed figures are in the headline table.",
        )
    blocks += [
        Heading(
            "Flow of schools, teachers and pupils"
            if cohort.published is None
            else "Flow of published figures",
            level=2,
        ),
        *flow_figure_blocks(result),
        *map(Paragraph, flow_notes),
        Table(
            _suppress(
                cohort.flow.stages.assign(arm=cohort.flow.stages["arm"].map(_ARMS)),
                ["schools", "teachers", "pupils"],
                options.suppress_below,
                result,
            ),
            caption="Counts at each stage",
        ),
    ]
    if len(cohort.flow.exclusions):
        blocks.append(
            Table(
                _suppress(
                    cohort.flow.exclusions,
                    ["schools", "teachers", "pupils"],
                    options.suppress_below,
                    result,
                ),
                caption="Exclusions and their reasons",
            )
        )
    if len(changes := cohort.flow.school_changes()):  # URN changes, schools opened or closed
        blocks.append(
            Table(
                _suppress(changes, ["schools", "pupils"], options.suppress_below),
                caption="Schools that changed URN, opened or closed inside the analysed years",
            )
        )
    blocks += _attrition_blocks(result, options.suppress_below)
    blocks += _cost_blocks(result)
    blocks += _security_blocks(result)
    blocks += _appendix_blocks(result)
    # no metadata footer: the appendix's reproducibility paragraph gives the version and the
    # fingerprint once (results.json carries them for machines)
    return Document(title=options.title, blocks=tuple(blocks))


def _published_blocks(result, threshold: int) -> list:
    """What published figures can and cannot tell, and the figures lost by reason; empty for
    an evaluation of pupil records."""
    published = result.cohort.published
    if published is None:
        return []
    noun = published.level
    source = f" ({published.source})" if published.source else ""
    groups = (
        "the disadvantaged and other pupils' figures DfE publishes"
        if published.groups is not None
        else f"no pupil groups ({published.groups_note})"
    )
    words = [
        f"This evaluation used published figures{source}, not pupil records: each is one "
        f"{noun}'s figure for one year ({published.outcome_label or 'the outcome'}), with "
        "the number of pupils behind it, and every estimate weights the figures by their "
        f"pupils. Subgroups: {groups}.",
        f"What such figures can tell: how the average of the participating {noun}s changed "
        f"against the comparison {noun}s, in {published.units}. What they cannot: anything "
        "about individual pupils (their prior attainment, pupils who moved school), groups "
        "other than those published, and an effect size, unless a pupil-level standard "
        "deviation is given from another source. Figures suppressed to protect small cohorts "
        f"are missing, which leaves out small {noun}s more often, in the disadvantaged "
        "pupils' figures most of all.",
    ]
    blocks: list = [Heading("Data: published figures", level=3), *map(Paragraph, words)]
    lost = published.lost_figures
    if len(lost):
        shown = _published_counts(lost, ["figures"], threshold).rename(
            columns={
                "group": "Group",
                "marker": "Marker",
                "reason": "Reason",
                "figures": "Figures",
            }
        )
        blocks.append(
            Table(
                shown,
                caption="Published figures without a value, by reason",
                notes=("Every year of every unit in the files, before the cohort was formed.",),
            )
        )
    return blocks


def _suppress(frame: pd.DataFrame, counts: list[str], threshold: int, result=None) -> pd.DataFrame:
    """Suppress small counts (when asked) and give the columns their printed labels (with
    ``result``, its records' and units' words: "School-year figures", "Areas")."""
    labels = dict(_LABELS)
    if result is not None:
        record = result.cohort.flow.record
        labels["pupils"] = f"{record[0].upper()}{record[1:]}s"
        labels["schools"] = f"{_unit_noun(result).capitalize()}s"
        if result.cohort.published is not None:  # figures have no teachers
            frame = frame.drop(columns="teachers", errors="ignore")
            counts = [c for c in counts if c != "teachers"]
    return _published_counts(frame, counts, threshold).rename(columns=labels)


def subgroup_figure_blocks(result) -> list:
    """The subgroup section: a forest plot of every group's effect size, the table behind it
    and the change in each attainment gap; empty when there is no group beyond all pupils.

    The figure (``figures/subgroups.png``) draws all pupils at the top, then the headline
    subgroups, the other pupils of each gap and the prior-attainment bands
    (:func:`plot_forest`).
    """
    groups = result.subgroup_effects
    if len(groups) < 2:
        return []
    options = result.evaluation.report
    level = _level(result.evaluation.alpha)
    drawn, what, scale = groups, "Effect sizes (Hedges' g)", "effect size (Hedges' g)"
    if not result.has_effect_size:
        scale = result.outcome_units
        drawn = groups.assign(
            effect_size=groups["estimate"],
            ci_lower=groups["estimate_lower"],
            ci_upper=groups["estimate_upper"],
        )
        what = f"Effects in {result.outcome_units}"
    blocks = _figure_section(
        "Effects by subgroup",
        "subgroups",
        "Effect size by group" if result.has_effect_size else "Effect by group",
        f"{what} with {level} confidence intervals: all pupils (top), then each subgroup, "
        "each refitted on its own "
        + (
            "figures."
            if result.cohort.published is not None
            else "pupils" + (" and divided by the same SD." if result.has_effect_size else ".")
        ),
        lambda ax: plot_forest(drawn, level=level, ax=ax, scale=scale),
        level=3,
        figsize=(7, max(2.5, 0.6 * len(groups) + 1.5)),
        tight=True,
        alt=forest_alt(drawn, scale, level),
    )
    blocks.append(
        Table(
            headline_table(result, suppress_below=options.suppress_below, groups=groups),
            caption="Effect by group",
            notes=(
                *(
                    ()
                    if not result.evaluation.prior_bands
                    else (
                        "Prior-attainment bands cut the analysed pupils into equal-count bands "
                        "of prior attainment (both groups, every year); pupils without a prior "
                        "attainment record are in no band.",
                    )
                ),
                "Subgroup estimates are less precise than the headline; differences between "
                "them may be chance.",
            ),
        )
    )
    if result.gaps:
        gaps = result.gap_table
        if result.has_effect_size:
            gap_label, gap_effect = f"Change in effect size ({level} CI)", "effect_size"
            gap_bounds = (gaps["ci_lower"], gaps["ci_upper"])
        else:
            gap_label = f"Change in {result.outcome_units} ({level} CI)"
            gap_effect = "estimate"
            gap_bounds = _gap_points_interval(gaps, result.evaluation.alpha)
        shown = pd.DataFrame(
            {
                "Gap": gaps["gap"],
                gap_label: [
                    _ci(e, lo, hi) for e, lo, hi in zip(gaps[gap_effect], *gap_bounds, strict=True)
                ],
                "Months of progress": [_months_text(m) for m in gaps["months"]],
                "Compared": [
                    f"{a} minus {b}" for a, b in zip(gaps["subgroup"], gaps["rest"], strict=True)
                ],
            }
        )
        if not result.has_effect_size:  # months convert an effect size
            shown = shown.drop(columns="Months of progress")
        blocks.append(
            Table(
                shown,
                caption="Change in the attainment gap",
                notes=(
                    "The subgroup's effect minus the other pupils' effect, on the same scale: "
                    "a positive change means the subgroup gained more, so the gap narrowed.",
                    *dict.fromkeys(f"Interval: {m}." for m in gaps["method"]),
                ),
            )
        )
    return blocks


def _gap_points_interval(gaps: pd.DataFrame, alpha: float):
    """The gap changes' intervals in outcome units (their estimate, SE and df)."""
    bounds = [
        interval(e, s, alpha=alpha, df=None if pd.isna(d) else d)
        for e, s, d in zip(gaps["estimate"], gaps["std_error"], gaps["df"], strict=True)
    ]
    return [b[0] for b in bounds], [b[1] for b in bounds]


def _variants_section(result) -> list:
    if result.cohort.published is not None:
        return []  # d_W and d_T need pupils' scores; the headline table has the rest
    table = result.effect_size_variants
    level = _level(result.evaluation.alpha)
    shown = pd.DataFrame(
        {
            "Effect size": table["variant"],
            "SD (points)": [f"{v:.2f}" if pd.notna(v) else "—" for v in table["sd"]],
            f"Estimate ({level} CI)": [
                _ci(e, lo, hi)
                for e, lo, hi in zip(
                    table["estimate"], table["ci_lower"], table["ci_upper"], strict=True
                )
            ],
            "Months": [
                "—" if pd.isna(m) else f"{int(m):+d}" if m else "0" for m in table["months"]
            ],
            "WWC improvement index": [
                "—" if pd.isna(v) else f"{v:+.0f}" for v in table["improvement_index"]
            ],
        }
    )
    return [
        Heading("Effect sizes under each standard deviation", level=2),
        Table(
            shown,
            caption="The headline estimate standardised in the ways evaluators meet",
            notes=(
                "The headline divides by a pupil-level SD. d_W divides by the spread of pupils "
                "within schools (larger effect sizes); d_T by the total pupil spread with "
                "Hedges' (2007) adjustment for pupils clustered in schools. SDs are the "
                "comparison group's, pooled within year; intervals treat the SD as known. "
                "Compare effect sizes across studies only when they use the same SD.",
            ),
        ),
    ]


def _comparison_blocks(result, threshold: int) -> list:
    """How the comparison group was formed, the schools used, and balance before and after."""
    weights = result.comparison
    if weights is None:
        return []
    counts = weights.counts.rename(
        index={"treated": "intervention", "control": "comparison"},
        columns={"all": "Schools", "used": "Used", "dropped": "Left out"},
    ).reset_index(names="Group")
    counts = _published_counts(counts, ["Schools", "Used", "Left out"], threshold)
    balance = weights.balance
    order = list(dict.fromkeys(balance["variable"]))
    wide = {}
    for column, label in (
        ("std_mean_diff", "Standardised difference"),
        ("variance_ratio", "Variance ratio"),
    ):
        part = balance.pivot(index="variable", columns="sample", values=column).reindex(order)
        for sample in ("before", "after"):
            if sample in part.columns:
                wide[f"{label} {sample}"] = part[sample].to_numpy()
    table = pd.DataFrame({"Characteristic": order, **wide})
    blocks = [
        Heading("Comparison group", level=2),
        Paragraph(describe_comparison(result.evaluation.comparison, weights, threshold)),
        Table(counts, caption="Schools used by the comparison design"),
        Table(
            table,
            caption="Balance of school characteristics before and after matching or weighting",
            notes=(
                "Standardised difference: intervention mean minus (weighted) comparison mean "
                "over the intervention schools' SD (before matching); within 0.1 is usually "
                "read as balanced. Variance ratio: near 1 is balanced.",
                *weights.notes,
            ),
        ),
    ]
    blocks += _figure_section(
        "Balance before and after",
        "love_plot",
        "Absolute standardised differences",
        "Each school characteristic before (all schools) and after matching or weighting; the "
        "dotted line marks 0.1.",
        weights.plot,
        level=3,
        tight=True,
    )
    return blocks


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _attrition_blocks(result, threshold: int) -> list:
    pupils = result.attrition
    if pupils is None:
        return []
    schools = _school_attrition(result)
    # Pupil rates give pupil counts back (and only those).
    hidden = attrition_hidden(pupils, threshold)
    rows = []
    for label, arm in (("intervention", 0), ("comparison", 1)):
        rate = (pupils.treatment, pupils.control)[arm]
        rows.append(
            {
                "Group": label,
                "Schools allocated": schools.randomised[arm],
                "Schools analysed": schools.analysed[arm],
                "Pupil records allocated": pupils.randomised[arm],
                "Pupil records analysed": pupils.analysed[arm],
                # A rate beside a suppressed count would give the count back.
                "Attrition (pupil records)": "suppressed" if hidden else _percent(rate),
            }
        )
    counts = [
        "Schools allocated",
        "Schools analysed",
        "Pupil records allocated",
        "Pupil records analysed",
    ]
    table = pd.DataFrame(rows)
    table = _published_counts(table, counts, threshold)
    return [
        Heading("Attrition", level=3),
        Table(
            table,
            caption="Allocated and analysed, by group",
            notes=(
                "Attrition rates are not shown: a count is suppressed and the rates would "
                "give it back."
                if hidden
                else f"Overall attrition {_percent(pupils.overall)}, differential "
                f"{100 * pupils.differential:.1f} percentage points: "
                f"{pupils.rating('cautious')} attrition on the WWC cautious boundary "
                f"({pupils.rating('optimistic')} on the optimistic one).",
                "Allocated: every record of the schools in each group in the years analysed; "
                "records later excluded (a missing outcome or covariate, for example) count as "
                "lost. The WWC boundaries were set for randomised trials; for a comparison-"
                "group design they show how much of the data the analysis lost.",
            ),
        ),
    ]


def attrition_hidden(rates, threshold: int) -> bool:
    """Whether any allocated or analysed count behind ``rates`` is suppressed (the rates
    would then give it back)."""
    return any(is_suppressed(n, threshold) for n in (*rates.randomised, *rates.analysed))


def _school_attrition(result):
    return allocated_attrition(result.cohort, "schools")


def _cost_blocks(result) -> list:
    cost = result.cost
    if cost is None:
        text = (
            "The programme's cost was not given, so no cost rating is shown (the technical "
            "appendix says how to add it)."
        )
        return [Heading("Cost", level=2), Paragraph(text)]
    return [
        Heading("Cost", level=2),
        Paragraph(
            f"£{cost.per_pupil_per_year:,.2f} per pupil per year over {cost.years} years: "
            f"{cost.rating} cost on the EEF Toolkit scale (very low under £80; low up to £200; "
            f"moderate up to £720; high up to £1,200; very high above)."
        ),
    ]


def _appendix_blocks(result) -> list:
    """The technical appendix: the method and its inference, the options that would complete
    the report (as code: the only place it appears), and what makes the report reproducible."""
    blocks = [
        Heading("Technical appendix", level=2),
        Heading("Method", level=3),
        Paragraph(_method_text(result)),
    ]
    options = []
    if result.cost is None:
        options.append(
            "Cost: give ReportOptions(cost=ProgrammeCost(...)) in Python or [report.cost] in the "
            "spec file for the EEF cost rating."
        )
    security = result.evaluation.report.security
    if security is not None and security.mdes is None:
        options.append(
            "Minimum detectable effect size: give the one planned at the design stage as "
            "SecurityOptions(mdes=...) ([report.security] mdes in the spec file)."
        )
    if result.estimand_weighting == SCHOOLS_EQUALLY:
        options.append(
            "Weighting: Evaluation(weighting='pupils') ([evaluation] weighting in the spec "
            "file) weights each school by its pupils instead of counting schools equally."
        )
    if options:
        blocks += [Heading("Options for this report", level=3), *map(Paragraph, options)]
    blocks += [
        Heading("Reproducibility", level=3),
        Paragraph(
            f"cpdimpact {result.version}; input fingerprint {result.fingerprint}; "
            + (
                f"seed {result.seed}."
                if result.seed is not None
                else "no seed set (estimates with random draws, such as bootstrap intervals, "
                "can differ slightly between runs)."
            )
            + " The full specification and every number above are in results.json."
        ),
    ]
    return blocks


def _security_blocks(result) -> list:
    assessment = result.security
    if assessment is None:
        return []
    options = result.evaluation.report.security
    steps = assessment.to_frame()
    mdes_note = (
        "MDES as given by the evaluator."
        if options.mdes is not None
        else f"MDES computed after the fact from the analysis' standard error "
        f"({result.analysis_mdes:.2f}); the EEF asks for the MDES at the design stage (the "
        f"technical appendix says how to give it)."
    )
    if assessment.final is None:
        verdict = (
            f"The assistant proposes {assessment.proposed} of 5 padlocks. The evaluator has not "
            f"yet confirmed or changed it: this rating is a proposal."
        )
    else:
        verdict = (
            f"Security: {assessment.final} of 5 padlocks (the evaluator's rating; the "
            f"assistant proposed {assessment.proposed}). Reason: {assessment.reason}"
        )
    return [
        Heading("Security", level=2),
        Paragraph(verdict),
        Table(
            steps.rename(columns=str.capitalize),
            caption="How the rating was reached",
            notes=(mdes_note, *assessment.summary().notes),
        ),
    ]


def flow_figure_blocks(result) -> list:
    """The CONSORT-style flow diagram of the cohort (``figures/flow.png``), counts suppressed.

    Returns a single :class:`~cpdimpact.report.Figure` block (no heading: it belongs under
    the "Flow of schools, teachers and pupils" heading, above the tables of counts).
    """
    import matplotlib.pyplot as plt

    threshold = result.evaluation.report.suppress_below
    flow = result.cohort.flow
    rows = len(flow.stages[flow.stages["arm"] == "all"]) + len(flow.exclusions) + 1
    fig, ax = plt.subplots(figsize=(7.5, max(3.0, 1.0 * rows + 0.5)))
    plot_flow_diagram(
        flow.stages,
        flow.exclusions,
        threshold=threshold,
        ax=ax,
        record=flow.record,
        unit=_unit_noun(result),
    )
    ax.set_title("Flow diagram")
    fig.tight_layout()
    suppressed = (
        f"; counts from 1 to {threshold - 1} are shown as {marker(threshold)}."
        if threshold
        else "."
    )
    block = Figure(
        fig,
        name="flow",
        caption=f"CONSORT-style flow of {_unit_noun(result)}s"
        + ("" if result.cohort.published is not None else ", teachers")
        + f" and {flow.record}s from those available to those analysed, with each exclusion "
        "and its reason" + suppressed,
        alt=flow_alt(flow.stages, flow.exclusions, threshold, flow.record),
    )
    plt.close(fig)
    return [block]


_METHODS = {
    "nearest": "nearest-neighbour matching on the propensity score",
    "mahalanobis": "nearest-neighbour matching on the Mahalanobis distance",
    "cem": "coarsened exact matching",
    "entropy": "entropy balancing",
}


def describe_comparison(spec, weights, threshold: int = 0) -> str:
    """One plain sentence on how the comparison group was formed; school counts from 1 to
    ``threshold - 1`` are suppressed as in the report's tables."""

    def n(group: str, column: str) -> str:
        return count_text(weights.counts.loc[group, column], threshold)

    method = _METHODS.get(weights.method, weights.method)
    details = []
    if getattr(spec, "ratio", 1) != 1:
        details.append(f"{spec.ratio} comparison schools per intervention school")
    if getattr(spec, "replace", False):
        details.append("with replacement")
    if getattr(spec, "caliper", None) is not None:
        details.append(f"caliper {spec.caliper:g} SD of the {spec.distance} score")
    if getattr(spec, "moments", 1) == 2:
        details.append("means and variances balanced")
    extra = f" ({'; '.join(details)})" if details else ""
    return (
        f"The comparison group was formed by {method}{extra} of schools on their "
        f"characteristics before the programme ({', '.join(spec.covariates)}). "
        f"{n('treated', 'used')} of {n('treated', 'all')} intervention schools and "
        f"{n('control', 'used')} of {n('control', 'all')} comparison schools were used; effects are "
        f"weighted averages over them (comparison schools weighted to resemble the intervention "
        f"schools), so they describe the intervention schools that were kept."
    )


def arms_behind_text(fit, arms: pd.DataFrame, threshold: int = 0) -> str:
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
            f"{published_count(int(row['schools']), threshold)} schools in {span} "
            f"({published_count(int(row['school_years']), threshold)} school-years, "
            f"{published_count(int(row['pupils']), threshold)} pupil records)"
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


def staggered_arms_text(result) -> str:
    """:func:`arms_behind_text` of a staggered headline, counts suppressed by the report's
    ``suppress_below`` (computed when published, so it follows the report options)."""
    head = result.groups[0]
    return arms_behind_text(head.did, head.arms, result.evaluation.report.suppress_below)
