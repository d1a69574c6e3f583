"""Effect sizes for cluster-randomised designs: Hedges (2007) d_W and d_T, Hedges (2011).

Pupils nested in schools (two levels) or in classes in schools (three levels), the whole
school randomised. The variances follow from the nested random-effects model; the moments are
computed for any cluster sizes, so one code path gives Hedges' equal-size formulas exactly
and their unequal-size generalisations.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._guards import not_indicator
from .._validate import check_alpha
from ..errors import DesignError, InvalidValueError, format_rows
from ._hedges import EffectSize
from ._inputs import finite, label_text, positive_sd, real, whole
from ._standardised import wald_effect_size

__all__ = [
    "cluster_d_total",
    "cluster_d_total_from_data",
    "cluster_d_within",
    "cluster_d_within_from_data",
    "three_level_d_total",
    "three_level_d_within",
]

_NOTE = (
    "Large-sample (Wald) interval from the Hedges (2007, 2011) variance, which assumes "
    "normal outcomes, a common ICC in both arms and clusters nested within arms."
)


# --- moments of the nested random-effects model ------------------------------------------


def _moments(arms: Sequence[np.ndarray], rhos: Sequence[float]) -> tuple[float, float, float]:
    r"""Design moments of a two-arm nested design.

    ``arms`` holds, per arm, an array of shape ``(L, N_a)``: row ``l`` gives, for every pupil,
    the size of the pupil's group at clustered level ``l`` (finest first). ``rhos`` are the
    levels' intraclass correlations (shares of the total variance).

    Returns ``(v, e0, q)`` with, for :math:`\sigma_T^2` the total variance,

    - ``v = Var(mean_T - mean_C) / sigma_T^2``;
    - ``e0 = E[SS_T] / sigma_T^2``, ``SS_T`` the sum of squares about the arm means;
    - ``q = Var(SS_T) / (2 sigma_T^4) = sum_a tr(A Sigma A Sigma) / sigma_T^4``.

    With :math:`K_l` the block indicator of level *l* (:math:`K_0 = I` for pupils),
    :math:`\Sigma = \sum_l \rho_l K_l` (:math:`\rho_0 = 1 - \sum \rho`) and *A* the centring
    matrix of an arm: :math:`\mathrm{tr}(K_l K_k)` is the sum over pupils of the finer group's
    size, :math:`1'K_l K_k 1` the sum of the product of the two sizes and :math:`1'K_l 1` the
    sum of the sizes, which gives every term in closed form.
    """
    weights = np.array([1.0 - sum(rhos), *rhos])
    v = e0 = q = 0.0
    for sizes in arms:
        n_a = sizes.shape[1]
        levels = np.vstack([np.ones(n_a), sizes])
        sums = levels.sum(axis=1)  # 1' K_l 1
        v += float(weights @ sums) / n_a**2
        e0 += float(weights @ (n_a - sums / n_a))
        cross = levels @ levels.T  # 1' K_l K_k 1
        finer = np.minimum(levels[:, None, :], levels[None, :, :]).sum(axis=2)  # tr(K_l K_k)
        q += (
            float(weights @ (finer - 2.0 * cross / n_a) @ weights)
            + (float(weights @ sums) / n_a) ** 2
        )
    return v, e0, q


def _pupil_sizes(groups: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pupil size of the pupil's group, for groups given by their sizes."""
    groups = np.asarray(groups, dtype=np.int64)
    return np.repeat(groups, groups).astype(float)


# --- input checks ---------------------------------------------------------------------------


def _icc(name: str, value: object) -> float:
    value = real(name, value)
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise InvalidValueError(
            f"{name} must lie in [0, 1), got {value!r}; pass the intraclass correlation as a "
            f"fraction (0.2, not 20). The What Works Clearinghouse default for achievement "
            f"outcomes is 0.20."
        )
    return value


def _sizes(name: str, values: object, *, minimum_groups: int = 2) -> np.ndarray:
    if isinstance(values, str | bytes) or np.ndim(values) != 1:
        raise InvalidValueError(f"{name} must be a sequence of cluster sizes, got {values!r:.60}.")
    sizes = list(values)
    bad = [
        i
        for i, s in enumerate(sizes)
        if not (
            isinstance(s, numbers.Real)
            and not isinstance(s, bool | np.bool_)
            and math.isfinite(s)
            and float(s).is_integer()
            and s >= 1
        )
    ]
    if bad:
        raise InvalidValueError(
            f"{name} must hold whole numbers of pupils of at least 1; see positions "
            f"{format_rows(bad)}."
        )
    if len(sizes) < minimum_groups:
        raise DesignError(
            f"{name} lists {len(sizes)} cluster(s); each arm needs at least {minimum_groups} "
            f"(with one cluster per arm the effect is confounded with the cluster)."
        )
    return np.asarray(sizes, dtype=np.int64)


def _two_level_sizes(
    n_clusters_treatment,
    n_clusters_control,
    cluster_size,
    cluster_sizes_treatment,
    cluster_sizes_control,
) -> tuple[np.ndarray, np.ndarray]:
    equal = (n_clusters_treatment, n_clusters_control, cluster_size)
    unequal = (cluster_sizes_treatment, cluster_sizes_control)
    if all(v is None for v in equal) and all(v is not None for v in unequal):
        return (
            _sizes("cluster_sizes_treatment", cluster_sizes_treatment),
            _sizes("cluster_sizes_control", cluster_sizes_control),
        )
    if all(v is not None for v in equal) and all(v is None for v in unequal):
        n = whole("cluster_size", cluster_size, 1)
        m_t = whole("n_clusters_treatment", n_clusters_treatment, 2)
        m_c = whole("n_clusters_control", n_clusters_control, 2)
        return np.full(m_t, n, dtype=np.int64), np.full(m_c, n, dtype=np.int64)
    raise InvalidValueError(
        "describe the clusters either with equal sizes (n_clusters_treatment, "
        "n_clusters_control and cluster_size) or with unequal sizes (cluster_sizes_treatment "
        "and cluster_sizes_control, one entry per cluster), not a mixture."
    )


def _three_level_sizes(
    n_schools_treatment,
    n_schools_control,
    classes_per_school,
    class_size,
    class_sizes_treatment,
    class_sizes_control,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    equal = (n_schools_treatment, n_schools_control, classes_per_school, class_size)
    unequal = (class_sizes_treatment, class_sizes_control)
    if all(v is not None for v in equal) and all(v is None for v in unequal):
        k_t = whole("n_schools_treatment", n_schools_treatment, 2)
        k_c = whole("n_schools_control", n_schools_control, 2)
        p = whole("classes_per_school", classes_per_school, 1)
        n = whole("class_size", class_size, 1)
        return [np.full(p, n, dtype=np.int64)] * k_t, [np.full(p, n, dtype=np.int64)] * k_c
    if all(v is None for v in equal) and all(v is not None for v in unequal):
        arms = []
        for name, schools in (
            ("class_sizes_treatment", class_sizes_treatment),
            ("class_sizes_control", class_sizes_control),
        ):
            if isinstance(schools, str | bytes) or len(schools) < 2:
                raise DesignError(
                    f"{name} must list at least 2 schools, each a sequence of class sizes."
                )
            arms.append(
                [_sizes(f"{name}[{i}]", s, minimum_groups=1) for i, s in enumerate(schools)]
            )
        return arms[0], arms[1]
    raise InvalidValueError(
        "describe the schools either with equal sizes (n_schools_treatment, n_schools_control, "
        "classes_per_school and class_size) or with unequal sizes (class_sizes_treatment and "
        "class_sizes_control: per arm, one sequence of class sizes per school), not a mixture."
    )


def _fill_parameters(function, parameters: str) -> None:
    """Put the shared parameter descriptions into ``function``'s docstring (kept under -OO)."""
    if function.__doc__:
        function.__doc__ = function.__doc__.format(parameters=parameters.strip())


def _standardise(
    difference: float,
    sd: float,
    moments: tuple[float, float, float],
    *,
    n_all: int,
    within_share: float,
    df_within: int,
    total: bool,
    alpha: float,
    label: str,
    details: tuple[tuple[str, object], ...],
    design: tuple[str, str, str, str],
) -> EffectSize:
    r"""Hedges' :math:`d_T` or :math:`d_W` from the design moments (two or three levels).

    Parameters
    ----------
    difference : float
        Difference in pupil-weighted arm means.
    sd : float
        :math:`S_T` (``total=True``) or :math:`S_W`.
    moments : tuple of float
        ``(v, e0, q)`` from :func:`_moments`.
    n_all : int
        Pupils in both arms.
    within_share : float
        :math:`1 - \sum \rho`, the pupil-level share of the variance.
    df_within : int
        Degrees of freedom of :math:`S_W` (pupils minus finest clusters).
    total : bool
        :math:`d_T` (True) or :math:`d_W`.
    alpha : float
        Significance level of the interval.
    label : str
        Name of the effect.
    details : tuple of (str, object)
        Design facts; the bias factor or the df of :math:`S_W` is added.
    design : tuple of str
        ``(source, design, finest group, df words)`` for the method and SD names, e.g.
        ``("Hedges (2007)", "cluster-randomised", "cluster", "N - M")``.

    Returns
    -------
    EffectSize
        The effect size with its Wald interval.
    """
    v, e0, q = moments
    source, kind, group, df_words = design
    if total:
        factor = math.sqrt(e0 / (n_all - 2))
        d = difference / sd * factor
        return wald_effect_size(
            d=d,
            variance=v + d**2 * q / (2.0 * (n_all - 2) * e0),
            sd=sd,
            alpha=alpha,
            label=label,
            method=f"{source} d_T (total SD, {kind})",
            symbol="d_T",
            sd_name="total SD S_T",
            details=details + (("S_T bias factor", factor),),
            note=_NOTE,
        )
    d = difference / sd
    return wald_effect_size(
        d=d,
        variance=v / within_share + d**2 / (2.0 * df_within),
        sd=sd,
        alpha=alpha,
        label=label,
        method=f"{source} d_W (within-{group} SD, {kind})",
        symbol="d_W",
        sd_name=f"within-{group} SD S_W",
        details=details + ((f"df of S_W ({df_words})", df_within),),
        note=_NOTE,
    )


def _from_summary(
    compute, arm_sizes, difference, sd, iccs: dict, sizes: tuple, *, total: bool, alpha, label
) -> EffectSize:
    """``compute`` (:func:`_two_level` or :func:`_three_level`) on the checked arguments of a
    public function: ``iccs`` maps the ICC arguments' names to their values, and ``sizes``
    holds the size arguments in signature order, read by ``arm_sizes``."""
    arms = arm_sizes(*sizes)
    return compute(
        finite("difference", difference),
        positive_sd("sd_total" if total else "sd_within", sd),
        *(_icc(name, value) for name, value in iccs.items()),
        *arms,
        total=total,
        alpha=check_alpha(alpha),
        label=label_text(label),
    )


# --- two levels (Hedges 2007) -----------------------------------------------------------------


def _two_level(
    difference: float,
    sd: float,
    icc: float,
    sizes_t: np.ndarray,
    sizes_c: np.ndarray,
    *,
    total: bool,
    alpha: float,
    label: str,
    icc_source: str = "given",
) -> EffectSize:
    n_t, n_c = int(sizes_t.sum()), int(sizes_c.sum())
    n_all, m_all = n_t + n_c, sizes_t.size + sizes_c.size
    v, e0, q = _moments([_pupil_sizes(sizes_t)[None, :], _pupil_sizes(sizes_c)[None, :]], [icc])
    n_u = (n_c * float(np.sum(sizes_t**2.0))) / (n_t * n_all) + (
        n_t * float(np.sum(sizes_c**2.0))
    ) / (n_c * n_all)
    per_arm = tuple(
        float((s.sum() ** 2 - np.sum(s**2.0)) / (s.sum() * (s.size - 1)))
        for s in (sizes_t, sizes_c)
    )
    details: tuple[tuple[str, object], ...] = (
        (f"ICC ({icc_source})", icc),
        ("clusters (treatment, control)", (int(sizes_t.size), int(sizes_c.size))),
        ("pupils (treatment, control)", (n_t, n_c)),
        ("cluster size n_U", n_u),
        ("per-arm cluster size (treatment, control)", per_arm),
        ("design effect 1 + (n_U - 1) rho", 1.0 + (n_u - 1.0) * icc),
    )
    if total and (not e0 > 0 or n_all < 3):
        raise DesignError("the total-SD correction is undefined for this design (too few pupils).")
    df_w = n_all - m_all
    if not total and df_w < 1:
        raise DesignError(
            "every cluster has one pupil, so there is no within-cluster SD (N - M = 0); use "
            "cohens_d_from_summary for an individually randomised design."
        )
    return _standardise(
        difference,
        sd,
        (v, e0, q),
        n_all=n_all,
        within_share=1.0 - icc,
        df_within=df_w,
        total=total,
        alpha=alpha,
        label=label,
        details=details,
        design=("Hedges (2007)", "cluster-randomised", "cluster", "N - M"),
    )


_TWO_LEVEL_PARAMETERS = """    icc : float
        Intraclass correlation :math:`\\rho = \\sigma_B^2/(\\sigma_B^2 + \\sigma_W^2)`, in
        [0, 1): from the trial's unconditional multilevel model, or an imputed value (the
        What Works Clearinghouse uses 0.20 for achievement outcomes).
    n_clusters_treatment, n_clusters_control, cluster_size : int, optional
        Equal cluster sizes: *m* clusters per arm (at least 2) of *n* pupils each.
    cluster_sizes_treatment, cluster_sizes_control : sequence of int, optional
        Unequal cluster sizes: one entry per cluster (at least 2 per arm). Give either these
        two or the three equal-size arguments.
    alpha : float, default 0.05
        Significance level of the (normal) interval.
    label : str, default "effect size"
        Name of the effect."""


def cluster_d_within(
    difference: float,
    sd_within: float,
    *,
    icc: float,
    n_clusters_treatment: int | None = None,
    n_clusters_control: int | None = None,
    cluster_size: int | None = None,
    cluster_sizes_treatment: Sequence[int] | None = None,
    cluster_sizes_control: Sequence[int] | None = None,
    alpha: float = 0.05,
    label: str = "effect size",
) -> EffectSize:
    r"""Hedges' (2007) :math:`d_W`: a cluster-randomised mean difference over the within-cluster SD.

    Parameters
    ----------
    difference : float
        :math:`\bar Y^T - \bar Y^C`, the difference in pupil-weighted arm means (outcome units).
    sd_within : float
        :math:`S_W`, the pooled within-cluster SD (on :math:`N - M` degrees of freedom).
    {parameters}

    Returns
    -------
    EffectSize
        ``symbol="d_W"``; ``details`` hold the ICC, cluster and pupil counts, :math:`n_U` and
        the design effect.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If ``icc`` is outside [0, 1), ``sd_within`` is not positive, sizes are not whole
        numbers, or both size forms (or neither) are given; the message names the argument.
    cpdimpact.errors.DesignError
        If an arm has fewer than 2 clusters, or every cluster has one pupil.

    Notes
    -----
    Model: :math:`Y_{{ij}} = \mu + \tau T_j + u_j + e_{{ij}}`,
    :math:`\operatorname{{var}}(u) = \sigma_B^2`, :math:`\operatorname{{var}}(e) = \sigma_W^2`,
    :math:`\rho = \sigma_B^2/\sigma_T^2`. With :math:`N^T, N^C` pupils and *M* clusters in
    all, :math:`N = N^T + N^C`, equal cluster size *n* (Hedges 2007):

    .. math::

        d_W = \frac{{\bar Y^T - \bar Y^C}}{{S_W}}, \qquad
        V(d_W) = \frac{{N^T + N^C}}{{N^T N^C}}\,\frac{{1 + (n - 1)\rho}}{{1 - \rho}}
                 + \frac{{d_W^2}}{{2(N - M)}}.

    With unequal sizes *n* becomes (Hedges 2007)

    .. math::

        n_U = \frac{{N^C \sum_{{j \in T}} n_j^2}}{{N^T N}}
            + \frac{{N^T \sum_{{j \in C}} n_j^2}}{{N^C N}},

    which is exact: :math:`\operatorname{{var}}(\bar Y^T - \bar Y^C) =
    \sigma_T^2\,(N/(N^T N^C))\,(1 + (n_U - 1)\rho)`, and equals *n* when sizes are equal.
    :math:`d_W` estimates :math:`\delta_W = \tau/\sigma_W`; it is comparable with effect
    sizes from single-school studies that standardise by a within-school SD. With
    :math:`\rho = 0` the variance is the Hedges & Olkin (1985) large-sample variance with
    :math:`N - M` degrees of freedom for the SD.

    References
    ----------
    Hedges, L. V. (2007). Effect sizes in cluster-randomized designs. *Journal of Educational
    and Behavioral Statistics*, 32(4), 341-370.

    Examples
    --------
    >>> from cpdimpact.effects import cluster_d_within
    >>> es = cluster_d_within(
    ...     3.0, 10.0, icc=0.2, n_clusters_treatment=10, n_clusters_control=10, cluster_size=20
    ... )
    >>> round(es.estimate, 4), round(es.variance, 5)
    (0.3, 0.06012)
    """
    sizes = (
        n_clusters_treatment,
        n_clusters_control,
        cluster_size,
        cluster_sizes_treatment,
        cluster_sizes_control,
    )
    return _from_summary(
        _two_level,
        _two_level_sizes,
        difference,
        sd_within,
        {"icc": icc},
        sizes,
        total=False,
        alpha=alpha,
        label=label,
    )


def cluster_d_total(
    difference: float,
    sd_total: float,
    *,
    icc: float,
    n_clusters_treatment: int | None = None,
    n_clusters_control: int | None = None,
    cluster_size: int | None = None,
    cluster_sizes_treatment: Sequence[int] | None = None,
    cluster_sizes_control: Sequence[int] | None = None,
    alpha: float = 0.05,
    label: str = "effect size",
) -> EffectSize:
    r"""Hedges' (2007) :math:`d_T`: a cluster-randomised mean difference over the total SD.

    Parameters
    ----------
    difference : float
        :math:`\bar Y^T - \bar Y^C`, the difference in pupil-weighted arm means (outcome units).
    sd_total : float
        :math:`S_T`, the SD of pupils about their arm means, pooled over the two arms on
        :math:`N - 2` degrees of freedom (the SD a naive two-group analysis would use).
    {parameters}

    Returns
    -------
    EffectSize
        ``symbol="d_T"``; ``details`` hold the ICC, counts, :math:`n_U`, the design effect and
        the bias factor applied to :math:`S_T`.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If ``icc`` is outside [0, 1), ``sd_total`` is not positive, sizes are not whole
        numbers, or both size forms (or neither) are given; the message names the argument.
    cpdimpact.errors.DesignError
        If an arm has fewer than 2 clusters.

    Notes
    -----
    :math:`S_T^2` underestimates :math:`\sigma_T^2` in a clustered sample,
    :math:`E(S_T^2) = \sigma_T^2\,[1 - 2(n-1)\rho/(N-2)]`, which Hedges (2007) corrects:

    .. math::

        d_T = \frac{{\bar Y^T - \bar Y^C}}{{S_T}}\sqrt{{1 - \frac{{2(n-1)\rho}}{{N-2}}}},

        V(d_T) = \frac{{N^T + N^C}}{{N^T N^C}}\,(1 + (n-1)\rho)
          + d_T^2\,\frac{{(N-2)(1-\rho)^2 + n(N-2n)\rho^2 + 2(N-2n)\rho(1-\rho)}}
                       {{2(N-2)\,[(N-2) - 2(n-1)\rho]}}.

    Unequal cluster sizes. Write :math:`\tilde n_a = (N_a^2 - \sum_j n_j^2)/(N_a(m_a - 1))`
    for arm *a* (Hedges 2007), :math:`B = \tilde n_T (m_T - 1) + \tilde n_C (m_C - 1)` and
    :math:`A = \sum_a [\sum_j n_j^2 - 2\sum_j n_j^3/N_a + (\sum_j n_j^2)^2/N_a^2]`. Then
    :math:`E(SS_T) = \sigma_T^2\,[(N-2) - \rho(N - 2 - B)]` and
    :math:`\operatorname{{var}}(SS_T) = 2\sigma_T^4\,[(N-2)(1-\rho)^2 + A\rho^2 +
    2B\rho(1-\rho)]`, so *n* in the correction becomes :math:`2(n-1) \to N - 2 - B`, the
    numerator of the second variance term takes *A* and *B*, and the first term takes
    :math:`n_U` (see :func:`cluster_d_within`). With equal sizes :math:`B = N - 2n`,
    :math:`A = n(N - 2n)` and every formula reduces to the one above. The second variance
    term keeps Hedges' form :math:`d_T^2\,\operatorname{{var}}(SS_T)/(4\sigma_T^4 (N-2)
    E(SS_T)/\sigma_T^2)`.

    :math:`d_T` estimates :math:`\delta_T = \tau/\sigma_T`, comparable with effect sizes from
    individually randomised studies; it is the What Works Clearinghouse's and (with the
    model-based total variance) the EEF's headline standardisation.

    References
    ----------
    Hedges, L. V. (2007). Effect sizes in cluster-randomized designs. *Journal of Educational
    and Behavioral Statistics*, 32(4), 341-370.

    Examples
    --------
    The check in ``docs/sources.md`` section "Hedges (2007)":
    :math:`(\bar Y^T - \bar Y^C)/S_T = 0.30`, 200 + 200 pupils in clusters of 20,
    :math:`\rho = 0.2`.

    >>> from cpdimpact.effects import cluster_d_total
    >>> es = cluster_d_total(
    ...     3.0, 10.0, icc=0.2, n_clusters_treatment=10, n_clusters_control=10, cluster_size=20
    ... )
    >>> round(es.estimate, 5), round(es.variance, 5)
    (0.29712, 0.04819)
    """
    sizes = (
        n_clusters_treatment,
        n_clusters_control,
        cluster_size,
        cluster_sizes_treatment,
        cluster_sizes_control,
    )
    return _from_summary(
        _two_level,
        _two_level_sizes,
        difference,
        sd_total,
        {"icc": icc},
        sizes,
        total=True,
        alpha=alpha,
        label=label,
    )


_fill_parameters(cluster_d_within, _TWO_LEVEL_PARAMETERS)
_fill_parameters(cluster_d_total, _TWO_LEVEL_PARAMETERS)


# --- two levels from pupil data --------------------------------------------------------------


def _cluster_data(outcome, treatment, cluster):
    """Validated arrays: outcome (float), treated (bool), cluster codes; plus sums."""
    n = None
    arrays = {}
    for name, values in (("outcome", outcome), ("treatment", treatment), ("cluster", cluster)):
        if isinstance(values, pd.DataFrame) or isinstance(values, str | bytes):
            raise InvalidValueError(f"{name} must be one column (a Series, array or list).")
        if np.ndim(values) != 1:
            raise InvalidValueError(f"{name} must be one-dimensional.")
        series = values if isinstance(values, pd.Series) else pd.Series(values)
        series = series.reset_index(drop=True)
        if n is not None and len(series) != n:
            raise InvalidValueError(
                f"outcome, treatment and cluster must have the same length; {name} has "
                f"{len(series)} rows, outcome {n}."
            )
        n = len(series)
        arrays[name] = series
    y = pd.to_numeric(arrays["outcome"], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise InvalidValueError(
            f"outcome has missing or non-numeric values at {format_rows(bad)}; drop those "
            f"pupils first and report them as attrition."
        )
    t = arrays["treatment"]
    if t.isna().any() or not set(pd.unique(t)) <= {0, 1}:
        bad = np.flatnonzero(not_indicator(t))
        raise InvalidValueError(
            f"treatment must be True/False or 1/0 for every pupil; see {format_rows(bad)}."
        )
    treated = t.astype(bool).to_numpy()
    c = arrays["cluster"]
    if c.isna().any():
        raise InvalidValueError(
            f"cluster is missing at {format_rows(np.flatnonzero(c.isna().to_numpy()))}."
        )
    codes, labels = pd.factorize(c, sort=True)
    arm_of = pd.Series(treated).groupby(codes).agg(["min", "max"])
    mixed = arm_of.index[arm_of["min"] != arm_of["max"]]
    if len(mixed):
        raise DesignError(
            f"clusters must lie wholly in one arm in a cluster-randomised design; clusters "
            f"{', '.join(map(repr, labels[mixed][:5].tolist()))} have pupils in both arms. "
            f"For randomisation within schools use a multisite analysis instead."
        )
    sizes = np.bincount(codes)
    cluster_treated = arm_of["max"].to_numpy(dtype=bool)
    sizes_t, sizes_c = sizes[cluster_treated], sizes[~cluster_treated]
    for arm, s in (("treatment", sizes_t), ("control", sizes_c)):
        if s.size < 2:
            raise DesignError(
                f"the {arm} arm has {s.size} cluster(s); each arm needs at least 2 (with one "
                f"cluster per arm the effect is confounded with the cluster)."
            )
    cluster_sum = np.bincount(codes, weights=y)
    cluster_mean = cluster_sum / sizes
    ss_w = float(np.sum((y - cluster_mean[codes]) ** 2))
    mean_t, mean_c = float(y[treated].mean()), float(y[~treated].mean())
    arm_mean = np.where(treated, mean_t, mean_c)
    ss_t = float(np.sum((y - arm_mean) ** 2))
    return {
        "difference": mean_t - mean_c,
        "ss_w": ss_w,
        "ss_t": ss_t,
        "sizes_t": sizes_t.astype(np.int64),
        "sizes_c": sizes_c.astype(np.int64),
        "n": len(y),
        "m": sizes.size,
    }


def _anova_icc(parts: dict) -> float:
    """Moment (ANOVA) estimate of the ICC from within- and between-cluster sums of squares."""
    n, m = parts["n"], parts["m"]
    s2_w = parts["ss_w"] / (n - m)
    ss_b = parts["ss_t"] - parts["ss_w"]
    b = sum(float(s.sum() - np.sum(s**2.0) / s.sum()) for s in (parts["sizes_t"], parts["sizes_c"]))
    sigma_b = max((ss_b - (m - 2) * s2_w) / b, 0.0)
    total = sigma_b + s2_w
    return sigma_b / total if total > 0 else 0.0


def _from_data(outcome, treatment, cluster, icc, *, total: bool, alpha, label) -> EffectSize:
    alpha, label = check_alpha(alpha), label_text(label)
    parts = _cluster_data(outcome, treatment, cluster)
    n, m = parts["n"], parts["m"]
    if n - m < 1:
        raise DesignError(
            "every cluster has one pupil, so there is no within-cluster SD; use "
            "cohens_d_from_data for an individually randomised design."
        )
    if icc is None:
        rho, source = _anova_icc(parts), "ANOVA estimate"
    else:
        rho, source = _icc("icc", icc), "given"
    ss = parts["ss_t"] if total else parts["ss_w"]
    sd = math.sqrt(ss / ((n - 2) if total else (n - m)))
    if not sd > 0:
        raise InvalidValueError(
            "outcome does not vary within clusters (SD 0): the effect size is undefined."
        )
    return _two_level(
        parts["difference"],
        sd,
        rho,
        parts["sizes_t"],
        parts["sizes_c"],
        total=total,
        alpha=alpha,
        label=label,
        icc_source=source,
    )


_DATA_PARAMETERS = """    outcome : array_like or pandas.Series
        One outcome per pupil; missing values are an error.
    treatment : array_like or pandas.Series
        True/1 for pupils in intervention clusters, False/0 for control clusters.
    cluster : array_like or pandas.Series
        Cluster (school) label per pupil; every cluster lies wholly in one arm and each arm
        has at least 2 clusters.
    icc : float, optional
        The intraclass correlation to use, e.g. from the trial's unconditional multilevel
        model. When omitted it is estimated by the one-way ANOVA (moment) estimator within
        arms, :math:`\\hat\\sigma_B^2 = (SS_B - (M-2)S_W^2)/B`, truncated at 0, with *B* as in
        :func:`cluster_d_total`.
    alpha : float, default 0.05
        Significance level of the (normal) interval.
    label : str, default "effect size"
        Name of the effect."""


def cluster_d_within_from_data(
    outcome,
    treatment,
    cluster,
    *,
    icc: float | None = None,
    alpha: float = 0.05,
    label: str = "effect size",
) -> EffectSize:
    r"""Hedges' (2007) :math:`d_W` from pupil outcomes, arms and clusters.

    Parameters
    ----------
    {parameters}

    Returns
    -------
    EffectSize
        As :func:`cluster_d_within`, with :math:`S_W^2 = SS_W/(N - M)` (pooled within
        clusters) and the arm-mean difference computed from the data.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If the columns differ in length, the outcome has missing values, the treatment is not
        0/1, a cluster label is missing, or ``icc`` is outside [0, 1).
    cpdimpact.errors.DesignError
        If a cluster has pupils in both arms or an arm has fewer than 2 clusters.

    Notes
    -----
    See :func:`cluster_d_within` for the estimator and its variance. The data are used only
    through the arm means, :math:`SS_W`, :math:`SS_T` and the cluster sizes, so the effect
    size is unchanged by any rescaling :math:`a y + b` (:math:`a > 0`) of the outcome.

    References
    ----------
    Hedges, L. V. (2007). Effect sizes in cluster-randomized designs. *Journal of Educational
    and Behavioral Statistics*, 32(4), 341-370.

    Examples
    --------
    >>> from cpdimpact.effects import cluster_d_within_from_data
    >>> y = [1, 2, 3, 4, 2, 3, 0, 1, 1, 2, 0, 0]
    >>> t = [1] * 6 + [0] * 6
    >>> school = ["a", "a", "a", "b", "b", "b", "c", "c", "c", "d", "d", "d"]
    >>> round(cluster_d_within_from_data(y, t, school, icc=0.1).estimate, 4)
    1.9149
    """
    return _from_data(outcome, treatment, cluster, icc, total=False, alpha=alpha, label=label)


def cluster_d_total_from_data(
    outcome,
    treatment,
    cluster,
    *,
    icc: float | None = None,
    alpha: float = 0.05,
    label: str = "effect size",
) -> EffectSize:
    r"""Hedges' (2007) :math:`d_T` from pupil outcomes, arms and clusters.

    Parameters
    ----------
    {parameters}

    Returns
    -------
    EffectSize
        As :func:`cluster_d_total`, with :math:`S_T^2 = SS_T/(N - 2)` (pupils about their arm
        means) and the arm-mean difference computed from the data.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        As :func:`cluster_d_within_from_data`.
    cpdimpact.errors.DesignError
        As :func:`cluster_d_within_from_data`.

    Notes
    -----
    See :func:`cluster_d_total`. Invariant to :math:`a y + b` (:math:`a > 0`).

    References
    ----------
    Hedges, L. V. (2007). Effect sizes in cluster-randomized designs. *Journal of Educational
    and Behavioral Statistics*, 32(4), 341-370.

    Examples
    --------
    >>> from cpdimpact.effects import cluster_d_total_from_data
    >>> y = [1, 2, 3, 4, 2, 3, 0, 1, 1, 2, 0, 0]
    >>> t = [1] * 6 + [0] * 6
    >>> school = ["a", "a", "a", "b", "b", "b", "c", "c", "c", "d", "d", "d"]
    >>> es = cluster_d_total_from_data(y, t, school, icc=0.1)
    >>> round(es.estimate, 4)
    1.9112
    """
    return _from_data(outcome, treatment, cluster, icc, total=True, alpha=alpha, label=label)


_fill_parameters(cluster_d_within_from_data, _DATA_PARAMETERS)
_fill_parameters(cluster_d_total_from_data, _DATA_PARAMETERS)


# --- three levels (Hedges 2011) -------------------------------------------------------------


def _three_level(
    difference: float,
    sd: float,
    icc_school: float,
    icc_class: float,
    schools_t: list[np.ndarray],
    schools_c: list[np.ndarray],
    *,
    total: bool,
    alpha: float,
    label: str,
) -> EffectSize:
    if icc_school + icc_class >= 1.0:
        raise InvalidValueError(
            f"icc_school + icc_class must be below 1 (the pupil-level share of the variance "
            f"is what is left), got {icc_school!r} + {icc_class!r}."
        )
    arms = []
    counts = []
    for schools in (schools_t, schools_c):
        classes = np.concatenate(schools)
        school_sizes = np.array([s.sum() for s in schools])
        arms.append(np.vstack([_pupil_sizes(classes), _pupil_sizes(school_sizes)]))
        counts.append((len(schools), classes.size, int(classes.sum())))
    v, e0, q = _moments(arms, [icc_class, icc_school])
    (k_t, c_t, n_t), (k_c, c_c, n_c) = counts
    n_all = n_t + n_c
    design_effect = v * n_t * n_c / n_all
    details: tuple[tuple[str, object], ...] = (
        ("ICC school (given)", icc_school),
        ("ICC class (given)", icc_class),
        ("schools (treatment, control)", (k_t, k_c)),
        ("classes (treatment, control)", (c_t, c_c)),
        ("pupils (treatment, control)", (n_t, n_c)),
        ("design effect", design_effect),
    )
    df_w = n_all - c_t - c_c
    if not total and df_w < 1:
        raise DesignError("every class has one pupil, so there is no within-class SD.")
    return _standardise(
        difference,
        sd,
        (v, e0, q),
        n_all=n_all,
        within_share=1.0 - icc_school - icc_class,
        df_within=df_w,
        total=total,
        alpha=alpha,
        label=label,
        details=details,
        design=("Hedges (2011)", "three-level cluster-randomised", "class", "N - classes"),
    )


_THREE_LEVEL_PARAMETERS = """    icc_school, icc_class : float
        Shares of the total variance between schools (:math:`\\rho_S`) and between classes
        within schools (:math:`\\rho_C`); each in [0, 1), their sum below 1.
    n_schools_treatment, n_schools_control, classes_per_school, class_size : int, optional
        Equal sizes: *m* schools per arm (at least 2), *p* classes per school, *n* pupils per
        class.
    class_sizes_treatment, class_sizes_control : sequence of sequences of int, optional
        Unequal sizes: per arm, one sequence of class sizes for each school (at least 2
        schools per arm). Give either these two or the four equal-size arguments.
    alpha : float, default 0.05
        Significance level of the (normal) interval.
    label : str, default "effect size"
        Name of the effect."""


def three_level_d_total(
    difference: float,
    sd_total: float,
    *,
    icc_school: float,
    icc_class: float,
    n_schools_treatment: int | None = None,
    n_schools_control: int | None = None,
    classes_per_school: int | None = None,
    class_size: int | None = None,
    class_sizes_treatment: Sequence[Sequence[int]] | None = None,
    class_sizes_control: Sequence[Sequence[int]] | None = None,
    alpha: float = 0.05,
    label: str = "effect size",
) -> EffectSize:
    r"""Total-SD effect size for pupils in classes in schools, schools randomised (Hedges 2011).

    Parameters
    ----------
    difference : float
        :math:`\bar Y^T - \bar Y^C`, the difference in pupil-weighted arm means.
    sd_total : float
        :math:`S_T`, the SD of pupils about their arm means on :math:`N - 2` degrees of
        freedom.
    {parameters}

    Returns
    -------
    EffectSize
        ``symbol="d_T"``; ``details`` hold both ICCs, the counts, the design effect and the
        bias factor applied to :math:`S_T`.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        If an ICC is outside [0, 1) or their sum is not below 1, ``sd_total`` is not positive,
        or the sizes are malformed; the message names the argument.
    cpdimpact.errors.DesignError
        If an arm has fewer than 2 schools.

    Notes
    -----
    Model: :math:`Y_{{ijk}} = \mu + \tau T_k + s_k + c_{{jk}} + e_{{ijk}}` with variances
    :math:`\sigma_S^2, \sigma_C^2, \sigma_W^2`, :math:`\sigma_T^2` their sum,
    :math:`\rho_S = \sigma_S^2/\sigma_T^2`, :math:`\rho_C = \sigma_C^2/\sigma_T^2`. With
    equal sizes (*p* classes of *n* pupils per school; :math:`N` pupils) the three-level
    analogue of Hedges (2007), as in Hedges (2011), is

    .. math::

        d_T = \frac{{\bar Y^T - \bar Y^C}}{{S_T}}
              \sqrt{{1 - \frac{{2(pn - 1)\rho_S + 2(n - 1)\rho_C}}{{N - 2}}}},

        V(d_T) = \frac{{N^T + N^C}}{{N^T N^C}}\,[1 + (pn - 1)\rho_S + (n - 1)\rho_C]
                 + d_T^2\,\frac{{Q}}{{2(N-2)\,E}},

    where :math:`E = E(SS_T)/\sigma_T^2 = (N-2) - 2(pn-1)\rho_S - 2(n-1)\rho_C` and
    :math:`Q = \operatorname{{var}}(SS_T)/(2\sigma_T^4)`, computed exactly for the given
    (equal or unequal) class and school sizes as :math:`\sum_a \operatorname{{tr}}(A_a
    \Sigma_a A_a \Sigma_a)/\sigma_T^4`. The second term keeps the form of Hedges (2007).
    With :math:`\rho_C = 0` this is :func:`cluster_d_total` with schools of *pn* pupils; with
    :math:`\rho_S = 0`, :func:`cluster_d_total` with classes as clusters.

    The moments here were derived for this implementation from the model above and checked
    against those reductions and by simulation (``tests/test_effect_sizes.py``); they were
    not compared term by term with the printed equations of Hedges (2011).

    References
    ----------
    Hedges, L. V. (2011). Effect sizes in three-level cluster-randomized experiments.
    *Journal of Educational and Behavioral Statistics*, 36(3), 346-380.

    Hedges, L. V. (2007). Effect sizes in cluster-randomized designs. *Journal of Educational
    and Behavioral Statistics*, 32(4), 341-370.

    Examples
    --------
    >>> from cpdimpact.effects import three_level_d_total
    >>> es = three_level_d_total(
    ...     3.0, 10.0, icc_school=0.15, icc_class=0.05,
    ...     n_schools_treatment=10, n_schools_control=10, classes_per_school=2, class_size=10,
    ... )
    >>> round(es.estimate, 4)
    0.2975
    """
    sizes = (
        n_schools_treatment,
        n_schools_control,
        classes_per_school,
        class_size,
        class_sizes_treatment,
        class_sizes_control,
    )
    iccs = {"icc_school": icc_school, "icc_class": icc_class}
    return _from_summary(
        _three_level,
        _three_level_sizes,
        difference,
        sd_total,
        iccs,
        sizes,
        total=True,
        alpha=alpha,
        label=label,
    )


def three_level_d_within(
    difference: float,
    sd_within: float,
    *,
    icc_school: float,
    icc_class: float,
    n_schools_treatment: int | None = None,
    n_schools_control: int | None = None,
    classes_per_school: int | None = None,
    class_size: int | None = None,
    class_sizes_treatment: Sequence[Sequence[int]] | None = None,
    class_sizes_control: Sequence[Sequence[int]] | None = None,
    alpha: float = 0.05,
    label: str = "effect size",
) -> EffectSize:
    r"""Within-class effect size for pupils in classes in schools, schools randomised.

    Parameters
    ----------
    difference : float
        :math:`\bar Y^T - \bar Y^C`, the difference in pupil-weighted arm means.
    sd_within : float
        :math:`S_W`, the pooled within-class SD on :math:`N - C` degrees of freedom (*C*
        classes in all).
    {parameters}

    Returns
    -------
    EffectSize
        ``symbol="d_W"``, with ``details`` as in :func:`three_level_d_total`.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        As :func:`three_level_d_total`.
    cpdimpact.errors.DesignError
        If an arm has fewer than 2 schools, or every class has one pupil.

    Notes
    -----
    Hedges' (2011) :math:`\delta_{{W}} = \tau/\sigma_W` (within classes), estimated by

    .. math::

        d_W = \frac{{\bar Y^T - \bar Y^C}}{{S_W}}, \qquad
        V(d_W) = \frac{{N^T + N^C}}{{N^T N^C}}\,
                 \frac{{1 + (pn - 1)\rho_S + (n - 1)\rho_C}}{{1 - \rho_S - \rho_C}}
                 + \frac{{d_W^2}}{{2(N - C)}},

    with the bracket computed exactly for unequal sizes (see :func:`three_level_d_total`).

    References
    ----------
    Hedges, L. V. (2011). Effect sizes in three-level cluster-randomized experiments.
    *Journal of Educational and Behavioral Statistics*, 36(3), 346-380.

    Examples
    --------
    >>> from cpdimpact.effects import three_level_d_within
    >>> es = three_level_d_within(
    ...     3.0, 8.0, icc_school=0.15, icc_class=0.05,
    ...     n_schools_treatment=10, n_schools_control=10, classes_per_school=2, class_size=10,
    ... )
    >>> round(es.estimate, 3)
    0.375
    """
    sizes = (
        n_schools_treatment,
        n_schools_control,
        classes_per_school,
        class_size,
        class_sizes_treatment,
        class_sizes_control,
    )
    iccs = {"icc_school": icc_school, "icc_class": icc_class}
    return _from_summary(
        _three_level,
        _three_level_sizes,
        difference,
        sd_within,
        iccs,
        sizes,
        total=False,
        alpha=alpha,
        label=label,
    )


_fill_parameters(three_level_d_total, _THREE_LEVEL_PARAMETERS)
_fill_parameters(three_level_d_within, _THREE_LEVEL_PARAMETERS)
