"""cpdimpact: evaluate the impact of teacher professional development on pupils.

records -> :class:`CohortSpec` -> :class:`DiD` / :class:`EventStudy` -> effect sizes ->
report, composed by :class:`Evaluation`. Importing the package is cheap: the public names
below load their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "Records": "records",
    "PublishedRecords": "published",
    "CohortSpec": "cohort",
    "Cohort": "cohort",
    "FlowLog": "cohort",
    "DiD": "did",
    "EventStudy": "did",
    "EffectSize": "effects",
    "hedges_g": "effects",
    "months_of_progress": "effects",
    "MultilevelModel": "multilevel",
    "MultilevelDiD": "multilevel",
    "SimpleTrial": "multilevel",
    "ClusterTrial": "multilevel",
    "MultisiteTrial": "multilevel",
    "TrialResult": "multilevel",
    "StaggeredDiD": "did",
    "Evaluation": "evaluation",
    "EvaluationResult": "evaluation",
    "ReportOptions": "evaluation",
    "ProgrammeCost": "evaluation",
    "SecurityOptions": "evaluation",
    "CpdImpactError": "errors",
    "DataError": "errors",
    "DesignError": "errors",
    "EstimationError": "errors",
    "CpdImpactWarning": "errors",
}
_SUBMODULES = (
    "cohort",
    "comparison",
    "datasets",
    "dfe",
    "did",
    "effects",
    "errors",
    "estimator",
    "evaluation",
    "multilevel",
    "pipeline",
    "planning",
    "published",
    "records",
    "report",
    "workforce",
    "survival",
)

__all__ = [
    "ClusterTrial",
    "Cohort",
    "CohortSpec",
    "CpdImpactError",
    "CpdImpactWarning",
    "DataError",
    "DesignError",
    "DiD",
    "EffectSize",
    "EstimationError",
    "Evaluation",
    "EvaluationResult",
    "EventStudy",
    "FlowLog",
    "MultilevelDiD",
    "MultilevelModel",
    "MultisiteTrial",
    "ProgrammeCost",
    "PublishedRecords",
    "Records",
    "ReportOptions",
    "SecurityOptions",
    "SimpleTrial",
    "StaggeredDiD",
    "TrialResult",
    "__version__",
    "hedges_g",
    "months_of_progress",
    *_SUBMODULES,
]

if TYPE_CHECKING:  # pragma: no cover
    from .cohort import Cohort, CohortSpec, FlowLog
    from .did import DiD, EventStudy, StaggeredDiD
    from .effects import EffectSize, hedges_g, months_of_progress
    from .errors import (
        CpdImpactError,
        CpdImpactWarning,
        DataError,
        DesignError,
        EstimationError,
    )
    from .evaluation import (
        Evaluation,
        EvaluationResult,
        ProgrammeCost,
        ReportOptions,
        SecurityOptions,
    )
    from .multilevel import (
        ClusterTrial,
        MultilevelDiD,
        MultilevelModel,
        MultisiteTrial,
        SimpleTrial,
        TrialResult,
    )
    from .published import PublishedRecords
    from .records import Records


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'cpdimpact' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
