r"""Simulation-based design diagnosis: how would each estimator do on this design?

:func:`diagnose` draws many datasets from a simulated design whose true effect is known, runs
each estimator on every one, and summarises how they did: bias, RMSE, power, coverage and the
rest, each with its Monte Carlo standard error (DeclareDesign's "diagnosands"; Blair, Cooper,
Coppock & Humphreys 2019). See ``docs/diagnose.md``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from .. import __version__
from .._progress import progress_bar
from .._results import HtmlFromSummary, Summary
from .._validate import check_alpha, check_choice, check_positive_int, check_seed, recorded_seed
from ..errors import CpdImpactWarning, InvalidArgumentError, InvalidValueError
from ._diagnose_sim import ROW_COLUMNS, SimDesign, SimTask, describe_estimators
from ._executor import Checkpoint, execute, resolve_executor

__all__ = ["diagnose", "DiagnosisResult", "DIAGNOSANDS"]

#: The diagnosands, in the order of every table.
DIAGNOSANDS = (
    "mean_estimand",
    "mean_estimate",
    "bias",
    "rmse",
    "sd_estimate",
    "mean_se",
    "power",
    "coverage",
    "type_s_rate",
)

_DIAGNOSAND_TEXT = {
    "mean_estimand": "mean of the true value (estimand)",
    "mean_estimate": "mean of the estimates",
    "bias": "mean of estimate - truth",
    "rmse": "root mean squared error",
    "sd_estimate": "SD of the estimates",
    "mean_se": "mean reported standard error",
    "power": "share with p <= alpha",
    "coverage": "share of intervals covering the truth",
    "type_s_rate": "share of significant estimates with the wrong sign",
}

_SCALES = {
    "points": ("estimate", "std_error", "ci_lower", "ci_upper", "truth"),
    "effect_size": ("es_estimate", "es_std_error", "es_ci_lower", "es_ci_upper", "es_truth"),
}


# ---------------------------------------------------------------------- diagnosands
def _values(e, s, lo, hi, p, t, alpha) -> np.ndarray:
    """Every diagnosand of one set of simulations (arrays of equal length, possibly 0)."""
    n = len(e)
    if n == 0:
        return np.full(len(DIAGNOSANDS), np.nan)
    d = e - t
    sig = p <= alpha
    nonzero = sig & (t != 0)
    return np.array(
        [
            t.mean(),
            e.mean(),
            d.mean(),
            math.sqrt(np.mean(d * d)),
            e.std(ddof=1) if n > 1 else np.nan,
            s.mean(),
            sig.mean(),
            np.mean((lo <= t) & (t <= hi)),
            np.mean(np.sign(e[nonzero]) != np.sign(t[nonzero])) if nonzero.any() else np.nan,
        ]
    )


def _analytic_se(e, s, lo, hi, p, t, alpha, values) -> np.ndarray:
    r"""Monte Carlo standard errors from the sampling distribution of each mean or proportion
    over simulations (delta method for RMSE and the SD; see :func:`diagnose`)."""
    n = len(e)
    if n < 2:
        return np.full(len(DIAGNOSANDS), np.nan)
    root = math.sqrt(n)
    d = e - t
    sd_e = values[4]
    m4 = np.mean((e - e.mean()) ** 4)
    var_s2 = max(m4 - (e.var(ddof=0)) ** 2, 0.0)
    rmse = values[3]
    sig = p <= alpha
    n_sig = int((sig & (t != 0)).sum())
    q = values[8]
    return np.array(
        [
            t.std(ddof=1) / root,
            e.std(ddof=1) / root,
            d.std(ddof=1) / root,
            (d * d).std(ddof=1) / root / (2 * rmse) if rmse > 0 else np.nan,
            math.sqrt(var_s2 / n) / (2 * sd_e) if sd_e > 0 else np.nan,
            s.std(ddof=1) / root,
            math.sqrt(values[6] * (1 - values[6]) / n),
            math.sqrt(values[7] * (1 - values[7]) / n),
            math.sqrt(q * (1 - q) / n_sig) if n_sig > 0 else np.nan,
        ]
    )


def diagnosand_table(
    simulations: pd.DataFrame,
    alpha: float,
    *,
    mc_se: str = "analytic",
    n_bootstrap: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """Long table ``estimator, group, scale, diagnosand, estimate, mc_se, n_ok`` over the
    successful fits of ``simulations``."""
    rows = []
    ok = simulations[simulations["ok"]]
    for label, group in _groups(simulations):
        fits = ok[(ok["estimator"] == label) & (ok["group"] == group)]
        p = fits["p_value"].to_numpy(float)
        for scale, cols in _SCALES.items():
            e, s, lo, hi, t = (fits[c].to_numpy(float) for c in cols)
            values = _values(e, s, lo, hi, p, t, alpha)
            if mc_se == "analytic":
                ses = _analytic_se(e, s, lo, hi, p, t, alpha, values)
            else:
                rng = np.random.default_rng([seed, 0xD1A6])
                draws = np.array(
                    [
                        _values(e[i], s[i], lo[i], hi[i], p[i], t[i], alpha)
                        for i in rng.integers(0, len(e), size=(n_bootstrap, len(e)))
                    ]
                ) if len(e) else np.full((2, len(DIAGNOSANDS)), np.nan)  # fmt: skip
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    ses = np.nanstd(draws, axis=0, ddof=1)
            for name, value, se in zip(DIAGNOSANDS, values, ses, strict=True):
                rows.append((label, group, scale, name, float(value), float(se), len(fits)))
    return pd.DataFrame(
        rows, columns=["estimator", "group", "scale", "diagnosand", "estimate", "mc_se", "n_ok"]
    )


def _groups(simulations: pd.DataFrame) -> list[tuple[str, str]]:
    """(estimator, group) pairs in order of first appearance."""
    keys = simulations[["estimator", "group"]].drop_duplicates()
    return list(keys.itertuples(index=False, name=None))


# ---------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class DiagnosisResult(HtmlFromSummary):
    """What :func:`diagnose` found; immutable.

    Attributes
    ----------
    design
        Description of the simulated design.
    estimators
        Each estimator's label mapped to its spec (plain data).
    n_sims, seed, alpha
        Simulations run, the root seed (entropy of the :class:`numpy.random.SeedSequence`
        whose child ``i`` seeds simulation ``i``) and the significance level of ``power``.
    mc_se
        ``"analytic"`` or ``"bootstrap"``: how the Monte Carlo standard errors were computed.
    simulations
        The raw table, one row per simulation, estimator and group (:data:`ROW_COLUMNS`):
        ``sim, estimator, group, ok, error`` then ``estimate, std_error, ci_lower, ci_upper,
        p_value, truth`` in outcome points, the same as effect sizes (``es_*``), ``n_obs`` and
        ``n_clusters``. Failed fits have ``ok=False`` and their error message.
    diagnosands
        Long table ``estimator, group, scale, diagnosand, estimate, mc_se, n_ok``;
        ``scale`` is ``"points"`` or ``"effect_size"``.
    failures
        Per estimator and group: ``n_ok``, ``n_failed`` and up to three distinct
        ``first_errors`` (with their simulation index).
    executor, elapsed, n_resumed
        Where it ran, wall-clock seconds, and simulations taken from the checkpoint.
    """

    design: str
    estimators: dict[str, Any]
    n_sims: int
    seed: int
    alpha: float
    mc_se: str
    simulations: pd.DataFrame = field(repr=False)
    diagnosands: pd.DataFrame = field(repr=False)
    failures: pd.DataFrame = field(repr=False)
    executor: str = "serial"
    elapsed: float = 0.0
    n_resumed: int = 0
    version: str = __version__

    # ------------------------------------------------------------------ views
    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.estimators)

    def to_frame(self) -> pd.DataFrame:
        """The long diagnosand table (a copy)."""
        return self.diagnosands.copy()

    def tidy(self, scale: str = "points", group: str = "All pupils") -> pd.DataFrame:
        """Diagnosands side by side: one row per diagnosand, for each estimator its value and
        its Monte Carlo SE (columns ``"<label>"`` and ``"<label> MC SE"``)."""
        check_choice(scale, "scale", tuple(_SCALES))
        part = self.diagnosands[
            (self.diagnosands["scale"] == scale) & (self.diagnosands["group"] == group)
        ]
        if part.empty:
            groups = sorted(self.diagnosands["group"].unique())
            raise InvalidValueError(f"no diagnosands for group {group!r}; groups are {groups}")
        out = pd.DataFrame({"diagnosand": list(DIAGNOSANDS)})
        for label in self.labels:
            rows = part[part["estimator"] == label].set_index("diagnosand")
            out[label] = rows["estimate"].reindex(DIAGNOSANDS).to_numpy()
            out[f"{label} MC SE"] = rows["mc_se"].reindex(DIAGNOSANDS).to_numpy()
        return out

    def failed(self, label: str) -> int:
        """Number of simulations in which estimator ``label`` failed (any group)."""
        f = self.failures
        return int(
            f.loc[(f["estimator"] == label) & (f["group"] == "All pupils"), "n_failed"].sum()
        )

    def summary(self, scale: str = "points") -> Summary:
        """Printable summary: the design, the run, failures and the side-by-side diagnosands."""
        n_ok = self.failures[self.failures["group"] == "All pupils"]
        facts = [
            ("design", self.design),
            ("simulations", f"{self.n_sims} (seed {self.seed})"),
            ("estimators", ", ".join(self.labels)),
            ("alpha (power, type S)", f"{self.alpha:g}"),
            (
                "Monte Carlo SEs",
                "analytic (means and proportions; delta method for RMSE and SD)"
                if self.mc_se == "analytic"
                else "bootstrap over simulations",
            ),
            ("scale", "outcome points" if scale == "points" else "effect size (SD units)"),
            ("ran on", f"{self.executor}, {self.elapsed:.1f} s"),
        ]
        if self.n_resumed:
            facts.append(("resumed", f"{self.n_resumed} simulations read from the checkpoint"))
        notes = []
        for row in n_ok.itertuples(index=False):
            if row.n_failed:
                notes.append(
                    f"{row.estimator}: {row.n_failed} of {self.n_sims} fits failed; its "
                    f"diagnosands are over the {row.n_ok} successful fits. First errors: "
                    + " | ".join(row.first_errors)
                )
        return Summary(
            title="Design diagnosis",
            facts=tuple(facts),
            table=self.tidy(scale),
            notes=tuple(notes),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: the design, seed, estimators, diagnosands and failures.

        Leaves out where and how long it ran, so the same diagnosis gives the same dict
        whatever the executor.
        """

        def clean(value):
            if isinstance(value, float | np.floating):
                return float(value) if math.isfinite(value) else None
            if isinstance(value, np.integer):
                return int(value)
            if isinstance(value, tuple | list):
                return [clean(v) for v in value]
            return value

        return {
            "design": self.design,
            "estimators": json.loads(json.dumps(self.estimators, default=str)),
            "n_sims": self.n_sims,
            "seed": self.seed,
            "alpha": self.alpha,
            "mc_se": self.mc_se,
            "cpdimpact_version": self.version,
            "diagnosands": [
                {k: clean(v) for k, v in r.items()}
                for r in self.diagnosands.to_dict(orient="records")
            ],
            "failures": [
                {k: clean(v) for k, v in r.items()} for r in self.failures.to_dict(orient="records")
            ],
        }

    def plot(
        self,
        kind: Literal["estimates", "coverage"] = "estimates",
        *,
        scale: str = "points",
        group: str = "All pupils",
        ax=None,
    ):
        """``"estimates"``: each estimator's distribution of estimates (violins) with the mean
        estimate (dot, +-1.96 MC SE) and the mean truth (cross). ``"coverage"``: coverage and
        power with +-1.96 MC SE bars, the nominal coverage dashed. Returns the Axes."""
        import matplotlib.pyplot as plt  # lazy: importing cpdimpact stays cheap

        check_choice(kind, "kind", ("estimates", "coverage"))
        check_choice(scale, "scale", tuple(_SCALES))
        labels = self.labels
        table = self.tidy(scale, group).set_index("diagnosand")
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 1.2 + 0.8 * len(labels)))
        y = np.arange(len(labels))
        if kind == "estimates":
            col = _SCALES[scale][0]
            sims = self.simulations
            data = [
                sims.loc[
                    sims["ok"] & (sims["estimator"] == lb) & (sims["group"] == group), col
                ].to_numpy(float)
                for lb in labels
            ]
            present = [i for i, d in enumerate(data) if len(d) > 1]
            if present:
                ax.violinplot(
                    [data[i] for i in present],
                    positions=y[present],
                    orientation="horizontal",
                    showextrema=False,
                )
            means = [table.loc["mean_estimate", lb] for lb in labels]
            ses = [table.loc["mean_estimate", f"{lb} MC SE"] for lb in labels]
            truth = [table.loc["mean_estimand", lb] for lb in labels]
            ax.errorbar(means, y, xerr=1.96 * np.asarray(ses), fmt="o", color="C0",
                        label="mean estimate (+-1.96 MC SE)")  # fmt: skip
            ax.scatter(truth, y, marker="x", color="C3", zorder=3, label="mean truth")
            ax.set_xlabel("estimate" + (" (points)" if scale == "points" else " (effect size)"))
        else:
            for offset, name, colour in ((-0.12, "coverage", "C0"), (0.12, "power", "C2")):
                vals = [table.loc[name, lb] for lb in labels]
                ses = [table.loc[name, f"{lb} MC SE"] for lb in labels]
                ax.errorbar(vals, y + offset, xerr=1.96 * np.asarray(ses, dtype=float), fmt="o",
                            color=colour, label=f"{name} (+-1.96 MC SE)")  # fmt: skip
            ax.axvline(1 - self.alpha, color="grey", linestyle="--", linewidth=1,
                       label=f"nominal coverage {1 - self.alpha:.0%}")  # fmt: skip
            ax.axvline(self.alpha, color="grey", linestyle=":", linewidth=1,
                       label=f"alpha {self.alpha:g}")  # fmt: skip
            ax.set_xlim(-0.02, 1.02)
            ax.set_xlabel("share of simulations")
        ax.set_yticks(y, labels)
        ax.set_title(f"Design diagnosis: {self.n_sims} simulations")
        ax.legend(frameon=False, fontsize="small", loc="best")
        return ax

    def __repr__(self) -> str:
        return (
            f"DiagnosisResult(design={self.design!r}, n_sims={self.n_sims}, "
            f"estimators={list(self.labels)})"
        )


# ---------------------------------------------------------------------- diagnose
def diagnose(
    design,
    estimators,
    n_sims: int = 1000,
    *,
    seed: int | np.random.SeedSequence | np.random.Generator | None = None,
    executor=None,
    alpha: float = 0.05,
    checkpoint=None,
    progress: bool = True,
    design_options: Mapping[str, Any] | None = None,
    subgroups: bool = False,
    mc_se: Literal["analytic", "bootstrap"] = "analytic",
    mc_bootstrap: int = 500,
    chunk_size: int | None = None,
) -> DiagnosisResult:
    r"""Diagnose a design by simulation: bias, RMSE, power, coverage of each estimator.

    Parameters
    ----------
    design
        What to simulate: a preset name (``"city_partnership"``, ``"hub_rollout"``,
        ``"maths_challenge"``), a preset function or any callable ``f(seed=..., **options)``
        returning :class:`~cpdimpact.datasets.SimulatedRecords` (it must be picklable to run in
        a process pool: a module-level function or a :func:`functools.partial` of one), or a
        :class:`~cpdimpact.datasets.Scenario`.
    estimators
        Mapping from a label to a pipeline spec: a :class:`~cpdimpact.Evaluation` (its cohort,
        estimator, level and alpha are used) or a bare estimator spec such as
        ``DiD(cluster="area")`` or ``StaggeredDiD(n_bootstrap=0)``, wrapped as
        ``Evaluation(estimator=spec, event_study=None, subgroups=())``. A single spec is
        labelled with its class name. ``DiD(cluster="area", inference=WildBootstrap())``
        (:class:`~cpdimpact.estimator.WildBootstrap`) gives wild-cluster-bootstrap inference.
    n_sims
        Number of simulated datasets.
    seed
        Root seed. Simulation ``i`` uses child ``i`` of ``numpy.random.SeedSequence(seed)``
        (its first child draws the records, its second seeds the estimators' own randomness,
        replacing any seed in the spec), so the results are identical whatever the executor,
        number of workers or chunking. ``None`` draws fresh entropy and records it in the
        result; ``SeedSequence(n)`` is the same as ``n``; a Generator gives a root seed drawn
        from it.
    executor
        ``None`` (default): a local :class:`~concurrent.futures.ProcessPoolExecutor` with
        ``os.cpu_count()`` workers, or serial below 20 simulations; ``"serial"``; or any
        :class:`concurrent.futures.Executor`, e.g. a Dask cluster's
        ``distributed.Client(...).get_executor()``. An executor passed in is not shut down.
    alpha
        Significance level of ``power`` and ``type_s_rate`` (rejection when ``p <= alpha``).
        Coverage is that of each estimator's own interval (at its spec's ``alpha``).
    checkpoint
        Path of a ``.csv`` or ``.json`` file. Finished simulations are written to it after
        every chunk; a rerun with the same design, estimators and seed skips those already
        there (a larger ``n_sims`` extends a run). A checkpoint written for another diagnosis
        raises :class:`~cpdimpact.errors.InvalidValueError`. Needs an explicit ``seed``.
    progress
        Show a progress bar (:mod:`tqdm.auto`: a widget in Jupyter, a line on stderr in a
        terminal, none in a log or after less than a second; ``TQDM_DISABLE=1`` in the
        environment turns every bar off).
    design_options
        Keyword arguments for a preset or callable design (``scale=0.25``, Scenario fields).
    subgroups
        Also diagnose each subgroup of the specs' ``Evaluation.subgroups`` (FSM pupils by
        default); ``False`` (default) diagnoses the headline only.
    mc_se
        ``"analytic"`` (default) or ``"bootstrap"`` (``mc_bootstrap`` resamples of the
        simulations, as DeclareDesign).
    chunk_size
        Simulations per submitted task; by default about eight chunks per worker, at most 25.

    Returns
    -------
    DiagnosisResult

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        ``n_sims < 1``, an unknown preset, no estimators, an executor that is not a
        :class:`concurrent.futures.Executor`, a bad ``alpha``, a mismatched checkpoint.

    Notes
    -----
    The estimand of each simulation is the truth of what the estimator targets on the rows it
    analysed (the simulated effects are known pupil by pupil): for a staggered fit
    (:class:`~cpdimpact.did.StaggeredDiD`) the simple aggregate of ATT(g, t) with the fit's own
    cell weights, each cell's truth averaged over unit-year means as the estimator does; for
    two-way fixed effects and the other estimators the average effect on the treated over the
    exposed analysed pupil records. The effect-size truth divides it by the simulated pupil-level
    SD of the untreated outcome; the estimate divides by the cohort's pupil-level SD with
    Hedges' correction, as :class:`~cpdimpact.Evaluation` does.

    With :math:`\hat\theta_s`, :math:`\theta_s`, :math:`\widehat{se}_s`, :math:`p_s` the
    estimate, truth, standard error and p-value of simulation :math:`s = 1..S` (successful fits
    only) and :math:`d_s = \hat\theta_s - \theta_s`:

    .. math::

        \text{bias} = \bar d, \quad \text{RMSE} = \sqrt{\overline{d^2}}, \quad
        \text{power} = \overline{1[p_s \le \alpha]}, \quad
        \text{coverage} = \overline{1[\theta_s \in CI_s]},

    type-S rate = share of wrong signs among significant estimates (with a non-zero truth;
    Gelman & Carlin 2014). Analytic Monte Carlo SEs: :math:`sd(x)/\sqrt S` for a mean of
    :math:`x`, :math:`\sqrt{\hat p(1-\hat p)/S}` for a proportion (over the significant
    simulations for type S), :math:`sd(d^2)/(2\,\text{RMSE}\sqrt S)` for the RMSE and
    :math:`\sqrt{(m_4 - s^4)/S}/(2s)` for the SD of the estimates (delta method; :math:`m_4` the
    fourth central moment). ``mc_se="bootstrap"`` resamples simulations instead, as
    DeclareDesign's ``diagnose_design`` (Blair, Cooper, Coppock & Humphreys 2019, *American
    Political Science Review* 113(3), 838-859). A fit that raises is counted in ``failures``
    (with its message) and left out of the diagnosands, never silently dropped.

    Examples
    --------
    >>> from cpdimpact import Evaluation
    >>> from cpdimpact.did import DiD, StaggeredDiD
    >>> from cpdimpact.planning import diagnose
    >>> result = diagnose(
    ...     "city_partnership",
    ...     {"TWFE": DiD(), "staggered": StaggeredDiD(n_bootstrap=0)},
    ...     n_sims=4, seed=1, executor="serial", design_options={"scale": 0.1},
    ... )
    >>> list(result.tidy().columns)
    ['diagnosand', 'TWFE', 'TWFE MC SE', 'staggered', 'staggered MC SE']
    """
    started = time.perf_counter()
    sim_design = _resolve_design(design, design_options)
    specs = _resolve_estimators(estimators)
    n_sims = check_positive_int(n_sims, "n_sims")
    check_alpha(alpha)
    check_choice(mc_se, "mc_se", ("analytic", "bootstrap"))
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise InvalidValueError(f"chunk_size must be a whole number >= 1; got {chunk_size!r}")
    if checkpoint is not None and seed is None:
        raise InvalidValueError(
            "checkpoint needs an explicit seed (an int), so that a rerun draws the same "
            "datasets and can skip the finished ones; pass seed=..."
        )
    entropy = _entropy(seed)
    task = SimTask(
        design=sim_design, estimators=tuple(specs.items()), entropy=entropy, subgroups=subgroups
    )
    spec_dicts = describe_estimators(specs)

    rows: list[tuple] = []
    ckpt = None
    if checkpoint is not None:
        fingerprint = {
            "design": sim_design.description,
            "estimators": spec_dicts,
            "seed": entropy,
            "subgroups": bool(subgroups),
            "cpdimpact_version": __version__,
        }
        fingerprint["digest"] = hashlib.sha256(
            json.dumps(fingerprint, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        ckpt = Checkpoint(checkpoint, fingerprint)
        rows = [r for r in ckpt.load() if r[0] < n_sims]
    done = {r[0] for r in rows}
    todo = [i for i in range(n_sims) if i not in done]
    where, pool, own = resolve_executor(executor, len(todo))
    bar = progress_bar(
        n_sims, initial=len(done), desc="diagnose", unit="simulation", enabled=progress
    )

    def collect(chunk_rows: list[tuple]) -> None:
        rows.extend(chunk_rows)
        if ckpt is not None:
            ckpt.add(chunk_rows)

    try:
        execute(task, todo, pool, chunk_size=chunk_size, progress=bar, on_chunk=collect)
    finally:
        bar.close()
        if own:
            pool.shutdown(wait=True, cancel_futures=True)

    simulations = (
        pd.DataFrame(rows, columns=list(ROW_COLUMNS))
        .sort_values("sim", kind="stable")
        .reset_index(drop=True)
    )
    simulations = _order_rows(simulations, tuple(specs))
    diagnosands = diagnosand_table(
        simulations, alpha, mc_se=mc_se, n_bootstrap=mc_bootstrap, seed=entropy
    )
    failures = _failures(simulations)
    for row in failures.itertuples(index=False):
        if row.n_failed:
            warnings.warn(
                f"{row.estimator} ({row.group}): {row.n_failed} of {row.n_ok + row.n_failed} "
                f"fits failed and are left out of its diagnosands; first error: "
                f"{row.first_errors[0]}",
                CpdImpactWarning,
                stacklevel=2,
            )
    return DiagnosisResult(
        design=sim_design.description,
        estimators=spec_dicts,
        n_sims=n_sims,
        seed=entropy,
        alpha=float(alpha),
        mc_se=mc_se,
        simulations=simulations,
        diagnosands=diagnosands,
        failures=failures,
        executor=where,
        elapsed=time.perf_counter() - started,
        n_resumed=len(done),
    )


def _order_rows(frame: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """Rows by simulation, then estimator in the order given, then group as produced."""
    rank = frame["estimator"].map({lb: i for i, lb in enumerate(labels)})
    within = frame.groupby(["sim", "estimator"], sort=False).cumcount()
    order = np.lexsort((within.to_numpy(), rank.to_numpy(), frame["sim"].to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def _failures(simulations: pd.DataFrame) -> pd.DataFrame:
    out = []
    for label, group in _groups(simulations):
        part = simulations[(simulations["estimator"] == label) & (simulations["group"] == group)]
        bad = part[~part["ok"]]
        messages: list[str] = []
        for sim, error in zip(bad["sim"], bad["error"], strict=True):
            if error not in {m.split(": ", 1)[1] for m in messages}:
                messages.append(f"simulation {sim}: {error}")
            if len(messages) == 3:
                break
        out.append((label, group, int(part["ok"].sum()), len(bad), tuple(messages)))
    return pd.DataFrame(out, columns=["estimator", "group", "n_ok", "n_failed", "first_errors"])


# ---------------------------------------------------------------------- input checks
def _resolve_design(design, options) -> SimDesign:
    from ..datasets import PRESETS, Scenario

    options = dict(options or {})
    if "seed" in options:
        raise InvalidValueError(
            "design_options must not hold 'seed': diagnose seeds every simulation itself "
            "(pass diagnose(..., seed=...))"
        )
    if isinstance(design, Scenario):
        if options:
            raise InvalidValueError(
                "design_options apply to a preset or callable design; for a Scenario set the "
                f"fields on the Scenario itself (got {sorted(options)})"
            )
        return SimDesign("scenario", design)
    if isinstance(design, str):
        if design not in PRESETS:
            raise InvalidValueError(
                f"design {design!r} is not a preset; choose one of {sorted(PRESETS)}, pass a "
                "preset function or a cpdimpact.datasets.Scenario"
            )
        name = design
    elif callable(design):
        name = next((k for k, f in PRESETS.items() if f is design), None)
    else:
        raise InvalidValueError(
            f"design must be a preset name, a preset function (or callable returning "
            f"SimulatedRecords) or a Scenario; got {type(design).__name__}"
        )
    if name is not None:
        allowed = {"scale", *Scenario.field_names()}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise InvalidValueError(
                f"design_options {unknown} are not options of the preset {name!r}; use "
                "'scale' or Scenario fields"
            )
        return SimDesign("preset", name, tuple(sorted(options.items())))
    return SimDesign("callable", design, tuple(sorted(options.items())))


def _resolve_estimators(estimators) -> dict[str, Any]:
    from ..evaluation import Evaluation

    if isinstance(estimators, Evaluation) or _is_spec(estimators):
        estimators = {_label(estimators): estimators}
    if not isinstance(estimators, Mapping):
        raise InvalidValueError(
            "estimators must be a mapping from a label to an Evaluation or estimator spec, "
            f"e.g. {{'TWFE': DiD(), 'staggered': StaggeredDiD()}}; got {type(estimators).__name__}"
        )
    if not estimators:
        raise InvalidValueError(
            "estimators is empty: give at least one, e.g. {'TWFE': DiD()} or "
            "{'staggered': Evaluation(estimator=StaggeredDiD(n_bootstrap=0))}"
        )
    out = {}
    for label, spec in estimators.items():
        if not isinstance(label, str) or not label:
            raise InvalidValueError(f"estimator labels must be non-empty strings; got {label!r}")
        if isinstance(spec, Evaluation):
            out[label] = spec
        elif _is_spec(spec):
            out[label] = Evaluation(estimator=spec, event_study=None, subgroups=())
        else:
            raise InvalidValueError(
                f"estimator {label!r} must be an Evaluation or an estimator spec (a frozen "
                f"dataclass with fit(), such as DiD()); got {type(spec).__name__}"
            )
    return out


def _is_spec(value) -> bool:
    return (
        dataclasses.is_dataclass(value)
        and not isinstance(value, type)
        and callable(getattr(value, "fit", None))
    )


def _label(spec) -> str:
    from ..evaluation import Evaluation

    inner = spec.estimator if isinstance(spec, Evaluation) else spec
    return type(inner).__name__ if inner is not None else "Evaluation"


def _entropy(seed) -> int:
    """The root seed as an int (recorded in the result and the checkpoint)."""
    seed = check_seed(seed)
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63))
    if isinstance(seed, np.random.SeedSequence):
        entropy = recorded_seed(seed)
        if entropy is None:
            raise InvalidArgumentError(
                "seed: a SeedSequence spawned from another (or built from several numbers) has "
                "no single int to record; pass an int seed, or SeedSequence(n)."
            )
        return entropy
    return int(seed)
