"""Publishing an evaluation: the report, ``results.json`` and the files written by ``save``.

This module depends on :mod:`cpdimpact.evaluation.result` and never the reverse:
:class:`~cpdimpact.evaluation.result.EvaluationResult` hands itself to the functions here
(:mod:`cpdimpact.evaluation` installs this module as its publisher). ``results.json`` is built
in one place, :func:`results_json_dict`; every count in it passes through the one disclosure
rule (:func:`cpdimpact._disclosure.published_count`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._disclosure import is_suppressed, published_count
from ..cohort import Cohort
from ..evaluation.result import (
    TWFE_COMPARISON_LABEL,
    EvaluationResult,
    StaggeredDetail,
    allocated_attrition,
)
from ..evaluation.spec import spec_dict
from ._privacy import suppress_small_counts

__all__ = [
    "SUPPRESSED",
    "evaluation_report",
    "published_json_tables",
    "results_json",
    "results_json_dict",
    "save",
]


def save(result: EvaluationResult, folder: str | Path) -> dict[str, Path]:
    """Write ``report.html``, ``report.md``, ``report.docx``, ``results.json`` and the figures.

    Parameters
    ----------
    result : EvaluationResult
        The evaluation to publish.
    folder : str or pathlib.Path
        Created if missing; files of the same names are overwritten.

    Returns
    -------
    dict of str to pathlib.Path
        The paths written, by relative name: ``"report.html"``, ``"report.md"``,
        ``"report.docx"``, ``"results.json"`` and ``"figures/<name>.png"`` for each figure.

    Notes
    -----
    The three reports render the same blocks (:meth:`cpdimpact.report.Document.save`), so
    their numbers and suppressed counts agree. For the same input and seed, ``results.json``
    and ``report.md`` are byte-identical across runs and machines; ``report.docx`` is
    byte-identical across runs (its timestamps are fixed) for the same python-docx and zlib.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = dict(evaluation_report(result).save(folder))
    path = folder / "results.json"
    path.write_text(results_json(result), encoding="utf-8")
    paths["results.json"] = path
    return paths


def results_json(result: EvaluationResult) -> str:
    """``results.json`` as text (sorted keys, two-space indent, trailing newline)."""
    return json.dumps(results_json_dict(result), indent=2, sort_keys=True, allow_nan=False) + "\n"


def results_json_dict(result: EvaluationResult) -> dict[str, Any]:
    """``results.json`` content: spec, version, fingerprint, seed and every number reported.

    Published counts (headline, flow, exclusions, balance) obey the report's small-number
    suppression (``"<10"`` strings); a group's ``n_obs`` is ``"suppressed"`` when one of
    its arm counts is (see ``docs/report.md``).

    Floats are rounded to 8 significant digits so the file is byte-identical across
    machines whose floating-point arithmetic differs only in the last bits (variance
    parameters found by an optimiser agree to about 1e-9 relative, well inside that).
    """
    cohort = result.cohort
    published = published_json_tables(result)
    payload = {
        "cpdimpact_version": result.version,
        "data_fingerprint": result.fingerprint,
        "seed": result.seed,
        "spec": result.evaluation.to_dict(),
        "estimator_used": spec_dict(result.estimator),
        "estimand_weighting": result.estimand_weighting,
        "cohort": {
            "years": list(cohort.years),
            "start_years": list(cohort.start_years),
            "outcome_sd": cohort.outcome_sd,
            "effect_size_sd": result.effect_size_sd,
            "effect_size_sd_source": result.effect_size_sd_source,
            "outcome_sd_n": cohort.outcome_sd_n,
            "outcome_sd_source": cohort.outcome_sd_source,
            "outcome_kind": cohort.outcome_kind,
            "flow": published["flow"],
            "allocated": published["allocated"],
            "exclusions": published["exclusions"],
            "school_changes": published["school_changes"],
            "balance": published["balance"],
            "balance_allocated": published["balance_allocated"],
            "attrition": published["attrition"],
            "dip_check": _dip_json(cohort, result.evaluation.report.suppress_below),
        },
        "published_figures": _published_json(cohort),
        "outcome_units": result.outcome_units,
        "percentage_effect_sizes": None
        if result.percentage_effect_sizes is None
        else result.percentage_effect_sizes.to_dict(orient="records"),
        "headline": published["headline"],
        "subgroups": {
            "groups": published["subgroups"],
            "gaps": [g.to_dict() for g in result.gaps],
        },
        "effect_size_variants": result.effect_size_variants.to_dict(orient="records"),
        "comparison": None
        if result.comparison is None
        else _comparison_json(result.comparison, result.evaluation.report.suppress_below),
        "warnings": [w.to_dict() for w in result.warnings],
        "cost": None if result.cost is None else result.cost.to_dict(),
        "security": None if result.security is None else result.security.to_dict(),
        "estimates": {
            g.label: (
                None
                if g.did is None
                else {
                    "did": g.did.to_frame().to_dict(orient="records"),
                    "df": getattr(g.did, "df", None),
                    "n_clusters": getattr(g.did, "n_clusters", None),
                    "n_obs": published["n_obs"][g.label],
                    "cov_type": getattr(g.did, "cov_type", None),
                    "effect_size": None
                    if g.effect_size is None
                    else g.effect_size.to_frame().to_dict(orient="records"),
                }
            )
            for g in result.groups
        },
    }
    if result.event_study is not None:
        es = result.event_study
        twfe_event_study = {
            "coefficients": es.coefficients.reset_index().to_dict(orient="records"),
            "pretrend": None
            if es.pretrend is None
            else {
                "statistic": es.pretrend.statistic,
                "df_num": es.pretrend.df_num,
                "df_denom": es.pretrend.df_denom,
                "p_value": es.pretrend.p_value,
            },
        }
        if result.staggered is None:
            payload["event_study"] = twfe_event_study
    if result.staggered is not None:
        payload["staggered"] = _staggered_json(
            result.staggered, _prose().staggered_arms_text(result)
        )
        if result.event_study is not None:
            payload["staggered"]["comparison_twfe"]["event_study"] = twfe_event_study
    return _jsonable(payload)


def _published_json(cohort) -> dict[str, Any] | None:
    """What published figures the evaluation ran on, and the figures lost by reason
    (``None`` for pupil records)."""
    published = cohort.published
    if published is None:
        return None
    return {
        "level": published.level,
        "measure": published.measure,
        "units": published.units,
        "outcome": published.outcome_label,
        "source": published.source,
        "groups": published.groups is not None,
        "groups_note": published.groups_note,
        "lost_figures": published.lost_figures.to_dict(orient="records"),
    }


def _staggered_json(detail: StaggeredDetail, arms_behind: str) -> dict[str, Any]:
    """The aggregates, the schools behind the estimate, the pre-trend test and the TWFE
    comparison as plain data."""

    def aggregate(kind):
        agg = getattr(detail, kind)
        lower, upper = agg.conf_int().iloc[0]
        return {
            "estimate": agg.estimate,
            "std_error": agg.std_error,
            "ci_lower": lower,
            "ci_upper": upper,
            "alpha": agg.alpha,
            "pieces": detail.pieces(kind).to_dict(orient="records"),
        }

    pre = detail.pretrend
    twfe = detail.twfe
    return {
        "dynamic": aggregate("dynamic"),
        "group": aggregate("group"),
        "calendar": aggregate("calendar"),
        "uniform_bands": detail.uniform_bands,
        "arms_behind": arms_behind,
        "pretrend": None
        if pre is None
        else {"statistic": pre.statistic, "df": pre.df, "p_value": pre.p_value},
        "comparison_twfe": {
            "label": TWFE_COMPARISON_LABEL,
            "did": None if twfe is None else twfe.to_frame().to_dict(orient="records"),
            "df": None if twfe is None else twfe.df,
            "n_clusters": None if twfe is None else twfe.n_clusters,
            "cluster": None if twfe is None else twfe.cluster,
            "n_obs": None if twfe is None else twfe.n_obs,
            "n_units": None if twfe is None else twfe.n_units,
            "note": detail.twfe_note,
            "event_study_note": detail.twfe_event_study_note,
        },
    }


#: What ``results.json`` shows for a model count that would reveal a suppressed cell.
SUPPRESSED = "suppressed"


def published_json_tables(result) -> dict[str, object]:
    """The count tables of ``results.json``, with the report's small-number suppression.

    Returns the records of ``headline``, ``subgroups``, ``flow``, ``allocated``,
    ``exclusions``, ``school_changes``, ``balance``, ``balance_allocated`` and ``attrition`` with counts from 1 to
    ``suppress_below - 1`` replaced by ``"<{suppress_below}"``, and ``n_obs`` by
    group: the model's number of observations, or :data:`SUPPRESSED` when one of the group's
    arm counts is suppressed (the total minus the other arm would give the hidden count back).
    Model facts that describe the analysis as a whole (clusters, degrees of freedom) are
    published as they are.
    """
    threshold = result.evaluation.report.suppress_below
    counts = ["schools", "teachers", "pupils"]
    head_counts = ["pupils_treated", "pupils_comparison", "schools_treated", "schools_comparison"]

    def shown(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
        if threshold:
            frame = suppress_small_counts(frame, columns, threshold=threshold)
        return frame.to_dict(orient="records")

    head = result.headline
    hidden = {
        label: any(is_suppressed(int(row[c]), threshold) for c in head_counts)
        for label, (_, row) in zip(head["group"], head.iterrows(), strict=True)
    }
    cohort = result.cohort

    def attrition(level):
        rates = allocated_attrition(result.cohort, level)
        if rates is None:
            return None
        out = rates.to_dict()
        for key in ("randomised", "analysed"):
            out[key] = [published_count(n, threshold) for n in out[key]]
        if _prose().attrition_hidden(rates, threshold):
            # Rates beside a suppressed count would give it back.
            for key in ("overall", "treatment", "control", "differential"):
                out[key] = SUPPRESSED
        return out

    balance_allocated = cohort.balance_allocated
    return {
        "headline": shown(head, head_counts),
        "subgroups": shown(result.subgroup_effects, head_counts),
        "flow": shown(cohort.flow.stages, counts),
        "allocated": None
        if cohort.flow.allocated is None
        else shown(cohort.flow.allocated, counts),
        "exclusions": shown(cohort.flow.exclusions, counts),
        # URN changes and schools opened or closed inside the window, by arm (docs/records.md)
        "school_changes": shown(cohort.flow.school_changes(), ["schools", "pupils"]),
        "balance": shown(cohort.balance, ["n_treated", "n_comparison"]),
        "balance_allocated": None
        if balance_allocated is None
        else shown(balance_allocated, ["n_treated", "n_comparison"]),
        "attrition": {"pupils": attrition("pupils"), "schools": attrition("schools")},
        "n_obs": {
            g.label: None if g.did is None else SUPPRESSED if hidden[g.label] else g.did.n_obs
            for g in result.groups
        },
    }


def _dip_json(cohort: Cohort, threshold: int) -> dict[str, Any] | None:
    """The selection-on-a-dip check, its school counts suppressed like the rest."""
    check = getattr(cohort, "dip_check", None)
    if check is None:
        return None
    out = check.to_dict()
    for row in out["cohorts"]:
        for key in ("n_treated", "n_comparison"):
            if key in row:
                row[key] = published_count(row[key], threshold)
    return out


def _comparison_json(weights, threshold: int) -> dict[str, Any]:
    """The comparison design's weights summary, its school counts suppressed like the rest."""
    out = weights.to_dict()
    out["counts"] = {
        g: {k: published_count(v, threshold) for k, v in row.items()}
        for g, row in out["counts"].items()
    }
    for row in out["balance"]:
        for key in ("n_treated", "n_control"):
            if key in row:
                row[key] = published_count(row[key], threshold)
    return out


def _jsonable(value):
    """Plain JSON types with floats rounded to 8 significant digits; NaN becomes null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or value is pd.NA or isinstance(value, str | bool):
        return None if value is pd.NA else value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        if not math.isfinite(value):
            return None
        return float(f"{value:.8g}") if value != 0 else 0.0
    if isinstance(value, dict | list):
        return value
    if dataclasses.is_dataclass(value):
        return spec_dict(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def evaluation_report(result):
    """The report of ``result`` (:func:`cpdimpact.report.evaluation.evaluation_report`)."""
    return _prose().evaluation_report(result)


def _prose():
    """The report's prose module, imported when first used: it imports the evaluation's result,
    whose package installs this publisher, so importing it here at module level would close a
    cycle when ``cpdimpact.report.evaluation`` is the first module a program imports."""
    from . import evaluation

    return evaluation
