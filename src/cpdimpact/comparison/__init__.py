"""Comparison groups a sceptic accepts: matching, weighting and synthetic control.

Schools that choose to join a programme differ from those that do not; schools chosen for
support after a bad year regress to the mean; a city-wide programme leaves no comparison school
in the city. This module forms comparison groups for each situation: propensity-score,
Mahalanobis and coarsened exact matching and entropy balancing of schools (weights every
estimator accepts), synthetic control and synthetic difference-in-differences for one treated
area. The check for selection on a dip runs with every cohort
(:func:`cpdimpact.cohort.check_pre_period_dip`).
"""

from ._balance import balance_table, plot_love
from ._characteristics import school_characteristics
from ._entropy import EntropyBalancing
from ._matching import (
    CoarsenedExactMatching,
    MahalanobisMatching,
    NearestMatching,
    propensity_score,
)
from ._prediction import PredictionIntervals
from ._result import ComparisonWeights
from ._synthetic import (
    NonUniqueWeightsWarning,
    SyntheticComparison,
    SyntheticControl,
    SyntheticDiD,
    SyntheticResult,
    area_year_outcomes,
    compare_synthetic,
    cross_validate_synthetic,
)

__all__: list[str] = []
__all__ += ["ComparisonWeights", "balance_table", "plot_love"]
__all__ += ["NearestMatching", "MahalanobisMatching", "CoarsenedExactMatching", "propensity_score"]
__all__ += ["EntropyBalancing", "school_characteristics"]
__all__ += [
    "NonUniqueWeightsWarning",
    "PredictionIntervals",
    "SyntheticComparison",
    "SyntheticControl",
    "SyntheticDiD",
    "SyntheticResult",
    "area_year_outcomes",
    "compare_synthetic",
    "cross_validate_synthetic",
]
