"""Kaplan-Meier retention curves by arm, and the difference in the share still in post."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from cpdimpact._results import EstimateResult, critical_value, p_value
from cpdimpact._validate import check_alpha, check_choice, check_number
from cpdimpact.errors import InvalidArgumentError, format_value
from cpdimpact.estimator import adjustment_in_words
from cpdimpact.survival._checks import prepare_spells
from cpdimpact.survival._curves import (
    CONF_TYPES,
    at_horizons,
    cluster_influence,
    risk_table,
    survival_interval,
)

__all__ = ["KaplanMeier", "KaplanMeierResult"]

#: The two arms, in the order the tables show them (treatment 1, then 0).
ARMS = ((1, "treated"), (0, "comparison"))


def check_horizons(horizons) -> tuple[float, ...]:
    """Positive, increasing, distinct horizons (one number is one horizon)."""
    values = (horizons,) if isinstance(horizons, int | float | np.number) else tuple(horizons)
    if not values:
        raise InvalidArgumentError("horizons must hold at least one time, such as (1, 2, 3).")
    out = tuple(check_number(h, "horizons", minimum=0, strict=True) for h in values)
    if list(out) != sorted(set(out)):
        raise InvalidArgumentError(
            f"horizons must be distinct and increasing, got {format_value(values)}."
        )
    return out


@dataclass(frozen=True, kw_only=True)
class KaplanMeier:
    r"""Kaplan-Meier curves of retention (the share of teachers still in post) by arm.

    Parameters
    ----------
    duration : str
        Column of each spell's length (years in post since the start), positive.
    event : str
        Column that is 1 when the spell ended in leaving, 0 when the teacher was still in post
        when last seen (censored).
    treatment : str
        Column that is 1 for a participating teacher, 0 for a comparison teacher (default
        ``"treated"``, as :func:`cpdimpact.workforce.spells` names it).
    cluster : str or None
        Column of the clusters (the school): the variance is then R ``survfit``'s
        infinitesimal jackknife summed within clusters, robust to teachers of one school
        leaving together. ``None``: Greenwood's variance (or, with weights that are not whole
        numbers, the jackknife with each spell its own cluster, as ``survfit`` does).
    weights : str or None
        Column of case weights, e.g. matching or entropy-balancing weights of the comparison
        teachers (:meth:`cpdimpact.comparison.ComparisonWeights.attach`); rows of weight 0 are
        set aside and counted in the notes.
    horizons : sequence of float
        Times (years) at which the arms' retention is compared: the share still in post at 1,
        2 and 3 years by default.
    conf_type : {"log", "log-log", "plain"}
        Scale of the pointwise intervals of each curve (R ``survfit``'s ``conf.type``; "log"
        is its default). The difference between arms has a Wald interval.
    alpha : float
        1 minus the confidence level.

    Notes
    -----
    With weights :math:`w_i`, :math:`n_j` the weighted number at risk at the distinct time
    :math:`t_j` (spells lasting at least :math:`t_j`) and :math:`d_j` the weighted number
    leaving then, the Kaplan-Meier (1958) estimate and Greenwood's (1926) variance are

    .. math::

        \hat S(t) = \prod_{t_j \le t} \Bigl(1 - \frac{d_j}{n_j}\Bigr), \qquad
        \widehat{\mathrm{Var}}\,\log \hat S(t) = \sum_{t_j \le t} \frac{d_j}{n_j (n_j - d_j)}.

    With ``cluster`` the variance is the infinitesimal jackknife: the derivative of
    :math:`\log\hat S(t)` with respect to each spell's weight,
    :math:`-\sum_{t_j\le t}(dN_i(t_j) - Y_i(t_j) d_j/n_j)/(n_j-d_j)`, summed (weighted) within
    each cluster, squared and added over clusters (Lin & Wei 1989; Therneau & Grambsch 2000,
    sec. 7.2). The log interval is :math:`\exp(\log\hat S \mp z\,\mathrm{se})` with its upper
    end capped at 1.

    The effect at horizon :math:`h` is :math:`\hat S_1(h) - \hat S_0(h)`, the difference in the
    share still in post (x100 = percentage points; minus it is the difference in the share
    leaving within :math:`h`). Its variance is the sum of the arms' Greenwood variances, or
    with clusters the jackknife of the difference, which keeps the covariance of the arms when
    a school has teachers in both. Intervals are normal (Wald). With weights from a comparison
    design the curves of the comparison arm are reweighted to the participants'
    characteristics; the difference then estimates the effect on the participants.

    References
    ----------
    Kaplan, E. L. & Meier, P. (1958). Nonparametric estimation from incomplete observations.
    *Journal of the American Statistical Association* 53(282), 457-481.
    Greenwood, M. (1926). *The natural duration of cancer*. Reports on Public Health and
    Medical Subjects 33. London: HMSO.
    Lin, D. Y. & Wei, L. J. (1989). The robust inference for the Cox proportional hazards
    model. *Journal of the American Statistical Association* 84(408), 1074-1078.
    Therneau, T. M. & Grambsch, P. M. (2000). *Modeling Survival Data: Extending the Cox
    Model*. Springer.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.survival import KaplanMeier
    >>> rng = np.random.default_rng(1)
    >>> n = 400
    >>> arm = np.repeat([0, 1], n // 2)
    >>> years = np.minimum(rng.geometric(np.where(arm == 1, 0.10, 0.15)), 5)
    >>> left = (rng.geometric(np.where(arm == 1, 0.10, 0.15)) <= 5).astype(int)
    >>> spells = pd.DataFrame({"years": years, "left": left, "cpd": arm,
    ...                        "school": rng.integers(0, 40, n)})
    >>> res = KaplanMeier(duration="years", event="left", treatment="cpd",
    ...                   cluster="school").fit(spells)
    >>> res.to_frame()["term"].tolist()[:3]
    ['difference at 1', 'difference at 2', 'difference at 3']
    """

    #: Rows it fits: one per teacher's spell in post.
    data_level: ClassVar[str] = "teacher"
    #: Its estimate is a difference in the share still in post.
    effect_scale: ClassVar[str] = "retention"

    duration: str = "duration"
    event: str = "event"
    treatment: str = "treated"
    cluster: str | None = None
    weights: str | None = None
    horizons: Sequence[float] = field(default=(1, 2, 3))
    conf_type: str = "log"
    alpha: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "horizons", check_horizons(self.horizons))
        check_choice(self.conf_type, "conf_type", CONF_TYPES)
        check_alpha(self.alpha)

    def describe(self) -> str:
        """The estimator and its inference in plain words, for a report."""
        at = ", ".join(f"{h:g}" for h in self.horizons)
        inference = (
            f"infinitesimal jackknife standard errors clustered by {self.cluster}"
            if self.cluster
            else "Greenwood standard errors"
            + (
                " (the infinitesimal jackknife if the weights are not whole numbers)"
                if self.weights
                else ""
            )
        )
        return (
            f"Kaplan-Meier retention curves of participating and comparison teachers, "
            f"compared at {at} years{adjustment_in_words((), self.weights)}; {inference}"
        )

    def fit(self, data: pd.DataFrame) -> KaplanMeierResult:
        """Estimate the curves of both arms on ``data`` (one row per spell; not modified).

        Parameters
        ----------
        data : pandas.DataFrame
            One row per teacher's spell in post with the named columns.

        Returns
        -------
        KaplanMeierResult
            The curves, the share still in post at each horizon and the differences.

        Raises
        ------
        cpdimpact.errors.MissingColumnError
            A named column is absent.
        cpdimpact.errors.DurationError
            A duration is missing, zero or negative.
        cpdimpact.errors.EventCodingError
            The event column is not 0/1.
        cpdimpact.errors.SingleArmError
            Every teacher used is in the same arm.
        cpdimpact.errors.InvalidValueError
            A missing cluster, a treatment that is not 0/1, bad weights.
        """
        spells = prepare_spells(
            data,
            duration=self.duration,
            event=self.event,
            treatment=self.treatment,
            cluster=self.cluster,
            weights=self.weights,
        )
        notes = list(spells.notes)
        w = spells.weight
        whole = bool(np.all(w == np.round(w)))
        if self.cluster is not None:
            cluster, n_clusters, variance = spells.cluster, spells.n_clusters, "jackknife"
        elif spells.weighted and not whole:
            # survfit's rule: weights that are not counts make Greenwood wrong
            cluster, n_clusters, variance = np.arange(w.size), w.size, "jackknife"
        else:
            cluster, n_clusters, variance = None, 0, "greenwood"
        horizons = np.asarray(self.horizons, dtype=float)
        curves, retained, influence, surv_at, se_at = [], [], {}, {}, {}
        for code, label in ARMS:
            mine = spells.arm == code
            t, d, wi = spells.time[mine], spells.event[mine], w[mine]
            table = risk_table(t, d, wi)
            rows = at_horizons(table["time"].to_numpy(), horizons)
            if variance == "jackknife":
                var_log, infl = cluster_influence(t, d, wi, cluster[mine], n_clusters, table, rows)
                influence[code] = infl
            else:
                var_log = table["var_log"].to_numpy()
            table["std_error"] = np.sqrt(var_log)  # of log S, as survfit's std.err
            table.insert(0, "arm", label)
            curves.append(table.drop(columns="var_log"))
            surv = np.where(rows >= 0, table["survival"].to_numpy()[np.maximum(rows, 0)], 1.0)
            se = np.where(rows >= 0, np.sqrt(var_log)[np.maximum(rows, 0)], 0.0)
            beyond = horizons > t.max()
            if beyond.any():
                notes.append(
                    f"no {label} teacher was followed beyond {format_value(t.max())} years: "
                    f"their retention at {', '.join(f'{h:g}' for h in horizons[beyond])} is "
                    "not estimated."
                )
                surv, se = np.where(beyond, np.nan, surv), np.where(beyond, np.nan, se)
            surv_at[code], se_at[code] = surv, se
            retained.append(
                pd.DataFrame(
                    {
                        "arm": label,
                        "horizon": horizons,
                        "survival": surv,
                        "std_error": se,
                        "n_risk": _at_risk(t, wi, horizons),
                    }
                )
            )
        retention = pd.concat(retained, ignore_index=True)
        s1, s0 = surv_at[1], surv_at[0]
        if variance == "jackknife":
            # influence on S = S x influence on log S; the arms share clusters
            diff = influence[1] * s1 - influence[0] * s0
            diff_se = np.sqrt(np.einsum("gh,gh->h", diff, diff))
        else:
            diff_se = np.sqrt((s1 * se_at[1]) ** 2 + (s0 * se_at[0]) ** 2)
        differences = pd.DataFrame({"horizon": horizons, "estimate": s1 - s0, "std_error": diff_se})
        return KaplanMeierResult(
            curves=pd.concat(curves, ignore_index=True),
            retention=retention,
            differences=differences,
            variance=variance,
            conf_type=self.conf_type,
            alpha=self.alpha,
            duration=self.duration,
            event=self.event,
            treatment=self.treatment,
            cluster=self.cluster,
            weights=self.weights,
            n_spells={lab: int((spells.arm == c).sum()) for c, lab in ARMS},
            n_events={
                lab: float(w[(spells.arm == c) & (spells.event == 1)].sum()) for c, lab in ARMS
            },
            n_clusters=n_clusters if self.cluster is not None else None,
            notes=tuple(notes),
        )


def _at_risk(time: np.ndarray, weight: np.ndarray, horizons: np.ndarray) -> np.ndarray:
    """Weighted number at risk at each horizon (spells lasting at least that long), as the
    ``n.risk`` of R ``summary(survfit, times=)``."""
    return np.array([weight[time >= h].sum() for h in horizons])


@dataclass(frozen=True, kw_only=True, eq=False)
class KaplanMeierResult(EstimateResult):
    """Result of :class:`KaplanMeier`: retention curves by arm and their differences.

    Attributes
    ----------
    curves : pandas.DataFrame
        One row per arm and distinct time: ``arm, time, n_risk, n_event, n_censor, survival,
        std_error`` (weighted counts; ``std_error`` is that of log S, as R ``survfit``'s
        ``std.err``). :meth:`curve_frame` adds the intervals.
    retention : pandas.DataFrame
        The share still in post at each horizon by arm: ``arm, horizon, survival, std_error``
        (of log S) and ``n_risk`` (weighted number at risk at the horizon).
    differences : pandas.DataFrame
        ``horizon, estimate, std_error``: treated minus comparison retention.
    variance : {"greenwood", "jackknife"}
        Greenwood's formula, or the infinitesimal jackknife by cluster.
    conf_type : str
        Scale of the curves' intervals.
    alpha : float
        1 minus the confidence level of :meth:`to_frame` and the headline.
    duration, event, treatment : str
        The columns used.
    cluster, weights : str or None
        The cluster and weights columns, if any.
    n_spells, n_events : dict
        Spells and (weighted) leavers by arm.
    n_clusters : int or None
        Number of clusters, when clustered.
    notes : tuple of str
        Rows set aside, horizons beyond the follow-up.
    """

    curves: pd.DataFrame
    retention: pd.DataFrame
    differences: pd.DataFrame
    variance: str
    conf_type: str
    alpha: float
    duration: str
    event: str
    treatment: str
    cluster: str | None
    weights: str | None
    n_spells: dict
    n_events: dict
    n_clusters: int | None
    notes: tuple[str, ...] = ()

    def curve_frame(self, alpha: float | None = None) -> pd.DataFrame:
        """:attr:`curves` with pointwise ``ci_lower, ci_upper`` at ``alpha`` (the result's
        own when ``None``) on the ``conf_type`` scale."""
        q = critical_value(self._level(alpha))
        frame = self.curves.copy()
        lower, upper = survival_interval(
            frame["survival"].to_numpy(), frame["std_error"].to_numpy(), q, self.conf_type
        )
        return frame.assign(ci_lower=lower, ci_upper=upper)

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """Differences at each horizon (Wald), then each arm's retention (``conf_type``)."""
        q = critical_value(alpha)
        d = self.differences
        est, se = d["estimate"].to_numpy(), d["std_error"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = est / se
        parts = [
            pd.DataFrame(
                {
                    "term": [f"difference at {h:g}" for h in d["horizon"]],
                    "estimate": est,
                    "std_error": se,
                    "statistic": stat,
                    "p_value": p_value(stat),
                    "ci_lower": est - q * se,
                    "ci_upper": est + q * se,
                }
            )
        ]
        k = len(d)
        for position, (_, label) in enumerate(ARMS):  # retention holds treated rows first
            rows = slice(position * k, (position + 1) * k)
            s = self.retention["survival"].to_numpy()[rows]
            se_log = self.retention["std_error"].to_numpy()[rows]
            lower, upper = survival_interval(s, se_log, q, self.conf_type)
            parts.append(
                pd.DataFrame(
                    {
                        "term": [f"{label} at {h:g}" for h in d["horizon"]],
                        "estimate": s,
                        "std_error": s * se_log,  # of S (delta method)
                        "statistic": np.nan,
                        "p_value": np.nan,
                        "ci_lower": lower,
                        "ci_upper": upper,
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)

    def _title(self) -> str:
        return "Kaplan-Meier retention by arm"

    def _facts(self) -> tuple[tuple[str, str], ...]:
        spells = ", ".join(f"{k} {v:,}" for k, v in self.n_spells.items())
        events = ", ".join(f"{k} {v:,.6g}" for k, v in self.n_events.items())
        variance = (
            f"infinitesimal jackknife by {self.cluster!r} ({self.n_clusters:,} clusters)"
            if self.cluster
            else (
                "infinitesimal jackknife (each spell its own cluster)"
                if self.variance == "jackknife"
                else "Greenwood"
            )
        )
        return (
            ("Duration, event, treatment", f"{self.duration}, {self.event}, {self.treatment}"),
            ("Spells", spells),
            ("Leavers (weighted)", events),
            ("Weights", self.weights or "none"),
            ("Variance", variance),
            ("Curve intervals", f"{self.conf_type} scale"),
            ("Estimates", "share still in post; difference = treated - comparison"),
            ("Confidence level", f"{1 - self.alpha:.0%}"),
        )

    def plot(self, *, ax=None):
        """Both arms' retention curves (steps) with their pointwise intervals."""
        import matplotlib.pyplot as plt  # lazy: importing cpdimpact stays cheap

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        frame = self.curve_frame()
        for colour, (_, label) in zip(("C0", "C1"), ARMS, strict=True):
            arm = frame.loc[frame["arm"] == label]
            x = np.concatenate([[0.0], arm["time"].to_numpy()])
            for column, style in (("survival", "-"), ("ci_lower", ":"), ("ci_upper", ":")):
                y = np.concatenate([[1.0], arm[column].to_numpy()])
                ax.step(
                    x,
                    y,
                    where="post",
                    color=colour,
                    linestyle=style,
                    label=label if column == "survival" else None,
                )
        ax.set_xlabel(f"{self.duration} (years)")
        ax.set_ylabel("share still in post")
        ax.set_ylim(0, 1.02)
        ax.set_title(self._title())
        ax.legend(frameon=False)
        return ax
