"""Breakdowns of an evaluation's headline: attainment gaps, prior-attainment bands and the
effect size under each standard deviation the sector uses.

The evaluation's stages (:mod:`cpdimpact.evaluation.stages`) call these; they are kept apart so each rule is
stated once, with its reasoning.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ._results import interval
from .effects import improvement_index, months_of_progress
from .errors import CpdImpactWarning, DesignError
from .estimator import WildBootstrap
from .published import FIGURE_PUPILS

__all__ = [
    "GapEstimate",
    "complement_label",
    "effect_size_variants",
    "interacted_fit",
    "interacted_gap",
    "JointGap",
    "prior_band_masks",
    "subgroup_label",
]

_SUBGROUPS = {
    "fsm": "FSM pupils",
    "sen": "SEN pupils",
    "eal": "EAL pupils",
    "disadvantaged": "Disadvantaged pupils",  # DfE's published split (FSM in 6 years, or CLA)
}
_COMPLEMENTS = {
    "fsm": "Non-FSM pupils",
    "sen": "Pupils without SEN",
    "eal": "Pupils without EAL",
    "disadvantaged": "Other pupils",
}
_GAPS = {"fsm": "FSM gap", "sen": "SEN gap", "eal": "EAL gap", "disadvantaged": "Disadvantage gap"}
_THIRDS = ("lowest third", "middle third", "highest third")


def subgroup_label(column: str) -> str:
    """The label of the pupils *inside* a 0/1 subgroup (``"fsm"`` -> ``"FSM pupils"``)."""
    return _SUBGROUPS.get(column, f"{column} = 1")


def complement_label(column: str) -> str:
    """The label of the pupils *outside* a 0/1 subgroup (``"fsm"`` -> ``"Non-FSM pupils"``)."""
    return _COMPLEMENTS.get(column, f"{column} = 0")


def gap_label(column: str) -> str:
    """The label of a subgroup's attainment gap (``"fsm"`` -> ``"FSM gap"``)."""
    return _GAPS.get(column, f"{column} gap")


@dataclass(frozen=True)
class GapEstimate:
    r"""The programme's effect on an attainment gap: the effect on a subgroup minus the
    effect on the other pupils, as an effect size and in months of progress.

    A positive change means the subgroup gained more than the other pupils: for FSM pupils,
    the disadvantage gap narrowed.

    Attributes
    ----------
    label, subgroup, rest
        E.g. ``"FSM gap"``, ``"FSM pupils"``, ``"Non-FSM pupils"``.
    estimate, std_error, ci_lower, ci_upper
        The change in effect-size units (the same SD and small-sample factor as every
        group's effect size), with its interval at level ``1 - alpha``.
    points, points_std_error
        The same in outcome points.
    df
        Degrees of freedom of the t interval (``None``: normal).
    method
        How the difference's standard error was obtained.

    Notes
    -----
    With the :class:`~cpdimpact.did.DiD` estimator the difference comes from one fully
    interacted model: unit, year and covariate effects separate for the two groups, and the
    treatment interacted with the group, so its coefficients equal the two separate fits
    exactly while the cluster-robust covariance accounts for the groups sharing schools.
    For other estimators the two estimates are treated as independent,
    :math:`SE = \sqrt{SE_1^2 + SE_2^2}`; pupils of one school share its shocks, which
    usually correlates the estimates positively, so that interval is usually conservative.
    """

    label: str
    subgroup: str
    rest: str
    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    points: float
    points_std_error: float
    df: float | None
    alpha: float
    method: str

    @property
    def months(self) -> int:
        """Months of progress of the change (EEF Toolkit table)."""
        return months_of_progress(self.estimate)

    def to_dict(self) -> dict[str, Any]:
        """The fields and months as plain data."""
        return dataclasses.asdict(self) | {"months": self.months}


def gap_estimate(
    column: str,
    sub,
    rest,
    *,
    scale: float,
    alpha: float,
    joint: JointGap | None,
) -> GapEstimate:
    """Combine two groups' fits (``sub``, ``rest``: :class:`~cpdimpact.evaluation.result.GroupEstimate`)
    into the change in the gap; ``joint`` is the :class:`JointGap` of an interacted model
    when one was fitted; ``scale`` converts outcome points to effect-size units."""
    bounds = None
    if joint is not None:
        points, se, df, bounds = joint
        method = (
            "fully interacted difference-in-differences: one model with separate unit, year "
            "and covariate effects per group; "
            + (
                "wild cluster bootstrap interval of the difference"
                if bounds is not None
                else "cluster-robust SE of the difference"
            )
        )
    else:
        points = sub.did.estimate - rest.did.estimate
        se = math.hypot(sub.did.std_error, rest.did.std_error)
        # a fit without degrees of freedom (placebo standard errors) has a normal reference
        df = min(getattr(sub.did, "df", math.inf), getattr(rest.did, "df", math.inf))
        method = (
            "difference of the two groups' estimates, SE as if independent (the groups share "
            "schools, which usually makes this interval conservative)"
        )
    df = None if df is None or math.isinf(df) else float(df)
    if bounds is not None:
        lower, upper = bounds[0] * scale, bounds[1] * scale
    else:
        lower, upper = interval(points * scale, se * scale, alpha=alpha, df=df)
    return GapEstimate(
        label=gap_label(column),
        subgroup=sub.label,
        rest=rest.label,
        estimate=float(points * scale),
        std_error=float(se * scale),
        ci_lower=float(lower),
        ci_upper=float(upper),
        points=float(points),
        points_std_error=float(se),
        df=df,
        alpha=alpha,
        method=method,
    )


def interacted_fit(spec, frames: tuple[pd.DataFrame, pd.DataFrame]):
    """One DiD of two groups of rows with everything but the clusters separate per group.

    ``spec`` is a :class:`~cpdimpact.did.DiD`; ``frames`` are the rows of the other pupils
    and of the subgroup. Units, period effects and covariate slopes are made separate per
    group and the treatment is interacted with the group, so the coefficient of
    ``_treated_x_group`` is exactly the subgroup's estimate minus the other pupils' (each
    from its own fit) and its cluster-robust SE accounts for the groups sharing clusters.
    """
    marker, unit, treat = "_group", "_unit_in_group", "_treated_x_group"
    stacked = []
    for g, frame in enumerate(frames):
        part = frame.assign(**{marker: g})
        part[unit] = part[spec.unit].astype(str) + f"|{g}"
        stacked.append(part)
    data = pd.concat(stacked, ignore_index=True)
    group = data[marker].to_numpy(dtype=float)
    # Group-specific period effects as group x period dummies (the periods stay shared, so
    # the units of both groups remain connected through them).
    periods = np.sort(data[spec.time].unique())
    extra = {
        f"_period_{i}_x_group": (data[spec.time].to_numpy() == p) * group
        for i, p in enumerate(periods[1:], start=1)
    }
    extra |= {f"_{c}_x_group": data[c].to_numpy(dtype=float) * group for c in spec.covariates}
    extra[treat] = data[spec.treatment].to_numpy(dtype=float) * group
    data = data.assign(**extra)
    if isinstance(spec.inference, WildBootstrap):
        # the bootstrap tests the spec's treatment column: make it the difference's term
        others = (*spec.covariates, *(c for c in extra if c != treat), spec.treatment)
        joint = dataclasses.replace(spec, unit=unit, treatment=treat, covariates=others)
    else:
        joint = dataclasses.replace(spec, unit=unit, covariates=(*spec.covariates, *extra))
    with warnings.catch_warnings():
        # The two groups' fits already reported their warnings (few clusters, timing).
        warnings.simplefilter("ignore", CpdImpactWarning)
        return joint.fit(data)


class JointGap(NamedTuple):
    """The difference between two groups' effects from one interacted model."""

    difference: float
    std_error: float
    df: float
    #: the wild cluster bootstrap's interval (outcome units) when the spec asked for one;
    #: ``None``: a t interval on ``std_error`` and ``df``
    bootstrap_interval: tuple[float, float] | None = None


def interacted_gap(spec, frames: tuple[pd.DataFrame, pd.DataFrame]) -> JointGap:
    """Difference in the treatment effect between two groups of rows, from one model.

    ``spec`` is a :class:`~cpdimpact.did.DiD`; ``frames`` are the rows of the other pupils
    and of the subgroup (see :func:`interacted_fit`). With ``inference=WildBootstrap()`` the
    difference is tested, and its interval found, by the wild cluster bootstrap, as the
    groups' own estimates are.
    """
    treat = "_treated_x_group"
    fit = interacted_fit(spec, frames)
    if isinstance(spec.inference, WildBootstrap):
        return JointGap(
            float(fit.estimate),
            float(fit.std_error),
            math.inf,
            (float(fit.ci_lower), float(fit.ci_upper)),
        )
    df = fit.df
    if fit.df_terms is not None and treat in fit.df_terms.index:
        df = float(fit.df_terms[treat])
    return JointGap(float(fit.params[treat]), float(fit.std_errors[treat]), float(df))


def prior_band_masks(prior: pd.Series, n_bands: int) -> list[tuple[str, np.ndarray]]:
    """Equal-count bands of prior attainment, lowest first, as ``(label, mask)`` pairs.

    Cut points are quantiles of ``prior`` over the analysed records (both arms, every year);
    records with no prior attainment are in no band. Tied values at a cut stay together, so
    bands can differ slightly in size.
    """
    known = prior.notna().to_numpy()
    band = pd.qcut(prior.rank(method="min"), n_bands, labels=False, duplicates="drop")
    levels = sorted(band.dropna().unique())
    out = []
    for i, level in enumerate(levels):
        if len(levels) == 3:
            name = _THIRDS[i]
        else:
            where = " (lowest)" if i == 0 else " (highest)" if i == len(levels) - 1 else ""
            name = f"band {i + 1} of {len(levels)}{where}"
        out.append((f"Prior attainment: {name}", known & (band == level).to_numpy()))
    return out


def sd_components(pupils: pd.DataFrame) -> dict[str, float]:
    r"""Within-school and total pupil-level SDs of the comparison arm's outcomes.

    Both pool over years (deviations from each year's mean for :math:`S_T`, from each
    school-year mean for :math:`S_W`), so trends over time do not inflate them:

    .. math::
        S_T^2 = \frac{\sum (y - \bar y_{t})^2}{N - T}, \qquad
        S_W^2 = \frac{\sum (y - \bar y_{st})^2}{N - M}, \qquad
        \hat\rho = \max(0, 1 - S_W^2 / S_T^2),

    with :math:`N` records in :math:`M` school-years over :math:`T` years; ``n`` is the
    average school-year size :math:`N/M`.

    Raises
    ------
    cpdimpact.errors.DesignError
        ``pupils`` are published figures (a ``figure_pupils`` column): the spread of school
        or area means is not a pupil-level SD.
    """
    if FIGURE_PUPILS in pupils.columns:
        raise DesignError(
            "these rows are published school or area means, not pupils: their spread is not "
            "a pupil-level SD. Give one from elsewhere: CohortSpec(pupil_sd=..., "
            "pupil_sd_source=...)."
        )
    rows = pupils.loc[~pupils["treated"].to_numpy(dtype=bool), ["school", "year", "outcome"]]
    if rows.empty:  # every unit takes part: use everybody before the first start
        rows = pupils.loc[~pupils["exposed"].to_numpy(dtype=bool), ["school", "year", "outcome"]]
    y = rows["outcome"].to_numpy(dtype=float)
    by_year = rows.groupby("year")["outcome"].transform("mean").to_numpy()
    by_cell = rows.groupby(["school", "year"])["outcome"].transform("mean").to_numpy()
    n_obs = len(y)
    n_years = rows["year"].nunique()
    n_cells = len(rows.drop_duplicates(["school", "year"]))
    total = float(np.sqrt(np.sum((y - by_year) ** 2) / max(n_obs - n_years, 1)))
    within = float(np.sqrt(np.sum((y - by_cell) ** 2) / max(n_obs - n_cells, 1)))
    icc = max(0.0, 1.0 - (within / total) ** 2) if total > 0 else 0.0
    return {
        "sd_total": total,
        "sd_within": within,
        "icc": icc,
        "n": n_obs / max(n_cells, 1),
        "N": n_obs,
    }


def points_interval(did, alpha: float) -> tuple[float, float]:
    """A fit's interval in outcome units at ``alpha`` (t on its degrees of freedom, normal
    without them), as every effect size's interval is that interval rescaled."""
    df = getattr(did, "df", None)
    df = None if df is None or not math.isfinite(df) else df
    return interval(did.estimate, did.std_error, alpha=alpha, df=df)


def effect_size_variants(result) -> pd.DataFrame:
    r"""The headline estimate as an effect size under each SD evaluators meet.

    Rows: the headline (Hedges' g over the report's SD); :math:`d_W`, over the pooled
    within-school SD; :math:`d_T`, over the total pupil SD with Hedges' (2007) adjustment
    :math:`\sqrt{1 - 2(n-1)\rho/(N-2)}` for the clustering of pupils in schools; and the
    estimate in outcome points. SDs are the comparison arm's, pooled within year
    (:func:`sd_components`). Each interval is the estimate's interval divided by the same SD
    (the SD treated as known). Columns: ``variant, sd, estimate, ci_lower, ci_upper, months,
    improvement_index``.
    """
    head = result.groups[0]
    did, es = head.did, head.effect_size
    lower, upper = points_interval(did, result.evaluation.alpha)
    rows = []
    if es is not None:
        rows.append(
            (
                f"Hedges' g over the report's SD ({result.effect_size_sd_source}): the headline",
                result.effect_size_sd,
                es.correction,
            )
        )
    # d_W and d_T need pupils' scores: published figures (school or area means) have none,
    # and the spread of their means is never a pupil-level SD.
    if result.cohort.published is None:
        parts = sd_components(result.cohort.pupils)
        n, big_n, rho = parts["n"], parts["N"], parts["icc"]
        adjustment = math.sqrt(max(0.0, 1.0 - 2.0 * (n - 1.0) * rho / max(big_n - 2.0, 1.0)))
        rows += [
            ("d_W: pooled within-school SD (Hedges 2007)", parts["sd_within"], 1.0),
            (
                f"d_T: total pupil SD, adjusted for clustering (Hedges 2007; ICC {rho:.2f}, "
                f"{n:.0f} pupils per school-year)",
                parts["sd_total"],
                adjustment,
            ),
        ]
    table = []
    for name, sd, factor in rows:
        scale = factor / sd
        estimate = did.estimate * scale
        table.append(
            {
                "variant": name,
                "sd": sd,
                "estimate": estimate,
                "ci_lower": lower * scale,
                "ci_upper": upper * scale,
                "months": months_of_progress(estimate),
                "improvement_index": float(improvement_index(estimate)),
            }
        )
    table.append(
        {
            "variant": f"Outcome {result.outcome_units} (not standardised)",
            "sd": np.nan,
            "estimate": did.estimate,
            "ci_lower": lower,
            "ci_upper": upper,
            "months": pd.NA,
            "improvement_index": np.nan,
        }
    )
    return pd.DataFrame(table)
