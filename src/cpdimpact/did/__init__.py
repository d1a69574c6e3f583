"""Difference-in-differences estimators for programme evaluations.

What is here
------------
:class:`DiD`
    Static two-way fixed-effects (TWFE) difference-in-differences: the classic 2x2 DiD
    generalised to many units and periods, on pupil rows (a repeated cross-section within
    schools) or on unit-year rows (e.g. school-year means weighted by pupils).
:class:`EventStudy`
    TWFE event study: one coefficient per event time (periods since first treated) relative to
    a reference period, optional binning of the ends, and a joint cluster-robust pre-trend test.
:class:`DiDResult`, :class:`EventStudyResult`, :class:`PretrendTest`
    Immutable results with ``summary()``, ``to_frame()``, ``plot()``, ``conf_int()``.

Inference is cluster-robust (CR1 with the Stata ``xtreg, fe vce(cluster)`` / R ``fixest``
small-sample factor, unit effects nested in clusters not counted) with t and F reference
distributions on G - 1 degrees of freedom; ``inference=ClusterRobust("CR2")`` gives CR2 (Bell & McCaffrey 2002;
Pustejovsky & Tipton 2018) with Satterthwaite degrees of freedom per term and the HTZ pre-trend
test. See ``docs/did.md``.

Staggered adoption
------------------
:class:`StaggeredDiD` estimates group-time effects (Callaway & Sant'Anna 2021) and their
aggregates with analytic or multiplier-bootstrap standard errors, with covariates (doubly robust,
inverse probability or regression), on balanced or unbalanced panels or repeated cross-sections.
:class:`ImputationDiD` is the imputation estimator (Borusyak, Jaravel & Spiess 2024) and
:class:`SunAbraham` the interaction-weighted event study (Sun & Abraham 2021).
:func:`bacon_decomposition` shows which 2x2 comparisons, with which weights, make up a TWFE
estimate (Goodman-Bacon 2021). :func:`sensitivity` bounds an event-study conclusion under
violations of parallel trends (Rambachan & Roth 2023: relative magnitudes, smoothness).

TWFE is biased when start periods are staggered and effects vary over time or between cohorts
(Goodman-Bacon 2021; de Chaisemartin & D'Haultfoeuille 2020; Sun & Abraham 2021); both TWFE
estimators warn :class:`~cpdimpact.errors.StaggeredTimingWarning` in that case and their results
on staggered designs are for comparison only.

Few clusters
------------
:func:`wild_cluster_bootstrap` tests a TWFE DiD coefficient with the wild cluster bootstrap
(restricted by default; Rademacher or Webb weights; exact enumeration for very few clusters)
without refitting per draw; :func:`wild_bootstrap_aggregate` does the same for the aggregates
of a :class:`StaggeredDiD` fit clustered by area.
"""

from cpdimpact._results import EventStudyEstimates, plot_event_study
from cpdimpact.did._checks import FIRST_TREATED
from cpdimpact.did.bacon import BaconDecomposition, bacon_decomposition
from cpdimpact.did.event_study import EventStudy
from cpdimpact.did.honest import SensitivityResult, sensitivity, sensitivity_from_estimates
from cpdimpact.did.imputation import ImputationDiD, ImputationPretrend, ImputationResult
from cpdimpact.did.results import DiDResult, EventStudyResult, PretrendTest
from cpdimpact.did.staggered import Aggregate, DynamicAggregate, StaggeredDiD, StaggeredResult
from cpdimpact.did.sun_abraham import SunAbraham, SunAbrahamResult
from cpdimpact.did.twfe import DiD
from cpdimpact.did.wild import WildBootstrapResult, wild_cluster_bootstrap
from cpdimpact.did.wild_aggregate import WildAggregateResult, wild_bootstrap_aggregate

__all__ = [
    "FIRST_TREATED",
    "Aggregate",
    "BaconDecomposition",
    "bacon_decomposition",
    "DiD",
    "DiDResult",
    "DynamicAggregate",
    "EventStudy",
    "EventStudyEstimates",
    "EventStudyResult",
    "ImputationDiD",
    "ImputationPretrend",
    "ImputationResult",
    "PretrendTest",
    "plot_event_study",
    "SensitivityResult",
    "sensitivity",
    "sensitivity_from_estimates",
    "StaggeredDiD",
    "StaggeredResult",
    "SunAbraham",
    "SunAbrahamResult",
    "WildAggregateResult",
    "WildBootstrapResult",
    "wild_bootstrap_aggregate",
    "wild_cluster_bootstrap",
]
