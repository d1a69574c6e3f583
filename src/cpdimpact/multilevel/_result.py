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
        ``"{group}:Intercept:{term}"`` for the intercept-slope covariance, and ``"Residual"``.
    loglik
        Log-likelihood as lme4 reports it (the REML log-likelihood for REML fits).
    theta
        Relative Cholesky factors (lme4's theta), named.
    sigma
        Residual standard deviation.
    random_effects
        Per group name, a frame of the group's id columns, ``term``, ``estimate`` (conditional
        mode, BLUP) and ``cond_sd`` (conditional SD given the data and the estimates).
    n_groups, n_obs, n_dropped
        Groups per level, pupils used, rows dropped for missing values.
    converged, singular
        Optimiser success; a variance component at zero (reported, not an error).
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

    @property
    def method(self) -> str:
        return self.model.method

    @property
    def df_method(self) -> str:
        return self.model.df_method

    @property
    def icc(self) -> pd.Series:
        """Intraclass correlation per level: its intercept variance over the total.

        The total is the sum of the random intercept variances and the residual (with random
        slopes, the intercept variance applies where the slope terms are zero).
        """
        groups = list(self.model.groups)
        variances = self.variance_components[groups]
        total = variances.sum() + self.variance_components["Residual"]
        return (variances / total).rename("icc")

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
