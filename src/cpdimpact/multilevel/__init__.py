"""Multilevel (mixed) models: pupils nested in classes or teachers, nested in schools.

:class:`MultilevelModel` fits nested random intercepts at any number of levels, with optional
correlated random slopes at the outermost level, by REML or ML. It reaches the same optimum as
lme4 from per-group sufficient statistics, so it never forms an N x N or N x G matrix; see
``docs/multilevel.md`` for the likelihood, the profiling and the degrees-of-freedom methods.

:class:`MultilevelDiD` is the pipeline stage: a difference-in-differences on pupil records with
random intercepts for schools (and teachers), whose effect size uses the model's variances.

:class:`SimpleTrial`, :class:`ClusterTrial` and :class:`MultisiteTrial` analyse randomised
trials (pupils randomised; schools randomised; pupils randomised within schools) as the R package
eefAnalytics does, with the EEF-guidance effect size as the headline; see ``docs/trials.md``.
"""

from ._did import MultilevelDiD, MultilevelDiDResult
from ._model import MultilevelModel, NestingError
from ._result import MultilevelResult
from ._trials import ClusterTrial, MultisiteTrial, SimpleTrial, TrialResult

__all__ = [
    "ClusterTrial",
    "MultilevelDiD",
    "MultilevelDiDResult",
    "MultilevelModel",
    "MultilevelResult",
    "MultisiteTrial",
    "NestingError",
    "SimpleTrial",
    "TrialResult",
]
