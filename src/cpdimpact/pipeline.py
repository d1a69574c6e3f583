"""The evaluation pipeline (kept so existing imports work): see :mod:`cpdimpact.evaluation`.

The spec is :mod:`cpdimpact.evaluation.spec`, its stages :mod:`cpdimpact.evaluation.stages`,
the result :mod:`cpdimpact.evaluation.result`; publishing (the report, ``results.json``, the
files) is :mod:`cpdimpact.report.publish`. Every public name this module held is re-exported.
"""

from __future__ import annotations

from .evaluation import (
    SEED_STAGES,
    TWFE_COMPARISON_LABEL,
    Evaluation,
    EvaluationResult,
    GroupEstimate,
    ProgrammeCost,
    ReportOptions,
    RunWarning,
    SecurityOptions,
    StaggeredDetail,
    inference_text,
    stage_seed,
)
from .evaluation.stages import UNIT_PUPILS, arms_behind, estimand_weighting
from .report.evaluation import arms_behind_text

__all__ = [
    "Evaluation",
    "EvaluationResult",
    "ProgrammeCost",
    "ReportOptions",
    "SecurityOptions",
    "GroupEstimate",
    "RunWarning",
    "StaggeredDetail",
    "inference_text",
    "stage_seed",
    "SEED_STAGES",
    "TWFE_COMPARISON_LABEL",
    "UNIT_PUPILS",
    "arms_behind",
    "arms_behind_text",
    "estimand_weighting",
]
