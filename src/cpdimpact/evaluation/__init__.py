"""An evaluation as a package of stages: spec -> stages -> result; publishing depends on them.

* :mod:`cpdimpact.evaluation.spec`: :class:`Evaluation` and its options
  (:class:`ReportOptions`, :class:`ProgrammeCost`, :class:`SecurityOptions`);
* :mod:`cpdimpact.evaluation.stages`: the public stage functions :meth:`Evaluation.run` is made
  of (choose the estimator, configure it with the evaluation's ``alpha``, seed and weights,
  fit each group, convert to effect sizes), which :func:`cpdimpact.planning.diagnose` runs too;
* :mod:`cpdimpact.evaluation.result`: :class:`EvaluationResult`, data and faces only.

Publishing (the report, ``results.json``, the files) is :mod:`cpdimpact.report.publish`; it
depends on the result and is installed here as the result's publisher
(:func:`~cpdimpact.evaluation.result.use_publisher`).
"""

from __future__ import annotations

from ..report import publish as _publish
from .result import (
    TWFE_COMPARISON_LABEL,
    EvaluationResult,
    GroupEstimate,
    RunWarning,
    StaggeredDetail,
    inference_text,
    use_publisher,
)
from .spec import Evaluation, ProgrammeCost, ReportOptions, SecurityOptions
from .stages import SEED_STAGES, stage_seed

use_publisher(_publish)

__all__ = [
    "SEED_STAGES",
    "TWFE_COMPARISON_LABEL",
    "Evaluation",
    "EvaluationResult",
    "GroupEstimate",
    "ProgrammeCost",
    "ReportOptions",
    "RunWarning",
    "SecurityOptions",
    "StaggeredDetail",
    "inference_text",
    "stage_seed",
]
