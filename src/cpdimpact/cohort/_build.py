"""Cohort specification and construction: records in, analysis-ready cohort out."""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from .._guards import is_binary, require_binary
from .._results import HtmlFromSummary, Summary, start_line
from .._validate import check_choice, check_int, check_number
from ..errors import (
    ArgumentTypeError,
    CpdImpactWarning,
    DesignError,
    EmptyComparisonGroupError,
    InvalidArgumentError,
    InvalidValueError,
    MissingColumnError,
    SchoolMeansError,
    format_value,
)
from ..published import FIGURE_PUPILS, MEASURES, PublishedRecords
from ..records import Records, as_records, user_rows
from ._balance import balance_groups, balance_table
from ._dip import DipCheck, attach_dip_check
from ._flow import FlowLog, FlowRecorder

__all__ = ["CohortSpec", "Cohort", "unit_year_means"]

_MEANS = ("outcome", "outcome_std", "prior", "fsm", "sen", "eal")


@dataclass(frozen=True, kw_only=True)
class CohortSpec:
    """How to turn records into an analysis cohort. Holds no data; :meth:`build` does the work.

    Parameters
    ----------
    exposure
        ``"school"``: every pupil in a participating school is exposed from the school's first
        start year (plus ``lag``). ``"teacher"``: a pupil is exposed in a year when taught by a
        participating teacher (a whole-school enrolment, with no teacher named, enrols every
        teacher of that school); the unit of analysis is then the teacher.
    lag
        Years between the start year and the first year counted as exposed (for example ``1``
        when training runs through the first year and pupils are expected to benefit from the
        next). Years in between are coded as not exposed.
    comparison
        ``"never_treated"``: units that never participate form the comparison arm; every
        participating unit is treated. ``"not_yet_treated"``: the treated arm is the earliest
        start cohort; never-treated units and units starting later serve as comparisons until
        they start (their later records are excluded, and so are years in which no comparison
        unit is left).
        ``"staggered"``: keep every unit and year with its own start, for the staggered
        (group-time) estimators, which choose their controls cell by cell; never-treated units,
        if any, form the comparison arm, and every unit may be treated (a national roll-out).
        The outcome is then standardised against records not yet exposed.
        ``"auto"`` (default): ``"never_treated"`` when some school in the pupil records never
        takes part, else ``"staggered"`` (every school takes part, as in a national roll-out:
        the later starters are the comparisons until they start). The built cohort's ``spec``
        holds the choice; :meth:`resolve` makes it without building. With teacher-level
        exposure ``"auto"`` is ``"never_treated"``.
    standardise
        How ``outcome_std`` is formed: ``"comparison"`` (per year, the comparison arm's mean and
        pupil-level SD), ``"national"`` (``national_mean`` and ``national_sd``, scalars or
        mappings from year), or ``"none"`` (``outcome_std`` equals ``outcome``).
    national_mean, national_sd
        Reference mean and pupil-level SD for ``standardise="national"``.
    years
        ``(first, last)`` inclusive window of years to analyse; records outside are excluded.
    exclude_years
        Years to leave out although records exist, because they are not comparable with the
        others (KS4 grades in 2020 and 2021 were teacher-assessed): ``(2020, 2021)``. Their
        records are excluded and counted in the flow log; the estimators treat the years left
        as the periods (a gap in the years is allowed).
    strands
        Programme strands that count as participation (default: all). Units enrolled only in
        other strands, or below ``min_dose``, are excluded from both arms: they are neither
        cleanly treated nor clean comparisons.
    min_dose
        Minimum total hours of participation for a unit to count as treated.
    covariates
        Pupil columns the analysis needs; records missing any of them are excluded (and logged).
    pupil_sd, pupil_sd_source
        A pupil-level SD of the outcome from elsewhere (a number, or a mapping from year to
        number) and where it comes from, in words ("DfE national KS2 maths scaled scores 2019,
        pupil-level SD"): every effect size then divides by it and the report prints the
        source. Needed for effect sizes from published figures
        (:class:`~cpdimpact.published.PublishedRecords`), whose spread is that of school or
        area means, not of pupils; optional with pupil records (default: the comparison arm's
        pooled within-year SD). Not with ``standardise="national"``, whose ``national_sd``
        already serves.
    outcome_kind
        ``"score"``: the outcome is a score or grade. ``"pass_fail"``: it records whether each
        pupil passed (1) or not (0), such as reaching the expected standard at KS2; the cohort
        then holds it as 0 or 100, so that a mean is the percentage of pupils passing and an
        effect is in percentage points, and effect sizes are Cox's conversion of the
        percentages (no pupil-level SD applies). ``"auto"`` (default): ``"pass_fail"`` when
        every analysed outcome is 0 or 1, else ``"score"``.

    Examples
    --------
    >>> from cpdimpact.cohort import CohortSpec
    >>> from cpdimpact.datasets import city_partnership
    >>> cohort = CohortSpec(covariates=("prior",)).build(city_partnership(seed=1, scale=0.2))
    >>> cohort.flow.count("analysed") == len(cohort.pupils)
    True
    """

    exposure: Literal["school", "teacher"] = "school"
    lag: int = 0
    comparison: Literal["auto", "never_treated", "not_yet_treated", "staggered"] = "auto"
    standardise: Literal["comparison", "national", "none"] = "comparison"
    national_mean: float | Mapping[int, float] | None = None
    national_sd: float | Mapping[int, float] | None = None
    years: tuple[int, int] | None = None
    exclude_years: tuple[int, ...] = ()
    strands: tuple[str, ...] | None = None
    min_dose: float = 0.0
    covariates: tuple[str, ...] = ()
    pupil_sd: float | Mapping[int, float] | None = None
    pupil_sd_source: str = ""
    outcome_kind: Literal["auto", "score", "pass_fail"] = "auto"

    def __post_init__(self):
        _choice("exposure", self.exposure, ("school", "teacher"))
        _choice(
            "comparison", self.comparison, ("auto", "never_treated", "not_yet_treated", "staggered")
        )
        _choice("standardise", self.standardise, ("comparison", "national", "none"))
        check_int(self.lag, "lag", minimum=0, hint=" It is in years.")
        if self.standardise == "national" and (
            self.national_mean is None or self.national_sd is None
        ):
            raise InvalidArgumentError(
                "standardise='national' needs national_mean and national_sd (numbers, or "
                "mappings from year to number)"
            )
        if self.years is not None:
            _check_years(self.years)
        object.__setattr__(self, "exclude_years", _whole_years(self.exclude_years))
        if isinstance(self.covariates, str):
            object.__setattr__(self, "covariates", (self.covariates,))
        if isinstance(self.strands, str):
            object.__setattr__(self, "strands", (self.strands,))
        check_number(self.min_dose, "min_dose", minimum=0, hint=" It is in hours.")
        _check_pupil_sd(self)
        _choice("outcome_kind", self.outcome_kind, OUTCOME_KINDS)
        if self.outcome_kind == "pass_fail" and (
            self.pupil_sd is not None or self.standardise == "national"
        ):
            raise InvalidArgumentError(
                "outcome_kind='pass_fail' takes no pupil-level SD (pupil_sd, or national_sd "
                "with standardise='national'): the effect size of a pass/fail outcome is Cox's "
                "conversion of the two percentages. Leave them out."
            )

    def build(self, records: Records | Mapping[str, pd.DataFrame]) -> Cohort:
        """Validate ``records`` and construct the cohort (see :class:`Cohort`).

        ``records`` is a :class:`~cpdimpact.records.Records` or a dict of the tables.
        """
        if isinstance(records, PublishedRecords):
            return _build_published(self.resolve(records), records)
        records = as_records(records)
        _refuse_school_means(records)
        return _build(self.resolve(records), records)

    def resolve(self, records: Records | Mapping[str, pd.DataFrame]) -> CohortSpec:
        """This spec with ``comparison="auto"`` replaced by the design it means for ``records``.

        ``"never_treated"`` when a school of the pupils table has no enrolment in the
        participation table (or exposure is teacher-level), else ``"staggered"``. Any other
        ``comparison`` is returned as it is.

        Parameters
        ----------
        records
            The records the cohort will be built from.

        Returns
        -------
        CohortSpec
            A spec whose ``comparison`` is never ``"auto"``.
        """
        if self.comparison != "auto":
            return self
        if isinstance(records, PublishedRecords):
            unit = records.level
            units, participation = records.figures.get(unit), records.participation
        else:
            records = as_records(records)
            unit, participation = "school", records.participation
            units = records.pupils.get("school")
        roll_out = (
            self.exposure == "school"
            and units is not None  # else validation names the missing column
            and unit in participation.columns
            and units.dropna().isin(participation[unit]).all()
        )
        choice = "staggered" if roll_out else "never_treated"
        return dataclasses.replace(self, comparison=choice)


@dataclass(frozen=True, eq=False)
class Cohort(HtmlFromSummary):
    """An analysis-ready cohort. Immutable; produced by :meth:`CohortSpec.build`.

    Attributes
    ----------
    spec
        The :class:`CohortSpec` that built it.
    pupils
        One row per analysed pupil record, with the input columns and ``area``, ``unit``,
        ``first_treated`` (first exposed year of a treated-arm unit; 0 for the comparison arm),
        ``programme_start`` (first exposed year of any participating unit, 0 if none),
        ``event_time`` (missing for the comparison arm),
        ``treated`` (arm), ``exposed`` (treated and on or after ``first_treated``),
        ``dose_hours`` (the unit's total programme hours) and ``outcome_std``.
    unit_years
        Means of the pupil columns by unit and year, with ``n_pupils``.
    flow
        The :class:`~cpdimpact.cohort.FlowLog`.
    balance
        Pre-period balance table (standardised differences): the treated against the
        comparison arm or, when every unit takes part and starts differ, the earliest start
        cohort against the later ones (see ``balance_groups``).
    standardisation
        Per-year mean, SD and number of pupils used to standardise the outcome.
    outcome_sd
        Pupil-level SD of the outcome for effect sizes: pooled within-year SD of the comparison
        arm (or the national SD). Never the SD of school means.
    outcome_sd_n
        Number of pupil records behind ``outcome_sd`` (``None`` for a national SD).
    balance_groups
        The two groups ``balance`` compares (its ``treated_*`` and ``comparison_*`` columns):
        ``("intervention", "comparison")``, or e.g. ``("earliest cohort (started 2019)",
        "later cohorts (started 2021)")`` for a roll-out in which every unit takes part.
    balance_allocated
        The same balance table "as allocated" (as randomised, in a trial): over every record
        of the units allocated to each arm (:attr:`FlowLog.allocated`), before records were
        excluded for missing values. ``balance`` is the table "as analysed".
    dip_check
        The :class:`~cpdimpact.cohort.DipCheck` run on every build: were the treated units
        unusually low in the year before they started (selection on a dip)? When it finds a
        dip the build warns with :class:`~cpdimpact.cohort.SelectionOnDipWarning`.
    source_rows
        For each row of ``pupils``, its label in the pupils table as given (the user's row),
        so that messages about analysed records can name the user's rows.
    user_columns
        The records' column mapping (canonical name -> the user's name), for messages.
    outcome_kind
        ``"score"`` or ``"pass_fail"`` (see :class:`CohortSpec`); a pass/fail ``outcome`` is
        held as 0 or 100.
    published
        For a cohort built from published figures
        (:class:`~cpdimpact.published.PublishedRecords`), what they are
        (:class:`PublishedFigures`); ``None`` for pupil records. Each row of ``pupils`` is
        then one unit's figure for one year, standing for the pupils in its
        ``figure_pupils`` column.
    """

    spec: CohortSpec
    pupils: pd.DataFrame
    unit_years: pd.DataFrame
    flow: FlowLog
    balance: pd.DataFrame
    standardisation: pd.DataFrame
    outcome_sd: float
    outcome_sd_n: int | None
    outcome_sd_source: str
    years: tuple[int, ...] = field(default=())
    start_years: tuple[int, ...] = field(default=())
    balance_groups: tuple[str, str] = ("intervention", "comparison")
    balance_allocated: pd.DataFrame | None = None
    dip_check: DipCheck | None = field(default=None, repr=False)
    source_rows: pd.Index | None = field(default=None, repr=False)
    user_columns: Mapping[str, str] = field(default_factory=dict, repr=False)
    published: PublishedFigures | None = field(default=None, repr=False)
    outcome_kind: str = "score"

    def __repr__(self) -> str:
        # the dataclass's repr would print every table (thousands of characters)
        years = sorted(self.years) if self.years else []
        span = f"{years[0]}-{years[-1]}" if years else "none"
        arms = self.pupils.groupby("treated")["unit"].nunique() if len(self.pupils) else {}
        return (
            f"Cohort(records={len(self.pupils):,}, treated_units={int(arms.get(True, 0))}, "
            f"comparison_units={int(arms.get(False, 0))}, years={span}, "
            f"comparison_arm={self.spec.comparison!r}, outcome_kind={self.outcome_kind!r})"
        )

    @property
    def outcome_units(self) -> str:
        """The units of a difference in the outcome: ``"points"``, or ``"percentage points"``
        for a pass/fail outcome or a published percentage."""
        if self.published is not None:
            return self.published.units
        return "percentage points" if self.outcome_kind == "pass_fail" else "points"

    @property
    def unit(self) -> str:
        """The exposure unit: ``"school"`` or ``"teacher"``."""
        return self.spec.exposure

    @property
    def is_staggered(self) -> bool:
        """True when treated units start in more than one year."""
        return len(self.start_years) > 1

    def arms(self, pupils: pd.DataFrame | None = None) -> pd.DataFrame:
        """Schools, units and pupil records per arm (for ``pupils``, default the whole cohort)."""
        pupils = self.pupils if pupils is None else pupils
        # Distinct ids by hashing each arm's rows, not a grouped sort of all of them: this
        # runs for every group an evaluation fits, on millions of records nationally.
        treated = pupils["treated"].to_numpy(dtype=bool)
        # published figures stand for their pupils; pupil records for one each
        weights = pupils[FIGURE_PUPILS].to_numpy() if FIGURE_PUPILS in pupils else None
        counts = {}
        for arm, rows in (("treated", treated), ("comparison", ~treated)):
            counts[arm] = {
                "schools": pupils["school"][rows].nunique(),
                "units": pupils["unit"][rows].nunique(),
                "pupils": int(rows.sum() if weights is None else weights[rows].sum()),
            }
        table = pd.DataFrame.from_dict(counts, orient="index").astype("int64")
        table.index = pd.Index(["treated", "comparison"], name="arm")
        return table

    def summary(self) -> Summary:
        """Printable description of the cohort."""
        arms = self.arms()
        facts = (
            ("exposure", f"{self.spec.exposure} level, lag {self.spec.lag}"),
            ("comparison", self.spec.comparison.replace("_", " ")),
            ("years", f"{min(self.years)}-{max(self.years)}"),
            ("start years", ", ".join(map(str, self.start_years))),
            (
                "treated",
                f"{arms.loc['treated', 'schools']} schools, "
                f"{arms.loc['treated', 'pupils']} pupil records",
            ),
            (
                "comparison arm",
                f"{arms.loc['comparison', 'schools']} schools, "
                f"{arms.loc['comparison', 'pupils']} pupil records",
            ),
            ("pupil-level SD", f"{self.outcome_sd:.4g} ({self.outcome_sd_source})"),
        )
        return Summary(title="Cohort", facts=facts, table=self.balance)

    def to_frame(self) -> pd.DataFrame:
        """The flow log as a tidy frame."""
        return self.flow.to_frame()

    def mean_outcomes(self) -> pd.DataFrame:
        """Mean outcome by group and test year, as the trends figure draws it: one column per
        group (``"intervention"``, ``"comparison"``; or, when the cohort keeps several start
        cohorts, ``"started 2019"``... and ``"never took part"``), one row per year of the
        span, missing where a group has no records (2020 and 2021 had no KS2 tests).
        Published figures are averaged over their pupils."""
        if self.spec.comparison == "staggered" and self.is_staggered:
            key = self.pupils["first_treated"]
            lines = [(s, f"started {s}") for s in self.start_years] + [(0, "never took part")]
        else:
            key = self.pupils["treated"]
            lines = [(True, "intervention"), (False, "comparison")]
        rows = self.pupils
        if FIGURE_PUPILS in rows:  # published figures: the mean over their pupils
            w = rows[FIGURE_PUPILS]
            grouped = rows.assign(_wy=rows["outcome"] * w, _w=w).groupby(
                [key.rename("arm"), "year"], sort=True
            )
            means = grouped["_wy"].sum() / grouped["_w"].sum()
        else:
            means = rows.groupby([key.rename("arm"), "year"], sort=True)["outcome"].mean()
        present = set(means.index.get_level_values(0))
        # every year of the span, so that a line breaks across a gap instead of inventing the
        # years in between
        span = range(int(min(self.years)), int(max(self.years)) + 1) if self.years else []
        table = {label: means.loc[arm].reindex(span) for arm, label in lines if arm in present}
        return pd.DataFrame(table, index=pd.Index(span, name="year"))

    def plot(self, *, ax=None):
        """Mean outcome by year and arm (:meth:`mean_outcomes`); returns the Axes.

        One line for the intervention and one for the comparison arm or, when the cohort
        keeps several start cohorts (``comparison="staggered"``), one line per start year and
        one for units that never take part (if any).
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        # each arm its own marker and line style, so the figure reads in grey and in print
        styles = [("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", "-"), ("P", "--")]
        for i, (label, series) in enumerate(self.mean_outcomes().items()):
            marker, linestyle = styles[i % len(styles)]
            ax.plot(
                series.index,
                series.to_numpy(),
                marker=marker,
                linestyle=linestyle,
                label=label,
            )
        for start in self.start_years:
            start_line(ax, start - 0.5, f"start {start}", linestyle=":", color="grey")
        ax.set_xlabel("test year (summer)")
        ax.set_ylabel(self.mean_outcome_words())
        ax.legend()
        return ax

    def mean_outcome_words(self) -> str:
        """The trends figure's axis label: the mean of the outcome under the user's name, or
        the published measure's words."""
        if self.published is not None and self.published.outcome_label:
            label = self.published.outcome_label
            return label[4:] if label.startswith("the ") else label
        if self.outcome_kind == "pass_fail":
            return f"percentage of pupils passing ({self._outcome_name()})"
        return f"mean {self._outcome_name()}"

    def _outcome_name(self) -> str:
        return self.user_columns.get("outcome", "outcome") if self.user_columns else "outcome"

    def outcome_words(self) -> str:
        """The outcome in a sentence: the published measure's words, "the share of pupils
        passing (<the user's column>)" for a pass/fail outcome, else "the outcome"."""
        if self.published is not None and self.published.outcome_label:
            return self.published.outcome_label
        if self.outcome_kind == "pass_fail":
            return f"the share of pupils passing ({self._outcome_name()})"
        return "the outcome"


def unit_year_means(pupils: pd.DataFrame) -> pd.DataFrame:
    """Collapse pupil records to one row per unit and year (means, with ``n_pupils``).

    Rows of published figures (a ``figure_pupils`` column: each figure stands for that many
    pupils) are averaged weighted by their pupils, and ``n_pupils`` sums them.
    """
    if FIGURE_PUPILS in pupils.columns:
        return _figure_means(pupils)
    keys = ["unit", "year"]
    constant = [
        c
        for c in ("school", "area", "treated", "exposed", "first_treated", "event_time")
        if c in pupils.columns
    ]
    key = _unit_year_key(pupils)
    grouped = pupils.groupby(keys if key is None else key[0], sort=True, dropna=False)
    means = grouped[[c for c in _MEANS if c in pupils.columns]].mean()
    first = grouped[constant].first()
    out = pd.concat([first, grouped.size().rename("n_pupils"), means], axis=1)
    if key is None:
        return out.reset_index()
    _, unit_min, year_min, span = key
    code = out.index.to_numpy()
    out.insert(0, "year", code % span + year_min)
    out.insert(0, "unit", code // span + unit_min)
    return out.reset_index(drop=True)


def _figure_means(rows: pd.DataFrame) -> pd.DataFrame:
    """:func:`unit_year_means` of published figures: pupil-weighted means by unit and year."""
    constant = [
        c
        for c in ("school", "area", "treated", "exposed", "first_treated", "event_time")
        if c in rows.columns
    ]
    means = [c for c in _MEANS if c in rows.columns]
    weights = rows[FIGURE_PUPILS].astype(float)
    weighted = rows[means].mul(weights, axis=0).assign(**{FIGURE_PUPILS: weights})
    grouped = weighted.groupby([rows["unit"], rows["year"]], sort=True)
    totals = grouped.sum(min_count=1)
    out = totals[means].div(totals[FIGURE_PUPILS], axis=0)
    first = rows.groupby(["unit", "year"], sort=True)[constant].first()
    n = totals[FIGURE_PUPILS].rename("n_pupils")
    return pd.concat([first, n, out], axis=1).reset_index()


def _unit_year_key(pupils: pd.DataFrame):
    """Integer unit and year ids as one sortable code, ``(code, unit_min, year_min, span)``
    with ``code = (unit - unit_min) * span + (year - year_min)``; ``None`` for other ids.

    Grouping on one code rather than on the two columns gives the same groups in the same
    order (sorted by unit, then year) and the same rows in each, so the same means, in half
    the time: this runs for the cohort and each subgroup, on millions of records nationally.
    """
    unit, year = pupils["unit"].to_numpy(), pupils["year"].to_numpy()
    if unit.dtype != np.int64 or year.dtype != np.int64 or not len(unit):
        return None  # text ids (teacher units), missing values, or nothing to group
    unit_min, year_min = int(unit.min()), int(year.min())
    span = int(year.max()) - year_min + 1
    if (int(unit.max()) - unit_min + 1) * span >= 2**62:  # the code would overflow
        return None
    return (unit - unit_min) * span + (year - year_min), unit_min, year_min, span


# ---------------------------------------------------------------------- construction
def _choice(name, value, allowed):
    check_choice(value, name, allowed)


def _whole_years(years) -> tuple[int, ...]:
    """``exclude_years`` as sorted distinct ints (one year may be given alone; ``None``: none)."""
    if years is None:
        return ()
    if isinstance(years, numbers.Real):
        years = (years,)
    if isinstance(years, str | bytes) or not isinstance(years, Iterable):
        raise ArgumentTypeError(
            f"exclude_years must be whole years such as (2020, 2021), got {format_value(years)}."
        )
    hint = " Give whole years, e.g. exclude_years=(2020, 2021)."
    return tuple(sorted({check_int(y, "exclude_years", minimum=None, hint=hint) for y in years}))


def _check_years(years) -> None:
    try:
        first, last = years
    except (TypeError, ValueError):
        first = last = None
    whole = all(
        isinstance(y, numbers.Real) and not isinstance(y, bool) and float(y).is_integer()
        for y in (first, last)
    )
    if not whole or first > last:
        raise InvalidArgumentError(
            f"years must be (first, last) whole years with first <= last, such as (2016, 2023), "
            f"got {format_value(years)}."
        )


#: The flow log's reason for a covariate that is not the user's (published figures' pupils).
_MISSING_LABELS = {FIGURE_PUPILS: "number of pupils not published"}


@dataclass(frozen=True, eq=False)
class PublishedFigures:
    """What a cohort built from published figures is, beside its rows.

    Attributes
    ----------
    level
        ``"school"`` or ``"area"``: the unit each figure describes.
    measure
        ``"mean"`` or ``"percentage"``.
    units
        The units of a difference in the outcome (``"points"``, ``"percentage points"``).
    outcome_label, source
        What the outcome is and where the figures come from, in words.
    groups
        The disadvantaged and not-disadvantaged figures as cohort rows (the columns of
        :attr:`Cohort.pupils`, with ``disadvantaged`` 1 or 0), or ``None``.
    groups_note
        Why there are no group rows (empty when there are).
    lost_figures
        Figures without a value, by group, marker and reason
        (:attr:`PublishedRecords.lost_figures <cpdimpact.published.PublishedRecords.lost_figures>`).
    """

    level: str
    measure: str
    units: str
    outcome_label: str
    source: str
    groups: pd.DataFrame | None
    groups_note: str
    lost_figures: pd.DataFrame

    @property
    def noun(self) -> str:
        """What one analysed row is: ``"school-year figures"`` or ``"area-year figures"``."""
        return f"{self.level}-year figures"


def _refuse_school_means(records: Records) -> None:
    """Refuse pupils tables that hold one record per school and year (at least 10 of them):
    school figures fed in as pupils, whose spread would pass for a pupil-level SD.

    A repeat among the first thousand records (real pupil records, in any order, repeat
    school-years almost at once) settles it without a pass over millions of records.
    """
    pupils = records.pupils
    if not {"school", "year"} <= set(pupils.columns) or len(pupils) < 10:
        return
    head = pupils[["school", "year"]].iloc[:1000]
    if head.duplicated().any() or pupils[["school", "year"]].duplicated().any():
        return
    user = records.columns.get
    raise SchoolMeansError(
        f"the pupils table holds exactly one record per {user('school', 'school')!r} and "
        f"{user('year', 'year')!r} in all of its {len(pupils)} rows: these look like school "
        "figures (means or percentages), not pupils. Taken as pupils, the spread of school "
        "means would pass for a pupil-level SD and every effect size and months figure would "
        "be far too large. Read them as published figures: PublishedRecords.from_frames("
        "figures=..., participation=..., columns={'pupils': <the column counting pupils>}), "
        "see docs/published_data.md."
    )


def _check_pupil_sd(spec: CohortSpec) -> None:
    if spec.pupil_sd is None:
        if spec.pupil_sd_source:
            raise InvalidArgumentError(
                f"pupil_sd_source={format_value(spec.pupil_sd_source)} names the source of "
                "pupil_sd, which is not given; give both"
            )
        return
    values = spec.pupil_sd.values() if isinstance(spec.pupil_sd, Mapping) else [spec.pupil_sd]
    for value in values:
        check_number(value, "pupil_sd", minimum=0, hint=" It is a pupil-level SD in points.")
        if not value > 0:
            raise InvalidArgumentError(f"pupil_sd must be positive, got {format_value(value)}.")
    if not str(spec.pupil_sd_source).strip():
        raise InvalidArgumentError(
            f"pupil_sd={format_value(spec.pupil_sd)} needs pupil_sd_source: say where the SD "
            "comes from (e.g. 'DfE national "
            "KS2 maths scaled scores 2019, pupil-level SD'); the report prints it beside every "
            "effect size."
        )
    if spec.standardise == "national":
        raise InvalidArgumentError(
            "pupil_sd and standardise='national' both set the effect-size SD; give the SD once "
            "(national_sd with standardise='national', or pupil_sd)."
        )


def _build_published(spec: CohortSpec, records: PublishedRecords) -> Cohort:
    """The cohort of published figures: one row per unit and year, weighted by its pupils.

    The figures go through the pupil path's builder as rows that each stand for their pupils,
    so exposure, arms, designs and the flow log follow one rule; a figure without its number
    of pupils is excluded and counted. Then what the figures cannot give is replaced: the
    outcome is standardised on the pupil-weighted comparison means and the user's pupil-level
    SD (none: ``outcome_std`` missing and no effect-size SD). The disadvantaged split, when
    published, is built the same way into :attr:`PublishedFigures.groups`.
    """
    records.validate()
    if spec.exposure != "school":
        raise DesignError(
            "exposure='teacher' needs pupil records with their class teachers; published "
            "figures describe whole schools or areas. Use exposure='school'."
        )
    if spec.covariates:
        raise DesignError(
            f"covariates {list(spec.covariates)} are pupil columns, which published figures do "
            "not have. Remove them (covariates=() and the estimator's covariates)."
        )
    rows = dataclasses.replace(spec, covariates=(FIGURE_PUPILS,))
    cohort = _published_rows(spec, _build(rows, records.as_records("all")))
    split = [g for g in records.groups if g != "all"]
    groups, note = None, ""
    if len(split) == 2:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CpdImpactWarning)  # the headline's warned
                groups = _published_rows(spec, _build(rows, records.as_records(tuple(split))))
            groups = groups.pupils
        except DesignError as err:
            note = f"the disadvantaged and other pupils' figures cannot form a cohort: {err}"
    else:
        note = (
            "only one of the disadvantaged and other pupils' figures is published"
            if split
            else "the figures have no disadvantaged / other pupils split"
        )
    published = PublishedFigures(
        level=records.level,
        measure=records.measure,
        units=MEASURES[records.measure],
        outcome_label=records.outcome_label,
        source=records.source,
        groups=groups,
        groups_note=note,
        lost_figures=records.lost_figures,
    )
    flow = dataclasses.replace(cohort.flow, record=f"{records.level}-year figure")
    return dataclasses.replace(cohort, published=published, flow=flow)


def _published_rows(spec: CohortSpec, cohort: Cohort) -> Cohort:
    """A cohort of figures with the pupil path's SD and standardisation replaced (see
    :func:`_build_published`)."""
    data = cohort.pupils
    staggered = spec.comparison == "staggered"
    if spec.standardise == "national":
        table, sd, sd_source = cohort.standardisation, cohort.outcome_sd, cohort.outcome_sd_source
    else:
        reference = ~data["exposed"] if staggered else ~data["treated"]
        ref = data.loc[reference, ["year", "outcome", FIGURE_PUPILS]]
        w = ref[FIGURE_PUPILS]
        by_year = (ref["outcome"] * w).groupby(ref["year"]).sum() / w.groupby(ref["year"]).sum()
        years = list(cohort.years)
        mean = by_year.reindex(years)
        if staggered:  # years after every start: the nearest earlier year's mean
            mean = mean.ffill().bfill()
        if spec.pupil_sd is None:
            pupil_sd = pd.Series(np.nan, index=years)
            sd = float("nan")
            sd_source = (
                "none: published figures are means of schools or areas, whose spread is not "
                "that of pupils; give CohortSpec(pupil_sd=..., pupil_sd_source=...) for effect "
                "sizes"
            )
        else:
            pupil_sd = _national(spec.pupil_sd, years, "pupil_sd")
            sd, sd_source = float(np.sqrt((pupil_sd**2).mean())), spec.pupil_sd_source
        if spec.standardise == "none":
            mean, pupil_sd = pd.Series(0.0, index=years), pd.Series(1.0, index=years)
        n = w.groupby(ref["year"]).sum().reindex(years)
        table = pd.DataFrame(
            {"mean": mean, "sd": pupil_sd, "n": n}, index=pd.Index(years, name="year")
        )
    standardised = (data["outcome"] - data["year"].map(table["mean"])) / data["year"].map(
        table["sd"]
    )
    data = data.assign(outcome_std=standardised.astype(float))
    balance = cohort.balance.replace({"level": {"pupil": "figure"}})
    return dataclasses.replace(
        cohort,
        spec=spec,
        pupils=data,
        unit_years=unit_year_means(data),
        balance=balance,
        balance_allocated=None
        if cohort.balance_allocated is None
        else cohort.balance_allocated.replace({"level": {"pupil": "figure"}}),
        standardisation=table,
        outcome_sd=sd,
        outcome_sd_n=None,
        outcome_sd_source=sd_source,
    )


def _build(spec: CohortSpec, records: Records) -> Cohort:
    teacher_level = spec.exposure == "teacher"
    records.validate(teacher_level=teacher_level)
    user = records.columns.get
    pupils = records.pupils
    for column in spec.covariates:
        if column not in pupils.columns:
            raise MissingColumnError(
                f"covariate {user(column, column)!r} is not a column of the pupils table; "
                f"it has {list(map(str, pupils.columns))}"
            )

    schools = records.schools
    n_schools = len(schools) if schools is not None else pupils["school"].nunique()
    n_teachers = (
        len(records.teachers)
        if records.teachers is not None
        else (
            len(pupils[["school", "teacher"]].dropna().drop_duplicates())
            if "teacher" in pupils.columns
            else 0
        )
    )
    # Work on a fresh frame with a clean positional index; the caller's table is untouched.
    data = pupils.reset_index(drop=True)
    # The flow log counts schools and teachers only: give it those columns, so each count
    # copies two columns of the records rather than every one (seconds at national scale).
    ids = data[[c for c in ("school", "teacher") if c in data.columns]]
    flow = FlowRecorder(ids, n_schools=n_schools, n_teachers=n_teachers)
    if schools is not None:
        without = int((~schools["school"].isin(pupils["school"])).sum())
        flow.note("eligible", "school has no pupil records", schools=without)
    if records.teachers is not None and "teacher" in pupils.columns:
        taught = pd.MultiIndex.from_frame(pupils[["school", "teacher"]].dropna())
        listed = pd.MultiIndex.from_frame(records.teachers[["school", "teacher"]])
        flow.note(
            "eligible",
            "teacher has no pupil records (taught no tested class)",
            teachers=int((~listed.isin(taught)).sum()),
        )

    # --- eligibility ----------------------------------------------------------------
    _exclude_missing(flow, records, "outcome", "outcome missing", data["outcome"].isna())
    if spec.years is not None:
        outside = ~data["year"].between(*spec.years)
        flow.exclude(
            "eligible", f"year outside {spec.years[0]}-{spec.years[1]}", outside.to_numpy()
        )
    if spec.exclude_years:
        named = ", ".join(map(str, spec.exclude_years))
        flow.exclude(
            "eligible",
            f"year excluded as not comparable ({named})",
            data["year"].isin(spec.exclude_years).to_numpy(),
        )
    for column in spec.covariates:
        label = _MISSING_LABELS.get(column, f"{user(column, column)} missing")
        _exclude_missing(flow, records, column, label, data[column].isna())
    if teacher_level:
        flow.exclude("eligible", "no class teacher recorded", data["teacher"].isna().to_numpy())
    flow.record_stage("eligible", "all")

    # --- exposure ---------------------------------------------------------------------
    data = data.assign(year=data["year"].astype(int))
    if schools is not None and "area" in schools.columns:
        data = data.assign(
            area=data["school"].map(schools.drop_duplicates("school").set_index("school")["area"])
        )
    unit_keys = ["school", "teacher"] if teacher_level else ["school"]
    data = data.assign(unit=_unit_ids(data, unit_keys))
    starts, partial = _unit_starts(spec, records, data, unit_keys)
    first = data["unit"].map(starts["first_treated"]).fillna(0).astype(int)
    dose = data["unit"].map(starts["dose_hours"]).fillna(0.0).astype(float)
    data = data.assign(first_treated=first.to_numpy(), dose_hours=dose.to_numpy())

    # The sample each arm is allocated (the base of attrition): every record of the units in
    # the design, in the analysed years, whatever record exclusions follow or preceded.
    outside_design = data["unit"].isin(partial).to_numpy().copy()
    if spec.years is not None:
        outside_design |= ~data["year"].between(*spec.years).to_numpy()
    outside_design |= data["year"].isin(spec.exclude_years).to_numpy()
    if teacher_level:
        outside_design |= data["teacher"].isna().to_numpy()
    flow.exclude(
        "assigned",
        "enrolled only in other strands or below the minimum dose",
        data["unit"].isin(partial).to_numpy(),
    )
    last_year = int(data.loc[flow.keep, "year"].max()) if flow.keep.any() else 0
    outside_design |= (data["first_treated"] > last_year).to_numpy()
    flow.exclude(
        "assigned",
        "first exposed year after the data (start year plus lag)",
        (data["first_treated"] > last_year).to_numpy(),
    )
    kept_first = data["first_treated"].to_numpy()[flow.keep]  # not a copy of every column
    start_years = _sorted_distinct(kept_first[kept_first > 0])
    if not start_years:
        participating = data["unit"].isin([*starts.index, *partial]).to_numpy()
        raise DesignError(
            "no participating unit is left in the analysed records"
            + (
                _why_empty(flow, participating, "the participating schools", spec, records)
                or ": check the participation table's school and teacher ids, the strands and "
                "min_dose of the CohortSpec"
            )
        )
    if spec.comparison in ("never_treated", "staggered"):
        treated_arm = data["first_treated"] > 0
    else:
        earliest = start_years[0]
        treated_arm = data["first_treated"] == earliest
        later = (data["first_treated"] > earliest).to_numpy()
        own_start = later & (data["year"] >= data["first_treated"]).to_numpy()
        outside_design |= own_start
        flow.exclude(
            "assigned",
            "comparison unit on or after its own start (not-yet-treated design)",
            own_start,
        )
        if not (flow.keep & (data["first_treated"] == 0).to_numpy()).any() and len(start_years) > 1:
            # Later starters compare until the last of them starts.
            no_comparison = (data["year"] >= start_years[-1]).to_numpy()
            outside_design |= no_comparison
            flow.exclude(
                "assigned",
                "year with no comparison unit left (every unit has started)",
                no_comparison,
            )
        start_years = [earliest]
    data = data.assign(treated=treated_arm.to_numpy())
    allocated = ~outside_design
    for arm, label in ((True, "treated"), (False, "comparison")):
        flow.record_allocation(label, allocated & (data["treated"].to_numpy() == arm))
    balance_allocated = balance_table(data.loc[allocated], schools)
    # A treated unit first seen on or after its start (records missing, or cut by `years`) has
    # no before-and-after contrast: its fixed effect absorbs it, so it cannot inform a DiD.
    kept_first_year = data["year"].where(flow.keep).groupby(data["unit"]).transform("min")
    flow.exclude(
        "assigned",
        "treated unit with no record before its start",
        (data["treated"] & (kept_first_year >= data["first_treated"])).to_numpy(),
    )
    _require_arms(data, flow, spec, records, start_years, partial)
    flow.record_stage("assigned", "all")

    source_rows = pupils.index[flow.keep]
    data = data.loc[flow.keep].reset_index(drop=True)
    outcome_kind = _outcome_kind(spec, data["outcome"], source_rows, records)
    if outcome_kind == "pass_fail":  # a mean is then a percentage, a difference in points
        data = data.assign(outcome=100.0 * data["outcome"].astype(float))
    data, standardisation, outcome_sd, sd_n, sd_source = analysis_columns(spec, data)
    if outcome_kind == "pass_fail":
        outcome_sd, sd_n, sd_source = float("nan"), None, PASS_FAIL_SD

    flow.record_stage("analysed", "all")
    flow.merges = records.merges if records.merges is not None and len(records.merges) else None
    flow.attrition = _school_attrition(spec, records.pupils, data)
    for arm, label in ((True, "treated"), (False, "comparison")):
        mask = np.zeros(len(flow.keep), dtype=bool)
        mask[np.flatnonzero(flow.keep)[data["treated"].to_numpy() == arm]] = True
        flow.record_stage("analysed", label, mask=mask)

    columns = [c for c in data.columns if c not in ("outcome_std",)] + ["outcome_std"]
    data = data[columns]
    cohort = Cohort(
        spec=spec,
        pupils=data,
        unit_years=unit_year_means(data),
        flow=flow.log(),
        balance=balance_table(data, schools),
        standardisation=standardisation,
        outcome_sd=outcome_sd,
        outcome_sd_n=sd_n,
        outcome_sd_source=sd_source,
        years=tuple(_sorted_distinct(data["year"].to_numpy())),
        start_years=tuple(int(s) for s in start_years),
        balance_groups=balance_groups(data),
        balance_allocated=balance_allocated,
        source_rows=source_rows,
        user_columns=dict(records.columns),
        outcome_kind=outcome_kind,
    )
    # Selection on a dip (cohort/_dip.py): store the check, warn at the caller of build().
    return attach_dip_check(cohort, stacklevel=3)


#: What ``CohortSpec.outcome_kind`` may be.
OUTCOME_KINDS = ("auto", "score", "pass_fail")

#: The cohort's ``outcome_sd_source`` for a pass/fail outcome, which has no effect-size SD.
PASS_FAIL_SD = (
    "none: the outcome is pass/fail, whose effect size is Cox's conversion of the percentages"
)


def _outcome_kind(spec: CohortSpec, outcome: pd.Series, source_rows, records: Records) -> str:
    """``spec.outcome_kind`` resolved on the analysed outcomes: ``"pass_fail"`` when asked for
    (every value must then be 0 or 1) or, with ``"auto"``, when every value is 0 or 1 and no
    pupil-level SD was given (a 0/1 outcome with an SD was meant as a score)."""
    if spec.outcome_kind == "score":
        return "score"
    if spec.outcome_kind == "auto":
        return "pass_fail" if is_binary(outcome) and spec.pupil_sd is None else "score"
    name = records.columns.get("outcome", "outcome")
    # named by the user's column and the user's rows
    require_binary(pd.DataFrame({name: outcome.to_numpy()}, index=source_rows), name)
    return "pass_fail"


def analysis_columns(spec: CohortSpec, data: pd.DataFrame):
    """The columns every analysis reads, on the analysed rows with their ``treated`` arm:
    ``programme_start``, the analysis' ``first_treated``, ``event_time``, ``exposed`` and
    ``outcome_std``. Returns ``(data, standardisation, outcome_sd, sd_n, sd_source)``.

    Used by :meth:`CohortSpec.build` and by the lean cohort of
    :func:`cpdimpact.planning.diagnose`, so the two cannot drift apart.
    """
    # ``first_treated`` is the analysis' definition: comparison-arm units (later starters in a
    # not-yet-treated design) are untreated throughout the analysed years, so 0. Their actual
    # first exposed year stays in ``programme_start``.
    data = data.assign(
        programme_start=data["first_treated"],
        first_treated=data["first_treated"].where(data["treated"], 0),
    )
    event_time = (data["year"] - data["first_treated"]).where(data["treated"])
    data = data.assign(
        event_time=event_time.astype("Int64"),
        exposed=(data["treated"] & (data["year"] >= data["first_treated"])).to_numpy(),
    )
    # The effect-size SD and the standardised outcome.
    standardisation, outcome_sd, sd_n, sd_source = _standardise(spec, data)
    if spec.pupil_sd is not None:  # the user's pupil-level SD serves every effect size
        years = _sorted_distinct(data["year"].to_numpy())
        given = _national(spec.pupil_sd, years, "pupil_sd")
        outcome_sd, sd_n, sd_source = float(np.sqrt((given**2).mean())), None, spec.pupil_sd_source
    mean = data["year"].map(standardisation["mean"])
    sd = data["year"].map(standardisation["sd"])
    data = data.assign(outcome_std=((data["outcome"] - mean) / sd).astype(float))
    return data, standardisation, outcome_sd, sd_n, sd_source


def _school_attrition(spec: CohortSpec, pupils: pd.DataFrame, data: pd.DataFrame) -> pd.DataFrame:
    """Schools of each arm whose records begin after the first analysed year (opened inside
    the window) or end before the last (closed inside it), for the flow log.

    A school's years are those of any of its pupil records in the window (a record with a
    missing outcome still shows the school open; years left out by ``exclude_years`` do not
    count), after links have joined a school's URNs; its arm is treated when any of its
    analysed records is (teacher-level exposure: any of its teachers).
    """
    first, last = int(data["year"].min()), int(data["year"].max())
    years = pupils["year"]
    inside = (years >= first) & (years <= last) & ~years.isin(spec.exclude_years)
    span = pupils.loc[inside.to_numpy(dtype=bool)].groupby("school")["year"].agg(["min", "max"])
    arm = data.groupby("school")["treated"].any()
    records = data.groupby("school").size()
    span = span.reindex(arm.index)
    rows = []
    for treated, label in ((True, "treated"), (False, "comparison")):
        schools = arm.index[(arm == treated).to_numpy()]
        for change, hit in (
            (f"opened after {first} (no predecessor linked)", span.loc[schools, "min"] > first),
            (f"closed before {last} (no successor linked)", span.loc[schools, "max"] < last),
        ):
            which = schools[hit.to_numpy(dtype=bool)]
            rows.append(
                {
                    "arm": label,
                    "change": change,
                    "schools": len(which),
                    "pupils": int(records.reindex(which).sum()),
                }
            )
    return pd.DataFrame(rows, columns=["arm", "change", "schools", "pupils"])


def _unit_ids(data: pd.DataFrame, keys: list[str]) -> pd.Series:
    """The school id, or "school/teacher" text for teacher units (ids formatted alike in
    every table, so 12 and 12.0 name the same teacher)."""
    if keys == ["school"]:
        return data["school"]
    return _id_text(data["school"]) + "/" + _id_text(data["teacher"])


def _id_text(ids: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(ids):
        whole = ids.dropna()
        if (whole == np.round(whole)).all():
            ids = ids.astype("Int64")
    return ids.astype(str)


def _unit_starts(spec, records, data, unit_keys):
    """First treated year (start + lag) and total dose per unit; units enrolled only partially."""
    part = records.participation
    counted = np.ones(len(part), dtype=bool)
    if spec.strands is not None:
        if "strand" not in part.columns:
            raise MissingColumnError(
                f"strands={spec.strands!r} needs a {records.columns.get('strand', 'strand')!r} "
                "column in the participation table"
            )
        counted &= part["strand"].isin(spec.strands).to_numpy()
    if spec.min_dose > 0 and "dose_hours" in part.columns:
        # A missing dose would count as 0 hours and could push the unit below min_dose.
        unknown = counted & part["dose_hours"].isna().to_numpy()
        if unknown.any():
            raise InvalidValueError(
                f"min_dose={format_value(spec.min_dose)} needs the hours of every enrolment, "
                f"but column {records.columns.get('dose_hours', 'dose_hours')!r} of the "
                f"participation table is missing in {user_rows(part, part.index[unknown])}; "
                f"give those enrolments their hours (0 if none were attended)"
            )
    part = part.assign(_counted=counted)
    if spec.exposure == "teacher":
        # A whole-school enrolment (no teacher named) enrols every teacher of that school.
        teachers = data[["school", "teacher"]].dropna().drop_duplicates()
        whole = part[part["teacher"].isna()].drop(columns="teacher")
        whole = whole.merge(teachers, on="school", how="inner")
        rows = pd.concat([part[part["teacher"].notna()], whole], ignore_index=True)
    else:
        rows = part
    hours = rows["dose_hours"] if "dose_hours" in rows.columns else pd.Series(0.0, rows.index)
    rows = rows.assign(unit=_unit_ids(rows, unit_keys), _dose=hours.fillna(0.0).astype(float))
    used = rows[rows["_counted"]]
    per_unit = used.groupby("unit", sort=True).agg(
        start=("start_year", "min"), dose_hours=("_dose", "sum")
    )
    per_unit = per_unit[per_unit["dose_hours"] >= spec.min_dose] if spec.min_dose > 0 else per_unit
    starts = pd.DataFrame(
        {
            "first_treated": per_unit["start"].astype(int) + spec.lag,
            "dose_hours": per_unit["dose_hours"],
        }
    )
    partial = sorted(set(rows["unit"]) - set(starts.index), key=str)
    return starts, partial


def _require_arms(
    data: pd.DataFrame,
    flow: FlowRecorder,
    spec: CohortSpec,
    records: Records,
    start_years: list[int],
    partial: list,
) -> None:
    """Both arms must keep records; if one lost them all, say which exclusions emptied it."""
    kept = data.loc[flow.keep]
    if not kept["treated"].any():
        raise DesignError(
            "the treated arm is empty after applying the cohort specification"
            + (
                _why_empty(flow, data["treated"].to_numpy(), "the treated schools", spec, records)
                or "; check the participation table, strands, min_dose, lag and years"
            )
        )
    if kept["treated"].all() and not (spec.comparison == "staggered" and len(start_years) > 1):
        comparison = (~data["treated"] & ~data["unit"].isin(partial)).to_numpy()
        if comparison.any():  # there were comparison records: exclusions removed every one
            raise EmptyComparisonGroupError(
                "the comparison group is empty"
                + _why_empty(flow, comparison, "the comparison schools", spec, records)
            )
        hint = (
            "use comparison='not_yet_treated' so later starters act as comparisons until they "
            "start, or add records of schools that never took part"
            if spec.comparison == "never_treated"
            else "add records of schools that never took part, or of a later-starting cohort"
        )
        raise EmptyComparisonGroupError(
            f"the comparison group is empty: every analysed unit ({kept['unit'].nunique()}) "
            f"takes part in the programme (column "
            f"{records.columns.get('start_year', 'start_year')!r} of the participation table "
            f"gives each a start year); {hint}"
        )


def _exclude_missing(flow, records, column, reason, missing) -> None:
    """Exclude the pupil records missing ``column``: those read from a cell marker
    (``Records.from_csv(..., format="dfe")``) under ``"<reason>: <marker> (<its reason>)"``, one
    marker at a time (most cells first), the others under ``reason`` as always."""
    missing = missing.to_numpy(dtype=bool)
    marks = records.marked("pupils", column).to_numpy(dtype=object)
    marked = missing & pd.notna(marks)
    flow.exclude("eligible", reason, missing & ~marked)
    counts = pd.Series(marks[marked]).value_counts()
    for marker in sorted(counts.index, key=lambda m: (-counts[m], m)):
        why = records.marker_reason(marker)
        flow.exclude("eligible", f"{reason}: {marker} ({why})", marked & (marks == marker))


def _why_empty(
    flow: FlowRecorder, mask: np.ndarray, whose: str, spec: CohortSpec, records: Records
) -> str:
    """``": every record of <whose> was excluded: <reason> (<n> pupil records of <k> schools);
    ... <fix>"``, from the flow log's exclusions of the records in ``mask``; ``""`` if none
    of them was excluded."""
    steps = flow.why_excluded(mask)
    if not steps:
        return ""
    parts = [
        f"{reason} ({_count(n, 'pupil record')} of {_count(k, 'school')})" for reason, n, k in steps
    ]
    fixes = dict.fromkeys(f for reason, _, _ in steps if (f := _fix(reason, spec, records)))
    return (
        f": every record of {whose} was excluded by the cohort specification: "
        + "; ".join(parts)
        + "."
        + "".join(f" {f}" for f in fixes)
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _fix(reason: str, spec: CohortSpec, records: Records) -> str:
    """What to change for the records an exclusion step removed (``""``: nothing to add)."""
    user = records.columns.get
    reason = reason.split(": ", 1)[0]  # a record lost to a cell marker: its column's fix
    years = records.pupils["year"].dropna()
    window = spec.years or (-np.inf, np.inf)
    first, last = (format_value(years.min()), format_value(years.max())) if len(years) else ("", "")
    if reason == "outcome missing":
        return f"Column {user('outcome', 'outcome')!r} of the pupils table is empty for them."
    outside = len(years) and (window[1] < years.min() or window[0] > years.max())
    if reason.startswith("year outside") and outside:
        return (
            f"The pupil records cover {first}-{last}: set CohortSpec(years=...) to a window "
            f"within them."
        )
    if reason in {f"{user(c, c)} missing" for c in spec.covariates}:
        column = reason.removesuffix(" missing")
        return (
            f"Covariate {column!r} is missing for them: fill it in, or leave it out of the "
            f"covariates."
        )
    if reason == "no class teacher recorded":
        return f"Column {user('teacher', 'teacher')!r} of the pupils table is empty for them."
    if reason.startswith("first exposed year after the data"):
        return (
            f"The start year plus lag={spec.lag} falls after the last year of pupil records "
            f"({last}): reduce the lag, or add the later years' records."
        )
    if reason.startswith("enrolled only in other strands"):
        part = records.participation
        fixes = []
        if spec.strands is not None and "strand" in part.columns:
            held = ", ".join(map(format_value, sorted(set(part["strand"].dropna()), key=str)))
            fixes.append(
                f"CohortSpec(strands={spec.strands!r}) keeps enrolments in those strands only; "
                f"column {user('strand', 'strand')!r} of the participation table holds "
                f"{held or 'no strand'}."
            )
        if spec.min_dose > 0:
            fixes.append(f"CohortSpec(min_dose={spec.min_dose:g}) needs that many hours.")
        return " ".join(fixes)
    if reason.startswith("treated unit with no record before its start"):
        return (
            "A treated unit needs a record before its first exposed year (start year plus "
            "lag): check CohortSpec(years=...) and the start years."
        )
    return ""


def _national(value, years, name):
    if isinstance(value, Mapping):
        missing = [y for y in years if y not in value]
        if missing:
            raise InvalidValueError(
                f"{name} has no value for years {missing[:5]}; give one for every analysed year"
            )
        return pd.Series({y: float(value[y]) for y in years})
    return pd.Series(float(value), index=list(years))


def _sorted_distinct(values: np.ndarray) -> list:
    """The distinct ``values``, sorted, as Python scalars: hashed first (``pd.unique``), then
    the few distinct values sorted, not a sort of millions of records (``np.unique``)."""
    return np.sort(pd.unique(values)).tolist()


def _standardise(spec: CohortSpec, data: pd.DataFrame):
    years = _sorted_distinct(data["year"].to_numpy())
    # The reference records: the comparison arm, or, when staggered cohorts are analysed
    # together, every record not yet exposed (never-treated units and later starters' early
    # years).
    reference = ~data["exposed"] if spec.comparison == "staggered" else ~data["treated"]
    comparison = data.loc[reference, ["year", "outcome"]]
    grouped = comparison.groupby("year", sort=True)["outcome"]
    stats = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1), "n": grouped.size()})
    stats = stats.reindex(years)
    # Pooled within-year variance: sum of squared deviations over total degrees of freedom.
    ss = (stats["sd"] ** 2 * (stats["n"] - 1)).sum()
    dof = (stats["n"] - 1).clip(lower=0).sum()
    pooled_sd = float(np.sqrt(ss / dof)) if dof > 0 else float("nan")

    if spec.standardise == "national":
        mean = _national(spec.national_mean, years, "national_mean")
        sd = _national(spec.national_sd, years, "national_sd")
        if (sd <= 0).any():
            raise InvalidValueError("national_sd must be positive")
        table = pd.DataFrame(
            {"mean": mean, "sd": sd, "n": pd.NA}, index=pd.Index(years, name="year")
        )
        return table, float(np.sqrt((sd**2).mean())), None, "national SD"

    thin = stats.index[(stats["n"].fillna(0) < 2) | ~(stats["sd"] > 0)]
    stats["borrowed_from"] = pd.array([pd.NA] * len(stats), dtype="Int64")
    if spec.comparison == "staggered" and len(thin) < len(stats):
        # Once every unit has started no record is unexposed: those years borrow the mean and
        # SD of the nearest earlier (else later) year that has reference records. The outcome
        # points the estimators use are unaffected; only the convenience column is.
        usable = stats.drop(index=thin)
        for year in thin:
            earlier = usable.index[usable.index < year]
            source = earlier.max() if len(earlier) else usable.index.min()
            stats.loc[year, ["mean", "sd"]] = usable.loc[source, ["mean", "sd"]].to_numpy()
            stats.loc[year, "borrowed_from"] = int(source)
        thin = thin[:0]
    if spec.standardise == "comparison" and len(thin):
        raise DesignError(
            f"cannot standardise against the comparison records in years {list(thin)[:5]}: fewer "
            f"than two comparison pupil records or no spread; use standardise='national' or "
            f"restrict `years`"
        )
    if spec.standardise == "none":
        table = pd.DataFrame({"mean": 0.0, "sd": 1.0, "n": stats["n"]}, index=stats.index)
    elif spec.comparison != "staggered":
        table = stats.drop(columns="borrowed_from")
    else:
        table = stats
    table.index.name = "year"
    source = (
        "records not yet exposed, pooled within year"
        if spec.comparison == "staggered"
        else "comparison arm, pooled within year"
    )
    return table, pooled_sd, int(dof + len(years)), source
