"""The immutable result of a multilevel fit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._results import EstimateResult, Summary, critical_value, tidy_frame

if TYPE_CHECKING:  # pragma: no cover
    from ._model import MultilevelModel

__all__ = ["MultilevelResult"]


@dataclass(frozen=True, eq=False)
class MultilevelResult(EstimateResult):
    """A fitted :class:`~cpdimpact.multilevel.MultilevelModel`.

    Attributes
    ----------
    params, std_errors
        Fixed effects and their standard errors, indexed by ``"Intercept"`` and the covariates.
    cov_params
        Covariance matrix of the fixed effects, :math:`\\hat\\sigma^2 (X^\\top M^{-1}X)^{-1}`.
    df
        Degrees of freedom per fixed effect, by ``model.df_method`` (``inf`` for normal).
    variance_components
        Random intercept variance per group name, ``"{group}:{term}"`` for a slope variance,
        ``"{group}:Intercept:{term}"`` for the intercept-slope covariance, and ``"Residual"``
        (linear models only: a binomial or Poisson model's variances are on the latent,
        linear-predictor scale and it has no residual variance).
    loglik
        Log-likelihood as lme4 reports it (the REML log-likelihood for REML fits; for binomial
        and Poisson models the Laplace or quadrature approximation, so that ``-2 * loglik`` is
        glmer's deviance).
    theta
        Relative Cholesky factors (lme4's theta), named.
    sigma
        Residual standard deviation (1 for binomial and Poisson models, as glmer).
    random_effects
        Per group name, a frame of the group's id columns, ``term``, ``estimate`` (conditional
        mode, BLUP) and ``cond_sd`` (conditional SD given the data and the estimates).
    n_groups, n_obs, n_dropped
        Groups per level, pupils used, rows dropped for missing values.
    converged, singular
        Optimiser success; a variance component at zero (reported, not an error).
    mean_linear_predictor
        Binomial and Poisson models: the pupils' mean fixed-part linear predictor
        :math:`\\overline{x^\\top\\hat\\beta}`, at which :attr:`icc_observed` linearises.
    """

    model: MultilevelModel
    params: pd.Series
    std_errors: pd.Series
    cov_params: pd.DataFrame
    df: pd.Series
    variance_components: pd.Series
    loglik: float
    theta: pd.Series
    sigma: float
    random_effects: dict[str, pd.DataFrame]
    n_groups: pd.Series
    n_obs: int
    n_dropped: int
    converged: bool
    singular: bool
    optimizer_message: str
    notes: tuple[str, ...] = ()
    mean_linear_predictor: float = float("nan")

    @property
    def method(self) -> str:
        return self.model.method

    @property
    def df_method(self) -> str:
        return self.model.df_method

    @property
    def family(self) -> str:
        """The model's family: ``"gaussian"``, ``"binomial"`` or ``"poisson"``."""
        return self.model.family

    @property
    def deviance(self) -> float:
        """-2 log-likelihood (glmer's ``deviance`` column of ``anova``, ``-2 * logLik``)."""
        return -2.0 * self.loglik

    @property
    def icc(self) -> pd.Series:
        r"""Intraclass correlation per level: its intercept variance over the total.

        The total is the sum of the random intercept variances and the residual (with random
        slopes, the intercept variance applies where the slope terms are zero). For binomial
        and Poisson models this is the latent-scale ICC, whose "residual" is the
        distribution-specific variance: :math:`\pi^2/3` for the logit link (the variance of
        the standard logistic distribution) and :math:`\log(1 + 1/\lambda)` for the log link,
        :math:`\lambda = \exp(\bar\eta + \tfrac12\sum\sigma^2_l)` (Nakagawa, Johnson &
        Schielzeth 2017, *J. R. Soc. Interface* 14, Table 1). See :attr:`icc_observed`.
        """
        groups = list(self.model.groups)
        variances = self.variance_components[groups]
        total = variances.sum() + self._residual_variance(latent=True)
        return (variances / total).rename("icc")

    @property
    def icc_observed(self) -> pd.Series:
        r"""Binomial and Poisson models: the ICC on the observed (0/1 or count) scale.

        By linearisation at the mean fixed-part linear predictor :math:`\bar\eta`
        (:attr:`mean_linear_predictor`): a level's variance :math:`\sigma_l^2` maps to
        :math:`\sigma_l^2\,\mu'(\bar\eta)^2` and the pupil level contributes
        :math:`V(\mu)`, so :math:`\mathrm{ICC}_l = \sigma^2_l / (\sum_k\sigma^2_k +
        V(\mu)/\mu'(\bar\eta)^2)`: :math:`1/(p(1-p))` in place of :math:`\pi^2/3` for the
        logit link, :math:`1/\lambda` for the log link (Goldstein, Browne & Rasbash 2002,
        *Understanding Statistics* 1(4), method A; the delta method of Nakagawa et al. 2017).
        The linear model's ICC is already on the observed scale.
        """
        if self.family == "gaussian":
            return self.icc
        groups = list(self.model.groups)
        variances = self.variance_components[groups]
        total = variances.sum() + self._residual_variance(latent=False)
        return (variances / total).rename("icc_observed")

    def _residual_variance(self, *, latent: bool) -> float:
        if self.family == "gaussian":
            return float(self.variance_components["Residual"])
        eta = self.mean_linear_predictor
        if self.family == "binomial":
            if latent:
                return float(np.pi**2 / 3)
            p = 1.0 / (1.0 + np.exp(-eta))
            return float(1.0 / (p * (1.0 - p)))
        groups = list(self.model.groups)
        lam = float(np.exp(eta + 0.5 * self.variance_components[groups].sum()))
        return float(np.log1p(1.0 / lam)) if latent else float(1.0 / np.exp(eta))

    @property
    def alpha(self) -> float:
        """The model's level (its ``alpha``)."""
        return self.model.alpha

    def _headline(self) -> pd.Series:
        raise AttributeError(
            "a multilevel model has no single headline estimate: read its fixed effects "
            "(result.params, result.to_frame())"
        )

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """Fixed effects with Wald intervals on the model's degrees of freedom, and a ``df``
        column."""
        frame = tidy_frame(self.params, self.std_errors, df=self.df, alpha=alpha)
        return frame.assign(df=self.df.to_numpy())

    def summary(self) -> Summary:
        """Printable summary: fit facts, fixed effects and variance components."""
        m = self.model
        groups = ", ".join(f"{g} {n}" for g, n in self.n_groups.items())
        vc = "; ".join(f"{k} {v:.4g}" for k, v in self.variance_components.items())
        if self.family != "gaussian":
            return self._glmm_summary(groups, vc)
        facts = (
            (
                "model",
                f"{m.outcome} ~ {' + '.join(['1', *m.covariates])}, groups {' / '.join(m.groups)}",
            ),
            ("method", f"{m.method.upper()}, log-likelihood {self.loglik:.4f}"),
            ("observations", f"{self.n_obs} ({self.n_dropped} dropped for missing values)"),
            ("groups", groups),
            ("variance components", vc),
            ("ICC", "; ".join(f"{k} {v:.3f}" for k, v in self.icc.items())),
            ("degrees of freedom", m.df_method.replace("_", "-")),
            ("converged", f"{self.converged}{'; singular fit' if self.singular else ''}"),
        )
        return Summary(
            title="Multilevel model", facts=facts, table=self.to_frame(), notes=self.notes
        )

    def _glmm_summary(self, groups: str, vc: str) -> Summary:
        m = self.model
        approx = "Laplace" if m.n_agq == 1 else f"adaptive Gauss-Hermite, {m.n_agq} nodes"
        facts = (
            (
                "model",
                f"{m.outcome} ~ {' + '.join(['1', *m.covariates])}, groups {' / '.join(m.groups)}"
                f", family {m.family}",
            ),
            (
                "method",
                f"ML ({approx}), log-likelihood {self.loglik:.4f}, deviance {self.deviance:.4f}",
            ),
            ("observations", f"{self.n_obs} ({self.n_dropped} dropped for missing values)"),
            ("groups", groups),
            ("variance components (latent scale)", vc),
            ("ICC (latent scale)", "; ".join(f"{k} {v:.3f}" for k, v in self.icc.items())),
            (
                "ICC (observed scale)",
                "; ".join(f"{k} {v:.3f}" for k, v in self.icc_observed.items()),
            ),
            ("intervals", "Wald z"),
            ("converged", f"{self.converged}{'; singular fit' if self.singular else ''}"),
        )
        return Summary(
            title="Multilevel model", facts=facts, table=self.to_frame(), notes=self.notes
        )

    def __repr__(self) -> str:
        return (
            f"MultilevelResult(n_obs={self.n_obs}, groups={dict(self.n_groups)}, "
            f"loglik={self.loglik:.4f}, singular={self.singular})"
        )

    def plot(self, *, ax=None, group: str | None = None, term: str = "Intercept"):
        """Caterpillar plot: BLUPs of ``group`` (default the outermost) with 95% intervals."""
        group = group or self.model.groups[0]
        frame = self.random_effects[group]
        frame = frame[frame["term"] == term].sort_values("estimate").reset_index(drop=True)
        return caterpillar(frame, 0.05, f"{group} (ranked)", f"random effect: {term}", ax=ax)


def caterpillar(frame: pd.DataFrame, alpha: float, xlabel: str, ylabel: str, *, ax=None):
    """Caterpillar plot: random effects (``estimate``, ``cond_sd``) in the order given, with
    normal ``1 - alpha`` intervals from their conditional SDs; returns the Axes."""
    import matplotlib.pyplot as plt  # lazy: importing cpdimpact stays cheap

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(
        np.arange(len(frame)),
        frame["estimate"],
        yerr=critical_value(alpha, None) * frame["cond_sd"],
        fmt="o",
        markersize=3,
        linewidth=0.8,
        color="C0",
    )
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax
