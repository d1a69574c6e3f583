"""The multilevel model specification and its fit."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType, SimpleNamespace
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import optimize

from .._guards import (
    NOISE_ULPS,
    RTOL,
    reject_infinite,
    require_binary,
    require_proportions,
    require_unexplained,
    require_variation,
    require_within_variation,
)
from .._validate import check_alpha, check_bool, check_choice, check_positive_int
from .._weights import constant, nonzero_weight_rows
from ..errors import (
    DataError,
    EstimationError,
    InvalidArgumentError,
    InvalidValueError,
    MissingColumnError,
    OutcomeFamilyError,
    SeparationError,
    SmallSampleWarning,
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
from . import _engine, _glmm
from ._blas import single_threaded_blas
from ._inference import between_within_df, satterthwaite_df
from ._result import MultilevelResult

__all__ = ["MultilevelModel", "NestingError", "check_group_order"]

INTERCEPT = "Intercept"
FAMILIES = ("gaussian", "binomial", "poisson")


class NestingError(DataError):
    """Group ids are not nested as declared (an inner id under two outer groups)."""


@deprecated_options(df_method=("inference", from_df_method("df_method")))
@dataclass(frozen=True, kw_only=True)
class MultilevelModel:
    r"""Linear mixed model with nested random intercepts and optional top-level random slopes.

    .. math::
        y_{i} = x_i^\top\beta + z_i^\top b_{g_0(i)} + \sum_{l=1}^{L-1} u_{g_l(i)} + \varepsilon_i

    with :math:`b_g \sim N(0, \Sigma)` for the outermost group (an intercept, plus slopes on
    the terms in ``slopes``), :math:`u_h \sim N(0, \sigma_l^2)` for each nested group and
    :math:`\varepsilon_i \sim N(0, \sigma^2)`, estimated by REML (default) or ML with the
    variance parameters profiled as in lme4 (Bates et al. 2015).

    Parameters
    ----------
    outcome
        Outcome column.
    covariates
        Fixed-effect columns (numeric; code categories as 0/1 dummies). An intercept is
        always included and named ``"Intercept"``.
    groups
        Grouping columns, outermost first, nested: ``("school", "teacher")`` identifies a
        teacher by the pair, so teacher ids may restart within each school.
    slopes
        ``{outermost group: (terms...)}``: random slopes (correlated with the intercept) at
        the outermost level, e.g. ``{"school": ("treat",)}`` for a multisite trial.
    method
        ``"reml"`` or ``"ml"``; unset, REML for the linear model and ML for binomial and
        Poisson models (for which REML is not defined: ``"reml"`` is then an error).
    inference
        :class:`~cpdimpact.estimator.ModelBased` with the degrees of freedom for tests and
        intervals of fixed effects: ``ModelBased("satterthwaite")`` (default, as lmerTest),
        ``("between_within")`` (as nlme) or ``("normal")`` (z). The old
        ``df_method="between_within"`` still works for one release (deprecated).
    missing
        ``"drop"``: rows missing the outcome, a covariate or a group id are dropped and
        counted (``result.n_dropped``); ``"raise"``: such rows are an error.
    check_nesting
        Raise :class:`NestingError` when inner ids look globally unique yet a few sit under
        two outer groups (a teacher recorded in two schools). Turn off when an inner id is
        *meant* to recur under several parents and the pair names the group, e.g. a teacher
        nested in school-years, where each (school-year, teacher) is one class.
    weights
        Column of non-negative prior weights per pupil, as lme4's ``weights``: pupil *i* has
        residual variance :math:`\sigma^2 / w_i`. Weights are normalised to mean one (so
        ``Residual`` is the residual variance of a pupil of average weight, and constant
        weights give the unweighted fit exactly); rows of weight zero are excluded and counted
        in the notes. See Notes.
    alpha
        1 minus the confidence level used by ``to_frame``.
    family
        ``"gaussian"`` (the linear mixed model), ``"binomial"`` (logit link: a 0/1 outcome such
        as reaching the expected standard, or a proportion with ``trials``) or ``"poisson"``
        (log link: counts such as days absent). Binomial and Poisson models are fitted by
        maximum likelihood as lme4's ``glmer``; their intervals are Wald z (``inference`` is
        then ``ModelBased("normal")`` whatever its ``df``, except that ``"between_within"``
        is refused). See ``docs/multilevel_binary.md``.
    n_agq
        Binomial and Poisson models: 1 for the Laplace approximation (default), or the number
        of adaptive Gauss-Hermite quadrature nodes (2 to 25), allowed with a single grouping
        level and no random slopes, as ``glmer(nAGQ = n_agq)``.
    trials
        Binomial models of aggregate data: the column of denominators (pupils per row), the
        outcome then being the proportion of successes, as ``glmer``'s ``weights``.

    Notes
    -----
    **Weights** are precision (prior) weights, not sampling weights: the likelihood is that of
    :math:`\varepsilon_i \sim N(0, \sigma^2/w_i)`, as ``lmer(..., weights = w)`` fits (with
    ``w`` normalised to mean one; lme4 does not normalise, which rescales only the residual
    variance). The point estimates are the weighted ones that matching or re-weighting asks for
    (e.g. weights from :mod:`cpdimpact.comparison`), but the model-based standard errors treat
    the weights as known precisions: they are exact for weights that are precisions (a row that
    is the mean of :math:`w_i` pupils) and only approximate for sampling weights, for which a
    design-consistent multilevel analysis would need weights at every level (Pfeffermann et
    al. 1998, *JRSS B* 60(1), 23-40; Rabe-Hesketh & Skrondal 2006, *JRSS A* 169(4),
    805-827). The trials' bootstrap and permutation keep each pupil's weight with the pupil.

    The likelihood is computed from per-group sufficient statistics (see
    :mod:`cpdimpact.multilevel._engine`): one pass over the pupils, then work proportional to
    the number of groups per evaluation. Singular fits (a variance estimated at zero) are
    reported through ``result.singular``, not raised.

    Examples
    --------
    >>> from cpdimpact.multilevel import MultilevelModel
    >>> from cpdimpact.datasets import city_partnership
    >>> pupils = city_partnership(seed=1, scale=0.2).pupils
    >>> fit = MultilevelModel(outcome="outcome", covariates=("prior", "fsm"),
    ...                       groups=("school", "teacher")).fit(pupils)
    >>> list(fit.variance_components.index)
    ['school', 'teacher', 'Residual']
    """

    #: Rows it fits: pupil records (the random effects model pupils within their groups).
    data_level: ClassVar[str] = "pupil"
    #: Its coefficients are in the outcome's units.
    effect_scale: ClassVar[str] = "outcome"

    outcome: str = "outcome"
    covariates: Sequence[str] = ()
    groups: Sequence[str] = ("school",)
    slopes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    method: Literal["reml", "ml"] | None = None
    inference: ModelBased = field(default=ModelBased())
    missing: Literal["drop", "raise"] = "drop"
    check_nesting: bool = True
    weights: str | None = None
    alpha: float = 0.05
    family: Literal["gaussian", "binomial", "poisson"] = "gaussian"
    n_agq: int = 1
    trials: str | None = None

    def __post_init__(self):
        covariates = (self.covariates,) if isinstance(self.covariates, str) else self.covariates
        groups = (self.groups,) if isinstance(self.groups, str) else self.groups
        object.__setattr__(self, "covariates", tuple(covariates))
        object.__setattr__(self, "groups", tuple(groups))
        slopes = {
            g: ((t,) if isinstance(t, str) else tuple(t)) for g, t in dict(self.slopes).items()
        }
        object.__setattr__(self, "slopes", MappingProxyType(slopes))
        if not self.groups:
            raise InvalidArgumentError("groups must name at least one grouping column")
        if len(set(self.groups)) != len(self.groups):
            raise InvalidArgumentError(f"groups repeat a column: {format_value(self.groups)}")
        for group in slopes:
            if group != self.groups[0]:
                raise InvalidArgumentError(
                    f"random slopes are supported at the outermost level only "
                    f"({self.groups[0]!r}), not {group!r}"
                )
        check_choice(self.family, "family", FAMILIES)
        _check_family_options(self)
        check_inference(type(self), self.inference)
        check_choice(self.missing, "missing", ("drop", "raise"))
        if INTERCEPT in self.covariates:
            raise InvalidArgumentError(
                "the intercept is always included; do not list it as a covariate"
            )
        check_alpha(self.alpha)
        check_bool(self.check_nesting, "check_nesting")

    # ------------------------------------------------------------------ formula
    @property
    def df_method(self) -> str:
        """The degrees-of-freedom method of ``inference`` (read-only; the option is deprecated)."""
        return self.inference.df

    def describe(self) -> str:
        """The model and its inference in plain words, for a report."""
        if self.family != "gaussian":
            return _describe_glmm(self)
        fitted = {"reml": "restricted maximum likelihood", "ml": "maximum likelihood"}
        slopes = "".join(
            f", with random slopes on {', '.join(terms)} by {group}"
            for group, terms in self.slopes.items()
        )
        adjusted = adjustment_in_words(self.covariates)
        return (
            f"Linear mixed model with random intercepts for {' within '.join(reversed(self.groups))}"
            f"{slopes}{adjusted}, fitted by {fitted[self.method]}; {self.inference.describe()}"
        )

    @classmethod
    def from_formula(cls, formula: str, **options) -> MultilevelModel:
        """Build a model from an lme4-style formula.

        Supported: ``y ~ x1 + x2 + (1 | school/teacher)``, ``(1 | school) + (1 | school:teacher)``
        and a correlated top-level slope ``(1 + treat | school)``; ``y ~ 1 + (1 | school)`` for
        an intercept-only model.

        Examples
        --------
        >>> m = MultilevelModel.from_formula("y ~ prior + fsm + (1 | school/teacher)")
        >>> m.groups, m.covariates
        (('school', 'teacher'), ('prior', 'fsm'))
        """
        if "~" not in formula:
            raise InvalidArgumentError(f"a formula needs '~': {formula!r}")
        lhs, rhs = (part.strip() for part in formula.split("~", 1))
        random = re.findall(r"\(([^()|]*)\|([^()]*)\)", rhs)
        fixed_part = re.sub(r"\([^()]*\|[^()]*\)", "", rhs)
        fixed = [t.strip() for t in fixed_part.split("+") if t.strip()]
        if any(t in ("0", "-1") or t.startswith("-") for t in fixed):
            raise InvalidArgumentError("models without an intercept are not supported")
        covariates = tuple(t for t in fixed if t != "1")
        if not random:
            raise InvalidArgumentError(f"no random-effect term like (1 | school) in {formula!r}")
        groups: list[str] = []
        slopes: dict[str, tuple[str, ...]] = {}
        for effects, grouping in random:
            terms = [t.strip() for t in effects.split("+") if t.strip()]
            if "1" not in terms:
                raise InvalidArgumentError(
                    f"random terms need an intercept: ({effects}| {grouping})"
                )
            # "a/b" and "a:b" both name the chain a > b (a:b alone is b's intercept term).
            path = [g.strip() for g in re.split(r"[/:]", grouping)]
            for depth, name in enumerate(path):
                if depth < len(groups):
                    if groups[depth] != name:
                        raise InvalidArgumentError(
                            f"groups are not nested in one chain: {formula!r}"
                        )
                else:
                    groups.append(name)
            extra = tuple(t for t in terms if t != "1")
            if extra:
                slopes[path[-1]] = extra
        return cls(
            outcome=lhs, covariates=covariates, groups=tuple(groups), slopes=slopes, **options
        )

    # ------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame) -> MultilevelResult:
        """Fit the model to ``data`` (one row per pupil); ``data`` is never modified."""
        if self.family != "gaussian":
            return _fit_glmm(self, data)
        prepared = _prepare(self, data)
        st = prepared.structure
        reml = self.method == "reml"
        phi, converged, message = _optimise(st, reml)
        ev = _engine.evaluate(st, phi)
        beta, r2, a, logdet_a = _engine.gls(st, ev)
        dof = st.n - st.p if reml else st.n
        sigma2 = r2 / dof
        cov = sigma2 * np.linalg.inv(a)
        deviance = _engine.criterion(st, ev.logdet, r2, logdet_a, reml)
        names = [INTERCEPT, *self.covariates]
        lam, thetas = _engine.unpack(st, phi)
        vc = _variance_components(self, lam, thetas, sigma2)
        singular = _is_singular(lam, thetas)
        if self.df_method == "satterthwaite":
            df = satterthwaite_df(st, phi, float(np.sqrt(sigma2)), reml)
        elif self.df_method == "between_within":
            df = between_within_df(prepared.term_levels, st.n_groups, st.n)
        else:
            df = np.full(st.p, np.inf)
        md = _engine.modes(st, phi, beta)
        return MultilevelResult(
            model=self,
            params=pd.Series(beta, index=names, name="estimate"),
            std_errors=pd.Series(np.sqrt(np.diag(cov)), index=names, name="std_error"),
            cov_params=pd.DataFrame(cov, index=names, columns=names),
            df=pd.Series(df, index=names, name="df"),
            variance_components=vc,
            loglik=-deviance / 2,
            theta=pd.Series(phi, index=_theta_names(self), name="theta"),
            sigma=float(np.sqrt(sigma2)),
            random_effects=_random_effects(self, prepared, md, sigma2),
            n_groups=pd.Series(st.n_groups, index=list(self.groups), name="groups"),
            n_obs=st.n,
            n_dropped=prepared.n_dropped,
            converged=converged,
            singular=singular,
            optimizer_message=message,
            notes=tuple(prepared.notes)
            + (("singular fit: a variance component is estimated at zero",) if singular else ()),
        )


# ---------------------------------------------------------------------- preparation
@dataclass(frozen=True, eq=False)
class _Prepared:
    structure: _engine.Structure
    labels: tuple[pd.DataFrame, ...]  # per level: the id columns of each group code
    n_dropped: int
    notes: list[str]
    # what the between-within df need; computed only if asked for (see term_levels)
    _term_inputs: tuple = ()

    @cached_property
    def term_levels(self) -> list[int]:
        """Level at which each fixed effect is estimated (:func:`_term_levels`)."""
        return _term_levels(*self._term_inputs)


def _prepare(model: MultilevelModel, data: pd.DataFrame) -> _Prepared:
    """Check the data and form the sufficient statistics (BLAS on one thread, see _blas)."""
    with single_threaded_blas():
        return _prepare_data(model, data)


def _design(model: MultilevelModel, values, n: int):
    """The fixed-effects matrix ``x`` (intercept first), the outermost level's slope columns
    that are not fixed effects (``z_extra``) and the random-effect columns' positions in
    ``[x, y, z_extra]`` (``z_cols``, the intercept 0), from ``values``: column -> array."""
    slope_terms = tuple(model.slopes.get(model.groups[0], ()))
    x = np.empty((n, 1 + len(model.covariates)))
    x[:, 0] = 1.0
    for j, column in enumerate(model.covariates, start=1):
        x[:, j] = values[column]
    extra_terms = [t for t in slope_terms if t not in model.covariates]
    z_extra = np.column_stack([values[t] for t in extra_terms]) if extra_terms else np.empty((n, 0))
    position = {name: i for i, name in enumerate([INTERCEPT, *model.covariates])}
    p = x.shape[1]
    z_cols = (0,) + tuple(
        position[t] if t in position else p + 1 + extra_terms.index(t) for t in slope_terms
    )
    return x, z_extra, z_cols


def _grouping(model: MultilevelModel, frame: pd.DataFrame):
    """Group codes and labels per level, checked (order, nesting, sizes): one factorisation
    per grouping column serves the order check, the codes and the nesting check."""
    levels = _factorise_levels(frame, model.groups)
    if model.check_nesting:
        _check_order(model.groups, levels)
    codes, labels = _group_codes(frame, model.groups, levels)
    _check_groups(model, codes, labels, levels)
    return codes, labels, levels


def _prepare_data(model: MultilevelModel, data: pd.DataFrame) -> _Prepared:
    slope_terms = tuple(model.slopes.get(model.groups[0], ()))
    used = [model.outcome, *model.covariates, *model.groups]
    used += [t for t in slope_terms if t not in used]
    if model.weights is not None and model.weights not in used:
        used.append(model.weights)
    numeric = [
        model.outcome,
        *model.covariates,
        *[t for t in slope_terms if t not in model.covariates],
    ]
    used = list(dict.fromkeys(used))
    require_model_columns(data, used, numeric)
    # Each column is read once, as float where it is numeric; no copy of the frame is made
    # unless rows are dropped.
    values = {}
    for column in numeric:  # missing values are handled below; infinite ones never
        role = "outcome" if column == model.outcome else "covariate"
        values[column] = data[column].to_numpy(dtype=float, na_value=np.nan)
        reject_infinite(values[column], data.index, column, role)
    modelled = [c for c in used if c != model.weights]
    incomplete = np.zeros(len(data), dtype=bool)
    for column in modelled:
        incomplete |= (
            np.isnan(values[column]) if column in values else data[column].isna().to_numpy()
        )
    notes: list[str] = []
    frame = data
    if incomplete.any():
        if model.missing == "raise":
            bad = data.index[incomplete]
            columns = [c for c in modelled if data[c].isna().any()]
            raise InvalidValueError(
                f"{int(incomplete.sum())} rows have missing values in {columns} "
                f"({format_rows(bad)}); drop them first or use missing='drop'"
            )
        notes.append(f"{int(incomplete.sum())} rows with missing values were dropped")
        frame = data.loc[~incomplete, used]
        values = {c: v[~incomplete] for c, v in values.items()}
    if len(frame) == 0:
        raise InvalidValueError("no complete rows to fit")
    weights = None
    if model.weights is not None:
        kept = len(frame)
        frame, weights = nonzero_weight_rows(frame, model.weights, notes)
        if len(frame) < kept:
            values = {c: frame[c].to_numpy(dtype=float) for c in values}
        # Normalised to mean one; constant weights are the unweighted model, exactly.
        weights = None if constant(weights) else weights / weights.mean()
        notes.append(
            f"prior weights {model.weights!r} (lme4 style: residual variance sigma^2 / w, "
            "weights normalised to mean one)"
        )
    y = values[model.outcome]
    y_squares = float(y @ y)
    if not _surely_varies(y_squares - float(y.sum()) ** 2 / len(y), y_squares, len(y)):
        require_variation(
            y, model.outcome, where="in the complete rows" if len(frame) < len(data) else ""
        )
    x, z_extra, z_cols = _design(model, values, len(frame))
    p = x.shape[1]
    codes, labels, levels = _grouping(model, frame)
    structure = _engine.build_structure(x, y, z_extra, codes, z_cols, weights)
    _check_rank(structure.cross[: x.shape[1], : x.shape[1]], [INTERCEPT, *model.covariates])
    within = y_squares - float((structure.inner_sums[:, p] ** 2 / structure.inner_n).sum())
    if weights is not None or not _surely_varies(within, y_squares, len(y)):
        require_within_variation(
            y,
            codes[-1],
            model.outcome,
            group=repr(model.groups[-1]),
            fix=f"Fit one row per {model.groups[-1]!r} without that level, or check the column.",
        )
    if weights is not None or not _surely_unexplained(structure.cross, len(y)):
        require_unexplained(
            y - x @ np.linalg.lstsq(x, y, rcond=None)[0],
            y,
            model.outcome,
            explained_by="the fixed effects (intercept and covariates)",
        )
    return _Prepared(
        structure, labels, int(incomplete.sum()), notes, _term_inputs=(model, x, codes)
    )


# The guards in cpdimpact._guards refuse an outcome whose deviations (from a constant, from
# its group means, from the fixed-effects fit) are all within a rounding tolerance of at most
# (2 RTOL + NOISE_ULPS eps) max|y| <= _TOLERANCE_BOUND * sqrt(y'y). Each takes several passes
# over the rows; when a sum of squared deviations computed from sums already at hand is far
# above that tolerance, the largest deviation is too, the guard would pass, and it is skipped.
_TOLERANCE_BOUND = 2 * RTOL + NOISE_ULPS * float(np.finfo(float).eps)
#: Sums of squares below this share of y'y are left to the guards (the rounding error of a
#: sum of squares computed as a difference of sums is many orders of magnitude smaller).
_MARGIN = 1e-6


def _surely_varies(squares: float, y_squares: float, n: int) -> bool:
    """True when ``squares``, a sum of n squared deviations of y, certainly exceeds n times
    the guards' squared tolerance (with a factor 4 to spare), so the largest deviation does."""
    return squares > max(_MARGIN, 4.0 * n * _TOLERANCE_BOUND**2) * y_squares


def _surely_unexplained(cross: np.ndarray, n: int) -> bool:
    """:func:`_surely_varies` for the residuals of y on the fixed effects, from the unweighted
    cross-products ``[X y]'[X y]`` alone (instead of an N-row least-squares fit).

    The residual sum of squares is the Schur complement of ``X'X`` in the cross-products;
    computed after scaling them to unit diagonal (where it is the squared sine of the angle
    between y and the span of X), its rounding error grows with the size of the scaled
    coefficients, so the margin asked for grows with it.
    """
    p = cross.shape[0] - 1
    scale = np.sqrt(np.diag(cross))
    if not (scale > 0).all() or not np.isfinite(cross).all():
        return False
    scaled = cross / np.outer(scale, scale)
    try:
        coef = np.linalg.solve(scaled[:p, :p], scaled[:p, p])
    except np.linalg.LinAlgError:
        return False
    sine2 = float(scaled[p, p] - scaled[:p, p] @ coef)
    if not sine2 > _MARGIN * (1.0 + float(np.abs(coef).sum())) ** 2:
        return False
    return _surely_varies(sine2 * float(cross[p, p]), float(cross[p, p]), n)


def _check_rank(xtx: np.ndarray, names: list[str]) -> None:
    """Name the covariates that are linear combinations of earlier ones (or constant).

    Works on X'X, already at hand: after scaling to unit diagonal, the squared residual norm of
    column j on the columns before it is the j-th pivot of a Cholesky factorisation; an exactly
    collinear column leaves (numerically) nothing.
    """
    scale = np.sqrt(np.diag(xtx))
    scale[scale == 0] = 1.0
    corr = xtx / np.outer(scale, scale)
    dependent = []
    kept: list[int] = []
    for j in range(len(names)):
        if kept:
            block = corr[np.ix_(kept, kept)]
            cross = corr[kept, j]
            residual = corr[j, j] - cross @ np.linalg.solve(block, cross)
        else:
            residual = corr[j, j]
        if residual < 1e-10:
            dependent.append(names[j])
        else:
            kept.append(j)
    if dependent:
        raise InvalidValueError(
            f"covariates {dependent} are perfectly collinear with the intercept and the "
            f"covariates listed before them (or constant); remove them"
        )


@dataclass(frozen=True, eq=False)
class _Levels:
    """Factorised grouping columns, outermost first (rows with a missing id excluded first).

    ``own[d]``: codes of column d's own ids (sorted order), ``n_ids[d]`` how many; ``paths[d]``:
    codes of the id paths down to d, numbered in sorted order of ``pairs[d]``, the distinct
    ``parent path * n_ids[d] + own id`` (``pairs[0]`` is None: the path is the id).
    """

    own: tuple[np.ndarray, ...]
    n_ids: tuple[int, ...]
    paths: tuple[np.ndarray, ...]
    pairs: tuple[np.ndarray | None, ...]


def _factorise_levels(frame: pd.DataFrame, groups: Sequence[str]) -> _Levels:
    """One sorted factorisation per column and per path: linear in the rows."""
    own_codes, n_ids, paths, pairs = [], [], [], []
    parent, n_parents = None, 0
    for column in groups:
        own, n_own = _sorted_codes(frame[column])
        if parent is None:
            path, keys, n_paths = own, None, n_own
        else:
            path, keys = _path_codes(parent, n_parents, own, n_own)
            n_paths = len(keys)
        own_codes.append(own)
        n_ids.append(n_own)
        paths.append(path)
        pairs.append(keys)
        parent, n_parents = path, n_paths
    return _Levels(tuple(own_codes), tuple(n_ids), tuple(paths), tuple(pairs))


def _dense_codes(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes of non-negative integer ``keys`` below ``size`` in sorted order, and the distinct
    keys: ``pd.factorize(keys, sort=True)`` by a lookup table instead of hashing."""
    present = np.zeros(size, dtype=bool)
    present[keys] = True
    distinct = np.flatnonzero(present)
    rank = np.empty(size, dtype=np.int64)
    rank[distinct] = np.arange(len(distinct))
    return rank[keys], distinct


def _sorted_codes(ids: pd.Series) -> tuple[np.ndarray, int]:
    """Codes of a grouping column's ids in sorted order (no missing ids), and how many."""
    if isinstance(ids.dtype, np.dtype) and ids.dtype.kind in "iu":
        values = ids.to_numpy()
        if values.size:
            low, high = int(values.min()), int(values.max())
            if high - low <= 4 * values.size:
                codes, distinct = _dense_codes(values - low, high - low + 1)
                return codes, len(distinct)
    codes, distinct = pd.factorize(ids, sort=True)
    return codes.astype(np.int64, copy=False), len(distinct)


def _path_codes(parent: np.ndarray, n_parents: int, own: np.ndarray, n_own: int):
    """Codes of the (parent path, own id) pairs in sorted order, and the distinct pairs as
    ``parent * n_own + own``; as ``pd.factorize(parent * n_own + own, sort=True)``."""
    size = n_parents * n_own
    if size <= 4 * own.size:
        return _dense_codes(parent * n_own + own, size)
    # Ids unique across parents (each id under one parent): the pairs are the ids.
    parent_of = np.empty(n_own, dtype=np.int64)
    parent_of[own] = parent
    if (parent_of[own] == parent).all():
        keys = parent_of * n_own + np.arange(n_own)
        order = np.argsort(keys, kind="stable")
        rank = np.empty(n_own, dtype=np.int64)
        rank[order] = np.arange(n_own)
        return rank[own], keys[order]
    codes, keys = pd.factorize(parent * n_own + own, sort=True)
    return codes.astype(np.int64, copy=False), keys


def _group_codes(frame: pd.DataFrame, groups: tuple[str, ...], levels: _Levels | None = None):
    """Integer codes per level; a code at level l names the whole path down to that level.

    Codes follow the sorted order of the id paths (as ``groupby(sort=True)`` would), built by
    factorising one column at a time: linear in the rows, no multi-column group-by.
    """
    levels = _factorise_levels(frame, groups) if levels is None else levels
    codes, labels = [], []
    for depth, code in enumerate(levels.paths):
        first = np.empty(int(code.max()) + 1, dtype=np.int64)
        first[code[::-1]] = np.arange(len(code))[::-1]
        labels.append(frame[list(groups[: depth + 1])].iloc[first].reset_index(drop=True))
        codes.append(code)
    return codes, tuple(labels)


#: A level whose parent groups hold a single child id this often, with child ids spanning
#: several parents and more ids than any parent holds (so not ids restarting within each
#: parent), is taken to be listed inner-first.
_INNER_FIRST_SHARE = 0.9


def require_model_columns(data: pd.DataFrame, columns: list, numeric: list) -> None:
    """Every one of ``columns`` is in ``data``, and each of ``numeric`` is numeric (or bool)."""
    absent = [c for c in columns if c not in data.columns]
    if absent:
        raise MissingColumnError(
            f"columns {absent} are not in the data; it has {list(map(str, data.columns))}"
        )
    for column in numeric:
        series = data[column]
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            raise InvalidValueError(
                f"column {column!r} is not numeric ({series.dtype}); code a categorical "
                f"covariate as 0/1 dummies, e.g. pandas.get_dummies(data, columns="
                f"[{column!r}], drop_first=True, dtype=float)"
            )


def check_group_order(frame: pd.DataFrame, groups: Sequence[str]) -> None:
    """Refuse ``groups`` listed inner-first, or a level that coincides with its parent.

    ``groups`` run outermost first. For each level, the parent's groups (the path of the
    levels above) are compared with the level's own ids: when (nearly) every parent group holds
    a single id of the level, while the level's ids each span several parents, the level
    contains its "parent" (``("teacher", "school")``, lme4's inner-first habit, or
    ``("school", "trust")``); when every parent holds a single id and each id sits in one
    parent, the level names the same groups as its parent. Ids that restart within each
    parent (teacher 1, 2, ... in every school) are recognised and accepted: they never number
    more distinct ids than the largest parent holds. Rows with a missing id are ignored.
    """
    groups = tuple(groups)
    if len(groups) < 2:
        return
    complete = frame[list(groups)].notna().all(axis=1).to_numpy()
    _check_order(groups, _factorise_levels(frame.loc[complete], groups))


def _check_order(groups: tuple[str, ...], levels: _Levels) -> None:
    """:func:`check_group_order` on factorised columns (complete rows only)."""
    for depth in range(1, len(groups)):
        column, n_child = groups[depth], levels.n_ids[depth]
        pairs = levels.pairs[depth]
        pair_parent, pair_child = pairs // n_child, pairs % n_child
        per_parent = np.bincount(pair_parent)
        per_parent = per_parent[per_parent > 0]
        per_child = np.bincount(pair_child, minlength=n_child)
        single = float((per_parent == 1).mean())
        restart = n_child <= per_parent.max()
        spans = float(per_child.mean()) > 1
        outer = groups[depth - 1]
        if single == 1.0 and (restart or not spans):
            raise NestingError(
                f"groups {groups}: every {outer!r} group holds a single {column!r}, so "
                f"{column!r} names the same groups as {outer!r} and the two variances "
                f"cannot be told apart. Remove {column!r} (or {outer!r}) from groups."
            )
        if single >= _INNER_FIRST_SHARE and not restart and spans:
            order = list(groups)
            order[depth - 1], order[depth] = column, outer
            raise NestingError(
                f"groups {groups} look inner-first: {format_value(n_child)} "
                f"{column!r} ids each span {float(per_child.mean()):.3g} {outer!r} groups "
                f"on average, while {single:.0%} of {outer!r} groups lie within a single "
                f"{column!r}, so {outer!r} is nested in {column!r}, not the other way "
                "round. groups run outermost first (lme4 writes (1 | school/teacher) the "
                f"same way): use groups={tuple(order)}."
            )


def _check_groups(model: MultilevelModel, codes, labels, levels: _Levels | None = None) -> None:
    for depth, (code, name) in enumerate(zip(codes, model.groups, strict=True)):
        n_groups = int(code.max()) + 1
        if n_groups < 2:
            raise InvalidValueError(
                f"grouping column {name!r} has a single level: its variance cannot be "
                f"estimated; remove it from groups"
            )
        if depth > 0 and model.check_nesting and levels is not None:
            # From the factorised ids, for every id: how many distinct parent ids it sits
            # under. The same test as below; the message is then built by the pandas route.
            n_ids, n_parent_ids = levels.n_ids[depth], levels.n_ids[depth - 1]
            own_id = levels.pairs[depth] % n_ids
            parent_path = levels.pairs[depth] // n_ids
            parent_pairs = levels.pairs[depth - 1]
            parent_id = (
                parent_path if parent_pairs is None else parent_pairs[parent_path] % n_parent_ids
            )
            distinct = np.unique(own_id * n_parent_ids + parent_id)
            n_shared = int((np.bincount(distinct // n_parent_ids, minlength=n_ids) > 1).sum())
            if not 0 < n_shared <= 0.5 * n_ids:
                continue
        if depth > 0 and model.check_nesting:
            # Ids restarting within each parent are normal; ids that are globally unique for
            # most groups but shared by a few signal a unit recorded under two parents.
            ids = labels[depth][name]
            parents_per_id = labels[depth].groupby(name, sort=False)[model.groups[depth - 1]]
            counts = parents_per_id.nunique()
            shared = counts[counts > 1]
            if 0 < len(shared) <= 0.5 * ids.nunique():
                example = shared.index[0]
                where = labels[depth].loc[ids == example, model.groups[depth - 1]].tolist()
                raise NestingError(
                    f"{name!r} ids look unique across {model.groups[depth - 1]!r} groups, but "
                    f"{len(shared)} of them appear under more than one (e.g. {name} "
                    f"{format_value(example)} in {model.groups[depth - 1]} "
                    f"{[format_value(w) for w in where[:5]]}): they are not "
                    f"nested as declared. Fix the ids, or if ids restart within each "
                    f"{model.groups[depth - 1]}, make sure most of them do."
                )
    inner = codes[-1]
    sizes = np.bincount(inner)
    if (sizes == 1).all():
        raise InvalidValueError(
            f"every {model.groups[-1]!r} group holds a single pupil: its variance cannot be "
            f"told apart from the residual; drop {model.groups[-1]!r} from groups"
        )
    if (sizes == 1).mean() > 0.5:
        warnings.warn(
            f"{(sizes == 1).mean():.0%} of {model.groups[-1]!r} groups hold a single pupil; "
            "their variance is weakly identified",
            SmallSampleWarning,
            stacklevel=4,
        )


def _term_levels(model: MultilevelModel, x: np.ndarray, codes) -> list[int]:
    """Level at which each fixed effect is estimated, for the between-within df.

    A column is constant within the groups of a level when its within-group sum of squares,
    from per-group sums, is zero up to rounding.
    """
    levels = [0]  # the intercept
    slope_terms = set(model.slopes.get(model.groups[0], ()))
    for j, name in enumerate(model.covariates, start=1):
        if name in slope_terms:
            levels.append(1)
            continue
        column = x[:, j]
        centred = column - column.mean()
        total = float(centred @ centred)
        level = len(codes) + 1
        for depth, code in enumerate(codes):
            counts = np.bincount(code)
            sums = np.bincount(code, weights=centred)
            within = total - float((sums**2 / counts).sum())
            if within <= 1e-10 * max(total, 1e-300):
                level = depth + 1
                break
        levels.append(level)
    return levels


# ---------------------------------------------------------------------- optimisation
def _optimise(st: _engine.Structure, reml: bool) -> tuple[np.ndarray, bool, str]:
    """Minimise the profiled deviance over the variance parameters.

    Bounded quasi-Newton (L-BFGS-B) from lme4's start (identity Lambda, thetas 1), then Newton
    steps from central differences: the criterion is so flat at its optimum that quasi-Newton
    methods with finite-difference gradients stop ~1e-7 away; one or two Newton steps reach
    ~1e-10. Each evaluation costs work proportional to the number of groups. The many small
    BLAS calls run on one thread (:func:`._blas.single_threaded_blas`).
    """
    with single_threaded_blas():
        return _minimise_deviance(st, reml)


def _minimise_deviance(st: _engine.Structure, reml: bool) -> tuple[np.ndarray, bool, str]:
    start = []
    for j in range(st.q):
        for i in range(j, st.q):
            start.append(1.0 if i == j else 0.0)
    start += [1.0] * (st.n_levels - 1)
    bounds = _engine.lower_bounds(st)

    def objective(phi):
        return _engine.deviance(st, phi, reml)

    def run(x0):
        return optimize.minimize(
            objective,
            x0,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-10, "gtol": 1e-8, "maxiter": 1000, "maxls": 40},
        )

    res = run(np.array(start))
    # The deviance depends on each theta through theta^2, so a variance at zero is always a
    # stationary point and a gradient method can stop there although the optimum lies inside.
    # Probe away from every parameter on its bound and restart from any better point.
    for _ in range(3):
        on_bound = [i for i, b in enumerate(bounds) if b[0] is not None and res.x[i] < 1e-4]
        probes = []
        for i in on_bound:
            for value in (0.001, 0.01, 0.05, 0.2, 0.5, 1.0):
                x0 = res.x.copy()
                x0[i] = value
                probes.append((objective(x0), x0))
        better = [pr for pr in probes if pr[0] < res.fun - 1e-9 * max(1.0, abs(res.fun))]
        if not better:
            break
        # A derivative-free search from the best probe cannot be pulled back to the bound by
        # the spurious zero gradient there.
        candidate = optimize.minimize(
            objective,
            min(better, key=lambda pr: pr[0])[1],
            method="Powell",
            bounds=bounds,
            options={"xtol": 1e-8, "ftol": 1e-13, "maxiter": 5000},
        )
        if not candidate.fun < res.fun:
            break
        res = candidate
    if not np.isfinite(res.fun):
        raise EstimationError("the likelihood could not be evaluated at any variance parameters")
    phi = _newton_polish(objective, np.asarray(res.x, dtype=float), bounds, res.fun)
    return phi, bool(res.success), str(res.message)


def _newton_polish(objective, phi: np.ndarray, bounds, current: float, steps: int = 6):
    """Newton steps on the parameters off their bounds (a variance at zero stays there)."""
    lower = np.array([b[0] if b[0] is not None else -np.inf for b in bounds])
    for _ in range(steps):
        idx = np.flatnonzero(phi > lower + 1e-12)
        if idx.size == 0:
            break
        h = 1e-4 * np.maximum(np.abs(phi[idx]), 0.1)
        grad, hess = _central_derivatives(objective, phi, idx, h, current)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        candidate = phi.copy()
        candidate[idx] = np.maximum(phi[idx] - step, lower[idx])
        value = objective(candidate)
        # So close to the optimum the deviance changes below its rounding error (~1e-13
        # relative): accept a step that does not worsen it beyond that.
        if not value <= current + 1e-10 * max(1.0, abs(current)):
            break
        # Newton converges quadratically: after a step this small the next would be ~1e-12.
        done = np.max(np.abs(candidate - phi)) < 1e-6 * max(1.0, float(np.abs(phi).max()))
        phi, current = candidate, min(value, current)
        if done:
            break
    return phi


def _central_derivatives(objective, phi, idx, h, f0):
    """Gradient over ``phi[idx]`` by central differences, and a Hessian for the Newton step.

    The diagonal of the Hessian is the central second difference; an off-diagonal entry
    reuses the points of the gradient and needs one evaluation more, ``(f(x + h_a + h_b) -
    f(x + h_a) - f(x + h_b) + f(x)) / (h_a h_b)`` (error O(h)): the Hessian only shapes the
    step, whose accuracy comes from the central gradient, so k(k-1)/2 evaluations do what
    2k(k-1) would.
    """
    k = idx.size
    plus, minus = np.empty(k), np.empty(k)
    for a in range(k):
        plus[a] = objective(_shift(phi, idx, {a: h[a]}))
        minus[a] = objective(_shift(phi, idx, {a: -h[a]}))
    grad = (plus - minus) / (2 * h)
    hess = np.diag((plus - 2 * f0 + minus) / h**2)
    for a in range(k):
        for b in range(a):
            value = (objective(_shift(phi, idx, {a: h[a], b: h[b]})) - plus[a] - plus[b] + f0) / (
                h[a] * h[b]
            )
            hess[a, b] = hess[b, a] = value
    return grad, hess


def _shift(phi: np.ndarray, idx: np.ndarray, moves: dict[int, float]) -> np.ndarray:
    out = phi.copy()
    for a, delta in moves.items():
        out[idx[a]] += delta
    return out


# ---------------------------------------------------------------------- results
def _theta_names(model: MultilevelModel) -> list[str]:
    top = model.groups[0]
    terms = [INTERCEPT, *model.slopes.get(top, ())]
    names = []
    for j, tj in enumerate(terms):
        for i in range(j, len(terms)):
            names.append(f"{top}:{tj}" if i == j else f"{top}:{terms[i]}.{tj}")
    names += list(model.groups[1:])
    return names


def _variance_components(model, lam, thetas, sigma2) -> pd.Series:
    top = model.groups[0]
    terms = [INTERCEPT, *model.slopes.get(top, ())]
    cov = sigma2 * lam @ lam.T
    values = {top: cov[0, 0]}
    for i, term in enumerate(terms[1:], start=1):
        values[f"{top}:{term}"] = cov[i, i]
    for i, term in enumerate(terms[1:], start=1):
        values[f"{top}:{INTERCEPT}:{term}"] = cov[0, i]
    for i in range(1, len(terms)):
        for j in range(1, i):
            values[f"{top}:{terms[j]}:{terms[i]}"] = cov[j, i]
    for name, theta in zip(model.groups[1:], thetas, strict=True):
        values[name] = sigma2 * theta**2
    values["Residual"] = sigma2
    return pd.Series(values, name="variance", dtype=float)


def _is_singular(lam, thetas, tol: float = 1e-4) -> bool:
    """As lme4's isSingular: a diagonal Cholesky entry or relative SD at (near) zero."""
    return bool((np.abs(np.diag(lam)) < tol).any() or (np.abs(thetas) < tol).any())


def _random_effects(model, prepared, md, sigma2) -> dict[str, pd.DataFrame]:
    top = model.groups[0]
    terms = [INTERCEPT, *model.slopes.get(top, ())]
    out = {}
    frames = []
    for i, term in enumerate(terms):
        frames.append(
            prepared.labels[0].assign(
                term=term,
                estimate=md.top[:, i],
                cond_sd=np.sqrt(np.maximum(sigma2 * md.top_var[:, i], 0.0)),
            )
        )
    out[top] = pd.concat(frames, ignore_index=True)
    for depth, name in enumerate(model.groups[1:], start=1):
        out[name] = prepared.labels[depth].assign(
            term=INTERCEPT,
            estimate=md.lower[depth - 1],
            cond_sd=np.sqrt(np.maximum(sigma2 * md.lower_var[depth - 1], 0.0)),
        )
    return out


# ---------------------------------------------------------------------- binomial and Poisson
_LINKS = {"binomial": "Logistic", "poisson": "Poisson (log-linear)"}


def _check_family_options(model: MultilevelModel) -> None:
    """Resolve ``method`` (REML for the linear model, ML otherwise) and check the options
    that only some families take."""
    glmm = model.family != "gaussian"
    if model.method is None:
        object.__setattr__(model, "method", "ml" if glmm else "reml")
    check_choice(model.method, "method", ("reml", "ml"))
    if glmm and model.method == "reml":
        raise InvalidArgumentError(
            f"method='reml' is not defined for family={model.family!r}: a binomial or Poisson "
            "mixed model is fitted by maximum likelihood (as glmer). Use method='ml' or leave "
            "method unset."
        )
    n_agq = check_positive_int(model.n_agq, "n_agq")
    if n_agq > 1:
        if not glmm:
            raise InvalidArgumentError(
                "n_agq (adaptive Gauss-Hermite nodes) applies to family='binomial' or "
                "'poisson'; the linear model's likelihood is exact. Remove n_agq."
            )
        if len(model.groups) > 1 or model.slopes:
            raise InvalidArgumentError(
                f"n_agq={n_agq} needs a single grouping level with a random intercept only "
                f"(as glmer's nAGQ > 1), not groups {model.groups}"
                + (f" with slopes {dict(model.slopes)}" if model.slopes else "")
                + ". Use n_agq=1 (the Laplace approximation)."
            )
        if n_agq > 25:
            raise InvalidArgumentError(
                f"n_agq={n_agq}: at most 25 quadrature nodes (as glmer); more do not change "
                "the estimates. Use n_agq=25 or fewer."
            )
    if model.trials is not None and model.family != "binomial":
        raise InvalidArgumentError(
            f"trials={model.trials!r} gives binomial denominators; it needs family='binomial'"
        )
    if glmm and model.weights is not None:
        raise InvalidArgumentError(
            f"weights={model.weights!r}: prior weights are not supported with "
            f"family={model.family!r}. For aggregate binomial data (a proportion of pupils "
            "passing) give the outcome as the proportion and the denominators as trials=."
        )
    if glmm and model.inference.df in ("between_within", "profile"):
        raise InvalidArgumentError(
            f"inference=ModelBased({model.inference.df!r}) is for the linear model; a "
            f"{model.family} mixed model has Wald z intervals (ModelBased('normal'), or leave "
            "inference unset)"
        )


def _describe_glmm(model: MultilevelModel) -> str:
    slopes = "".join(
        f", with random slopes on {', '.join(terms)} by {group}"
        for group, terms in model.slopes.items()
    )
    approx = (
        "Laplace approximation"
        if model.n_agq == 1
        else f"adaptive Gauss-Hermite quadrature, {model.n_agq} nodes"
    )
    return (
        f"{_LINKS[model.family]} mixed model with random intercepts for "
        f"{' within '.join(reversed(model.groups))}{slopes}"
        f"{adjustment_in_words(model.covariates)}, fitted by maximum likelihood ({approx}); "
        "Wald z intervals from the likelihood's curvature"
    )


def _check_outcome_values(model, frame: pd.DataFrame, y: np.ndarray) -> None:
    """0/1 outcomes, or proportions of whole successes out of positive trials (the shared
    pass/fail guards), and counts for Poisson."""
    if model.family == "binomial":
        if model.trials is None:
            require_binary(frame, model.outcome)
        else:
            require_proportions(frame, model.outcome, model.trials)
        return
    bad = (y < 0) | (y != np.round(y))
    if bad.any():
        shown = ", ".join(format_value(float(v)) for v in y[bad][:5])
        raise OutcomeFamilyError(
            f"column {model.outcome!r} (the outcome) must be counts (whole numbers 0, 1, 2, "
            f"...) for family='poisson': {format_rows(frame.index[bad])} hold {shown}. Check "
            "the column, or fit a continuous outcome with family='gaussian'."
        )


def _check_separation(model, frame, x, y) -> None:
    """A 0/1 covariate with the outcome all 0 (or all 1) at one of its values: the MLE of its
    fixed effect is infinite whatever the random effects (quasi-complete separation)."""
    for j, name in enumerate(model.covariates, start=1):
        column = x[:, j]
        if not np.isin(column, (0.0, 1.0)).all():
            continue
        for value in (0.0, 1.0):
            at = column == value
            values = y[at]
            stuck = [] if values.size == 0 else [v for v in (0.0, 1.0) if (values == v).all()]
            if model.family == "poisson":
                stuck = [v for v in stuck if v == 0.0]
            if stuck:
                word = {0.0: "0", 1.0: "1"}[stuck[0]]
                raise SeparationError(
                    f"covariate {name!r} separates the outcome {model.outcome!r}: all "
                    f"{format_value(int(at.sum()))} rows with {name} = {format_value(value)} "
                    f"have {model.outcome} = {word} (quasi-complete separation), so the "
                    f"estimate of its effect is infinite. Remove {name!r} from covariates, "
                    "merge it with another category, or report the raw proportions instead."
                )


def _prepare_glmm(model: MultilevelModel, data: pd.DataFrame):
    slope_terms = tuple(model.slopes.get(model.groups[0], ()))
    used = [model.outcome, *model.covariates, *model.groups]
    used += [t for t in slope_terms if t not in used]
    if model.trials is not None and model.trials not in used:
        used.append(model.trials)
    numeric = [
        model.outcome,
        *model.covariates,
        *[t for t in slope_terms if t not in model.covariates],
    ] + ([model.trials] if model.trials is not None else [])
    used = list(dict.fromkeys(used))
    require_model_columns(data, used, numeric)
    frame = data[used]
    for column in numeric:
        role = {model.outcome: "outcome", model.trials: "trials"}.get(column, "covariate")
        reject_infinite(
            frame[column].to_numpy(dtype=float, na_value=np.nan), frame.index, column, role
        )
    incomplete = frame.isna().any(axis=1).to_numpy()
    notes: list[str] = []
    if incomplete.any():
        if model.missing == "raise":
            columns = [c for c in used if frame[c].isna().any()]
            raise InvalidValueError(
                f"{int(incomplete.sum())} rows have missing values in {columns} "
                f"({format_rows(data.index[incomplete])}); drop them first or use missing='drop'"
            )
        notes.append(f"{int(incomplete.sum())} rows with missing values were dropped")
        frame = frame.loc[~incomplete]
    if len(frame) == 0:
        raise InvalidValueError("no complete rows to fit")
    y = frame[model.outcome].to_numpy(dtype=float)
    trials = None if model.trials is None else frame[model.trials].to_numpy(dtype=float)
    _check_outcome_values(model, frame, y)
    require_variation(
        y, model.outcome, where="in the complete rows" if len(frame) < len(data) else ""
    )
    columns = {c: frame[c].to_numpy(dtype=float) for c in (*model.covariates, *slope_terms)}
    x, z_extra, z_cols = _design(model, columns, len(frame))
    codes, labels, _ = _grouping(model, frame)
    _check_rank(x.T @ x, [INTERCEPT, *model.covariates])
    _check_separation(model, frame, x, y)
    data_ = _glmm.make_data(x, y, trials, z_extra, z_cols, codes, model.family)
    return data_, labels, int(incomplete.sum()), notes


def _fit_glmm(model: MultilevelModel, data: pd.DataFrame) -> MultilevelResult:
    """Maximum likelihood for a binomial or Poisson mixed model (see :mod:`._glmm`)."""
    d, labels, n_dropped, notes = _prepare_glmm(model, data)
    try:
        fitted = _glmm.fit(d, model.n_agq)
    except _glmm.Separation as exc:
        names = [([INTERCEPT, *model.covariates])[j] for j in exc.columns]
        raise SeparationError(
            f"the fixed effects {names} run off to infinity (complete or quasi-complete "
            f"separation: they predict {model.outcome!r} perfectly for some pupils), so their "
            "estimates do not exist. Remove or merge the covariates that separate the outcome, "
            "or report raw proportions instead."
        ) from None
    except (np.linalg.LinAlgError, FloatingPointError) as exc:
        raise EstimationError(f"the likelihood could not be maximised: {exc}") from None
    names = [INTERCEPT, *model.covariates]
    lam, thetas = _engine.unpack(fitted.structure, fitted.phi)
    vc = _variance_components(model, lam, thetas, 1.0).drop("Residual")
    singular = _is_singular(lam, thetas)
    cov = fitted.cov
    if not fitted.hessian_used:
        notes.append(
            "the deviance's Hessian over (theta, beta) is not positive definite: standard "
            "errors from the working model's X'WX instead (as glmer's fallback)"
        )
    prepared = SimpleNamespace(labels=labels)  # what _random_effects reads
    return MultilevelResult(
        model=model,
        params=pd.Series(fitted.beta, index=names, name="estimate"),
        std_errors=pd.Series(np.sqrt(np.diag(cov)), index=names, name="std_error"),
        cov_params=pd.DataFrame(cov, index=names, columns=names),
        df=pd.Series(np.full(d.p, np.inf), index=names, name="df"),
        variance_components=vc,
        loglik=-fitted.deviance / 2,
        theta=pd.Series(fitted.phi, index=_theta_names(model), name="theta"),
        sigma=1.0,
        random_effects=_random_effects(model, prepared, fitted.modes, 1.0),
        n_groups=pd.Series(fitted.structure.n_groups, index=list(model.groups), name="groups"),
        n_obs=d.n,
        n_dropped=n_dropped,
        converged=fitted.converged,
        singular=singular,
        optimizer_message=fitted.message,
        notes=tuple(notes)
        + (("singular fit: a variance component is estimated at zero",) if singular else ()),
        mean_linear_predictor=float((d.x @ fitted.beta).mean()),
    )
