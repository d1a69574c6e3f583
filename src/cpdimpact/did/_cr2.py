r"""CR2 cluster-robust covariance, Satterthwaite degrees of freedom and the HTZ Wald test.

This module serves :class:`~cpdimpact.did.DiD` and :class:`~cpdimpact.did.EventStudy` with
``inference=ClusterRobust("CR2")``: the bias-reduced linearisation of Bell & McCaffrey (2002) in the form of
Pustejovsky & Tipton (2018), reproducing R ``clubSandwich`` (``vcovCR(type = "CR2")``,
``coef_test(test = "Satterthwaite")``, ``Wald_test(test = "HTZ")``) for
``lm(y ~ x + factor(unit) + factor(period), weights = w)``. Nothing here forms an
:math:`n_g \times n_g` matrix: every per-cluster quantity is a small matrix.

Notes
-----
**Model and estimator.** :math:`y = D\alpha + X\beta + e` with unit dummies :math:`D` (units
nested in clusters :math:`g = 1..G`), :math:`X` the period dummies, reported terms and
covariates, and weights :math:`W = \mathrm{diag}(w)` (identity without weights). With
:math:`\ddot X` the weighted within-unit deviations of :math:`X`, :math:`\ddot M = (\ddot X'W
\ddot X)^{-1}` and residuals :math:`e`, the CR2 covariance is

.. math::

    V^{CR2} = \ddot M \Big(\sum_g \ddot X_g' W_g A_g e_g e_g' A_g W_g \ddot X_g\Big) \ddot M,
    \qquad A_g = G_g^{+1/2},\quad G_g = [(I - H)\Phi(I - H)']_{gg},

with :math:`H = X_f (X_f'WX_f)^{-1}X_f'W` the hat matrix of the *full* design
:math:`X_f = [D, X]` (fixed effects included, as Pustejovsky & Tipton prescribe),
:math:`\Phi = I` the working model, and :math:`^{+1/2}` the symmetric square root of the
Moore-Penrose pseudo-inverse (eigenvalues below :math:`10^{-12}` set to zero, as
``clubSandwich``'s ``matrix_power``). Because :math:`\ddot X` is the :math:`X` part of
:math:`X_f` after partialling out :math:`D`, the rows of :math:`(X_f'WX_f)^{-1}X_f'W` for
:math:`\beta` equal :math:`\ddot M\ddot X'W` (Frisch-Waugh-Lovell). There is no further
small-sample factor.

*Without weights* :math:`G_g = I - H_{gg}`. With :math:`P_D` the projection on the unit
dummies, :math:`H = P_D + \ddot X\ddot M\ddot X'`, and :math:`P_D` is block diagonal by
cluster; :math:`I - H_{gg} = Q_g - K_g` with :math:`Q_g = I - (P_D)_{gg}` and
:math:`K_g = \ddot X_g\ddot M\ddot X_g'` living in the range of :math:`Q_g`. Hence
:math:`A_g = Q_g (I - K_g)^{+1/2} Q_g`, and since :math:`\ddot X_g` and :math:`e_g` lie in
that range, :math:`\ddot X_g' A_g e_g = \ddot X_g'(I - K_g)^{+1/2}e_g`: the absorbed design
gives the same covariance as the full one (Pustejovsky & Tipton 2018, Theorem 2; unit effects
nested in clusters). The unit directions are dropped.

*With weights*, ``clubSandwich``'s convention for a weighted ``lm`` is kept: the weights are
not taken as inverse variances (``inverse_var = FALSE``) and the working model is
:math:`\Phi = I`, so :math:`G_g = [(I-H)(I-H)']_{gg}` with the oblique :math:`H`. Here the
absorbed design does *not* give the full-design answer, and the unit directions are kept:
with :math:`\Pi` the columns :math:`\pi_u = w_u/\sum w_u` and :math:`R = (I - P_D)W\ddot X`,

.. math::

    G_g = I + Y_g C Y_g', \quad Y_g = [D_g, \Pi_g, \ddot X_g, R_g],\quad
    C = \begin{pmatrix} \mathrm{diag}(\pi_u'\pi_u) & -I & 0 & 0\\ -I & 0 & 0 & 0\\
    0 & 0 & \ddot M\Omega\ddot M & -\ddot M\\ 0 & 0 & -\ddot M & 0\end{pmatrix},
    \quad \Omega = \ddot X'W^2\ddot X.

Each :math:`\pi_u` is an exact null direction of :math:`G_g` (the expected fixed-effect
singularity); its residual component is zero.

**Low rank, without weights.** With :math:`\ddot M = LL'`, :math:`F_g = \ddot X_g'\ddot X_g`
and :math:`L'F_gL = V\,\mathrm{diag}(\lambda)\,V'` (the non-zero eigenvalues of
:math:`K_g`, in :math:`[0, 1]`),

.. math::

    A_g = I + \ddot X_g B_g \ddot X_g', \qquad B_g = LV\,\mathrm{diag}\{h(\lambda)\}\,V'L',
    \qquad h(\lambda) = \frac{(1-\lambda)^{-1/2} - 1}{\lambda} = \frac{1}{s(1+s)},\
    s = \sqrt{1-\lambda},

a :math:`k \times k` :math:`B_g`. As :math:`h` is smooth at 0 the rank of :math:`\ddot X_g`
never needs deciding; where :math:`1 - \lambda \le 10^{-12}`, :math:`h = -1/\lambda` (the
pseudo-inverse). Then :math:`\ddot X_g'A_ge_g = (I + F_gB_g)\ddot X_g'e_g`,
:math:`\ddot X_g'A_g\ddot X_g = F_g + F_gB_gF_g` and
:math:`\ddot X_g'A_g^2\ddot X_g = (I + F_gB_g)F_g(I + B_gF_g)`: only :math:`F_g` and
:math:`\ddot X_g'e_g` are taken from the rows, and all clusters are processed at once.

**Low rank, with weights.** :math:`G_g = I + Y_g C Y_g'` with :math:`Y_g` of at most
:math:`2u_g + 2k` columns (:math:`u_g` units in the cluster). An orthonormal basis
:math:`U_g` of its span is built from, per unit, :math:`1_u/\sqrt{n_u}` and the unit's centred
weights (analytic), then the rest of :math:`[\ddot X_g, R_g - \bar w_g\ddot X_g]` (same span;
:math:`\bar w_g` the cluster's mean weight, so the second block measures how much the weights
vary) from an eigen-decomposition of its Gram matrix and one re-orthonormalisation. Directions
whose relative singular value is below about :math:`10^{-7}` count as absent: exact
collinearities within a cluster are common (a cluster seen in two periods), near ones are not.
With :math:`T_g = (U_g'Y_g) C (U_g'Y_g)' = V\Lambda V'`,

.. math::

    A_g = I + U_g \Phi_g U_g', \qquad \Phi_g = V\,\mathrm{diag}\{f(1 + \lambda) - 1\}\,V',
    \quad f(x) = x^{-1/2}\ (x > 10^{-12}),\ 0\ \text{otherwise},

so :math:`\ddot X_g'W_gA_ge_g = \ddot X_g'W_ge_g + N_g'\Phi_g U_g'e_g` with
:math:`N_g = U_g'W_g\ddot X_g`. Cost :math:`O(n_g k^2 + (u_g + k)^3)` per cluster; memory
:math:`O(n_g k)`.

**Satterthwaite degrees of freedom** (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018, eq. 11).
For a contrast :math:`c'\beta`, let :math:`a = \ddot M c`, :math:`p_g = A_g W_g \ddot X_g a` and
:math:`P_{gh} = p_g'[(I-H)(I-H)']_{gh}p_h`, the covariance under the working model of the
cluster terms of :math:`c'V^{CR2}c`. Then

.. math::

    \nu = \frac{(\sum_g P_{gg})^2}{\sum_{g,h} P_{gh}^2}.

With :math:`x_g = \ddot X_g'p_g`, :math:`r_g = R_g'p_g` and :math:`z_g = (x_g', r_g')'`,
:math:`P_{gh} = \delta_{gh} d_g + z_g' J z_h`, where
:math:`J = \begin{pmatrix}\ddot M\Omega\ddot M & -\ddot M\\ -\ddot M & 0\end{pmatrix}` and
:math:`d_g = p_g'Q_gQ_g'p_g` (without weights :math:`r_g = x_g`, :math:`\Omega = \ddot M^{-1}`,
:math:`d_g = p_g'p_g` and :math:`z_g'Jz_h = -x_g'\ddot Mx_h`); :math:`x_g`, :math:`r_g` and
:math:`d_g` are :math:`k\times k` matrices of the cluster applied to :math:`a`. Then
:math:`\sum_{g,h}P_{gh}^2 = \sum_g P_{gg}^2 + 2\sum_g z_g'J S_{<g} J z_g` with the prefix sums
:math:`S_{<g} = \sum_{h<g} z_h z_h'`: no :math:`G \times G` matrix. Each :math:`P_{gg}` is
formed before squaring, because its two parts cancel when :math:`G_g` is nearly singular
(:math:`A_g` then inflates a direction, and :math:`z_g` with it); for the same reason the pairs
of such a cluster (largest eigenvalue of :math:`A_g` above 10) with every other are summed
one inner product at a time, since the prefix sums would square the cancellation.

**HTZ test** (Pustejovsky & Tipton 2018, sec. 3.3; ``Wald_test(test = "HTZ")``). For
:math:`H_0: C\beta = 0` with :math:`q` rows, :math:`Q = \hat\beta'C'(CV^{CR2}C')^{-1}C\hat\beta`.
With :math:`P^{st}_{gh}` as above for rows :math:`s, t` of :math:`C`,
:math:`\Omega_{st} = \sum_g P^{st}_{gg}` and the rows normalised by :math:`\Omega^{-1/2}`,

.. math::

    \nu_Z = \frac{q(q+1)}{\sum_{s,t}\sum_{g,h}\big(P^{st}_{gh}P^{ts}_{gh}
            + P^{ss}_{gh}P^{tt}_{gh}\big)}, \qquad
    F = \frac{\nu_Z - q + 1}{\nu_Z}\,\frac{Q}{q} \sim F(q, \nu_Z - q + 1),

the double sums again reducing to traces of :math:`2k \times 2k` matrices. For :math:`q = 1`
this is the Satterthwaite t test squared.

References
----------
Bell, R. M. & McCaffrey, D. F. (2002). Bias reduction in standard errors for linear regression
with multi-stage samples. *Survey Methodology* 28(2), 169-181.
Imbens, G. W. & Kolesar, M. (2016). Robust standard errors in small samples: some practical
advice. *Review of Economics and Statistics* 98(4), 701-712.
Pustejovsky, J. E. & Tipton, E. (2018). Small-sample methods for cluster-robust variance
estimation and hypothesis testing in fixed effects models. *Journal of Business & Economic
Statistics* 36(4), 672-683.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.linalg import solve_triangular

from cpdimpact.errors import format_value

__all__ = [
    "CR2",
    "SingularCluster",
    "cr2",
    "singular_message",
    "COV_TYPE_CR2",
    "COV_TYPE_CR2_WEIGHTS",
    "EIG_TOL",
]

#: Eigenvalues of G_g at or below this are treated as zero (clubSandwich's ``matrix_power``).
EIG_TOL = 1e-12

#: Relative size below which a unit's centred weights count as zero (constant weights).
_RANK_TOL = 1e-11

#: Clusters whose A_g inflates some direction more than this count as amplified (G_g nearly
#: singular); their pairs with other clusters are summed one by one (see ``_offdiag``).
_AMPLIFIED = 10.0

#: Share of its working-model expectation below which a CR2 variance counts as not estimable.
_DEGENERATE_TOL = 1e-10

#: Smallest eigenvalue of the tested terms' correlation matrix below which it is singular.
_SINGULAR_TOL = 1e-10

#: Floor, relative to the weighted design, of the column scale of ``R_g - c X_g``: weights
#: that vary less than this within a cluster count as constant there.
_WEIGHT_FLOOR = 1e-8

#: Squared singular values (relative) below which a Gram direction is numerically absent:
#: above the Gram matrix's rounding noise (~1e-16), below any direction worth keeping.
_GRAM_TOL = 1e-14

#: A coefficient is affected by a singular direction when its cluster influence has at least
#: this share (cosine) along that direction.
_AFFECTED_TOL = 1e-6

#: Label of the covariance estimator, shown in every result.
COV_TYPE_CR2 = (
    "cluster-robust CR2 (bias-reduced linearisation, Bell & McCaffrey 2002; full design "
    "with fixed effects, Pustejovsky & Tipton 2018; as clubSandwich vcovCR type 'CR2')"
)


#: Appended to the label when the fit is weighted: clubSandwich's convention for weighted lm.
COV_TYPE_CR2_WEIGHTS = (
    "; weights enter the estimator, and the adjustment uses the working model of independent "
    "equal-variance rows (clubSandwich's default for weighted lm, inverse_var = FALSE)"
)


@dataclass(frozen=True)
class SingularCluster:
    """A cluster whose ``G_g`` has null directions beyond those of its own unit effects.

    ``cluster`` is its code; ``n_directions`` the number of such directions; ``affected``
    the indices of the coefficients whose cluster influence loads on them.
    """

    cluster: int
    n_directions: int
    affected: tuple[int, ...]


@dataclass(frozen=True)
class CR2:
    """CR2 covariance of all non-fixed-effect coefficients and what its tests need.

    ``cov`` is ``k x k``; the per-cluster ``k x k`` matrices ``xa``, ``ra`` and ``dm`` map a
    contrast's ``a = M c`` to ``x_g``, ``r_g`` and ``d_g`` of the module Notes.
    """

    cov: np.ndarray
    bread: np.ndarray
    joint: np.ndarray
    xa: np.ndarray
    ra: np.ndarray
    dm: np.ndarray
    singular: tuple[SingularCluster, ...]
    weighted: bool
    #: Per cluster, the largest eigenvalue of A_g (how much the adjustment inflates).
    amplification: np.ndarray

    def _pieces(self, a: np.ndarray):
        """For contrasts ``a = M c`` (columns): ``z_g``, ``y_g = J z_g`` and ``P_gg`` (G x m x m).

        ``P_gg = D_g + z_g'J z_g`` is formed cluster by cluster, where its two large parts
        cancel when ``G_g`` is nearly singular, before anything is squared or summed.
        """
        z = np.concatenate([self.xa @ a, self.ra @ a], axis=1)  # G x 2k x m
        y = np.einsum("kl,glm->gkm", self.joint, z)
        p_gg = np.einsum("ks,gkl,lt->gst", a, self.dm, a) + np.einsum("gks,gkt->gst", z, y)
        return z, y, (p_gg + np.transpose(p_gg, (0, 2, 1))) / 2

    def satterthwaite(self, index) -> np.ndarray:
        """Satterthwaite degrees of freedom of the coefficients at ``index``.

        NaN when undefined: the working-model expectation of the CR2 variance is (numerically)
        zero, i.e. every cluster's residuals are exactly zero in the directions that matter.
        """
        index = np.atleast_1d(np.asarray(index, dtype=np.intp))
        z, y, p_gg = self._pieces(self.bread[:, index])
        p_gg = np.einsum("gmm->gm", p_gg)
        expect = np.sum(p_gg, axis=0)
        big = self.amplification > _AMPLIFIED
        total = np.sum(p_gg * p_gg, axis=0) + np.array(
            [_offdiag(z[:, :, [m]], y[:, :, [m]], big)[0, 0, 0, 0] for m in range(index.size)]
        )
        # Under the working model E[c'V c] = c'M Omega M c when no direction is lost; a tiny
        # share means the clusters' residuals carry no information on this term.
        k = self.bread.shape[0]
        scale = np.diag(self.joint[:k, :k])[index]
        with np.errstate(divide="ignore", invalid="ignore"):
            df = expect**2 / total
        return np.where((total > 0) & (expect > _DEGENERATE_TOL * scale), df, np.nan)

    def htz(self, index, beta: np.ndarray) -> tuple[float, float, int, float, float]:
        """HTZ test that the coefficients at ``index`` are all zero.

        Returns ``(F, delta, q, df_denom, p)`` as ``clubSandwich::Wald_test(test = "HTZ")``:
        ``F = delta * Q / q`` against ``F(q, df_denom)``; ``p`` is NaN when ``df_denom <= 0``
        and everything is NaN when the covariance of the tested terms is singular or a tested
        term's variance is not estimable.
        """
        index = np.atleast_1d(np.asarray(index, dtype=np.intp))
        q = index.size
        nan = (float("nan"), float("nan"), q, float("nan"), float("nan"))
        b = np.asarray(beta, dtype=float)[index]
        vsub = self.cov[np.ix_(index, index)]
        sd = np.sqrt(np.diag(vsub))
        if not np.all(sd > 0) or np.linalg.eigvalsh(vsub / np.outer(sd, sd))[0] <= _SINGULAR_TOL:
            return nan
        chol = np.linalg.cholesky(vsub)
        u = np.linalg.solve(chol, b)
        stat_q = float(u @ u)

        z, y, p_gg = self._pieces(self.bread[:, index])
        omega = np.sum(p_gg, axis=0)
        k = self.bread.shape[0]
        if np.any(np.diag(omega) <= _DEGENERATE_TOL * np.diag(self.joint[:k, :k])[index]):
            return nan  # a tested term's CR2 variance is not estimable (see satterthwaite)
        root = _matrix_power((omega + omega.T) / 2, -0.5)
        # Normalise the rows: every bilinear piece transforms with root on both sides.
        z, y = z @ root, y @ root
        p_gg = np.einsum("as,gab,bt->gst", root, p_gg, root)
        # sum_{g,h} P^{st}_gh P^{ts}_gh and sum_{g,h} P^{ss}_gh P^{tt}_gh: the cluster-diagonal
        # terms, then the off-diagonal ones, which are z'Jz only.
        off = _offdiag(z, y, self.amplification > _AMPLIFIED)  # off[a, b, c, d]
        p_t = np.transpose(p_gg, (0, 2, 1))
        diag = np.einsum("gss->gs", p_gg)
        first = np.sum(p_gg * p_t, axis=0) + np.einsum("stts->st", off)
        second = np.einsum("gs,gt->st", diag, diag) + np.einsum("sstt->st", off)
        denom = float(np.sum(first + second))
        if not np.isfinite(denom) or denom <= 0:
            return nan
        nu = q * (q + 1) / denom
        delta = max((nu - q + 1) / nu, 0.0)
        df_denom = nu - q + 1
        stat = delta * stat_q / q
        p = float(stats.f.sf(stat, q, df_denom)) if df_denom > 0 else float("nan")
        return stat, delta, q, df_denom, p


def _offdiag(z: np.ndarray, y: np.ndarray, big: np.ndarray) -> np.ndarray:
    """``out[a, b, c, d] = sum_{g != h} O^{ab}_gh O^{cd}_gh`` with ``O^{ab}_gh = y_ag'z_bh``.

    Pairs that involve an amplified cluster (``big``: a nearly singular ``G_g``, whose
    ``z_g, y_g`` are large and whose products with other clusters are small by cancellation)
    are formed one by one, so the cancellation happens in each inner product; the others come
    from prefix sums (:func:`_lower_sum`), which square the products' scale.
    """
    normal = ~big
    low = _lower_sum(z[normal], y[normal])  # low[b, d, a, c] over normal pairs h < g
    out = np.einsum("bdac->abcd", low) + np.einsum("acbd->abcd", low)
    if big.any():
        rows = np.flatnonzero(big)
        pairs = np.einsum("gka,hkb->ghab", y[rows], z)  # g amplified, h any
        pairs[np.arange(rows.size), rows] = 0.0
        out += np.einsum("ghab,ghcd->abcd", pairs, pairs)
        pairs = np.einsum("gka,hkb->ghab", y[normal], z[rows])  # g normal, h amplified
        out += np.einsum("ghab,ghcd->abcd", pairs, pairs)
    return out


def _lower_sum(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``L[b, d, a, c] = sum_g sum_{h<g} (y_ag'z_bh)(y_cg'z_dh)`` for ``z, y`` of shape G x r x q.

    With ``y = J z`` the products are the off-diagonal cluster pairs ``O^{ab}_gh O^{cd}_gh``.
    Running prefix sums ``S^{bd}_{<g} = sum_{h<g} z_bh z_dh'`` (in blocks of clusters, so memory
    stays bounded) give ``L = sum_g y_ag' S^{bd}_{<g} y_cg`` in ``O(G q^4 r^2)``, without
    forming the ``G x G`` matrix and without subtracting the diagonal from a total.
    """
    n_clusters, r, q = z.shape
    block = max(1, int(4e6 // (q * q * r * r)))
    out = np.zeros((q, q, q, q))
    running = np.zeros((q, q, r, r))
    for start in range(0, n_clusters, block):
        zb, yb = z[start : start + block], y[start : start + block]
        outer = np.einsum("nkb,nld->nbdkl", zb, zb)
        prefix = np.cumsum(outer, axis=0) - outer + running
        sy = np.einsum("nbdkl,nlc->nbdkc", prefix, yb)
        out += np.einsum("nka,nbdkc->bdac", yb, sy)
        running += outer.sum(axis=0)
    return out


def singular_message(singular, names, cluster_levels=None, *, limit: int = 5) -> str:
    """The warning for clusters whose ``G_g`` is singular beyond their unit effects.

    ``names`` labels the coefficients by position (``None``: not reported, not named);
    ``cluster_levels`` labels the clusters by code.
    """

    def label(code: int) -> str:
        return format_value(cluster_levels[code]) if cluster_levels is not None else f"#{code}"

    parts = []
    for s in singular[:limit]:
        terms = ", ".join(names[i] for i in s.affected if names[i] is not None)
        terms = terms or "no reported term"
        parts.append(f"{label(s.cluster)} (affects {terms})")
    more = f" and {len(singular) - limit} more" if len(singular) > limit else ""
    return (
        f"CR2: the adjustment matrix of cluster(s) {'; '.join(parts)}{more} is singular beyond "
        "the cluster's own unit fixed effects: the fixed effects and regressors fit that "
        "cluster's rows exactly in some direction (for example it is the only cluster observed "
        "at an event time, or the only treated cluster), so its residuals there are zero. As "
        "clubSandwich does, the Moore-Penrose pseudo-inverse is used: such a direction adds "
        "nothing to the covariance, and the standard errors of the affected terms rest on the "
        "other clusters and may be too small. Bin sparse event times (window=...), or compare "
        "with the wild cluster bootstrap (cpdimpact.did.wild_cluster_bootstrap)."
    )


def _matrix_power(x: np.ndarray, power: float) -> np.ndarray:
    """Symmetric matrix power with eigenvalues <= EIG_TOL set to zero (pseudo-inverse)."""
    lam, vec = np.linalg.eigh(x)
    safe = np.where(lam > EIG_TOL, lam, 1.0)
    return (vec * np.where(lam > EIG_TOL, safe**power, 0.0)) @ vec.T


def _within(x: np.ndarray, unit: np.ndarray, w: np.ndarray, n_units: int) -> np.ndarray:
    """Weighted deviations from unit means (unscaled)."""
    wsum = np.bincount(unit, weights=w, minlength=n_units)
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        means = np.bincount(unit, weights=w * x[:, j], minlength=n_units) / wsum
        out[:, j] = x[:, j] - means[unit]
    return out


def _chol_qr(z: np.ndarray) -> np.ndarray:
    """R of a QR of ``z`` (full column rank) by CholeskyQR2: two Gram products, no LAPACK QR.

    As accurate as Householder for condition numbers below ~1e7 and, unlike a tall QR, fast
    under a multi-threaded BLAS on a busy machine.
    """
    r1 = np.linalg.cholesky(z.T @ z).T
    z1 = solve_triangular(r1, z.T, trans="T", lower=False).T
    r2 = np.linalg.cholesky(z1.T @ z1).T
    return r2 @ r1


def _orthonormal(z: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the numerical column span of ``z`` (columns of norm <= 1).

    Eigen-decomposition of the Gram matrix drops directions with squared singular values
    below ``_GRAM_TOL`` (exact collinearities, which are common within a cluster), then one
    re-orthonormalisation restores orthogonality to rounding error.
    """
    gam, vec = np.linalg.eigh(z.T @ z)
    keep = gam > _GRAM_TOL * max(float(gam.max(initial=0.0)), 1.0)
    if not keep.any():
        return np.zeros((z.shape[0], 0))
    b1 = z @ (vec[:, keep] / np.sqrt(gam[keep]))
    # Second pass: b1 is orthonormal up to ~eps/gam; directions that were only rounding
    # noise show up as small eigenvalues here and are dropped (a basis may hold extra
    # directions of the span, never directions outside it).
    lam, v2 = np.linalg.eigh(b1.T @ b1)
    good = lam > 0.5
    return b1 @ (v2[:, good] / np.sqrt(lam[good]))


def cr2(
    x: np.ndarray,
    y: np.ndarray,
    *,
    unit: np.ndarray,
    cluster: np.ndarray,
    weights: np.ndarray | None,
) -> tuple[np.ndarray, CR2]:
    """Fit ``y = unit FE + x b`` by (weighted) least squares and return ``(b, CR2)``.

    ``x`` holds the non-fixed-effect columns (period dummies, reported terms, covariates; no
    constant), ``unit`` and ``cluster`` are integer codes with every unit inside one cluster,
    ``weights`` are positive or ``None``. See the module Notes for the algebra.
    """
    n, k = x.shape
    n_units = int(unit.max()) + 1
    n_clusters = int(cluster.max()) + 1
    weighted = weights is not None
    # clubSandwich divides the weights by their mean; the result does not depend on it.
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float) / np.mean(weights)

    # Rows sorted by cluster, then unit: every cluster (and unit) is a contiguous slice.
    order = np.lexsort((unit, cluster))
    unit = unit[order]
    w = w[order]
    xd = _within(np.asarray(x, dtype=float)[order], unit, w, n_units)
    yd = _within(np.asarray(y, dtype=float)[order][:, None], unit, w, n_units)[:, 0]
    sw = np.sqrt(w)
    scale = np.linalg.norm(xd * sw[:, None], axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    r_fac = _chol_qr(xd * (sw[:, None] / scale))
    r_inv = solve_triangular(r_fac, np.eye(k), lower=False)
    bread = (r_inv @ r_inv.T) / np.outer(scale, scale)
    bread = (bread + bread.T) / 2
    beta = bread @ (xd.T @ (w * yd))
    resid = yd - xd @ beta

    wx = w[:, None] * xd
    omega = wx.T @ wx
    mom = bread @ omega @ bread
    joint = np.block([[mom, -bread], [-bread, np.zeros((k, k))]])
    starts = np.concatenate([[0], np.cumsum(np.bincount(cluster, minlength=n_clusters))])
    slices = [slice(starts[g], starts[g + 1]) for g in range(n_clusters)]
    if weighted:
        psi = np.empty((n_clusters, k))
        xa = np.empty((n_clusters, k, k))
        ra = np.empty((n_clusters, k, k))
        dm = np.empty((n_clusters, k, k))
        amp = np.empty(n_clusters)
        extras = []
        for g, sl in enumerate(slices):
            psi[g], xa[g], ra[g], dm[g], amp[g], extra = _weighted_cluster(
                xd[sl], resid[sl], w[sl], unit[sl], bread, mom
            )
            extras.append(extra)
    else:
        psi, xa, dm, amp, extras = _unweighted(xd, resid, slices, bread)
        ra = xa
    singular = tuple(SingularCluster(g, e[0], e[1]) for g, e in enumerate(extras) if e is not None)
    cov = bread @ (psi.T @ psi) @ bread
    cov = (cov + cov.T) / 2
    return beta, CR2(
        cov=cov,
        bread=bread,
        joint=joint,
        xa=xa,
        ra=ra,
        dm=dm,
        singular=singular,
        weighted=weighted,
        amplification=amp,
    )


def _unweighted(xd, resid, slices, bread):
    """All clusters at once when ``W = I``: ``A_g = I + X_g B_g X_g'`` with a ``k x k`` ``B_g``.

    With ``bread = L L'`` and ``L' F_g L = V diag(lam) V'`` (``F_g = X_g'X_g``),
    ``B_g = L V diag(h(lam)) V' L'`` where ``h(lam) = ((1 - lam)^{-1/2} - 1) / lam
    = 1 / (s (1 + s))``, ``s = (1 - lam)^{1/2}``: smooth at 0, so the rank of ``X_g`` never
    needs deciding; ``h = -1/lam`` where ``1 - lam <= EIG_TOL`` (the pseudo-inverse).
    """
    n_clusters, k = len(slices), xd.shape[1]
    gram = np.empty((n_clusters, k, k))
    xe = np.empty((n_clusters, k))
    for g, sl in enumerate(slices):
        xg = xd[sl]
        gram[g] = xg.T @ xg
        xe[g] = xg.T @ resid[sl]
    chol = np.linalg.cholesky(bread)
    inner = chol.T @ gram @ chol
    lam, vec = np.linalg.eigh((inner + np.swapaxes(inner, 1, 2)) / 2)
    lam = np.clip(lam, 0.0, 1.0)
    null = 1.0 - lam <= EIG_TOL
    root = np.sqrt(np.where(null, 1.0, 1.0 - lam))
    h = np.where(null, -1.0 / np.where(null, lam, 1.0), 1.0 / (root * (1.0 + root)))
    amp = np.max(np.where(null, 1.0, 1.0 / root), axis=1)
    lv = chol @ vec
    b_mat = (lv * h[:, None, :]) @ np.swapaxes(lv, 1, 2)
    fb = gram @ b_mat
    psi = xe + np.einsum("gkl,gl->gk", fb, xe)
    xa = gram + fb @ gram
    xa = (xa + np.swapaxes(xa, 1, 2)) / 2
    dm = xa + xa @ np.swapaxes(fb, 1, 2)
    dm = (dm + np.swapaxes(dm, 1, 2)) / 2
    extras: list = [None] * n_clusters
    for g in np.flatnonzero(null.any(axis=1)):
        # Directions X_g L v / sqrt(lam) of cluster g; influence of coefficient s: X_g M e_s.
        dirs = (gram[g] @ lv[g][:, null[g]]) / np.sqrt(lam[g][null[g]])
        load = np.linalg.norm(dirs.T @ bread, axis=0)
        size = np.sqrt(np.maximum(np.einsum("ks,kl,ls->s", bread, gram[g], bread), 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(size > 0, load / size, 0.0)
        affected = tuple(int(i) for i in np.flatnonzero(share > _AFFECTED_TOL))
        extras[g] = (int(null[g].sum()), affected)
    return psi, xa, dm, amp, extras


def _weighted_cluster(xg, eg, wg, ug, bread, mom):
    """Per-cluster pieces with weights: influence, the maps ``xa``, ``ra``, ``dm``, null space.

    The basis of ``span Y_g`` is, per unit, ``1_u / sqrt(n_u)`` and the unit's centred weights
    (analytic), then an orthonormal basis of the rest of ``[X_g, R_g]``.
    """
    n_g, k = xg.shape
    wxg = wg[:, None] * xg
    # Units are contiguous within the cluster (rows sorted by cluster, then unit).
    first = np.concatenate([[0], np.flatnonzero(np.diff(ug)) + 1])
    n_u = np.diff(np.concatenate([first, [n_g]])).astype(float)
    code = np.repeat(np.arange(first.size), n_u.astype(np.intp))
    sw_u = np.add.reduceat(wg, first)
    delta = wg - (sw_u / n_u)[code]
    dn_u = np.sqrt(np.add.reduceat(delta * delta, first))
    wn_u = np.sqrt(np.add.reduceat(wg * wg, first))
    has2 = dn_u > _RANK_TOL * wn_u
    idx2 = np.flatnonzero(has2)
    e1 = 1.0 / np.sqrt(n_u)[code]
    e2 = np.where(has2[code], delta / np.where(has2, dn_u, 1.0)[code], 0.0)
    rg = wxg - (np.add.reduceat(wg[:, None] * wxg, first) / sw_u[:, None])[code]

    def unit_coords(v):
        c1 = np.add.reduceat(e1[:, None] * v, first)
        c2 = np.add.reduceat(e2[:, None] * v, first)[idx2]
        return np.vstack([c1, c2])

    # span{X_g, R_g} = span{X_g, R_g - c X_g}: with c the cluster's mean weight the second
    # block measures how much the weights vary, and stays well conditioned when they barely do.
    c_w = float(np.mean(wg))
    rs = rg - c_w * xg
    dense = np.hstack([xg, rs])
    c_unit = unit_coords(dense)
    full = np.zeros((first.size, dense.shape[1]))
    full[idx2] = c_unit[first.size :]
    dense_perp = dense - e1[:, None] * c_unit[: first.size][code] - e2[:, None] * full[code]
    ref = np.linalg.norm(xg, axis=0)
    col_scale = np.concatenate(
        [ref, np.maximum(np.linalg.norm(rs, axis=0), _WEIGHT_FLOOR * c_w * ref)]
    )
    col_scale = np.where(col_scale > 0, col_scale, 1.0)
    basis = _orthonormal(dense_perp / col_scale)

    def coords(v):
        return np.vstack([unit_coords(v), basis.T @ v])

    n_unit = first.size + idx2.size
    r_dim = n_unit + basis.shape[1]
    c_x, c_s, nn = coords(xg), coords(rs), coords(wxg)
    c_r = c_s + c_w * c_x
    ce = coords(eg[:, None])[:, 0]
    units = np.arange(first.size)
    r_d = np.zeros((r_dim, first.size))
    r_d[units, units] = np.sqrt(n_u)
    r_pi = np.zeros((r_dim, first.size))
    r_pi[units, units] = 1.0 / np.sqrt(n_u)
    r_pi[first.size + np.arange(idx2.size), idx2] = dn_u[idx2] / sw_u[idx2]
    pipi = (wn_u / sw_u) ** 2
    t_mat = (
        r_d @ (pipi[:, None] * r_d.T)
        - r_d @ r_pi.T
        - r_pi @ r_d.T
        + c_x @ (mom - 2 * c_w * bread) @ c_x.T
        - c_x @ bread @ c_s.T
        - c_s @ bread @ c_x.T
    )
    lam, vec = np.linalg.eigh((t_mat + t_mat.T) / 2)
    g_eig = 1.0 + lam
    null = g_eig <= EIG_TOL
    f = np.where(null, 0.0, 1.0 / np.sqrt(np.where(null, 1.0, g_eig)))
    phi = (vec * (f - 1.0)) @ vec.T
    amp = float(max(f.max(initial=1.0), 1.0))
    phi_n = phi @ nn

    psi = xg.T @ (wg * eg) + phi_n.T @ ce
    xa = xg.T @ wxg + c_x.T @ phi_n
    ra = rg.T @ wxg + c_r.T @ phi_n
    id_phi_n = nn + phi_n  # (I + Phi) N
    d_n = r_d.T @ id_phi_n
    pi_n = r_pi.T @ id_phi_n
    dm = (
        wxg.T @ wxg
        + nn.T @ (2 * phi_n + phi @ phi_n)
        - d_n.T @ pi_n
        - pi_n.T @ d_n
        + d_n.T @ (pipi[:, None] * d_n)
    )
    dm = (dm + dm.T) / 2

    extra = None
    if int(null.sum()) > first.size:
        # Null directions beyond the units' own (each pi_u is one).
        qpi = _orthonormal(r_pi / np.linalg.norm(r_pi, axis=0))
        vn = vec[:, null]
        vn = vn - qpi @ (qpi.T @ vn)
        un, sn, _ = np.linalg.svd(vn, full_matrices=False)
        directions = un[:, sn > 0.5]
        infl = nn @ bread  # coordinates of W_g X_g M, one column per coefficient
        size = np.linalg.norm(infl, axis=0)
        load = np.linalg.norm(directions.T @ infl, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(size > 0, load / size, 0.0)
        affected = tuple(int(i) for i in np.flatnonzero(share > _AFFECTED_TOL))
        if directions.shape[1]:
            extra = (int(directions.shape[1]), affected)
    return psi, xa, ra, dm, amp, extra
