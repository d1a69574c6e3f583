"""Teacher survival in post: did the CPD keep teachers?

Estimators of how long teachers stay, on one row per teacher's spell in post (its length in
years and whether it ended in leaving):

* :class:`KaplanMeier`: retention curves by arm and the difference in the share still in post
  at 1, 2 and 3 years (Greenwood, or clustered by school);
* :class:`CoxModel`: proportional hazards (Efron or Breslow ties) with the hazard ratio of
  participation, cluster-robust by school as R ``coxph(... + cluster(school))``;
* :class:`DiscreteTimeHazard`: the person-period logit of leaving in each census year
  (:func:`person_periods` expands the spells), cluster-robust by school.

Every estimator takes case weights, so that matching or entropy-balancing weights from
:mod:`cpdimpact.comparison` compare participants with teachers like them. See
``docs/survival.md``.
"""

from ._cox import CoxModel, CoxResult
from ._discrete import DiscreteHazardResult, DiscreteTimeHazard, person_periods
from ._km import KaplanMeier, KaplanMeierResult

__all__ = [
    "CoxModel",
    "CoxResult",
    "DiscreteHazardResult",
    "DiscreteTimeHazard",
    "KaplanMeier",
    "KaplanMeierResult",
    "person_periods",
]
