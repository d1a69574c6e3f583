"""Retention and progression outcomes from teacher records: spells and school cohort shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._validate import check_choice, check_int
from ..errors import InvalidArgumentError, format_value
from ._records import ROLES, YEAR_CONVENTION, TeacherRecords

__all__ = ["Spells", "spells", "cohort_outcomes", "OUTCOMES"]

#: The spell outcomes :func:`spells` measures, and what ends a spell, in words.
OUTCOMES = {
    "teaching": "leaving state-funded teaching (the first census the teacher is not in post)",
    "school": "leaving the baseline school (the first census the teacher is not in post there: "
    "moved to another school or left teaching)",
    "promotion": "a first promotion to {to} or above (the first census in post in such a role; "
    "censored at the last census in post before leaving teaching)",
}


@dataclass(frozen=True, eq=False)
class Spells:
    """One row per teacher of a baseline cohort: the time to an event, for survival analysis.

    Built by :func:`spells`; immutable.

    Attributes
    ----------
    data
        One row per teacher: ``teacher``, ``school`` (at the baseline census), ``baseline``
        (its year), ``duration`` (census years from the baseline to the event or censoring,
        1 or more), ``event`` (1 event, 0 censored), ``destination`` (``"moved school"``,
        ``"left teaching"`` or missing, for ``outcome="school"``), ``treated`` (1 for a
        teacher who takes part from the baseline: enrolled, or in a school enrolled as a whole,
        starting that year), ``strand`` and ``start_year`` (of the programme, missing for the
        comparison arm unless it starts later), ``censored_at_start`` (1 for a comparison
        teacher censored when their later programme start made them treated), ``role``,
        ``fte`` and ``years_service`` at the baseline, and the schools table's columns.
        ``censored_at_start`` is also 1 for a comparison teacher censored when they moved into
        a school already taking part as a whole.
    excluded
        Teachers left out, by ``reason``, with their number (``teachers``); empty if none.
    outcome
        ``"teaching"``, ``"school"`` or ``"promotion"``.
    baseline
        The baseline census year.
    promotion_to
        The lowest role counted as a promotion (``outcome="promotion"``).
    """

    data: pd.DataFrame
    excluded: pd.DataFrame
    outcome: str
    baseline: int
    promotion_to: str

    def describe(self) -> str:
        """What a spell measures, in one sentence."""
        event = OUTCOMES[self.outcome].format(to=self.promotion_to)
        return (
            f"Time from the {self.baseline} census to {event}, in census years, for teachers "
            f"in post at the {self.baseline} census; censored at the last census "
            f"({YEAR_CONVENTION})."
        )


class _Panel:
    """Teachers by census year: the school (code, -1 when not in post) and the role rank."""

    def __init__(self, records: TeacherRecords):
        census = records.census
        posts = census[census["in_post"].to_numpy(dtype=bool)]
        self.first, self.last = records.years
        self.teacher_code, self.teachers = pd.factorize(posts["teacher"], sort=True)
        self.school_code, self.schools = pd.factorize(posts["school"], sort=True)
        n, m = len(self.teachers), self.last - self.first + 1
        col = posts["year"].to_numpy() - self.first
        self.school = np.full((n, m), -1, dtype=np.int64)
        self.school[self.teacher_code, col] = self.school_code
        ranks = {role: i for i, role in enumerate(ROLES)}
        self.rank = np.full((n, m), -1, dtype=np.int64)
        self.rank[self.teacher_code, col] = posts["role"].map(ranks).to_numpy(dtype=np.int64)
        self.posts = posts
        self.col = col

    def at(self, year: int, column: str) -> np.ndarray:
        """A census column of every teacher in ``year`` (NaN when not in post)."""
        out = np.full(len(self.teachers), np.nan, dtype=object)
        if column in self.posts.columns:
            mask = self.col == year - self.first
            out[self.teacher_code[mask]] = self.posts[column].to_numpy()[mask]
        return out


def _first(mask: np.ndarray) -> np.ndarray:
    """Index of the first True per row, or the number of columns when none."""
    if mask.shape[1] == 0:
        return np.zeros(mask.shape[0], dtype=np.int64)
    return np.where(mask.any(axis=1), mask.argmax(axis=1), mask.shape[1])


def _target_rank(promotion_to: str) -> int:
    check_choice(promotion_to, "promotion_to", ROLES[1:])
    return ROLES.index(promotion_to)


def _enrolments(records: TeacherRecords):
    """Named enrolments by teacher and whole-school enrolments by school: (start, strand)."""
    part = records.participation
    if part is None:
        return {}, {}
    strand = part["strand"] if "strand" in part.columns else pd.Series(np.nan, index=part.index)
    named = part["teacher"].notna().to_numpy(dtype=bool)
    by_teacher = dict(
        zip(
            part["teacher"][named],
            zip(part["start_year"][named], strand[named], strict=True),
            strict=True,
        )
    )
    by_school = dict(
        zip(
            part["school"][~named],
            zip(part["start_year"][~named], strand[~named], strict=True),
            strict=True,
        )
    )
    return by_teacher, by_school


def spells(
    records: TeacherRecords,
    *,
    outcome: str = "teaching",
    baseline: int | None = None,
    promotion_to: str = "senior leader",
) -> Spells:
    """Time to leaving or promotion for every teacher in post at a baseline census.

    Parameters
    ----------
    records
        The teacher records.
    outcome
        ``"teaching"`` (leaving state-funded teaching), ``"school"`` (leaving the baseline
        school) or ``"promotion"`` (a first promotion to ``promotion_to`` or above).
    baseline
        The census year of the cohort. Default: the earliest ``start_year`` of the
        participation table (the census of the programme's first year).
    promotion_to
        The lowest role that counts as a promotion: ``"senior leader"`` (default: the
        leadership group), ``"head"`` or ``"middle leader"``.

    Returns
    -------
    Spells
        One row per teacher of the cohort (see :class:`Spells`) and the teachers excluded,
        counted by reason.

    Raises
    ------
    cpdimpact.errors.InvalidArgumentError
        No baseline (and no participation table), or a baseline that is not a census year
        with a later census.

    See Also
    --------
    cohort_outcomes : the same events as school-by-year shares.

    Notes
    -----
    Time is counted in census years from the baseline: a teacher in post at the baseline
    census and absent from the next has ``duration`` 1 and ``event`` 1 (left within a year).
    A teacher still in post at the last census is censored there (``duration`` = last census
    minus the baseline, ``event`` 0). A promotion is seen only in a census the teacher is in
    post in, so a teacher who leaves teaching before being promoted is censored at their last
    census in post: the promotion hazard is cause-specific, with leaving as a competing risk.
    A teacher gone by the census after the baseline is never seen at risk of promotion and is
    excluded and counted (every spell has ``duration`` 1 or more). A returner's spell ends at the first
    absence (see :class:`~cpdimpact.errors.TeacherReturnWarning`).

    The arms: a teacher whose own enrolment, or their baseline school's whole-school
    enrolment, starts at the baseline is treated; one whose start is later stays in the
    comparison arm until that start and is censored there (``censored_at_start``), so no
    comparison spell counts time after its own start (nor after a move into a school taking
    part as a whole, where it is censored too); one whose start is earlier is excluded
    (already exposed at the baseline) and counted in :attr:`Spells.excluded`. For
    ``outcome="promotion"`` teachers already in a role at or above ``promotion_to`` at the
    baseline are not at risk and are excluded and counted.

    Examples
    --------
    >>> from cpdimpact.datasets import simulate_careers
    >>> from cpdimpact.workforce import spells
    >>> rec = simulate_careers("city_partnership", seed=1, scale=0.25)
    >>> s = spells(rec, outcome="teaching")
    >>> sorted(s.data["treated"].unique().tolist())
    [0, 1]
    """
    check_choice(outcome, "outcome", tuple(OUTCOMES))
    target = _target_rank(promotion_to)
    panel = _Panel(records)
    b = _baseline(records, baseline)
    j = b - panel.first
    in_cohort = panel.school[:, j] >= 0
    school_b = panel.school[:, j]
    later = panel.school[:, j + 1 :]
    horizon = panel.last - b
    present = later >= 0
    destination = np.full(len(panel.teachers), None, dtype=object)
    if outcome == "teaching":
        step = _first(~present)
        event = step < horizon
        duration = np.where(event, step + 1, horizon)
    elif outcome == "school":
        step = _first(later != school_b[:, None])
        event = step < horizon
        duration = np.where(event, step + 1, horizon)
        moved = np.zeros(len(step), dtype=bool)
        rows = np.flatnonzero(event)
        moved[rows] = later[rows, step[rows]] >= 0
        destination[event & moved] = "moved school"
        destination[event & ~moved] = "left teaching"
    else:
        reached = _first(panel.rank[:, j + 1 :] >= target)
        gone = _first(~present)
        event = reached < np.minimum(gone, horizon)
        duration = np.where(event, reached + 1, np.minimum(gone, horizon))
    by_teacher, by_school = _enrolments(records)
    teachers = panel.teachers
    schools_b = np.where(in_cohort, school_b, 0)
    baseline_school = panel.schools.to_numpy()[schools_b]
    # each teacher's start: their own enrolment's or their baseline school's, the earlier
    own_start = pd.Series(teachers).map({t: e[0] for t, e in by_teacher.items()}).to_numpy(float)
    own_strand = pd.Series(teachers).map({t: e[1] for t, e in by_teacher.items()}).to_numpy()
    school_start = pd.Series(baseline_school).map({k: e[0] for k, e in by_school.items()})
    school_strand = pd.Series(baseline_school).map({k: e[1] for k, e in by_school.items()})
    school_start = np.where(in_cohort, school_start.to_numpy(float), np.nan)
    use_school = np.isnan(own_start) | (school_start < own_start)
    start = np.where(use_school, school_start, own_start)
    strand = np.where(use_school, school_strand.to_numpy(), own_strand)
    strand = np.where(in_cohort & ~np.isnan(start), strand, None)
    excluded = []
    before = in_cohort & (start < b)
    if before.any():
        excluded.append(("enrolled before the baseline (already taking part)", int(before.sum())))
    keep = in_cohort & ~before
    if outcome == "promotion":
        senior = keep & (panel.rank[:, j] >= target)
        if senior.any():
            excluded.append(
                (
                    f"already {promotion_to} or above at the baseline (not at risk)",
                    int(senior.sum()),
                )
            )
        keep &= ~senior
    absent = [t for t, (s, _) in by_teacher.items() if s == b]
    not_in_post = int(np.sum(~pd.Index(absent).isin(teachers[in_cohort]))) if absent else 0
    if not_in_post:
        excluded.append(("enrolled at the baseline but not in post at its census", not_in_post))
    treated = (start == b).astype(np.int64)
    later_start = start > b
    # a comparison teacher leaves the comparison when their own (later) start comes, or when
    # they are in post in a school whose whole-school enrolment has started
    whole_start = pd.Series(panel.schools).map({k: e[0] for k, e in by_school.items()})
    whole_start = whole_start.to_numpy(float)
    years = np.arange(b + 1, panel.last + 1)
    joined = present & (whole_start[np.maximum(later, 0)] <= years[None, :])
    moved_in = _first(joined) + 1.0
    moved_in[moved_in > horizon] = np.inf
    until = np.fmin(np.where(later_start, start - b, np.inf), moved_in)
    cut = (treated == 0) & (duration > until)
    duration = np.where(cut, until, duration).astype(np.int64)
    event = np.where(cut, False, event)
    if outcome == "promotion":
        # gone by the next census: never in post where a promotion could be seen (a spell of
        # length 0, which no survival estimator can use)
        never = keep & (duration == 0)
        if never.any():
            excluded.append(
                ("left teaching before the next census (never seen at risk)", int(never.sum()))
            )
        keep &= ~never
    strand = np.where(treated == 1, strand, None)
    shown_start = np.where(treated == 1, start, np.where(later_start, start, np.nan))
    data = pd.DataFrame(
        {
            "teacher": teachers[keep],
            "school": baseline_school[keep],
            "baseline": b,
            "duration": duration[keep],
            "event": event[keep].astype(np.int64),
            "destination": destination[keep],
            "treated": treated[keep],
            "strand": strand[keep],
            "start_year": shown_start[keep],
            "censored_at_start": cut[keep].astype(np.int64),
            "role": panel.at(b, "role")[keep],
            "fte": pd.to_numeric(pd.Series(panel.at(b, "fte")[keep]), errors="coerce").to_numpy(),
            "years_service": pd.to_numeric(
                pd.Series(panel.at(b, "years_service")[keep]), errors="coerce"
            ).to_numpy(),
        }
    )
    if outcome != "school":
        data = data.drop(columns="destination")
    data = _with_schools(data, records)
    excluded_frame = pd.DataFrame(excluded, columns=["reason", "teachers"]).astype(
        {"teachers": "int64"}
    )
    return Spells(
        data=data, excluded=excluded_frame, outcome=outcome, baseline=b, promotion_to=promotion_to
    )


def _baseline(records: TeacherRecords, baseline: int | None) -> int:
    first, last = records.years
    if baseline is None:
        if records.participation is None or records.participation.empty:
            raise InvalidArgumentError(
                "spells() needs a baseline census year: give baseline=, or records with a "
                "participation table (the earliest start_year is then the baseline)."
            )
        return int(records.participation["start_year"].min())
    check_int(baseline, "baseline", minimum=None)
    if not first <= int(baseline) < last:
        raise InvalidArgumentError(
            f"baseline={format_value(baseline)} is not a census year with a later census: the "
            f"census runs from {first} to {last}, so give a baseline from {first} to {last - 1} "
            f"({YEAR_CONVENTION})."
        )
    return int(baseline)


def _with_schools(data: pd.DataFrame, records: TeacherRecords) -> pd.DataFrame:
    if records.schools is None:
        return data
    extra = [c for c in records.schools.columns if c != "school" and c not in data.columns]
    if not extra:
        return data
    lookup = records.schools.drop_duplicates("school").set_index("school")[extra]
    return data.join(lookup, on="school")


def cohort_outcomes(
    records: TeacherRecords, *, years: int = 1, promotion_to: str = "senior leader"
) -> pd.DataFrame:
    """School-by-year shares of each baseline cohort still in post, or promoted, k years on.

    Parameters
    ----------
    records
        The teacher records.
    years
        k, the years after the cohort's census at which the outcome is read (1 or more).
    promotion_to
        The lowest role that counts as a promotion (as :func:`spells`).

    Returns
    -------
    pandas.DataFrame
        One row per school and cohort year ``year`` (every census year with a census ``years``
        later), sorted by school and year: ``school`` and ``unit`` (the same id, for the DiD
        estimators' default), ``year``, ``n_teachers`` (the cohort: teachers in post at the
        school at that census), ``stayed_school`` and ``stayed_teaching`` (of them, in post at
        the school / in any school at every census up to ``year + years``), ``left_school``,
        ``left_teaching`` (the rest), ``n_at_risk_promotion`` (below ``promotion_to``) and
        ``promoted`` (of them, promoted by ``year + years`` while in teaching), the shares
        ``share_stayed_school``, ``share_stayed_teaching``, ``share_left_school``,
        ``share_left_teaching`` (of ``n_teachers``) and ``share_promoted`` (of
        ``n_at_risk_promotion``; missing when none is at risk), ``first_treated`` (the
        school's earliest programme start, 0 when it never takes part), ``treated``,
        ``exposed`` (treated and ``year >= first_treated``), ``window_overlaps_start`` (a
        pre-start cohort whose k years run into the start) and ``school_teachers`` (the
        school's mean cohort size, constant within a school).

    Raises
    ------
    cpdimpact.errors.InvalidArgumentError
        ``years`` below 1, or as long as the census or longer.

    See Also
    --------
    spells : the same events as times, one row per teacher.

    Notes
    -----
    A cohort's shares use the same events as :func:`spells` with that year as the baseline:
    ``share_left_teaching`` is the share of the cohort whose spell to leaving teaching ends
    within ``years`` (none is censored, as the census runs ``years`` past every cohort row).
    Returners count as leavers at their first absence.

    For :class:`~cpdimpact.did.DiD` give ``weights="n_teachers"`` (analytic weights: a share
    of more teachers is more precise) and ``cluster="school"``. :class:`~cpdimpact.did.
    StaggeredDiD` takes sampling weights constant within a unit: ``weights="school_teachers"``
    weights schools by their size; without weights each school counts once. A cohort before
    the start whose ``years`` run past the start (``window_overlaps_start``) is partly
    exposed: give ``StaggeredDiD(anticipation=years)`` or drop those rows.

    Examples
    --------
    >>> from cpdimpact.datasets import simulate_careers
    >>> from cpdimpact.workforce import cohort_outcomes
    >>> rec = simulate_careers("city_partnership", seed=1, scale=0.25)
    >>> out = cohort_outcomes(rec, years=1)
    >>> bool((out["n_teachers"] == out["stayed_teaching"] + out["left_teaching"]).all())
    True
    """
    target = _target_rank(promotion_to)
    panel = _Panel(records)
    span = panel.last - panel.first
    check_int(years, "years", minimum=1)
    if years >= span + 1:
        raise InvalidArgumentError(
            f"years={years} leaves no cohort: the census runs from {panel.first} to "
            f"{panel.last}, so k can be at most {span}."
        )
    n_schools = len(panel.schools)
    rows = []
    for j in range(0, span - years + 1):
        school = panel.school[:, j]
        cohort = school >= 0
        window = panel.school[cohort, j : j + years + 1]
        code = school[cohort]
        stayed_school = (window == code[:, None]).all(axis=1)
        stayed_teaching = (window >= 0).all(axis=1)
        at_risk = panel.rank[cohort, j] < target
        present_so_far = np.cumprod(window[:, 1:] >= 0, axis=1).astype(bool)
        promoted = ((panel.rank[cohort, j + 1 : j + years + 1] >= target) & present_so_far).any(
            axis=1
        ) & at_risk

        def count(flags, code=code):
            return np.bincount(code, weights=flags.astype(float), minlength=n_schools)

        n = np.bincount(code, minlength=n_schools)
        present = n > 0
        rows.append(
            pd.DataFrame(
                {
                    "school": panel.schools.to_numpy()[present],
                    "year": panel.first + j,
                    "n_teachers": n[present],
                    "stayed_school": count(stayed_school)[present].astype(np.int64),
                    "stayed_teaching": count(stayed_teaching)[present].astype(np.int64),
                    "n_at_risk_promotion": count(at_risk)[present].astype(np.int64),
                    "promoted": count(promoted)[present].astype(np.int64),
                }
            )
        )
    out = pd.concat(rows, ignore_index=True)
    out = out.assign(
        left_school=out["n_teachers"] - out["stayed_school"],
        left_teaching=out["n_teachers"] - out["stayed_teaching"],
    )
    out = out.assign(
        share_stayed_school=out["stayed_school"] / out["n_teachers"],
        share_stayed_teaching=out["stayed_teaching"] / out["n_teachers"],
        share_left_school=out["left_school"] / out["n_teachers"],
        share_left_teaching=out["left_teaching"] / out["n_teachers"],
        share_promoted=out["promoted"]
        / out["n_at_risk_promotion"].where(out["n_at_risk_promotion"] > 0),
    )
    starts = (
        records.participation.groupby("school")["start_year"].min()
        if records.participation is not None
        else pd.Series(dtype="int64")
    )
    first_treated = out["school"].map(starts).fillna(0).astype(np.int64)
    treated = (first_treated > 0).astype(np.int64)
    out = out.assign(
        unit=out["school"],
        first_treated=first_treated,
        treated=treated,
        exposed=((treated == 1) & (out["year"] >= first_treated)).astype(np.int64),
        window_overlaps_start=(
            (treated == 1) & (out["year"] < first_treated) & (out["year"] + years >= first_treated)
        ).astype(np.int64),
        school_teachers=out.groupby("school")["n_teachers"].transform("mean"),
    )
    out = _with_schools(out, records)
    front = ["school", "unit", "year"]
    out = out[front + [c for c in out.columns if c not in front]]
    return out.sort_values(["school", "year"], kind="stable").reset_index(drop=True)
