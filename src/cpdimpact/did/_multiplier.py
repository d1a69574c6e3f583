"""Multiplier bootstrap of influence functions (Callaway & Sant'Anna 2021, section 4).

One seed regenerates the same draws for every statistic, so the group-time effects and all
their aggregates share one joint bootstrap distribution, and the uniform bands follow from the
largest studentised replicate across columns.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import stats

_MAMMEN = (-(np.sqrt(5) - 1) / 2, (np.sqrt(5) + 1) / 2)
_MAMMEN_P = (np.sqrt(5) + 1) / (2 * np.sqrt(5))
_CHUNK = 64  # draws generated at a time: memory (units x chunk), not (units x draws)


@dataclass(frozen=True)
class _Bootstrap:
    """Multiplier bootstrap settings; the same seed regenerates the same draws for every
    statistic, so cells and aggregates share one joint bootstrap distribution."""

    n_bootstrap: int
    seed: int
    clusters: np.ndarray | None
    n_units: int

    @classmethod
    def create(cls, spec, clusters, n: int) -> _Bootstrap:
        seed = spec.seed
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        return cls(int(spec.n_bootstrap), int(seed), clusters, n)

    @property
    def n_clusters(self) -> int:
        return self.n_units if self.clusters is None else int(self.clusters.max()) + 1

    def draws(self, psi: np.ndarray) -> np.ndarray:
        r"""Bootstrap replicates :math:`\sqrt{G}\,\frac1G\sum_c v_c \bar\psi_c` (draws x k).

        Mammen two-point weights :math:`v` per unit, or per cluster applied to the cluster
        means of the influence function (Callaway & Sant'Anna 2021, section 4).
        """
        if self.clusters is None:
            units = psi
        else:
            sizes = np.bincount(self.clusters)
            units = (
                np.stack(
                    [np.bincount(self.clusters, weights=psi[:, j]) for j in range(psi.shape[1])],
                    axis=1,
                )
                / sizes[:, None]
            )
        g = units.shape[0]
        out = np.empty((self.n_bootstrap, psi.shape[1]))
        starts = range(0, self.n_bootstrap, _CHUNK)
        # One generator per chunk, spawned from the seed: the draws do not depend on how many
        # threads run them. Filling, comparing and the BLAS product release the GIL, so two
        # threads use both cores; each thread reuses its own buffers (fresh draws x units
        # arrays per chunk cost more in page faults than the draws themselves).
        children = np.random.SeedSequence(self.seed).spawn(len(starts))
        local = threading.local()

        def run(chunk: int) -> None:
            start = starts[chunk]
            size = min(_CHUNK, self.n_bootstrap - start)
            if not hasattr(local, "buffer"):
                local.buffer = np.empty((_CHUNK, g))
                local.mask = np.empty((_CHUNK, g), dtype=bool)
            v, mask = local.buffer[:size], local.mask[:size]
            np.random.default_rng(children[chunk]).random(out=v)
            np.less(v, _MAMMEN_P, out=mask)
            v.fill(_MAMMEN[1])
            v[mask] = _MAMMEN[0]
            out[start : start + size] = v @ units / np.sqrt(g)

        workers = min(2, os.cpu_count() or 1, len(starts))
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(run, range(len(starts))))
        else:
            for chunk in range(len(starts)):
                run(chunk)
        return out


def _inference(psi: np.ndarray, bootstrap: _Bootstrap | None, alpha: float):
    """Standard errors and the uniform-band critical value for the columns of ``psi``.

    Analytic: :math:`\\sqrt{\\sum\\psi^2}/n` and the pointwise normal quantile. Bootstrap (as R
    ``did``): the interquartile range of the replicates over that of the normal, divided by
    :math:`\\sqrt{G}`; the band uses the :math:`1-\alpha` quantile of the largest absolute
    studentised replicate across columns.
    """
    psi = np.atleast_2d(psi.T).T
    if bootstrap is None:
        se = np.sqrt((psi**2).sum(axis=0)) / psi.shape[0]
        return se, float(stats.norm.ppf(1 - alpha / 2))
    reps = bootstrap.draws(psi)
    q75, q25 = np.quantile(reps, [0.75, 0.25], axis=0, method="inverted_cdf")
    sigma = (q75 - q25) / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
    with np.errstate(divide="ignore", invalid="ignore"):
        studentised = np.nanmax(np.abs(reps / sigma), axis=1)
    band = float(np.quantile(studentised, 1 - alpha, method="inverted_cdf"))
    return sigma / np.sqrt(bootstrap.n_clusters), band
