r"""Effect-size formulas of the trial analyses: the EEF headline and eefAnalytics' variants.

Every function returns ``(estimate, std_error)``; intervals are ``estimate -/+ z * std_error``
with :math:`z` the normal quantile (eefAnalytics rounds it to 1.96).

* :func:`within_crt` and :func:`total_crt`: Hedges (2007) :math:`d_W` and :math:`d_T` for a
  cluster-randomised trial with unequal cluster sizes, as eefAnalytics' ``crtFREQ`` applies
  them (its ``Within`` and ``Total``), with the ICC and variances of a fitted model.
* :func:`multisite`: eefAnalytics' ``mstFREQ`` conditional effect sizes: the coefficient over a
  model-based SD, with the variance of a random-slope coefficient.
* :func:`simple`: eefAnalytics' ``srtFREQ``: Hedges' g with the small-sample factor
  :math:`J = 1 - 3/(4(N-2)-1)`.

References
----------
Hedges, L. V. (2007). Effect sizes in cluster-randomized designs. *Journal of Educational and
Behavioral Statistics*, 32(4), 341-370.

Kasim, A., Xiao, Z., Higgins, S., & De Troyer, E. (2017). eefAnalytics: Analysing Education
Trials. R package (CRAN, 1.1.5).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ClusterSizes", "multisite", "simple", "total_crt", "total_correction", "within_crt"]


class ClusterSizes:
    """Pupils per cluster in each arm: what Hedges' (2007) unequal-size formulas need.

    Parameters
    ----------
    treated, control
        Cluster sizes (pupils) in the treated and the control arm.
    """

    def __init__(self, treated: np.ndarray, control: np.ndarray):
        self.t = np.asarray(treated, dtype=float)
        self.c = np.asarray(control, dtype=float)
        self.n_t, self.n_c = float(self.t.sum()), float(self.c.sum())
        self.n = self.n_t + self.n_c
        self.m_t, self.m_c = len(self.t), len(self.c)

    @classmethod
    def from_arrays(cls, treatment: np.ndarray, cluster: np.ndarray) -> ClusterSizes:
        """Sizes of the (cluster, arm) cells; a cluster with both arms counts in each arm."""
        treated = treatment == 1
        return cls(
            np.unique(cluster[treated], return_counts=True)[1],
            np.unique(cluster[~treated], return_counts=True)[1],
        )

    @property
    def n_tilde(self) -> float:
        r""":math:`\tilde n = \frac{N_C\sum_T n_i^2}{N_T N} + \frac{N_T\sum_C n_i^2}{N_C N}`."""
        return float(
            self.n_c * (self.t**2).sum() / (self.n_t * self.n)
            + self.n_t * (self.c**2).sum() / (self.n_c * self.n)
        )

    @property
    def n_u(self) -> tuple[float, float]:
        r"""Per arm :math:`n_U = (N^2 - \sum n_i^2) / (N (m - 1))`; ``nan`` for one cluster."""

        def one(sizes, total, m):
            return (total**2 - (sizes**2).sum()) / (total * (m - 1)) if m > 1 else np.nan

        return one(self.t, self.n_t, self.m_t), one(self.c, self.n_c, self.m_c)


def within_crt(beta: float, var_within: float, icc: float, sizes: ClusterSizes):
    r"""Hedges' (2007) :math:`d_W` with unequal cluster sizes (eefAnalytics' "Within").

    .. math::
        d_W = \frac{\beta}{\sigma_W},\qquad
        V(d_W) = \frac{N}{N_T N_C}\,\frac{1 + (\tilde n - 1)\rho}{1 - \rho}
                 + \frac{d_W^2}{2(N - M)}
    """
    s = sizes
    d = beta / np.sqrt(var_within)
    m = s.m_t + s.m_c
    v = s.n / (s.n_t * s.n_c) * (1 + (s.n_tilde - 1) * icc) / (1 - icc) + d**2 / (2 * (s.n - m))
    return float(d), float(np.sqrt(v))


def total_correction(icc: float, sizes: ClusterSizes) -> float:
    r"""Hedges' (2007) factor for :math:`d_T` with unequal cluster sizes.

    .. math::
        \sqrt{1 - \rho\,\frac{(N - n_U^T m_T - n_U^C m_C) + n_U^T + n_U^C - 2}{N - 2}}

    (:math:`\sqrt{1 - 2(n-1)\rho/(N-2)}` with equal clusters of size *n*.)
    """
    s = sizes
    nut, nuc = s.n_u
    return float(np.sqrt(1 - icc * ((s.n - nut * s.m_t - nuc * s.m_c) + nut + nuc - 2) / (s.n - 2)))


def total_crt(beta: float, var_total: float, icc: float, sizes: ClusterSizes):
    r"""Hedges' (2007) :math:`d_T` with unequal cluster sizes (eefAnalytics' "Total").

    .. math::
        d_T = \frac{\beta}{\sigma_T}\sqrt{1 - \rho\,\frac{(N - n_U^T m_T - n_U^C m_C)
              + n_U^T + n_U^C - 2}{N - 2}},

        V(d_T) = \frac{N}{N_T N_C}\,(1 + (\tilde n - 1)\rho)
                 + d_T^2\,\frac{(N-2)(1-\rho)^2 + A\rho^2 + 2B\rho(1-\rho)}
                               {2(N-2)\,((N-2) - \rho(N - 2 - B))}

    with :math:`B = n_U^T(m_T - 1) + n_U^C(m_C - 1)` and
    :math:`A = \sum_{arms} (N_a^2 \sum n_i^2 + (\sum n_i^2)^2 - 2 N_a \sum n_i^3) / N_a^2`.
    """
    s = sizes
    nut, nuc = s.n_u
    d = beta / np.sqrt(var_total) * total_correction(icc, s)
    b = nut * (s.m_t - 1) + nuc * (s.m_c - 1)

    def a_term(sizes_arm, total):
        sq = (sizes_arm**2).sum()
        return (total**2 * sq + sq**2 - 2 * total * (sizes_arm**3).sum()) / total**2

    a = a_term(s.t, s.n_t) + a_term(s.c, s.n_c)
    n2 = s.n - 2
    v = s.n / (s.n_t * s.n_c) * (1 + (s.n_tilde - 1) * icc) + d**2 * (
        n2 * (1 - icc) ** 2 + a * icc**2 + 2 * b * icc * (1 - icc)
    ) / (2 * n2 * (n2 - icc * (n2 - b)))
    return float(d), float(np.sqrt(v))


def multisite(
    beta: float,
    var_denominator: float,
    var_within: float,
    var_slope: float,
    treatment: np.ndarray,
    cluster: np.ndarray,
):
    r"""eefAnalytics' multisite effect size: :math:`\beta/\sigma` with a random-slope variance.

    .. math::
        d = \frac{\beta}{\sigma_D},\qquad
        V(d) = \Big(\sum_{j} \frac{\sigma_D^2}{\tau_1^2 + \sigma_W^2/\tilde n_j}\Big)^{-1}
               + \frac{d^2}{2N - 4M},\qquad \tilde n_j = \frac{n_{jT}\,n_{jC}}{n_{jT} + n_{jC}},

    the sum over sites with both arms (:math:`\tau_1^2` the slope variance), *M* all sites.
    :math:`\sigma_D^2` is the within-school variance ("Within") or the total variance of the
    random-slope model averaged over pupils ("Total"); no small-sample correction is applied.
    """
    treated = treatment == 1
    _, codes = np.unique(cluster, return_inverse=True)
    n_t = np.bincount(codes, weights=treated.astype(float))
    n_all = np.bincount(codes).astype(float)
    n_c = n_all - n_t
    both = (n_t > 0) & (n_c > 0)
    harmonic = n_t[both] * n_c[both] / n_all[both]
    d = beta / np.sqrt(var_denominator)
    n, m = len(treatment), len(n_all)
    v = 1 / np.sum(var_denominator / (var_slope + var_within / harmonic)) + d**2 / (2 * n - 4 * m)
    return float(d), float(np.sqrt(v))


def simple(beta: float, sd: float, n_treated: int, n_control: int):
    r"""eefAnalytics' pupil-randomised effect size: Hedges' g.

    .. math::
        d = \frac{\beta}{s},\quad V(d) = \frac{N}{N_T N_C} + \frac{d^2}{2N},\quad
        g = J d,\quad SE(g) = J\sqrt{V(d)},\quad J = 1 - \frac{3}{4(N - 2) - 1}
    """
    n = n_treated + n_control
    d = beta / sd
    j = 1 - 3 / (4 * (n - 2) - 1)
    se = np.sqrt(n / (n_treated * n_control) + d**2 / (2 * n))
    return float(j * d), float(j * se)
