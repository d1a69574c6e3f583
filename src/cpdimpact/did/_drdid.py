r"""One 2x2 comparison with covariates: regression, inverse-probability and doubly robust DiD.

Each group-time effect of :class:`~cpdimpact.did.StaggeredDiD` is a 2x2 comparison of one start
cohort with its controls between a base period and a later one. This module estimates it, with
its influence function, by the estimators of Sant'Anna & Zhao (2020) that R ``did`` calls
(``reg_did_*``, ``std_ipw_did_*``, ``drdid_*`` of the ``DRDID`` package): on a panel from each
unit's change :math:`\Delta Y` and, for repeated cross-sections (or an unbalanced panel), from the
rows of both periods.

Every estimator here is a sum of ratios of weighted means,
:math:`\eta = \overline{w r} / \bar w`, whose weights :math:`w` may depend on a propensity score
(logit, parameters :math:`\gamma`) and whose summands :math:`r` may depend on outcome regressions
(OLS, parameters :math:`\beta`). Its influence function follows from one rule,

.. math::
    \psi^\eta_i = \frac{w_i (r_i - \eta)}{\bar w}
    + \frac{\overline{\partial_\theta w\,(r - \eta)} + \overline{w\,\partial_\theta r}}{\bar w}
      \,\psi^\theta_i,

with :math:`\psi^\beta_i = \overline{s x x'}^{-1} s_i x_i (y_i - x_i'\beta)` for a regression
fitted on the rows with :math:`s_i = 1` and
:math:`\psi^\gamma_i = \overline{p(1-p) x x'}^{-1} x_i (D_i - p_i)` for the logit, so the estimation
of the nuisance models is part of every standard error. Control rows whose propensity score
reaches 0.995 get weight zero and scores are capped at :math:`1 - 10^{-6}`, as in ``DRDID``.

Without covariates (an intercept only) all three estimators reduce to the difference of mean
changes (panel) or of the four period-by-arm means (repeated cross-sections).

Sampling weights :math:`s_i` (``DRDID``'s ``i.weights``) multiply every weight :math:`w` of the
ratios, the least-squares fits become weighted least squares and the logit a weighted logit,
with influence functions :math:`\psi^\beta_i = \overline{s\,x x'}^{-1} s_i x_i (y_i -
x_i'\beta)` and :math:`\psi^\gamma_i = \overline{s\,p(1-p) x x'}^{-1} s_i x_i (D_i - p_i)`.
Every estimator is invariant to the scale of :math:`s` (so ``DRDID``'s normalisation to mean one
within the comparison changes nothing). ``weights=None`` runs the unweighted arithmetic unchanged.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import expit

from cpdimpact.errors import EstimationError, SmallSampleWarning

__all__ = ["METHODS", "panel_att", "repeated_att"]

METHODS = ("dr", "ipw", "reg")

#: Control rows with a propensity score at or above this are given weight zero (R DRDID).
TRIM = 0.995
_CAP = 1 - 1e-6


class _Fit:
    """A nuisance model: fitted values on every row and the influence function of its
    parameters (rows x parameters)."""

    __slots__ = ("fitted", "inf")

    def __init__(self, fitted: np.ndarray, inf: np.ndarray):
        self.fitted, self.inf = fitted, inf


def _ols(
    x: np.ndarray, y: np.ndarray, rows: np.ndarray, label: str, sw: np.ndarray | None = None
) -> _Fit:
    """(Weighted, with sampling weights ``sw``) least squares of ``y`` on ``x`` over ``rows``;
    fitted values and influence function on every row."""
    if x.shape[1] == 1:  # intercept only (no covariates): the mean of the rows
        count = int(np.count_nonzero(rows))
        if count == 0:
            raise EstimationError(f"no rows for the outcome mean of {label}")
        if sw is None:
            mean = float(y[rows].mean())
            inf = np.where(rows, y - mean, 0.0) * (len(y) / count)
        else:
            total = float(sw[rows].sum())
            mean = float((sw[rows] * y[rows]).sum() / total)
            inf = np.where(rows, sw * (y - mean), 0.0) * (len(y) / total)
        return _Fit(np.full(len(y), mean), inf[:, None])
    xs = x[rows]
    ws = None if sw is None else sw[rows]
    gram = xs.T @ xs if ws is None else xs.T @ (xs * ws[:, None])
    if xs.shape[0] <= x.shape[1] or np.linalg.matrix_rank(gram) < x.shape[1]:
        raise EstimationError(
            f"the outcome regression for {label} cannot be fitted: {xs.shape[0]} rows for "
            f"{x.shape[1]} coefficients, or the covariates are collinear there; use fewer "
            "covariates, or method='ipw'"
        )
    inverse = np.linalg.inv(gram)
    beta = inverse @ (xs.T @ (y[rows] if ws is None else ws * y[rows]))
    fitted = x @ beta
    resid = np.where(rows, y - fitted, 0.0)
    if sw is not None:
        resid = sw * resid
    return _Fit(fitted, (resid[:, None] * x) @ inverse * x.shape[0])


def _logit(x: np.ndarray, d: np.ndarray, label: str, sw: np.ndarray | None = None) -> _Fit:
    """(Weighted, with sampling weights ``sw``) logit of ``d`` on ``x`` by Newton-Raphson;
    capped scores and influence function."""
    gamma = np.zeros(x.shape[1])
    s = 1.0 if sw is None else sw
    if x.shape[1] == 1:  # intercept only: closed form
        share = d.mean() if sw is None else (sw * d).sum() / sw.sum()
        gamma[0] = np.log(share / (1 - share))
    else:
        for _ in range(100):
            p = expit(x @ gamma)
            hessian = (x * (s * (p * (1 - p)))[:, None]).T @ x
            try:
                step = np.linalg.solve(hessian, x.T @ (s * (d - p)))
            except np.linalg.LinAlgError as exc:
                raise EstimationError(
                    f"the propensity score model for {label} cannot be fitted: the covariates "
                    "are collinear, do not vary there, or separate the cohort from its "
                    "controls (no overlap)"
                ) from exc
            gamma += step
            if np.max(np.abs(step)) < 1e-10:
                break
        else:
            warnings.warn(
                f"the propensity score model for {label} did not converge in 100 iterations "
                "(covariates may separate the cohort from its controls)",
                SmallSampleWarning,
                stacklevel=4,
            )
    p = np.minimum(expit(x @ gamma), _CAP)
    hessian = (x * (s * (p * (1 - p)))[:, None]).T @ x
    inf = ((s * (d - p))[:, None] * x) @ np.linalg.pinv(hessian) * x.shape[0]
    return _Fit(p, inf)


def _ratio(w: np.ndarray, r: np.ndarray, parts=()) -> tuple[float, np.ndarray]:
    """``mean(w r) / mean(w)`` and its influence function (see the module docstring).

    ``parts`` are ``(dw, dr, inf)``: derivatives of ``w`` and ``r`` (rows x k, or None) with
    respect to a nuisance parameter whose influence function is ``inf`` (rows x k).
    """
    mean_w = w.mean()
    eta = float((w * r).mean() / mean_w)
    inf = w * (r - eta) / mean_w
    for dw, dr, nuisance in parts:
        gradient = np.zeros(nuisance.shape[1])
        if dw is not None:
            gradient += (dw * (r - eta)[:, None]).mean(axis=0)
        if dr is not None:
            gradient += (w[:, None] * dr).mean(axis=0)
        inf = inf + nuisance @ (gradient / mean_w)
    return eta, inf


def _control_weights(
    d: np.ndarray, ps: _Fit, label: str, sw: np.ndarray | None = None
) -> np.ndarray:
    """Odds weights of the controls (times their sampling weights ``sw``), zero where the score
    reaches the trimming level."""
    odds = ps.fitted / (1 - ps.fitted)
    if sw is not None:
        odds = sw * odds
    keep = d | (ps.fitted < TRIM)
    if not (keep & ~d).any():
        raise EstimationError(
            f"every control unit of {label} has a propensity score of {TRIM} or more: the "
            "covariates separate the cohort from its controls (no overlap)"
        )
    return np.where(keep & ~d, odds, 0.0)


def panel_att(
    change: np.ndarray,
    treated: np.ndarray,
    x: np.ndarray,
    method: str,
    label: str,
    weights: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    r"""ATT of one 2x2 comparison on a panel, and its influence function (one value per unit).

    ``change`` is :math:`Y_t - Y_b`, ``treated`` marks the cohort (the rest are controls) and
    ``x`` holds an intercept and the covariates. ``"reg"``: :math:`\overline{\Delta Y - x'\hat\beta_0}`
    over the cohort, :math:`\hat\beta_0` from the controls (Heckman, Ichimura & Todd 1997);
    ``"ipw"``: cohort mean change minus the odds-weighted control mean (Abadie 2005, normalised
    weights); ``"dr"``: both, Sant'Anna & Zhao (2020) eq. (3.1). ``weights``: sampling weights
    of the units (``None``: unweighted).
    """
    d = treated.astype(bool)
    df = d.astype(float)
    dw = df if weights is None else df * weights
    if method == "reg":
        mu = _ols(x, change, ~d, label, weights)
        treat, inf_t = _ratio(dw, change)
        control, inf_c = _ratio(dw, mu.fitted, [(None, x, mu.inf)])
        return treat - control, inf_t - inf_c
    ps = _logit(x, df, label, weights)
    wc = _control_weights(d, ps, label, weights)
    dwc = wc[:, None] * x
    if method == "ipw":
        treat, inf_t = _ratio(dw, change)
        control, inf_c = _ratio(wc, change, [(dwc, None, ps.inf)])
        return treat - control, inf_t - inf_c
    mu = _ols(x, change, ~d, label, weights)
    resid = change - mu.fitted
    treat, inf_t = _ratio(dw, resid, [(None, -x, mu.inf)])
    control, inf_c = _ratio(wc, resid, [(dwc, None, ps.inf), (None, -x, mu.inf)])
    return treat - control, inf_t - inf_c


def repeated_att(
    y: np.ndarray,
    post: np.ndarray,
    treated: np.ndarray,
    x: np.ndarray,
    method: str,
    label: str,
    weights: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    r"""ATT of one 2x2 comparison from repeated cross-sections, and its influence function
    (one value per row of the two periods).

    ``"reg"``: Sant'Anna & Zhao (2020) eq. (2.2), control regressions per period;
    ``"ipw"``: normalised inverse-probability weighting (their eq. 2.5 with Hajek weights);
    ``"dr"``: the locally efficient doubly robust estimator :math:`\hat\tau^{dr,rc}_2` (their
    section 3.2), with regressions for both arms in both periods. ``weights``: sampling weights
    of the rows (``None``: unweighted).
    """
    d = treated.astype(bool)
    p = post.astype(bool)
    df, pw = d.astype(float), p.astype(float)
    sw = weights
    dw = df if sw is None else df * sw
    treat_post, treat_pre = dw * pw, dw * (1 - pw)
    post_x, pre_x = pw[:, None] * x, (1 - pw)[:, None] * x
    if method != "ipw":
        c_pre = _ols(x, y, ~d & ~p, f"{label} (controls, base period)", sw)
        c_post = _ols(x, y, ~d & p, f"{label} (controls, later period)", sw)
    if method == "reg":
        tp, inf_tp = _ratio(treat_post, y)
        tb, inf_tb = _ratio(treat_pre, y)
        trend, inf_c = _ratio(
            dw, c_post.fitted - c_pre.fitted, [(None, x, c_post.inf), (None, -x, c_pre.inf)]
        )
        return tp - tb - trend, inf_tp - inf_tb - inf_c
    ps = _logit(x, df, label, sw)
    wc = _control_weights(d, ps, label, sw)
    cont_post, cont_pre = wc * pw, wc * (1 - pw)
    if method == "ipw":
        tp, inf_tp = _ratio(treat_post, y)
        tb, inf_tb = _ratio(treat_pre, y)
        cp, inf_cp = _ratio(cont_post, y, [(cont_post[:, None] * x, None, ps.inf)])
        cb, inf_cb = _ratio(cont_pre, y, [(cont_pre[:, None] * x, None, ps.inf)])
        return (tp - tb) - (cp - cb), (inf_tp - inf_tb) - (inf_cp - inf_cb)
    t_pre = _ols(x, y, d & ~p, f"{label} (cohort, base period)", sw)
    t_post = _ols(x, y, d & p, f"{label} (cohort, later period)", sw)
    resid = y - np.where(p, c_post.fitted, c_pre.fitted)
    outcome = [(None, -post_x, c_post.inf), (None, -pre_x, c_pre.inf)]
    tp, inf_tp = _ratio(treat_post, resid, outcome)
    tb, inf_tb = _ratio(treat_pre, resid, outcome)
    cp, inf_cp = _ratio(cont_post, resid, [(cont_post[:, None] * x, None, ps.inf), *outcome])
    cb, inf_cb = _ratio(cont_pre, resid, [(cont_pre[:, None] * x, None, ps.inf), *outcome])
    gap_post = t_post.fitted - c_post.fitted
    gap_pre = t_pre.fitted - c_pre.fitted
    post_parts = [(None, x, t_post.inf), (None, -x, c_post.inf)]
    pre_parts = [(None, x, t_pre.inf), (None, -x, c_pre.inf)]
    dp, inf_dp = _ratio(dw, gap_post, post_parts)
    d1, inf_d1 = _ratio(treat_post, gap_post, post_parts)
    db, inf_db = _ratio(dw, gap_pre, pre_parts)
    d0, inf_d0 = _ratio(treat_pre, gap_pre, pre_parts)
    att = (tp - tb) - (cp - cb) + (dp - d1) - (db - d0)
    inf = (inf_tp - inf_tb) - (inf_cp - inf_cb) + (inf_dp - inf_d1) - (inf_db - inf_d0)
    return att, inf
