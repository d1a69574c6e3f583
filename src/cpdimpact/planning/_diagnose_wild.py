"""``WildClusterDiD``, deprecated: the wild cluster bootstrap is an option of ``DiD`` now.

``WildClusterDiD(n_bootstrap=199)`` was a copy of :class:`~cpdimpact.did.DiD`'s options plus
the bootstrap's. It is ``DiD(cluster="area", inference=WildBootstrap(n_bootstrap=199))``, which
this function returns (with a :class:`~cpdimpact.errors.DeprecatedOptionWarning`) for one
release.
"""

from __future__ import annotations

import warnings

from ..did import DiD
from ..errors import DeprecatedOptionWarning
from ..estimator import WildBootstrap

__all__ = ["WildClusterDiD"]


def WildClusterDiD(
    *,
    n_bootstrap: int = 999,
    weights_type: str = "webb",
    restricted: bool = True,
    seed=None,
    cluster: str = "area",
    **options,
) -> DiD:
    """Deprecated: ``DiD(cluster="area", inference=WildBootstrap(...))``.

    Parameters
    ----------
    n_bootstrap, weights_type, restricted, seed
        The bootstrap's draws, weights (``WildBootstrap(weights=...)``), WCR or WCU and seed.
    cluster
        Cluster column (default ``"area"``, the level of assignment of an area roll-out).
    **options
        Any other option of :class:`~cpdimpact.did.DiD`.

    Returns
    -------
    DiD
        With ``inference=WildBootstrap(...)``: its ``fit`` returns a
        :class:`~cpdimpact.did.WildBootstrapResult`.

    Examples
    --------
    >>> from cpdimpact.did import DiD
    >>> from cpdimpact.estimator import WildBootstrap
    >>> DiD(cluster="area", inference=WildBootstrap(n_bootstrap=199)).inference.n_bootstrap
    199
    """
    inference = WildBootstrap(
        n_bootstrap=n_bootstrap, weights=weights_type, restricted=restricted, seed=seed
    )
    warnings.warn(
        "WildClusterDiD is deprecated and will be removed in the next release; write "
        f"DiD(cluster={cluster!r}, inference={inference!r}) (cpdimpact.estimator.WildBootstrap).",
        DeprecatedOptionWarning,
        stacklevel=2,
    )
    return DiD(cluster=cluster, inference=inference, **options)
