"""Difference-in-differences with random effects for schools (and teachers): a pipeline stage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from .._guards import check_absorbing
from .._outcome_scale import outcome_scale, outcome_scale_facts, units_text
from .._results import EstimateResult, tidy_frame, years_without_data
from .._validate import check_bool, check_choice
from ..did import FIRST_TREATED
from ..errors import (
    DesignError,
    InconsistentTreatmentError,
    InvalidArgumentError,
    MissingColumnError,
    format_rows,
    format_value,
)
from ..estimator import ModelBased, check_inference, deprecated_options, from_df_method
from . import _binary as bin_
from ._model import MultilevelModel, check_group_order
from ._result import MultilevelResult
from ._trials import FAMILIES

__all__ = ["MultilevelDiD", "MultilevelDiDResult"]


@deprecated_options(df_method=("inference", from_df_method("df_method")))
@dataclass(frozen=True, kw_only=True)
class MultilevelDiD:
    r"""Difference-in-differences on pupil records with nested random intercepts.

    .. math::
        y_{it} = \beta_0 + \gamma\,T_{s(i)} + \lambda_t + \delta D_{it} + x_i^\top\beta
                 + u_{s(i)} + v_{c(i)} + \varepsilon_{it}

    :math:`T` marks the treated arm, :math:`\lambda_t` are year effects, :math:`D` is exposure
    and :math:`\delta` the DiD estimate; :math:`u` and :math:`v` are random intercepts for the
    groups (school, then teacher). Pupils differ every year (a repeated cross-section), so
    the random school intercept stands in for the school fixed effect of :class:`~cpdimpact.did.DiD`,
    and inference comes from the model: Satterthwaite degrees of freedom by default.

    The effect-size denominator comes from the model's variances, as EEF guidance asks: the
    square root of the total (between + within) variance of an *unconditional* model, with
    year effects only, fitted to the comparison arm's records (``effect_size_sd`` of the
    result).

    Parameters
    ----------
    outcome, treatment, arm, time
        Columns: outcome, exposure indicator (``exposed``), treated-arm indicator
        (``treated``) and year.
    groups
        Grouping columns, outermost first (the outermost is the level of assignment).
    period_effects
        Add a random intercept for each outermost group in each year, nested between it and
        the inner groups (school / school-year / teacher, so a teacher's class in one year is
        a group): shocks shared by a school's pupils in one year. Without it, such shocks make model-based standard errors too small; in
        simulations of ``city_partnership`` 95% intervals covered 83% of the time without and
        95% with it.
    covariates
        Pupil covariates (e.g. prior attainment).
    method, inference
        As in :class:`MultilevelModel` (``inference=ModelBased("satterthwaite")`` by default;
        the old ``df_method=`` still works for one release, deprecated). ``method`` unset is
        REML for the linear model and ML for the logistic one.
    family
        ``"gaussian"`` (default): the linear mixed model; on a 0/1 (or 0/100) outcome its
        estimate is a difference in proportions (a linear probability model, as
        :class:`~cpdimpact.did.DiD`; ``outcome_kind`` and ``estimate_units`` say so).
        ``"binomial"``: a logistic mixed model of a 0/1 outcome, reporting the exposure's
        conditional odds ratio (Wald z interval), its population-averaged difference in
        percentage points over the exposed records and the Cox effect size
        (docs/multilevel_binary.md); no weights, no ``effect_size_sd``.
    weights
        Column of non-negative pupil weights (e.g. matching weights attached by
        :mod:`cpdimpact.comparison`), lme4-style prior weights as in :class:`MultilevelModel`
        (see its Notes: the point estimate is the weighted one; the model-based standard error
        treats the weights as precisions). They enter both the model and the unconditional
        model behind ``effect_size_sd``. Rows of weight zero are excluded and counted.

    Notes
    -----
    Years with no data (no KS2 tests in 2020 and 2021): :math:`\lambda_t` is estimated for the
    observed years only, so the comparison of exposed and unexposed records runs over the years
    that exist and nothing assumes the years are consecutive; a school first exposed in a year
    with no data (a 2021 start) simply has its first exposed records in the next observed year.
    The result names the missing years (``years_without_data``).

    Examples
    --------
    >>> from cpdimpact.cohort import CohortSpec
    >>> from cpdimpact.datasets import city_partnership
    >>> from cpdimpact.multilevel import MultilevelDiD
    >>> cohort = CohortSpec().build(city_partnership(seed=2, scale=0.25))
    >>> res = MultilevelDiD(covariates=("prior",)).fit(cohort.pupils)
    >>> res.cluster, res.n_clusters
    ('school', 40)
    """

    #: Rows it fits: pupil records only (the random effects model pupils).
    data_level: ClassVar[str] = "pupil"
    #: Its estimate is in the outcome's units, averaged over pupils.
    effect_scale: ClassVar[str] = "outcome"

    outcome: str = "outcome"
    treatment: str = "exposed"
    arm: str = "treated"
    time: str = "year"
    groups: Sequence[str] = ("school",)
    period_effects: bool = True
    covariates: Sequence[str] = field(default=())
    method: Literal["reml", "ml"] | None = None
    inference: ModelBased = field(default=ModelBased())
    weights: str | None = None
    alpha: float = 0.05
    family: Literal["gaussian", "binomial"] = "gaussian"

    def __post_init__(self):
        for name in ("groups", "covariates"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        if self.time in self.groups:
            raise InvalidArgumentError(
                f"the time column {format_value(self.time)} cannot also be a group; remove it "
                "from groups."
            )
        check_bool(self.period_effects, "period_effects")
        check_choice(self.family, "family", FAMILIES)
        if self.family == "binomial" and self.weights is not None:
            raise InvalidArgumentError(
                f"weights={self.weights!r} is not available with family='binomial' (a logistic "
                "mixed model has no prior weights here); drop it, or analyse the 0/1 outcome "
                "with the default linear model (differences in proportions), which takes them"
            )
        # Validate the options the underlying model takes, once, here (and take its method:
        # REML for the linear model, ML for the logistic one, unless given).
        checked = MultilevelModel(
            groups=self.model_groups,
            method=self.method,
            family=self.family,
            inference=self._model_inference(check_inference(type(self), self.inference)),
            alpha=self.alpha,
        )
        object.__setattr__(self, "method", checked.method)

    def _model_inference(self, inference: ModelBased) -> ModelBased:
        """The logistic model's intervals are Wald z (as glmer): the default Satterthwaite
        is read as that; the other small-sample methods are refused by the model."""
        if self.family == "binomial" and inference.df == "satterthwaite":
            return ModelBased("normal")
        return inference

    @property
    def df_method(self) -> str:
        """The degrees-of-freedom method of ``inference`` (read-only; the option is deprecated)."""
        return self.inference.df

    @property
    def model_groups(self) -> tuple[str, ...]:
        """The nested groups of the model: the time column joins after the outermost group."""
        if not self.period_effects:
            return tuple(self.groups)
        return (self.groups[0], self.time, *self.groups[1:])

    def describe(self) -> str:
        """One sentence for a report's design section."""
        levels = [
            f"{self.groups[0]}-{self.time}" if g == self.time else g for g in self.model_groups
        ]
        if self.family == "binomial":
            return (
                "Multilevel difference-in-differences on the log-odds scale: a logistic mixed "
                f"model (maximum likelihood, Laplace) with random intercepts for "
                f"{' within '.join(reversed(levels))}, a treated-group indicator and year "
                "fixed effects; Wald z intervals; the exposure's odds ratio and its "
                "population-averaged difference in percentage points over the exposed records "
                "(delta method)"
            )
        return (
            "Multilevel difference-in-differences: random intercepts for "
            f"{' within '.join(reversed(levels))}, a treated-group indicator and year "
            f"fixed effects; {self.inference.describe()}"
        )

    def fit(self, data: pd.DataFrame) -> MultilevelDiDResult:
        """Fit on pupil records (``data`` is not modified)."""
        needed = [self.outcome, self.treatment, self.arm, self.time, *self.groups, *self.covariates]
        if self.weights is not None:
            needed.append(self.weights)
        missing = [c for c in dict.fromkeys(needed) if c not in data.columns]
        if missing:
            raise MissingColumnError(
                f"columns {missing} are not in the data; it has {list(map(str, data.columns))}"
            )
        frame, year_terms = _with_year_dummies(data[list(dict.fromkeys(needed))], self.time)
        frame = frame.assign(
            **{
                self.treatment: frame[self.treatment].astype(float),
                self.arm: frame[self.arm].astype(float),
            }
        )
        exposed = frame[self.treatment].to_numpy()
        if not (exposed > 0).any() or (exposed > 0).all():
            raise DesignError(
                f"column {self.treatment!r} must mark some exposed and some unexposed records"
            )
        check_group_order(data, self.groups)
        check_absorbing(
            data,
            treatment=self.treatment,
            unit=self.groups,
            time=self.time,
            first_treated=FIRST_TREATED,
            finer_exposure=True,
        )
        outside = (exposed > 0) & (frame[self.arm].to_numpy() == 0)
        if outside.any():
            raise InconsistentTreatmentError(
                f"column {self.treatment!r} (the exposure) is set in rows where column "
                f"{self.arm!r} (the treated arm) is 0, at {format_rows(frame.index[outside])}: "
                f"exposed records must belong to the treated arm. Fix {self.arm!r} (1 for every "
                f"record of a unit that is ever exposed) or {self.treatment!r}."
            )
        covariates = (self.arm, *year_terms, self.treatment, *self.covariates)
        model = MultilevelModel(
            outcome=self.outcome,
            covariates=covariates,
            groups=self.model_groups,
            check_nesting=not self.period_effects,
            method=self.method,
            family=self.family,
            inference=self._model_inference(self.inference),
            weights=self.weights,
            alpha=self.alpha,
        )
        fit = model.fit(frame)
        if self.family == "binomial":
            return self._logistic_result(fit, frame, covariates, year_terms)
        comparison = frame[frame[self.arm] == 0]
        unconditional = MultilevelModel(
            outcome=self.outcome,
            covariates=tuple(t for t in year_terms if comparison[t].nunique() > 1),
            groups=self.model_groups,
            check_nesting=not self.period_effects,
            method=self.method,
            inference=ModelBased("normal"),
            weights=self.weights,
        ).fit(comparison)
        total = float(unconditional.variance_components[[*self.model_groups, "Residual"]].sum())
        reported = [self.treatment, *self.covariates]
        notes = list(fit.notes) if self.weights is not None else []
        used = _used_rows(frame, [self.outcome, *covariates, *self.model_groups, self.weights])
        w = None if self.weights is None else used[self.weights].to_numpy(dtype=float)
        scale = outcome_scale(
            used[self.outcome].to_numpy(dtype=float),
            w,
            [("the estimate", used[self.treatment].to_numpy() > 0, fit.params[self.treatment])],
            notes,
        )
        return MultilevelDiDResult(
            term=self.treatment,
            params=fit.params[reported],
            std_errors=fit.std_errors[reported],
            df_terms=fit.df[reported],
            model=fit,
            unconditional=unconditional,
            effect_size_sd=float(np.sqrt(total)),
            alpha=self.alpha,
            notes=tuple(notes),
            years_without_data=years_without_data(frame[self.time].dropna().unique()),
            **scale,
        )

    def _logistic_result(self, fit, frame, covariates, year_terms) -> MultilevelDiDResult:
        """``family="binomial"``: the exposure's log odds ratio, its odds ratio, the marginal
        percentage points over the exposed records and the Cox effect size."""
        names = list(fit.params.index)
        used = _used_rows(frame, [self.outcome, *covariates, *self.model_groups])
        exposed = used[used[self.treatment] > 0]
        design = pd.DataFrame(
            {n: 1.0 if n == names[0] else exposed[n].to_numpy(dtype=float) for n in names},
            index=exposed.index,
        )
        variance = float(fit.variance_components[list(self.model_groups)].sum())
        effects, marginal = bin_.binary_effects(
            fit.params,
            fit.cov_params,
            design,
            self.treatment,
            variance=variance,
            alpha=self.alpha,
        )
        est, se = float(fit.params[self.treatment]), float(fit.std_errors[self.treatment])
        reported = [self.treatment, *self.covariates]
        return MultilevelDiDResult(
            term=self.treatment,
            params=fit.params[reported],
            std_errors=fit.std_errors[reported],
            df_terms=fit.df[reported],
            model=fit,
            unconditional=None,
            effect_size_sd=float("nan"),
            alpha=self.alpha,
            notes=fit.notes,
            years_without_data=years_without_data(frame[self.time].dropna().unique()),
            family="binomial",
            outcome_kind="pass_fail",
            pass_value=1.0,
            treated_proportion=float(exposed[self.outcome].mean()),
            binary_effects=effects,
            marginal=marginal,
            effect_sizes=pd.DataFrame(bin_.odds_ratio_rows(est, se, self.alpha, marginal)),
        )


def _used_rows(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """The rows a fit uses: complete in its columns (the model drops the others)."""
    columns = list(dict.fromkeys(c for c in columns if c is not None))
    return frame.loc[frame[columns].notna().all(axis=1).to_numpy()]


def _with_year_dummies(frame: pd.DataFrame, time: str) -> tuple[pd.DataFrame, tuple[str, ...]]:
    years = sorted(frame[time].dropna().unique())
    names = tuple(f"year_{int(y)}" for y in years[1:])
    dummies = {
        name: (frame[time] == y).astype(float) for name, y in zip(names, years[1:], strict=True)
    }
    return frame.assign(**dummies), names


@dataclass(frozen=True, eq=False)
class MultilevelDiDResult(EstimateResult):
    """Result of :class:`MultilevelDiD`, with the faces of :class:`~cpdimpact.did.DiDResult`.

    Attributes
    ----------
    estimate, std_error, df
        The DiD estimate (exposure coefficient) in outcome points, its model-based standard
        error and its degrees of freedom.
    model
        The full :class:`MultilevelResult` (year effects, variances, BLUPs).
    unconditional
        The unconditional model of the comparison arm behind ``effect_size_sd`` (``None`` with
        ``family="binomial"``).
    effect_size_sd
        Square root of that model's total (between + within) variance (``nan`` with
        ``family="binomial"``; for a pass/fail outcome under the linear model it is kept, but
        an effect size of a pass/fail outcome is not this SD's: see ``outcome_kind``).
    years_without_data
        Whole years inside the span of the data with no record at all (``(2020, 2021)`` for
        KS2 results over 2017-2024): they have no year effect and are named in the summary.
    family
        ``"gaussian"`` or ``"binomial"``: with a logistic model the estimate and ``params`` are
        log odds ratios (Wald z intervals, ``df`` infinite).
    outcome_kind, pass_value, treated_proportion
        As :class:`~cpdimpact.did.DiDResult`: ``"pass_fail"`` for a pass/fail outcome (0/1, or
        0/100 under the linear model, whose estimate is then a difference in proportions,
        :attr:`estimate_units`), the value coding a pass, and the proportion passing among the
        exposed records.
    binary_effects, marginal, effect_sizes
        ``family="binomial"``: rows ``log_odds_ratio``, ``odds_ratio`` and
        ``percentage_points`` (the exposure's effect on the exposed records' probability of
        passing, population-averaged over the random intercepts, delta-method interval), the
        :class:`~cpdimpact.effects.MarginalDifference` behind it, and the Cox (headline) and
        Hasselblad-Hedges effect sizes of the log odds ratio. ``None`` otherwise.
    """

    term: str
    params: pd.Series
    std_errors: pd.Series
    df_terms: pd.Series
    model: MultilevelResult
    unconditional: MultilevelResult | None
    effect_size_sd: float
    alpha: float
    notes: tuple[str, ...] = ()
    years_without_data: tuple[int, ...] = ()
    family: str = "gaussian"
    outcome_kind: str = "score"
    pass_value: float | None = None
    treated_proportion: float | None = None
    binary_effects: pd.DataFrame | None = None
    marginal: object = field(default=None, repr=False)
    effect_sizes: pd.DataFrame | None = None

    effect_size_sd_source = (
        "total (between + within) variance of an unconditional multilevel model of the "
        "comparison arm"
    )

    def _headline_term(self) -> str:
        """The headline is the treatment (exposure) coefficient, :attr:`term`."""
        return self.term

    @property
    def estimate_units(self) -> str:
        """What the estimate measures: the outcome's units, a difference in proportions (a
        linear probability model on a pass/fail outcome) or a log odds ratio."""
        if self.family == "binomial":
            return "log odds ratio (exposed over not, conditional on the random effects)"
        return units_text(self.outcome_kind, self.pass_value, self.model.model.outcome)

    @property
    def odds_ratio(self) -> pd.Series | None:
        """``family="binomial"``: the odds ratio row (``estimate, ci_lower, ci_upper``)."""
        return bin_.binary_row(self.binary_effects, "odds_ratio")

    @property
    def percentage_points(self) -> pd.Series | None:
        """The effect in percentage points with its interval: the logistic model's marginal
        difference over the exposed records, or the linear probability estimate x 100;
        ``None`` for a score."""
        return bin_.percentage_points(
            self, lambda: self.to_frame().set_index("term").loc[self.term]
        )

    @property
    def df(self) -> float:
        return float(self.df_terms[self.term])

    @property
    def cluster(self) -> str:
        return self.model.model.groups[0]

    @property
    def n_clusters(self) -> int:
        return int(self.model.n_groups.iloc[0])

    @property
    def n_obs(self) -> int:
        return self.model.n_obs

    @property
    def cov_type(self) -> str:
        df = self.model.model.df_method.replace("_", "-")
        return f"model-based ({self.model.method.upper()}), {df} degrees of freedom"

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """Tidy rows for the exposure and covariate terms (each with its own df)."""
        return tidy_frame(self.params, self.std_errors, df=self.df_terms, alpha=alpha)

    def _title(self) -> str:
        return "Multilevel difference-in-differences"

    def _facts(self) -> tuple[tuple[str, str], ...]:
        vc = self.model.variance_components
        if self.family == "binomial":
            lead = (
                ("log odds ratio", f"{self.estimate:.4f} (SE {self.std_error:.4f}, Wald z)"),
                ("standard errors", self.cov_type),
                *self._logistic_facts(),
                (
                    "variance components (latent scale)",
                    "; ".join(f"{k} {v:.4g}" for k, v in vc.items()),
                ),
            )
        else:
            lead = (
                ("estimate", f"{self.estimate:.4f} (SE {self.std_error:.4f}, df {self.df:.1f})"),
                *outcome_scale_facts(self),
                ("standard errors", self.cov_type),
                ("variance components", "; ".join(f"{k} {v:.4g}" for k, v in vc.items())),
                ("effect-size SD", f"{self.effect_size_sd:.4f}"),
            )
        return (
            lead
            + (("observations", str(self.n_obs)),)
            + (
                (
                    (
                        "years with no data",
                        ", ".join(map(str, self.years_without_data))
                        + " (no year effect; the observed years are the periods)",
                    ),
                )
                if self.years_without_data
                else ()
            )
        )

    def _logistic_facts(self) -> tuple[tuple[str, str], ...]:
        level = f"{1 - self.alpha:.0%}"
        odds, pp, m = self.odds_ratio, self.percentage_points, self.marginal
        head = self.effect_sizes.loc[self.effect_sizes["headline"]].iloc[0]
        return (
            (
                "odds ratio",
                f"{odds['estimate']:.3f} [{odds['ci_lower']:.3f}, {odds['ci_upper']:.3f}] "
                f"({level} CI, Wald)",
            ),
            (
                "percentage points",
                f"{pp['estimate']:+.2f} [{pp['ci_lower']:+.2f}, {pp['ci_upper']:+.2f}] "
                f"({level} CI, delta method): {100 * m.p_treated:.1f}% of the exposed records "
                f"passing against {100 * m.p_untreated:.1f}% without the exposure, "
                "population-averaged over the random intercepts",
            ),
            (
                "effect size",
                f"{head['estimate']:.2f} [{head['ci_lower']:.2f}, {head['ci_upper']:.2f}] (Cox: "
                "ln OR / 1.65); no months of progress",
            ),
        )

    def summary(self):
        """A printable summary: the facts, the tidy table and, for a logistic model, why no
        months of progress are given."""
        base = super().summary()
        if self.family != "binomial":
            return base
        return type(base)(
            title=base.title,
            facts=base.facts,
            table=base.table,
            notes=(bin_.BINARY_NOTE, bin_.NO_MONTHS, *base.notes),
        )

    def plot(self, *, ax=None):
        """Caterpillar plot of the outermost group's random intercepts."""
        return self.model.plot(ax=ax)
