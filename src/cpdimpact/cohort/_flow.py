"""The flow log: how many schools, teachers and pupils each stage keeps, and why others left."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._results import ResultFaces, Summary

__all__ = ["FlowLog", "FlowRecorder"]

STAGES = ("available", "eligible", "assigned", "analysed")


@dataclass(frozen=True)
class FlowLog(ResultFaces):
    """Counts of schools, teachers and pupil records at each stage of cohort construction.

    Attributes
    ----------
    stages
        One row per stage (``available``, ``eligible``, ``assigned``, ``analysed``) and arm
        (``all``, then ``treated`` and ``comparison`` once arms exist), with columns
        ``stage, arm, schools, teachers, pupils``. ``pupils`` counts pupil-year records.
    exclusions
        One row per reason records were excluded: ``stage, reason, schools, teachers, pupils``,
        where ``schools`` and ``teachers`` count those that lost *all* their records at that
        step and ``pupils`` counts the records removed.
    allocated
        The sample each arm was allocated, against which attrition is measured: one row per arm
        (``treated``, ``comparison``) with ``arm, schools, teachers, pupils`` counting every
        record of the units allocated to the arm in the analysed years, *before* records were
        excluded for a missing outcome, covariate or teacher, or because a treated unit had no
        record before its start. Records outside the design (units in other strands, later
        starters' own treated years in a not-yet-treated design) are not part of it. ``None``
        for a log built by hand without it.
    merges
        The links applied before the cohort was built (schools that changed URN, area codes
        that changed), as :attr:`Records.merges <cpdimpact.records.Records.merges>`: one row
        per predecessor with ``level, predecessor, successor, analysed_as, date, link_type,
        pupils, schools`` (records re-labelled). ``None`` or empty without links.
    attrition
        Schools whose pupil records begin after the first analysed year (opened inside the
        window: no predecessor linked) or end before the last (closed inside the window: no
        successor linked), by arm: ``arm, change, schools, pupils`` (the pupil records of
        those schools analysed). They stay in the analysis (an unbalanced panel) but are
        attrition from the panel of schools. ``None`` for a log built by hand without it.
    record
        What one counted record is, in words (singular): ``"pupil record"``, or for a cohort
        of published figures ``"school-year figure"`` / ``"area-year figure"``; the ``pupils``
        columns count them.

    Notes
    -----
    The log balances: available pupil records minus every exclusion equals the records analysed.
    Re-labelling and attrition change no count of the stages or exclusions.
    """

    stages: pd.DataFrame
    exclusions: pd.DataFrame
    allocated: pd.DataFrame | None = None
    merges: pd.DataFrame | None = None
    attrition: pd.DataFrame | None = None
    record: str = "pupil record"

    def merge_lines(self) -> list[str]:
        """The links applied, one sentence each.

        Returns
        -------
        list of str
            E.g. ``"URN 116000 -> 140123 (academy conversion, 2017-09-01): 58 pupil records
            re-labelled"``; a chain of several links adds ``"; analysed as <latest URN>"``.
        """
        if self.merges is None:
            return []
        lines = []
        for row in self.merges.itertuples():
            date = "date not given" if pd.isna(row.date) else pd.Timestamp(row.date).date()
            head = (
                f"{'URN' if row.level == 'school' else 'area'} {_id(row.predecessor)} -> "
                f"{_id(row.successor)} ({row.link_type}, {date})"
            )
            if row.analysed_as != row.successor:
                head += f"; analysed as {_id(row.analysed_as)}"
            counted = (
                f"{_n(row.pupils, self.record)} re-labelled"
                if row.level == "school"
                else f"{_n(row.schools, 'school')} ({_n(row.pupils, self.record)}) re-labelled"
            )
            lines.append(f"{head}: {counted}")
        return lines

    def school_changes(self) -> pd.DataFrame:
        """Schools that changed URN, opened or closed inside the analysed years, for a report.

        Returns
        -------
        pandas.DataFrame
            ``change, arm, schools, pupils``: one row for the URN changes applied (``arm``
            empty; pupil records re-labelled), and one per arm and change with schools that
            opened or closed inside the window. Empty when there are none.
        """
        rows = []
        if self.merges is not None:
            merged = self.merges[self.merges["level"] == "school"]
            if len(merged):
                rows.append(
                    {
                        "change": "changed URN: analysed under its latest URN",
                        "arm": "",
                        "schools": int(merged["analysed_as"].nunique()),
                        "pupils": int(merged["pupils"].sum()),
                    }
                )
        if self.attrition is not None:
            rows += [r for r in self.attrition.to_dict("records") if r["schools"]]
        return pd.DataFrame(rows, columns=["change", "arm", "schools", "pupils"])

    def count(self, stage: str, arm: str = "all", level: str = "pupils") -> int:
        """Number of ``level`` (schools, teachers, pupils) at ``stage`` in ``arm``.

        ``stage="allocated"`` reads :attr:`allocated` (arms ``treated`` and ``comparison``).
        """
        if stage == "allocated":
            table = self.allocated if self.allocated is not None else self.stages.iloc[:0]
            row = table[table["arm"] == arm]
            if row.empty:
                raise KeyError(f"no allocation row for arm={arm!r}")
            return int(row[level].iloc[0])
        row = self.stages[(self.stages["stage"] == stage) & (self.stages["arm"] == arm)]
        if row.empty:
            raise KeyError(f"no flow row for stage={stage!r}, arm={arm!r}")
        return int(row[level].iloc[0])

    def to_frame(self) -> pd.DataFrame:
        """The stage table followed by the exclusions, one tidy frame with a ``kind`` column."""
        stages = self.stages.assign(kind="stage", reason="")
        exclusions = self.exclusions.assign(kind="excluded", arm="")
        columns = ["kind", "stage", "arm", "reason", "schools", "teachers", "pupils"]
        return pd.concat([stages[columns], exclusions[columns]], ignore_index=True)

    def summary(self) -> Summary:
        """Printable flow table."""
        lines = self.merge_lines()
        notes = lines[:20] + ([f"and {len(lines) - 20} more links"] if len(lines) > 20 else [])
        notes += [
            f"attrition: {_n(r.schools, r.arm + ' school')} {r.change} "
            f"({_n(r.pupils, self.record)})"
            for r in (self.attrition.itertuples() if self.attrition is not None else ())
            if r.schools
        ]
        return Summary(
            title=f"Flow of schools, teachers and {self.record}s",
            facts=tuple(
                (
                    f"{s.stage} ({s.arm})",
                    f"{s.schools} schools, {s.teachers} teachers, {_n(s.pupils, self.record)}",
                )
                for s in self.stages.itertuples()
            ),
            table=self.exclusions if len(self.exclusions) else None,
            notes=tuple(notes),
        )

    def plot(self, *, ax=None):
        """Horizontal bars of pupil records at each stage, by arm; returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3))
        table = self.stages.pivot_table(
            index="stage", columns="arm", values="pupils", aggfunc="sum", sort=False
        ).reindex(list(STAGES))
        table.plot.barh(ax=ax)
        ax.invert_yaxis()
        ax.set_xlabel(f"{self.record}s")
        ax.set_ylabel("")
        return ax


def _pair_codes(pupils: pd.DataFrame, school_codes: np.ndarray) -> np.ndarray:
    """One integer per distinct (school, teacher) pair of ``pupils``; -1 where either is
    missing (a teacher is counted within its school, as the teachers table keys them)."""
    teacher_codes, teachers = pd.factorize(pupils["teacher"])
    pair = school_codes.astype(np.int64) * max(len(teachers), 1) + teacher_codes
    pair[(school_codes < 0) | (teacher_codes < 0)] = -1
    return _dense(pair)


def _dense(codes: np.ndarray) -> np.ndarray:
    """``codes`` renumbered 0, 1, ... in order of appearance, keeping -1 for missing."""
    dense = np.full(codes.shape, -1, dtype=np.intp)
    present = codes >= 0
    dense[present] = pd.factorize(codes[present])[0]
    return dense


def _distinct(codes: np.ndarray) -> int:
    """How many distinct non-negative codes ``codes`` (dense from 0) holds."""
    codes = codes[codes >= 0]
    return int(np.count_nonzero(np.bincount(codes))) if codes.size else 0


class FlowRecorder:
    """Mutable helper used while building a cohort; produces a :class:`FlowLog`.

    It holds the pupils' school and teacher ids (as integer codes) and a boolean mask of rows
    still in; each :meth:`exclude` call records the rows it removes and how many schools and
    teachers lost their last record.
    """

    def __init__(self, pupils: pd.DataFrame, *, n_schools: int, n_teachers: int):
        self.keep = np.ones(len(pupils), dtype=bool)
        # Per row: the position in ``_exclusions`` of the step that removed it (-1: still in).
        self._why = np.full(len(pupils), -1, dtype=np.intp)
        self._stages: list[dict] = []
        self._exclusions: list[dict] = []
        self._allocated: list[dict] = []
        #: Set by the cohort build: the links applied and the schools opened or closed.
        self.merges: pd.DataFrame | None = None
        self.attrition: pd.DataFrame | None = None
        self._has_teacher = "teacher" in pupils.columns
        # Each count is of distinct ids under a mask, taken at every step: the ids are coded
        # once as integers (-1: missing) so a count is a bincount, not a hash of millions of
        # rows each time.
        self._school_codes = pd.factorize(pupils["school"])[0]
        self._teacher_codes = _pair_codes(pupils, self._school_codes) if self._has_teacher else None
        self.record_stage("available", "all", schools=n_schools, teachers=n_teachers)

    def _counts(self, mask: np.ndarray) -> tuple[int, int, int]:
        schools = _distinct(self._school_codes[mask])
        teachers = _distinct(self._teacher_codes[mask]) if self._has_teacher else 0
        return schools, teachers, int(mask.sum())

    def exclude(self, stage: str, reason: str, drop: np.ndarray) -> None:
        """Remove the rows flagged in ``drop`` (among those still in), logging ``reason``."""
        drop = np.asarray(drop, dtype=bool) & self.keep
        if not drop.any():
            return
        before = self._counts(self.keep)
        self.keep &= ~drop
        self._why[drop] = len(self._exclusions)
        after = self._counts(self.keep)
        self._exclusions.append(
            {
                "stage": stage,
                "reason": reason,
                "schools": before[0] - after[0],
                "teachers": before[1] - after[1],
                "pupils": int(drop.sum()),
            }
        )

    def note(self, stage: str, reason: str, *, schools: int = 0, teachers: int = 0) -> None:
        """Log schools or teachers excluded without pupil records (e.g. none in the data)."""
        if schools or teachers:
            self._exclusions.append(
                {
                    "stage": stage,
                    "reason": reason,
                    "schools": int(schools),
                    "teachers": int(teachers),
                    "pupils": 0,
                }
            )

    def why_excluded(self, mask) -> list[tuple[str, int, int]]:
        """Why the records in ``mask`` were excluded: ``(reason, pupil records, schools)`` per
        exclusion step that removed any of them, in the order of the steps (records still in
        are not counted)."""
        mask = np.asarray(mask, dtype=bool)
        why, schools = self._why[mask], self._school_codes[mask]
        out = []
        for step in np.unique(why[why >= 0]):
            hit = why == step
            out.append((self._exclusions[step]["reason"], int(hit.sum()), _distinct(schools[hit])))
        return out

    def record_stage(self, stage: str, arm: str, *, mask=None, schools=None, teachers=None) -> None:
        """Record the counts of rows still in (optionally within ``mask``) at ``stage``."""
        mask = self.keep if mask is None else (self.keep & np.asarray(mask, dtype=bool))
        counted = self._counts(mask)
        self._stages.append(
            {
                "stage": stage,
                "arm": arm,
                "schools": counted[0] if schools is None else int(schools),
                "teachers": counted[1] if teachers is None else int(teachers),
                "pupils": counted[2],
            }
        )

    def record_allocation(self, arm: str, mask: np.ndarray) -> None:
        """Count the records in ``mask`` as the sample allocated to ``arm``, whether or not
        they are still in (attrition is measured against it)."""
        schools, teachers, pupils = self._counts(np.asarray(mask, dtype=bool))
        self._allocated.append(
            {"arm": arm, "schools": schools, "teachers": teachers, "pupils": pupils}
        )

    def log(self) -> FlowLog:
        """Freeze the counts recorded so far."""
        stage_columns = ["stage", "arm", "schools", "teachers", "pupils"]
        excl_columns = ["stage", "reason", "schools", "teachers", "pupils"]
        return FlowLog(
            stages=pd.DataFrame(self._stages, columns=stage_columns),
            exclusions=pd.DataFrame(self._exclusions, columns=excl_columns),
            allocated=pd.DataFrame(self._allocated, columns=["arm", *stage_columns[2:]])
            if self._allocated
            else None,
            merges=self.merges,
            attrition=self.attrition,
        )


def _id(value) -> str:
    """An id as the user wrote it: 116000, not 116000.0 or np.int64(116000)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
