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

from .._results import interval
from .._results import p_value as t_p_value
from ..effects import hedges_correction

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
            raise TypeError(
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
    """The lean path of :meth:`Evaluation.run`: cohort, headline fit, effect size (and, when
    asked, the subgroups); no event study, no staggered detail, no report. The estimators'
    warnings (few clusters, staggered timing) are silenced: they would repeat in every
    simulation, and the diagnosis measures what they warn of."""
    from ..cohort import unit_year_means
    from ..errors import CpdImpactWarning
    from ._diagnose_cohort import lean_cohort

    groups = ["All pupils"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        try:
            ev = dataclasses.replace(evaluation, seed=seed)
            covariates = tuple(dict.fromkeys((*ev.cohort.covariates, *_covariates(ev.estimator))))
            cohort_spec = dataclasses.replace(ev.cohort, covariates=covariates)
            key = repr(cohort_spec)
            if key not in cohorts:
                lean = lean_cohort(cohort_spec, records) if task.lean else None
                cohorts[key] = lean if lean is not None else cohort_spec.build(records)
            cohort = cohorts[key]
            estimator = ev._estimator_for(cohort)
            if any(f.name == "seed" for f in dataclasses.fields(estimator)):
                estimator = dataclasses.replace(estimator, seed=seed)
            spec = ev._weighted(estimator)
            effects = pd.Series(
                records.truth.pupil_effects.to_numpy(), index=records.pupils["pupil"].to_numpy()
            )
            pupils = cohort.pupils
            effect = pupils["pupil"].map(effects).to_numpy(dtype=float)
            tables = [(pupils, effect, None)]
            if task.subgroups:
                for column in ev.subgroups:
                    mask = (pupils[column] == 1).to_numpy()
                    groups.append(_subgroup_label(column))
                    tables.append((pupils[mask], effect[mask], True))
        except Exception as err:  # the cohort itself could not be built
            return [_failed(index, label, g, err) for g in groups]
        rows = []
        sd = None
        for group, (rows_g, effect_g, sub) in zip(groups, tables, strict=True):
            try:
                if spec.data_level == "pupil" or (spec.data_level == "any" and ev.level == "pupil"):
                    frame = rows_g
                else:
                    frame = cohort.unit_years if sub is None else unit_year_means(rows_g)
                fit = spec.fit(frame)
                if sd is None:
                    sd = float(getattr(fit, "effect_size_sd", cohort.outcome_sd))
                truth = _truth(fit, spec, rows_g, effect_g)
                rows.append(_row(index, label, group, fit, spec, truth, sd, cohort, records))
            except Exception as err:
                rows.append(_failed(index, label, group, err))
    return rows


def _covariates(estimator) -> tuple[str, ...]:
    return tuple(getattr(estimator, "covariates", ()) or ()) if estimator is not None else ()


def _subgroup_label(column: str) -> str:
    return {"fsm": "FSM pupils", "sen": "SEN pupils", "eal": "EAL pupils"}.get(
        column, f"{column} = 1"
    )


def _failed(index, label, group, err) -> tuple:
    message = f"{type(err).__name__}: {err}"
    return (index, label, group, False, message, *([math.nan] * (len(ROW_COLUMNS) - 5)))


def _row(index, label, group, fit, spec, truth, sd, cohort, records) -> tuple:
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
    n_sd = cohort.outcome_sd_n
    j = hedges_correction(int(n_sd)) if n_sd is not None else 1.0
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
        j * estimate / sd,
        j * se / sd,
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
    frame = pd.DataFrame(
        {
            "unit": pupils[s.unit].to_numpy(),
            "time": pupils[s.time].to_numpy(),
            "group": pupils[s.first_treated].fillna(0).to_numpy(),
            "effect": effect,
        }
    )
    if s.panel:  # unit-year means, each unit counted once per period
        frame = frame.groupby(["unit", "time", "group"], sort=False)["effect"].mean().reset_index()
    cell = frame.groupby(["group", "time"])["effect"].mean()
    gt = fit.group_time
    weights = fit.aggregate("simple").cell_weights
    at_t = cell.reindex(pd.MultiIndex.from_arrays([gt["group"], gt["time"]])).to_numpy()
    at_b = cell.reindex(pd.MultiIndex.from_arrays([gt["group"], gt["base"]])).to_numpy()
    truth = np.nan_to_num(at_t, nan=0.0) - np.nan_to_num(at_b, nan=0.0)
    used = weights != 0
    return float(weights[used] @ truth[used])


def describe_estimators(estimators: Mapping[str, Any]) -> dict[str, Any]:
    """Each estimator's spec as plain data (for the result and the checkpoint fingerprint)."""
    return {label: ev.to_dict() for label, ev in estimators.items()}
