"""What every estimator of cpdimpact promises: the protocol, the option names and inference.

An estimator is a frozen, keyword-only dataclass (a *spec*) whose options are column names and
settings, with a ``fit(data)`` that returns a result and never modifies ``data``. What the
evaluation, planning and the report may rely on is :class:`Estimator`:

* ``data_level`` (a class variable): the rows it fits, one of :data:`DATA_LEVELS`;
* ``effect_scale`` (a class variable): what its estimate measures, one of :data:`EFFECT_SCALES`;
* ``fit(data)``: the result;
* ``describe()``: the estimator and its inference in plain words, for the report (``"; "``
  between the two).

Options are spelled the same in every spec (:data:`GLOSSARY`). Spellings used before the
glossary are accepted for one release, with a
:class:`~cpdimpact.errors.DeprecatedOptionWarning` naming the old and the new option
(:func:`deprecated_options`).

Inference is an option of its own, ``inference=``, taking one of the typed choices
:class:`ClusterRobust`, :class:`WildBootstrap`, :class:`MultiplierBootstrap` or
:class:`ModelBased`. Which of them an estimator accepts is written once, in
:data:`INFERENCE`, and :func:`check_inference` refuses any other with an error naming the
estimator and its choices (as linearmodels keeps one covariance registry per estimator).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import numpy as np

from cpdimpact._validate import check_bool, check_choice, check_positive_int, check_seed
from cpdimpact.errors import (
    ArgumentTypeError,
    DeprecatedOptionWarning,
    InvalidArgumentError,
    format_value,
)

__all__ = [
    "DATA_LEVELS",
    "EFFECT_SCALES",
    "GLOSSARY",
    "INFERENCE",
    "INFERENCE_OPTIONS",
    "adjustment_in_words",
    "ClusterRobust",
    "Estimator",
    "GlossaryEntry",
    "Inference",
    "InferenceFamily",
    "ModelBased",
    "MultiplierBootstrap",
    "WildBootstrap",
    "check_inference",
    "deprecated_options",
    "fitted_rows",
    "glossary_table",
    "with_seed",
]

#: The rows an estimator fits.
DATA_LEVELS: Mapping[str, str] = {
    "pupil": "pupil records, one row per pupil and year",
    "unit_year": "one row per unit (school, teacher or area) and year",
    "any": "either: pupil records, or unit-by-year means with their numbers of pupils as weights",
    "teacher": "one row per teacher's spell in post: how long it lasted and whether it ended",
}

#: What an estimate measures, so that the evaluation knows how to standardise it.
EFFECT_SCALES: Mapping[str, str] = {
    "outcome": "a difference in the outcome's own units, averaged over pupils (or over rows "
    "weighted by their pupils); divided by the pupil-level standard deviation it is a "
    "standardised effect size (Hedges' g)",
    "area_mean": "a difference in area-by-year mean outcomes, areas weighted by the method "
    "rather than by their pupils; divided by the pupil-level standard deviation it is only "
    "an approximate standardised effect size",
    "retention": "a difference in the share of teachers still in post at a time (a difference "
    "in proportions, x100 = percentage points); not a standardised effect size",
    "log_hazard_ratio": "a log ratio of the hazards of leaving (Cox), or of the odds of leaving "
    "in a period (discrete time); its exponential is the ratio, 1 meaning no effect; not a "
    "standardised effect size",
}


@runtime_checkable
class Estimator(Protocol):
    """An estimator spec: what the evaluation, planning and the report rely on.

    ``isinstance(spec, Estimator)`` checks that the four members are there (a runtime
    protocol checks names, not types). ``tests/test_estimator_contract.py`` checks every
    public estimator of the package against it.
    """

    #: The rows it fits, a key of :data:`DATA_LEVELS`.
    data_level: ClassVar[str]
    #: What its estimate measures, a key of :data:`EFFECT_SCALES`.
    effect_scale: ClassVar[str]

    def fit(self, data: Any) -> Any:
        """Estimate on ``data`` (a DataFrame, never modified); returns the result."""
        ...

    def describe(self) -> str:
        """The estimator and its inference in plain words, for a report (no code).

        One sentence of two clauses joined by ``"; "``: the estimator, then its inference,
        so that a report may use the first alone (and state the fitted inference itself).
        """
        ...


def adjustment_in_words(covariates: Any = (), weights: str | None = None) -> str:
    """``", adjusting for prior, fsm, weighted by n_pupils"``: a spec's covariates and weights
    as the words a :meth:`Estimator.describe` appends (empty when it has neither)."""
    adjusted = f", adjusting for {', '.join(covariates)}" if covariates else ""
    return adjusted + (f", weighted by {weights}" if weights else "")


def fitted_rows(estimator: Estimator, level: str) -> str:
    """The rows ``estimator`` is fitted on by an evaluation working at ``level``.

    Its ``data_level``, or ``level`` when that is ``"any"``. The one per-instance exception
    lives here: a :class:`~cpdimpact.did.StaggeredDiD` with ``panel=False`` treats the rows
    as repeated cross-sections, so it takes any rows although the class (a panel by default)
    needs one row per unit and year.
    """
    needs = estimator.data_level
    if getattr(estimator, "panel", True) is False:
        needs = "any"
    return level if needs == "any" else needs


# ------------------------------------------------------------------------------ glossary
class GlossaryEntry(NamedTuple):
    """One option name of the glossary: what it means and the spellings it replaced."""

    name: str
    meaning: str
    old: tuple[str, ...] = ()


#: The option names every spec uses, their meaning, and the spellings they replaced (accepted,
#: with a :class:`~cpdimpact.errors.DeprecatedOptionWarning`, for one release). The last
#: entries are names kept on purpose because they mean something else.
GLOSSARY: tuple[GlossaryEntry, ...] = (
    GlossaryEntry("outcome", "column of the outcome (a test score), in the units estimated"),
    GlossaryEntry(
        "unit",
        "column of the unit followed over time: the school, a school/teacher pair or an area",
        ("area",),
    ),
    GlossaryEntry("time", "column of the period (the test year)", ("year",)),
    GlossaryEntry(
        "treatment",
        "column that is 1 in the rows of a treated unit from its first treated period on (or, "
        "in a trial, 1 in the intervention arm), 0 otherwise",
        ("treated",),
    ),
    GlossaryEntry("first_treated", "column of each unit's first treated period (0: never treated)"),
    GlossaryEntry(
        "cluster", "column of the clusters of the standard errors (the level of assignment)"
    ),
    GlossaryEntry("weights", "column of analytic or sampling weights (None: unweighted)"),
    GlossaryEntry("covariates", "columns of the covariates adjusted for"),
    GlossaryEntry(
        "control_group",
        "which units serve as comparisons: the never treated, the not yet treated or (Sun & "
        "Abraham) the cohort treated last",
        ("control",),
    ),
    GlossaryEntry(
        "n_bootstrap",
        "number of bootstrap draws (0: none); inside an inference option, its number of draws",
    ),
    GlossaryEntry(
        "n_permutations",
        "number of random re-assignments of a permutation or placebo test",
        ("replications",),
    ),
    GlossaryEntry(
        "seed",
        "seed of the random draws: None, an int >= 0, a numpy SeedSequence or Generator",
    ),
    GlossaryEntry("alpha", "1 minus the confidence level of the intervals (0.05: 95%)"),
    GlossaryEntry(
        "inference",
        "how standard errors, intervals and p-values are computed: ClusterRobust, "
        "WildBootstrap, MultiplierBootstrap or ModelBased, as the estimator accepts",
        ("cov_type", "df_method", "ci_method"),
    ),
    GlossaryEntry(
        "duration",
        "column of the length of each spell (a teacher's years in post), positive",
    ),
    GlossaryEntry(
        "event",
        "column that is 1 when the spell ended in the event (the teacher left), 0 when it was "
        "still going when last seen (censored)",
    ),
    GlossaryEntry(
        "horizons", "times at which retention (the share still in post) is compared, in years"
    ),
    GlossaryEntry("ties", "how a Cox model treats spells ending at the same time: efron, breslow"),
    GlossaryEntry(
        "conf_type", "scale of a survival curve's intervals: log, log-log or plain (as R survfit)"
    ),
    GlossaryEntry(
        "pool_from",
        "in a discrete-time hazard model, the period from which later periods share one "
        "baseline hazard (None: one per period)",
    ),
    GlossaryEntry(
        "groups",
        "kept: the nesting hierarchy of a multilevel model, outermost first (school, then "
        "class), not one unit followed over time",
    ),
    GlossaryEntry(
        "arm",
        "kept: column marking the units of the treated arm in every period (before and after "
        "the start), beside treatment, which is 1 only once they are treated",
    ),
    GlossaryEntry(
        "method",
        "kept: the estimation method (a doubly robust or weighting estimator, REML or ML, "
        "synthetic DiD or synthetic control), not the inference",
    ),
)


def glossary_table() -> str:
    """The glossary as a Markdown table (``docs/architecture.md`` shows it; a test compares)."""
    lines = ["| option | meaning | replaces |", "|---|---|---|"]
    for entry in GLOSSARY:
        old = ", ".join(f"`{o}`" for o in entry.old)
        lines.append(f"| `{entry.name}` | {entry.meaning} | {old} |")
    return "\n".join(lines)


def deprecated_options(**aliases: str | tuple[str, Callable[[Any], Any]]):
    """Class decorator: accept the old spellings of a spec's options for one release.

    ``aliases`` maps an old keyword to its new name, or to ``(new name, convert)`` when the
    value changes form (``cov_type="CR2"`` becomes ``inference=ClusterRobust("CR2")``). The
    old keyword still works, with a :class:`~cpdimpact.errors.DeprecatedOptionWarning` naming
    the old and the new option; giving both is an
    :class:`~cpdimpact.errors.InvalidArgumentError`. Only the construction changes: the fields
    (and :func:`dataclasses.replace`) use the new names. Apply it to every dataclass that
    takes the old keyword (a subclass gets an ``__init__`` of its own).
    """
    table = {old: (v, None) if isinstance(v, str) else v for old, v in aliases.items()}

    def decorate(cls):
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            for old, (new, convert) in table.items():
                if old not in kwargs:
                    continue
                value = kwargs.pop(old)
                if new in kwargs:
                    raise InvalidArgumentError(
                        f"{cls.__name__} got both {old}= (the old spelling) and {new}=; give "
                        f"only {new}=."
                    )
                shown = convert(value) if convert else value
                warnings.warn(
                    f"{cls.__name__}({old}=...) is deprecated and will be removed in the next "
                    f"release; write {cls.__name__}({new}={_shown(shown)}).",
                    DeprecatedOptionWarning,
                    stacklevel=2,
                )
                kwargs[new] = shown
            init(self, *args, **kwargs)

        cls.__init__ = __init__
        for old, (new, convert) in table.items():
            if convert is None and not hasattr(cls, old):  # reading the old name keeps working
                setattr(cls, old, property(lambda self, new=new: getattr(self, new)))
        cls.deprecated_options = {
            **getattr(cls, "deprecated_options", {}),
            **{old: new for old, (new, _) in table.items()},
        }
        return cls

    return decorate


def _shown(value: object) -> str:
    return repr(value) if is_dataclass(value) else format_value(value)


# ----------------------------------------------------------------------------- inference
class Inference:
    """Base of the typed inference options (``inference=`` of an estimator)."""

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "ClusterRobust", "kind": "CR2"}``: the option's class and fields, as a spec
        file writes it (``inference = { type = "ClusterRobust", kind = "CR2" }``)."""
        return {
            "type": type(self).__name__,
            **{f.name: getattr(self, f.name) for f in fields(self)},
        }

    def describe(self, cluster: str = "cluster") -> str:  # pragma: no cover - overridden
        """The inference in plain words (``cluster``: what the clusters are, in words)."""
        raise NotImplementedError


#: Choices of :class:`ClusterRobust`.
CLUSTER_KINDS = ("CR1", "CR2", "auto")


@dataclass(frozen=True)
class ClusterRobust(Inference):
    """Cluster-robust standard errors.

    Parameters
    ----------
    kind : {"CR1", "CR2", "auto"}
        ``"CR1"``: the sandwich with the ``G/(G-1)*(N-1)/(N-K)`` factor and t on ``G-1``
        degrees of freedom. ``"CR2"``: the bias-reduced linearisation with Satterthwaite
        degrees of freedom (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018), for few
        clusters. ``"auto"``: CR2 when fewer than 100 clusters hold treated rows (or hold
        none) and units nest in clusters, CR1 otherwise.
    """

    kind: str = "CR1"

    def __post_init__(self) -> None:
        check_choice(self.kind, "ClusterRobust kind", CLUSTER_KINDS)

    def describe(self, cluster: str = "cluster") -> str:
        """The inference in plain words (``cluster``: what the clusters are, in words)."""
        return {
            "CR1": f"standard errors clustered by {cluster}, with the usual small-sample "
            "correction and t tests on the number of clusters minus one degrees of freedom",
            "CR2": f"standard errors clustered by {cluster} with the bias-reduced correction "
            "for few clusters (CR2) and Satterthwaite degrees of freedom",
            "auto": f"standard errors clustered by {cluster}, with the bias-reduced correction "
            "for few clusters (CR2) when fewer than 100 clusters are treated or untreated",
        }[self.kind]


def from_cov_type(cov_type: object) -> ClusterRobust:
    """The ``inference`` that the deprecated ``cov_type=`` option means (checked under its
    old name, so a bad value names ``cov_type``)."""
    return ClusterRobust(check_choice(cov_type, "cov_type", CLUSTER_KINDS))


def from_df_method(name: str) -> Callable[[object], ModelBased]:
    """Converter of a deprecated df option (``df_method=``, ``ci_method=``) to ``inference``."""

    def convert(value: object) -> ModelBased:
        return ModelBased(check_choice(value, name, tuple(DF_METHODS)))

    return convert


#: Auxiliary weight distributions of the wild cluster bootstrap.
WILD_WEIGHTS = ("webb", "rademacher")


@dataclass(frozen=True, kw_only=True)
class WildBootstrap(Inference):
    """Wild cluster bootstrap-t of the treatment coefficient (for few clusters).

    Parameters
    ----------
    n_bootstrap : int
        Draws (all ``2**G`` sign vectors are enumerated instead when that is fewer with
        Rademacher weights).
    weights : {"webb", "rademacher"}
        Auxiliary weight distribution: Webb's six-point (default) or Rademacher signs.
    restricted : bool
        ``True`` (default): the null is imposed on the bootstrap data (WCR); ``False``: WCU.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seed of the draws (``None``: fresh entropy, recorded in the result).

    Notes
    -----
    The point estimate and standard error stay those of cluster-robust CR1; the p-value and
    the interval (inverting the bootstrap test) are the bootstrap's (Cameron, Gelbach & Miller
    2008; MacKinnon & Webb 2018; Webb 2023). See ``docs/wild.md``.
    """

    n_bootstrap: int = 999
    weights: str = "webb"
    restricted: bool = True
    seed: int | np.random.SeedSequence | np.random.Generator | None = None

    def __post_init__(self) -> None:
        check_positive_int(self.n_bootstrap, "WildBootstrap n_bootstrap")
        check_choice(self.weights, "WildBootstrap weights", WILD_WEIGHTS)
        check_bool(self.restricted, "WildBootstrap restricted")
        check_seed(self.seed, "WildBootstrap seed")

    def describe(self, cluster: str = "cluster") -> str:
        """The inference in plain words (``cluster``: what the clusters are, in words)."""
        null = "with the null hypothesis imposed" if self.restricted else "unrestricted"
        return (
            f"p-value and interval from the wild cluster bootstrap by {cluster} ({null}, "
            f"{self.n_bootstrap} draws of {self.weights.capitalize()} weights)"
        )


@dataclass(frozen=True, kw_only=True)
class MultiplierBootstrap(Inference):
    """Multiplier bootstrap of influence functions (uniform bands), or analytic errors.

    Parameters
    ----------
    n_bootstrap : int
        Draws; ``0`` gives analytic standard errors from the influence functions.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seed of the draws.
    """

    n_bootstrap: int = 999
    seed: int | np.random.SeedSequence | np.random.Generator | None = None

    def __post_init__(self) -> None:
        check_positive_int(self.n_bootstrap, "MultiplierBootstrap n_bootstrap", minimum=0)
        check_seed(self.seed, "MultiplierBootstrap seed")

    def describe(self, cluster: str = "cluster") -> str:
        """The inference in plain words (``cluster``: what the clusters are, in words)."""
        if not self.n_bootstrap:
            return "analytic standard errors from the influence functions"
        return (
            f"standard errors and simultaneous bands from a multiplier bootstrap of the "
            f"influence functions ({self.n_bootstrap} draws)"
        )


#: Degrees-of-freedom (and interval) methods of mixed models, in words.
DF_METHODS: Mapping[str, str] = {
    "satterthwaite": "Satterthwaite degrees of freedom",
    "between_within": "between-within degrees of freedom",
    "normal": "normal intervals (no degrees-of-freedom correction)",
    "profile": "profile-likelihood intervals",
}


@dataclass(frozen=True)
class ModelBased(Inference):
    """Model-based standard errors of a mixed model, with a degrees-of-freedom method.

    Parameters
    ----------
    df : {"satterthwaite", "between_within", "normal", "profile"}
        ``"satterthwaite"`` (default, lmerTest), ``"between_within"`` (SAS/nlme), ``"normal"``
        (z), or for the cluster and multisite trials ``"profile"`` (profile-likelihood
        intervals of eefAnalytics).
    """

    df: str = "satterthwaite"

    def __post_init__(self) -> None:
        check_choice(self.df, "ModelBased df", tuple(DF_METHODS))

    def describe(self, cluster: str = "cluster") -> str:
        """The inference in plain words (``cluster`` is not used: the model has no clusters)."""
        return f"model-based standard errors with {DF_METHODS[self.df]}"


#: Every typed inference option (a spec file names one by its class name).
INFERENCE_OPTIONS: tuple[type[Inference], ...] = (
    ClusterRobust,
    WildBootstrap,
    MultiplierBootstrap,
    ModelBased,
)


class InferenceFamily(NamedTuple):
    """What one family of estimators accepts as ``inference=`` (its registry entry)."""

    name: str
    options: tuple[type[Inference], ...]
    #: For :class:`ModelBased`, the ``df`` choices accepted (empty: any).
    df: tuple[str, ...] = ()
    #: How inference is set when it is not an ``inference=`` option (the inventory shows it).
    fixed: str = ""


_TWFE = InferenceFamily("two-way fixed effects", (ClusterRobust, WildBootstrap))
_MIXED = InferenceFamily(
    "mixed model", (ModelBased,), df=("satterthwaite", "between_within", "normal")
)

#: The registry: each public estimator's inference family, by class name (``fixed`` says what
#: sets the inference where it is not, or not only, the ``inference=`` option).
INFERENCE: Mapping[str, InferenceFamily] = {
    "DiD": _TWFE,
    "EventStudy": InferenceFamily("event study", (ClusterRobust,)),
    "StaggeredDiD": InferenceFamily(
        "group-time effects",
        (MultiplierBootstrap,),
        fixed="set by n_bootstrap and seed (0 draws: analytic errors)",
    ),
    "SunAbraham": InferenceFamily(
        "interaction-weighted event study", (), fixed="cluster-robust CR1 by cluster"
    ),
    "ImputationDiD": InferenceFamily(
        "imputation", (), fixed="conservative cluster-robust errors of Borusyak et al."
    ),
    "MultilevelModel": _MIXED,
    "MultilevelDiD": _MIXED,
    "SimpleTrial": InferenceFamily(
        "pupil-randomised trial",
        (),
        fixed="ordinary least squares; also n_bootstrap, n_permutations",
    ),
    "ClusterTrial": InferenceFamily(
        "cluster trial",
        (ModelBased,),
        df=tuple(DF_METHODS),
        fixed="also n_bootstrap, n_permutations",
    ),
    "MultisiteTrial": InferenceFamily(
        "multisite trial",
        (ModelBased,),
        df=tuple(DF_METHODS),
        fixed="also n_bootstrap, n_permutations",
    ),
    "SyntheticControl": InferenceFamily(
        "synthetic control", (), fixed="placebo-in-space ranks (placebo)"
    ),
    "SyntheticDiD": InferenceFamily(
        "synthetic DiD", (), fixed="placebo standard error (placebo, n_permutations, seed)"
    ),
    "KaplanMeier": InferenceFamily(
        "survival curves",
        (),
        fixed="Greenwood; infinitesimal jackknife by cluster when given (R survfit)",
    ),
    "CoxModel": InferenceFamily(
        "proportional hazards",
        (),
        fixed="model-based; robust sandwich by cluster when given (R coxph)",
    ),
    "DiscreteTimeHazard": InferenceFamily(
        "discrete-time hazard",
        (),
        fixed="model-based; cluster-robust CR1 by cluster when given",
    ),
}


def check_inference(estimator: type | str, inference: object) -> Inference:
    """``inference`` if ``estimator`` (a class, or a class name of :data:`INFERENCE`) accepts it.

    A subclass of a registered estimator has its family.

    Raises
    ------
    cpdimpact.errors.InvalidArgumentError
        The option is not one the estimator accepts (the message names the estimator and its
        choices); :class:`~cpdimpact.errors.ArgumentTypeError` when it is not an inference
        option at all (a string such as ``"CR2"``).
    """
    if isinstance(estimator, str):
        family = INFERENCE[estimator]
    else:
        family = next(INFERENCE[c.__name__] for c in estimator.__mro__ if c.__name__ in INFERENCE)
        estimator = estimator.__name__
    allowed = ", ".join(t.__name__ for t in family.options) or "none"
    if not isinstance(inference, Inference):
        raise ArgumentTypeError(
            f"{estimator}(inference=...) takes an inference option ({allowed}), got "
            f"{format_value(inference)}; for example inference=ClusterRobust('CR2') from "
            "cpdimpact.estimator."
        )
    if not isinstance(inference, family.options):
        raise InvalidArgumentError(
            f"{estimator} does not take inference={_shown(inference)}; its choices are "
            f"{allowed} (the {family.name} family)."
        )
    if isinstance(inference, ModelBased) and family.df and inference.df not in family.df:
        raise InvalidArgumentError(
            f"{estimator} does not take inference=ModelBased(df={inference.df!r}); its df "
            f"methods are {', '.join(map(repr, family.df))}."
        )
    return inference


def with_seed(spec: Any, seed: object, *, keep_own: bool = True) -> Any:
    """``spec`` with ``seed`` where it draws random numbers.

    The seed lives in the spec's ``seed`` option, or in its ``inference`` option when that
    draws (a :class:`WildBootstrap`). A spec that draws nothing is returned as it is; so is one
    whose seed is already set, unless ``keep_own=False`` (a diagnosis replaces every seed with
    one from its own stream). This is how an evaluation or a diagnosis hands its seed to a
    stage.
    """
    if seed is None or not is_dataclass(spec):
        return spec
    names = {f.name for f in fields(spec)}
    if "seed" in names:
        return spec if keep_own and spec.seed is not None else replace(spec, seed=seed)
    inference = getattr(spec, "inference", None)
    if "inference" in names and is_dataclass(inference):
        if "seed" in {f.name for f in fields(inference)}:
            if not (keep_own and inference.seed is not None):
                return replace(spec, inference=replace(inference, seed=seed))
    return spec
