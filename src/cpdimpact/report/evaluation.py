"""Compose the published report of an :class:`~cpdimpact.pipeline.EvaluationResult`.

The report leads with the EEF-style headline table (effect size with 95% CI, pupils and
schools per arm, months of progress, and the same row for FSM pupils), then the event study,
attainment trends of both arms, balance before the programme, and the flow of schools,
teachers and pupil records. Every count is subject to small-number suppression; no pupil-level
row is ever written.
"""

from __future__ import annotations

import pandas as pd

from ..pipeline import inference_text
from . import Document, Figure, Heading, Paragraph, Table, suppress_small_counts

__all__ = ["evaluation_report", "headline_table"]


def _ci(estimate: float, lower: float, upper: float) -> str:
    if pd.isna(estimate):
        return "not estimated"
    return f"{estimate:.2f} ({lower:.2f} to {upper:.2f})"


def _pair(a, b) -> str:
    return f"{a}; {b}"


def headline_table(result, *, suppress_below: int = 10) -> pd.DataFrame:
    """The headline table as printed: one row per group, counts suppressed below a threshold."""
    head = result.headline
    counts = ["pupils_treated", "pupils_comparison", "schools_treated", "schools_comparison"]
    shown = (
        suppress_small_counts(head, counts, threshold=suppress_below) if suppress_below else head
    )
    level = 100 * (1 - result.evaluation.alpha)
    return pd.DataFrame(
        {
            "Group": head["group"],
            f"Effect size ({level:g}% CI)": [
                _ci(e, lo, hi)
                for e, lo, hi in zip(
                    head["effect_size"], head["ci_lower"], head["ci_upper"], strict=True
                )
            ],
            "Pupils (intervention; comparison)": [
                _pair(a, b)
                for a, b in zip(shown["pupils_treated"], shown["pupils_comparison"], strict=True)
            ],
            "Schools (intervention; comparison)": [
                _pair(a, b)
                for a, b in zip(shown["schools_treated"], shown["schools_comparison"], strict=True)
            ],
            "Months of progress": [
                "—" if pd.isna(m) else f"{int(m):+d}" if m else "0" for m in head["months"]
            ],
        }
    )


def _design_text(result) -> str:
    cohort, spec = result.cohort, result.evaluation
    did = result.groups[0].did
    starts = ", ".join(map(str, cohort.start_years))
    comparison = {
        "never_treated": "schools that never took part",
        "not_yet_treated": "schools that had not yet started (and any that never took part)",
        "staggered": "chosen for each start cohort and year by the estimator: schools that "
        "never took part or had not yet started",
    }[cohort.spec.comparison]
    exposure = {
        "school": "every pupil in a participating school counts as exposed from the school's "
        "start year",
        "teacher": "a pupil counts as exposed in a year when taught by a participating teacher",
    }[cohort.spec.exposure]
    covariates = ", ".join(result.estimator.covariates) or "none"
    years = cohort.spec.lag
    lag = f", after a lag of {years} year{'s' if years > 1 else ''}" if years else ""
    estimator = result.estimator
    rows = {"any": spec.level}.get(estimator.data_level, estimator.data_level)
    fitted_on = {
        "pupil": "pupil records (new pupils each year: a repeated cross-section within units)",
        "unit_year": "unit-by-year means weighted by the number of pupils"
        if getattr(estimator, "weights", None) or spec.level == "unit_year"
        else "unit-by-year means",
    }[rows]
    model = (
        estimator.describe()
        if hasattr(estimator, "describe")
        else f"Difference-in-differences with {cohort.unit} and year fixed effects"
    )
    inference = inference_text(did)
    return (
        f"{model}, fitted on {fitted_on}. The programme started in {starts}; "
        f"{exposure}{lag}. The comparison group is {comparison}. Pupil covariates: "
        f"{covariates}. {inference} Years analysed: {min(cohort.years)}-{max(cohort.years)}."
    )


def _caveats(result) -> list[str]:
    """Warnings raised while estimating (few clusters, staggered timing), each once."""
    notes = [g.note for g in result.groups if g.note]
    notes += [n for g in result.groups if g.did is not None for n in g.did.notes]
    if result.event_study is not None:
        notes += list(result.event_study.notes)
    return list(dict.fromkeys(notes))


def _effect_size_note(result) -> str:
    return (
        f"Effect sizes are the difference-in-differences estimate divided by a pupil-level "
        f"standard deviation of the outcome ({result.effect_size_sd:.3f} points; "
        f"{result.effect_size_sd_source}), with Hedges' small-sample correction; the same SD "
        f"is used for every group. Months of progress follow the EEF Teaching and Learning "
        f"Toolkit conversion, applied to the effect size rounded to two decimals."
    )


def _coefficients(result) -> pd.DataFrame:
    table = result.event_study.coefficients.reset_index()
    reference = table["event_time"] == result.evaluation.event_study.reference
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
_ARMS = {"all": "all", "treated": "intervention", "comparison": "comparison"}


def _figure_section(heading: str, name: str, title: str, caption: str, draw) -> list:
    """A level-2 heading and a figure drawn by ``draw(ax=...)``; the figure is closed after."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    draw(ax=ax)
    ax.set_title(title)
    blocks = [Heading(heading, level=2), Figure(fig, name=name, caption=caption)]
    plt.close(fig)
    return blocks


def evaluation_report(result) -> Document:
    """Build the :class:`~cpdimpact.report.Document` for an evaluation result."""
    options = result.evaluation.report
    cohort = result.cohort
    blocks: list = []
    if options.programme:
        blocks.append(Paragraph(options.programme))

    blocks += [
        Heading("Headline findings", level=2),
        Table(
            headline_table(result, suppress_below=options.suppress_below),
            caption="Impact on attainment",
            notes=(
                _effect_size_note(result),
                f"Counts from 1 to {options.suppress_below - 1} are suppressed."
                if options.suppress_below
                else "Counts are not suppressed.",
            ),
        ),
        Heading("Design", level=2),
        Paragraph(_design_text(result)),
    ]
    caveats = _caveats(result)
    if caveats:
        blocks += [Heading("Caveats", level=3), *(Paragraph(c) for c in caveats)]

    if result.event_study is not None:
        blocks += _figure_section(
            "Event study",
            "event_study",
            "Effect by year relative to the start (outcome points)",
            "Estimates with 95% confidence intervals; the year before the start is the reference.",
            result.event_study.plot,
        )
        pretrend = result.event_study.pretrend
        if pretrend is not None:
            blocks.append(
                Paragraph(
                    f"Joint test that all pre-programme coefficients are zero: "
                    f"F({pretrend.df_num:g}, {pretrend.df_denom:g}) = {pretrend.statistic:.2f}, "
                    f"p = {pretrend.p_value:.3f}. A non-significant test does not prove "
                    f"parallel trends; it may lack power (Roth 2022)."
                )
            )
        blocks.append(
            Table(
                _coefficients(result),
                caption="Event-study coefficients (outcome points)",
            )
        )

    blocks += _figure_section(
        "Attainment trends",
        "trends",
        "Mean outcome by year",
        "Mean outcome of pupils in the intervention and comparison groups; dotted lines mark "
        "the start.",
        cohort.plot,
    )

    balance = cohort.balance.assign(variable=cohort.balance["variable"].replace(_VARIABLES))
    blocks += [
        Heading("Balance before the programme", level=2),
        Table(
            _suppress(balance, ["n_treated", "n_comparison"], options.suppress_below),
            caption="Pre-period means and standardised differences",
            notes=(
                "Standardised difference: difference in means over the square root of the "
                "average of the two arms' variances; |d| above 0.25 is a serious imbalance "
                "(WWC), 0.05-0.25 needs statistical adjustment.",
            ),
        ),
        Heading("Flow of schools, teachers and pupils", level=2),
        Table(
            _suppress(
                cohort.flow.stages.assign(arm=cohort.flow.stages["arm"].map(_ARMS)),
                ["schools", "teachers", "pupils"],
                options.suppress_below,
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
                ),
                caption="Exclusions and their reasons",
            )
        )
    blocks += [
        Heading("Reproducibility", level=2),
        Paragraph(
            f"cpdimpact {result.version}; input fingerprint {result.fingerprint}; seed "
            f"{result.seed}. The full specification and every number above are in "
            f"results.json."
        ),
    ]
    return Document(
        title=options.title,
        blocks=tuple(blocks),
        metadata={"cpdimpact_version": result.version, "data_fingerprint": result.fingerprint},
    )


def _suppress(frame: pd.DataFrame, counts: list[str], threshold: int) -> pd.DataFrame:
    """Suppress small counts (when asked) and give the columns their printed labels."""
    if threshold:
        frame = suppress_small_counts(frame, counts, threshold=threshold)
    return frame.rename(columns=_LABELS)
