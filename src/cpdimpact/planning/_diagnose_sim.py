"""One simulation of a design diagnosis: draw records, fit each estimator's lean path, score it.

Everything here runs inside workers (a process pool, a Dask cluster), so it is module-level and
picklable: :class:`SimDesign` (how to draw records), :class:`SimTask` (design, estimators, seed)
and :func:`run_chunk` (a chunk of simulation indices -> result rows).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._breakdown import subgroup_label
from .._comparison_stage import apply_comparison
from .._results import interval
from .._results import p_value as t_p_value
from ..errors import ArgumentTypeError, CpdImpactWarning
from ..evaluation import stages
from ._diagnose_cohort import lean_cohort

__all__ = ["SimDesign", "SimTask", "run_chunk", "ROW_COLUMNS"]

#: Columns of every per-simulation row, in order.
ROW_COLUMNS = (
    "sim",
    "estimator",
    "group",
    "ok",
    "error",
    "estimate",
    "std_error",
    "ci_lower",
    "ci_upper",
    "p_value",
    "truth",
    "es_estimate",
    "es_std_error",
    "es_ci_lower",
    "es_ci_upper",
    "es_truth",
    "n_obs",
    "n_clusters",
)


@dataclass(frozen=True)
class SimDesign:
    """How to draw one set of simulated records: a preset, a callable or a Scenario.

    ``draw(rng)`` returns :class:`~cpdimpact.datasets.SimulatedRecords`; ``description`` is a
    stable text naming the design (part of a checkpoint's fingerprint).
    """

    kind: str  # "preset", "callable" or "scenario"
    target: Any  # preset name, the callable, or the Scenario
    options: tuple[tuple[str, Any], ...] = ()

    def draw(self, rng: np.random.Generator):
        from ..datasets import PRESETS, SimulatedRecords, simulate

        if self.kind == "scenario":
            return simulate(self.target, rng)
        func = PRESETS[self.target] if self.kind == "preset" else self.target
        records = func(seed=rng, **dict(self.options))
        if not isinstance(records, SimulatedRecords) or records.truth is None:
            raise ArgumentTypeError(
                f"the design {self.description} must return SimulatedRecords with their truth "
                f"(as cpdimpact.datasets.simulate does); got {type(records).__name__}"
            )
        return records

    @property
    def description(self) -> str:
        if self.kind == "scenario":
            return f"Scenario {self.target!r}"
        name = self.target if self.kind == "preset" else _callable_name(self.target)
        options = ", ".join(f"{k}={v!r}" for k, v in self.options)
        return f"{name}({options})"


def _callable_name(func: Callable) -> str:
    import functools

    if isinstance(func, functools.partial):
        args = [repr(a) for a in func.args] + [f"{k}={v!r}" for k, v in func.keywords.items()]
        return f"partial({_callable_name(func.func)}, {', '.join(args)})"
    module = getattr(func, "__module__", "") or ""
    return f"{module}.{getattr(func, '__qualname__', repr(func))}"


@dataclass(frozen=True)
class SimTask:
    """What every simulation shares: the design, the estimators, the root seed, subgroups."""

    design: SimDesign
    estimators: tuple[tuple[str, Any], ...]  # (label, Evaluation)
    entropy: int
    subgroups: bool = False
    #: Build simulated records' cohorts with :func:`lean_cohort` where it applies.
    lean: bool = True


def sim_seeds(entropy: int, index: int) -> tuple[np.random.Generator, int]:
    """The data generator and the estimators' seed of simulation ``index``.

    Simulation ``index`` owns child ``index`` of ``SeedSequence(entropy)`` (exactly what
    ``SeedSequence(entropy).spawn(n)[index]`` gives), whose two children seed the records and
    the estimators: results never depend on the executor, worker count or chunking.
    """
    child = np.random.SeedSequence(entropy, spawn_key=(index,))
    data, estimators = child.spawn(2)
    return np.random.default_rng(data), int(estimators.generate_state(1, np.uint32)[0])


def run_chunk(task: SimTask, indices: tuple[int, ...]) -> list[tuple]:
    """Run the simulations ``indices``; one row (see :data:`ROW_COLUMNS`) per estimator/group."""
    rows: list[tuple] = []
    for index in indices:
        rng, seed = sim_seeds(task.entropy, index)
        try:
            records = task.design.draw(rng)
        except Exception as err:
            raise RuntimeError(
                f"simulation {index}: drawing records from {task.design.description} failed: "
                f"{type(err).__name__}: {err}"
            ) from err
        cohorts: dict[str, Any] = {}  # estimators with the same cohort spec share the build
        for label, evaluation in task.estimators:
            rows.extend(_fit_rows(index, label, evaluation, records, seed, task, cohorts))
    return rows


# ---------------------------------------------------------------------- lean path
def _fit_rows(index, label, evaluation, records, seed, task, cohorts) -> list[tuple]:
    """The lean path of :meth:`Evaluation.run`, through the same public stages
    (:mod:`cpdimpact.evaluation.stages`): cohort, headline fit, effect size (and, when asked,
    the subgroups); no event study, no staggered detail, no report. The estimators'
    warnings (few clusters, staggered timing) are silenced: they would repeat in every
    simulation, and the diagnosis measures what they warn of."""
    columns = tuple(evaluation.subgroups) if task.subgroups else ()
    groups = ["All pupils", *(subgroup_label(c) for c in columns)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        try:
            # Every simulation draws its own bootstrap: the simulation's seed replaces any the
            # estimator was given, and reaches it as Evaluation.run's seed would.
            ev = dataclasses.replace(evaluation, seed=seed, estimator=_unseeded(evaluation))
            cohort_spec = stages.cohort_spec(ev)
            comparison = stages.configure(ev, ev.comparison, "comparison")
            key = repr((cohort_spec, comparison))
            if key not in cohorts:
                if comparison is None:
                    lean = lean_cohort(cohort_spec, records) if task.lean else None
                    cohorts[key] = lean if lean is not None else cohort_spec.build(records)
                else:  # the full cohort, rebuilt on the schools the design uses
                    full = cohort_spec.build(records)
                    cohorts[key] = apply_comparison(comparison, records, full)[0]
            cohort = cohorts[key]
            estimator = stages.configure(ev, stages.choose_estimator(ev, cohort), "estimator")
            spec = stages.weighted(ev, estimator)
            pupils = cohort.pupils
            effect = _pupil_effects(records, pupils)
            tables = [(pupils, effect)]
            for column in columns:
                mask = (pupils[column] == 1).to_numpy()
                tables.append((pupils[mask], effect[mask]))
        except Exception as err:  # the cohort itself could not be built
            return [_failed(index, label, g, err) for g in groups]
        rows = []
        sd = None
        for group, (rows_g, effect_g) in zip(groups, tables, strict=True):
            try:
                fit = spec.fit(stages.analysis_rows(ev, rows_g, cohort, estimator))
                if sd is None:
                    sd = float(stages.effect_size_sd(fit, cohort)[0])
                es = stages.effect_size(fit, sd, cohort, alpha=ev.alpha, label=group)
                truth = _truth(fit, spec, rows_g, effect_g)
                rows.append(_row(index, label, group, fit, spec, truth, es, sd, records))
            except Exception as err:
                rows.append(_failed(index, label, group, err))
    return rows


def _unseeded(evaluation):
    """The evaluation's estimator without a seed of its own, in its ``seed`` option or its
    inference's (a :class:`~cpdimpact.estimator.WildBootstrap`); ``None`` stays ``None``."""
    estimator = evaluation.estimator
    if estimator is None:
        return None
    names = {f.name for f in dataclasses.fields(estimator)}
    if "seed" in names:
        return dataclasses.replace(estimator, seed=None)
    inference = getattr(estimator, "inference", None)
    if dataclasses.is_dataclass(inference) and "seed" in {
        f.name for f in dataclasses.fields(inference)
    }:
        return dataclasses.replace(estimator, inference=dataclasses.replace(inference, seed=None))
    return estimator


def _pupil_effects(records, pupils: pd.DataFrame) -> np.ndarray:
    """The simulated effect of each row of ``pupils``, matched by pupil id."""
    ids = records.pupils["pupil"].to_numpy()
    effects = records.truth.pupil_effects.to_numpy(dtype=float)
    wanted = pupils["pupil"].to_numpy()
    if ids.dtype.kind in "iu" and np.array_equal(ids, np.arange(1, len(ids) + 1)):
        return effects[wanted - 1]  # simulate() numbers pupils 1..n in row order
    return pupils["pupil"].map(pd.Series(effects, index=ids)).to_numpy(dtype=float)


def _failed(index, label, group, err) -> tuple:
    message = f"{type(err).__name__}: {err}"
    return (index, label, group, False, message, *([math.nan] * (len(ROW_COLUMNS) - 5)))


def _row(index, label, group, fit, spec, truth, es, sd, records) -> tuple:
    """One scored row: the estimate and interval in outcome points, and as an effect size
    (``es``, the evaluation's Hedges conversion; the interval rescaled by the same factor)."""
    estimate, se = float(fit.estimate), float(fit.std_error)
    df = getattr(fit, "df", None)
    df = None if df is None or not math.isfinite(df) else float(df)
    alpha = float(getattr(spec, "alpha", 0.05))
    if hasattr(fit, "ci_lower") and hasattr(fit, "ci_upper"):
        lower, upper = float(fit.ci_lower), float(fit.ci_upper)
    else:
        lo, hi = interval(estimate, se, alpha=alpha, df=df)
        lower, upper = float(lo), float(hi)
    p = float(fit.p_value) if hasattr(fit, "p_value") else float(t_p_value(estimate / se, df))
    j = es.correction
    true_sd = records.truth.outcome_sd
    return (
        index,
        label,
        group,
        True,
        "",
        estimate,
        se,
        lower,
        upper,
        p,
        truth,
        es.estimate,
        es.std_error,
        j * lower / sd,
        j * upper / sd,
        truth / true_sd,
        float(getattr(fit, "n_obs", math.nan)),
        float(getattr(fit, "n_clusters", math.nan)),
    )


# ---------------------------------------------------------------------- the estimand
def _truth(fit, spec, pupils: pd.DataFrame, effect: np.ndarray) -> float:
    """The true value of what ``fit`` estimates, from the effects added to the analysed rows.

    * A staggered (group-time) fit estimates a weighted average of ATT(g, t): each cell's truth
      is the mean effect of cohort ``g`` at ``t`` minus that at its base period (zero before
      the start), over unit-year means (each unit weighted equally, as the estimator does on a
      panel of means) or over pupil rows (``panel=False``); the cells are combined with the
      simple aggregate's own cell weights.
    * Anything else (two-way fixed effects, multilevel, the wild bootstrap wrapper) targets the
      average effect on the treated: the mean effect over the exposed analysed pupil records
      (for unit-year means weighted by pupils this is the same ATT).
    """
    from ..did import StaggeredResult

    if isinstance(fit, StaggeredResult):
        return _staggered_truth(fit, pupils, effect)
    exposed = pupils["exposed"].to_numpy(dtype=bool)
    return float(effect[exposed].mean()) if exposed.any() else math.nan


def _staggered_truth(fit, pupils: pd.DataFrame, effect: np.ndarray) -> float:
    s = fit.spec
    unit = pd.factorize(pupils[s.unit].to_numpy())[0]
    years, time = np.unique(pupils[s.time].to_numpy(), return_inverse=True)
    groups, group = np.unique(pupils[s.first_treated].fillna(0).to_numpy(), return_inverse=True)
    n_t, n_g = len(years), len(groups)
    if s.panel:  # unit-year means first: each unit counts once per period, as in the fit
        key = unit * n_t + time
        count = np.bincount(key, minlength=(unit.max() + 1) * n_t)
        total = np.bincount(key, weights=effect, minlength=len(count))
        present = np.flatnonzero(count)
        unit_group = np.zeros(unit.max() + 1, dtype=np.intp)
        unit_group[unit] = group  # constant within a unit on a panel
        cell_key = unit_group[present // n_t] * n_t + present % n_t
        values = total[present] / count[present]
    else:
        cell_key, values = group * n_t + time, effect
    cell_n = np.bincount(cell_key, minlength=n_g * n_t)
    cell_sum = np.bincount(cell_key, weights=values, minlength=n_g * n_t)
    with np.errstate(invalid="ignore", divide="ignore"):
        cell = np.where(cell_n > 0, cell_sum / np.maximum(cell_n, 1), 0.0)

    def lookup(g: np.ndarray, t: np.ndarray) -> np.ndarray:
        gi, ti = np.searchsorted(groups, g), np.searchsorted(years, t)
        ok = (gi < n_g) & (ti < n_t)
        ok[ok] &= (groups[gi[ok]] == g[ok]) & (years[ti[ok]] == t[ok])
        out = np.zeros(len(g))
        out[ok] = cell[gi[ok] * n_t + ti[ok]]
        return out

    gt = fit.group_time
    g = gt["group"].to_numpy()
    truth = lookup(g, gt["time"].to_numpy()) - lookup(g, gt["base"].to_numpy())
    weights = fit.aggregate("simple").cell_weights
    used = weights != 0
    return float(weights[used] @ truth[used])


def describe_estimators(estimators: Mapping[str, Any]) -> dict[str, Any]:
    """Each estimator's spec as plain data (for the result and the checkpoint fingerprint)."""
    return {label: ev.to_dict() for label, ev in estimators.items()}
