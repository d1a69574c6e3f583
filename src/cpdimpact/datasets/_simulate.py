"""Draw the four record tables from a :class:`Scenario`, with the true effects that were added."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._validate import resolve_seed
from ..effects import percentages_odds_ratio
from ..errors import ArgumentTypeError, InvalidArgumentError
from ..records import Records
from ._scenario import YEAR_GROUPS, Scenario

__all__ = ["SimulatedRecords", "Truth", "simulate"]

_FIRST_SCHOOL_ID = 100001  # six-digit, like a unique reference number (URN)


@dataclass(frozen=True, eq=False)
class Truth:
    """The programme effects that were added to the simulated outcomes.

    Every value is computed from the realised records (not from the scenario's parameters), so
    an estimator run on the records can be compared with it directly.

    Attributes
    ----------
    att
        Average effect on the treated: mean effect, in outcome points, over every exposed
        pupil-year in the pupils table.
    att_fsm, att_non_fsm
        The same over exposed FSM and non-FSM pupil-years (NaN when there are none).
    by_event_time
        Mean effect in points of the exposed pupil-years at each event time (test year minus
        start year: 0, 1, 2, ...), a Series named ``"att"`` indexed by ``event_time``.
    outcome_sd
        Pupil-level SD of the untreated potential outcome Y(0), pooled within year: the square
        root of the mean over years of the within-year variance, over all pupils.
    effect_size, effect_size_fsm, effect_size_non_fsm
        ``att / outcome_sd`` and the subgroup ATTs over the same SD.
    n_exposed
        Number of exposed pupil-years.
    exposure
        ``"school"`` or ``"teacher"``.
    programme_cost
        Total cost in pounds.
    pupil_effects
        The effect added to each pupil row (zero when unexposed), aligned with the pupils
        table's index. The pupils table itself does not carry it.
    """

    att: float
    att_fsm: float
    att_non_fsm: float
    by_event_time: pd.Series
    outcome_sd: float
    effect_size: float
    effect_size_fsm: float
    effect_size_non_fsm: float
    n_exposed: int
    exposure: str
    programme_cost: float
    pupil_effects: pd.Series = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        """Plain-Python summary (floats, ints, strings), ready for JSON.

        ``by_event_time`` becomes a dict from event time to effect; ``pupil_effects`` is left
        out.
        """
        out: dict[str, object] = {}
        for name in (
            "att",
            "att_fsm",
            "att_non_fsm",
            "outcome_sd",
            "effect_size",
            "effect_size_fsm",
            "effect_size_non_fsm",
            "programme_cost",
        ):
            out[name] = float(getattr(self, name))
        out["by_event_time"] = {int(k): float(v) for k, v in self.by_event_time.items()}
        out["n_exposed"] = int(self.n_exposed)
        out["exposure"] = str(self.exposure)
        return out


@dataclass(frozen=True, eq=False)
class SimulatedRecords(Records):
    """Simulated :class:`~cpdimpact.records.Records` that also carry their truth and scenario.

    It is a :class:`~cpdimpact.records.Records` in every respect (tables under canonical
    names, validation, fingerprint), so any part of cpdimpact takes it as input.

    Attributes
    ----------
    truth
        The :class:`Truth` the tables were generated with.
    scenario
        The :class:`Scenario` they were drawn from.
    """

    truth: Truth | None = None
    scenario: Scenario | None = None
    #: Set by :meth:`with_pass_mark`: the score at which a pupil passes (``outcome`` is then 0/1).
    pass_mark: float | None = None

    def with_pass_mark(
        self, mark: float = 100.0, *, outcome_label: str = "reached_expected_standard"
    ) -> SimulatedRecords:
        """These records with a pass/fail outcome: whether each pupil scored ``mark`` or more.

        The pupils table's ``outcome`` becomes 1 for a pupil at or above ``mark`` and 0 below
        it (KS2 scaled scores run from 80 to 120 and 100 is the expected standard); the score
        itself moves to a ``score`` column. ``columns`` names the outcome ``outcome_label``, as
        a user's own pass/fail column would be named, and :meth:`true_effect` then gives the
        programme's true effect on the share of pupils passing, in percentage points.

        Parameters
        ----------
        mark
            The passing score, in the outcome's points.
        outcome_label
            The name the outcome goes by in tables and reports.

        Returns
        -------
        SimulatedRecords
            A copy; these records are unchanged.

        Examples
        --------
        >>> from cpdimpact.datasets import city_partnership
        >>> passed = city_partnership(seed=1, scale=0.2).with_pass_mark(100)
        >>> sorted(passed.pupils["outcome"].unique().tolist())
        [0, 1]
        """
        if self.pass_mark is not None:
            raise InvalidArgumentError(
                f"these records already have a pass/fail outcome (mark {self.pass_mark:g})"
            )
        mark = float(mark)
        if not np.isfinite(mark):
            raise InvalidArgumentError(f"mark must be a finite score, got {mark!r}")
        score = self.pupils["outcome"]
        pupils = self.pupils.assign(
            outcome=(score >= mark).astype(np.int64).where(score.notna()), score=score
        )
        if not score.isna().any():
            pupils["outcome"] = pupils["outcome"].astype(np.int64)
        out = SimulatedRecords(
            pupils=pupils,
            participation=self.participation,
            schools=self.schools,
            teachers=self.teachers,
            columns={**dict(self.columns), "outcome": outcome_label},
            truth=self.truth,
            scenario=self.scenario,
            pass_mark=mark,
        )
        return out

    def true_effect(self, pupils: pd.DataFrame) -> pd.Series:
        """The true effect averaged over the exposed records of an analysis.

        An analysis rarely covers every exposed record: a not-yet-treated design stops when the
        comparison areas start, a year window or missing covariates drop records. This gives
        the truth of *that* estimand, over the rows of ``pupils`` (for example
        ``cohort.pupils``) flagged ``exposed``, matched to the simulated records by pupil id.

        Parameters
        ----------
        pupils
            Rows with ``pupil`` and ``exposed`` columns (and ``fsm`` for the FSM split).

        Returns
        -------
        pandas.Series
            ``att``, ``att_fsm``, ``att_non_fsm`` in outcome points, the matching
            ``effect_size``, ``effect_size_fsm``, ``effect_size_non_fsm`` over
            ``truth.outcome_sd``, and ``n_exposed``. With a pass/fail outcome
            (:meth:`with_pass_mark`) the ATTs are the true change in the percentage of pupils
            passing, in percentage points: the share passing with the programme minus the
            share whose score without it (the score less the effect added) would pass.
            ``percent_passing`` and ``percent_without`` give the two shares over all exposed
            pupils, and the effect sizes are Cox's (:func:`cpdimpact.effects.cox_index`).
        """
        if self.truth is None:
            raise InvalidArgumentError("these records carry no truth")
        effects = pd.Series(
            self.truth.pupil_effects.to_numpy(), index=self.pupils["pupil"].to_numpy()
        )
        exposed = pupils[pupils["exposed"].astype(bool)]
        effect = exposed["pupil"].map(effects)
        if effect.isna().any():
            raise InvalidArgumentError("some pupils are not in these simulated records")
        fsm = exposed["fsm"].astype(bool) if "fsm" in exposed.columns else None
        if self.pass_mark is not None:
            return self._true_pass_effect(exposed, effect, fsm)
        att = float(effect.mean()) if len(effect) else float("nan")
        att_fsm = float(effect[fsm].mean()) if fsm is not None and fsm.any() else float("nan")
        att_non = float(effect[~fsm].mean()) if fsm is not None and (~fsm).any() else float("nan")
        sd = self.truth.outcome_sd
        return pd.Series(
            {
                "att": att,
                "att_fsm": att_fsm,
                "att_non_fsm": att_non,
                "effect_size": att / sd,
                "effect_size_fsm": att_fsm / sd,
                "effect_size_non_fsm": att_non / sd,
                "n_exposed": float(len(effect)),
            },
            name="truth",
        )

    def _true_pass_effect(self, exposed, effect, fsm) -> pd.Series:
        scores = pd.Series(self.pupils["score"].to_numpy(), index=self.pupils["pupil"].to_numpy())
        score = exposed["pupil"].map(scores).to_numpy(dtype=float)
        passing = 100.0 * (score >= self.pass_mark)
        without = 100.0 * (score - effect.to_numpy(dtype=float) >= self.pass_mark)

        def shares(mask):
            if not mask.any():
                return float("nan"), float("nan")
            return float(passing[mask].mean()), float(without[mask].mean())

        every = np.ones(len(score), dtype=bool)
        masks = {"": every}
        if fsm is not None:
            masks |= {"_fsm": fsm.to_numpy(), "_non_fsm": ~fsm.to_numpy()}
        out: dict[str, float] = {}
        for suffix in ("", "_fsm", "_non_fsm"):
            p1, p0 = shares(masks[suffix]) if suffix in masks else (float("nan"),) * 2
            out[f"att{suffix}"] = p1 - p0
            out[f"effect_size{suffix}"] = percentages_odds_ratio(p1, p0)[1]
            if suffix == "":
                out["percent_passing"], out["percent_without"] = p1, p0
        out["n_exposed"] = float(len(score))
        order = ["att", "att_fsm", "att_non_fsm", "effect_size", "effect_size_fsm"]
        order += ["effect_size_non_fsm", "percent_passing", "percent_without", "n_exposed"]
        return pd.Series({k: out[k] for k in order}, name="truth")

    def __repr__(self) -> str:  # the default would print four whole DataFrames
        name = self.scenario.name if self.scenario is not None else "?"
        sizes = ", ".join(
            f"{t}={len(f)}"
            for t in ("schools", "teachers", "pupils", "participation")
            if (f := self.table(t)) is not None
        )
        att = f", att={self.truth.att:.3f}" if self.truth is not None else ""
        return f"SimulatedRecords({name!r}: {sizes}{att})"


def simulate(scenario: Scenario, seed: int | np.random.Generator | None = 0) -> SimulatedRecords:
    r"""Draw simulated school records with a known programme effect.

    Parameters
    ----------
    scenario
        The data-generating parameters.
    seed
        An int (or ``None`` for fresh entropy) or a :class:`numpy.random.SeedSequence`, passed
        to :func:`numpy.random.default_rng` (``n`` and ``SeedSequence(n)`` give the same
        tables), or a :class:`numpy.random.Generator` used as is. The same int gives identical
        tables.

    Returns
    -------
    SimulatedRecords
        Schools, teachers, pupils and participation tables under canonical column names, with
        ``truth`` and ``scenario``.

    Notes
    -----
    Schools :math:`j` sit in areas :math:`a(j)`; each year :math:`t` a new year group is tested,
    in classes taught by teacher :math:`k`. Prior attainment and the untreated outcome, in SD
    units, are

    .. math::

        x_i = \sqrt{\pi}\,\alpha_j - \sum_g \delta_g (g_i - \bar g) + \xi_i,

        z_i(0) = A_a + AY_{at} + u_j + SY_{jt} + T_k + \beta x_i
            - \sum_g \gamma_g (g_i - \bar g) + \lambda (t - \bar t) + e_i,

    for the groups :math:`g \in \{fsm, sen, eal\}` (FSM drawn with the school's Beta-distributed
    share), all terms independent normal with the variances of
    :meth:`Scenario.variance_budget`. The observed outcome in points is

    .. math::

        Y_i = \mu + \sigma \, [z_i(0) + D_i \, (\tau_0 + \tau_1 e_i + \tau_F \, fsm_i + \eta_j)],

    with :math:`D_i` exposure (school joined, or class teacher enrolled, by year :math:`t`),
    :math:`e_i = t - \text{start}` the event time and :math:`\eta_j` school effect
    heterogeneity. Joining schools are drawn without replacement with weights
    :math:`\exp(s \cdot 10 (p_j - \bar p))` (Gumbel top-k), so selection depends on levels only
    and the untreated outcome has parallel trends. With ``selection_dip`` :math:`d > 0` the
    weights become :math:`\exp(s \cdot 10 (p_j - \bar p) - d\,\tilde m_j)`, with
    :math:`\tilde m_j` the school's mean of :math:`z(0)` in the selection year standardised over
    the area's schools: selection on a bad year, whose transitory part (:math:`SY_{jt}`, that
    year's pupils and teacher) does not recur, so the chosen schools regress to the mean
    (Ashenfelter, 1978). Those draws are made after :math:`Y(0)`, which is therefore the same
    as without ``selection_dip``. Untreated outcomes do not depend on the
    effect parameters: two scenarios that differ only in the effect give the same :math:`Y(0)`
    for the same seed. Outcomes are not clipped, which would bend the linear truth.

    The variance components follow what is known of English attainment data: school ICCs of
    0.15-0.20 (Hedges & Hedberg, 2007, *Educ. Eval. Policy Anal.* 29(1); EEF, 2013) and teacher
    value-added SDs of 0.1-0.2 (Hanushek & Rivkin, 2010, *Am. Econ. Rev.* 100(2)).

    Examples
    --------
    >>> from cpdimpact.datasets import Scenario, simulate
    >>> rec = simulate(Scenario(schools_per_area=20, effect=0.1), seed=1)
    >>> rec.validate()
    >>> sorted(rec.pupils.columns)  # doctest: +NORMALIZE_WHITESPACE
    ['eal', 'fsm', 'outcome', 'prior', 'pupil', 'school', 'sen', 'sex', 'teacher', 'year']
    >>> round(rec.truth.effect_size, 2)
    0.1
    """
    if not isinstance(scenario, Scenario):
        raise ArgumentTypeError(f"scenario must be a Scenario; got {type(scenario).__name__}")
    rng = resolve_seed(seed)
    sc = scenario
    budget = sc.variance_budget()
    first, last = sc.years
    years = np.arange(first, last + 1)
    n_years = len(years)
    n_areas = len(sc.areas)

    # ---- schools: area, size of the tested year group, FSM share
    lo, hi = sc.schools_per_area
    per_area = rng.integers(lo, hi + 1, size=n_areas)
    school_area = np.repeat(np.arange(n_areas), per_area)
    n_schools = len(school_area)
    classes = rng.integers(sc.classes_per_year[0], sc.classes_per_year[1] + 1, size=n_schools)
    m, k = sc.fsm_share, sc.fsm_concentration
    fsm_share = rng.beta(m * k, (1 - m) * k, size=n_schools)
    staff = np.maximum(1, np.rint(sc.teachers_per_form * classes)).astype(np.int64)

    # ---- teacher rosters: slot (school, s) holds one teacher a year; leavers are replaced
    max_staff = int(staff.max())
    valid = np.arange(max_staff)[None, :] < staff[:, None]
    roster = np.full((n_years, n_schools, max_staff), -1, dtype=np.int64)
    n_teachers = int(valid.sum())
    roster[0][valid] = np.arange(n_teachers)
    hired = [np.zeros(n_teachers, dtype=np.int64)]  # year index each teacher is first seen
    for t in range(1, n_years):
        leave = valid & (rng.random((n_schools, max_staff)) < sc.teacher_turnover)
        roster[t] = roster[t - 1]
        n_new = int(leave.sum())
        roster[t][leave] = n_teachers + np.arange(n_new)
        hired.append(np.full(n_new, t, dtype=np.int64))
        n_teachers += n_new
    hired = np.concatenate(hired)
    teacher_school = np.empty(n_teachers, dtype=np.int64)
    last_seen = np.empty(n_teachers, dtype=np.int64)
    slot_school = np.broadcast_to(np.arange(n_schools)[:, None], valid.shape)[valid]
    for t in range(n_years):  # later years overwrite, leaving the last year present
        ids = roster[t][valid]
        teacher_school[ids] = slot_school
        last_seen[ids] = t
    # Experience: starting staff have a spread of service; replacements are mostly new entrants.
    base = np.where(
        hired == 0,
        rng.geometric(1 / 9, size=n_teachers) - 1,
        rng.geometric(1 / 3, size=n_teachers) - 1,
    )
    years_service = np.minimum(base + last_seen - hired, 40)
    teacher_effect = rng.normal(0.0, sc.teacher_sd, size=n_teachers)

    # ---- who joins, and when
    school_start = np.zeros(n_schools, dtype=np.int64)
    log_weight = sc.selection_fsm * 10 * (fsm_share - m)
    area_index = {a: i for i, a in enumerate(sc.areas)}
    for area, starts in sc.start_years:
        members = np.flatnonzero(school_area == area_index[area])
        n_join = max(1, round(sc.join_share * len(members)))
        keys = log_weight[members] + rng.gumbel(size=len(members))
        chosen = members[np.argsort(-keys, kind="stable")[:n_join]]
        # A fresh shuffle so the start year is unrelated to the FSM-driven order of joining.
        chosen = rng.permutation(chosen)
        school_start[chosen] = np.resize(np.asarray(starts), n_join)
    joined = np.flatnonzero(school_start)

    participation, teacher_start = _participation(
        sc, rng, joined, school_start, roster, valid, staff, first, n_teachers
    )

    # ---- classes: each school-year's tested classes, taught by distinct teachers on the roster
    n_cls_year = int(classes.sum())
    cls_school = np.tile(np.repeat(np.arange(n_schools), classes), n_years)
    starts_at = np.repeat(np.cumsum(classes) - classes, classes)
    cls_rank = np.tile(np.arange(n_cls_year) - starts_at, n_years)
    cls_t = np.repeat(np.arange(n_years), n_cls_year)
    keys = rng.random((n_years, n_schools, max_staff))
    keys[:, ~valid] = 2.0
    order = np.argsort(keys, axis=2)
    slot = order[cls_t, cls_school, cls_rank % staff[cls_school]]
    cls_teacher = roster[cls_t, cls_school, slot]
    cls_size = np.rint(rng.normal(sc.class_size, sc.class_size_sd, size=len(cls_t)))
    cls_size = np.maximum(cls_size, 5).astype(np.int64)

    # ---- pupils
    row_cls = np.repeat(np.arange(len(cls_t)), cls_size)
    n = len(row_cls)
    school = cls_school[row_cls]
    t_idx = cls_t[row_cls]
    teacher = cls_teacher[row_cls]
    area = school_area[school]
    fsm = (rng.random(n) < fsm_share[school]).astype(np.int64)
    sen = (rng.random(n) < sc.sen_rate).astype(np.int64)
    eal = (rng.random(n) < sc.eal_rate).astype(np.int64)
    female = rng.random(n) < 0.49
    group_fsm, group_sen, group_eal = fsm - m, sen - sc.sen_rate, eal - sc.eal_rate

    prior_school = rng.normal(size=n_schools)
    prior = (
        np.sqrt(sc.prior_school_share) * prior_school[school]
        - sc.fsm_prior_gap * group_fsm
        - sc.sen_prior_gap * group_sen
        - sc.eal_prior_gap * group_eal
        + rng.normal(0.0, np.sqrt(budget["prior_pupil"]), size=n)
    )
    area_effect = rng.normal(0.0, sc.area_sd, size=n_areas)
    area_year = rng.normal(0.0, sc.area_year_sd, size=(n_areas, n_years))
    school_effect = rng.normal(0.0, np.sqrt(budget["school"]), size=n_schools)
    school_year = rng.normal(0.0, sc.school_year_sd, size=(n_schools, n_years))
    # Centre the trend on the middle year so outcome_mean is the mean over the data.
    trend = sc.trend * (t_idx - (n_years - 1) / 2)
    z0 = (
        area_effect[area]
        + area_year[area, t_idx]
        + school_effect[school]
        + school_year[school, t_idx]
        + teacher_effect[teacher]
        + sc.prior_slope * prior
        - sc.fsm_gap * group_fsm
        - sc.sen_gap * group_sen
        - sc.eal_gap * group_eal
        + trend
        + rng.normal(0.0, np.sqrt(budget["pupil"]), size=n)
    )
    y0 = sc.outcome_mean + sc.outcome_sd * z0

    if sc.selection_dip > 0:
        # Selection on a bad year: redraw who joins from the untreated results of the selection
        # year. The draws come after Y(0), so Y(0) equals that of the same scenario without
        # selection on the dip, and scenarios with selection_dip == 0 never reach this branch.
        school_start = _select_on_dip(sc, rng, z0, school, t_idx, school_area, fsm_share, years)
        joined = np.flatnonzero(school_start)
        participation, teacher_start = _participation(
            sc, rng, joined, school_start, roster, valid, staff, first, n_teachers
        )

    # ---- programme effect: drawn last so Y(0) does not depend on the effect parameters
    effect_dev = rng.normal(0.0, sc.effect_school_sd, size=n_schools)
    year = years[t_idx]
    start = school_start[school] if sc.exposure == "school" else teacher_start[teacher]
    exposed = (start > 0) & (year >= start)
    event_time = np.where(exposed, year - start, -1)
    tau = sc.effect + sc.effect_growth * event_time + sc.effect_fsm_extra * fsm + effect_dev[school]
    effect_points = np.where(exposed, sc.outcome_sd * tau, 0.0)
    outcome = y0 + effect_points

    school_ids = _FIRST_SCHOOL_ID + np.arange(n_schools)
    pupils = pd.DataFrame(
        {
            "pupil": np.arange(1, n + 1, dtype=np.int64),
            "school": school_ids[school],
            "teacher": teacher + 1,
            "year": year.astype(np.int64),
            "prior": prior,
            "outcome": outcome,
            "fsm": fsm,
            "sen": sen,
            "eal": eal,
            "sex": np.where(female, "F", "M"),
        }
    )
    size_noise = rng.uniform(0.9, 1.05, size=n_schools)
    schools = pd.DataFrame(
        {
            "school": school_ids,
            "area": np.asarray(sc.areas, dtype=object)[school_area],
            "phase": sc.phase,
            "size": np.rint(classes * sc.class_size * YEAR_GROUPS[sc.phase] * size_noise).astype(
                np.int64
            ),
            "fsm_share": np.round(fsm_share, 3),
        }
    )
    teachers = pd.DataFrame(
        {
            "teacher": np.arange(1, n_teachers + 1, dtype=np.int64),
            "school": school_ids[teacher_school],
            "years_service": years_service.astype(np.int64),
        }
    )
    participation["school"] = school_ids[participation["school"].to_numpy()]

    truth = _truth(sc, pupils.index, year, fsm, exposed, event_time, effect_points, y0)
    return SimulatedRecords(
        pupils=pupils,
        participation=participation,
        schools=schools,
        teachers=teachers,
        truth=truth,
        scenario=sc,
    )


def _select_on_dip(sc, rng, z0, school, t_idx, school_area, fsm_share, years):
    """Start year of each school (0: never) when schools are chosen on a bad year's results.

    Within each area that joins, the chosen schools are drawn without replacement (Gumbel
    top-k) with log-weights ``selection_fsm * 10 * (p_j - mean) - selection_dip * m_j``, where
    ``m_j`` is the school's mean untreated outcome (SD units) in the selection year,
    standardised over the area's schools; they are then split at random over the start years.
    With ``dip_each_wave`` each start year's schools are instead drawn in turn, among those not
    yet chosen, on the year before that start.
    """
    n_schools = len(school_area)

    def means_in(year):
        at = t_idx == int(np.flatnonzero(years == year)[0])
        count = np.bincount(school[at], minlength=n_schools)
        total = np.bincount(school[at], weights=z0[at], minlength=n_schools)
        return total / count  # every school tests at least one class a year

    def log_weight(members, mean):
        m = mean[members]
        spread = m.std() if len(members) > 1 and m.std() > 0 else 1.0
        return sc.selection_fsm * 10 * (fsm_share[members] - sc.fsm_share) - (
            sc.selection_dip * (m - m.mean()) / spread
        )

    school_start = np.zeros(n_schools, dtype=np.int64)
    area_index = {a: i for i, a in enumerate(sc.areas)}
    once = None if sc.dip_each_wave else means_in(sc.selection_year())
    for area, starts in sc.start_years:
        members = np.flatnonzero(school_area == area_index[area])
        n_join = max(1, round(sc.join_share * len(members)))
        wave_of = np.resize(np.asarray(starts), n_join)
        if once is not None:
            keys = log_weight(members, once) + rng.gumbel(size=len(members))
            chosen = rng.permutation(members[np.argsort(-keys, kind="stable")[:n_join]])
            school_start[chosen] = wave_of
            continue
        for start in sorted(set(starts)):
            # Standardised over every school of the area that year, drawn among those left.
            mean = means_in(start - 1)
            weight = pd.Series(log_weight(members, mean), index=members)
            left = members[school_start[members] == 0]
            keys = weight[left].to_numpy() + rng.gumbel(size=len(left))
            take = int((wave_of == start).sum())
            school_start[left[np.argsort(-keys, kind="stable")[:take]]] = start
    return school_start


def _participation(sc, rng, joined, school_start, roster, valid, staff, first, n_teachers):
    """Enrolment rows (school index, teacher id or NA, strand, start year, hours)."""
    names = np.array([s[0] for s in sc.strands], dtype=object)
    shares = np.array([s[1] for s in sc.strands])
    hours = np.array([s[2] for s in sc.strands])
    teacher_start = np.zeros(n_teachers, dtype=np.int64)
    per_school = int(sc.participants_per_school)
    if per_school > 0:
        # Named teachers: distinct staff of the school in its start year.
        t0 = school_start[joined] - first
        keys = rng.random((len(joined), valid.shape[1]))
        keys[~valid[joined]] = 2.0
        order = np.argsort(keys, axis=1)[:, :per_school]
        take = np.arange(order.shape[1])[None, :] < np.minimum(staff[joined], per_school)[:, None]
        rows = np.broadcast_to(np.arange(len(joined))[:, None], order.shape)[take]
        school = joined[rows]
        teacher = roster[t0[rows], school, order[take]]
        start = school_start[school]
        teacher_start[teacher] = start
        teacher_col = pd.array(teacher + 1, dtype="Int64")
    else:
        school = joined
        start = school_start[school]
        teacher_col = pd.array([pd.NA] * len(school), dtype="Int64")
    strand = _allocate(rng, names, shares, len(school))
    mean_hours = hours[strand]
    # Gamma spread (CV 0.5) around each strand's mean: attendance varies between enrollees.
    dose = np.round(rng.gamma(4.0, 1.0, size=len(school)) * mean_hours / 4.0, 1)
    frame = pd.DataFrame(
        {
            "school": school,
            "teacher": teacher_col,
            "strand": names[strand],
            "start_year": start.astype(np.int64),
            "dose_hours": dose,
        }
    )
    frame["strand"] = frame["strand"].astype(str)
    return frame, teacher_start


def _allocate(rng, names, shares, n):
    """Strand index per enrolment: counts by largest remainder (exact shares), random order."""
    quota = shares / shares.sum() * n
    counts = np.floor(quota).astype(np.int64)
    short = n - counts.sum()
    counts[np.argsort(-(quota - counts), kind="stable")[:short]] += 1
    return rng.permutation(np.repeat(np.arange(len(names)), counts))


def _truth(sc, index, year, fsm, exposed, event_time, effect_points, y0) -> Truth:
    # Pooled within-year variance of Y(0): mean over years of each year's variance.
    _, t = np.unique(year, return_inverse=True)
    count = np.bincount(t)
    mean = np.bincount(t, weights=y0) / count
    var = np.bincount(t, weights=(y0 - mean[t]) ** 2) / (count - 1)
    outcome_sd = float(np.sqrt(var.mean()))

    def mean_of(mask):
        return float(effect_points[mask].mean()) if mask.any() else float("nan")

    att = mean_of(exposed)
    att_fsm = mean_of(exposed & (fsm == 1))
    att_non_fsm = mean_of(exposed & (fsm == 0))
    e = event_time[exposed]
    sums = np.bincount(e, weights=effect_points[exposed]) if len(e) else np.array([])
    counts = np.bincount(e) if len(e) else np.array([], dtype=np.int64)
    present = np.flatnonzero(counts)
    by_event = pd.Series(
        sums[present] / counts[present],
        index=pd.Index(present.astype(np.int64), name="event_time"),
        name="att",
    )
    return Truth(
        att=att,
        att_fsm=att_fsm,
        att_non_fsm=att_non_fsm,
        by_event_time=by_event,
        outcome_sd=outcome_sd,
        effect_size=att / outcome_sd,
        effect_size_fsm=att_fsm / outcome_sd,
        effect_size_non_fsm=att_non_fsm / outcome_sd,
        n_exposed=int(exposed.sum()),
        exposure=sc.exposure,
        programme_cost=float(sc.programme_cost),
        pupil_effects=pd.Series(effect_points, index=index, name="effect"),
    )
