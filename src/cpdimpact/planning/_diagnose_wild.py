"""A pipeline-compatible estimator spec whose inference is the wild cluster bootstrap.

:class:`WildClusterDiD` lets a design diagnosis compare the cluster-robust sandwich of
:class:`~cpdimpact.did.DiD` with the wild cluster bootstrap on the same simulated data:
``Evaluation(estimator=WildClusterDiD(cluster="area"))`` fits the same two-way fixed-effects
coefficient and tests it with :func:`~cpdimpact.did.wild_cluster_bootstrap`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .._validate import check_alpha, check_bool, check_choice, check_positive_int, check_seed
from ..did import wild_cluster_bootstrap
from ..did._common import normalise_covariates
from ..did.wild import WEIGHT_TYPES, WildBootstrapResult
from ..errors import InvalidArgumentError, format_value

__all__ = ["WildClusterDiD"]


@dataclass(frozen=True, kw_only=True)
class WildClusterDiD:
    r"""Two-way fixed-effects DiD tested with the wild cluster bootstrap (for few clusters).

    The point estimate and standard error are those of :class:`~cpdimpact.did.DiD` (CR1); the
    p-value and interval come from the wild cluster bootstrap-t (restricted, WCR, by default),
    which holds its size with few clusters where the sandwich over-rejects (Cameron, Gelbach &
    Miller 2008; MacKinnon & Webb 2018; Webb 2023).

    Parameters
    ----------
    outcome, unit, time, treatment, cluster, covariates, weights, alpha
        As for :class:`~cpdimpact.did.DiD`; ``cluster`` defaults to ``"area"`` (the level of
        assignment of an area roll-out).
    n_bootstrap, weights_type, restricted
        As for :func:`~cpdimpact.did.wild_cluster_bootstrap`.
    seed
        Seed of the bootstrap draws (an int, a numpy ``SeedSequence`` or ``Generator``, or
        ``None``; as :func:`~cpdimpact.did.wild_cluster_bootstrap`).
        :func:`~cpdimpact.planning.diagnose` replaces it with a seed derived from each
        simulation's seed stream.

    Notes
    -----
    ``fit`` returns a :class:`~cpdimpact.did.WildBootstrapResult`, whose ``p_value`` and
    ``ci_lower``/``ci_upper`` are the bootstrap's (the interval inverts the bootstrap test). It
    is meant for :func:`~cpdimpact.planning.diagnose`; for a published evaluation fit
    :class:`~cpdimpact.did.DiD` and call :func:`~cpdimpact.did.wild_cluster_bootstrap` on the
    same rows.

    Examples
    --------
    >>> from cpdimpact import Evaluation
    >>> from cpdimpact.planning import WildClusterDiD
    >>> spec = Evaluation(estimator=WildClusterDiD(n_bootstrap=199), level="unit_year")
    >>> spec.estimator.cluster
    'area'
    """

    #: Rows it fits: pupil records or unit-year means alike.
    data_level: ClassVar[str] = "any"

    outcome: str = "outcome"
    unit: str = "unit"
    time: str = "year"
    treatment: str = "exposed"
    cluster: str = "area"
    covariates: Sequence[str] = field(default=())
    weights: str | None = None
    alpha: float = 0.05
    n_bootstrap: int = 999
    weights_type: str = "webb"
    restricted: bool = True
    seed: int | np.random.SeedSequence | np.random.Generator | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", normalise_covariates(self.covariates))
        check_alpha(self.alpha)
        check_choice(self.weights_type, "weights_type", WEIGHT_TYPES)
        check_positive_int(self.n_bootstrap, "n_bootstrap")
        check_bool(self.restricted, "restricted")
        check_seed(self.seed)
        if self.treatment in self.covariates:
            raise InvalidArgumentError(
                f"the treatment {format_value(self.treatment)} is also listed in covariates; "
                "remove it from covariates."
            )

    def fit(self, data) -> WildBootstrapResult:
        """Fit the TWFE coefficient and its wild cluster bootstrap test (``data`` unchanged)."""
        return wild_cluster_bootstrap(
            data,
            outcome=self.outcome,
            unit=self.unit,
            time=self.time,
            treatment=self.treatment,
            cluster=self.cluster,
            covariates=self.covariates,
            weights=self.weights,
            n_bootstrap=int(self.n_bootstrap),
            weights_type=self.weights_type,
            restricted=self.restricted,
            alpha=self.alpha,
            seed=self.seed,
        )
