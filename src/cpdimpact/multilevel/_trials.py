r"""Trial analyses: pupil-randomised, cluster-randomised and multisite trials.

:class:`SimpleTrial`, :class:`ClusterTrial` and :class:`MultisiteTrial` fit the analysis models
of the EEF's trial designs (as the R package eefAnalytics does with ``srtFREQ``, ``crtFREQ`` and
``mstFREQ``) and return a :class:`TrialResult`: the treatment coefficient with its interval, the
variance components and ICCs of the model with covariates ("conditional") and without
("unconditional"), the school effects, and the effect sizes, led by the EEF-guidance headline.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from .._guards import reject_infinite, require_binary, require_unexplained, require_variation
from .._outcome_scale import outcome_scale, units_text
from .._results import EstimateResult, Summary, critical_value, interval, p_value
from .._validate import check_alpha, check_choice, check_int, check_seed, seed_sequence
from .._weights import constant, nonzero_weight_rows
from ..errors import (
    ArgumentTypeError,
    CpdImpactWarning,
    DesignError,
    FewClustersWarning,
    InvalidArgumentError,
    InvalidValueError,
    MissingColumnError,
    format_rows,
    format_value,
)
from ..estimator import (
    ModelBased,
    adjustment_in_words,
    check_inference,
    deprecated_options,
    from_df_method,
)
from . import _binary as bin_
from . import _trial_effects as tes
from ._fastfit import SiteStats
from ._model import FAMILIES as _MODEL_FAMILIES
from ._model import MultilevelModel, require_model_columns
from ._profile import ProfileLikelihood
from ._resample import TrialArrays, run_bootstrap, run_permutations
from ._result import MultilevelResult, caterpillar

__all__ = ["ClusterTrial", "MultisiteTrial", "SimpleTrial", "TrialResult"]

#: Fewer clusters (sites) than this emit a FewClustersWarning. Profile and Wald intervals lead
#: only with many clusters: in simulations (docs/trials.md) ML-profile intervals covered 92% at
#: 10 schools, 93% at 20 and 94% at 40; Satterthwaite intervals 95% throughout.
FEW_CLUSTERS = {"profile": 40, "normal": 40, "satterthwaite": 10, "between_within": 10}

#: The outcome families a trial takes: the linear model (a 0/1 outcome is then a linear
#: probability model) and the logistic model (``MultilevelModel``'s spelling).
FAMILIES = tuple(f for f in _MODEL_FAMILIES if f != "poisson")

#: ``effect_sizes`` definitions that divide the coefficient by an SD of the outcome.
SD_DEFINITIONS = ("eef_guidance", "eefanalytics")

_HEADLINE_NOTE = (
    "Headline (EEF guidance): the covariate-adjusted coefficient over the square root of the "
    "total (between + within) variance of the unconditional model, no small-sample factor; "
    "its interval is the coefficient's interval over the same SD. The 'eefanalytics' rows "
    "reproduce eefAnalytics 1.1.5, whose Total effect sizes apply Hedges' (2007) d_T factor "
    "(and whose intervals use Hedges' (2007) variances, which ignore the covariates)."
)


# ============================================================================== specs
@dataclass(frozen=True, kw_only=True)
class _Trial:
    """Options shared by the three designs (see :class:`ClusterTrial` for their meaning)."""

    design: ClassVar[str] = ""
    #: Rows it fits: pupil records.
    data_level: ClassVar[str] = "pupil"
    #: Its coefficient is in the outcome's units; the result adds eefAnalytics' effect sizes.
    effect_scale: ClassVar[str] = "outcome"

    outcome: str
    treatment: str
    covariates: Sequence[str] = ()
    cluster: str | None = None
    n_bootstrap: int = 0
    bootstrap: Literal["case", "residual"] = "case"
    n_permutations: int = 0
    seed: int | np.random.SeedSequence | np.random.Generator | None = None
    weights: str | None = None
    alpha: float = 0.05
    family: Literal["gaussian", "binomial"] = "gaussian"

    def __post_init__(self):
        covariates = (self.covariates,) if isinstance(self.covariates, str) else self.covariates
        object.__setattr__(self, "covariates", tuple(covariates))
        for name in ("outcome", "treatment"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise InvalidArgumentError(
                    f"{name} must name a column, got {format_value(getattr(self, name))}."
                )
        roles = [self.outcome, self.treatment, *self.covariates]
        if self.cluster is not None:
            roles.append(self.cluster)
        if self.weights is not None:
            roles.append(self.weights)
        repeated = sorted({r for r in roles if roles.count(r) > 1})
        if repeated:
            raise InvalidArgumentError(
                f"columns {repeated} appear in two roles (outcome, treatment, covariates, "
                "cluster, weights); each column can play one"
            )
        for name in ("n_bootstrap", "n_permutations"):
            check_int(getattr(self, name), name, minimum=0, hint=" Use 0 for none.")
        check_choice(self.bootstrap, "bootstrap", ("case", "residual"))
        if self.weights is not None and self.bootstrap == "residual" and self.n_bootstrap:
            raise InvalidArgumentError(
                "bootstrap='residual' does not take weights (its residuals would need "
                "rescaling by them); use bootstrap='case', which keeps each pupil's weight"
            )
        check_alpha(self.alpha)
        check_seed(self.seed)
        check_choice(self.family, "family", FAMILIES)
        if self.family == "binomial":
            asked = [
                f"{name}={getattr(self, name)!r}"
                for name in ("n_bootstrap", "n_permutations", "weights")
                if getattr(self, name)
            ]
            if asked:
                raise InvalidArgumentError(
                    f"{', '.join(asked)} is not available with family='binomial' (the bootstrap, "
                    "permutations and prior weights refit the linear model); drop it, or "
                    "analyse the 0/1 outcome with the default linear model (differences in "
                    "proportions), which takes them"
                )

    def describe(self) -> str:
        """The design, its model and its inference in plain words, for a report."""
        extra = []
        if self.n_bootstrap:
            extra.append(f"a {self.bootstrap} bootstrap of {self.n_bootstrap} draws")
        if self.n_permutations:
            extra.append(f"a permutation test of {self.n_permutations} re-randomisations")
        also = f", with {' and '.join(extra)}" if extra else ""
        adjusted = adjustment_in_words(self.covariates, self.weights)
        if self.family == "binomial":
            return (
                f"{self._logistic_words()}{adjusted}; Wald z intervals; the treatment's odds "
                "ratio and its population-averaged difference in percentage points (delta "
                "method)"
            )
        return f"{self._model_words()}{adjusted}; {self._inference_words()}{also}"

    def _logistic_words(self) -> str:
        return (
            self._model_words()
            .replace("ordinary least squares", "logistic regression (maximum likelihood)")
            .replace(
                "a linear mixed model",
                "a logistic mixed model (maximum likelihood, Laplace approximation)",
            )
        )

    # ------------------------------------------------------------------ helpers
    def _columns(self) -> list[str]:
        cols = [self.outcome, self.treatment, *self.covariates]
        return cols + ([self.cluster] if self.cluster is not None else [])

    def _weights(self, frame: pd.DataFrame) -> np.ndarray | None:
        """Prior weights of the analysed rows, mean one (None: unweighted or constant)."""
        if self.weights is None:
            return None
        w = frame[self.weights].to_numpy(dtype=float)
        return None if constant(w) else w / w.mean()

    def _clean(self, data: pd.DataFrame) -> tuple[pd.DataFrame, int, list[str]]:
        """Validated analysis rows (a copy), the number dropped and notes."""
        if not isinstance(data, pd.DataFrame):
            raise ArgumentTypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
        if self.family == "binomial" and self.outcome in data.columns:
            # before the numeric checks: a "Y"/"N" column is named as not 0/1, with the fix
            require_binary(data, self.outcome, allow_missing=True)
        cols = self._columns()
        require_model_columns(data, cols, [self.outcome, *self.covariates])
        if self.weights is not None and self.weights not in data.columns:
            raise MissingColumnError(
                f"column {self.weights!r} (the weights) is not in the data; it has "
                f"{list(map(str, data.columns))}"
            )
        extra = [self.weights] if self.weights is not None else []
        frame = data[cols + extra]
        for column in [self.outcome, *self.covariates]:  # missing: dropped below; inf: never
            role = "outcome" if column == self.outcome else "covariate"
            values = frame[column].to_numpy(dtype=float, na_value=np.nan)
            reject_infinite(values, frame.index, column, role)
        incomplete = frame[cols].isna().any(axis=1).to_numpy()
        notes: list[str] = []
        if incomplete.any():
            bad = [c for c in cols if frame[c].isna().any()]
            message = (
                f"{int(incomplete.sum())} of {len(frame)} rows have missing values in {bad} "
                f"({format_rows(data.index[incomplete])}) and were dropped: a complete-case "
                "analysis; consider how these pupils differ from the others"
            )
            warnings.warn(message, CpdImpactWarning, stacklevel=3)
            notes.append(message)
            frame = frame.loc[~incomplete]
        if self.weights is not None:
            frame, weight = nonzero_weight_rows(frame, self.weights, notes)
            frame = frame.assign(**{self.weights: weight})
            notes.append(
                f"weighted by {self.weights!r}: lme4-style prior weights (normalised to mean "
                "one); the eefAnalytics effect-size variances count pupils, unweighted"
            )
        treat = frame[self.treatment]
        numeric = pd.api.types.is_numeric_dtype(treat) or pd.api.types.is_bool_dtype(treat)
        values = treat.astype(float) if numeric else None
        if values is None or not values.isin([0.0, 1.0]).all():
            offending = frame.index if values is None else frame.index[~values.isin([0.0, 1.0])]
            shown = sorted({format_value(v) for v in treat.loc[offending[:50]]})[:5]
            raise InvalidValueError(
                f"treatment column {self.treatment!r} must be 0/1 (or True/False); it holds "
                f"{', '.join(shown)} ({format_rows(offending)}). Code the intervention arm 1 "
                "and the control arm 0; analyse a three-arm trial as pairs of arms"
            )
        frame = frame.assign(**{self.treatment: values})
        require_variation(
            frame[self.outcome].to_numpy(dtype=float),
            self.outcome,
            where="in the complete rows" if incomplete.any() else "",
        )
        n_treated = int(values.sum())
        if n_treated == 0 or n_treated == len(values):
            raise DesignError(
                f"column {self.treatment!r} must mark both arms; every analysed pupil has "
                f"{int(values.iloc[0]) if len(values) else 'no'} value"
            )
        return frame, int(incomplete.sum()), notes

    def _arrays_common(self, frame: pd.DataFrame):
        y = frame[self.outcome].to_numpy(dtype=float)
        x = np.column_stack(
            [np.ones(len(frame)), frame[self.treatment].to_numpy(dtype=float)]
            + [frame[c].to_numpy(dtype=float) for c in self.covariates]
        )
        return x, y

    def _resample(self, arrays: TrialArrays):
        ss = seed_sequence(self.seed)
        boot = perm = None
        if self.n_bootstrap:
            boot = run_bootstrap(arrays, self.n_bootstrap, self.bootstrap, ss)
        if self.n_permutations:
            perm = run_permutations(arrays, self.n_permutations, ss)
        return boot, perm, ss


def _check_rank(x: np.ndarray, names: list[str]) -> None:
    rank = np.linalg.matrix_rank(x)
    if rank < x.shape[1]:
        dependent = []
        for j in range(1, x.shape[1]):
            if np.linalg.matrix_rank(x[:, : j + 1]) <= j:
                dependent.append(names[j])
        raise InvalidValueError(
            f"{dependent} are perfectly collinear with the intercept and the columns before "
            "them (or constant) in the analysed rows; remove them"
        )


# ----------------------------------------------------------------------------- simple
@dataclass(frozen=True, kw_only=True)
class SimpleTrial(_Trial):
    r"""Pupil-randomised trial: ordinary least squares with covariates (eefAnalytics' ``srtFREQ``).

    .. math:: y_i = \beta_0 + \beta\,T_i + x_i^\top\gamma + \varepsilon_i,
              \qquad \varepsilon_i \sim N(0, \sigma^2)

    The coefficient's interval is the usual *t* interval on :math:`N - p` degrees of freedom.
    With no clustering the pupil variance is the total variance: ``effect_sizes`` has the
    headline (EEF guidance) :math:`\hat\beta / s_y`, :math:`s_y` the outcome's SD, and
    eefAnalytics' Hedges' g, :math:`J\hat\beta/\hat\sigma` ("conditional", the residual SD) and
    :math:`J\hat\beta/s_y` ("unconditional"), :math:`J = 1 - 3/(4(N-2)-1)`.

    Parameters
    ----------
    outcome, treatment
        Outcome column and the 0/1 (or boolean) randomised arm.
    covariates
        Pupil covariates (numeric; code categories as 0/1 dummies), e.g. the pre-test.
    cluster
        Optional randomisation blocks (e.g. schools in which pupils were randomised): the
        model is unchanged (add block dummies as covariates for fixed block effects), but the
        bootstrap resamples and the permutations re-randomise within blocks.
    n_bootstrap, bootstrap
        Bootstrap draws and scheme: ``"case"`` resamples pupils (within blocks), ``"residual"``
        resamples residuals. Percentile intervals; 0 for none.
    n_permutations
        Permutation draws re-randomising the treatment (within blocks); 0 for none.
    seed
        Seed of the bootstrap and permutations: an int, ``None``, a numpy ``SeedSequence``
        (``n`` and ``SeedSequence(n)`` give the same draws) or a ``Generator`` (drawn from).
        Draw *i* depends only on the seed and *i*.
    weights
        Column of non-negative pupil weights (e.g. matching weights): weighted least squares
        (``lm(weights = w)``; weights normalised to mean one, constant weights change
        nothing). The case bootstrap and the permutations keep each pupil's weight with the
        pupil; the residual bootstrap is refused. Rows of weight zero are excluded and counted.
    alpha
        1 minus the confidence level.
    family
        ``"gaussian"`` (default): the linear model; on a 0/1 (pass/fail) outcome its
        coefficient is a difference in proportions (a linear probability model; the result's
        ``outcome_kind``, ``estimate_units`` and ``percentage_points`` say so, and
        ``effect_sizes`` converts the implied odds ratio instead of dividing by an SD).
        ``"binomial"``: logistic regression of a 0/1 outcome (R's ``glm``), reporting the odds
        ratio, the marginal difference in percentage points and the Cox effect size
        (docs/multilevel_binary.md); no bootstrap, permutations or weights.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.multilevel import SimpleTrial
    >>> rng = np.random.default_rng(3)
    >>> prior = rng.normal(size=400)
    >>> treated = rng.permutation(np.repeat([0.0, 1.0], 200))
    >>> score = 0.25 * treated + 0.6 * prior + rng.normal(size=400)
    >>> data = pd.DataFrame({"score": score, "treated": treated, "prior": prior})
    >>> res = SimpleTrial(outcome="score", treatment="treated", covariates=("prior",)).fit(data)
    >>> res.coefficient[["method", "estimate", "ci_lower", "ci_upper"]].round(3)
      method  estimate  ci_lower  ci_upper
    0      t     0.306     0.104     0.508
    """

    design: ClassVar[str] = "simple"

    def _model_words(self) -> str:
        return "Pupil-randomised trial analysed by ordinary least squares"

    def _inference_words(self) -> str:
        return "conventional standard errors with t tests"

    def fit(self, data: pd.DataFrame) -> TrialResult:
        """Fit the trial to pupil rows (``data`` is not modified)."""
        frame, n_dropped, notes = self._clean(data)
        x, y = self._arrays_common(frame)
        names = ["Intercept", self.treatment, *self.covariates]
        t = x[:, 1]
        n_t, n_c = int(t.sum()), int(len(t) - t.sum())
        if min(n_t, n_c) < 2:
            raise DesignError(
                f"each arm needs at least 2 pupils; {self.treatment!r} has {n_t} treated and "
                f"{n_c} control pupils"
            )
        _check_rank(x, names)
        n, p = x.shape
        if n - p < 1:
            raise DesignError(f"{n} pupils cannot estimate {p} coefficients")
        if self.family == "binomial":
            return _fit_simple_logistic(self, frame, x, y, names, n_dropped, notes)
        weights = self._weights(frame)
        if weights is None:
            xtx_inv = np.linalg.inv(x.T @ x)
            beta = xtx_inv @ x.T @ y
            resid = y - x @ beta
            sigma2 = float(resid @ resid / (n - p))
            var_y = float(np.var(y, ddof=1))
            mean_y = float(y.mean())
        else:  # weighted least squares, as lm(weights = w)
            xtx_inv = np.linalg.inv(x.T @ (x * weights[:, None]))
            beta = xtx_inv @ x.T @ (weights * y)
            resid = y - x @ beta
            sigma2 = float((weights * resid) @ resid / (n - p))
            mean_y = float(weights @ y / weights.sum())
            var_y = float(weights @ (y - mean_y) ** 2 / (n - 1))
        require_unexplained(resid, y, self.outcome, explained_by="the treatment and the covariates")
        se = np.sqrt(np.diag(sigma2 * xtx_inv))
        df = float(n - p)
        if self.cluster is not None:
            site, labels = pd.factorize(frame[self.cluster], sort=True)
        else:
            site, labels = np.zeros(n, dtype=np.int64), [None]
        arrays = TrialArrays(
            design="simple",
            x=x,
            y=y,
            site=site.astype(np.int64),
            n_sites=len(labels),
            beta=beta,
            sigma2=sigma2,
            site_cov=np.zeros((1, 1)),
            blups=np.zeros((len(labels), 1)),
            theta=np.zeros(1),
            beta_u=mean_y,
            sigma2_u=var_y,
            site_var_u=0.0,
            blups_u=np.zeros(len(labels)),
            w=weights,
        )
        boot, perm, ss = self._resample(arrays)
        est, std = float(beta[1]), float(se[1])
        lower, upper = interval(est, std, alpha=self.alpha, df=df)
        coefficient = [_coef_row("t", est, std, df, lower, upper, p_value(est / std, df))]
        fixed = _fixed_frame(names, beta, se, np.full(p, df), self.alpha, "t")
        variances = pd.DataFrame(
            {
                "between": [np.nan, np.nan],
                "within": [sigma2, var_y],
                "total": [sigma2, var_y],
                "icc": [np.nan, np.nan],
            },
            index=pd.Index(["conditional", "unconditional"], name="model"),
        )
        sd_u = np.sqrt(var_y)
        rows = [_headline_row(est, std, lower, upper, sd_u)]
        for model, sd in (("conditional", np.sqrt(sigma2)), ("unconditional", sd_u)):
            g, g_se = tes.simple(est, sd, n_t, n_c)
            z = critical_value(self.alpha, None)
            rows.append(_es_row(model, "total", "eefanalytics", g, g_se, z))
        return _finish(
            self,
            arrays=arrays,
            coefficient=coefficient,
            fixed=fixed,
            variances=variances,
            es_rows=rows,
            boot=boot,
            perm=perm,
            ss=ss,
            ci_method="t",
            school_effects=None,
            model=None,
            unconditional=None,
            n_dropped=n_dropped,
            notes=notes,
            extra={"n_clusters": len(labels) if self.cluster is not None else None},
        )


# ----------------------------------------------------------------------------- cluster
@deprecated_options(ci_method=("inference", from_df_method("ci_method")))
@dataclass(frozen=True, kw_only=True)
class ClusterTrial(_Trial):
    r"""Cluster-randomised trial: schools randomised, a random intercept for schools.

    .. math:: y_{ij} = \beta_0 + \beta\,T_j + x_{ij}^\top\gamma + u_j + \varepsilon_{ij},\qquad
              u_j \sim N(0, \sigma_b^2),\ \varepsilon_{ij} \sim N(0, \sigma_w^2)

    fitted by REML (as eefAnalytics' ``crtFREQ`` with lme4). The unconditional model drops
    the treatment and covariates: :math:`y_{ij} = \mu + u_j + \varepsilon_{ij}`.

    **Coefficient interval** (``inference=ModelBased(df)``): ``"satterthwaite"`` (default) is a
    *t* interval with Satterthwaite degrees of freedom (as lmerTest); ``"profile"`` the
    profile-likelihood interval lme4's ``confint`` gives and eefAnalytics prints (ML profile,
    normal cut-off; the
    roots solved exactly rather than interpolated); ``"between_within"`` a *t* interval with
    between-within degrees of freedom (nlme: clusters minus cluster-level terms);
    ``"normal"`` a Wald *z* interval. ``result.coefficient`` shows the lead interval, the
    profile interval (always: it is eefAnalytics') and the others. Satterthwaite leads because
    in simulated 20-school trials it covered 95% where the profile covered 93% (docs/trials.md).

    **Effect sizes** (``result.effect_sizes``), led by the EEF-guidance headline

    .. math:: ES = \hat\beta / \sqrt{\hat\sigma^2_{b,u} + \hat\sigma^2_{w,u}}

    (coefficient from the model with covariates, variances from the unconditional model, no
    small-sample factor; interval: the coefficient's interval over the same SD). Beside it,
    eefAnalytics' four variants: Within :math:`\hat\beta/\hat\sigma_w` and Total
    :math:`d_T = \hat\beta/\hat\sigma_T \cdot \sqrt{1 - \rho(\ldots)/(N-2)}` (Hedges 2007,
    unequal cluster sizes), each from the conditional and the unconditional model, with
    Hedges' (2007) variances. eefAnalytics' unconditional Total is thus the headline times
    Hedges' factor (0.596 rather than 0.607 on eefAnalytics' ``crtData``).

    The unconditional model has no treatment term, so its school variance absorbs the
    treatment's spread between schools: with a share :math:`p` of schools treated,
    :math:`\sigma^2_{b,u} \approx \sigma^2_b + p(1-p)\beta^2`, and the headline is about
    :math:`\tau/\sqrt{1 + p(1-p)\tau^2}` for an effect :math:`\tau` over the SD without that
    spread: with half the schools treated, shrunk by about :math:`1/\sqrt{1 + \tau^2/4}` (0.5%
    at :math:`\tau = 0.2`, 11% at :math:`\tau = 1`). That is the EEF guidance's definition
    (and eefAnalytics'); see docs/trials.md.

    Parameters
    ----------
    outcome, treatment, covariates
        Outcome, the 0/1 arm (constant within each cluster) and pupil or school covariates.
    cluster
        The unit of randomisation (school). Required.
    n_bootstrap, bootstrap
        Bootstrap draws; ``"case"`` resamples schools, then pupils within the drawn schools
        (eefAnalytics' ``case(1,2)``); ``"residual"`` resamples reflated school effects and
        pupil residuals. Percentile intervals of the coefficient and of the effect sizes
        (coefficient over the model SD in each draw, as eefAnalytics).
    n_permutations
        Permutations re-randomising the treatment across schools (the number of treated
        schools kept): two-sided permutation p-values.
    seed
        Seed of the bootstrap and permutations (int, ``None``, ``SeedSequence`` or
        ``Generator``; see :class:`ClusterTrial`).
    weights
        Column of non-negative pupil weights (e.g. matching weights), lme4-style prior
        weights in both models (see :class:`~cpdimpact.multilevel.MultilevelModel`: the point
        estimates are the weighted ones; model-based standard errors and the profile treat the
        weights as precisions). The case bootstrap and the permutations keep each pupil's
        weight with the pupil; the residual bootstrap is refused. The eefAnalytics effect-size
        variances (Hedges 2007) count pupils, unweighted. Rows of weight zero are excluded
        and counted.
    alpha
        1 minus the confidence level.
    family
        ``"gaussian"`` (default): the linear mixed model; on a 0/1 (pass/fail) outcome a linear
        probability model (see :class:`SimpleTrial`). ``"binomial"``: a logistic mixed model
        (:class:`~cpdimpact.multilevel.MultilevelModel` with ``family="binomial"``, maximum
        likelihood, Laplace), reporting the conditional odds ratio with its Wald interval, the
        population-averaged difference in percentage points and the Cox effect size
        (docs/multilevel_binary.md); Wald z intervals, no bootstrap, permutations or weights.
    inference
        :class:`~cpdimpact.estimator.ModelBased` with the coefficient interval above:
        ``ModelBased("satterthwaite")`` (default), ``("profile")``, ``("between_within")`` or
        ``("normal")``. The old ``ci_method="profile"`` still works for one release
        (deprecated).

    Notes
    -----
    The model is fitted by :class:`~cpdimpact.multilevel.MultilevelModel` (REML, lme4's
    optimum); bootstrap and permutation refits use batched random-intercept fits from per-school
    sufficient statistics (:mod:`cpdimpact.multilevel._fastfit`).

    References
    ----------
    Hedges, L. V. (2007). Effect sizes in cluster-randomized designs. *J. Educ. Behav. Stat.*
    32(4), 341-370.

    Education Endowment Foundation (2022). *Statistical analysis guidance for EEF
    evaluations*.

    Kasim, A., Xiao, Z., Higgins, S. & De Troyer, E. (2017). eefAnalytics (R package).

    Examples
    --------
    Forty schools, twenty randomised to each arm:

    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.multilevel import ClusterTrial
    >>> rng = np.random.default_rng(1)
    >>> school = np.repeat(np.arange(40), 25)
    >>> treated = (school % 2).astype(float)
    >>> prior = rng.normal(size=1000)
    >>> score = (0.3 * treated + 0.6 * prior + rng.normal(0, 0.5, 40)[school]
    ...          + rng.normal(size=1000))
    >>> data = pd.DataFrame({"school": school, "treated": treated, "prior": prior,
    ...                      "score": score})
    >>> res = ClusterTrial(outcome="score", treatment="treated", covariates=("prior",),
    ...                    cluster="school").fit(data)
    >>> res.effect_sizes[["model", "variance", "definition", "estimate", "ci_lower",
    ...                   "ci_upper"]].round(2)
               model variance    definition  estimate  ci_lower  ci_upper
    0  unconditional    total  eef_guidance      0.16     -0.14      0.46
    1    conditional   within  eefanalytics      0.21     -0.17      0.58
    2    conditional    total  eefanalytics      0.18     -0.15      0.50
    3  unconditional   within  eefanalytics      0.18     -0.13      0.49
    4  unconditional    total  eefanalytics      0.16     -0.12      0.44
    """

    design: ClassVar[str] = "cluster"

    inference: ModelBased = field(default=ModelBased())

    def __post_init__(self):
        super().__post_init__()
        if self.cluster is None:
            raise InvalidArgumentError(
                f"{type(self).__name__} needs cluster=, the randomised unit (the school column)"
            )
        check_inference(type(self), self.inference)
        if self.family == "binomial" and self.inference.df in ("profile", "between_within"):
            raise InvalidArgumentError(
                f"inference=ModelBased({self.inference.df!r}) is not available with "
                "family='binomial': a logistic mixed model has Wald z intervals (as glmer); "
                "leave inference at its default or use ModelBased('normal')"
            )

    @property
    def ci_method(self) -> str:
        """The interval method of ``inference`` (read-only; the option is deprecated);
        ``"normal"`` (Wald z) with ``family="binomial"``."""
        return "normal" if self.family == "binomial" else self.inference.df

    def _model_words(self) -> str:
        return (
            f"Cluster-randomised trial analysed by a linear mixed model with random "
            f"intercepts for {self.cluster}"
        )

    def _inference_words(self) -> str:
        return self.inference.describe()

    def _check_design(self, frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
        arms = frame.groupby(self.cluster, sort=True)[self.treatment].agg(["min", "max"])
        mixed = arms.index[arms["min"] != arms["max"]]
        if len(mixed):
            shown = ", ".join(format_value(v) for v in mixed[:5])
            more = f" and {len(mixed) - 5} more" if len(mixed) > 5 else ""
            raise DesignError(
                f"treatment {self.treatment!r} varies within {len(mixed)} {self.cluster!r} "
                f"clusters ({shown}{more}): a cluster-randomised trial assigns whole "
                f"clusters. Check the cluster ids, or use MultisiteTrial if pupils were "
                f"randomised within {self.cluster!r}"
            )
        per_arm = arms["min"].value_counts()
        m_t, m_c = int(per_arm.get(1.0, 0)), int(per_arm.get(0.0, 0))
        if min(m_t, m_c) < 2:
            raise DesignError(
                f"each arm needs at least 2 clusters to separate the treatment from the "
                f"cluster variance; there are {m_t} treated and {m_c} control "
                f"{self.cluster!r} clusters"
            )
        self._warn_few(
            m_t + m_c,
            notes,
            f"only {m_t + m_c} clusters ({m_t} treated, {m_c} control): the cluster "
            "variance is imprecise",
            advice=f" and {self.ci_method} intervals tend to be too narrow; prefer "
            "inference=ModelBased('satterthwaite') and a permutation test",
            otherwise="; consider a permutation test",
        )
        return frame

    def _warn_few(self, n: int, notes: list[str], text: str, *, advice: str, otherwise: str):
        """Warn (and note) when ``n`` clusters are few for the interval method.

        ``advice`` ends the message for the likelihood intervals (profile, normal), which
        are too narrow with few clusters; ``otherwise`` for the small-sample ones.
        """
        if n < FEW_CLUSTERS[self.ci_method]:
            if self.family == "binomial":
                advice = (
                    "; the Wald z intervals of a logistic mixed model have no small-sample "
                    "correction and tend to be too narrow with so few clusters"
                )
            message = text + (advice if self.ci_method in ("profile", "normal") else otherwise)
            warnings.warn(message, FewClustersWarning, stacklevel=4)
            notes.append(message)

    def _slopes(self) -> dict:
        return {}

    def fit(self, data: pd.DataFrame) -> TrialResult:
        """Fit the trial to pupil rows (``data`` is not modified)."""
        frame, n_dropped, notes = self._clean(data)
        frame = self._check_design(frame, notes)
        if self.family == "binomial":
            return _fit_multilevel_logistic(self, frame, n_dropped, notes)
        return _fit_multilevel(self, frame, n_dropped, notes)


# ----------------------------------------------------------------------------- multisite
@deprecated_options(ci_method=("inference", from_df_method("ci_method")))
@dataclass(frozen=True, kw_only=True)
class MultisiteTrial(ClusterTrial):
    r"""Multisite trial: pupils randomised within schools; random intercept and treatment slope.

    .. math:: y_{ij} = \beta_0 + \beta\,T_{ij} + x_{ij}^\top\gamma + u_{0j} + u_{1j}T_{ij}
              + \varepsilon_{ij},\qquad (u_{0j}, u_{1j}) \sim N(0, \Sigma)

    (REML, lme4's ``(1 + T | school)``, as eefAnalytics' ``mstFREQ``); the unconditional model
    is :math:`y_{ij} = \mu + u_j + \varepsilon_{ij}`.

    The conditional **total** variance averages the model's variance over pupils,
    :math:`\sigma_{00} + \sigma_w^2 + p_T(\sigma_{11} + 2\sigma_{01})` with :math:`p_T` the
    share of treated pupils (eefAnalytics' definition); the conditional ICC is the school share
    of it. eefAnalytics' conditional effect sizes are :math:`\hat\beta/\hat\sigma_w` and
    :math:`\hat\beta/\hat\sigma_T` with a random-slope variance (no small-sample factor); its
    unconditional ones apply the cluster-trial formulas with each school's two arms counted as
    clusters. The headline is the EEF guidance's, as for :class:`ClusterTrial`.

    Parameters
    ----------
    single_arm_sites
        Sites where every analysed pupil is in one arm: ``"keep"`` (default, as lme4 and
        eefAnalytics: they inform the intercept variance and the covariates but not the
        treatment slope) or ``"drop"``. Either way a warning counts them.
    outcome, treatment, covariates, cluster, n_bootstrap, bootstrap, n_permutations, seed, weights, alpha, inference, family
        As :class:`ClusterTrial` (with weights, the share of treated pupils in the
        conditional total variance is the weighted share); permutations re-randomise the treatment within sites, the
        case bootstrap resamples sites then pupils within them.

    Examples
    --------
    Thirty schools, half of each school's pupils randomised to the programme:

    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.multilevel import MultisiteTrial
    >>> rng = np.random.default_rng(2)
    >>> school = np.repeat(np.arange(30), 20)
    >>> treated = np.tile(np.repeat([0.0, 1.0], 10), 30)
    >>> prior = rng.normal(size=600)
    >>> slope = 0.3 + rng.normal(0, 0.15, 30)
    >>> score = (slope[school] * treated + 0.6 * prior + rng.normal(0, 0.5, 30)[school]
    ...          + rng.normal(size=600))
    >>> data = pd.DataFrame({"school": school, "treated": treated, "prior": prior,
    ...                      "score": score})
    >>> res = MultisiteTrial(outcome="score", treatment="treated", covariates=("prior",),
    ...                      cluster="school").fit(data)
    >>> res.coefficient[["method", "estimate", "ci_lower", "ci_upper"]].round(3)
              method  estimate  ci_lower  ci_upper
    0  satterthwaite      0.33     0.164     0.495
    1        profile      0.33     0.165     0.495
    2         normal      0.33     0.165     0.495
    """

    design: ClassVar[str] = "multisite"

    single_arm_sites: Literal["keep", "drop"] = "keep"

    def _model_words(self) -> str:
        return (
            "Multisite trial analysed by a linear mixed model with random intercepts and "
            f"treatment slopes for {self.cluster}"
        )

    def __post_init__(self):
        super().__post_init__()
        check_choice(self.single_arm_sites, "single_arm_sites", ("keep", "drop"))

    def _slopes(self) -> dict:
        return {self.cluster: (self.treatment,)}

    def _check_design(self, frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
        arms = frame.groupby(self.cluster, sort=True)[self.treatment].agg(["min", "max"])
        single = arms.index[arms["min"] == arms["max"]]
        if len(single) == len(arms):
            raise DesignError(
                f"treatment {self.treatment!r} is constant within every {self.cluster!r} "
                "site: that is a cluster-randomised design; use ClusterTrial"
            )
        if len(single):
            shown = ", ".join(format_value(v) for v in single[:5])
            more = f" and {len(single) - 5} more" if len(single) > 5 else ""
            action = (
                "kept (they inform the intercept variance and covariates, not the slope)"
                if self.single_arm_sites == "keep"
                else "dropped"
            )
            message = (
                f"{len(single)} of {len(arms)} {self.cluster!r} sites have pupils in one arm "
                f"only ({shown}{more}); {action}"
            )
            if self.single_arm_sites == "drop":
                n_rows = int(frame[self.cluster].isin(single).sum())
                frame = frame.loc[~frame[self.cluster].isin(single)]
                message += f": {n_rows} pupils removed"
            warnings.warn(message, CpdImpactWarning, stacklevel=3)
            notes.append(message)
        both = len(arms) - len(single)
        if both < 2:
            raise DesignError(
                f"only {both} {self.cluster!r} site has both arms; a multisite analysis needs "
                "at least 2 (the treatment-slope variance needs several)"
            )
        self._warn_few(
            both,
            notes,
            f"only {both} sites have both arms: the slope variance and the coefficient's "
            "interval are imprecise",
            advice="; prefer inference=ModelBased('satterthwaite')",
            otherwise="",
        )
        return frame


# ============================================================================== fitting
def _fit_multilevel(spec: ClusterTrial, frame: pd.DataFrame, n_dropped: int, notes: list[str]):
    multisite = spec.design == "multisite"
    df_method = "between_within" if spec.ci_method == "between_within" else "satterthwaite"
    covariates = (spec.treatment, *spec.covariates)
    names = ["Intercept", *covariates]
    model = MultilevelModel(
        outcome=spec.outcome,
        covariates=covariates,
        groups=(spec.cluster,),
        slopes=spec._slopes(),
        inference=ModelBased(df_method),
        missing="raise",
        weights=spec.weights,
        alpha=spec.alpha,
    )
    fit = model.fit(frame)
    uncond = MultilevelModel(
        outcome=spec.outcome,
        groups=(spec.cluster,),
        inference=ModelBased("normal"),
        missing="raise",
        weights=spec.weights,
    ).fit(frame)
    weights = spec._weights(frame)
    x, y = spec._arrays_common(frame)
    site, labels = pd.factorize(frame[spec.cluster], sort=True)
    site = site.astype(np.int64)
    t = x[:, 1]
    vc = fit.variance_components
    c = spec.cluster
    sigma2 = float(vc["Residual"])
    between = float(vc[c])
    re = fit.random_effects[c]
    if multisite:
        slope_var = float(vc[f"{c}:{spec.treatment}"])
        cov01 = float(vc[f"{c}:Intercept:{spec.treatment}"])
        site_cov = np.array([[between, cov01], [cov01, slope_var]])
        blups = np.column_stack(
            [
                re.loc[re["term"] == "Intercept", "estimate"].to_numpy(),
                re.loc[re["term"] == spec.treatment, "estimate"].to_numpy(),
            ]
        )
        share = float(t.mean()) if weights is None else float(weights @ t / weights.sum())
        total_c = between + sigma2 + share * (slope_var + 2 * cov01)
    else:
        site_cov = np.array([[between]])
        blups = re["estimate"].to_numpy()[:, None]
        total_c = between + sigma2
    vcu = uncond.variance_components
    between_u, sigma2_u = float(vcu[c]), float(vcu["Residual"])
    total_u = between_u + sigma2_u
    arrays = TrialArrays(
        design=spec.design,
        x=x,
        y=y,
        site=site,
        n_sites=len(labels),
        beta=fit.params.to_numpy(),
        sigma2=sigma2,
        site_cov=site_cov,
        blups=blups,
        theta=fit.theta.to_numpy(),
        beta_u=float(uncond.params.iloc[0]),
        sigma2_u=sigma2_u,
        site_var_u=between_u,
        blups_u=uncond.random_effects[c]["estimate"].to_numpy(),
        w=weights,
    )

    # ---- the coefficient and its intervals
    profile = _LazyProfile(arrays, multisite, fit.theta.to_numpy())
    est = float(fit.params[spec.treatment])
    se = float(fit.std_errors[spec.treatment])
    df = float(fit.df[spec.treatment])
    t_lo, t_hi = interval(est, se, alpha=spec.alpha, df=df)
    z_lo, z_hi = interval(est, se, alpha=spec.alpha, df=None)
    p_lo, p_hi = profile.get().interval(1, spec.alpha)
    rows = {
        df_method: _coef_row(df_method, est, se, df, t_lo, t_hi, p_value(est / se, df)),
        "profile": _coef_row("profile", est, se, np.nan, p_lo, p_hi, profile.get().p_value(1)),
        "normal": _coef_row("normal", est, se, np.inf, z_lo, z_hi, p_value(est / se)),
    }
    order = [spec.ci_method] + [m for m in ("profile", df_method, "normal") if m != spec.ci_method]
    coefficient = [rows[m] for m in order]
    lead = coefficient[0]

    fixed = _fixed_frame(names, fit.params, fit.std_errors, fit.df, spec.alpha, df_method)
    if spec.ci_method == "normal":
        fixed = _fixed_frame(names, fit.params, fit.std_errors, None, spec.alpha, "normal")
    if spec.ci_method == "profile":
        row = fixed["term"] == spec.treatment
        fixed.loc[row, ["ci_lower", "ci_upper"]] = [p_lo, p_hi]
        fixed.loc[row, "interval"] = "profile"

    # ---- variances and effect sizes
    icc_c = (total_c - sigma2) / total_c
    icc_u = between_u / total_u
    variances = {
        "between": [between, between_u],
        "within": [sigma2, sigma2_u],
        "total": [total_c, total_u],
        "icc": [icc_c, icc_u],
    }
    if multisite:
        variances.update(slope=[slope_var, np.nan], intercept_slope=[cov01, np.nan])
        variances["share_treated"] = [share, np.nan]
    variances = pd.DataFrame(
        variances, index=pd.Index(["conditional", "unconditional"], name="model")
    )
    sd_u = np.sqrt(total_u)
    es_rows = [_headline_row(est, lead["std_error"], lead["ci_lower"], lead["ci_upper"], sd_u)]
    sizes = tes.ClusterSizes.from_arrays(t, site)
    z = critical_value(spec.alpha, None)
    if multisite:
        for variance, var_den in (("within", sigma2), ("total", total_c)):
            d, d_se = tes.multisite(est, var_den, sigma2, slope_var, t, site)
            es_rows.append(_es_row("conditional", variance, "eefanalytics", d, d_se, z))
    else:
        d, d_se = tes.within_crt(est, sigma2, icc_c, sizes)
        es_rows.append(_es_row("conditional", "within", "eefanalytics", d, d_se, z))
        d, d_se = tes.total_crt(est, total_c, icc_c, sizes)
        es_rows.append(_es_row("conditional", "total", "eefanalytics", d, d_se, z))
    d, d_se = tes.within_crt(est, sigma2_u, icc_u, sizes)
    es_rows.append(_es_row("unconditional", "within", "eefanalytics", d, d_se, z))
    d, d_se = tes.total_crt(est, total_u, icc_u, sizes)
    es_rows.append(_es_row("unconditional", "total", "eefanalytics", d, d_se, z))

    school_effects = re.copy()
    if fit.singular:
        notes.append("singular fit: a variance is estimated at zero or a correlation at +/-1")
    boot, perm, ss = spec._resample(arrays)
    arms = frame.groupby(spec.cluster)[spec.treatment].max() if not multisite else None
    extra = {
        "n_clusters": len(labels),
        "n_clusters_per_arm": None
        if multisite
        else pd.Series(
            {"treated": int((arms == 1).sum()), "control": int((arms == 0).sum())},
            name="clusters",
        ),
    }
    return _finish(
        spec,
        arrays=arrays,
        coefficient=coefficient,
        fixed=fixed,
        variances=variances,
        es_rows=es_rows,
        boot=boot,
        perm=perm,
        ss=ss,
        ci_method=spec.ci_method,
        school_effects=school_effects,
        model=fit,
        unconditional=uncond,
        n_dropped=n_dropped,
        notes=notes,
        extra=extra,
        profile=profile,
    )


# ----------------------------------------------------------------------------- logistic
def _fit_simple_logistic(spec, frame, x, y, names, n_dropped, notes) -> TrialResult:
    """``family="binomial"`` for a pupil-randomised trial: logistic regression (R's ``glm``)."""
    beta, cov = bin_.logistic_regression(x, y, names, spec.outcome)
    fixed = _fixed_frame(names, beta, np.sqrt(np.diag(cov)), None, spec.alpha, "normal")
    params = pd.Series(beta, index=names)
    cov = pd.DataFrame(cov, index=names, columns=names)
    extra = {"n_clusters": frame[spec.cluster].nunique() if spec.cluster is not None else None}
    return _logistic_result(
        spec,
        frame,
        params,
        cov,
        fixed,
        variance=0.0,
        treated_variance=None,
        variances=_latent_variances(np.nan),
        school_effects=None,
        model=None,
        n_dropped=n_dropped,
        notes=notes,
        extra=extra,
    )


def _fit_multilevel_logistic(spec, frame, n_dropped, notes) -> TrialResult:
    """``family="binomial"`` for a cluster or multisite trial: a logistic mixed model
    (:class:`MultilevelModel` with ``family="binomial"``, glmer's Laplace fit)."""
    multisite = spec.design == "multisite"
    covariates = (spec.treatment, *spec.covariates)
    names = ["Intercept", *covariates]
    fit = MultilevelModel(
        outcome=spec.outcome,
        covariates=covariates,
        groups=(spec.cluster,),
        slopes=spec._slopes(),
        family="binomial",
        inference=ModelBased("normal"),
        missing="raise",
        alpha=spec.alpha,
    ).fit(frame)
    vc, c = fit.variance_components, spec.cluster
    between = float(vc[c])
    treated_variance = None
    variances = _latent_variances(between)
    if multisite:
        slope_var = float(vc[f"{c}:{spec.treatment}"])
        cov01 = float(vc[f"{c}:Intercept:{spec.treatment}"])
        treated_variance = between + 2 * cov01 + slope_var
        variances = variances.assign(slope=[slope_var, np.nan], intercept_slope=[cov01, np.nan])
    fixed = _fixed_frame(names, fit.params, fit.std_errors, None, spec.alpha, "normal")
    if fit.singular:
        notes.append("singular fit: a variance is estimated at zero or a correlation at +/-1")
    notes.extend(n for n in fit.notes if n not in notes)
    arms = frame.groupby(spec.cluster)[spec.treatment].max() if not multisite else None
    extra = {
        "n_clusters": int(fit.n_groups.iloc[0]),
        "n_clusters_per_arm": None
        if multisite
        else pd.Series(
            {"treated": int((arms == 1).sum()), "control": int((arms == 0).sum())},
            name="clusters",
        ),
    }
    return _logistic_result(
        spec,
        frame,
        fit.params,
        fit.cov_params,
        fixed,
        variance=between,
        treated_variance=treated_variance,
        variances=variances,
        school_effects=fit.random_effects[c].copy(),
        model=fit,
        n_dropped=n_dropped,
        notes=notes,
        extra=extra,
    )


def _latent_variances(between: float) -> pd.DataFrame:
    r"""A logistic model's variances on the latent scale: the school intercept's, the logistic
    distribution's :math:`\pi^2/3` for pupils, and the latent ICC (no unconditional model)."""
    within = float(np.pi**2 / 3)
    total = within + (0.0 if np.isnan(between) else between)
    return pd.DataFrame(
        {
            "between": [between, np.nan],
            "within": [within, np.nan],
            "total": [total, np.nan],
            "icc": [between / total, np.nan],
        },
        index=pd.Index(["conditional", "unconditional"], name="model"),
    )


def _logistic_result(
    spec,
    frame,
    params,
    cov,
    fixed,
    *,
    variance,
    treated_variance,
    variances,
    school_effects,
    model,
    n_dropped,
    notes,
    extra,
) -> TrialResult:
    """A :class:`TrialResult` on the log-odds scale, with the odds ratio, the marginal
    percentage points and the Cox effect size (:mod:`._binary`)."""
    names = list(params.index)
    design = pd.DataFrame(spec._arrays_common(frame)[0], columns=names, index=frame.index)
    effects, marginal = bin_.binary_effects(
        params,
        cov,
        design,
        spec.treatment,
        variance=variance,
        treated_variance=treated_variance,
        alpha=spec.alpha,
    )
    est, se = float(params[spec.treatment]), float(np.sqrt(cov.loc[spec.treatment, spec.treatment]))
    lower, upper = interval(est, se, alpha=spec.alpha)
    coefficient = pd.DataFrame(
        [_coef_row("normal", est, se, np.inf, lower, upper, p_value(est / se))]
    )
    t = design[spec.treatment].to_numpy()
    y = frame[spec.outcome].to_numpy(dtype=float)
    return TrialResult(
        spec=spec,
        design=spec.design,
        coefficient=coefficient,
        ci_method="normal",
        fixed_effects=fixed,
        variances=variances,
        effect_sizes=pd.DataFrame(bin_.odds_ratio_rows(est, se, spec.alpha, marginal)),
        school_effects=school_effects,
        model=model,
        unconditional_model=None,
        **_sample_sizes(t, n_dropped, extra),
        bootstrap_draws=None,
        permutation_draws=None,
        seed_entropy=None,
        notes=tuple(notes),
        family="binomial",
        outcome_kind="pass_fail",
        pass_value=1.0,
        treated_proportion=float(y[t == 1].mean()),
        binary_effects=effects,
        marginal=marginal,
    )


class _LazyProfile:
    """The ML profile likelihood of the conditional model, built on first use."""

    def __init__(self, arrays: TrialArrays, multisite: bool, theta: np.ndarray):
        self._args = (arrays, multisite, theta)
        self._profile: ProfileLikelihood | None = None

    def get(self) -> ProfileLikelihood:
        if self._profile is None:
            self._profile = _profile_likelihood(*self._args)
        return self._profile


def _profile_likelihood(arrays: TrialArrays, multisite: bool, theta: np.ndarray):
    w = np.column_stack([arrays.x, arrays.y])
    st = SiteStats.build(
        w,
        arrays.site,
        arrays.n_sites,
        arrays.p,
        treated=arrays.treatment if multisite else None,
        weights=arrays.w,
    )
    if multisite:

        def evaluate(phis):
            return st.evaluate_slope(phis)

    else:

        def evaluate(phis):
            return st.evaluate_intercept(phis[:, 0] ** 2)

    return ProfileLikelihood(evaluate, len(arrays.y), arrays.p, theta, slope=multisite)


# ============================================================================== rows
def _coef_row(method, est, se, df, lower, upper, p) -> dict:
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = est / se
    return {
        "method": method,
        "estimate": float(est),
        "std_error": float(se),
        "df": float(df),
        "statistic": float(statistic),
        "p_value": float(p),
        "ci_lower": float(lower),
        "ci_upper": float(upper),
    }


def _fixed_frame(names, params, std_errors, df, alpha, method) -> pd.DataFrame:
    params = pd.Series(np.asarray(params, dtype=float), index=names)
    se = pd.Series(np.asarray(std_errors, dtype=float), index=names)
    df_arr = None if df is None else np.asarray(df, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = params / se
    lower, upper = interval(params, se, alpha=alpha, df=df_arr)
    return pd.DataFrame(
        {
            "term": names,
            "estimate": params.to_numpy(),
            "std_error": se.to_numpy(),
            "statistic": statistic.to_numpy(),
            "p_value": p_value(statistic.to_numpy(), df_arr),
            "ci_lower": lower,
            "ci_upper": upper,
            "df": np.full(len(names), np.inf) if df_arr is None else df_arr,
            "interval": method,
        }
    )


def _headline_row(est, se, lower, upper, sd) -> dict:
    return {
        "model": "unconditional",
        "variance": "total",
        "definition": "eef_guidance",
        "estimate": est / sd,
        "std_error": se / sd,
        "ci_lower": lower / sd,
        "ci_upper": upper / sd,
        "headline": True,
    }


def _es_row(model, variance, definition, d, d_se, z) -> dict:
    return {
        "model": model,
        "variance": variance,
        "definition": definition,
        "estimate": d,
        "std_error": d_se,
        "ci_lower": d - z * d_se,
        "ci_upper": d + z * d_se,
        "headline": False,
    }


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float, float]:
    """Percentile interval and SD of bootstrap draws (NaN when no draw succeeded)."""
    if len(values) < 2:
        return np.nan, np.nan, np.nan
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi), float(np.std(values, ddof=1))


def _finish(
    spec,
    *,
    arrays,
    coefficient,
    fixed,
    variances,
    es_rows,
    boot,
    perm,
    ss,
    ci_method,
    school_effects,
    model,
    unconditional,
    n_dropped,
    notes,
    extra,
    profile=None,
) -> TrialResult:
    est = coefficient[0]["estimate"]
    alpha = spec.alpha
    depth = 2 if spec.design == "simple" else 3
    scale = outcome_scale(
        arrays.y, arrays.w, [("the estimate", arrays.treatment == 1, est)], notes, depth=depth
    )
    if scale["outcome_kind"] == "pass_fail":  # a linear probability model: no SD-based sizes
        lead = coefficient[0]
        es_rows = bin_.difference_rows(
            est / scale["pass_value"],
            lead["std_error"] / scale["pass_value"],
            p_treated=scale["treated_proportion"],
            df=lead["df"],
            alpha=alpha,
        )
    coef = pd.DataFrame(coefficient)
    es = pd.DataFrame(es_rows)
    by_sd = es["definition"].isin(SD_DEFINITIONS).to_numpy()
    denominators = {  # the variance each (model, variance) row divides by, in the data
        (m, v): float(variances.loc[m, "within" if v == "within" else "total"])
        for m in ("conditional", "unconditional")
        for v in ("within", "total")
    }
    n_boot_failed = n_perm_failed = 0
    if boot is not None:
        good = boot[boot["ok"]]
        n_boot_failed = int((~boot["ok"]).sum())
        draws = good["coefficient"].to_numpy()
        lo, hi, sd = _percentiles(draws, alpha)
        coef = pd.concat(
            [coef, pd.DataFrame([_coef_row("bootstrap", est, sd, np.nan, lo, hi, np.nan)])],
            ignore_index=True,
        )
        boot_lo, boot_hi, boot_se = [], [], []
        for (_, row), divides in zip(es.iterrows(), by_sd, strict=True):
            if not divides:  # a conversion of the coefficient, not coefficient / SD
                boot_lo.append(np.nan)
                boot_hi.append(np.nan)
                boot_se.append(np.nan)
                continue
            suffix = "_c" if row["model"] == "conditional" else "_u"
            values = good["coefficient"] / np.sqrt(good[row["variance"] + suffix])
            lo, hi, sd = _percentiles(values.to_numpy(), alpha)
            boot_lo.append(lo)
            boot_hi.append(hi)
            boot_se.append(sd)
        es = es.assign(boot_se=boot_se, boot_ci_lower=boot_lo, boot_ci_upper=boot_hi)
    if perm is not None:
        good = perm[perm["ok"]]
        n_perm_failed = int((~perm["ok"]).sum())
        b = len(good)
        tol = 1e-10 * max(1.0, abs(est))
        count = int((np.abs(good["coefficient"]) >= abs(est) - tol).sum())
        p_coef = (1 + count) / (b + 1) if b else np.nan
        coef = pd.concat(
            [
                coef,
                pd.DataFrame(
                    [_coef_row("permutation", est, np.nan, np.nan, np.nan, np.nan, p_coef)]
                ),
            ],
            ignore_index=True,
        )
        p_es = []
        for (_, row), divides in zip(es.iterrows(), by_sd, strict=True):
            if not divides:
                p_es.append(np.nan)
                continue
            observed = est / np.sqrt(denominators[(row["model"], row["variance"])])
            if row["model"] == "conditional":
                column = "within_c" if row["variance"] == "within" else "total_c"
                values = np.abs(good["coefficient"] / np.sqrt(good[column]))
            else:  # the unconditional model does not involve the treatment
                values = np.abs(good["coefficient"]) / np.sqrt(
                    denominators[(row["model"], row["variance"])]
                )
            count = int((values >= abs(observed) - 1e-10 * max(1.0, abs(observed))).sum())
            p_es.append((1 + count) / (b + 1) if b else np.nan)
        es = es.assign(perm_p_value=p_es)
    for name, failed, total in (
        ("bootstrap", n_boot_failed, spec.n_bootstrap),
        ("permutation", n_perm_failed, spec.n_permutations),
    ):
        if failed:
            message = f"{failed} of {total} {name} refits failed and were left out"
            warnings.warn(message, CpdImpactWarning, stacklevel=4)
            notes.append(message)
    t = arrays.treatment
    return TrialResult(
        spec=spec,
        design=spec.design,
        coefficient=coef,
        ci_method=ci_method,
        fixed_effects=fixed,
        variances=variances,
        effect_sizes=es,
        school_effects=school_effects,
        model=model,
        unconditional_model=unconditional,
        **_sample_sizes(t, n_dropped, extra),
        bootstrap_draws=boot,
        permutation_draws=perm,
        seed_entropy=ss.entropy if (boot is not None or perm is not None) else None,
        notes=tuple(notes),
        _profile=profile,
        **scale,
    )


def _sample_sizes(t: np.ndarray, n_dropped: int, extra: dict) -> dict:
    """A trial result's counts: pupils analysed and dropped, pupils per arm (``t`` the 0/1
    treatment of the analysed pupils) and the clusters (``extra``) of the design."""
    treated = int(t.sum())
    return {
        "n_obs": len(t),
        "n_dropped": n_dropped,
        "n_per_arm": pd.Series({"treated": treated, "control": len(t) - treated}, name="pupils"),
        "n_clusters": extra.get("n_clusters"),
        "n_clusters_per_arm": extra.get("n_clusters_per_arm"),
    }


# ============================================================================== result
@dataclass(frozen=True, eq=False)
class TrialResult(EstimateResult):
    """A fitted :class:`SimpleTrial`, :class:`ClusterTrial` or :class:`MultisiteTrial`.

    Attributes
    ----------
    coefficient
        The treatment coefficient, one row per interval ``method``: the lead one
        (``ci_method``) first, then ``profile`` (eefAnalytics'), ``satterthwaite`` (or
        ``between_within``) and ``normal``
        (``t`` alone for OLS), and ``bootstrap``
        (standard error = SD of the draws, percentile interval) and ``permutation`` (p-value)
        when asked. Columns ``method, estimate, std_error, df, statistic, p_value, ci_lower,
        ci_upper``.
    fixed_effects
        Tidy fixed effects (``to_frame()``): the treatment row's interval is the lead one, the
        covariates' the model's *t* (``interval`` column says which).
    variances
        Rows ``conditional`` (model with covariates) and ``unconditional`` (intercept only);
        columns ``between`` (school intercept), ``within`` (pupil), ``total``, ``icc`` and, for
        a multisite trial, ``slope``, ``intercept_slope`` and ``share_treated``.
    effect_sizes
        Tidy: ``model`` (conditional | unconditional), ``variance`` (within | total),
        ``definition`` (``eef_guidance``: the headline; ``eefanalytics``: eefAnalytics'
        variants), ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``headline``; with a
        bootstrap ``boot_se``, ``boot_ci_lower``, ``boot_ci_upper`` (percentile, of the
        coefficient over the model SD in each draw); with permutations ``perm_p_value``.
    school_effects
        School random effects (BLUPs, lme4's conditional modes) with conditional SDs; one row
        per school and term (``Intercept``, and the treatment slope in a multisite trial).
        ``None`` for a pupil-randomised trial.
    model, unconditional_model
        The fitted :class:`~cpdimpact.multilevel.MultilevelResult` objects (``None`` for OLS).
    bootstrap_draws, permutation_draws
        Per draw: ``coefficient``, the variances (``within_c``, ``total_c``, ``within_u``,
        ``total_u``) and ``ok``; ``None`` when not asked.
    seed_entropy
        The entropy of the draws' seed (pass it as ``seed`` to repeat a ``seed=None`` run).
    family
        ``"gaussian"`` (the linear model) or ``"binomial"`` (a logistic model: the
        coefficient, ``fixed_effects`` and ``conf_int`` are then on the log-odds scale, with
        Wald z intervals; ``variances`` are on the latent scale, the pupil-level one being the
        logistic distribution's :math:`\\pi^2/3`, with no unconditional model).
    outcome_kind, pass_value, treated_proportion
        ``"pass_fail"`` for a pass/fail outcome (coded 0/1, or 0/100 with the linear model), with
        the value coding a pass and the proportion passing among treated pupils; else
        ``"score"``, ``None``, ``None``. With the linear model a pass/fail outcome is a
        linear probability model: the coefficient is a difference in proportions
        (:attr:`estimate_units`; x100 = percentage points, :attr:`percentage_points`), and
        ``effect_sizes`` holds no SD-based effect size but the odds ratio it implies
        (:math:`p_0 = p_1 - \\hat\\beta`) converted by Cox (``definition="cox"``, the headline)
        and by Hasselblad-Hedges (``"hasselblad_hedges"``), as for a logistic model.
    binary_effects
        ``family="binomial"``: rows ``log_odds_ratio`` (the coefficient), ``odds_ratio`` (its
        Wald interval exponentiated) and ``percentage_points`` (the marginal difference,
        population-averaged over the school effects, delta-method interval); columns
        ``measure, estimate, std_error, ci_lower, ci_upper, scale``. ``None`` otherwise.
    marginal
        ``family="binomial"``: the :class:`~cpdimpact.effects.MarginalDifference` behind the
        percentage points (the two average predicted probabilities, the gradient).
    """

    spec: _Trial
    design: str
    coefficient: pd.DataFrame
    ci_method: str
    fixed_effects: pd.DataFrame
    variances: pd.DataFrame
    effect_sizes: pd.DataFrame
    school_effects: pd.DataFrame | None
    model: MultilevelResult | None
    unconditional_model: MultilevelResult | None
    n_obs: int
    n_dropped: int
    n_per_arm: pd.Series
    n_clusters: int | None
    n_clusters_per_arm: pd.Series | None
    bootstrap_draws: pd.DataFrame | None
    permutation_draws: pd.DataFrame | None
    seed_entropy: object
    notes: tuple[str, ...] = ()
    _profile: object = field(default=None, repr=False)
    family: str = "gaussian"
    outcome_kind: str = "score"
    pass_value: float | None = None
    treated_proportion: float | None = None
    binary_effects: pd.DataFrame | None = None
    marginal: object = field(default=None, repr=False)

    # ------------------------------------------------------------------ headline facts
    @property
    def term(self) -> str:
        return self.spec.treatment

    def _headline(self) -> pd.Series:
        """The treatment coefficient's lead row (``ci_method``): ``estimate`` (outcome units),
        ``std_error``, ``p_value`` (likelihood ratio for the profile), the interval."""
        return self.coefficient.iloc[0]

    @property
    def ci(self) -> tuple[float, float]:
        """The coefficient's interval by ``ci_method``."""
        row = self.coefficient.iloc[0]
        return float(row["ci_lower"]), float(row["ci_upper"])

    @property
    def estimate_units(self) -> str:
        """What the coefficient measures: the outcome's units, a difference in proportions
        (a linear probability model on a pass/fail outcome) or a log odds ratio."""
        if self.family == "binomial":
            return (
                "log odds ratio (intervention over control, conditional on the school effects; "
                "exp = odds ratio)"
                if self.design != "simple"
                else "log odds ratio (intervention over control; exp = odds ratio)"
            )
        return units_text(self.outcome_kind, self.pass_value, self.spec.outcome)

    @property
    def odds_ratio(self) -> pd.Series | None:
        """``family="binomial"``: the odds ratio row (``estimate, ci_lower, ci_upper``);
        ``None`` for the linear model (whose implied odds ratio is in ``effect_sizes``)."""
        return bin_.binary_row(self.binary_effects, "odds_ratio")

    @property
    def percentage_points(self) -> pd.Series | None:
        """The effect in percentage points with its interval (``estimate, std_error,
        ci_lower, ci_upper``): the marginal (population-averaged) difference of a logistic
        model, or the linear probability coefficient x 100; ``None`` for a score."""
        return bin_.percentage_points(self, lambda: self.coefficient.iloc[0])

    @property
    def icc(self) -> pd.Series:
        """Intraclass correlation of the conditional and the unconditional model."""
        return self.variances["icc"].rename("icc")

    @property
    def headline(self) -> pd.Series:
        """The headline effect-size row (EEF guidance)."""
        return self.effect_sizes.loc[self.effect_sizes["headline"]].iloc[0]

    @property
    def effect_size(self) -> float:
        """The headline effect size."""
        return float(self.headline["estimate"])

    # ------------------------------------------------------------------ faces
    def conf_int(self, alpha: float = 0.05, *, method: str | None = None) -> pd.DataFrame:
        """Intervals of the fixed effects at level ``1 - alpha``.

        ``method`` defaults to the trial's ``ci_method``: ``"profile"`` profiles every term
        (ML, as lme4's ``confint``); otherwise model-based *t* (or *z*) intervals.
        """
        method = method or self.ci_method
        fe = self.fixed_effects.set_index("term")
        if method == "profile":
            if self._profile is None:
                raise InvalidArgumentError("profile intervals need a multilevel trial fit")
            profile = self._profile.get()
            bounds = [profile.interval(j, alpha) for j in range(len(fe))]
            lower, upper = zip(*bounds, strict=True)
        else:
            if method not in ("t", "satterthwaite", "between_within", "normal"):
                raise InvalidArgumentError(f"unknown method {method!r}")
            if method in ("satterthwaite", "between_within") and method != self._df_method:
                raise InvalidArgumentError(
                    f"this fit has {self._df_method} degrees of freedom; refit with "
                    f"inference=ModelBased({method!r})"
                )
            df = None if method == "normal" else fe["df"].to_numpy()
            lower, upper = interval(fe["estimate"], fe["std_error"], alpha=alpha, df=df)
        return pd.DataFrame(
            {"ci_lower": np.asarray(lower), "ci_upper": np.asarray(upper)}, index=fe.index
        )

    @property
    def _df_method(self) -> str:
        if self.design == "simple":
            return "t"
        return "between_within" if self.ci_method == "between_within" else "satterthwaite"

    @property
    def alpha(self) -> float:
        """The trial's level (the spec's ``alpha``)."""
        return self.spec.alpha

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """Tidy fixed effects: ``term, estimate, std_error, statistic, p_value, ci_lower,
        ci_upper`` plus ``df`` and ``interval`` (the interval's method per row); at another
        level than the fit's, the intervals of :meth:`conf_int` at ``alpha``."""
        if alpha == self.spec.alpha:
            return self.fixed_effects.copy()
        ci = self.conf_int(alpha)
        return self.fixed_effects.assign(
            ci_lower=ci["ci_lower"].to_numpy(), ci_upper=ci["ci_upper"].to_numpy()
        )

    def summary(self) -> Summary:
        """Printable summary: design, coefficient, variances, ICCs and the effect sizes."""
        from ..effects import months_of_progress

        s = self.spec
        lead = self.coefficient.iloc[0]
        level = f"{1 - s.alpha:.0%}"
        logistic = self.family == "binomial"
        fitted = "logistic, ML (Laplace)" if logistic else "REML"
        design = {
            "simple": f"pupil-randomised trial ({'logistic regression' if logistic else 'OLS'})",
            "cluster": f"cluster-randomised trial (random intercept for {s.cluster}, {fitted})",
            "multisite": (
                f"multisite trial (random intercept and {s.treatment} slope for {s.cluster}, "
                f"{fitted})"
            ),
        }[self.design]
        arms = f"{self.n_per_arm['treated']} treated, {self.n_per_arm['control']} control"
        if self.n_clusters_per_arm is not None:
            arms += (
                f"; {self.n_clusters_per_arm['treated']} + {self.n_clusters_per_arm['control']}"
                f" {s.cluster} clusters"
            )
        elif self.n_clusters is not None:
            kind = "blocks" if self.design == "simple" else "sites"
            arms += f"; {self.n_clusters} {s.cluster} {kind}"
        head = self.headline
        v = self.variances
        binary = self.outcome_kind == "pass_fail"
        facts = [
            ("design", design),
            ("model", f"{s.outcome} ~ {' + '.join([s.treatment, *s.covariates])}"),
            ("pupils", f"{self.n_obs} ({arms}); {self.n_dropped} dropped for missing values"),
            (
                "log odds ratio" if logistic else "coefficient",
                f"{lead['estimate']:.4f} (SE {lead['std_error']:.4f}), {level} CI "
                f"[{lead['ci_lower']:.4f}, {lead['ci_upper']:.4f}] ({_method_label(lead)}), "
                f"p = {lead['p_value']:.4g}",
            ),
        ]
        if binary:
            facts.extend(self._binary_facts(level))
        else:
            months = months_of_progress(float(head["estimate"]))
            facts.append(
                (
                    "effect size (headline)",
                    f"{head['estimate']:.2f} [{head['ci_lower']:.2f}, {head['ci_upper']:.2f}], "
                    f"{months:+d} months of progress (EEF guidance: coefficient / unconditional "
                    "total SD)",
                )
            )
        if logistic:
            if self.design != "simple":
                facts.append(
                    (
                        "variances (latent scale)",
                        f"between {v.loc['conditional', 'between']:.4g}, within (logistic) "
                        f"{v.loc['conditional', 'within']:.4g}, ICC "
                        f"{v.loc['conditional', 'icc']:.3f}",
                    )
                )
        elif self.design != "simple":
            facts.append(
                (
                    "variances",
                    "; ".join(
                        f"{m}: between {v.loc[m, 'between']:.4g}, within "
                        f"{v.loc[m, 'within']:.4g}, total {v.loc[m, 'total']:.4g}, ICC "
                        f"{v.loc[m, 'icc']:.3f}"
                        for m in v.index
                    ),
                )
            )
        else:
            facts.append(
                (
                    "variances",
                    f"residual {v.loc['conditional', 'within']:.4g}; outcome "
                    f"{v.loc['unconditional', 'within']:.4g}",
                )
            )
        for _, row in self.coefficient.iloc[1:].iterrows():
            if row["method"] == "permutation":
                text = f"p = {row['p_value']:.4g} ({s.n_permutations} permutations)"
            else:
                text = f"[{row['ci_lower']:.4f}, {row['ci_upper']:.4f}]"
                if row["method"] == "bootstrap":
                    text += f" ({s.n_bootstrap} {s.bootstrap} draws, percentile)"
            facts.append((f"coefficient, {_method_label(row)}", text))
        if self.seed_entropy is not None:
            shown = s.seed if isinstance(s.seed, int | np.integer) else self.seed_entropy
            facts.append(("seed", f"{shown} (draw i uses its own stream: reproducible)"))
        table = self.effect_sizes.drop(columns="headline")
        lead_note = (bin_.BINARY_NOTE, bin_.NO_MONTHS) if binary else (_HEADLINE_NOTE,)
        return Summary(
            title={
                "simple": "Pupil-randomised trial",
                "cluster": "Cluster-randomised trial",
                "multisite": "Multisite trial",
            }[self.design],
            facts=tuple(facts),
            table=table,
            notes=(*lead_note, *self.notes),
        )

    def _binary_facts(self, level: str) -> list[tuple[str, str]]:
        """Summary lines of a pass/fail outcome: the scale, the odds ratio and percentage
        points, the Cox effect size (no months)."""
        head = self.headline
        cox = (
            f"{head['estimate']:.2f} [{head['ci_lower']:.2f}, {head['ci_upper']:.2f}] "
            "(Cox: ln OR / 1.65); no months of progress (see notes)"
        )
        pp = self.percentage_points
        pp_text = f"{pp['estimate']:+.2f} [{pp['ci_lower']:+.2f}, {pp['ci_upper']:+.2f}]"
        if self.family != "binomial":
            return [
                ("outcome scale", units_text(self.outcome_kind, self.pass_value, "")),
                ("treated pupils passing", f"{100 * self.treated_proportion:.1f}%"),
                ("percentage points", f"{pp_text} ({level} CI)"),
                ("effect size (headline, from the implied odds ratio)", cox),
            ]
        odds, m = self.odds_ratio, self.marginal
        return [
            ("outcome scale", f"0/1 (pass/fail): {self.estimate_units}"),
            (
                "odds ratio",
                f"{odds['estimate']:.3f} [{odds['ci_lower']:.3f}, {odds['ci_upper']:.3f}] "
                f"({level} CI, Wald)",
            ),
            (
                "percentage points",
                f"{pp_text} ({level} CI, delta method): {100 * m.p_treated:.1f}% passing with "
                f"the programme against {100 * m.p_untreated:.1f}% without, averaged over the "
                "analysed pupils" + (" and the school effects" if self.design != "simple" else ""),
            ),
            ("effect size (headline)", cox),
        ]

    def __repr__(self) -> str:
        return (
            f"TrialResult(design={self.design!r}, estimate={self.estimate:.4f}, "
            f"ci=({self.ci[0]:.4f}, {self.ci[1]:.4f}), effect_size={self.effect_size:.3f}, "
            f"n_obs={self.n_obs})"
        )

    def plot(self, *, ax=None, kind: Literal["effect_sizes", "school_effects"] = "effect_sizes"):
        """Forest plot of the effect sizes (default) or a caterpillar plot of school effects."""
        import matplotlib.pyplot as plt

        if kind == "school_effects":
            if self.school_effects is None:
                raise InvalidArgumentError("a pupil-randomised trial has no school effects")
            frame = self.school_effects
            frame = frame[frame["term"] == "Intercept"].sort_values("estimate")
            return caterpillar(
                frame,
                self.spec.alpha,
                f"{self.spec.cluster} (ranked)",
                "school effect (BLUP)",
                ax=ax,
            )
        if kind != "effect_sizes":
            raise InvalidArgumentError(
                f"kind must be 'effect_sizes' or 'school_effects', got {kind!r}"
            )
        es = self.effect_sizes.iloc[::-1].reset_index(drop=True)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.5 * len(es) + 1))
        labels = [
            (
                ("EEF headline: " if r["headline"] else "eefAnalytics ")
                + f"{r['model']} {r['variance']}"
                if r["definition"] in SD_DEFINITIONS
                else {"cox": "Cox (ln OR / 1.65)", "hasselblad_hedges": "Hasselblad-Hedges"}.get(
                    r["definition"], r["definition"]
                )
            )
            for _, r in es.iterrows()
        ]
        pos = np.arange(len(es))
        colours = ["C3" if h else "C0" for h in es["headline"]]
        for i, (_, r) in enumerate(es.iterrows()):
            ax.plot([r["ci_lower"], r["ci_upper"]], [i, i], color=colours[i], linewidth=1.5)
        ax.scatter(es["estimate"], pos, color=colours, zorder=3)
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_yticks(pos)
        ax.set_yticklabels(labels)
        ax.set_xlabel(f"effect size ({1 - self.spec.alpha:.0%} CI)")
        return ax


def _method_label(row) -> str:
    method = row["method"]
    if method in ("satterthwaite", "between_within", "t"):
        name = {"satterthwaite": "Satterthwaite", "between_within": "between-within"}.get(
            method, "OLS"
        )
        return f"{name} t, df {row['df']:.1f}"
    return {
        "profile": "ML profile likelihood",
        "normal": "Wald z",
        "bootstrap": "bootstrap",
        "permutation": "permutation",
    }[method]
