"""Errors and warnings raised by cpdimpact.

Every input problem raises a subclass of :class:`CpdImpactError` whose message names the
column, the first offending rows and the fix. Problems that are legal but risky (few clusters,
staggered timing with a two-way fixed-effects estimator) emit a :class:`CpdImpactWarning`
subclass instead, so that ``warnings.simplefilter("error", CpdImpactWarning)`` turns them into
hard failures in a locked-down pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "CpdImpactError",
    "DataError",
    "MissingColumnError",
    "InvalidValueError",
    "DuplicateRowsError",
    "UnknownReferenceError",
    "DesignError",
    "EmptyComparisonGroupError",
    "EstimationError",
    "CpdImpactWarning",
    "FewClustersWarning",
    "StaggeredTimingWarning",
    "SmallSampleWarning",
    "SelectionOnDipWarning",
    "DeprecatedOptionWarning",
    # bad arguments to specs and functions (specs engineer, issue 15)
    "InvalidArgumentError",
    "ArgumentTypeError",
    # estimator input guards (issue 15)
    "NonAbsorbingTreatmentError",
    "InconsistentTreatmentError",
    "ConstantOutcomeError",
    "ExactFitWarning",
    # records: input tables, column mapping and ids (issue 15)
    "ColumnMappingError",
    "IdsReconciledWarning",
    # DfE files: years, markers, programme starts (dfe readers, issue 12)
    "AcademicYearError",
    "UnknownMarkerError",
    "LateStartWarning",
    # school identity over time: links between URNs and area codes (links, issue 12)
    "SchoolLinkError",
    # published figures (issue 13)
    "SchoolMeansError",
    # synthetic control: held-out pre-years (donors, issue 13)
    "TooFewPreYearsError",
    # binomial and Poisson multilevel models (glmm, issue 17)
    "OutcomeFamilyError",
    "SeparationError",
    # pass/fail outcomes: 0/1 columns, proportions, linear-probability bounds (binary, issue 17)
    "NotBinaryError",
    "ProbabilityBoundsWarning",
    # teacher records: the School Workforce Census shape (workforce, issue 18)
    "TeacherReturnWarning",
    # teacher survival: spells in post, their lengths and endings (survival, issue 18)
    "DurationError",
    "EventCodingError",
    "SingleArmError",
    "format_rows",
    "format_value",
]


class CpdImpactError(Exception):
    """Base class of every error cpdimpact raises on purpose."""


class DataError(CpdImpactError, ValueError):
    """The input tables are malformed: a column is missing, has invalid values, or rows clash."""


class MissingColumnError(DataError, KeyError):
    """A required column is absent from an input table."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class InvalidValueError(DataError):
    """A column holds values that cannot be used (non-numeric, all missing, out of range)."""


class DuplicateRowsError(DataError):
    """Rows that must be unique (one pupil per year, one school per id) are repeated."""


class UnknownReferenceError(DataError):
    """A row refers to a school or teacher that the reference table does not hold."""


class DesignError(CpdImpactError, ValueError):
    """The evaluation design cannot be built from these data (no comparison group, no pre-period)."""


class EmptyComparisonGroupError(DesignError):
    """No unit is available to serve as a comparison."""


class EstimationError(CpdImpactError, RuntimeError):
    """A model could not be estimated (collinear design, no variation in treatment)."""


class CpdImpactWarning(UserWarning):
    """Base class of cpdimpact's warnings: legal, but the evaluator should know."""


class DeprecatedOptionWarning(CpdImpactWarning, FutureWarning):
    """An option was given under the spelling it had before the option glossary.

    The old spelling still works for one release; the message names the old and the new
    option (see :data:`cpdimpact.estimator.GLOSSARY`). A :class:`FutureWarning` too, so it is
    shown by default.
    """


class FewClustersWarning(CpdImpactWarning):
    """Cluster-robust inference with few clusters (under about 40) tends to over-reject."""


class StaggeredTimingWarning(CpdImpactWarning):
    """Two-way fixed effects with staggered start years can be biased when effects vary."""


class SmallSampleWarning(CpdImpactWarning):
    """A group or cell is small enough that estimates or published counts are fragile."""


class SelectionOnDipWarning(CpdImpactWarning):
    """The treated units were unusually low in the year before they started.

    Emitted by :meth:`CohortSpec.build <cpdimpact.cohort.CohortSpec.build>` when
    :func:`~cpdimpact.cohort.check_pre_period_dip` flags a start cohort. Units chosen after a bad year recover
    without help (regression to the mean), so a before-and-after comparison, or a
    difference-in-differences based on that year against units that were not chosen,
    overstates the effect. Compare with units chosen by the same rule later (not-yet-treated),
    or with comparison units matched on the whole pre-period trajectory; see
    ``docs/choosing_a_comparison_group.md``. The numbers are in ``cohort.dip_check``.
    """


# ---- bad arguments to specs and functions (specs engineer, issue 15)
class InvalidArgumentError(InvalidValueError):
    """An option given to a spec or function is out of range or not one of its choices.

    Raised when a spec is made (``DiD(alpha=1.5)``, ``StaggeredDiD(n_bootstrap=-1)``,
    ``NearestMatching(caliper=-0.2)``), not after the data are read, so a mistyped option fails
    before any work is done. The message names the argument, the value as written and the
    values allowed. The value is an option, not a column, but it subclasses
    :class:`InvalidValueError` (which the effect-size, planning and report functions have
    always raised for bad options) and so :class:`ValueError`: existing ``except`` clauses
    keep working. The shared checks live in :mod:`cpdimpact._validate`.
    """


class ArgumentTypeError(InvalidArgumentError, TypeError):
    """An option has the wrong type: a string for a number, ``True`` for a count, a float seed.

    A subclass of :class:`InvalidArgumentError` (so one ``except`` catches every bad argument)
    and of :class:`TypeError`, which callers may already catch.
    """


# ---- estimator input guards (issue 15): raised by cpdimpact._guards -------------------------
class NonAbsorbingTreatmentError(InvalidValueError, DesignError):
    """A unit's treatment switches off after switching on (or its start year varies).

    Every estimator of cpdimpact assumes absorbing treatment: a unit stays treated from its
    first treated period on. The message names the first units and periods and the fix.
    """


class InconsistentTreatmentError(InvalidValueError):
    """The treatment indicator disagrees with the ``first_treated`` column of the same rows."""


class ConstantOutcomeError(InvalidValueError):
    """The outcome does not vary (overall, in the rows an estimator uses, or beyond what the
    model explains exactly), so any estimate and standard error would be rounding noise."""


class ExactFitWarning(CpdImpactWarning):
    """The model explains the outcome exactly: the estimate may be right (noiseless simulated
    data), but its standard error, interval and p-value are rounding noise."""


# ---------------------------------------------------------------------- records (issue 15)
class ColumnMappingError(DataError, KeyError):
    """A ``columns=`` mapping cannot be applied.

    It names a canonical name cpdimpact does not know, is written the wrong way round (your
    column as the key, cpdimpact's name as the value: the message gives the reversed mapping),
    maps two canonical names to one column, or renames a column onto one the table already has.
    """

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class IdsReconciledWarning(CpdImpactWarning):
    """Ids of one school or teacher were spelled differently across tables and were matched.

    ``'0100001'``, ``' 100001 '`` and ``100001`` name the same school (URNs, UPNs and teacher
    numbers are numeric codes); :class:`~cpdimpact.records.Records` trims surrounding spaces,
    compares ids as numbers when the text is all digits, and uses the reference table's
    spelling (schools for school ids, teachers for teacher ids). The matches are listed in the
    message and in ``Records.id_notes``; see ``docs/records.md``.
    """


# ------------------------------------------------------------ DfE files (issue 12)
class AcademicYearError(InvalidValueError):
    """A year cannot be read as a test year (``'2018/20'``, ``'18/19'``, ``'autumn'``).

    Raised by :func:`cpdimpact.dfe.test_year` and the functions built on it; the message names
    the value (and for a column, the column and its first rows) and the accepted forms.
    """


class UnknownMarkerError(InvalidValueError):
    """A published numeric column holds text that is neither a number nor a known marker.

    The message names the file, column, values and rows, and how to declare a local marker
    (``extra_markers=`` or ``na_values=``); see :data:`cpdimpact.dfe.MARKERS`.
    """


class LateStartWarning(CpdImpactWarning):
    """A programme started in the summer term, so its first affected results are next year's.

    Emitted by :func:`cpdimpact.dfe.first_affected_test_year` for a start date on or after
    1 April: the tests are in May, weeks later. Give the test year explicitly to override.
    """


# ---------------------------------------------- school identity over time (links, issue 12)
class SchoolLinkError(InvalidValueError):
    """A links table (predecessor URN -> successor URN) cannot be read or applied.

    Raised by :class:`~cpdimpact.records.Records` when the table has columns of neither
    accepted shape, a date or id that cannot be read, links that go round in a cycle
    (A -> B -> A), one school split into two successors, or links that would join two schools
    that were open at the same time (both have pupil records in one year). The message names
    the file (or table), the column, the values, the rows (CSV lines for a file) and the fix;
    see "Schools that change URN" in ``docs/records.md``.
    """


# ---------------------------------------------- published figures (issue 13)
class SchoolMeansError(InvalidValueError):
    """A pupils table that holds school figures, one record per school and year.

    Raised by :meth:`CohortSpec.build <cpdimpact.cohort.CohortSpec.build>`: treated as pupils,
    the spread of school means would be taken for a pupil-level SD and every effect size and
    months figure would be several times too large. Read such figures with
    :class:`~cpdimpact.published.PublishedRecords` (see ``docs/published_data.md``).
    """


# ------------------------------------ synthetic control: held-out pre-years (donors, issue 13)
class TooFewPreYearsError(DesignError):
    """Holding out pre-period years would leave fewer than two to fit the comparison on.

    Raised by :func:`cpdimpact.comparison.cross_validate_synthetic`; the message gives the
    pre-period years and how many may be held out (usually ``holdout=1``).
    """


# ------------------------------------ binomial and Poisson multilevel models (glmm, issue 17)
class OutcomeFamilyError(InvalidValueError):
    """An outcome's values do not fit the model's family.

    Raised by :class:`~cpdimpact.multilevel.MultilevelModel` with ``family="binomial"`` for an
    outcome that is not 0/1 (or, with ``trials``, not a proportion of whole successes out of
    positive trials) and with ``family="poisson"`` for counts that are negative or not whole.
    The message names the column, the first offending rows and the fix.
    """


class SeparationError(InvalidValueError):
    """A covariate predicts a binary (or zero) outcome perfectly: its fixed effect is infinite.

    Complete or quasi-complete separation (Albert & Anderson 1984, *Biometrika* 71(1)): e.g.
    every treated pupil passes. The maximum-likelihood estimate does not exist, so the model
    refuses rather than report a huge log-odds ratio with a huge standard error. A group in
    which every pupil passes is *not* separation: its random effect absorbs it.
    """


# ------------- pass/fail outcomes: 0/1 columns, proportions, linear-probability bounds (issue 17)
class NotBinaryError(OutcomeFamilyError):
    """A column that must be a 0/1 (pass/fail) outcome, or a proportion with its denominator,
    holds other values.

    Raised by :func:`cpdimpact._guards.require_binary` (values other than 0/1 or True/False:
    ``2``, ``0.5``, ``-1``, ``"Y"``/``"N"`` strings) and
    :func:`cpdimpact._guards.require_proportions` (a proportion outside [0, 1], a denominator
    that is not positive, or a number of successes that is not whole). The message names the
    column, the first offending rows and values, and the fix.
    """


class ProbabilityBoundsWarning(CpdImpactWarning):
    """A linear-probability estimate implies a proportion outside [0, 1].

    A difference-in-differences on a 0/1 outcome estimates a difference in proportions. The
    proportion the treated rows would have had without the programme is the observed one minus
    the estimate; when that lies below 0 or above 1 the linear model has extrapolated past what
    a proportion can be, and the estimate cannot be converted to an odds ratio or a Cox effect
    size. The percentage-point estimate stands, but read it with care (see "Binary (pass/fail)
    outcomes" in ``docs/effects.md``).
    """


# ------------- teacher records: the School Workforce Census shape (workforce, issue 18)
class TeacherReturnWarning(CpdImpactWarning):
    """A teacher leaves state-funded teaching (is absent from a census) and later reappears.

    Returners are real: DfE counts thousands of qualified returners to teaching every year, so
    a reappearance is not refused as an error. It is still worth a look (a re-used or mistyped
    teacher id looks the same), so :class:`cpdimpact.workforce.TeacherRecords` announces it
    once, naming the teachers, the census years and the rows, and lists every return in
    ``TeacherRecords.returners``. Retention outcomes count the first absence as leaving (the
    spell ends there); the return does not undo it. See "Returners" in ``docs/teachers.md``.
    """


# ------------- teacher survival: spells in post, their lengths and endings (survival, issue 18)
class DurationError(InvalidValueError):
    """A spell's duration (years in post) is missing, not a number, zero or negative.

    Every spell in post lasts some positive time: a teacher counted at one census and gone by
    the next has a duration of 1 year. The message names the column, the first offending rows
    and the fix.
    """


class EventCodingError(InvalidValueError):
    """The column saying whether a spell ended (the teacher left) is not 0/1 (or True/False).

    1 means the teacher left (the event was seen), 0 that they were still in post when last
    observed (censored). The message names the column, the values, the first rows and the fix.
    """


class SingleArmError(EmptyComparisonGroupError):
    """Every teacher is in the same arm: there is nothing to compare participants with.

    Raised by the survival estimators when the treatment column holds only one value among the
    rows used (after rows of zero weight are set aside).
    """


#: Name of the index of a table read by ``Records.from_csv``: each row's line in its file (the
#: header is line 1), so messages point at the lines to fix.
CSV_LINE = "csv_line"


def format_rows(rows: Iterable[object], *, limit: int = 5) -> str:
    """Render the first ``limit`` offending row labels for an error message.

    Parameters
    ----------
    rows
        Row labels (index values) or short descriptions of the offending rows. An index named
        :data:`CSV_LINE` (a slice of a table read from CSV) is worded "CSV lines".
    limit
        How many to show before summarising the rest as a count.

    Returns
    -------
    str
        For example ``"rows 3, 17, 20 and 41 more"`` or ``"CSV line 7"``.
    """
    lines = getattr(rows, "name", None) == CSV_LINE  # an index slice of a table read from CSV
    items: Sequence[object] = list(rows)
    shown = ", ".join(format_value(r) if isinstance(r, str) else str(r) for r in items[:limit])
    more = len(items) - limit
    label = ("CSV line" if lines else "row") + ("" if len(items) == 1 else "s")
    return f"{label} {shown}" + (f" and {more} more" if more > 0 else "")


def format_value(value: object) -> str:
    """repr of a plain Python value for messages: ``12``, not ``np.int64(12)``; 3.0 as 3."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return repr(value)
