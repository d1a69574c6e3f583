r"""Selection on a dip: were the treated units unusually low just before they started?

Programmes that support struggling schools choose them *because* their results fell. A
school's yearly mean holds a transitory part (that year's pupils, teachers and events), so a
school chosen after a bad year tends to recover without help: regression to the mean, the
"Ashenfelter dip" (Ashenfelter, 1978). A before-and-after comparison, or a
difference-in-differences whose base year is the dip year, then credits the recovery to the
programme. :func:`check_pre_period_dip` looks for the tell-tale sign in a built
:class:`~cpdimpact.cohort.Cohort`; :class:`~cpdimpact.cohort.CohortSpec` runs it on every
build, stores the result as ``cohort.dip_check`` and warns with
:class:`SelectionOnDipWarning` when it finds a dip.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from .._results import EstimateResult, Summary, tidy_frame
from .._validate import check_alpha, check_number
from ..errors import InvalidArgumentError, SelectionOnDipWarning

if TYPE_CHECKING:  # the builder imports this module
    from ._build import Cohort

__all__ = ["DipCheck", "SelectionOnDipWarning", "check_pre_period_dip"]

_DOCS = "docs/choosing_a_comparison_group.md"
_COLUMNS = (
    "start_year",
    "reference_year",
    "trend_years",
    "n_treated",
    "n_comparison",
    "clusters",
    "n_treated_clusters",
    "n_comparison_clusters",
    "treated_residual",
    "comparison_residual",
    "difference",
    "std_error",
    "df",
    "statistic",
    "p_value",
    "flagged",
    "note",
)


@dataclass(frozen=True, eq=False)
class DipCheck(EstimateResult):
    r"""Result of :func:`check_pre_period_dip`: one row per start cohort, and a verdict.

    Attributes
    ----------
    table
        One row per start cohort: ``start_year``; ``reference_year`` (the year before the
        programme started, the year the units may have been chosen on); ``trend_years`` (the
        earlier years the trend is fitted on, e.g. ``"2014-2017"``); ``n_treated`` and
        ``n_comparison`` (units with a usable residual); ``clusters`` (what the standard error
        treats as independent: ``"area"`` or ``"unit"``) and ``n_treated_clusters``,
        ``n_comparison_clusters`` (areas holding treated and comparison units; 0 when units
        are independent); ``treated_residual`` and ``comparison_residual`` (mean residual of
        each group in pupil-SD units); ``difference`` (treated minus comparison), its
        ``std_error``, Welch ``df``,
        ``statistic`` and one-sided ``p_value`` (the probability of a difference this low if
        the treated were no lower than their trend relative to the comparison group);
        ``flagged``; and ``note`` (why a cohort could not be checked, if so).
    detected
        True when any cohort is flagged.
    threshold
        Smallest dip, in pupil SD, that counts (flag: ``difference <= -threshold``).
    alpha
        Family-wise level of the one-sided tests (each cohort is tested at
        ``alpha / cohorts tested``, Bonferroni).
    message
        The verdict in plain words.
    unit
        What a unit is (``"school"`` or ``"teacher"``).
    outcome_sd
        The pupil-level SD the residuals were divided by.
    """

    table: pd.DataFrame
    detected: bool
    threshold: float
    alpha: float
    message: str
    unit: str = "school"
    outcome_sd: float = float("nan")

    @property
    def checked(self) -> bool:
        """True when at least one start cohort could be checked."""
        return bool(self.table["note"].eq("").any())

    def summary(self) -> Summary:
        """Printable check: facts, the per-cohort table and the verdict."""
        facts = (
            ("verdict", "dip detected" if self.detected else "no dip detected"),
            ("threshold", f"{self.threshold:.3g} pupil SD"),
            ("level", f"{self.alpha:.3g} (one-sided, Bonferroni over cohorts)"),
            ("pupil-level SD", f"{self.outcome_sd:.4g}"),
        )
        return Summary(
            title="Pre-period dip check",
            facts=facts,
            table=self.table,
            notes=(self.message,),
        )

    def to_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Tidy table of the differences (two-sided p-values and intervals, Welch df).

        Terms are ``"dip before <start year>"``; only checked cohorts appear. ``alpha`` sets
        the intervals (0.05 by default: :attr:`alpha` is the one-sided level of the check).
        """
        return super().to_frame(alpha)

    def _tidy(self, alpha: float) -> pd.DataFrame:
        rows = self.table[self.table["note"].eq("")]
        terms = pd.Index([f"dip before {int(g)}" for g in rows["start_year"]])
        return tidy_frame(
            pd.Series(rows["difference"].to_numpy(), index=terms),
            pd.Series(rows["std_error"].to_numpy(), index=terms),
            df=pd.Series(rows["df"].to_numpy(), index=terms),
            alpha=alpha,
        )

    def to_dict(self) -> dict[str, object]:
        """Plain-Python version, ready for JSON (NaN becomes ``None``)."""

        def plain(value):
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and not np.isfinite(value):
                return None
            return value

        return {
            "detected": bool(self.detected),
            "threshold": float(self.threshold),
            "alpha": float(self.alpha),
            "unit": self.unit,
            "outcome_sd": plain(float(self.outcome_sd)),
            "message": self.message,
            "cohorts": [
                {k: plain(v) for k, v in row.items()} for row in self.table.to_dict("records")
            ],
        }

    def plot(self, *, ax=None):
        """Difference (treated minus comparison residual) by start cohort with 95% intervals,
        against zero and ``-threshold``; returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3))
        frame = self.to_frame()
        y = np.arange(len(frame))
        ax.errorbar(
            frame["estimate"],
            y,
            xerr=[frame["estimate"] - frame["ci_lower"], frame["ci_upper"] - frame["estimate"]],
            fmt="o",
            capsize=3,
        )
        ax.axvline(0.0, color="grey", linewidth=1)
        ax.axvline(-self.threshold, color="grey", linestyle=":", linewidth=1)
        ax.set_yticks(y, frame["term"])
        ax.set_xlabel("last pre-year residual, treated minus comparison (pupil SD)")
        return ax


def check_pre_period_dip(
    cohort: Cohort,
    *,
    threshold: float = 0.05,
    alpha: float = 0.01,
    trend: bool = True,
    min_trend_years: int = 2,
) -> DipCheck:
    r"""Check whether the treated units were unusually low in the year before they started.

    For each start cohort :math:`g`, the reference year is :math:`r = g - \text{lag} - 1`,
    the last year before the programme started (the results the units may have been chosen
    on). For every unit :math:`j` with a record in :math:`r` and in at least
    ``min_trend_years`` earlier years, a straight line :math:`a_j + b_j t` is fitted by least
    squares to its yearly mean outcome :math:`\bar y_{jt}` over the earlier years
    :math:`t < r` (with ``trend=False``, a constant: the mean of those years), and the
    residual of the reference year is

    .. math::

        \varepsilon_j = \frac{\bar y_{jr} - (\hat a_j + \hat b_j r)}{\sigma},

    in pupil-SD units (:math:`\sigma` = ``cohort.outcome_sd``, the pupil-level SD used for
    effect sizes). The dip is the difference of mean residuals

    .. math::

        D_g = \bar\varepsilon_{\text{treated } g} - \bar\varepsilon_{\text{comparison}},

    where the comparison units are those not yet started in :math:`r` (the comparison arm, and
    in a staggered cohort the units starting after :math:`g`). Subtracting the comparison
    group's residual removes what hit every unit that year (a harder test, a national trend
    break); fitting each unit's own line removes differences in level and trend, so what is
    left is how far the treated fell below their own path, relative to everyone else.

    A cohort is **flagged** when :math:`D_g \le -\text{threshold}` *and* Welch's one-sided
    test of :math:`D_g < 0` rejects at level ``alpha`` divided by the number of cohorts
    checked (Bonferroni). Both are needed: the threshold (default 0.05 SD, the size of a
    typical CPD effect) keeps a tiny but precisely measured dip in a national data set from
    raising an alarm; the test keeps noise in a handful of schools from doing so.

    Parameters
    ----------
    cohort
        A built :class:`~cpdimpact.cohort.Cohort`.
    threshold
        Smallest dip, in pupil SD, that is flagged (> 0).
    alpha
        Family-wise level of the one-sided tests, in (0, 1). The default 0.01 keeps false
        alarms rare, since every cohort build runs the check.
    trend
        Fit each unit's straight line over the earlier years (default), or only its mean
        (``False``). Without the trend the residual is about half as variable, so the check
        is more powerful, but a treated group already declining before the reference year is
        then also flagged: a steady decline is not regression to the mean, though it too
        breaks parallel trends.
    min_trend_years
        Earlier years (before the reference year) a unit needs for its trend (>= 2 with
        ``trend``, >= 1 without).

    Returns
    -------
    DipCheck
        Per-cohort numbers, ``detected`` and a plain-words ``message``. A cohort with
        fewer than ``min_trend_years`` earlier years, or fewer than two usable treated or
        comparison units, is listed with a ``note`` and not tested.

    Notes
    -----
    **Area shocks.** The units of an area share its shocks (a new local test, a hard winter in
    the area's schools), so with whole areas assigned together one area's bad year looks like a
    dip of all its units, and a test treating units as independent raises false alarms far
    above ``alpha``: with 30 areas of 250 schools, 9 of them treated, area-by-year shocks of SD
    0.03 pupil SD and two trend years, it rejected at 0.01 in 18% of 2,000 simulated roll-outs
    without a dip and, threshold included, warned in 6% (docs/choosing_a_comparison_group.md
    gives the rates with clustering). When the
    cohort's unit-years carry an ``area`` column (the schools table's ``area``), the standard
    error is clustered by area: with ``e_i`` the deviation of unit :math:`i`'s residual from
    its arm's mean over the arm's size, summed within area (``s_a``), each arm's variance is
    :math:`G/(G-1)\sum_a s_a^2` over its :math:`G` areas, the covariance of the two arms'
    sums within shared areas is subtracted, and the degrees of freedom are Welch's with
    :math:`G_t - 1` and :math:`G_c - 1`. With a single treated (or comparison) area its mean
    residual is compared with the spread of the other arm's area means (their SD, times
    :math:`\sqrt{1 + 1/G}`, on :math:`G - 1` df), which assumes areas of similar size. One
    treated and one comparison area cannot be told apart from their shocks and are not
    tested. All units in one area share every shock, which cancels in the difference: they
    are tested as independent units. With a single reference year and few
    trend years the residuals are noisy: a check that finds nothing is weak evidence of no
    dip when there are few treated units (look at ``std_error``). The check cannot tell a
    transitory dip (which recovers) from a lasting fall (which does not); either way the
    pre-period years just before the start are a poor guide to what would have happened, and
    the design should not lean on them.

    The pattern is Ashenfelter's (1978, *Rev. Econ. Stat.* 60(1), 47-57) dip in the earnings
    of trainees before training; Chabé-Ferret (2015, *J. Econometrics* 185(1), 110-123)
    shows when difference-in-differences survives it (symmetric designs around the dip) and
    when matching on pre-period outcomes is better; Daw & Hatfield (2018, *Health Serv.
    Res.* 53(6), 4138-4156) show that matching on pre-period levels can itself bring
    regression to the mean when the groups come from different populations.

    Examples
    --------
    Every built cohort carries the check as ``cohort.dip_check``; call the function for other
    settings:

    >>> import warnings
    >>> from cpdimpact.cohort import CohortSpec
    >>> from cpdimpact.datasets import support_after_dip
    >>> rec = support_after_dip(seed=3, scale=0.5)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     cohort = CohortSpec().build(rec)
    >>> cohort.dip_check.table["reference_year"].tolist()
    [2018, 2019, 2020]
    >>> stricter = check_pre_period_dip(cohort, threshold=0.1)
    """
    check_number(threshold, "threshold", minimum=0, strict=True, hint=" It is in pupil SD.")
    check_alpha(alpha)
    lowest = 2 if trend else 1
    if int(min_trend_years) != min_trend_years or min_trend_years < lowest:
        raise InvalidArgumentError(
            f"min_trend_years must be a whole number >= {lowest}"
            f"{' (a line needs two points)' if trend else ''}; got {min_trend_years!r}"
        )

    sd = float(cohort.outcome_sd)
    uy = cohort.unit_years
    frame = pd.DataFrame(
        {
            "unit": uy["unit"].to_numpy(),
            "year": uy["year"].to_numpy(dtype=np.int64),
            "y": uy["outcome"].to_numpy(dtype=float) / sd,
            "first": uy["first_treated"].to_numpy(dtype=np.int64),
            "treated": uy["treated"].to_numpy(dtype=bool),
        }
    )
    if "area" in uy.columns and uy["area"].notna().all():
        frame["area"] = pd.factorize(uy["area"])[0]  # units of an area share its shocks
    lag = int(cohort.spec.lag)
    rows = [
        _cohort_row(frame, int(g), int(g) - lag - 1, int(min_trend_years), trend)
        for g in cohort.start_years
    ]
    table = pd.DataFrame(rows, columns=list(_COLUMNS))
    tested = table["note"].eq("")
    level = alpha / max(int(tested.sum()), 1)
    table["flagged"] = (
        tested & (table["difference"] <= -threshold) & (table["p_value"] < level)
    ).astype(bool)
    detected = bool(table["flagged"].any())
    word = "teachers" if cohort.spec.exposure == "teacher" else "schools"
    message = _message(table, detected, threshold, level, word)
    return DipCheck(
        table=table,
        detected=detected,
        threshold=float(threshold),
        alpha=float(alpha),
        message=message,
        unit=cohort.spec.exposure,
        outcome_sd=sd,
    )


def attach_dip_check(cohort: Cohort, *, stacklevel: int = 2) -> Cohort:
    """The cohort with ``dip_check`` filled in; warns with :class:`SelectionOnDipWarning` when
    a dip is detected (used by the cohort builder)."""
    check = check_pre_period_dip(cohort)
    if check.detected:
        warnings.warn(check.message, SelectionOnDipWarning, stacklevel=stacklevel + 1)
    return dataclasses.replace(cohort, dip_check=check)


# ---------------------------------------------------------------------- helpers
def _cohort_row(
    frame: pd.DataFrame, g: int, ref: int, min_years: int, trend: bool
) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(_COLUMNS, np.nan)
    earlier_years = sorted(set(frame.loc[frame["year"] < ref, "year"]))
    row.update(
        start_year=g,
        reference_year=ref,
        trend_years=f"{earlier_years[0]}-{earlier_years[-1]}" if earlier_years else "",
        n_treated=0,
        n_comparison=0,
        clusters="unit",
        n_treated_clusters=0,
        n_comparison_clusters=0,
        flagged=False,
        note="",
    )
    if len(earlier_years) < min_years:
        row["note"] = f"fewer than {min_years} years before {ref} to compare with"
        return row
    residual = _residuals(frame, ref, min_years, trend)
    first = frame.groupby("unit", sort=False)["first"].first()
    treated = frame.groupby("unit", sort=False)["treated"].first()
    cohort_units = first.index[treated.to_numpy() & (first.to_numpy() == g)]
    comparison = first.index[~treated.to_numpy() | (first.to_numpy() > g)]
    r_t = residual.reindex(cohort_units).dropna()
    r_c = residual.reindex(comparison).dropna()
    row.update(n_treated=len(r_t), n_comparison=len(r_c))
    if len(r_t) < 2 or len(r_c) < 2:
        row["note"] = "fewer than two treated or comparison units with a residual"
        return row
    diff = float(r_t.mean() - r_c.mean())
    if "area" in frame.columns:
        area = frame.groupby("unit", sort=False)["area"].first()
        a_t, a_c = area.reindex(r_t.index).to_numpy(), area.reindex(r_c.index).to_numpy()
        g_t, g_c = len(np.unique(a_t)), len(np.unique(a_c))
        shared = g_t == g_c == 1 and a_t[0] == a_c[0]  # one area: its shocks cancel
        if not shared:
            row.update(clusters="area", n_treated_clusters=g_t, n_comparison_clusters=g_c)
            if g_t == g_c == 1:
                row["note"] = (
                    "one treated and one comparison area: a dip cannot be told from the "
                    "areas' own shocks"
                )
                return row
            v_t, v_c, df = _area_variances(r_t.to_numpy(), a_t, r_c.to_numpy(), a_c)
    if row["clusters"] == "unit":
        r_t, r_c = r_t.to_numpy(), r_c.to_numpy()
        v_t, v_c = r_t.var(ddof=1) / len(r_t), r_c.var(ddof=1) / len(r_c)
        df = (v_t + v_c) ** 2 / (v_t**2 / (len(r_t) - 1) + v_c**2 / (len(r_c) - 1))
    se = float(np.sqrt(max(v_t + v_c, 0.0)))
    if not se > 0:
        row["note"] = "the residuals do not vary"
        return row
    statistic = diff / se
    row.update(
        treated_residual=float(r_t.mean()),
        comparison_residual=float(r_c.mean()),
        difference=diff,
        std_error=se,
        df=float(df),
        statistic=float(statistic),
        p_value=float(stats.t.cdf(statistic, df)),
    )
    return row


def _area_variances(
    r_t: np.ndarray, a_t: np.ndarray, r_c: np.ndarray, a_c: np.ndarray
) -> tuple[float, float, float]:
    """Variances of the two arms' mean residuals clustered by area (the comparison arm's less
    the covariance of areas holding both) and Welch's df over areas; an arm in a single area
    takes its variance from the spread of the other arm's area means."""
    sums = []
    for r, a in ((r_t, a_t), (r_c, a_c)):
        codes, inverse = np.unique(a, return_inverse=True)
        sums.append((codes, np.bincount(inverse, weights=(r - r.mean()) / len(r))))
    (codes_t, s_t), (codes_c, s_c) = sums
    g_t, g_c = len(codes_t), len(codes_c)
    both, in_t, in_c = np.intersect1d(codes_t, codes_c, return_indices=True)
    cov = float(s_t[in_t] @ s_c[in_c]) if both.size else 0.0
    if g_t > 1 and g_c > 1:
        v_t = g_t / (g_t - 1) * float(s_t @ s_t)
        v_c = g_c / (g_c - 1) * float(s_c @ s_c) - 2 * cov
        df = (v_t + g_c / (g_c - 1) * float(s_c @ s_c)) ** 2 / (
            v_t**2 / (g_t - 1) + (g_c / (g_c - 1) * float(s_c @ s_c)) ** 2 / (g_c - 1)
        )
        return v_t, v_c, float(df)
    # One area on one side: it is one draw of an area mean; the other side's areas show how
    # much area means vary (areas of similar size assumed).
    single_t = g_t == 1
    r, a = (r_c, a_c) if single_t else (r_t, a_t)
    codes, inverse = np.unique(a, return_inverse=True)
    means = np.bincount(inverse, weights=r) / np.bincount(inverse)
    spread = float(means.var(ddof=1))
    g = len(codes)
    return spread, spread / g, float(g - 1)


def _residuals(frame: pd.DataFrame, ref: int, min_years: int, trend: bool) -> pd.Series:
    """Residual of each unit's reference-year mean from its least-squares line over the
    earlier years (units without the reference year or with too few earlier years: absent)."""
    early = frame[frame["year"] < ref]
    t = (early["year"] - ref).to_numpy(dtype=float)  # centred on ref: no cancellation
    grouped = early.assign(t=t, tt=t * t, ty=t * early["y"].to_numpy()).groupby("unit")
    sums = grouped[["t", "y", "tt", "ty"]].sum()
    n = grouped.size()
    sums = sums[n >= min_years]
    n = n[n >= min_years]
    mean_t, mean_y = sums["t"] / n, sums["y"] / n
    sxx = sums["tt"] - n * mean_t**2
    sxy = sums["ty"] - n * mean_t * mean_y
    slope = (sxy / sxx).where(sxx > 0) if trend else 0.0 * mean_y
    predicted = mean_y - slope * mean_t  # the line at t = 0, the reference year
    at_ref = frame[frame["year"] == ref].set_index("unit")["y"]
    return (at_ref - predicted.reindex(at_ref.index)).dropna()


def _message(table: pd.DataFrame, detected: bool, threshold: float, level: float, word: str):
    tested = table[table["note"].eq("")]
    if tested.empty:
        return (
            "The pre-period dip was not checked: it needs, for some start cohort, a year "
            "before the start and at least two earlier years to fit each unit's trend, with "
            f"two or more treated and comparison {word}."
        )
    if not detected:
        worst = tested.loc[tested["difference"].idxmin()]
        if worst["difference"] >= 0:
            return (
                f"No dip before the start: in the year before they started, no cohort of "
                f"treated {word} was below its own trend relative to the comparison {word}."
            )
        return (
            f"No unusual dip before the start. The largest: the {word} starting in "
            f"{int(worst['start_year'])} were {abs(worst['difference']):.2f} pupil SD below "
            f"their own trend in {int(worst['reference_year'])}, relative to the comparison "
            f"{word} (one-sided p = {worst['p_value']:.2g}; a dip is flagged from "
            f"{threshold:.2g} SD at p < {level:.2g})."
            + (
                f" With {int(worst['n_treated'])} treated {word} the check has little power: if "
                f"they were chosen on their results, use a design that survives a dip anyway "
                f"(see {_DOCS})."
                if worst["n_treated"] < 50
                else ""
            )
        )
    flagged = tested[tested["flagged"]]
    parts = [
        f"the {word} starting in {int(r.start_year)} were {abs(r.difference):.2f} pupil SD "
        f"below their own {r.trend_years} trend in {int(r.reference_year)}, relative to the "
        f"comparison {word} (one-sided p = {r.p_value:.2g})"
        for r in flagged.itertuples()
    ]
    return (
        "Possible selection on a dip: "
        + "; ".join(parts)
        + f". {word.capitalize()} chosen after a bad year tend to recover without help "
        "(regression to the mean), so a before-and-after comparison, or a "
        "difference-in-differences based on that year against units that were not chosen, "
        f"can overstate the effect. Compare with {word} chosen by the same rule later "
        "(not-yet-treated), or match comparison units on the whole pre-period trajectory "
        f"including that year; see {_DOCS}."
    )
