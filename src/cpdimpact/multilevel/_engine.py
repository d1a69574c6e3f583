r"""The likelihood engine: nested random effects from per-cluster sufficient statistics.

Model, for pupils nested in groups at levels :math:`0` (outermost) to :math:`L-1` (innermost),

.. math::
    y = X\beta + Z_0 b_0 + \sum_{l=1}^{L-1} Z_l u_l + \varepsilon,\qquad
    \varepsilon \sim N(0, \sigma^2 I),\quad u_l \sim N(0, \sigma^2\theta_l^2 I),\quad
    b_{0g} \sim N(0, \sigma^2 \Lambda\Lambda^\top),

where :math:`Z_l` are group indicators and :math:`Z_0` holds, per top-level group, an intercept
and optional slope columns (:math:`q` of them; :math:`\Lambda` is a lower-triangular
:math:`q\times q` relative Cholesky factor, :math:`q=1` gives a random intercept). Writing
:math:`V = \sigma^2 M`, everything the profiled likelihood needs is :math:`\log|M|` and the
cross-products :math:`[X\,y]^\top M^{-1}[X\,y]`.

Nesting makes :math:`M^{-1}` computable bottom-up by repeated Sherman-Morrison: for a group
:math:`h` at a scalar level with relative variance :math:`\theta^2`, whose children carry
:math:`s_c = 1^\top M_c^{-1}1` and :math:`r_c(a) = 1^\top M_c^{-1}a`,

.. math::
    S_h = \sum_c s_c,\quad R_h(a) = \sum_c r_c(a),\quad
    \kappa_h = \frac{\theta^2}{1+\theta^2 S_h},\quad
    a^\top M_h^{-1} b = \sum_c a_c^\top M_c^{-1} b_c - \kappa_h R_h(a) R_h(b),

    s_h = \frac{S_h}{1+\theta^2 S_h},\quad r_h(a) = \frac{R_h(a)}{1+\theta^2 S_h},\quad
    \log|M_h| = \sum_c \log|M_c| + \log(1+\theta^2 S_h),

starting from pupils (:math:`s=1`, :math:`r(a)=a_i`). The top level applies the Woodbury
identity with :math:`P_g = Z_g^\top B_g^{-1} Z_g`, :math:`K_g = I + \Lambda^\top P_g \Lambda`.
So the cost of one likelihood evaluation is proportional to the number of groups, after one
pass over the pupils to form per-group sums; no :math:`N\times N` or :math:`N\times G` matrix
is ever formed (Henderson 1984; Searle, Casella & McCulloch 1992, ch. 6; the profiled
criterion is that of Bates, Mächler, Bolker & Walker 2015, *J. Stat. Softw.* 67(1)).

Profiled deviances, with :math:`A = X^\top M^{-1}X`, :math:`\hat\beta = A^{-1}X^\top M^{-1}y`
and :math:`r^2 = y^\top M^{-1}y - \hat\beta^\top A\hat\beta`:

.. math::
    d_{ML}(\theta) = \log|M| + n\left(1 + \log\frac{2\pi r^2}{n}\right),\qquad
    d_{REML}(\theta) = \log|M| + \log|A| + (n-p)\left(1 + \log\frac{2\pi r^2}{n-p}\right).

Prior weights (lme4's ``weights``): :math:`\varepsilon_i \sim N(0, \sigma^2/w_i)`. Scaling row
*i* by :math:`\sqrt{w_i}` gives an unweighted model whose random-effect columns hold
:math:`\sqrt{w_i}` instead of 1, so the recursion is unchanged once it starts from
:math:`s = w_i` and :math:`r(a) = w_i a_i` (weighted per-group sums, :math:`X^\top W X`), and
both deviances gain :math:`-\sum_i \log w_i`, the Jacobian of the scaling (as lme4's
``ldW``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ._blas import single_threaded_blas

__all__ = [
    "Structure",
    "Evaluation",
    "build_structure",
    "criterion",
    "evaluate",
    "deviance",
    "unpack",
]

LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True, eq=False)
class Structure:
    """Sufficient statistics of one data set and grouping: all an evaluation needs.

    ``w`` columns are ``[X (p), y, extra slope columns]``; ``z_cols`` index the top level's
    random-effect columns in ``w`` (the intercept is column 0).
    """

    n: int
    p: int
    q: int
    z_cols: tuple[int, ...]
    n_groups: tuple[int, ...]
    parent: tuple[np.ndarray | None, ...]
    top_of: tuple[np.ndarray, ...]
    inner_n: np.ndarray
    inner_sums: np.ndarray
    cross: np.ndarray
    top_raw: np.ndarray | None
    #: sum of log prior weights (0 without weights), subtracted from the deviances
    log_w: float = 0.0
    #: per level l >= 1, the 0/1 matrix (G_{l-1} x G_l, sparse) that sums a level's groups
    #: into their parents, and the one that sums them into their top-level groups: one sparse
    #: product per evaluation instead of a ``bincount`` per column (None: use ``bincount``)
    to_parent: tuple = ()
    to_top: tuple = ()

    @property
    def n_levels(self) -> int:
        return len(self.n_groups)

    @property
    def n_params(self) -> int:
        """Number of variance parameters: the Cholesky entries of Lambda, then one per level."""
        return self.q * (self.q + 1) // 2 + self.n_levels - 1


def _column_bincount(codes: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per-group column sums of a 2-D array (one ``bincount`` per column: no big temporaries)."""
    out = np.empty((size, values.shape[1]))
    for j in range(values.shape[1]):
        out[:, j] = np.bincount(codes, weights=values[:, j], minlength=size)
    return out


def _summing_matrix(codes: np.ndarray, size: int) -> sparse.csr_matrix:
    """Sparse ``size x len(codes)`` matrix with a 1 at (codes[i], i): sums members by group."""
    n = len(codes)
    return sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(size, n))


def _group_sums(values: np.ndarray, codes: np.ndarray, summing, size: int) -> np.ndarray:
    """Per-group sums of a 1-D or 2-D array (rows are members), by ``summing`` if given."""
    if summing is not None:
        return summing @ values
    if values.ndim == 1:
        return np.bincount(codes, weights=values, minlength=size)
    return _column_bincount(codes, values, size)


def build_structure(
    x: np.ndarray,
    y: np.ndarray,
    z_extra: np.ndarray,
    codes: list[np.ndarray],
    z_cols: tuple[int, ...],
    weights: np.ndarray | None = None,
) -> Structure:
    """One pass over the pupils: per-group sums, parent maps and the global cross-products.

    Parameters
    ----------
    x
        Fixed-effects design, first column the intercept (n x p).
    y
        Outcome (n).
    z_extra
        Slope columns not already in ``x`` (n x k, possibly k = 0).
    codes
        Integer group codes per level, outermost first, each ``0..G_l-1``; a code at level l
        identifies the whole path (school, teacher), so nesting is exact.
    z_cols
        Indices in ``[x, y, z_extra]`` of the top level's random-effect columns.
    weights
        Positive prior weights per pupil (residual variance sigma^2 / w_i), or None.
    """
    n, p = x.shape
    columns = [x[:, j] for j in range(p)] + [y] + [z_extra[:, j] for j in range(z_extra.shape[1])]
    n_groups = tuple(int(c.max()) + 1 for c in codes)
    parent: list[np.ndarray | None] = [None]
    top_of: list[np.ndarray] = [np.arange(n_groups[0])]
    for level in range(1, len(codes)):
        up = np.empty(n_groups[level], dtype=np.int64)
        up[codes[level]] = codes[level - 1]
        parent.append(up)
        top_of.append(top_of[level - 1][up])
    inner = codes[-1]
    if weights is None:
        inner_n = np.bincount(inner, minlength=n_groups[-1]).astype(float)
        inner_sums = np.column_stack(
            [np.bincount(inner, weights=c, minlength=n_groups[-1]) for c in columns]
        )
        # [X y]'[X y] by blocks: no n x (p + 1) copy of the data.
        xty = x.T @ y
        cross = np.block([[x.T @ x, xty[:, None]], [xty[None, :], np.array([[y @ y]])]])
        log_w = 0.0
    else:
        inner_n = np.bincount(inner, weights=weights, minlength=n_groups[-1])
        inner_sums = np.column_stack(
            [np.bincount(inner, weights=c * weights, minlength=n_groups[-1]) for c in columns]
        )
        wx = x * weights[:, None]
        xty = wx.T @ y
        cross = np.block(
            [[wx.T @ x, xty[:, None]], [xty[None, :], np.array([[(weights * y) @ y]])]]
        )
        log_w = float(np.log(weights).sum())
    top_raw = None
    q = len(z_cols)
    if q > 1:
        top = codes[0]
        top_raw = np.empty((n_groups[0], q, len(columns)))
        for i, zc in enumerate(z_cols):
            zw = columns[zc] if weights is None else columns[zc] * weights
            for j, c in enumerate(columns):
                top_raw[:, i, j] = np.bincount(top, weights=c * zw, minlength=n_groups[0])
    to_parent = (None,) + tuple(
        _summing_matrix(parent[lv], n_groups[lv - 1]) for lv in range(1, len(codes))
    )
    to_top = (None,) + tuple(
        _summing_matrix(top_of[lv], n_groups[0]) if q > 1 else None for lv in range(1, len(codes))
    )
    return Structure(
        n=n,
        p=p,
        q=q,
        z_cols=z_cols,
        n_groups=n_groups,
        parent=tuple(parent),
        top_of=tuple(top_of),
        inner_n=inner_n,
        inner_sums=inner_sums,
        cross=cross,
        top_raw=top_raw,
        log_w=log_w,
        to_parent=to_parent,
        to_top=to_top,
    )


def unpack(st: Structure, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split the parameter vector into Lambda (q x q lower triangular) and the level thetas.

    Lambda's entries come first, column by column (lme4's order), then one relative SD per
    scalar level from the second-outermost to the innermost.
    """
    k = st.q * (st.q + 1) // 2
    lam = np.zeros((st.q, st.q))
    rows, cols = [], []
    for j in range(st.q):
        for i in range(j, st.q):
            rows.append(i)
            cols.append(j)
    lam[rows, cols] = phi[:k]
    return lam, np.asarray(phi[k:], dtype=float)


def lower_bounds(st: Structure) -> list[tuple[float | None, float | None]]:
    """Diagonal Cholesky entries and relative SDs are >= 0; off-diagonal entries are free."""
    bounds = []
    for j in range(st.q):
        for i in range(j, st.q):
            bounds.append((0.0, None) if i == j else (None, None))
    bounds += [(0.0, None)] * (st.n_levels - 1)
    return bounds


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Everything one evaluation at ``phi`` computed (kept for BLUPs and inference)."""

    logdet: float
    q_xy: np.ndarray
    levels: tuple  # per scalar level, innermost first: (S, R, kappa, f)
    top_s: np.ndarray
    top_r: np.ndarray
    p_top: np.ndarray
    rho_top: np.ndarray
    k_top: np.ndarray
    lam: np.ndarray


def evaluate(st: Structure, phi: np.ndarray, *, keep: bool = False) -> Evaluation:
    """log|M| and [X y]' M^{-1} [X y] at ``phi`` (see the module docstring)."""
    lam, thetas = unpack(st, phi)
    p1 = st.p + 1
    logdet = 0.0
    correction = np.zeros((p1, p1))
    zc = list(st.z_cols)
    to_parent = st.to_parent or (None,) * st.n_levels
    to_top = st.to_top or (None,) * st.n_levels
    top_corr = np.zeros((st.n_groups[0], st.q * st.inner_sums.shape[1])) if st.q > 1 else None
    s_sum = st.inner_n
    r_sum = st.inner_sums
    kept = []
    for level in range(st.n_levels - 1, 0, -1):
        theta2 = thetas[level - 1] ** 2
        denom = 1.0 + theta2 * s_sum
        kappa = theta2 / denom
        logdet += float(np.log(denom).sum())
        weighted = r_sum * kappa[:, None]
        correction += weighted[:, :p1].T @ r_sum[:, :p1]
        if st.q > 1:
            # per group h: kappa_h R_h(z) R_h(a) for each top-level random-effect column z
            k = r_sum.shape[1]
            outer = np.empty((len(kappa), st.q * k))
            for i, z in enumerate(zc):
                np.multiply(r_sum, weighted[:, z, None], out=outer[:, i * k : (i + 1) * k])
            top_corr += _group_sums(outer, st.top_of[level], to_top[level], st.n_groups[0])
        f = 1.0 / denom
        if keep:
            kept.append((s_sum, r_sum, kappa, f))
        up, size = st.parent[level], st.n_groups[level - 1]
        s_sum = _group_sums(s_sum * f, up, to_parent[level], size)
        r_sum = _group_sums(r_sum * f[:, None], up, to_parent[level], size)
    if st.q == 1:
        # A random intercept: K_g = 1 + theta^2 S_g is a scalar; no batched linear algebra.
        p_top = s_sum[:, None, None]
        rho = r_sum[:, None, :p1]
        theta2 = lam[0, 0] ** 2
        k_scalar = 1.0 + theta2 * s_sum
        k_top = k_scalar[:, None, None]
        logdet += float(np.log(k_scalar).sum())
        top_rows = r_sum[:, :p1]
        correction += (top_rows * (theta2 / k_scalar)[:, None]).T @ top_rows
    else:
        inv_b = st.top_raw - top_corr.reshape(st.top_raw.shape)
        p_top = inv_b[:, :, zc]
        rho = inv_b[:, :, :p1]
        k_top, lam_rho = _top_products(lam, p_top, rho)
        # K_g = L_g L_g' (Cholesky); lam_rho' K^-1 lam_rho = W'W with W = L^-1 lam_rho.
        chol = _batched_cholesky(k_top)
        logdet += 2.0 * float(np.log(np.diagonal(chol, axis1=1, axis2=2)).sum())
        w = _forward_solve(chol, lam_rho)
        flat = w.reshape(-1, p1)
        correction += flat.T @ flat
    return Evaluation(
        logdet=logdet,
        q_xy=st.cross - correction,
        levels=tuple(kept),
        top_s=s_sum,
        top_r=r_sum,
        p_top=p_top,
        rho_top=rho,
        k_top=k_top,
        lam=lam,
    )


def _top_products(lam: np.ndarray, p_top: np.ndarray, rho: np.ndarray):
    """K_g = I + Lambda' P_g Lambda and Lambda' rho_g for every top-level group.

    Each is one matrix product over all groups at once (the groups stacked as rows), not a
    small product per group.
    """
    g, q, _ = p_top.shape
    p1 = rho.shape[2]
    # (P_g Lambda)[a, j], then (Lambda' P_g Lambda)[j, i] = sum_a (P_g Lambda)[a, j] Lambda[a, i]
    p_lam = (p_top.reshape(g * q, q) @ lam).reshape(g, q, q)
    k_top = np.swapaxes(p_lam, 1, 2).reshape(g * q, q) @ lam
    k_top = k_top.reshape(g, q, q) + np.eye(q)
    lam_rho = (np.swapaxes(rho, 1, 2).reshape(g * p1, q) @ lam).reshape(g, p1, q)
    return k_top, np.swapaxes(lam_rho, 1, 2)


def _batched_cholesky(k: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of many small q x q matrices, vectorised over the first axis.

    Raises ``np.linalg.LinAlgError`` if one is not positive definite (as ``np.linalg.cholesky``).
    """
    q = k.shape[1]
    chol = np.zeros_like(k)
    for j in range(q):
        d = k[:, j, j] - (chol[:, j, :j] ** 2).sum(axis=1) if j else k[:, j, j]
        if not (d > 0).all():
            raise np.linalg.LinAlgError("matrix is not positive definite")
        chol[:, j, j] = np.sqrt(d)
        for i in range(j + 1, q):
            off = k[:, i, j]
            if j:
                off = off - (chol[:, i, :j] * chol[:, j, :j]).sum(axis=1)
            chol[:, i, j] = off / chol[:, j, j]
    return chol


def _forward_solve(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """L_g^{-1} B_g for lower-triangular L (g, q, q) and B (g, q, m), vectorised over g."""
    q = chol.shape[1]
    out = np.empty(rhs.shape)
    for i in range(q):
        acc = rhs[:, i, :]
        for m in range(i):
            acc = acc - chol[:, i, m, None] * out[:, m, :]
        out[:, i, :] = acc / chol[:, i, i, None]
    return out


def gls(st: Structure, ev: Evaluation) -> tuple[np.ndarray, float, np.ndarray, float]:
    """GLS fixed effects, the weighted residual sum of squares r^2, A and log|A|."""
    q_xy = ev.q_xy
    p = st.p
    a = q_xy[:p, :p]
    chol = np.linalg.cholesky(a)
    beta = np.linalg.solve(a, q_xy[:p, p])
    r2 = float(q_xy[p, p] - q_xy[:p, p] @ beta)
    return beta, r2, a, 2.0 * float(np.log(np.diag(chol)).sum())


def deviance(st: Structure, phi: np.ndarray, reml: bool) -> float:
    """Profiled -2 log-likelihood (ML) or REML criterion at ``phi``; ``inf`` where undefined."""
    try:
        ev = evaluate(st, phi)
        _, r2, _, logdet_a = gls(st, ev)
    except np.linalg.LinAlgError:
        return float("inf")
    return criterion(st, ev.logdet, r2, logdet_a, reml)


def criterion(st: Structure, logdet: float, r2: float, logdet_a: float, reml: bool) -> float:
    """The profiled deviance from its pieces (see the module docstring); ``inf`` if r2 <= 0."""
    if not r2 > 0:
        return float("inf")
    if reml:
        dof = st.n - st.p
        return logdet + logdet_a + dof * (1.0 + LOG_2PI + np.log(r2 / dof)) - st.log_w
    return logdet + st.n * (1.0 + LOG_2PI + np.log(r2 / st.n)) - st.log_w


def full_deviance(st: Structure, phi: np.ndarray, sigma: float, reml: bool) -> float:
    """-2 log-likelihood (or REML criterion) at given ``phi`` and ``sigma``, beta profiled out.

    This is the function of the variance parameters ``(phi, sigma)`` whose Hessian gives their
    asymptotic covariance for Satterthwaite's degrees of freedom (as in lmerTest).
    """
    ev = evaluate(st, phi)
    _, r2, _, logdet_a = gls(st, ev)
    sigma2 = sigma**2
    if reml:
        return (
            ev.logdet + logdet_a + (st.n - st.p) * (LOG_2PI + np.log(sigma2)) + r2 / sigma2
        ) - st.log_w
    return ev.logdet + st.n * (LOG_2PI + np.log(sigma2)) + r2 / sigma2 - st.log_w


@dataclass(frozen=True, eq=False)
class Modes:
    """Conditional modes (BLUPs) and conditional variances, per level, outermost first.

    ``top`` arrays are (G0, q); lower levels are 1-D (one intercept per group). Variances are
    relative to sigma^2 (multiply by sigma^2).
    """

    top: np.ndarray
    top_var: np.ndarray
    lower: tuple[np.ndarray, ...]
    lower_var: tuple[np.ndarray, ...]


def modes(st: Structure, phi: np.ndarray, beta: np.ndarray, ev: Evaluation | None = None) -> Modes:
    r"""BLUPs of every random effect at ``phi`` and ``beta``, with conditional variances.

    For the top level, :math:`\hat b_g = \Lambda K_g^{-1}\Lambda^\top Z_g^\top B_g^{-1}e` and
    :math:`\mathrm{Var}(b_g\mid y) = \sigma^2 \Lambda K_g^{-1}\Lambda^\top`; below it,
    :math:`\hat u_h = \theta_h^2\, 1_h^\top M^{-1} e` and
    :math:`\mathrm{Var}(u_h\mid y) = \sigma^2\theta_h^2(1 - \theta_h^2\, 1_h^\top M^{-1} 1_h)`,
    with :math:`e = y - X\beta`, computed top-down through the same nesting recursion. As in
    lme4, the conditional variances treat :math:`\beta` and the variance parameters as known.
    ``ev``, if given, is ``evaluate(st, phi, keep=True)`` already computed.
    """
    with single_threaded_blas():
        return _modes(st, phi, beta, ev)


def _modes(st: Structure, phi: np.ndarray, beta: np.ndarray, ev: Evaluation | None) -> Modes:
    if ev is None:
        ev = evaluate(st, phi, keep=True)
    lam = ev.lam
    p = st.p
    zc = list(st.z_cols)
    rho_e = ev.rho_top[:, :, p] - ev.rho_top[:, :, :p] @ beta  # (G0, q)
    k_inv = np.linalg.inv(ev.k_top)
    core = np.einsum("ai,gij,bj->gab", lam, k_inv, lam)  # Lambda K^-1 Lambda'
    top = np.einsum("gab,gb->ga", core, rho_e)
    top_var = np.einsum("gaa->ga", core)
    lower, lower_var = [], []
    _, thetas = unpack(st, phi)
    phi_e = phi_z = psi = None
    for level, (s_sum, r_sum, kappa, f) in zip(
        range(1, st.n_levels), reversed(ev.levels), strict=True
    ):
        gamma = top[st.top_of[level]]
        r_e = r_sum[:, p] - r_sum[:, :p] @ beta - np.einsum("hq,hq->h", r_sum[:, zc], gamma)
        r_z = r_sum[:, zc]
        s = s_sum * f
        t = f * r_e
        v = f[:, None] * r_z
        tau = s.copy()
        if phi_e is not None:
            up = st.parent[level]
            t -= s * phi_e[up]
            v -= s[:, None] * phi_z[up]
            tau -= s**2 * psi[up]
            phi_e = kappa * r_e + f * phi_e[up]
            phi_z = kappa[:, None] * r_z + f[:, None] * phi_z[up]
            psi = kappa + f**2 * psi[up]
        else:
            phi_e = kappa * r_e
            phi_z = kappa[:, None] * r_z
            psi = kappa.copy()
        tau -= np.einsum("ha,hab,hb->h", v, core[st.top_of[level]], v)
        theta2 = thetas[level - 1] ** 2
        lower.append(theta2 * t)
        lower_var.append(theta2 * (1.0 - theta2 * tau))
    return Modes(top=top, top_var=top_var, lower=tuple(lower), lower_var=tuple(lower_var))
