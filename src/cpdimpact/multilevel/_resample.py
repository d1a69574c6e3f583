"""Bootstrap and permutation draws of the trial analyses, refitted in batches.

Every draw has its own random stream, ``SeedSequence(entropy, spawn_key=(stream, i))``, so draw
*i* is the same whatever the number of draws, the chunking or the order of evaluation; draws
are generated and refitted in chunks (arrays with a leading draw axis, see :mod:`._fastfit`).

Schemes (as eefAnalytics 1.1.5, whose ``case(1,2)`` is the ``"case"`` scheme here):

* ``case``: resample sites (schools) with replacement, then pupils with replacement within
  each drawn site; a site drawn twice is two sites. Pupil-randomised trials resample pupils
  (within blocks when ``cluster`` is given). A draw with a single arm is redrawn.
* ``residual``: keep the design; add resampled site effects (BLUPs) and resampled pupil
  residuals, each centred and rescaled ("reflated") to the fitted variances, to the fitted
  fixed part (Carpenter, Goldstein & Rasbash 2003). The unconditional model gets its own
  outcome, built from its own effects with the same resampling indices.
* permutation: re-randomise the treatment at the level of randomisation (sites for a cluster
  trial; pupils within sites for a multisite trial; pupils, within blocks if given, for a
  pupil-randomised trial) and refit the conditional model.

With prior weights (``weights=`` of the trials) every pupil keeps its weight: a case draw
carries the drawn pupils' weights (normalised to mean one within the draw, as a fit of that
sample would), a permutation moves only the treatment. The residual scheme is not offered with
weights (its residuals would need rescaling by the weights).

References
----------
Carpenter, J. R., Goldstein, H., & Rasbash, J. (2003). A novel bootstrap procedure for
assessing the relationship between class size and achievement. *Journal of the Royal
Statistical Society C*, 52(4), 431-443.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._progress import progress_bar
from .._validate import seed_sequence
from ..errors import InvalidArgumentError
from ._fastfit import SiteStats, fit_intercept, fit_slope

__all__ = [
    "TrialArrays",
    "permuted_treatment",
    "run_bootstrap",
    "run_permutations",
    "seed_sequence",
]

CHUNK = 256
BOOTSTRAP_STREAM, PERMUTATION_STREAM = 0, 1
MAX_REDRAWS = 100


def _draw_rng(ss: np.random.SeedSequence, stream: int, i: int) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, stream, i))
    )


@dataclass(frozen=True, eq=False)
class TrialArrays:
    """The analysis sample as arrays, and what the fits found on it.

    ``x`` is the fixed-effects design ``[1, treatment, covariates]``; ``site`` codes sites
    ``0..n_sites-1`` (blocks for a pupil-randomised trial, or all zeros). ``design`` is
    ``"simple"``, ``"cluster"`` or ``"multisite"``.
    """

    design: str
    x: np.ndarray
    y: np.ndarray
    site: np.ndarray
    n_sites: int
    # Conditional fit: coefficients, residual variance, site covariance (q x q), BLUPs (G, q).
    beta: np.ndarray
    sigma2: float
    site_cov: np.ndarray
    blups: np.ndarray
    theta: np.ndarray
    # Unconditional fit: intercept, residual variance, site variance, BLUPs (G,).
    beta_u: float
    sigma2_u: float
    site_var_u: float
    blups_u: np.ndarray
    # Prior weights per pupil, mean one (None: unweighted).
    w: np.ndarray | None = None

    @property
    def treatment(self) -> np.ndarray:
        return self.x[:, 1]

    @property
    def p(self) -> int:
        return self.x.shape[1]


# ---------------------------------------------------------------------------- index draws
def _sites(arrays: TrialArrays):
    order = np.argsort(arrays.site, kind="stable")
    size = np.bincount(arrays.site, minlength=arrays.n_sites)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    return order, size, start


def _case_rows(rng, arrays: TrialArrays, sites):
    """Rows and site slots of one case draw."""
    order, size, start = sites
    n = len(arrays.y)
    if arrays.design == "simple":
        if arrays.n_sites == 1:
            return rng.integers(0, n, n), np.zeros(n, dtype=np.int64)
        # pupils within blocks
        slot = np.repeat(np.arange(arrays.n_sites), size)
        pick = start[slot] + np.floor(rng.random(n) * size[slot]).astype(np.int64)
        return order[pick], slot
    picked = rng.integers(0, arrays.n_sites, arrays.n_sites)
    sizes = size[picked]
    slot = np.repeat(np.arange(arrays.n_sites), sizes)
    within = np.floor(rng.random(int(sizes.sum())) * np.repeat(sizes, sizes)).astype(np.int64)
    return order[np.repeat(start[picked], sizes) + within], slot


def _both_arms(t: np.ndarray) -> bool:
    return bool(t.min() == 0 and t.max() == 1)


def _reflate(values: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Centre rows of ``values`` (m, q) and rescale so their covariance is ``target`` (q, q).

    With empirical covariance S = V'V/m, V A with A = S^(-1/2) T^(1/2) (symmetric square
    roots, pseudo-inverse where S is singular) has covariance T where S has full rank.
    """
    centred = values - values.mean(axis=0)
    s = centred.T @ centred / len(centred)

    def sqrt_psd(m, inverse=False):
        vals, vecs = np.linalg.eigh((m + m.T) / 2)
        tol = max(vals.max(), 0.0) * 1e-10
        keep = vals > tol
        root = np.zeros_like(vals)
        root[keep] = 1 / np.sqrt(vals[keep]) if inverse else np.sqrt(vals[keep])
        return (vecs * root) @ vecs.T

    return centred @ sqrt_psd(s, inverse=True) @ sqrt_psd(target)


# ---------------------------------------------------------------------------- refits
@dataclass
class _Batch:
    """Draws of one chunk: pupils' rows (or new outcomes) and their site slots."""

    x_rows: list
    y: list
    y_u: list
    slot: list
    t: list
    wt: list  # prior weights of the draws' rows (weighted trials only)


def _refit(arrays: TrialArrays, batch: _Batch, *, unconditional: bool) -> dict:
    """Refit the conditional (and unconditional) model on every draw of a batch."""
    b = len(batch.y)
    lengths = np.array([len(v) for v in batch.y])
    draw = np.repeat(np.arange(b), lengths)
    x = np.concatenate(batch.x_rows)
    y = np.concatenate(batch.y)
    slot = np.concatenate(batch.slot)
    p = arrays.p
    w = np.column_stack([x, y])
    weights = None
    if arrays.w is not None:  # each draw's weights, normalised to mean one within the draw
        weights = np.concatenate(batch.wt)
        weights = weights / (np.bincount(draw, weights=weights, minlength=b) / lengths)[draw]
    out = {}
    if arrays.design == "simple":
        st = SiteStats.build(
            w, np.zeros(len(w), dtype=np.int64), 1, p, draw=draw, n_draws=b, weights=weights
        )
        c = st.cross
        with np.errstate(invalid="ignore", divide="ignore"):
            sign, _ = np.linalg.slogdet(c[:, :p, :p])
            ok = sign > 0
            safe = np.where(ok[:, None, None], c[:, :p, :p], np.eye(p))
            beta = np.linalg.solve(safe, c[:, :p, p][..., None])[..., 0]
            rss = c[:, p, p] - np.einsum("bi,bi->b", c[:, :p, p], beta)
            sigma2 = rss / (st.n_obs - p)
        out.update(coefficient=beta[:, 1], within_c=sigma2, total_c=sigma2, ok=ok)
        if unconditional:
            yu = np.concatenate(batch.y_u)
            if weights is None:
                s1 = np.bincount(draw, weights=yu, minlength=b)
                s2 = np.bincount(draw, weights=yu * yu, minlength=b)
                var_u = (s2 - s1**2 / lengths) / (lengths - 1)
            else:  # weighted intercept-only fit: sum w (y - ybar_w)^2 / (n - 1)
                s0 = np.bincount(draw, weights=weights, minlength=b)
                s1 = np.bincount(draw, weights=weights * yu, minlength=b)
                s2 = np.bincount(draw, weights=weights * yu * yu, minlength=b)
                var_u = (s2 - s1**2 / s0) / (lengths - 1)
            out.update(within_u=var_u, total_u=var_u)
        return out
    treated = np.concatenate(batch.t) if arrays.design == "multisite" else None
    st = SiteStats.build(
        w, slot, arrays.n_sites, p, draw=draw, n_draws=b, treated=treated, weights=weights
    )
    if arrays.design == "multisite":
        fit = fit_slope(st, arrays.theta)
        t_weight = treated if weights is None else treated * weights
        share = np.bincount(draw, weights=t_weight, minlength=b) / lengths
        cov = fit.cov
        total = cov[:, 0, 0] + fit.sigma2 + share * (cov[:, 1, 1] + 2 * cov[:, 0, 1])
    else:
        fit = fit_intercept(st)
        total = fit.cov[:, 0, 0] + fit.sigma2
    out.update(coefficient=fit.beta[:, 1], within_c=fit.sigma2, total_c=total, ok=fit.ok)
    if unconditional:
        yu = np.concatenate(batch.y_u)
        wu = np.column_stack([np.ones(len(yu)), yu])
        fit_u = fit_intercept(
            SiteStats.build(wu, slot, arrays.n_sites, 1, draw=draw, n_draws=b, weights=weights)
        )
        out.update(
            within_u=fit_u.sigma2,
            total_u=fit_u.sigma2 + fit_u.cov[:, 0, 0],
        )
        out["ok"] = out["ok"] & fit_u.ok
    return out


def _collect(parts: list[dict], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({c: np.concatenate([part[c] for part in parts]) for c in columns})
    frame.index.name = "draw"
    return frame


# ---------------------------------------------------------------------------- bootstrap
def run_bootstrap(
    arrays: TrialArrays, n_draws: int, scheme: str, ss: np.random.SeedSequence
) -> pd.DataFrame:
    """Bootstrap draws: coefficient, conditional and unconditional within/total variances.

    Returns one row per draw (``ok`` False where a refit failed: e.g. a covariate constant in
    the resample).
    """
    sites = _sites(arrays)
    parts = []
    if scheme == "residual":
        fixed, fixed_u, u, u_u, e, e_u = _residual_pieces(arrays)
    bar = progress_bar(n_draws, desc=f"{scheme} bootstrap", unit="draw")
    for first in range(0, n_draws, CHUNK):
        batch = _Batch([], [], [], [], [], [])
        for i in range(first, min(first + CHUNK, n_draws)):
            rng = _draw_rng(ss, BOOTSTRAP_STREAM, i)
            if scheme == "case":
                for _ in range(MAX_REDRAWS):
                    rows, slot = _case_rows(rng, arrays, sites)
                    if _both_arms(arrays.treatment[rows]):
                        break
                batch.x_rows.append(arrays.x[rows])
                batch.y.append(arrays.y[rows])
                batch.y_u.append(arrays.y[rows])
                batch.slot.append(slot)
                batch.t.append(arrays.treatment[rows])
                if arrays.w is not None:
                    batch.wt.append(arrays.w[rows])
            else:
                ys, ys_u = _residual_draw(rng, arrays, fixed, fixed_u, u, u_u, e, e_u)
                batch.x_rows.append(arrays.x)
                batch.y.append(ys)
                batch.y_u.append(ys_u)
                batch.slot.append(arrays.site)
                batch.t.append(arrays.treatment)
        parts.append(_refit(arrays, batch, unconditional=True))
        bar.update(len(batch.y))
    bar.close()
    columns = ["coefficient", "within_c", "total_c", "within_u", "total_u", "ok"]
    return _collect(parts, columns)


def _residual_pieces(arrays: TrialArrays):
    """Fitted parts and reflated effects/residuals of both models."""
    x, y, site = arrays.x, arrays.y, arrays.site
    if arrays.w is not None:
        raise InvalidArgumentError(
            "the residual bootstrap does not take weights; use bootstrap='case'"
        )
    fixed = x @ arrays.beta
    fixed_u = np.full(len(y), arrays.beta_u)
    if arrays.design == "simple":
        u = np.zeros((1, 1))
        u_u = np.zeros((1, 1))
        site_part = 0.0
        site_part_u = 0.0
    else:
        u = _reflate(arrays.blups, arrays.site_cov)
        u_u = _reflate(arrays.blups_u[:, None], np.array([[arrays.site_var_u]]))
        b = arrays.blups
        site_part = b[site, 0] + (b[site, 1] * arrays.treatment if b.shape[1] == 2 else 0.0)
        site_part_u = arrays.blups_u[site]
    e = _reflate((y - fixed - site_part)[:, None], np.array([[arrays.sigma2]]))[:, 0]
    e_u = _reflate((y - fixed_u - site_part_u)[:, None], np.array([[arrays.sigma2_u]]))[:, 0]
    return fixed, fixed_u, u, u_u, e, e_u


def _residual_draw(rng, arrays: TrialArrays, fixed, fixed_u, u, u_u, e, e_u):
    n = len(arrays.y)
    pupils = rng.integers(0, n, n)
    if arrays.design == "simple":
        return fixed + e[pupils], fixed_u + e_u[pupils]
    schools = rng.integers(0, arrays.n_sites, arrays.n_sites)
    site = arrays.site
    us = u[schools]
    site_part = us[site, 0]
    if us.shape[1] == 2:
        site_part = site_part + us[site, 1] * arrays.treatment
    return fixed + site_part + e[pupils], fixed_u + u_u[schools][site, 0] + e_u[pupils]


# ---------------------------------------------------------------------------- permutation
def permuted_treatment(rng: np.random.Generator, arrays: TrialArrays) -> np.ndarray:
    """One re-randomisation of the treatment at the level it was assigned.

    Cluster trials permute the schools' arms (the number of treated schools is kept);
    multisite and pupil-randomised trials permute pupils' arms within sites or blocks (each
    site keeps its number of treated pupils; without blocks, all pupils are one block).
    """
    t, site = arrays.treatment, arrays.site
    if arrays.design == "cluster":
        site_t = np.zeros(arrays.n_sites)
        site_t[site] = t
        return rng.permutation(site_t)[site]
    order = np.argsort(site, kind="stable")
    shuffled = np.lexsort((rng.random(len(t)), site))
    out = np.empty_like(t)
    out[order] = t[shuffled]
    return out


def run_permutations(arrays: TrialArrays, n_draws: int, ss: np.random.SeedSequence) -> pd.DataFrame:
    """Permutation draws: the treatment re-randomised as assigned, conditional model refitted."""
    parts = []
    bar = progress_bar(n_draws, desc="permutation test", unit="draw")
    for first in range(0, n_draws, CHUNK):
        batch = _Batch([], [], [], [], [], [])
        for i in range(first, min(first + CHUNK, n_draws)):
            t_new = permuted_treatment(_draw_rng(ss, PERMUTATION_STREAM, i), arrays)
            x = arrays.x.copy()
            x[:, 1] = t_new
            batch.x_rows.append(x)
            batch.y.append(arrays.y)
            batch.slot.append(arrays.site)
            batch.t.append(t_new)
            if arrays.w is not None:
                batch.wt.append(arrays.w)
        parts.append(_refit(arrays, batch, unconditional=False))
        bar.update(len(batch.y))
    bar.close()
    return _collect(parts, ["coefficient", "within_c", "total_c", "ok"])
