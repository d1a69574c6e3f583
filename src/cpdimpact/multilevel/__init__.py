"""Multilevel (mixed) models: pupils nested in classes or teachers, nested in schools.

:class:`MultilevelModel` fits nested random intercepts at any number of levels, with optional
correlated random slopes at the outermost level, by REML or ML. It reaches the same optimum as
lme4 from per-group sufficient statistics, so it never forms an N x N or N x G matrix; see
``docs/multilevel.md`` for the likelihood, the profiling and the degrees-of-freedom methods.

:class:`MultilevelDiD` is the pipeline stage: a difference-in-differences on pupil records with
random intercepts for schools (and teachers), whose effect size uses the model's variances.
"""

from ._did import MultilevelDiD, MultilevelDiDResult
from ._model import MultilevelModel, NestingError
from ._result import MultilevelResult

__all__ = [
    "MultilevelDiD",
    "MultilevelDiDResult",
    "MultilevelModel",
    "MultilevelResult",
    "NestingError",
]
