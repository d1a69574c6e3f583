r"""Multiplier bootstrap of influence functions (Callaway & Sant'Anna 2021, section 4).

One seed regenerates the same draws for every statistic, so the group-time effects and all
their aggregates share one joint bootstrap distribution, and the uniform bands follow from the
largest studentised replicate across columns.

How the replicates are computed (the cost is one weight per unit and draw):

* **Weights from raw bits.** A Mammen weight is :math:`a = (1-\sqrt5)/2` with probability
  :math:`p = (\sqrt5+1)/(2\sqrt5)` and :math:`b = (1+\sqrt5)/2` otherwise. Each weight takes 32
  raw bits of the generator, compared with :math:`\operatorname{round}(p\,2^{32})`: the
  probability is exact to :math:`2^{-33}`, with no floating-point uniforms to draw and convert.
  With :math:`m = 1\{v = a\}`, :math:`\sum_i v_i\psi_i = b\sum_i\psi_i + (a-b)\sum_i m_i\psi_i`,
  so the product runs on the 0/1 matrix directly.
* **Exact products.** Each column of the influence functions is rounded to whole multiples of
  a step (at most :math:`2^{-(52-\lceil\log_2 n\rceil)}` of its largest value, about
  :math:`3\times10^{-11}` relative for 200,000 units) small enough that every sum of 0/1
  weights times those whole numbers is exact in float64. The products are then independent of
  the order of summation: the replicates are bit-identical whatever the number of threads
  (ours or BLAS's).
* **Blocks of units with the same support.** Units are grouped by the columns of the influence
  functions that are non-zero for them (for group-time effects: the unit's cohort), and each
  block is multiplied with its non-zero columns only.
* **Cache-sized work, no BLAS threads.** Weights are made 64 draws x 2,048 units at a time and
  multiplied at once in products of at most 4 x 65,536 multiply-adds, which OpenBLAS runs on
  the calling thread; two threads of ours (chunks of draws, one generator each, spawned from
  the seed) use both cores. Nested BLAS threads on a busy machine cost several times more.
* **One pass for the cells and every aggregate.** The first call (the group-time effects)
  also bootstraps the indicators of the support blocks. An aggregate's influence function is
  the cells' times its weights plus a term for the estimated cohort shares, which is constant
  within cohorts: it lies in the span of ``[cells | block indicators]`` and its replicates are
  the stored replicates times its coefficients in that basis. Membership is verified (relative
  residual below ``1e-9``); anything else is bootstrapped directly, with the same weights.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from cpdimpact._validate import recordable_sequence, recorded_seed

_SQRT5 = np.sqrt(5.0)
_MAMMEN = ((1 - _SQRT5) / 2, (1 + _SQRT5) / 2)
_MAMMEN_P = (_SQRT5 + 1) / (2 * _SQRT5)  # P(v = (1 - sqrt5)/2)
#: ``u < _THRESHOLD`` for a uniform 32-bit integer ``u`` has probability ``_MAMMEN_P`` to 2**-33.
_THRESHOLD = np.uint32(round(_MAMMEN_P * 2**32))
_CHUNK = 64  # draws per generator
_TILE = 2048  # units per call to the generator: 64 x 2048 weights (1 MB) stay in cache
#: Products of at most this many multiply-adds: OpenBLAS runs them on the calling thread (its
#: default threading threshold, 4 x 65536), and they are cache-sized.
_SMALL_PRODUCT = 262_144
_MAX_BLOCKS = 64  # more distinct supports than this: one dense block, no indicators
_SPAN_RTOL = 1e-9  # relative residual below which an influence function is in the basis span


# ---------------------------------------------------------------------- helpers
def _support_blocks(mat: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Label rows by their pattern of non-zero columns (labels in sorted pattern order)."""
    g, k = mat.shape
    if g == 0 or k == 0:
        return None
    bits = np.packbits(mat != 0, axis=1)
    if bits.shape[1] <= 8:
        keys = np.zeros((g, 8), dtype=np.uint8)
        keys[:, : bits.shape[1]] = bits
        keys = keys.view(">u8").ravel()  # big-endian: integer order is pattern order
        patterns, labels = np.unique(keys, return_inverse=True)
    else:
        patterns, labels = np.unique(bits, axis=0, return_inverse=True)
    if len(patterns) > _MAX_BLOCKS:
        return None
    return labels.reshape(-1).astype(np.intp), len(patterns)


def _integers(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` (overwritten) as whole numbers times a step per column, small enough that any
    sum of its rows is exact in float64."""
    bits = 52 - int(np.ceil(np.log2(rows.shape[0] + 1)))
    step = np.maximum(rows.max(axis=0), -rows.min(axis=0)) / 2.0**bits
    step[step == 0] = 1.0
    rows /= step
    np.rint(rows, out=rows)
    return rows, step


def _tdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.T @ b`` summed over row chunks in a fixed order, each a small single-threaded
    product: the result does not depend on the number of BLAS threads."""
    vector = b.shape[1] == 1
    if vector:  # keep matrix products (a vector product may be threaded differently)
        b = np.column_stack([b, np.zeros(len(b))])
    rows = max(1, _SMALL_PRODUCT // (a.shape[1] * b.shape[1]))
    out = np.zeros((a.shape[1], b.shape[1]))
    for lo in range(0, a.shape[0], rows):
        out += a[lo : lo + rows].T @ b[lo : lo + rows]
    return out[:, :1] if vector else out


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` by chunks of rows of ``a``, each a small single-threaded product."""
    vector = b.shape[1] == 1
    if vector:
        b = np.column_stack([b, np.zeros(len(b))])
    rows = max(1, _SMALL_PRODUCT // (a.shape[1] * b.shape[1]))
    out = np.empty((a.shape[0], b.shape[1]))
    for lo in range(0, a.shape[0], rows):
        np.matmul(a[lo : lo + rows], b, out=out[lo : lo + rows])
    return out[:, :1] if vector else out


def _block_sums(psi: np.ndarray, labels: np.ndarray, n_blocks: int) -> np.ndarray:
    """Sums of the columns of ``psi`` within each block (blocks x columns)."""
    return _tdot((labels[:, None] == np.arange(n_blocks)).astype(float), psi)


@dataclass(frozen=True)
class _Layout:
    """Where each unit's weight sits in the random stream: units in block order."""

    order: np.ndarray  # position -> unit
    bounds: np.ndarray  # block b holds positions bounds[b]:bounds[b + 1]

    @classmethod
    def of(cls, labels: np.ndarray | None, g: int) -> _Layout:
        if labels is None:
            return cls(np.arange(g), np.array([0, g]))
        order = np.argsort(labels, kind="stable")
        return cls(order, np.concatenate([[0], np.cumsum(np.bincount(labels))]))

    @property
    def size(self) -> int:
        return len(self.order)


class _Basis:
    """Replicates of ``[psi | block indicators]`` from the first call, for projections."""

    def __init__(self, psi: np.ndarray, labels, n_blocks: int, reps: np.ndarray):
        self.psi = psi.view()  # units x k, kept by reference (must not change)
        self.psi.flags.writeable = False
        self.labels = labels  # support block of each unit (indicator columns), or None
        self.n_blocks = n_blocks
        self.reps = reps  # draws x (k + n_blocks)
        self._solver: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()

    def _gram_inverse(self) -> tuple[np.ndarray, np.ndarray]:
        """Column norms and pseudo-inverse of the scaled Gram matrix (computed on first use)."""
        with self._lock:
            if self._solver is None:
                k, b = self.psi.shape[1], self.n_blocks
                gram = np.zeros((k + b, k + b))
                gram[:k, :k] = _tdot(self.psi, self.psi)
                if self.labels is not None:
                    sums = _block_sums(self.psi, self.labels, b)  # blocks x k
                    gram[k:, :k], gram[:k, k:] = sums, sums.T
                    gram[k:, k:] = np.diag(np.bincount(self.labels, minlength=b).astype(float))
                scale = np.sqrt(np.diag(gram))
                scale[scale == 0] = 1.0
                values, vectors = np.linalg.eigh(gram / np.outer(scale, scale))
                keep = values > values.max() * 1e-12
                inverse = (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
                self._solver = (scale, inverse)
            return self._solver

    def _cross(self, psi: np.ndarray) -> np.ndarray:
        """``[basis | indicators]' psi``."""
        k = self.psi.shape[1]
        out = np.empty((k + self.n_blocks, psi.shape[1]))
        out[:k] = _tdot(self.psi, psi)
        if self.labels is not None:
            out[k:] = _block_sums(psi, self.labels, self.n_blocks)
        return out

    def coefficients(self, psi: np.ndarray) -> np.ndarray | None:
        """``beta`` with ``psi = [basis | indicators] @ beta`` (verified), or None."""
        if psi.shape[0] != self.psi.shape[0]:
            return None
        scale, inverse = self._gram_inverse()
        k = self.psi.shape[1]
        norm = np.sqrt(np.einsum("ij,ij->j", psi, psi))
        beta = np.zeros((k + self.n_blocks, psi.shape[1]))
        residual = psi
        for _ in range(2):  # one step of iterative refinement if needed
            beta = beta + (inverse @ (self._cross(residual) / scale[:, None])) / scale[:, None]
            residual = psi - _dot(self.psi, beta[:k])
            if self.labels is not None:
                residual -= beta[k:][self.labels]
            if (np.sqrt(np.einsum("ij,ij->j", residual, residual)) <= _SPAN_RTOL * norm).all():
                return beta
        return None

    def replicates(self, beta: np.ndarray) -> np.ndarray:
        return _dot(self.reps, beta)


# ---------------------------------------------------------------------- bootstrap
@dataclass(frozen=True)
class _Bootstrap:
    """Multiplier bootstrap settings; the same seed regenerates the same draws for every
    statistic, so cells and aggregates share one joint bootstrap distribution.

    The first call of :meth:`draws` (the group-time effects) fixes where each unit's weight
    sits in the random stream and becomes the basis onto which later influence functions are
    projected; that array is kept by reference and must not be modified afterwards. A pickled
    copy keeps the positions, not the basis: it draws the same weights, directly.
    """

    n_bootstrap: int
    #: The int that repeats these draws (``None`` when the seed was a Generator or a spawned
    #: SeedSequence); ``entropy`` and ``spawn_key`` are the SeedSequence the draws come from.
    seed: int | None
    clusters: np.ndarray | None
    n_units: int
    entropy: int | tuple[int, ...] = 0
    spawn_key: tuple[int, ...] = ()
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def create(cls, spec, clusters, n: int) -> _Bootstrap:
        sequence = recordable_sequence(spec.seed)  # an int n is SeedSequence(n)
        entropy = sequence.entropy
        entropy = (
            int(entropy) if isinstance(entropy, int | np.integer) else tuple(map(int, entropy))
        )
        return cls(
            int(spec.n_bootstrap),
            recorded_seed(sequence),
            clusters,
            n,
            entropy=entropy,
            spawn_key=tuple(int(k) for k in sequence.spawn_key),
        )

    def __getstate__(self):
        # The basis holds the cells' influence functions (the result has them already); the
        # layout alone keeps the weights of every unit, so a copy draws the same weights.
        state = dict(self.__dict__)
        state["_cache"] = {k: v for k, v in self._cache.items() if k == "layout"}
        return state

    def __setstate__(self, state):
        if "entropy" not in state:  # pickled before the entropy was kept: the seed is the int
            state = {**state, "entropy": state["seed"], "spawn_key": ()}
        for key, value in state.items():
            object.__setattr__(self, key, value)

    @property
    def n_clusters(self) -> int:
        return self.n_units if self.clusters is None else int(self.clusters.max()) + 1

    def draws(self, psi: np.ndarray) -> np.ndarray:
        r"""Bootstrap replicates :math:`\sqrt{G}\,\frac1G\sum_c v_c \bar\psi_c` (draws x k).

        Mammen two-point weights :math:`v` per unit, or per cluster applied to the cluster
        means of the influence function (Callaway & Sant'Anna 2021, section 4).
        """
        psi = np.asarray(psi, dtype=float)
        if psi.ndim == 1:
            psi = psi[:, None]
        with self._cache.setdefault("lock", threading.Lock()):
            basis = self._cache.get("basis")
            if basis is None and "layout" not in self._cache:
                return self._first(psi)
        if basis is not None:
            beta = basis.coefficients(psi)
            if beta is not None:
                return basis.replicates(beta)
        units = self._units(psi)
        layout = self._cache["layout"]
        if units.shape[0] != layout.size:
            layout = _Layout.of(None, units.shape[0])
        return self._replicates(units, layout)

    def _units(self, psi: np.ndarray) -> np.ndarray:
        """Rows that receive one weight each: units, or cluster means of ``psi``."""
        if self.clusters is None:
            return psi
        sizes = np.bincount(self.clusters)
        return (
            np.stack(
                [np.bincount(self.clusters, weights=psi[:, j]) for j in range(psi.shape[1])],
                axis=1,
            )
            / sizes[:, None]
        )

    def _first(self, psi: np.ndarray) -> np.ndarray:
        """Bootstrap ``[psi | support-block indicators]``; keep it as the projection basis."""
        k = psi.shape[1]
        found = _support_blocks(psi)
        labels, n_blocks = found if found is not None else (None, 0)
        if self.clusters is None:
            layout = _Layout.of(labels, psi.shape[0])
            reps = self._replicates(psi, layout, indicators=labels is not None)
        else:
            units = self._units(psi)
            if labels is not None:  # cluster shares of each block
                g = self.n_clusters
                counts = np.bincount(self.clusters * n_blocks + labels, minlength=g * n_blocks)
                shares = counts.reshape(g, n_blocks) / np.bincount(self.clusters)[:, None]
                units = np.hstack([units, shares])
            blocks = _support_blocks(units)
            layout = _Layout.of(blocks[0] if blocks else None, units.shape[0])
            reps = self._replicates(units, layout)
        self._cache["layout"] = layout
        self._cache["basis"] = _Basis(psi, labels, n_blocks, reps)
        return reps[:, :k]

    def _replicates(self, units: np.ndarray, layout: _Layout, indicators=False) -> np.ndarray:
        """Replicates of the columns of ``units`` (one weight per row, in ``layout`` order):
        ``(b * sum(units) + (a - b) * (m @ units)) / sqrt(G)`` with ``m = 1{v = a}``.

        ``indicators``: also of the indicator of each layout block (appended columns).
        """
        g, k = units.shape
        n_blocks = len(layout.bounds) - 1
        width = k + n_blocks if indicators else k
        blocks = []  # (start, stop, columns, whole-number part, step, product rows)
        for b in range(n_blocks):
            start, stop = int(layout.bounds[b]), int(layout.bounds[b + 1])
            rows = units[layout.order[start:stop]]
            cols = np.flatnonzero(rows.any(axis=0))
            if cols.size < k:
                rows = rows[:, cols]
            if indicators:
                rows = np.column_stack([rows, np.ones(stop - start)])
                cols = np.append(cols, k + b)
            if stop > start and cols.size:
                part, step = _integers(rows)
                span = max(8, _SMALL_PRODUCT // (_CHUNK * cols.size))
                blocks.append((start, stop, cols, part, step, span))
        base = np.zeros(width)
        base[:k] = units.sum(axis=0)
        if indicators:
            base[k:] = np.diff(layout.bounds)
        base *= _MAMMEN[1]
        out = np.empty((self.n_bootstrap, width))
        starts = range(0, self.n_bootstrap, _CHUNK)
        # One generator per chunk of draws, spawned from the seed: the draws do not depend on
        # how many threads run them. The generator, the comparison and the products release
        # the GIL, so two threads use both cores.
        # Child i is SeedSequence(entropy, spawn_key=(*spawn_key, i)): what
        # SeedSequence(seed).spawn(n)[i] gives, without the state spawn() keeps.
        children = [
            np.random.SeedSequence(self.entropy, spawn_key=(*self.spawn_key, i))
            for i in range(len(starts))
        ]
        local = threading.local()

        def run(index: int) -> None:
            first = starts[index]
            size = min(_CHUNK, self.n_bootstrap - first)
            if not hasattr(local, "tile"):
                local.tile = np.empty(_CHUNK * _TILE)
            bits = np.random.PCG64(children[index])
            sums = [np.zeros((size, block[2].size)) for block in blocks]
            for j in range(0, g, _TILE):
                n = min(_TILE, g - j)
                raw = bits.random_raw((size * n + 1) // 2).view(np.uint32)
                mask = local.tile[: size * n].reshape(size, n)
                np.less(raw[: size * n].reshape(size, n), _THRESHOLD, out=mask)
                for (start, stop, _, part, _, span), acc in zip(blocks, sums, strict=True):
                    for lo in range(max(j, start), min(j + n, stop), span):
                        hi = min(lo + span, j + n, stop)
                        acc += mask[:, lo - j : hi - j] @ part[lo - start : hi - start]
            total = np.zeros((size, width))
            for (_, _, cols, _, step, _), acc in zip(blocks, sums, strict=True):
                total[:, cols] += acc * step
            out[first : first + size] = (base + (_MAMMEN[0] - _MAMMEN[1]) * total) / np.sqrt(g)

        workers = min(2, os.cpu_count() or 1, len(starts))
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(run, range(len(starts))))
        else:
            for index in range(len(starts)):
                run(index)
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
        squares = np.zeros(psi.shape[1])
        for lo in range(0, psi.shape[0], 8192):  # no units x k temporary (page faults)
            squares += np.square(psi[lo : lo + 8192]).sum(axis=0)
        return np.sqrt(squares) / psi.shape[0], float(stats.norm.ppf(1 - alpha / 2))
    reps = bootstrap.draws(psi)
    q75, q25 = np.quantile(reps, [0.75, 0.25], axis=0, method="inverted_cdf")
    sigma = (q75 - q25) / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
    with np.errstate(divide="ignore", invalid="ignore"):
        studentised = np.nanmax(np.abs(reps / sigma), axis=1)
    band = float(np.quantile(studentised, 1 - alpha, method="inverted_cdf"))
    return sigma / np.sqrt(bootstrap.n_clusters), band
