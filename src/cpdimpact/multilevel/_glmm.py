r"""Generalised linear mixed models (binomial, Poisson) from per-group sufficient statistics.

Model, with the linear engine's random-effect structure (:mod:`._engine`): nested random
intercepts at any number of levels and correlated random slopes at the outermost level,

.. math::
    \eta = X\beta + Zb,\quad b = \Lambda_\theta u,\quad u \sim N(0, I),\qquad
    y_i \mid u \sim \text{Binomial}(m_i, \operatorname{logit}^{-1}\eta_i)/m_i
    \ \text{or}\ \text{Poisson}(e^{\eta_i}).

**Laplace approximation** (lme4's ``glmer``, ``nAGQ = 1``; Bates, Mächler, Bolker & Walker 2015,
*J. Stat. Softw.* 67(1), section 3.6): with :math:`\tilde u` the conditional mode of
:math:`u` and :math:`L` the Cholesky factor of :math:`H = \Lambda^\top Z^\top W Z\Lambda + I`
at the mode (:math:`W` the working weights :math:`m_i\mu_i(1-\mu_i)` or :math:`\mu_i`),

.. math::
    d(\theta, \beta) = -2\log p(y \mid \tilde u) + \|\tilde u\|^2 + \log|L|^2,

and :math:`-d/2` is the log-likelihood reported. :math:`\log|L|^2 = \log|H|` is exactly the
linear engine's :math:`\log|M|` for a Gaussian model with prior weights :math:`W` and
:math:`\sigma = 1`, and a penalised IRLS (PIRLS) step for :math:`u` is exactly that model's BLUP
of the working response :math:`z = \eta + (y-\mu)/\mu'(\eta)`: so each step is one pass over
the pupils to form weighted per-group sums, then the linear engine's recursion over groups.

**Fixed effects for given** :math:`\theta`. Stationarity of :math:`d` in :math:`\beta` reads
:math:`2X^\top(m\circ(y-\mu)) = \partial_\beta\log|H|`, the total derivative through
:math:`\tilde u(\beta)` (envelope theorem for the first two terms):

.. math::
    \partial_\beta \log|H| = X^\top\bigl(a - W\circ Z\Lambda H^{-1}\Lambda^\top Z^\top a\bigr),
    \qquad a_i = \frac{W_i'}{W_i}\, W_i\, z_i^\top\Lambda H^{-1}\Lambda^\top z_i,

with :math:`W'/W = 1-2\mu` (logit) or 1 (log). The leverages :math:`z_i^\top\Lambda H^{-1}
\Lambda^\top z_i` are the conditional variances of each pupil's random part, computed on the
group tree: with :math:`C_g = \Lambda K_g^{-1}\Lambda^\top` the top group's conditional
covariance, going down :math:`V_h = \kappa_h + f_h^2 V_{\mathrm{parent}}` and
:math:`G_h = f_h G_{\mathrm{parent}} + \kappa_h R_h(z)` (:math:`V = G = 0` above level 1),
a pupil in innermost group :math:`h` has :math:`(z_i - G_h)^\top C_g (z_i - G_h) + V_h`.
The joint working-model step (GLS for :math:`\beta`, BLUP for :math:`u`) with the right-hand
side shifted by :math:`-\tfrac12\partial_\beta\log|H|` then converges to the exact stationary
point of :math:`d` in :math:`(\beta, u)`; the variance parameters (few) are optimised outside,
with the exact gradient :func:`_theta_gradient` for random intercepts.

**Random intercepts by per-group sums.** Then the leverages and the smoothed values are the
same for every pupil of an innermost group, and :math:`\eta` is :math:`x_i^\top\beta` plus a
per-group constant, so a PIRLS step needs from the pupils only per-group sums
(:class:`_SumsPoint`): one pass in blocks of whole groups (rows sorted by innermost group once),
nothing per pupil kept. Random slopes take the per-pupil route (:class:`_PupilPoint`).

**Adaptive Gauss-Hermite quadrature** (``n_agq > 1``; one grouping level, random intercept,
as ``glmer``; Liu & Pierce 1994, *Biometrika* 81(3); Pinheiro & Bates 1995, *JCGS* 4(1)): per
group, with :math:`\hat\sigma_g = H_{gg}^{-1/2}` and the Gauss-Hermite rule
:math:`(t_k, w_k)` for :math:`e^{-t^2}`,

.. math::
    d_g = -2\log\Bigl(\frac{\hat\sigma_g}{\sqrt\pi}\sum_k w_k\,
    e^{t_k^2 - f_g(\tilde u_g + \sqrt2\hat\sigma_g t_k)/2}\Bigr),\quad
    f_g(u) = -2\log p(y_g\mid u) + u^2,

which is the Laplace deviance for one node. Its optimum over :math:`(\theta,\beta)` is found
jointly, from the Laplace fit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from scipy import optimize, special

from . import _engine
from ._blas import single_threaded_blas

__all__ = ["GlmmData", "GlmmFit", "fit", "deviance_at"]

FAMILIES = ("binomial", "poisson")
#: A fixed effect beyond this many units of the linear predictor per SD of its covariate is
#: taken as running off to infinity (separation): an odds ratio of e^15 per SD.
SEPARATION_BOUND = 15.0


@dataclass(frozen=True, eq=False)
class GlmmData:
    """One data set and grouping, checked: what a fit needs.

    ``z_cols`` index the outermost level's random-effect columns in ``[X, y, z_extra]`` as in
    the linear engine (0 = the intercept).
    """

    x: np.ndarray
    y: np.ndarray
    trials: np.ndarray | None
    z_extra: np.ndarray
    z_cols: tuple[int, ...]
    codes: tuple[np.ndarray, ...]
    family: str
    #: log-likelihood terms that do not depend on the parameters (log binomial coefficients,
    #: -log y! for counts), so that the deviance is glmer's -2 log-likelihood.
    constant: float
    #: where each innermost group's pupils start, when the rows are sorted by innermost group
    #: and no group is empty (then per-group sums are contiguous, ``np.add.reduceat``, and
    #: spreading a per-group value over its pupils is ``np.repeat``); None otherwise
    inner_starts: np.ndarray | None = None

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def p(self) -> int:
        return self.x.shape[1]

    @property
    def q(self) -> int:
        return len(self.z_cols)

    @property
    def n_levels(self) -> int:
        return len(self.codes)

    @cached_property
    def y_minus_one(self) -> np.ndarray:
        """m (y - 1) per row (m the trials, 1 without): the log-likelihood's eta weights."""
        return (self.y - 1.0) if self.trials is None else (self.y - 1.0) * self.trials

    @cached_property
    def eta_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The log-likelihood's weights on eta, m (y - 1) (logit) or y (log), summed as
        X'(weights) and per innermost group (its linear part: the rest needs the means)."""
        weights = self.y_minus_one if self.family == "binomial" else self.y
        return self.skeleton.xt @ weights, _inner_sums(self, weights)

    @cached_property
    def work(self) -> _Work:
        """Reusable per-pupil buffers (see :class:`_Work`)."""
        return _Work(self.n)

    @cached_property
    def skeleton(self) -> _Skeleton:
        """The grouping's tree and transposed design, computed once."""
        return _skeleton(self)

    def z_matrix(self) -> np.ndarray:
        """The outermost level's random-effect columns per pupil (n x q)."""
        cols = []
        for c in self.z_cols:
            cols.append(self.x[:, c] if c < self.p else self.z_extra[:, c - self.p - 1])
        return np.column_stack(cols)


def make_data(x, y, trials, z_extra, z_cols, codes, family) -> GlmmData:
    """Bundle checked arrays, computing the log-likelihood constant.

    The rows are reordered by innermost group (the likelihood does not depend on their order):
    every per-group sum then reads contiguous memory, which is what each PIRLS pass spends its
    time on at national scale.
    """
    inner = np.asarray(codes[-1])
    if inner.size > 1 and not bool((inner[1:] >= inner[:-1]).all()):
        order = np.argsort(inner)  # any order within a group will do; quicksort is fastest
        x, y, z_extra = x[order], y[order], z_extra[order]
        trials = None if trials is None else trials[order]
        codes = [np.asarray(c)[order] for c in codes]
        inner = codes[-1]
    counts = np.bincount(inner)
    starts = None
    if counts.size and bool((counts > 0).all()):
        starts = np.concatenate([[0], np.cumsum(counts[:-1])])
    if family == "binomial":
        if trials is None:
            constant = 0.0  # log C(1, k) = 0 for a 0/1 outcome
        else:
            k = np.round(y * trials)
            constant = float(
                (
                    special.gammaln(trials + 1)
                    - special.gammaln(k + 1)
                    - special.gammaln(trials - k + 1)
                ).sum()
            )
    else:
        constant = float(-special.gammaln(y + 1).sum())
    return GlmmData(
        x=x,
        y=y,
        trials=trials,
        z_extra=z_extra,
        z_cols=tuple(z_cols),
        codes=tuple(codes),
        family=family,
        constant=constant,
        inner_starts=starts,
    )


def _inner_sums(d: GlmmData, values: np.ndarray) -> np.ndarray:
    """Per innermost group sums of a per-pupil quantity."""
    if d.inner_starts is not None:
        return np.add.reduceat(values, d.inner_starts)
    return np.bincount(d.codes[-1], weights=values, minlength=d.skeleton.n_groups[-1])


def _spread(d: GlmmData, per_inner: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """A per innermost group quantity, per pupil (into ``out`` if given)."""
    if out is not None:
        return np.take(per_inner, d.codes[-1], out=out)
    if d.inner_starts is not None:
        return np.repeat(per_inner, d.skeleton.inner_counts)
    return per_inner[d.codes[-1]]


class _Work:
    """Per-pupil buffers reused by every PIRLS pass of a fit.

    A fresh array of a million doubles costs more to allocate (the operating system maps and
    zeroes its pages) than most of the arithmetic done on it, so each pass writes into these
    instead. Two sets hold the family at the current and at the candidate linear predictor;
    ``scratch`` and ``scratch2`` hold values that live only inside one function.
    """

    def __init__(self, n: int):
        self.n = n
        self._buffers: dict = {}

    def __call__(self, name: str, rows: int = 0) -> np.ndarray:
        buffer = self._buffers.get((name, rows))
        if buffer is None:
            shape = (rows, self.n) if rows else self.n
            buffer = self._buffers[(name, rows)] = np.empty(shape)
        return buffer


# ---------------------------------------------------------------------- family
@dataclass(frozen=True, eq=False)
class _At:
    """The family at one linear predictor: working weights, the mean (binomial), score
    residuals m(y - mu) and the log-likelihood (without the constant)."""

    eta: np.ndarray
    w: np.ndarray
    mu: np.ndarray | None
    resid: np.ndarray
    loglik: float


def _family(d: GlmmData, eta: np.ndarray, slot: int) -> _At:
    """One pass of elementwise work: exp once, then arithmetic in place into the buffers of
    ``slot`` (0 or 1, see :class:`_Work`); no expit/logaddexp, which are several times slower
    than exp."""
    work = d.work
    resid = work(f"resid{slot}")
    if d.family == "binomial":
        # e = exp(-eta), bounded where mu is 0 to double precision anyway (no overflow).
        e = np.maximum(eta, -700.0, out=work("scratch"))
        np.negative(e, out=e)
        np.exp(e, out=e)
        mu = np.add(e, 1.0, out=work(f"mu{slot}"))
        np.reciprocal(mu, out=mu)
        w = np.multiply(e, mu, out=work(f"w{slot}"))
        w *= mu  # mu (1 - mu) without cancellation as mu -> 1
        np.subtract(d.y, mu, out=resid)
        # The log-likelihood m((y - 1) eta - log(1 + e^-eta)), summed per pupil first: two
        # large sums subtracted would lose digits that the optimiser's line search sees.
        np.log1p(e, out=e)
        if d.trials is not None:
            w *= d.trials
            resid *= d.trials
            e *= d.trials
        terms = np.multiply(d.y_minus_one, eta, out=work("scratch2"))
        terms -= e
        return _At(eta, w, mu, resid, float(terms.sum()))
    mu = np.exp(eta, out=work(f"mu{slot}"))
    np.subtract(d.y, mu, out=resid)
    terms = np.multiply(d.y, eta, out=work("scratch2"))
    terms -= mu
    return _At(eta, mu, None, resid, float(terms.sum()))


def _linear_predictor(d: GlmmData, beta, top, lower, slot: int) -> np.ndarray:
    """X beta + Z b into the buffer of ``slot``."""
    eta = np.dot(beta, d.skeleton.xt, out=d.work(f"eta{slot}"))
    eta += _random_part(d, d.skeleton.zt.T, top, lower, out=d.work("scratch"))
    return eta


def _loglik(d: GlmmData, eta: np.ndarray) -> np.ndarray:
    """Per-pupil log-likelihood without the constant."""
    if d.family == "binomial":
        terms = d.y * eta - np.logaddexp(0.0, eta)
        return terms if d.trials is None else terms * d.trials
    return d.y * eta - np.exp(eta)


@dataclass(frozen=True, eq=False)
class _Skeleton:
    """The grouping's tree, computed once per data set."""

    n_groups: tuple[int, ...]
    parent: tuple
    top_of: tuple
    xt: np.ndarray  # X transposed, rows contiguous
    x_sd: np.ndarray  # SDs of the covariates (not the intercept), for the separation check
    zt: np.ndarray  # the outermost level's random-effect columns, transposed
    inner_counts: np.ndarray  # pupils per innermost group
    #: per level, each innermost group's group at that level (the innermost: None)
    inner_up: tuple
    #: rows sorted by innermost group: blocks of whole groups, (first row, end row, first
    #: group, end group, the groups' starts within the block); empty otherwise
    blocks: tuple = ()
    #: the linear engine's sparse matrices summing each level's groups into their parents
    #: and into their top-level groups (``_engine.Structure``)
    to_parent: tuple = ()
    to_top: tuple = ()


#: Rows per block of a pass over the pupils: the block's temporaries stay in cache.
BLOCK_ROWS = 1 << 14


def _blocks(starts: np.ndarray | None, counts: np.ndarray, n: int) -> tuple:
    """Blocks of about ``BLOCK_ROWS`` rows made of whole innermost groups."""
    if starts is None:
        return ()
    cuts = np.searchsorted(starts, np.arange(BLOCK_ROWS, n, BLOCK_ROWS))
    bounds = np.unique(np.concatenate([[0], cuts, [len(starts)]]))
    out = []
    for g0, g1 in zip(bounds[:-1], bounds[1:], strict=True):
        r0 = int(starts[g0])
        r1 = int(starts[g1 - 1] + counts[g1 - 1])
        out.append((r0, r1, int(g0), int(g1), starts[g0:g1] - r0))
    return tuple(out)


def _skeleton(d: GlmmData) -> _Skeleton:
    n_groups = tuple(int(c.max()) + 1 for c in d.codes)
    parent: list = [None]
    top_of: list = [np.arange(n_groups[0])]
    for level in range(1, d.n_levels):
        up = np.empty(n_groups[level], dtype=np.int64)
        up[d.codes[level]] = d.codes[level - 1]
        parent.append(up)
        top_of.append(top_of[level - 1][up])
    inner_up: list = [None]
    for level in range(d.n_levels - 2, -1, -1):
        below = inner_up[0]
        inner_up.insert(0, parent[level + 1] if below is None else parent[level + 1][below])
    counts = np.bincount(d.codes[-1], minlength=n_groups[-1])
    levels = range(1, d.n_levels)
    to_parent = (None,) + tuple(
        _engine._summing_matrix(parent[lv], n_groups[lv - 1]) for lv in levels
    )
    to_top = (None,) + tuple(
        _engine._summing_matrix(top_of[lv], n_groups[0]) if d.q > 1 else None for lv in levels
    )
    xt = np.ascontiguousarray(d.x.T)
    return _Skeleton(
        n_groups,
        tuple(parent),
        tuple(top_of),
        xt,
        xt[1:].std(axis=1),  # contiguous rows: several times faster than columns of x
        np.ascontiguousarray(d.z_matrix().T),
        counts,
        tuple(inner_up),
        _blocks(d.inner_starts, counts, d.n),
        to_parent,
        to_top,
    )


def _structure(d: GlmmData, sk: _Skeleton, w: np.ndarray, eta: np.ndarray, resid: np.ndarray):
    """The linear engine's sufficient statistics of the working model (weights ``w``, working
    response ``eta + resid / w``): as ``_engine.build_structure``, with X held transposed so
    that every column product and per-group sum runs over contiguous memory. The working
    response enters only multiplied by ``w``, as ``w eta + resid``; its weighted sum of squares
    (the linear model's residual term) is not needed and is left at 0."""
    p = d.p
    g = sk.n_groups[-1]
    extra = list(d.z_extra.T) if d.z_extra.shape[1] else []
    wz = np.multiply(w, eta, out=d.work("scratch"))
    wz += resid
    wx = np.multiply(sk.xt, w, out=d.work("wx", p))
    inner_sums = np.empty((g, p + 1 + len(extra)))
    for j in range(p):
        inner_sums[:, j] = _inner_sums(d, wx[j])
    inner_sums[:, p] = _inner_sums(d, wz)
    for j, c in enumerate(extra):
        inner_sums[:, p + 1 + j] = _inner_sums(d, w * c)
    cross = np.zeros((p + 1, p + 1))
    cross[:p, :p] = wx @ sk.xt.T
    cross[:p, :p] = (cross[:p, :p] + cross[:p, :p].T) / 2.0
    cross[:p, p] = cross[p, :p] = sk.xt @ wz
    top_raw = None
    if d.q > 1:
        columns = [*sk.xt, None, *extra]
        weighted = [*wx, wz, *(w * c for c in extra)]
        top = d.codes[0]
        top_raw = np.empty((sk.n_groups[0], d.q, len(weighted)))
        for i, zc in enumerate(d.z_cols):
            for j, wc in enumerate(weighted):
                top_raw[:, i, j] = np.bincount(
                    top, weights=wc * columns[zc], minlength=sk.n_groups[0]
                )
    return _engine.Structure(
        n=d.n,
        p=p,
        q=d.q,
        z_cols=d.z_cols,
        n_groups=sk.n_groups,
        parent=sk.parent,
        top_of=sk.top_of,
        inner_n=inner_sums[:, 0].copy(),
        inner_sums=inner_sums,
        cross=cross,
        top_raw=top_raw,
        to_parent=sk.to_parent,
        to_top=sk.to_top,
    )


# ---------------------------------------------------------------------- random effects
@dataclass(frozen=True, eq=False)
class State:
    """Fixed effects and random effects b = Lambda u (outermost (G0, q), then per level)."""

    beta: np.ndarray
    top: np.ndarray
    lower: tuple[np.ndarray, ...]


def _random_part(d: GlmmData, zmat: np.ndarray, top: np.ndarray, lower, out=None) -> np.ndarray:
    """Z b per pupil: the nested intercepts added up per innermost group, then one spread
    over the pupils (and the outermost level's slopes, if any)."""
    sk = d.skeleton
    if d.q == 1:
        return _spread(d, _per_inner(sk, top[:, 0], lower), out)
    out = _spread(d, _per_inner(sk, None, lower), out)
    for i in range(d.q):
        out += zmat[:, i] * top[d.codes[0], i]
    return out


def _per_inner(sk: _Skeleton, top: np.ndarray | None, lower) -> np.ndarray:
    """The nested random intercepts (outermost ``top`` too, unless None) added up per
    innermost group."""
    total = np.zeros(sk.n_groups[-1])
    for level, b in enumerate([top, *lower]):
        if b is not None:
            up = sk.inner_up[level]
            total += b if up is None else b[up]
    return total


def _u_squared(phi: np.ndarray, st: _engine.Structure, top, lower) -> float:
    """||u||^2 with b = Lambda u (u is the minimum-norm solution, as the mode is, when Lambda
    is singular)."""
    lam, thetas = _engine.unpack(st, phi)
    if st.q == 1:
        total = float((top[:, 0] ** 2).sum() / lam[0, 0] ** 2) if lam[0, 0] > 0 else 0.0
    else:
        u = top @ np.linalg.pinv(lam).T
        total = float((u**2).sum())
    for theta, b in zip(thetas, lower, strict=True):
        if theta > 0:
            total += float((b**2).sum()) / theta**2
    return total


def _shape(d: GlmmData):
    """A stand-in with the attributes ``_engine.unpack`` reads."""

    class Shape:
        q = d.q
        n_levels = d.n_levels

    return Shape


def _project(phi: np.ndarray, d: GlmmData, start: State):
    """A warm start's random effects made possible under ``phi``: b = Lambda u must lie in
    Lambda's range (a level with variance zero has b = 0), or its penalty would be missed."""
    k = d.q * (d.q + 1) // 2
    thetas = phi[k:]
    lower = tuple(
        b if t > 0 else np.zeros_like(b) for t, b in zip(thetas, start.lower, strict=True)
    )
    return lower


def _leverage_terms(d: GlmmData | None, st: _engine.Structure, ev: _engine.Evaluation, zmat):
    r"""Per pupil :math:`z_i^\top\Lambda H^{-1}\Lambda^\top z_i` (see the module docstring);
    with ``d`` None (random intercepts only), per innermost group."""
    q = st.q
    zc = list(st.z_cols)
    if q == 1:
        core = (ev.lam[0, 0] ** 2 / ev.k_top[:, 0, 0])[:, None, None]
    else:
        core = np.einsum("ai,gij,bj->gab", ev.lam, np.linalg.inv(ev.k_top), ev.lam)
    g_prev = v_prev = None
    for level, (_, r_sum, kappa, f) in zip(range(1, st.n_levels), reversed(ev.levels), strict=True):
        r_z = r_sum[:, zc]
        if g_prev is None:
            g_now, v_now = kappa[:, None] * r_z, kappa.copy()
        else:
            up = st.parent[level]
            g_now = f[:, None] * g_prev[up] + kappa[:, None] * r_z
            v_now = kappa + f**2 * v_prev[up]
        g_prev, v_prev = g_now, v_now
    if q == 1:  # the same for every pupil of an innermost group
        if g_prev is None:
            per_inner = core[:, 0, 0]
        else:
            per_inner = (1.0 - g_prev[:, 0]) ** 2 * core[st.top_of[-1], 0, 0] + v_prev
        return per_inner if d is None else _spread(d, per_inner, d.work("a"))
    top_c = core[d.codes[0]]
    if g_prev is None:
        return np.einsum("ni,nij,nj->n", zmat, top_c, zmat)
    dev = zmat - g_prev[d.codes[-1]]
    return np.einsum("ni,nij,nj->n", dev, top_c, dev) + v_prev[d.codes[-1]]


def _logdet_gradient(d, st, ev, phi, zmat, w, mu):
    r"""Total derivative of :math:`\log|H|` in :math:`\beta` (module docstring); ``mu`` the
    means for the logit link (:math:`W'/W = 1 - 2\mu`), None for the log link."""
    a = _leverage_terms(d, st, ev, zmat)
    a *= w
    if mu is not None:
        dlog = np.multiply(mu, -2.0, out=d.work("scratch"))
        dlog += 1.0
        a *= dlog
    p = st.p
    inner_sums = st.inner_sums.copy()
    inner_sums[:, p] = _inner_sums(d, a)
    top_raw = st.top_raw
    if top_raw is not None:
        top_raw = top_raw.copy()
        for i in range(st.q):
            top_raw[:, i, p] = np.bincount(
                d.codes[0], weights=a * zmat[:, i], minlength=st.n_groups[0]
            )
    md = _engine.modes(replace(st, inner_sums=inner_sums, top_raw=top_raw), phi, np.zeros(p))
    smoothed = _random_part(d, zmat, md.top, md.lower, out=d.work("scratch"))
    smoothed *= w
    np.subtract(a, smoothed, out=a)
    return _LogdetGradient(d.skeleton.xt @ a, inner_sums[:, p], md)


@dataclass(frozen=True, eq=False)
class _LogdetGradient:
    r"""The total derivative of :math:`\log|H|` in :math:`\beta`, and what it was made of:
    per innermost group the sums of :math:`a`, and :math:`s = \Lambda H^{-1}\Lambda^\top
    Z^\top a` per group, which the theta-gradient reuses."""

    beta: np.ndarray
    a_sums: np.ndarray
    smooth: _engine.Modes


def _up(values: np.ndarray, sk: _Skeleton, level: int) -> np.ndarray:
    """Sums of an innermost-level quantity per group of ``level`` (the groups are nested)."""
    for lv in range(len(sk.n_groups) - 1, level, -1):
        values = np.bincount(sk.parent[lv], weights=values, minlength=sk.n_groups[lv - 1])
    return values


def _theta_gradient(d, sk, phi, modes, top, lower, r_inner, inner_weight, lg: _LogdetGradient):
    r"""Derivative of the Laplace deviance in the relative SDs :math:`\theta_l` of scalar
    random intercepts, at fixed :math:`\beta` (random intercepts only: ``None`` with slopes).

    With :math:`b_h = \theta_l u_h` the modes, :math:`R_h`, :math:`A_h` and :math:`Q_h` the
    group sums of the score residuals, of :math:`a` (module docstring) and of
    :math:`W_i(Zs)_i`, :math:`s_h = \theta_l v_h` the smoothed :math:`a`, and
    :math:`\mathrm{Var}(b_h\mid y)` the conditional variances,

    .. math::
        \frac{\partial d}{\partial\theta_l} = -2\sum_h R_h u_h
        + \frac{2}{\theta_l}\sum_h\Bigl(1 - \frac{\mathrm{Var}(b_h\mid y)}{\theta_l^2}\Bigr)
        + \sum_h \bigl(A_h u_h + v_h R_h - u_h Q_h\bigr):

    the direct term of :math:`-2\log p(y\mid\tilde u)` (the penalised likelihood is stationary
    in :math:`u`), :math:`\operatorname{tr}(H^{-1}\partial H/\partial\theta_l)` at fixed
    weights, and the weights' change through the mode,
    :math:`\sum_i a_i (Z\,\mathrm{d}b/\mathrm{d}\theta_l)_i` with
    :math:`H\,\mathrm{d}u/\mathrm{d}\theta_l = \partial\Lambda^\top Z^\top r
    - \Lambda^\top Z^\top W Z\,\partial\Lambda u`. At :math:`\theta_l = 0` the deviance,
    a function of :math:`\theta_l^2`, is stationary: the derivative is 0.
    """
    if d.q > 1:
        return None
    # Zs is constant within an innermost group: Q_h = (Zs)_h times the group's total weight.
    q_inner = _per_inner(sk, lg.smooth.top[:, 0], lg.smooth.lower) * inner_weight
    grad = np.zeros(len(phi))
    for level in range(d.n_levels):
        theta = float(phi[level])
        if theta <= 0.0:
            continue
        if level == 0:
            b, s, var = top[:, 0], lg.smooth.top[:, 0], modes.top_var[:, 0]
        else:
            b, s, var = lower[level - 1], lg.smooth.lower[level - 1], modes.lower_var[level - 1]
        r_sum = _up(r_inner, sk, level)
        u, v = b / theta, s / theta
        grad[level] = (
            -2.0 * (r_sum @ u)
            + 2.0 / theta * float((1.0 - var / theta**2).sum())
            + _up(lg.a_sums, sk, level) @ u
            + v @ r_sum
            - u @ _up(q_inner, sk, level)
        )
    return grad


# ---------------------------------------------------------------------- one point
class _PupilPoint:
    """The family at one (beta, b), kept per pupil: the general case (random slopes, or rows
    that cannot be cut into blocks of whole groups)."""

    def __init__(self, d: GlmmData, beta, top, lower, slot: int):
        self.d = d
        self.at = _family(d, _linear_predictor(d, beta, top, lower, slot), slot)
        self.loglik = self.at.loglik
        self.finite = bool(np.isfinite(self.loglik) and np.isfinite(self.at.eta.sum()))

    def structure(self) -> _engine.Structure:
        at = self.at
        w = np.maximum(at.w, 1e-300, out=at.w)
        return _structure(self.d, self.d.skeleton, w, at.eta, at.resid)

    def logdet_gradient(self, st, ev, phi) -> _LogdetGradient:
        d = self.d
        return _logdet_gradient(d, st, ev, phi, d.skeleton.zt.T, self.at.w, self.at.mu)

    def theta_gradient(self, phi, md, top, lower, st, lg):
        d = self.d
        r_inner = _inner_sums(d, self.at.resid)
        return _theta_gradient(d, d.skeleton, phi, md, top, lower, r_inner, st.inner_n, lg)

    def score(self) -> np.ndarray:
        return self.d.skeleton.xt @ self.at.resid


class _SumsPoint:
    r"""The family at one (beta, b) reduced, block by block of whole innermost groups, to
    the per-group sums that a PIRLS step needs (random intercepts only): per innermost group
    the sums of :math:`W x_j`, of :math:`W\eta + r` (the weighted working response), of
    :math:`(W'/W) W x_j` (logit link; the log link has :math:`W'/W = 1`) and of the score
    residuals :math:`r`, and :math:`X^\top W X`, :math:`X^\top(W\eta + r)`,
    :math:`X^\top r`. Since the leverages and the smoothed values are constant within an
    innermost group, the log-det gradients are then sums over groups: one pass over the
    pupils per PIRLS iteration, and no per-pupil array outlives its block."""

    def __init__(self, d: GlmmData, beta, top, lower):
        sk = d.skeleton
        p = d.p
        binomial = d.family == "binomial"
        b_inner = _per_inner(sk, top[:, 0], lower)
        # sums: W x_j (p), then W eta + r, [(W'/W) W x_j (p),] r per innermost group
        sums = np.empty((sk.n_groups[-1], 2 * p + 2 if binomial else p + 2))
        xx, score = np.zeros((p, p)), np.zeros(p)
        log_term = 0.0  # sum of m log(1 + e^-eta) (logit) or of mu (log)
        for r0, r1, g0, g1, local in sk.blocks:
            xt = sk.xt[:, r0:r1]
            eta = np.repeat(b_inner[g0:g1], sk.inner_counts[g0:g1])
            eta += beta @ xt
            if binomial:
                e = np.maximum(eta, -700.0, out=eta)  # exp(-eta) as in _family
                np.negative(e, out=e)
                np.exp(e, out=e)
                mu = e + 1.0
                np.reciprocal(mu, out=mu)
                w = e * mu
                w *= mu
                resid = d.y[r0:r1] - mu
                np.log1p(e, out=e)
                if d.trials is not None:
                    m = d.trials[r0:r1]
                    w *= m
                    resid *= m
                    e *= m
                log_term += float(e.sum())
            else:
                w = np.exp(eta, out=eta)
                resid = d.y[r0:r1] - w
                log_term += float(w.sum())
            wx = xt * w
            sums[g0:g1, :p] = np.add.reduceat(wx, local, axis=1).T
            sums[g0:g1, -1] = np.add.reduceat(resid, local)
            xx += wx @ xt.T
            score += xt @ resid
            if binomial:
                mu *= -2.0
                mu += 1.0  # W'/W = 1 - 2 mu
                wx *= mu
                sums[g0:g1, p + 1 : 2 * p + 1] = np.add.reduceat(wx, local, axis=1).T
        # eta = x'beta + b_h is linear within a group, so every sum of (weight x) eta is one
        # of groups: sum W eta = (sum W x)'beta + b_h sum W, and the log-likelihood's
        # sum m (y - 1) eta (logit) or sum y eta (log) from sums of the data made once.
        weight = sums[:, 0]
        sums[:, p] = sums[:, :p] @ beta + b_inner * weight + sums[:, -1]
        xz = xx @ beta + sums[:, :p].T @ b_inner + score
        eta_x, eta_inner = d.eta_weights
        loglik = float(eta_x @ beta + eta_inner @ b_inner) - log_term
        self.d = d
        self.loglik = loglik
        self.finite = bool(np.isfinite(loglik) and np.isfinite(xz).all())
        self.sums = sums
        self.score_ = score
        cross = np.zeros((p + 1, p + 1))
        cross[:p, :p] = (xx + xx.T) / 2.0
        cross[:p, p] = cross[p, :p] = xz
        self.cross = cross

    def structure(self) -> _engine.Structure:
        d, sk, p = self.d, self.d.skeleton, self.d.p
        return _engine.Structure(
            n=d.n,
            p=p,
            q=1,
            z_cols=d.z_cols,
            n_groups=sk.n_groups,
            parent=sk.parent,
            top_of=sk.top_of,
            inner_n=self.sums[:, 0].copy(),
            inner_sums=self.sums[:, : p + 1],
            cross=self.cross,
            top_raw=None,
            to_parent=sk.to_parent,
            to_top=sk.to_top,
        )

    def _weighted_dlog(self) -> np.ndarray:
        p = self.d.p
        return self.sums[:, p + 1 : 2 * p + 1] if self.d.family == "binomial" else self.sums[:, :p]

    def logdet_gradient(self, st, ev, phi) -> _LogdetGradient:
        p = st.p
        lev = _leverage_terms(None, st, ev, None)
        wd = self._weighted_dlog()
        a_sums = lev * wd[:, 0]
        md = _smoothed(st, ev, phi, a_sums)
        smoothed = _per_inner(self.d.skeleton, md.top[:, 0], md.lower)
        grad = lev @ wd - smoothed @ st.inner_sums[:, :p]
        return _LogdetGradient(grad, a_sums, md)

    def theta_gradient(self, phi, md, top, lower, st, lg):
        d = self.d
        r_inner = self.sums[:, -1]
        return _theta_gradient(d, d.skeleton, phi, md, top, lower, r_inner, st.inner_n, lg)

    def score(self) -> np.ndarray:
        return self.score_


def _smoothed(st: _engine.Structure, ev: _engine.Evaluation, phi, a_sums) -> _engine.Modes:
    r""":math:`s = \Lambda H^{-1}\Lambda^\top Z^\top a` for random intercepts, given the
    innermost groups' sums of :math:`a`: ``_engine.modes`` of the working model with
    :math:`a/W` as its response and :math:`\beta = 0`, reusing its evaluation ``ev`` (only the
    response's column of the recursion changes, so it alone is carried up the tree and back
    down). Conditional variances are not computed (``top_var``, ``lower_var`` empty)."""
    _, thetas = _engine.unpack(st, phi)
    levels = ev.levels  # innermost first: (S, R, kappa, f)
    column = {}
    c = a_sums
    for i, level in enumerate(range(st.n_levels - 1, 0, -1)):
        f = levels[i][3]
        column[level] = c
        to_parent = st.to_parent[level] if st.to_parent else None
        c = _engine._group_sums(c * f, st.parent[level], to_parent, st.n_groups[level - 1])
    top = (ev.lam[0, 0] ** 2 / ev.k_top[:, 0, 0]) * c
    lower = []
    carried = None
    for level, (s_sum, r_sum, kappa, f) in zip(
        range(1, st.n_levels), reversed(levels), strict=True
    ):
        r_e = column[level] - r_sum[:, 0] * top[st.top_of[level]]
        t = f * r_e
        if carried is None:
            carried = kappa * r_e
        else:
            up = st.parent[level]
            t -= s_sum * f * carried[up]
            carried = kappa * r_e + f * carried[up]
        lower.append(thetas[level - 1] ** 2 * t)
    return _engine.Modes(
        top=top[:, None], top_var=np.empty((0, 1)), lower=tuple(lower), lower_var=()
    )


def _point(d: GlmmData, beta, top, lower, slot: int):
    """The family at (beta, b): by per-group sums where the model allows, else per pupil."""
    if d.q == 1 and d.skeleton.blocks:
        return _SumsPoint(d, beta, top, lower)
    return _PupilPoint(d, beta, top, lower, slot)


# ---------------------------------------------------------------------- conditional modes
@dataclass(frozen=True, eq=False)
class Solved:
    """The state at the conditional mode and what was computed there."""

    state: State
    deviance: float
    structure: _engine.Structure
    iterations: int
    #: the deviance's gradient in beta (at convergence)
    gradient: np.ndarray | None
    #: its gradient in the variance parameters at fixed beta (when asked for; None with
    #: random slopes, where it is not computed analytically)
    theta_gradient: np.ndarray | None = None
    #: the log-det gradient in beta at convergence (with update_beta)
    logdet_gradient: np.ndarray | None = None


def solve(d: GlmmData, phi: np.ndarray, start: State, **options) -> Solved:
    """Conditional modes by PIRLS at ``phi`` (and the optimal beta when ``update_beta``).

    Returns the Laplace deviance at the converged point. A failure with fixed effects running
    off to infinity is reported as :class:`Separation`.
    """
    try:
        return _solve(d, phi, start, **options)
    except _Failed as failed:
        _check_separation(d, failed.beta)
        raise failed.error from None


class _Failed(Exception):
    def __init__(self, beta, error):
        super().__init__(str(error))
        self.beta, self.error = beta, error


def _solve(
    d: GlmmData,
    phi: np.ndarray,
    start: State,
    *,
    update_beta: bool,
    gradient: bool = False,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> Solved:
    """:func:`solve`'s PIRLS. Each iteration is one pass over the pupils (weights, working
    response, per-group sums) and group-level work."""
    beta, lower = start.beta, _project(phi, d, start)
    lam = _engine.unpack(_shape(d), phi)[0]
    top = start.top @ (lam @ np.linalg.pinv(lam)).T
    slot = 0
    pt = _point(d, beta, top, lower, slot)
    p = d.p
    last_step = None  # the previous iteration's change in beta
    for iteration in range(1, max_iter + 1):
        if not pt.finite:
            raise _Failed(beta, FloatingPointError("the linear predictor is not finite"))
        st = pt.structure()
        ev = _engine.evaluate(st, phi, keep=True)
        loglik = pt.loglik
        usq = _u_squared(phi, st, top, lower)
        here = -2.0 * loglik + usq + ev.logdet - 2.0 * d.constant
        lg = None
        if update_beta:
            lg = pt.logdet_gradient(st, ev, phi)
            grad_ld = lg.beta
            q_xy = ev.q_xy
            try:
                new_beta = np.linalg.solve(q_xy[:p, :p], q_xy[:p, p] - grad_ld / 2.0)
            except np.linalg.LinAlgError as error:
                raise _Failed(beta, error) from None
            new_beta, last_step = _extrapolated(beta, new_beta, last_step)
        else:
            grad_ld = np.zeros(p)
            new_beta = beta
        md = _engine.modes(st, phi, new_beta, ev)
        new_top, new_lower = md.top, md.lower
        step = max(
            float(np.max(np.abs(new_beta - beta))),
            float(np.max(np.abs(new_top - top))),
            *(float(np.max(np.abs(a - b))) for a, b in zip(new_lower, lower, strict=True)),
        )
        if step < tol:
            theta_grad = None
            if gradient:
                if lg is None:
                    lg = pt.logdet_gradient(st, ev, phi)
                theta_grad = pt.theta_gradient(phi, md, top, lower, st, lg)
            grad_ld = grad_ld if lg is None else lg.beta
            return Solved(
                State(beta, top, lower),
                here,
                st,
                iteration,
                grad_ld - 2.0 * pt.score(),
                theta_grad,
                grad_ld if update_beta else None,
            )
        # Step halving on the penalised deviance (with the log-det gradient held fixed).
        current = -2.0 * loglik + usq + grad_ld @ beta
        for _ in range(30):
            new_pt = _point(d, new_beta, new_top, new_lower, 1 - slot)
            value = (
                -2.0 * new_pt.loglik + _u_squared(phi, st, new_top, new_lower) + grad_ld @ new_beta
            )
            if np.isfinite(value) and value <= current + 1e-10 * max(1.0, abs(current)):
                break
            new_beta = (beta + new_beta) / 2.0
            new_top = (top + new_top) / 2.0
            new_lower = tuple((a + b) / 2.0 for a, b in zip(lower, new_lower, strict=True))
        beta, top, lower, pt, slot = new_beta, new_top, new_lower, new_pt, 1 - slot
    _check_separation(d, beta)  # a fixed effect running off is why it did not converge
    return Solved(State(beta, top, lower), here, st, max_iter, None, None)


def _extrapolated(beta, new_beta, last_step):
    """Aitken's extrapolation of the fixed effects' iteration. Near the mode the modes converge
    quadratically but beta linearly (the log-det gradient is held at the previous beta), each
    error a fixed fraction rho (about 1e-2) of the last; with rho measured from two successive
    steps, the limit is ``new_beta + rho / (1 - rho) * step``. Used only once the steps are
    small and shrink at a steady rate; the iteration still stops only when a step is below the
    tolerance, so this changes how fast the fixed point is reached, not which."""
    step = new_beta - beta
    if last_step is not None and float(np.max(np.abs(step))) < 1e-4:
        denominator = float(last_step @ last_step)
        rho = float(step @ last_step) / denominator if denominator > 0 else 0.0
        if 0.0 < rho < 0.5:
            return new_beta + rho / (1.0 - rho) * step, step
    return new_beta, step


def agq_deviance(d: GlmmData, phi: np.ndarray, solved: Solved, n_agq: int) -> float:
    """Adaptive Gauss-Hermite deviance at the conditional modes (one level, intercept)."""
    theta = float(phi[0])
    st = solved.structure
    beta, top = solved.state.beta, solved.state.top[:, 0]
    if theta == 0.0:
        return solved.deviance
    u_mode = top / theta
    sd = 1.0 / np.sqrt(1.0 + theta**2 * st.inner_n)
    nodes, weights = np.polynomial.hermite.hermgauss(n_agq)
    fixed = d.x @ beta
    codes = d.codes[0]
    g = st.n_groups[0]

    def group_f(u):
        ll = np.bincount(codes, weights=_loglik(d, fixed + theta * u[codes]), minlength=g)
        return -2.0 * ll + u**2

    f_mode = group_f(u_mode)
    total = np.zeros(g)
    for t, wk in zip(nodes, weights, strict=True):
        f_k = f_mode if t == 0.0 else group_f(u_mode + np.sqrt(2.0) * sd * t)
        total += wk * np.exp(t**2 - (f_k - f_mode) / 2.0)
    per_group = f_mode - 2.0 * np.log(sd / np.sqrt(np.pi) * total)
    return float(per_group.sum()) - 2.0 * d.constant


# ---------------------------------------------------------------------- optimisation
@dataclass(frozen=True, eq=False)
class GlmmFit:
    """The optimum over (theta, beta) and what the result needs."""

    phi: np.ndarray
    beta: np.ndarray
    cov: np.ndarray
    deviance: float
    modes: _engine.Modes
    structure: _engine.Structure
    converged: bool
    message: str
    hessian_used: bool


class Separation(Exception):
    """A fixed effect runs off to infinity (complete or quasi-complete separation)."""

    def __init__(self, columns: list[int]):
        super().__init__(columns)
        self.columns = columns


def _start_state(d: GlmmData, n_params_top: int) -> State:
    """beta from the link of the overall mean; random effects at zero."""
    if d.family == "binomial":
        m = np.ones_like(d.y) if d.trials is None else d.trials
        mean = float((d.y * m).sum() / m.sum())
        first = float(special.logit(mean))
    else:
        first = float(np.log(d.y.mean()))
    beta = np.zeros(d.p)
    beta[0] = first
    n_groups = [int(c.max()) + 1 for c in d.codes]
    return State(beta, np.zeros((n_groups[0], d.q)), tuple(np.zeros(g) for g in n_groups[1:]))


def _bounds(d: GlmmData) -> list[tuple[float | None, float | None]]:
    bounds = []
    for j in range(d.q):
        for i in range(j, d.q):
            bounds.append((0.0, None) if i == j else (None, None))
    return bounds + [(0.0, None)] * (d.n_levels - 1)


def _start_phi(d: GlmmData) -> np.ndarray:
    start = []
    for j in range(d.q):
        for i in range(j, d.q):
            start.append(1.0 if i == j else 0.0)
    return np.array(start + [1.0] * (d.n_levels - 1))


def _check_separation(d: GlmmData, beta: np.ndarray) -> None:
    sd = d.skeleton.x_sd
    scaled = np.abs(beta[1:]) * np.where(sd > 0, sd, 1.0)
    runaway = [j + 1 for j in np.flatnonzero(scaled > SEPARATION_BOUND)]
    if abs(beta[0]) > 2 * SEPARATION_BOUND:
        runaway = [0, *runaway]
    if runaway:
        raise Separation(runaway)


#: PIRLS tolerance (largest change in beta or a mode) along the quasi-Newton path: the gradient
#: it leaves is off by about this times the deviance's curvature, far below the gradients the
#: search acts on until its last steps, which stop within 1e-8 of the optimum; the optimum
#: itself, the Newton polish and the Hessian are solved to the default 1e-10.
PATH_TOL = 1e-8


class _Profile:
    """The deviance profiled over beta as a function of phi, warm-starting every solve."""

    def __init__(self, d: GlmmData, n_agq: int):
        self.d = d
        self.n_agq = n_agq
        self.state = _start_state(d, d.q)
        self.last: Solved | None = None
        self.evaluations = 0
        self.at: dict[bytes, State] = {}  # the optimum in beta (and the modes) per phi

    def __call__(self, phi: np.ndarray) -> float:
        return self.with_gradient(phi)[0]

    def with_gradient(self, phi: np.ndarray) -> tuple[float, np.ndarray | None]:
        """The profiled deviance and its gradient in ``phi`` (by the envelope theorem, the
        derivative at fixed beta; None where it is not available analytically)."""
        self.evaluations += 1
        phi = np.asarray(phi, float)
        try:
            if self.last is None:
                start = self.state
            else:
                last = self.last
                start = _predicted(last.structure, phi, self.state, last.logdet_gradient)
            solved = solve(self.d, phi, start, update_beta=True, gradient=True, tol=PATH_TOL)
        except (np.linalg.LinAlgError, FloatingPointError):
            return float("inf"), None
        _check_separation(self.d, solved.state.beta)
        self.state, self.last = solved.state, solved
        self.at[np.asarray(phi, float).tobytes()] = solved.state
        return solved.deviance, solved.theta_gradient

    def partial(self, phi: np.ndarray, base: np.ndarray) -> float:
        """The deviance at ``phi`` with beta held at its optimum for ``base``: by the envelope
        theorem its derivative at ``base`` is the profiled deviance's, and it needs PIRLS in u
        only (quadratic convergence, no log-det gradient)."""
        state = self.at.get(np.asarray(base, float).tobytes())
        if state is None:
            return self(phi)
        try:
            return solve(self.d, np.asarray(phi, float), state, update_beta=False).deviance
        except (np.linalg.LinAlgError, FloatingPointError):
            return float("inf")


def _predicted(st: _engine.Structure, phi: np.ndarray, state: State, ld_gradient=None) -> State:
    """A warm start at ``phi`` from a solution elsewhere: the modes (and, given that
    solution's log-det gradient, the fixed effects) of that solution's working model (its
    weights) at ``phi``, which is the first PIRLS step without a pass over the pupils. For a
    nearby ``phi`` (or beta) they are off by the square of the distance."""
    beta = state.beta
    if ld_gradient is not None:
        q_xy = _engine.evaluate(st, phi).q_xy
        p = beta.size
        beta = np.linalg.solve(q_xy[:p, :p], q_xy[:p, p] - ld_gradient / 2.0)
    md = _engine.modes(st, phi, beta)
    return State(beta, md.top, md.lower)


def _forward_gradient(f, x, f0, partial=None):
    """Forward differences (one evaluation per parameter): enough for the quasi-Newton phase,
    whose end point the Newton steps (central differences) then polish. ``partial(x_new, x)``,
    when given, evaluates at ``x_new`` with the inner parameters held at their optimum for
    ``x`` (the same first derivative, more cheaply)."""
    g = np.empty_like(x)
    for i in range(x.size):
        h = 1e-6 * max(abs(x[i]), 0.1)  # forward: never below a lower bound
        moved = _moved(x, i, h)
        g[i] = ((f(moved) if partial is None else partial(moved, x)) - f0) / h
    return g


def _moved(x, i, h):
    out = x.copy()
    out[i] += h
    return out


def _minimise(f, x0, bounds):
    """L-BFGS-B with forward-difference gradients, probing away from zero variances, then
    Newton steps; ``f.partial`` (see :class:`_Profile`) is used for the differences."""
    cache: dict[bytes, float] = {}
    gradients: dict[bytes, np.ndarray | None] = {}
    analytic = getattr(f, "with_gradient", None)

    def value(x):
        key = np.asarray(x, float).tobytes()
        if key not in cache:
            if analytic is None:
                cache[key] = f(np.asarray(x, float))
            else:
                cache[key], gradients[key] = analytic(np.asarray(x, float))
        return cache[key]

    def fun(x):
        x = np.asarray(x, float)
        f0 = value(x)
        if not np.isfinite(f0):
            return f0, np.zeros_like(x)
        exact = gradients.get(x.tobytes())
        if exact is not None:
            return f0, exact
        return f0, _forward_gradient(value, x, f0, getattr(f, "partial", None))

    res = optimize.minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-14, "gtol": 1e-7, "maxiter": 500, "maxls": 40},
    )
    x, best = np.asarray(res.x, float), float(res.fun)
    # The deviance depends on each variance parameter through its square, so zero is always a
    # stationary point: probe away from parameters stuck there (as the linear model does).
    for _ in range(3):
        on_bound = [i for i, b in enumerate(bounds) if b[0] is not None and x[i] < 1e-4]
        probes = [
            (value(_moved(x, i, v - x[i])), _moved(x, i, v - x[i]))
            for i in on_bound
            for v in (0.01, 0.1, 0.5)
        ]
        better = [pr for pr in probes if pr[0] < best - 1e-9 * max(1.0, abs(best))]
        if not better:
            break
        again = optimize.minimize(
            fun,
            min(better, key=lambda pr: pr[0])[1],
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-14, "gtol": 1e-7, "maxiter": 500, "maxls": 40},
        )
        if not again.fun < best:
            break
        res, x, best = again, np.asarray(again.x, float), float(again.fun)
    if analytic is None or any(g is None for g in gradients.values()):
        x, best = _newton(value, x, bounds, best)
    # else: the caller polishes with the Hessian of the analytic gradient (see `fit`).
    return x, best, bool(res.success), str(res.message)


def _newton(value, x, bounds, current, steps: int = 6):
    """Newton steps from central differences on the parameters off their lower bounds."""
    lower = np.array([b[0] if b[0] is not None else -np.inf for b in bounds])
    for _ in range(steps):
        idx = np.flatnonzero(x > lower + 1e-6)
        if idx.size == 0:
            break
        grad, hess = _derivatives(value, x, idx, current)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.any(np.linalg.eigvalsh(hess) <= 0):
            break
        candidate = x.copy()
        candidate[idx] = np.maximum(x[idx] - step, lower[idx])
        new = value(candidate)
        if not new <= current + 1e-10 * max(1.0, abs(current)):
            break
        # The Hessian is accurate to ~1e-4, so each step leaves ~1e-4 of the previous error:
        # after a step below 1e-4 the next would move the parameters by ~1e-8 at most.
        done = np.max(np.abs(candidate - x)) < 1e-4 * max(1.0, float(np.abs(x).max()))
        x, current = candidate, min(new, current)
        if done:
            break
    return x, current


def _derivatives(value, x, idx, f0, rel: float = 1e-4, floor: float = 0.1):
    """Gradient and Hessian over ``x[idx]`` by central differences, steps ``rel * max(|x|,
    floor)``."""
    k = idx.size
    h = rel * np.maximum(np.abs(x[idx]), floor)

    def at(moves):
        out = x.copy()
        for a, delta in moves.items():
            out[idx[a]] += delta
        return value(out)

    plus = np.array([at({a: h[a]}) for a in range(k)])
    minus = np.array([at({a: -h[a]}) for a in range(k)])
    grad = (plus - minus) / (2 * h)
    hess = np.diag((plus - 2 * f0 + minus) / h**2)
    for a in range(k):
        for b in range(a):
            hess[a, b] = hess[b, a] = (
                at({a: h[a], b: h[b]})
                - at({a: h[a], b: -h[b]})
                - at({a: -h[a], b: h[b]})
                + at({a: -h[a], b: -h[b]})
            ) / (4 * h[a] * h[b])
    return grad, hess


def deviance_at(d: GlmmData, phi, beta, state: State | None = None, n_agq: int = 1) -> float:
    """The Laplace (or AGQ) deviance at given ``phi`` and ``beta`` (modes solved for)."""
    start = state or _start_state(d, d.q)
    start = State(np.asarray(beta, float), start.top, start.lower)
    solved = solve(d, np.asarray(phi, float), start, update_beta=False)
    if n_agq > 1:
        return agq_deviance(d, np.asarray(phi, float), solved, n_agq)
    return solved.deviance


def fit(d: GlmmData, n_agq: int = 1) -> GlmmFit:
    """Maximum likelihood over (theta, beta): Laplace, or adaptive Gauss-Hermite.

    The BLAS runs on one thread throughout (:func:`._blas.single_threaded_blas`): every call
    is small (a block of rows, a few thousand groups), and waking worker threads on a busy
    machine costs more than the arithmetic.
    """
    with single_threaded_blas():
        return _fit(d, n_agq)


def _fit(d: GlmmData, n_agq: int) -> GlmmFit:
    bounds = _bounds(d)
    profile = _Profile(d, n_agq)
    phi, dev, converged, message = _minimise(profile, _start_phi(d), bounds)
    if not np.isfinite(dev):
        raise FloatingPointError("the likelihood could not be evaluated")
    solved = solve(d, phi, profile.state, update_beta=True, gradient=True)
    _check_separation(d, solved.state.beta)
    k = phi.size
    if n_agq > 1:
        state = solved.state

        def joint(v):
            try:
                return deviance_at(d, v[:k], v[k:], state, n_agq)
            except (np.linalg.LinAlgError, FloatingPointError):
                return float("inf")

        x0 = np.concatenate([phi, solved.state.beta])
        full_bounds = bounds + [(None, None)] * d.p
        x, dev, converged, message = _minimise(joint, x0, full_bounds)
        phi = x[:k]
        solved = solve(d, phi, State(x[k:], state.top, state.lower), update_beta=False)
        _check_separation(d, solved.state.beta)
        cov, used, _ = _covariance(d, phi, solved, bounds, n_agq)
    else:
        phi, solved, cov, used = _polish(d, phi, solved, bounds)
        dev = solved.deviance
    md = _engine.modes(solved.structure, phi, solved.state.beta)
    return GlmmFit(
        phi=phi,
        beta=solved.state.beta,
        cov=cov,
        deviance=dev,
        modes=md,
        structure=solved.structure,
        converged=converged,
        message=message,
        hessian_used=used,
    )


def _polish(d, phi, solved: Solved, bounds, steps: int = 4):
    """Newton steps on (theta, beta) from the Hessian that gives the covariance, until the
    step is negligible; returns the polished optimum and its covariance. With an analytic
    gradient the quasi-Newton end point is already close, so usually no step is taken and the
    Hessian is computed once."""
    k = phi.size
    lower = np.array([b[0] if b[0] is not None else -np.inf for b in bounds])
    for _ in range(steps):
        cov, used, step = _covariance(d, phi, solved, bounds, 1)
        if step is None:
            break
        x = np.concatenate([phi, solved.state.beta])
        # The Hessian is exact to ~1e-7 relative, so a step below this leaves the optimum,
        # and the Hessian at it, unchanged at the precision reported.
        if np.max(np.abs(step)) < 1e-7 * max(1.0, float(np.abs(x).max())):
            break
        candidate = np.maximum(phi - step[:k], lower)
        try:
            new = solve(d, candidate, solved.state, update_beta=True, gradient=True)
        except (np.linalg.LinAlgError, FloatingPointError, Separation):
            break
        if not new.deviance <= solved.deviance + 1e-10 * max(1.0, abs(solved.deviance)):
            break
        phi, solved = candidate, new
    return phi, solved, cov, used


def _covariance(d, phi, solved: Solved, bounds, n_agq):
    """Fixed-effect covariance: the beta block of 2 H^-1, H the deviance's Hessian over
    (theta, beta) (glmer's default, ``use.hessian = TRUE``), by central differences: of the
    exact beta-gradient (Laplace) or of the deviance (AGQ). If H is not positive definite, the
    inverse of the working model's X'M^-1X (glmer's fallback)."""
    k = phi.size
    state = solved.state
    x = np.concatenate([phi, state.beta])
    lower = np.array([b[0] if b[0] is not None else -np.inf for b in bounds] + [-np.inf] * d.p)
    idx = np.flatnonzero(x > lower + 1e-4)  # a variance at zero is held there
    if n_agq > 1:

        def value(v):
            return deviance_at(d, v[:k], v[k:], state, n_agq)

        # The deviance is a sum over pupils, exact to ~1e-13 relative: steps of 5e-4 keep
        # that rounding below 1e-5 of the curvature; the truncation error is of order 1e-7.
        _, hess = _derivatives(value, x, idx, value(x), rel=5e-4, floor=1.0)
        grad = None
    elif solved.theta_gradient is not None:
        hess = _gradient_hessian(d, x, k, idx, state, solved.structure)
        grad = np.concatenate([solved.theta_gradient, solved.gradient])[idx]
    else:
        hess = _laplace_hessian(d, x, k, idx, state, solved.deviance)
        grad = None
    try:
        np.linalg.cholesky(hess)
        full = 2.0 * np.linalg.inv(hess)
        pos = np.searchsorted(idx, np.arange(k, k + d.p))
        cov = full[np.ix_(pos, pos)]
        step = None
        if grad is not None:
            step = np.zeros_like(x)
            step[idx] = full @ grad / 2.0
        return (cov + cov.T) / 2.0, True, step
    except np.linalg.LinAlgError:
        ev = _engine.evaluate(solved.structure, phi)
        return np.linalg.inv(ev.q_xy[: d.p, : d.p]), False, None


def _gradient_hessian(d, x, k, idx, state, structure):
    """Hessian over ``x[idx]`` (theta, then beta) by central differences of the analytic
    gradient (:func:`_theta_gradient` and the beta-gradient), steps ``5e-4 max(|x|, 1)``:
    truncation error of order 1e-7 relative, and no deviance differences (whose rounding the
    steps would amplify)."""
    h = 5e-4 * np.maximum(np.abs(x), 1.0)
    hess = np.empty((idx.size, idx.size))

    def gradient_at(v):
        start = _predicted(structure, v[:k], State(v[k:], state.top, state.lower))
        return _gradient_at(d, v[:k], start)[idx]

    for a, i in enumerate(idx):
        step = np.zeros_like(x)
        step[i] = h[i]
        hess[:, a] = (gradient_at(x + step) - gradient_at(x - step)) / (2 * h[i])
    return (hess + hess.T) / 2.0


def _gradient_at(d: GlmmData, phi: np.ndarray, start: State) -> np.ndarray:
    """The analytic gradient in (theta, beta) at ``start`` as it is, after one pass (no PIRLS
    iteration): for a start predicted to within the square of a step h from the mode, its
    error is of order h^2 and the same at +h and -h, so central differences of it keep their
    O(h^2) accuracy."""
    pt = _point(d, start.beta, start.top, start.lower, 0)
    if not pt.finite:
        raise FloatingPointError("the linear predictor is not finite")
    st = pt.structure()
    ev = _engine.evaluate(st, phi, keep=True)
    lg = pt.logdet_gradient(st, ev, phi)
    md = _engine.modes(st, phi, start.beta, ev)
    theta_grad = pt.theta_gradient(phi, md, start.top, start.lower, st, lg)
    return np.concatenate([theta_grad, lg.beta - 2.0 * pt.score()])


def _laplace_hessian(d, x, k, idx, state, f0):
    """Hessian over ``x[idx]`` (theta, then beta): the beta rows from central differences of
    the analytic beta-gradient, the theta-theta block from deviance values."""
    h = 5e-4 * np.maximum(np.abs(x), 1.0)
    m = idx.size
    hess = np.empty((m, m))
    values = {}

    def at(v, gradient=False):
        start = State(v[k:], state.top, state.lower)
        return solve(d, v[:k], start, update_beta=False, gradient=gradient)

    beta_rows = np.flatnonzero(idx >= k)
    for a, i in enumerate(idx):
        step = np.zeros_like(x)
        step[i] = h[i]
        plus, minus = at(x + step, True), at(x - step, True)
        hess[beta_rows, a] = (plus.gradient - minus.gradient) / (2 * h[i])
        values[a] = (plus.deviance, minus.deviance)
    theta_rows = np.flatnonzero(idx < k)
    for a in theta_rows:
        up, down = values[a]
        hess[a, a] = (up - 2 * f0 + down) / h[idx[a]] ** 2
        for b in theta_rows[theta_rows < a]:
            ia, ib = idx[a], idx[b]

            def dev(sa, sb, ia=ia, ib=ib):
                v = x.copy()
                v[ia] += sa * h[ia]
                v[ib] += sb * h[ib]
                return at(v).deviance

            hess[a, b] = hess[b, a] = (dev(1, 1) - dev(1, -1) - dev(-1, 1) + dev(-1, -1)) / (
                4 * h[ia] * h[ib]
            )
    # The theta-beta block from the beta-gradient's theta differences, made symmetric.
    hess[np.ix_(theta_rows, beta_rows)] = hess[np.ix_(beta_rows, theta_rows)].T
    return (hess + hess.T) / 2.0
