"""Kaplan-Meier arithmetic: weighted risk sets, Greenwood and the infinitesimal jackknife.

Kept apart from the spec so that the estimator reads as the method and this as the sums. Every
function takes one arm's sorted arrays; nothing here knows about columns or rows of the user.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["CONF_TYPES", "risk_table", "cluster_influence", "survival_interval", "at_horizons"]

#: Scales of the pointwise intervals of a survival curve (those of R ``survfit``'s conf.type).
CONF_TYPES = ("log", "log-log", "plain")

#: Largest number of (cluster, event time) cells held at once by :func:`cluster_influence`.
_CELLS = 4_000_000


def risk_table(time: np.ndarray, event: np.ndarray, weight: np.ndarray) -> pd.DataFrame:
    """One row per distinct time: weighted ``n_risk, n_event, n_censor``, the Kaplan-Meier
    ``survival`` and Greenwood's ``var_log`` (the variance of log S, a cumulative sum).

    ``n_risk`` counts the spells lasting at least that long; a spell ending at t is at risk at
    t (R ``survfit``'s convention).
    """
    times, where = np.unique(time, return_inverse=True)
    k = times.size
    n_event = np.bincount(where, weights=weight * event, minlength=k)
    n_exit = np.bincount(where, weights=weight, minlength=k)
    n_risk = np.cumsum(n_exit[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(n_event > 0, 1.0 - n_event / n_risk, 1.0)
        survival = np.cumprod(step)
        increment = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
    return pd.DataFrame(
        {
            "time": times,
            "n_risk": n_risk,
            "n_event": n_event,
            "n_censor": n_exit - n_event,
            "survival": survival,
            "var_log": np.cumsum(increment),
        }
    )


def cluster_influence(
    time: np.ndarray,
    event: np.ndarray,
    weight: np.ndarray,
    cluster: np.ndarray,
    n_clusters: int,
    table: pd.DataFrame,
    horizons: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Infinitesimal jackknife of log S by cluster: its variance at every row of ``table`` and
    each cluster's influence at the ``horizons`` (rows of ``table``, -1: before any time).

    The derivative of :math:`\log \hat S(t_k)` with respect to spell i's weight is

    .. math::

        \frac{\partial \log \hat S(t_k)}{\partial w_i} = -\sum_{t_j \le t_k}
        \frac{dN_i(t_j) - Y_i(t_j)\, d_j / n_j}{n_j - d_j},

    and a cluster's influence is the weighted sum over its spells; the variance of
    :math:`\log\hat S(t_k)` is the sum of their squares (R ``survfit`` with ``cluster=``).
    Returns ``(variance, influence)``: an array with one variance per row of ``table`` and a
    ``(n_clusters, len(horizons))`` array. Work is in blocks of event times, so that memory
    stays below :data:`_CELLS` cells whatever the number of clusters.
    """
    n_event = table["n_event"].to_numpy()
    n_risk = table["n_risk"].to_numpy()
    all_times = table["time"].to_numpy()
    events = np.flatnonzero(n_event > 0)
    influence = np.zeros((n_clusters, horizons.size))
    variance_rows = np.zeros(all_times.size)
    if events.size == 0:
        return variance_rows, influence
    et = all_times[events]
    d, n = n_event[events], n_risk[events]
    with np.errstate(divide="ignore", invalid="ignore"):
        jump = np.where(n > d, 1.0 / (n - d), np.nan)  # S reaches 0: log S undefined after
        hazard_part = d / n * jump
    # spell i is at risk at event times j < last[i]; its event (if any) is at event time last-1
    last = np.searchsorted(et, time, side="right")
    dead = event > 0
    total = np.bincount(cluster, weights=weight, minlength=n_clusters)
    # the event time in force at each horizon (-1: none yet, influence 0)
    at_event = np.full(horizons.size, -1)
    valid = horizons >= 0
    at_event[valid] = np.searchsorted(et, all_times[horizons[valid]], side="right") - 1
    variance_events = np.zeros(events.size)
    block = max(1, _CELLS // max(n_clusters, 1))
    running = np.zeros(n_clusters)  # cumulative influence up to the start of the block
    exited = np.bincount(cluster[last == 0], weights=weight[last == 0], minlength=n_clusters)
    order = np.argsort(last, kind="stable")
    last_sorted = last[order]
    for j0 in range(0, events.size, block):
        j1 = min(events.size, j0 + block)
        width = j1 - j0
        # spells whose last event time at risk is in the block leave after it
        lo = np.searchsorted(last_sorted, j0 + 1, side="left")
        hi = np.searchsorted(last_sorted, j1, side="right")
        rows = order[lo:hi]
        leaving = np.zeros((n_clusters, width))
        np.add.at(leaving, (cluster[rows], last[rows] - 1 - j0), weight[rows])
        gone = exited[:, None] + np.cumsum(leaving, axis=1) - leaving
        at_risk = total[:, None] - gone
        deaths = np.zeros((n_clusters, width))
        mine = rows[dead[rows]]
        np.add.at(deaths, (cluster[mine], last[mine] - 1 - j0), weight[mine])
        increments = at_risk * hazard_part[j0:j1] - deaths * jump[j0:j1]
        cumulative = running[:, None] + np.cumsum(increments, axis=1)
        variance_events[j0:j1] = np.einsum("gj,gj->j", cumulative, cumulative)
        for h, j in enumerate(at_event):
            if j0 <= j < j1:
                influence[:, h] = cumulative[:, j - j0]
        running = cumulative[:, -1]
        exited = exited + leaving.sum(axis=1)
    in_force = np.searchsorted(et, all_times, side="right") - 1
    variance_rows = np.where(in_force >= 0, variance_events[np.maximum(in_force, 0)], 0.0)
    return variance_rows, influence


def survival_interval(
    survival: np.ndarray, std_log: np.ndarray, q: float, conf_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise interval of S from the standard error of log S, as R ``survfit``.

    ``"log"``: :math:`\\exp(\\log S \\mp q\\,se)`, the upper end capped at 1; ``"log-log"``:
    :math:`\\exp(-\\exp(\\log(-\\log S) \\pm q\\,se/\\log S))`; ``"plain"``:
    :math:`S \\mp q\\,S\\,se` cut to [0, 1]. Undefined (NaN) where S is 0 (and for log-log, 1).
    """
    s = np.asarray(survival, dtype=float)
    se = np.asarray(std_log, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "log":
            ok = s > 0
            lower = np.where(ok, np.exp(np.log(s) - q * se), np.nan)
            upper = np.where(ok, np.minimum(np.exp(np.log(s) + q * se), 1.0), np.nan)
        elif conf_type == "log-log":
            ok = (s > 0) & (s < 1)
            loglog = np.log(-np.log(s))
            shift = q * se / np.log(s)
            lower = np.where(ok, np.exp(-np.exp(loglog - shift)), np.nan)
            upper = np.where(ok, np.exp(-np.exp(loglog + shift)), np.nan)
        else:
            lower = np.clip(s - q * s * se, 0.0, 1.0)
            upper = np.clip(s + q * s * se, 0.0, 1.0)
    return lower, upper


def at_horizons(times: np.ndarray, horizons: np.ndarray) -> np.ndarray:
    """Row of the risk table in force at each horizon (the last time at or before it; -1 when
    the horizon precedes every time)."""
    return np.searchsorted(times, horizons, side="right") - 1
