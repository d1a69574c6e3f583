"""Discrete-time hazard of leaving: the person-period logit, cluster-robust by school."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.special import expit

from cpdimpact._results import EstimateResult, critical_value, tidy_frame
from cpdimpact._validate import check_alpha, check_int, check_treatment_not_covariate
from cpdimpact.errors import (
    EstimationError,
    InvalidArgumentError,
    SeparationError,
    format_value,
)
from cpdimpact.estimator import adjustment_in_words
from cpdimpact.survival._checks import (
    _require_columns,
    duration_values,
    event_values,
    normalise_names,
    prepare_spells,
    require_leavers_in_both_arms,
)
from cpdimpact.survival._km import check_horizons

__all__ = ["DiscreteTimeHazard", "DiscreteHazardResult", "person_periods"]

#: IRLS convergence: relative change of the deviance.
_TOL = 1e-12
_MAX_ITER = 50


def person_periods(
    data: pd.DataFrame,
    *,
    duration: str = "duration",
    event: str = "event",
    period: str = "period",
    left: str = "left",
) -> pd.DataFrame:
    """Expand one row per spell into one row per spell and period at risk.

    A spell of ``T`` whole periods (census years) becomes ``T`` rows numbered ``1..T`` in the
    new column ``period``; the new column ``left`` is 1 in the last row of a spell that ended
    in the event and 0 elsewhere (Singer & Willett 1993). Every other column is repeated, and
    each row keeps the index label of its spell, so a message can name the user's row.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per spell (not modified).
    duration, event : str
        Columns of the spell's length in whole periods (1, 2, ...) and of whether it ended.
    period, left : str
        Names of the new columns; they must not exist in ``data``.

    Returns
    -------
    pandas.DataFrame
        The person-period table, ``sum(duration)`` rows.

    Raises
    ------
    cpdimpact.errors.DurationError
        A duration that is missing, not positive or not whole.
    cpdimpact.errors.EventCodingError
        An event that is not 0/1.

    Examples
    --------
    >>> import pandas as pd
    >>> from cpdimpact.survival import person_periods
    >>> spells = pd.DataFrame({"teacher": ["a", "b"], "years": [2, 1], "left": [1, 0]})
    >>> person_periods(spells, duration="years", event="left", left="leaves")[
    ...     ["teacher", "period", "leaves"]].to_numpy().tolist()
    [['a', 1, 0], ['a', 2, 1], ['b', 1, 0]]
    """
    _require_columns(
        data,
        [(duration, "duration of each spell", "duration"), (event, "event", "event")],
    )
    for name in (period, left):
        if name in data.columns:
            raise InvalidArgumentError(
                f"the data already have a column {name!r}; pass another name "
                f"(period=... or left=...) for the new column."
            )
    lengths = duration_values(data, duration, whole=True).astype(np.int64)
    ended = event_values(data, event)
    rows = np.repeat(np.arange(len(data)), lengths)
    out = data.iloc[rows].copy()
    starts = np.cumsum(lengths) - lengths
    number = np.arange(rows.size) - np.repeat(starts, lengths) + 1
    out[period] = number
    out[left] = ((number == lengths[rows]) & (ended[rows] == 1)).astype(np.int64)
    return out


@dataclass(frozen=True, kw_only=True)
class DiscreteTimeHazard:
    r"""Discrete-time hazard of leaving: a logit of leaving in each census year at risk.

    Parameters
    ----------
    duration : str
        Column of each spell's length in whole periods (census years in post: 1, 2, ...).
    event : str
        Column that is 1 when the spell ended in leaving, 0 when censored.
    treatment : str
        Column that is 1 for a participating teacher, 0 for a comparison teacher (default
        ``"treated"``, as :func:`cpdimpact.workforce.spells` names it).
    covariates : sequence of str
        Numeric covariates adjusted for (constant over the spell).
    cluster : str or None
        Column of the clusters (the school): cluster-robust CR1 standard errors, with t on
        ``G - 1`` degrees of freedom. ``None``: model-based (with weights that are not whole
        numbers, robust with each spell its own cluster).
    weights : str or None
        Column of case weights, e.g. matching or entropy-balancing weights; rows of weight 0
        are set aside and counted in the notes.
    horizons : sequence of int
        Periods k at which the implied difference in the share leaving within k is reported.
    pool_from : int or None
        Periods from this one on share one baseline hazard (for the thin tail of long spells,
        where a period with no leaver would have an infinite coefficient); ``None``: one
        baseline per period.
    alpha : float
        1 minus the confidence level.

    Notes
    -----
    Each spell of :math:`T_i` periods is expanded into person-periods :math:`t = 1..T_i`
    (:func:`person_periods`), with :math:`y_{it} = 1` in the period the teacher leaves. The
    model (Singer & Willett 1993; 2003, ch. 10-12) is

    .. math::

        \operatorname{logit} h_{it} = \alpha_t + \beta D_i + \gamma' X_i,

    with one baseline :math:`\alpha_t` per period (no intercept) and :math:`h_{it}` the
    probability of leaving in period :math:`t` given in post at its start; :math:`e^\beta` is
    the odds ratio of leaving in any period, close to the hazard ratio when yearly hazards are
    small. It is fitted by weighted maximum likelihood (IRLS). With ``cluster`` the variance is
    the sandwich :math:`c\,B^{-1}(\sum_g s_g s_g')B^{-1}`, :math:`B = X'WX`, :math:`s_g` the
    weighted scores summed over the cluster's person-periods, and
    :math:`c = \frac{G}{G-1}\frac{N-1}{N-K}` with :math:`N` person-periods and :math:`K`
    parameters, with t on :math:`G-1` degrees of freedom: statsmodels
    ``GLM(Binomial, var_weights=w).fit(cov_type="cluster", use_t=True)``.

    The implied effect on leaving within :math:`k` periods is averaged over the participants
    (the effect on the treated, weighted):

    .. math::

        \Delta_k = \frac{\sum_{i:D_i=1} w_i \bigl[F_k(1, X_i) - F_k(0, X_i)\bigr]}
        {\sum_{i:D_i=1} w_i}, \qquad
        F_k(d, x) = 1 - \prod_{t \le k} \bigl(1 - h_t(d, x)\bigr),

    a difference in proportions (x100 = percentage points; below 0: participants leave less),
    with a delta-method standard error from the same covariance.

    References
    ----------
    Singer, J. D. & Willett, J. B. (1993). It's about time: using discrete-time survival
    analysis to study duration and the timing of events. *Journal of Educational Statistics*
    18(2), 155-195.
    Singer, J. D. & Willett, J. B. (2003). *Applied Longitudinal Data Analysis: Modeling
    Change and Event Occurrence*. Oxford University Press.
    Liang, K.-Y. & Zeger, S. L. (1986). Longitudinal data analysis using generalized linear
    models. *Biometrika* 73(1), 13-22.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.survival import DiscreteTimeHazard
    >>> rng = np.random.default_rng(4)
    >>> n = 800
    >>> arm = rng.integers(0, 2, n)
    >>> years = np.minimum(rng.geometric(np.where(arm == 1, 0.10, 0.16)), 6)
    >>> left = (rng.random(n) < 0.8).astype(int)
    >>> spells = pd.DataFrame({"years": years, "left": left, "cpd": arm,
    ...                        "school": rng.integers(0, 80, n)})
    >>> res = DiscreteTimeHazard(duration="years", event="left", treatment="cpd",
    ...                          cluster="school").fit(spells)
    >>> res.to_frame()["term"].tolist()[:2]
    ['cpd', 'leaving within 1: difference']
    """

    #: Rows it fits: one per teacher's spell in post (expanded to person-periods inside).
    data_level: ClassVar[str] = "teacher"
    #: Its estimate is a log odds ratio of leaving per period.
    effect_scale: ClassVar[str] = "log_hazard_ratio"

    duration: str = "duration"
    event: str = "event"
    treatment: str = "treated"
    covariates: Sequence[str] = field(default=())
    cluster: str | None = None
    weights: str | None = None
    horizons: Sequence[int] = field(default=(1, 2, 3))
    pool_from: int | None = None
    alpha: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", normalise_names(self.covariates, "covariates"))
        horizons = check_horizons(self.horizons)
        if any(h != int(h) for h in horizons):
            raise InvalidArgumentError(
                f"horizons of a discrete-time model are whole periods, got "
                f"{format_value(self.horizons)}."
            )
        object.__setattr__(self, "horizons", tuple(int(h) for h in horizons))
        if self.pool_from is not None:
            check_int(self.pool_from, "pool_from", minimum=2)
        check_alpha(self.alpha)
        check_treatment_not_covariate(self.treatment, self.covariates)

    def describe(self) -> str:
        """The estimator and its inference in plain words, for a report."""
        inference = (
            f"standard errors clustered by {self.cluster}, with the usual small-sample "
            "correction and t tests on the number of clusters minus one degrees of freedom"
            if self.cluster
            else "model-based standard errors"
            + (" (robust by teacher if the weights are not whole numbers)" if self.weights else "")
        )
        return (
            "Discrete-time hazard model of leaving (a logit per year in post, one baseline per "
            f"year){adjustment_in_words(self.covariates, self.weights)}; {inference}"
        )

    def fit(self, data: pd.DataFrame) -> DiscreteHazardResult:
        """Estimate the model on ``data`` (one row per spell; not modified).

        Parameters
        ----------
        data : pandas.DataFrame
            One row per teacher's spell in post, its duration in whole periods.

        Returns
        -------
        DiscreteHazardResult
            Log odds ratios, baselines and the implied differences in leaving.

        Raises
        ------
        cpdimpact.errors.MissingColumnError
            A named column is absent.
        cpdimpact.errors.DurationError
            A duration is missing, not positive or not whole.
        cpdimpact.errors.EventCodingError
            The event column is not 0/1.
        cpdimpact.errors.SingleArmError
            Every teacher used is in the same arm.
        cpdimpact.errors.SeparationError
            A period in which nobody (or everybody) at risk leaves: pool it with ``pool_from``.
        cpdimpact.errors.InvalidValueError
            A missing cluster, a treatment that is not 0/1, bad weights or covariates.
        """
        spells = prepare_spells(
            data,
            duration=self.duration,
            event=self.event,
            treatment=self.treatment,
            covariates=self.covariates,
            cluster=self.cluster,
            weights=self.weights,
            whole=True,
        )
        require_leavers_in_both_arms(spells, self.treatment, self.event)
        lengths = spells.time.astype(np.int64)
        last = int(lengths.max())
        top = last if self.pool_from is None else min(self.pool_from, last)
        # the baseline column of each period: periods >= pool_from share the last
        baseline_of = np.minimum(np.arange(1, last + 1), top) - 1
        labels = [f"period {t}" for t in range(1, top)] + [
            f"period {top}" if top == last else f"period {top}+"
        ]
        spell_x = np.column_stack([spells.arm, spells.covariates])
        k_base = len(labels)
        cells = _Cells(lengths, spells.event, spells.weight, spell_x, baseline_of, k_base)
        _check_periods(cells, labels, self.pool_from)
        beta, info = cells.fit()
        inverse = np.linalg.inv(info)
        n_obs, k = int(lengths.sum()), beta.size
        whole = bool(np.all(spells.weight == np.round(spells.weight)))
        if self.cluster is not None:
            groups, n_groups = spells.cluster, spells.n_clusters
        elif spells.weighted and not whole:
            groups, n_groups = np.arange(lengths.size), lengths.size
        else:
            groups, n_groups = None, 0
        if groups is not None:
            scores = cells.cluster_scores(beta, groups, n_groups)
            factor = n_groups / (n_groups - 1) * (n_obs - 1) / (n_obs - k)
            cov = factor * inverse @ (scores.T @ scores) @ inverse
            df = n_groups - 1
        else:
            cov, factor, df = inverse, 1.0, None
        terms = labels + [self.treatment, *self.covariates]
        differences = _leaving_differences(
            beta, cov, spell_x, spells.weight, baseline_of, k_base, self.horizons, last
        )
        notes = list(spells.notes)
        beyond = [h for h in self.horizons if h > last]
        if beyond:
            notes.append(
                f"no spell lasts beyond {last} periods: the difference in leaving within "
                f"{', '.join(map(str, beyond))} is not estimated."
            )
        return DiscreteHazardResult(
            params=pd.Series(beta, index=terms),
            cov=pd.DataFrame(cov, index=terms, columns=terms),
            differences=differences,
            df=df,
            small_sample_factor=factor,
            n_spells=int(lengths.size),
            n_person_periods=int(n_obs),
            n_events=int(spells.event.sum()),
            n_clusters=spells.n_clusters if self.cluster is not None else None,
            treatment=self.treatment,
            duration=self.duration,
            event=self.event,
            cluster=self.cluster,
            weights=self.weights,
            robust=groups is not None,
            alpha=self.alpha,
            notes=tuple(notes),
        )


class _Cells:
    """The person-period logit's sufficient statistics: spells with the same covariates
    (pattern) and the same period share one cell, holding the weighted number at risk and the
    weighted number leaving. The likelihood, its derivatives and each cluster's scores are
    sums over cells (or over spells), so the person-period table, ``sum(duration)`` rows, is
    never built: the fit costs O(spells + cells x parameters^2) per Newton step.
    """

    def __init__(self, lengths, event, weight, spell_x, baseline_of, k_base):
        self.lengths, self.event, self.weight = lengths, event, weight
        self.baseline_of, self.k_base = baseline_of, k_base
        last = baseline_of.size
        self.patterns, self.pattern = np.unique(spell_x, axis=0, return_inverse=True)
        self.pattern = self.pattern.ravel()
        n_pat = self.patterns.shape[0]
        # weighted spells of each pattern lasting exactly T, and leaving at T
        ending = np.bincount(
            self.pattern * last + (lengths - 1), weights=weight, minlength=n_pat * last
        ).reshape(n_pat, last)
        leaving = np.bincount(
            self.pattern * last + (lengths - 1), weights=weight * event, minlength=n_pat * last
        ).reshape(n_pat, last)
        at_risk = np.cumsum(ending[:, ::-1], axis=1)[:, ::-1]  # lasting at least t
        keep = at_risk > 0
        self.cell_pattern, period = np.nonzero(keep)
        self.n = at_risk[keep]
        self.e = leaving[keep]
        self.col = baseline_of[period]
        self.z = self.patterns[self.cell_pattern]

    def _eta(self, beta):
        return beta[self.col] + self.z @ beta[self.k_base :]

    def _deviance(self, beta):
        p = expit(self._eta(beta))
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = self.e * np.log(p) + (self.n - self.e) * np.log1p(-p)
        return -2 * float(np.sum(terms))

    def derivatives(self, beta):
        """Score and information (X'WX) of the weighted log-likelihood at ``beta``."""
        k, col, z = self.k_base, self.col, self.z
        p = expit(self._eta(beta))
        r = self.e - self.n * p
        v = self.n * p * (1 - p)
        score = np.concatenate([np.bincount(col, weights=r, minlength=k), z.T @ r])
        q = z.shape[1]
        info = np.zeros((k + q, k + q))
        info[np.arange(k), np.arange(k)] = np.bincount(col, weights=v, minlength=k)
        cross = np.column_stack(
            [np.bincount(col, weights=v * z[:, j], minlength=k) for j in range(q)]
        )
        info[:k, k:] = cross
        info[k:, :k] = cross.T
        info[k:, k:] = (z * v[:, None]).T @ z
        return score, info

    def fit(self):
        """Newton-Raphson (IRLS for the logit) from the yearly life-table hazards."""
        k = self.k_base
        beta = np.zeros(k + self.z.shape[1])
        events = np.bincount(self.col, weights=self.e, minlength=k)
        risk = np.bincount(self.col, weights=self.n, minlength=k)
        share = np.clip(events / risk, 1e-6, 1 - 1e-6)
        beta[:k] = np.log(share / (1 - share))
        deviance = self._deviance(beta)
        for _ in range(_MAX_ITER):
            score, info = self.derivatives(beta)
            try:
                step = np.linalg.solve(info, score)
            except np.linalg.LinAlgError as exc:
                raise EstimationError(
                    "the discrete-time hazard design is singular: a covariate is constant or "
                    "collinear with the period baselines or others. Remove it."
                ) from exc
            new = beta + step
            new_deviance = self._deviance(new)
            halvings = 0
            while not np.isfinite(new_deviance) or new_deviance > deviance + 1e-9 * abs(deviance):
                halvings += 1
                if halvings > 30:
                    break
                new = (beta + new) / 2
                new_deviance = self._deviance(new)
            converged = abs(new_deviance - deviance) <= _TOL * (abs(new_deviance) + 0.1)
            beta, deviance = new, new_deviance
            if converged:
                break
        else:
            raise EstimationError(
                f"the discrete-time hazard model did not converge in {_MAX_ITER} iterations: "
                "a covariate may separate leavers from stayers."
            )
        return beta, self.derivatives(beta)[1]

    def cluster_scores(self, beta, groups, n_groups):
        """Each cluster's score: sum over its spells of w (y_t - p_t) x_t over the periods at
        risk, from each spell's pattern and length (cumulative fitted hazards per pattern)."""
        k, last = self.k_base, self.baseline_of.size
        n_pat = self.patterns.shape[0]
        # fitted hazard of every pattern in every period (periods no spell reached: unused)
        period_col = np.broadcast_to(self.baseline_of, (n_pat, last))
        eta = beta[period_col] + (self.patterns @ beta[k:])[:, None]
        hazard = expit(eta)
        w, t_end, pat = self.weight, self.lengths - 1, self.pattern
        # per spell and baseline column: the hazards summed over its periods in that column
        spent = np.empty((pat.size, k))
        for c in range(k):
            spent[:, c] = np.cumsum(hazard * (self.baseline_of == c), axis=1)[pat, t_end]
        own = np.zeros_like(spent)
        own[np.arange(pat.size), self.baseline_of[t_end]] = self.event
        base = w[:, None] * (own - spent)
        total = w * (self.event - spent.sum(axis=1))
        resid_z = total[:, None] * self.patterns[pat]
        columns = [np.bincount(groups, weights=base[:, c], minlength=n_groups) for c in range(k)]
        columns += [
            np.bincount(groups, weights=resid_z[:, j], minlength=n_groups)
            for j in range(resid_z.shape[1])
        ]
        return np.column_stack(columns)


def _check_periods(cells: _Cells, labels, pool_from) -> None:
    """Refuse a baseline period with no leaver or no stayer: its coefficient is infinite."""
    k = len(labels)
    at_risk = np.bincount(cells.col, weights=cells.n, minlength=k)
    leavers = np.bincount(cells.col, weights=cells.e, minlength=k)
    bad = np.flatnonzero((leavers == 0) | (leavers == at_risk))
    if bad.size:
        first = int(bad[0])
        what = "nobody" if leavers[first] == 0 else "everybody"
        raise SeparationError(
            f"in {labels[first]} {what} at risk leaves (of {at_risk[first]:,.6g} weighted "
            "person-periods), so its baseline hazard is "
            f"{'zero' if what == 'nobody' else 'one'} and its log-odds infinite. Pool the "
            f"late periods into one baseline with pool_from={first + 1 if first else 2}"
            + (f" (now {pool_from})" if pool_from else "")
            + ", or end the follow-up earlier."
        )


def _leaving_differences(beta, cov, spell_x, weight, baseline_of, k_base, horizons, last):
    """Delta-method differences in the share leaving within each horizon, over participants."""
    treated = spell_x[:, 0] == 1
    xs, ws = spell_x[treated], weight[treated]
    ws = ws / ws.sum()
    rows = []
    for k in horizons:
        if k > last:
            rows.append((k, np.nan, np.nan))
            continue
        alphas = beta[baseline_of[:k]]
        grad = np.zeros(beta.size)
        value = 0.0
        for d in (1.0, 0.0):
            xd = xs.copy()
            xd[:, 0] = d
            eta = alphas[None, :] + (xd @ beta[k_base:])[:, None]  # spells x periods
            h = expit(eta)
            surv = np.prod(1 - h, axis=1)
            sign = 1.0 if d == 1 else -1.0
            value += sign * np.sum(ws * (1 - surv))
            # dF/d eta_t = S h_t
            share = ws[:, None] * surv[:, None] * h
            g_base = np.bincount(baseline_of[:k], weights=share.sum(axis=0), minlength=k_base)
            grad[:k_base] += sign * g_base
            grad[k_base:] += sign * (share.sum(axis=1) @ xd)
        se = float(np.sqrt(grad @ cov @ grad))
        rows.append((k, value, se))
    return pd.DataFrame(rows, columns=["horizon", "estimate", "std_error"])


@dataclass(frozen=True, kw_only=True, eq=False)
class DiscreteHazardResult(EstimateResult):
    """Result of :class:`DiscreteTimeHazard`: log odds ratios of leaving per period.

    The tidy table (:meth:`to_frame`) holds the treatment's log odds ratio (the headline), the
    covariates', the implied differences in the share leaving within each horizon ("leaving
    within k: difference", proportions) and the period baselines (log-odds). Intervals use t on
    ``df`` degrees of freedom when clustered, normal otherwise.

    Attributes
    ----------
    params : pandas.Series
        Coefficients: the period baselines, the treatment, the covariates.
    cov : pandas.DataFrame
        Their covariance (cluster-robust CR1 when clustered).
    differences : pandas.DataFrame
        ``horizon, estimate, std_error``: the implied difference in leaving within k.
    df : int or None
        ``G - 1`` when clustered; ``None`` (normal) otherwise.
    small_sample_factor : float
        ``G/(G-1) (N-1)/(N-K)`` applied to the sandwich (1 when model-based).
    n_spells, n_person_periods, n_events : int
        Spells, person-periods and leavers.
    n_clusters : int or None
        Clusters, when clustered.
    treatment, duration, event : str
        The columns used.
    cluster, weights : str or None
        The cluster and weights columns, if any.
    robust : bool
        Whether the covariance is a sandwich.
    alpha : float
        1 minus the confidence level.
    notes : tuple of str
        Rows set aside, horizons beyond the follow-up.
    """

    params: pd.Series
    cov: pd.DataFrame
    differences: pd.DataFrame
    df: int | None
    small_sample_factor: float
    n_spells: int
    n_person_periods: int
    n_events: int
    n_clusters: int | None
    treatment: str
    duration: str
    event: str
    cluster: str | None
    weights: str | None
    robust: bool
    alpha: float
    notes: tuple[str, ...] = ()

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors of the coefficients."""
        return pd.Series(np.sqrt(np.diag(self.cov.to_numpy())), index=self.params.index)

    def _tidy(self, alpha: float) -> pd.DataFrame:
        se = self.std_errors
        effects = [t for t in self.params.index if not t.startswith("period ")]
        baselines = [t for t in self.params.index if t.startswith("period ")]
        d = self.differences
        names = [f"leaving within {h}: difference" for h in d["horizon"]]
        estimates = pd.concat(
            [
                self.params[effects[:1]],
                pd.Series(d["estimate"].to_numpy(), index=names),
                self.params[effects[1:]],
                self.params[baselines],
            ]
        )
        errors = pd.concat(
            [
                se[effects[:1]],
                pd.Series(d["std_error"].to_numpy(), index=names),
                se[effects[1:]],
                se[baselines],
            ]
        )
        return tidy_frame(estimates, errors, df=self.df, alpha=alpha)

    def _headline_term(self) -> str | None:
        return self.treatment

    @property
    def odds_ratio(self) -> float:
        """The treatment's odds ratio of leaving in a period (below 1: participants leave
        less)."""
        return float(np.exp(self.params[self.treatment]))

    @property
    def odds_ratio_ci(self) -> tuple[float, float]:
        """The treatment's odds-ratio interval at the result's ``alpha``."""
        q = critical_value(self.alpha, self.df)
        b, se = float(self.params[self.treatment]), float(self.std_errors[self.treatment])
        return float(np.exp(b - q * se)), float(np.exp(b + q * se))

    def _title(self) -> str:
        return "Discrete-time hazard of leaving (person-period logit)"

    def _facts(self) -> tuple[tuple[str, str], ...]:
        lower, upper = self.odds_ratio_ci
        if self.cluster:
            se = (
                f"cluster-robust CR1 by {self.cluster!r} ({self.n_clusters:,} clusters), t on "
                f"{self.df} df"
            )
        elif self.robust:
            se = "robust, each spell its own cluster (weights are not whole numbers)"
        else:
            se = "model-based"
        return (
            ("Duration, event", f"{self.duration}, {self.event}"),
            (
                "Spells, person-periods, leavers",
                f"{self.n_spells:,}, {self.n_person_periods:,}, {self.n_events:,}",
            ),
            ("Weights", self.weights or "none"),
            ("Standard errors", se),
            (
                f"Odds ratio of leaving, {self.treatment}",
                f"{self.odds_ratio:.3f} ({1 - self.alpha:.0%} CI {lower:.3f} to {upper:.3f})",
            ),
            (
                "Estimates",
                "log odds ratios; differences in the share leaving within k periods "
                "(participants minus comparison, over participants)",
            ),
        )
