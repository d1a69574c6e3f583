"""Binomial and Poisson multilevel models: the Laplace and AGQ deviances against direct
computations, the fit's optimum, result faces, bad input and a simulation with known truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, special

from cpdimpact.errors import (
    ConstantOutcomeError,
    CpdImpactError,
    InvalidArgumentError,
    OutcomeFamilyError,
    SeparationError,
)
from cpdimpact.multilevel import MultilevelModel, _glmm


def simulate(
    n_school=30,
    n_class=3,
    n_pupil=12,
    seed=1,
    school_sd=0.6,
    class_sd=0.4,
    slope_sd=0.0,
    family="binomial",
    beta=(-0.3, 0.5, 0.4),
):
    """Pupils in classes in schools; treatment by school, a pupil covariate."""
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(n_school), n_class * n_pupil)
    klass = np.repeat(np.arange(n_class), n_pupil)
    klass = np.tile(klass, n_school)
    n = school.size
    prior = rng.normal(size=n)
    treat = (school % 2).astype(float)
    b_school = rng.normal(0, school_sd, n_school)
    b_class = rng.normal(0, class_sd, n_school * n_class)
    eta = beta[0] + beta[1] * prior + beta[2] * treat + b_school[school]
    eta += b_class[school * n_class + klass]
    eta += rng.normal(0, slope_sd, n_school)[school] * prior if slope_sd else 0.0
    if family == "binomial":
        y = (rng.random(n) < special.expit(eta)).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return pd.DataFrame({"y": y, "prior": prior, "treat": treat, "school": school, "klass": klass})


def _data(frame, groups, family="binomial", slope=False):
    x = np.column_stack([np.ones(len(frame)), frame["prior"], frame["treat"]])
    codes = [frame["school"].to_numpy()]
    if len(groups) > 1:
        codes.append((frame["school"] * 10 + frame["klass"]).rank(method="dense").astype(int) - 1)
        codes[-1] = codes[-1].to_numpy()
    z_cols = (0, 1) if slope else (0,)
    return _glmm.make_data(
        x, frame["y"].to_numpy(float), None, np.empty((len(frame), 0)), z_cols, codes, family
    )


def _dense_laplace(d, phi, beta):
    """-2 log p(y|u~) + |u~|^2 + log|H| with dense matrices: Newton on u to 1e-13."""
    n = d.n
    blocks = []
    zmat = d.z_matrix()
    g0 = int(d.codes[0].max()) + 1
    lam = np.zeros((d.q, d.q))
    k = 0
    for j in range(d.q):
        for i in range(j, d.q):
            lam[i, j] = phi[k]
            k += 1
    top = np.zeros((n, g0 * d.q))
    for a in range(d.q):
        top[np.arange(n), d.codes[0] * d.q + a] = zmat[:, a]
    blocks.append(top @ np.kron(np.eye(g0), lam))
    for level, theta in zip(range(1, d.n_levels), phi[k:], strict=True):
        g = int(d.codes[level].max()) + 1
        z = np.zeros((n, g))
        z[np.arange(n), d.codes[level]] = 1.0
        blocks.append(z * theta)
    zl = np.hstack(blocks)
    u = np.zeros(zl.shape[1])
    off = d.x @ beta
    for _ in range(200):
        eta = off + zl @ u
        mu = special.expit(eta) if d.family == "binomial" else np.exp(eta)
        w = mu * (1 - mu) if d.family == "binomial" else mu
        h = zl.T @ (zl * w[:, None]) + np.eye(zl.shape[1])
        step = np.linalg.solve(h, zl.T @ (d.y - mu) - u)
        u += step
        if np.abs(step).max() < 1e-13:
            break
    eta = off + zl @ u
    if d.family == "binomial":
        mu = special.expit(eta)
        w = mu * (1 - mu)
        ll = (d.y * eta - np.logaddexp(0, eta)).sum()
    else:
        mu = np.exp(eta)
        w = mu
        ll = (d.y * eta - mu - special.gammaln(d.y + 1)).sum()
    h = zl.T @ (zl * w[:, None]) + np.eye(zl.shape[1])
    return -2 * ll + u @ u + np.linalg.slogdet(h)[1]


# ---------------------------------------------------------------------- the deviance
@pytest.mark.parametrize(
    ("groups", "family", "slope"),
    [
        (("school",), "binomial", False),
        (("school", "klass"), "binomial", False),
        (("school", "klass"), "poisson", False),
        (("school",), "binomial", True),
        (("school", "klass"), "binomial", True),
    ],
)
def test_laplace_deviance_matches_dense_computation(groups, family, slope):
    frame = simulate(n_school=12, family=family, slope_sd=0.3 if slope else 0.0)
    d = _data(frame, groups, family, slope)
    phi = [0.7] + ([0.2, 0.4] if slope else []) + ([0.5] if len(groups) > 1 else [])
    beta = np.array([-0.2, 0.45, 0.3])
    ours = _glmm.deviance_at(d, np.array(phi), beta)
    assert ours == pytest.approx(_dense_laplace(d, np.array(phi), beta), rel=1e-11)


@pytest.mark.parametrize(
    ("groups", "family", "trials"),
    [
        (("school",), "binomial", False),
        (("school", "klass"), "binomial", False),
        (("school", "klass"), "poisson", False),
        (("school", "klass"), "binomial", True),
    ],
)
def test_theta_gradient_matches_central_differences(groups, family, trials):
    """The analytic derivative of the Laplace deviance in theta (at fixed beta) against
    central differences of the deviance, away from the optimum."""
    frame = simulate(n_school=12, family=family)
    d = _data(frame, groups, family)
    if trials:  # the same pupils as binomial proportions of 1 to 3 trials
        rng = np.random.default_rng(3)
        m = rng.integers(1, 4, d.n).astype(float)
        k = rng.binomial(m.astype(int), 0.45).astype(float)
        d = _glmm.make_data(d.x, k / m, m, d.z_extra, d.z_cols, d.codes, family)
    phi = np.array([0.7, 0.5][: len(groups)])
    beta = np.array([-0.2, 0.45, 0.3])
    start = _glmm._start_state(d, 1)
    solved = _glmm.solve(
        d, phi, _glmm.State(beta, start.top, start.lower), update_beta=False, gradient=True
    )
    h = 1e-5
    numeric = [
        (_glmm.deviance_at(d, phi + h * e, beta) - _glmm.deviance_at(d, phi - h * e, beta))
        / (2 * h)
        for e in np.eye(phi.size)
    ]
    np.testing.assert_allclose(solved.theta_gradient, numeric, rtol=1e-6)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_blocked_sums_match_the_per_pupil_pass(monkeypatch, family):
    """The random-intercept pass by per-group sums, in blocks of whole classes (here of ~100
    rows, so that groups start mid-data), gives what the general per-pupil pass gives; shuffled
    rows give the same deviance."""
    monkeypatch.setattr(_glmm, "BLOCK_ROWS", 100)
    frame = simulate(n_school=12, family=family)
    d = _data(frame, ("school", "klass"), family)
    per_pupil = dataclasses.replace(d, inner_starts=None)
    assert len(d.skeleton.blocks) > 3 and per_pupil.skeleton.blocks == ()
    phi = np.array([0.7, 0.5])
    start = _glmm._start_state(d, 1)
    a, b = (_glmm.solve(x, phi, start, update_beta=True, gradient=True) for x in (d, per_pupil))
    assert a.deviance == pytest.approx(b.deviance, rel=1e-12)
    np.testing.assert_allclose(a.state.beta, b.state.beta, rtol=1e-9)
    np.testing.assert_allclose(a.state.lower[0], b.state.lower[0], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(a.theta_gradient, b.theta_gradient, rtol=1e-7)
    shuffled = _data(frame.sample(frac=1.0, random_state=2), ("school", "klass"), family)
    beta = a.state.beta
    assert _glmm.deviance_at(shuffled, phi, beta) == pytest.approx(
        _glmm.deviance_at(d, phi, beta), rel=1e-12
    )


def test_agq_deviance_matches_numerical_integration():
    frame = simulate(n_school=8, n_class=1, n_pupil=15, seed=3)
    d = _data(frame, ("school",))
    theta, beta = 0.8, np.array([-0.2, 0.5, 0.3])
    exact = 0.0
    fixed = d.x @ beta
    for g in range(8):
        rows = d.codes[0] == g

        def integrand(u, rows=rows):
            eta = fixed[rows] + theta * u
            ll = (d.y[rows] * eta - np.logaddexp(0, eta)).sum()
            return np.exp(ll) * np.exp(-(u**2) / 2) / np.sqrt(2 * np.pi)

        exact += -2 * np.log(integrate.quad(integrand, -12, 12, epsabs=0, epsrel=1e-13)[0])
    laplace = _glmm.deviance_at(d, np.array([theta]), beta)
    agq25 = _glmm.deviance_at(d, np.array([theta]), beta, n_agq=25)
    assert agq25 == pytest.approx(exact, rel=1e-10)
    # Laplace is an approximation: close, but not that close.
    assert abs(laplace - exact) > 1e3 * abs(agq25 - exact)
    assert laplace == pytest.approx(exact, rel=1e-2)
    # One node is the Laplace approximation.
    start = _glmm._start_state(d, 1)
    solved = _glmm.solve(
        d, np.array([theta]), _glmm.State(beta, start.top, start.lower), update_beta=False
    )
    one = _glmm.agq_deviance(d, np.array([theta]), solved, 1)
    assert one == pytest.approx(laplace, rel=1e-13)


# ---------------------------------------------------------------------- the fit
@pytest.fixture(scope="module")
def three_level():
    frame = simulate(n_school=24, n_class=3, n_pupil=12, seed=5)
    model = MultilevelModel(
        outcome="y", covariates=("prior", "treat"), groups=("school", "klass"), family="binomial"
    )
    return frame, model, model.fit(frame)


def test_fit_is_the_optimum_of_the_laplace_deviance(three_level):
    frame, _, fit = three_level
    d = _data(frame, ("school", "klass"))
    phi, beta = fit.theta.to_numpy(), fit.params.to_numpy()
    x0 = np.concatenate([phi, beta])

    def dev(v):
        return _glmm.deviance_at(d, v[:2], v[2:])

    assert dev(x0) == pytest.approx(fit.deviance, rel=1e-12)
    # Central-difference gradient at the optimum is zero (to the differences' accuracy) ...
    h = 1e-5
    grad = np.array([(dev(x0 + h * e) - dev(x0 - h * e)) / (2 * h) for e in np.eye(5)])
    assert np.abs(grad).max() < 1e-4
    # ... and a general-purpose optimiser started nearby finds nothing lower.
    res = optimize.minimize(
        dev,
        x0 + 0.01,
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000},
    )
    assert res.fun >= fit.deviance - 1e-7


def test_result_faces(three_level):
    _, model, fit = three_level
    assert model.method == "ml"
    assert list(fit.variance_components.index) == ["school", "klass"]
    assert "Residual" not in fit.variance_components
    assert np.isinf(fit.df).all() and fit.sigma == 1.0
    frame = fit.to_frame()
    z = 1.959963984540054
    assert np.allclose(frame["ci_upper"] - frame["estimate"], z * frame["std_error"])
    assert fit.loglik == pytest.approx(-fit.deviance / 2)
    vc = fit.variance_components
    latent = vc / (vc.sum() + np.pi**2 / 3)
    assert np.allclose(fit.icc, latent)
    p = special.expit(fit.mean_linear_predictor)
    assert np.allclose(fit.icc_observed, vc / (vc.sum() + 1 / (p * (1 - p))))
    assert (fit.icc_observed < fit.icc).all()
    blups = fit.random_effects["klass"]
    assert len(blups) == 72 and (blups["cond_sd"] > 0).all()
    assert "Logistic mixed model with random intercepts for klass within school" in (
        model.describe()
    )
    assert "Laplace" in model.describe()
    text = str(fit.summary())
    assert "ICC (observed scale)" in text and "Wald z" in text
    fit.plot()


def test_covariance_is_twice_the_inverse_hessian(three_level):
    """glmer's default vcov: 2 H^-1 over (theta, beta), the beta block; checked against an
    independent finite-difference Hessian with a different step."""
    frame, _, fit = three_level
    d = _data(frame, ("school", "klass"))
    x0 = np.concatenate([fit.theta.to_numpy(), fit.params.to_numpy()])

    def dev(v):
        return _glmm.deviance_at(d, v[:2], v[2:])

    h = 3e-4
    eye = np.eye(5) * h
    hess = np.array(
        [
            [
                (dev(x0 + a + b) - dev(x0 + a - b) - dev(x0 - a + b) + dev(x0 - a - b))
                / (4 * h * h)
                for b in eye
            ]
            for a in eye
        ]
    )
    cov = 2 * np.linalg.inv(hess)[2:, 2:]
    assert np.allclose(fit.cov_params.to_numpy(), cov, rtol=1e-4)


def test_agq_fit_converges_to_the_integral_as_nodes_grow():
    frame = simulate(n_school=20, n_class=1, n_pupil=10, seed=7, school_sd=1.2)
    fits = {
        k: MultilevelModel(
            outcome="y",
            covariates=("prior", "treat"),
            groups=("school",),
            family="binomial",
            n_agq=k,
        ).fit(frame)
        for k in (1, 9, 25)
    }
    # 9 and 25 nodes agree far more closely than either does with Laplace.
    gap_laplace = abs(fits[1].params["treat"] - fits[25].params["treat"])
    gap_agq = abs(fits[9].params["treat"] - fits[25].params["treat"])
    assert gap_agq < 2e-2 * gap_laplace
    assert fits[25].deviance == pytest.approx(fits[9].deviance, rel=1e-6)
    assert "adaptive Gauss-Hermite quadrature, 25 nodes" in fits[25].model.describe()


def test_poisson_fit_and_icc():
    frame = simulate(n_school=20, n_class=2, n_pupil=10, family="poisson", seed=2)
    fit = MultilevelModel(
        outcome="y", covariates=("prior", "treat"), groups=("school", "klass"), family="poisson"
    ).fit(frame)
    assert fit.params["prior"] == pytest.approx(0.5, abs=0.15)
    vc = fit.variance_components
    lam = np.exp(fit.mean_linear_predictor + vc.sum() / 2)
    assert np.allclose(fit.icc, vc / (vc.sum() + np.log1p(1 / lam)))
    assert "Poisson (log-linear) mixed model" in fit.model.describe()


def test_a_school_where_every_pupil_passes_is_fitted():
    frame = simulate(n_school=20, n_class=1, n_pupil=15, seed=11)
    frame.loc[frame["school"] == 3, "y"] = 1.0
    fit = MultilevelModel(
        outcome="y", covariates=("prior", "treat"), groups=("school",), family="binomial"
    ).fit(frame)
    assert np.isfinite(fit.params).all() and np.isfinite(fit.std_errors).all()
    blups = fit.random_effects["school"].set_index("school")["estimate"]
    # The all-pass school has one of the largest random effects, but a finite, shrunken one.
    assert blups[3] >= blups.quantile(0.8) and 0 < blups[3] < 3


def test_trials_give_the_same_fit_as_the_pupil_rows():
    frame = simulate(n_school=16, n_class=2, n_pupil=10, seed=4)
    frame["prior"] = np.round(frame["prior"])  # few distinct values, so rows aggregate
    pupils = MultilevelModel(
        outcome="y", covariates=("prior", "treat"), groups=("school", "klass"), family="binomial"
    ).fit(frame)
    cells = (
        frame.groupby(["school", "klass", "prior", "treat"])["y"]
        .agg(["mean", "size"])
        .reset_index()
    )
    aggregate = MultilevelModel(
        outcome="mean",
        covariates=("prior", "treat"),
        groups=("school", "klass"),
        family="binomial",
        trials="size",
    ).fit(cells)
    assert np.allclose(aggregate.params, pupils.params, rtol=1e-6, atol=1e-8)
    assert np.allclose(aggregate.theta, pupils.theta, rtol=1e-5, atol=1e-7)
    # The deviances differ by the binomial coefficients only.
    log_choose = (
        special.gammaln(cells["size"] + 1)
        - special.gammaln(cells["mean"] * cells["size"] + 1)
        - special.gammaln(cells["size"] - cells["mean"] * cells["size"] + 1)
    ).sum()
    assert aggregate.deviance == pytest.approx(pupils.deviance - 2 * log_choose, rel=1e-9)


def test_gaussian_default_is_unchanged():
    m = MultilevelModel()
    assert m.method == "reml" and m.family == "gaussian" and m.n_agq == 1
    assert MultilevelModel(method="ml").method == "ml"


# ---------------------------------------------------------------------- bad input
@pytest.fixture
def pupils():
    return simulate(n_school=10, n_class=1, n_pupil=10, seed=9)


def _binomial(**options):
    return MultilevelModel(
        outcome="y",
        covariates=("prior", "treat"),
        groups=("school",),
        family="binomial",
        **options,
    )


def test_binomial_outcome_not_binary(pupils):
    frame = pupils.copy()
    frame.loc[[4, 17], "y"] = [2.0, 0.5]
    before = frame.copy()
    with pytest.raises(OutcomeFamilyError, match=r"'y'.*must be 0/1.*rows 4, 17"):
        _binomial().fit(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_trials_values(pupils):
    frame = pupils.assign(n=5.0)
    frame.loc[7, "n"] = 0.0
    with pytest.raises(OutcomeFamilyError, match=r"'n'.*positive.*row 7"):
        _binomial(trials="n").fit(frame)
    frame = pupils.assign(n=4.0)
    frame.loc[3, "y"] = 0.3  # 1.2 successes out of 4
    with pytest.raises(OutcomeFamilyError, match=r"whole number of pupils who passed.*row 3"):
        _binomial(trials="n").fit(frame)
    frame = pupils.assign(n=4.0)
    frame.loc[8, "y"] = 1.25  # more successes than trials
    with pytest.raises(OutcomeFamilyError, match=r"row 8"):
        _binomial(trials="n").fit(frame)


def test_poisson_counts(pupils):
    frame = pupils.copy()
    frame.loc[5, "y"] = -1.0
    frame.loc[6, "y"] = 2.5
    with pytest.raises(OutcomeFamilyError, match=r"counts.*rows 5, 6"):
        MultilevelModel(
            outcome="y", covariates=("prior",), groups=("school",), family="poisson"
        ).fit(frame)


def test_separation_is_refused(pupils):
    frame = pupils.copy()
    frame.loc[frame["treat"] == 1, "y"] = 1.0
    with pytest.raises(SeparationError, match=r"'treat'.*separat.*treat = 1.*y = 1"):
        _binomial().fit(frame)
    # A continuous covariate that predicts the outcome perfectly: caught as the estimate runs
    # off to infinity.
    frame = pupils.copy()
    frame["y"] = (frame["prior"] > 0.1).astype(float)
    with pytest.raises(SeparationError, match=r"'prior'"):
        _binomial().fit(frame)


def test_constant_outcome(pupils):
    with pytest.raises(ConstantOutcomeError):
        _binomial().fit(pupils.assign(y=1.0))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"method": "reml"}, r"reml.*not defined.*method='ml'"),
        ({"n_agq": 5, "groups": ("school", "klass")}, r"single grouping level.*n_agq=1"),
        ({"n_agq": 5, "slopes": {"school": ("prior",)}}, r"single grouping level"),
        ({"n_agq": 30}, r"at most 25"),
        ({"weights": "w"}, r"trials="),
    ],
)
def test_bad_options(options, match):
    base = {"outcome": "y", "covariates": ("prior",), "groups": ("school",), "family": "binomial"}
    with pytest.raises(InvalidArgumentError, match=match):
        MultilevelModel(**{**base, **options})
    with pytest.raises(InvalidArgumentError, match="family='binomial'"):
        MultilevelModel(trials="n", family="poisson")
    with pytest.raises(InvalidArgumentError, match="n_agq"):
        MultilevelModel(n_agq=3)
    assert issubclass(OutcomeFamilyError, CpdImpactError)


def test_slope_on_a_term_that_is_not_a_fixed_effect():
    """The slope column then sits after the outcome in the engine's columns (z_extra)."""
    frame = simulate(n_school=12, slope_sd=0.4, seed=3)
    x = np.column_stack([np.ones(len(frame)), frame["treat"]])
    d = _glmm.make_data(
        x,
        frame["y"].to_numpy(float),
        None,
        frame[["prior"]].to_numpy(float),
        (0, 3),
        [frame["school"].to_numpy()],
        "binomial",
    )
    phi, beta = np.array([0.6, 0.1, 0.3]), np.array([-0.2, 0.3])
    assert _glmm.deviance_at(d, phi, beta) == pytest.approx(_dense_laplace(d, phi, beta), rel=1e-11)
    fit = MultilevelModel(
        outcome="y",
        covariates=("treat",),
        groups=("school",),
        slopes={"school": ("prior",)},
        family="binomial",
    ).fit(frame)
    assert list(fit.variance_components.index) == [
        "school",
        "school:prior",
        "school:Intercept:prior",
    ]
    assert fit.deviance == pytest.approx(
        _glmm.deviance_at(d, fit.theta.to_numpy(), fit.params.to_numpy()), rel=1e-12
    )
