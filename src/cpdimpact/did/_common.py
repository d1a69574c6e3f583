"""Preparation shared by :class:`DiD` and :class:`EventStudy`: checks, arrays and warnings."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cpdimpact._guards import check_start_constant, require_variation
from cpdimpact._outcome_scale import (  # re-exported: the rule lives in _outcome_scale
    BINARY_OUTCOME_TEXT,
    outcome_scale,
    outcome_scale_facts,
    pass_value,
    units_text,
)
from cpdimpact._validate import check_alpha  # re-exported: the rule lives in _validate
from cpdimpact.did._checks import (
    integer_valued,
    key_column,
    numeric_column,
    require_columns,
    start_column,
)
from cpdimpact.did._twfe import (
    AUTO_CR1_MIN_CLUSTERS,
    FEW_CLUSTERS,
    FEW_TREATED_CLUSTERS,
    Prepared,
)
from cpdimpact.errors import (
    ArgumentTypeError,
    FewClustersWarning,
    InvalidArgumentError,
    InvalidValueError,
    format_rows,
    format_value,
)
from cpdimpact.estimator import ClusterRobust, check_inference

__all__ = [
    "BINARY_OUTCOME_TEXT",
    "ClusterRobustOptions",
    "References",
    "gap_references",
    "Prepared",
    "check_alpha",
    "normalise_covariates",
    "prepare",
    "prepare_event_time",
    "prepare_spec",
    "outcome_scale",
    "outcome_scale_facts",
    "pass_value",
    "units_text",
    "warn",
]


class ClusterRobustOptions:
    """What the two-way fixed-effects specs share beyond their fields: the checks of the
    glossary options and the ``cov_type`` they were once given as."""

    def _check_options(self) -> None:
        object.__setattr__(self, "covariates", normalise_covariates(self.covariates))
        check_alpha(self.alpha)
        check_inference(type(self), self.inference)

    @property
    def cov_type(self) -> str:
        """The cluster-robust kind asked for (``"CR1"``, ``"CR2"``, ``"auto"``; ``"CR1"`` under a
        wild bootstrap); read-only, from ``inference`` (the option ``cov_type=`` is
        deprecated)."""
        return self.inference.kind if isinstance(self.inference, ClusterRobust) else "CR1"


def normalise_covariates(covariates) -> tuple[str, ...]:
    """Accept one name or a sequence of names; return a tuple (a bare str is one covariate)."""
    if covariates is None:
        return ()
    if isinstance(covariates, str):
        return (covariates,)
    names = tuple(covariates)
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1}, key=names.index)
        raise InvalidArgumentError(
            f"covariates are repeated: {', '.join(map(format_value, repeated))} in "
            f"{format_value(names)}; list each column once."
        )
    return names


def check_event_window(reference, window) -> tuple[int, int] | None:
    """Validate an event study's reference event time and optional ``(lo, hi)`` window;
    the window as plain integers (``None`` when not given)."""
    if isinstance(reference, bool) or not isinstance(reference, int | np.integer):
        raise ArgumentTypeError(
            f"reference must be a whole-number event time (-1: the year before the start), got "
            f"{format_value(reference)}."
        )
    if window is None:
        return None
    try:
        lo, hi = window
    except (TypeError, ValueError):
        lo = hi = None
    whole = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in (lo, hi))
    if not whole or not lo < hi:
        raise InvalidArgumentError(
            f"window must be (lo, hi) whole-number event times with lo < hi, such as (-3, 2), "
            f"got {format_value(window)}."
        )
    if not lo <= reference <= hi:
        raise InvalidArgumentError(
            f"reference {format_value(reference)} lies outside window {format_value(window)}; "
            "widen the window or move the reference."
        )
    return int(lo), int(hi)


@dataclass(frozen=True)
class References:
    """Each treated cohort's reference period in an event study whose years may have gaps.

    A cohort's reference is the year at event time ``r`` (``reference``); when that year has no
    data (no KS2 tests in 2020 and 2021), it is the last observed year before it, as the base
    period of :class:`~cpdimpact.did.StaggeredDiD` is (did issue #89). Event time stays
    measured in years, so a cohort starting in 2022 with 2021 missing is compared with 2019
    (event time -3) and has no row at -2 or -1.
    """

    requested: int
    #: Cohort -> reference event time (binned into the window's ends like the rows).
    event_times: dict[int, int]
    #: Cohort -> calendar year of the reference (before binning).
    years: dict[int, int]
    #: Cohorts whose year at event time ``requested`` has no data and moved back.
    moved: tuple[int, ...]

    def rows(self, cohort: np.ndarray, event: np.ndarray, treated: np.ndarray) -> np.ndarray:
        """Rows at their cohort's reference event time (treated rows only)."""
        ref = np.full(cohort.shape[0], np.nan)
        for g, e in self.event_times.items():
            ref[cohort == g] = e
        return treated & (event == ref)

    @property
    def reported(self) -> int:
        """The reference event time a result reports: ``requested`` when some cohort is
        measured against it, else the latest moved reference."""
        if len(self.moved) < len(self.event_times):
            return self.requested
        return max(self.event_times.values())

    def series(self) -> pd.Series:
        """Cohort -> reference year, for a result."""
        return pd.Series(
            list(self.years.values()),
            index=pd.Index(list(self.years), name="cohort", dtype=np.int64),
            name="reference_year",
            dtype=np.int64,
        )

    def note(self) -> str | None:
        """A sentence saying which cohorts' references moved and to which year, or ``None``."""
        if not self.moved:
            return None
        r = self.requested
        parts = [
            f"cohort {g}: {self.years[g]} (event time {self.years[g] - g}), as {g + r} has no data"
            for g in self.moved
        ]
        which = "cohort" if len(self.moved) == 1 else "cohorts"
        shown = ", ".join(str(g) for g in self.moved)
        return (
            f"the year at the reference event time {r} has no data for {which} {shown}, so "
            "it is measured against its last observed year before it instead ("
            + "; ".join(parts)
            + "). Event times falling in years with no data have no estimate."
        )


def gap_references(
    period: np.ndarray,
    cohort: np.ndarray,
    treated: np.ndarray,
    reference: int,
    window: tuple[int, int] | None,
) -> References:
    """:class:`References` of the treated cohorts: the year at event time ``reference`` when
    observed in ``period`` (any row), else the last observed year before it (the year's
    reference is kept when no year before it is observed)."""
    years = np.unique(period)
    event_times, calendar, moved = {}, {}, []
    for g in np.unique(cohort[treated]):
        year = g + reference
        earlier = years[years < year]
        if year not in years and earlier.size:
            year = earlier[-1]
            moved.append(int(g))
        e = int(year - g)
        if window is not None:
            e = int(np.clip(e, *window))
        event_times[int(g)] = e
        calendar[int(g)] = int(year)
    return References(reference, event_times, calendar, tuple(moved))


def prepare(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    cluster: str,
    covariates: tuple[str, ...],
    weights: str | None,
    extra: tuple[tuple[str, str, str], ...],
) -> Prepared:
    """Check the columns and return float outcome/covariates/weights and integer codes.

    ``extra`` lists the estimator's own ``(column, role, option)`` triples, checked for presence
    here so that a missing column is reported before any value problem.
    """
    roles = [
        (outcome, "outcome", "outcome"),
        (unit, "unit whose fixed effects are absorbed", "unit"),
        (time, "period", "time"),
        *extra,
        (cluster, "cluster", "cluster"),
        *[(c, "covariate", "covariates") for c in covariates],
    ]
    if weights is not None:
        roles.append((weights, "weights", "weights"))
    require_columns(data, roles)
    if len(data) == 0:
        raise InvalidValueError("the data have no rows")
    y = numeric_column(data, outcome, "outcome")
    require_variation(y, outcome)
    unit_codes, _ = key_column(data, unit, "unit")
    time_codes, time_levels = key_column(data, time, "period")
    cluster_codes, _ = key_column(data, cluster, "cluster")
    covs = {c: numeric_column(data, c, "covariate") for c in covariates}
    w = None
    if weights is not None:
        w = numeric_column(data, weights, "weights")
        bad = w <= 0
        if bad.any():
            raise InvalidValueError(
                f"column {weights!r} (the weights) must be positive but is <= 0 at "
                f"{format_rows(data.index[bad])}; drop those rows upstream."
            )
    return Prepared(
        index=data.index,
        y=y,
        unit=unit_codes,
        time=time_codes,
        time_levels=time_levels,
        cluster=cluster_codes,
        weights=w,
        covariates=covs,
    )


def prepare_spec(
    data: pd.DataFrame,
    spec,
    extra: tuple[tuple[str, str, str], ...],
    cluster: str | None = None,
) -> Prepared:
    """:func:`prepare` of the columns a spec names by the glossary options (``outcome``,
    ``unit``, ``time``, ``cluster``, ``covariates``, ``weights``) and its ``extra`` ones;
    ``cluster`` overrides the spec's (an estimator that clusters by unit by default)."""
    return prepare(
        data,
        outcome=spec.outcome,
        unit=spec.unit,
        time=spec.time,
        cluster=cluster or spec.cluster,
        covariates=spec.covariates,
        weights=spec.weights,
        extra=extra,
    )


def prepare_event_time(
    data: pd.DataFrame, spec, estimator: str, cluster: str | None = None
) -> tuple[Prepared, np.ndarray, np.ndarray]:
    """The checked rows of an event study, their whole periods and each row's first treated
    period (0 for never treated, which a missing value also means); ``estimator`` names the
    design in the message when the start varies within a unit."""
    extra = ((spec.first_treated, "first-treated period", "first_treated"),)
    prep = prepare_spec(data, spec, extra, cluster)
    period = numeric_column(data, spec.time, "period")
    integer_valued(period, data.index, spec.time, "period")
    first = start_column(data, spec.first_treated)
    check_start_constant(first, data[spec.unit], column=spec.first_treated, estimator=estimator)
    return prep, period, first


def warn(notes: list[str], message: str, category: type[Warning], *, depth: int = 2) -> None:
    """Emit a warning at the caller of ``fit`` and keep its text for the result's notes.

    ``depth`` is 1 when ``fit`` calls this directly, 2 through one helper, and so on.
    """
    warnings.warn(message, category, stacklevel=depth + 2)
    notes.append(message)


def choose_cov_type(cov_type: str, prep: Prepared, treated: np.ndarray) -> str:
    """The covariance a fit uses: ``cov_type``, or for ``"auto"`` CR2 when fewer than
    :data:`AUTO_CR1_MIN_CLUSTERS` clusters hold treated rows or hold none (the smaller side
    limits the sandwich, not the total), else CR1. CR2 needs units nested in clusters: without
    that, CR1."""
    if cov_type != "auto":
        return cov_type
    n_clusters = int(prep.cluster.max()) + 1
    n_treated = np.unique(prep.cluster[treated]).size
    n_untreated = n_clusters - n_treated
    smaller = min(n_treated, n_untreated) if n_untreated else n_treated
    pairs = np.unique(prep.unit.astype(np.int64) * n_clusters + prep.cluster)
    nested = pairs.size == np.unique(prep.unit).size
    return "CR2" if smaller < AUTO_CR1_MIN_CLUSTERS and nested else "CR1"


def few_clusters(
    notes: list[str], cluster_codes: np.ndarray, treated: np.ndarray, cluster: str
) -> None:
    """Warn when clusters are few overall, or few on the treated or the untreated side.

    Cluster-robust t-tests over-reject with few clusters (Cameron, Gelbach & Miller 2008) and,
    far more, with few *treated* clusters whatever the total (Conley & Taber 2011; MacKinnon &
    Webb 2017): with one treated area the sandwich estimate of its variance is close to zero.
    ``treated`` flags rows of units in the treated group.
    """
    n_clusters = int(cluster_codes.max()) + 1
    if n_clusters < FEW_CLUSTERS:
        warn(
            notes,
            f"only {n_clusters} clusters of {cluster!r}: cluster-robust standard errors "
            f"over-reject with fewer than about {FEW_CLUSTERS} clusters (Cameron, Gelbach & "
            "Miller 2008). Read p-values with caution, or use the wild cluster bootstrap, "
            "which holds its level with few clusters (docs/wild.md).",
            FewClustersWarning,
        )
    treated_clusters = np.unique(cluster_codes[treated])
    untreated = np.setdiff1d(np.arange(n_clusters), treated_clusters)
    sides = {"treated": treated_clusters.size, "untreated": untreated.size}
    # No untreated cluster at all is a staggered design identified by timing, not a thin side.
    thin = {side: n for side, n in sides.items() if 0 < n < FEW_TREATED_CLUSTERS}
    if thin:
        shown = " and ".join(f"{n} {side}" for side, n in thin.items())
        warn(
            notes,
            f"only {shown} {'cluster' if list(thin.values())[-1] == 1 else 'clusters'} of {cluster!r}: with so few clusters on one side, "
            "cluster-robust standard errors can be far too small and intervals far too "
            "narrow (Conley & Taber 2011; MacKinnon & Webb 2017). Do not rely on them; for a "
            "single treated area compare it with a synthetic control instead.",
            FewClustersWarning,
        )
