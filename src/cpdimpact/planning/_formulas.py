"""Closed-form power analysis: minimum detectable effect sizes, power and sample sizes.

The randomised designs follow the PowerUp! formulas (Dong & Maynard 2013) and agree with the R
package PowerUpR to three decimals (``tests/reference/planning``). Difference-in-differences
(DiD) and comparative interrupted time series (CITS) designs on repeated cross-sections of pupils
in schools follow Schochet (2022) for one start year (one timing group).

Every function takes the evaluator's names (``schools``, ``pupils``, ``icc``, ...) and also the
PowerUp! names (``J``, ``n``, ``rho2``, ...); :data:`POWERUP_NAMES` maps one to the other.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .._results import ResultFaces, Summary
from ..errors import DesignError, InvalidValueError

# The public names are listed once, in cpdimpact.planning.__all__.

#: Designs understood by :func:`mdes`, :func:`power` and :func:`sample_size`: code -> words.
DESIGNS: dict[str, str] = {
    "ira": "pupils randomised (individual random assignment, IRA)",
    "cra2": "schools randomised, pupils in schools (two-level cluster-randomised, CRA2)",
    "cra3": "areas randomised, schools in areas, pupils in schools (three-level, CRA3)",
    "bira2": ("pupils randomised within schools, school effects random (multisite, BIRA2)"),
    "bcra3f2": "schools randomised within fixed blocks (blocked cluster-randomised, BCRA3f2)",
    "did": "difference-in-differences on repeated cross-sections of pupils in schools (DiD)",
    "cits": "comparative interrupted time series on pupils in schools (CITS)",
}

_ALIASES = {
    "pupil_randomised": "ira",
    "pupil-randomised": "ira",
    "individual": "ira",
    "ira1r1": "ira",
    "school_randomised": "cra2",
    "school-randomised": "cra2",
    "cluster": "cra2",
    "cra2r2": "cra2",
    "area_randomised": "cra3",
    "area-randomised": "cra3",
    "cra3r3": "cra3",
    "multisite": "bira2",
    "bira2r1": "bira2",
    "blocked": "bcra3f2",
    "blocked_clusters": "bcra3f2",
    "difference_in_differences": "did",
    "difference-in-differences": "did",
    "comparative_interrupted_time_series": "cits",
}

#: The evaluator's parameter names and their PowerUp! / PowerUpR equivalents.
POWERUP_NAMES: dict[str, str] = {
    "pupils": "n (pupils per cluster; per school per year in DiD/CITS)",
    "schools": "J (schools; per area in CRA3, per block in BCRA3f2)",
    "areas": "K (areas randomised in CRA3)",
    "blocks": "K (fixed blocks in BCRA3f2)",
    "icc": "rho2 (share of pupil variance between schools)",
    "icc_area": "rho3 (share of pupil variance between areas)",
    "effect_heterogeneity": "omega2 (variance of school effects / between-school variance)",
    "r2_pupil": "R1^2, r21 (variance explained by pupil covariates)",
    "r2_school": "R2^2, r22 (school-level variance explained by covariates)",
    "r2_area": "R3^2, r23 (area-level variance explained by covariates)",
    "r2_effect": "R2T^2, r2t2 (effect variation explained by school covariates)",
    "covariates": "g1, g2 or g3 (covariates at the level of assignment)",
    "treated_share": "P, p (share of units assigned to the programme)",
    "alpha": "alpha",
    "power": "power (1 - beta)",
    "two_tailed": "two.tailed",
}

# PowerUp! name -> our name (K depends on the design: areas in CRA3, blocks in BCRA3f2).
_POWERUP_ALIASES = {
    "n": "pupils",
    "J": "schools",
    "rho2": "icc",
    "rho3": "icc_area",
    "omega2": "effect_heterogeneity",
    "r21": "r2_pupil",
    "r22": "r2_school",
    "r23": "r2_area",
    "r2t2": "r2_effect",
    "g1": "covariates",
    "g2": "covariates",
    "g3": "covariates",
    "p": "treated_share",
    "P": "treated_share",
}

# Parameters of each design: name -> default (``_REQUIRED`` when the user must give it).
_REQUIRED = object()
_COMMON = {"treated_share": 0.5, "covariates": 0}
_PARAMETERS: dict[str, dict[str, object]] = {
    "ira": {"pupils": _REQUIRED, "r2_pupil": 0.0, **_COMMON},
    "cra2": {
        "schools": _REQUIRED,
        "pupils": _REQUIRED,
        "icc": _REQUIRED,
        "r2_pupil": 0.0,
        "r2_school": 0.0,
        **_COMMON,
    },
    "cra3": {
        "areas": _REQUIRED,
        "schools": _REQUIRED,
        "pupils": _REQUIRED,
        "icc": _REQUIRED,
        "icc_area": _REQUIRED,
        "r2_pupil": 0.0,
        "r2_school": 0.0,
        "r2_area": 0.0,
        **_COMMON,
    },
    "bira2": {
        "schools": _REQUIRED,
        "pupils": _REQUIRED,
        "icc": _REQUIRED,
        "effect_heterogeneity": _REQUIRED,
        "r2_pupil": 0.0,
        "r2_effect": 0.0,
        **_COMMON,
    },
    "bcra3f2": {
        "blocks": _REQUIRED,
        "schools": _REQUIRED,
        "pupils": _REQUIRED,
        "icc": _REQUIRED,
        "r2_pupil": 0.0,
        "r2_school": 0.0,
        **_COMMON,
    },
}
_PANEL = {
    "schools": _REQUIRED,
    "pupils": _REQUIRED,
    "years_before": _REQUIRED,
    "years_after": _REQUIRED,
    "icc": _REQUIRED,
    "autocorrelation": _REQUIRED,
    "correlation": "ar1",
    "r2_pupil": 0.0,
    "r2_school": 0.0,
    "df": None,
    **_COMMON,
}
_PARAMETERS["did"] = dict(_PANEL)
_PARAMETERS["cits"] = dict(_PANEL)

# The sample size each design solves for by default, and what it is called in words.
_DEFAULT_SOLVE = {
    "ira": "pupils",
    "cra2": "schools",
    "cra3": "areas",
    "bira2": "schools",
    "bcra3f2": "schools",
    "did": "schools",
    "cits": "schools",
}
_COUNTS = ("pupils", "schools", "areas", "blocks")
_WORDS = {
    "pupils": "pupils",
    "schools": "schools",
    "areas": "areas",
    "blocks": "blocks",
}


# --- validation ---------------------------------------------------------------------------


def _real(name: str, value: object) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InvalidValueError(f"{name} must be a number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidValueError(f"{name} must be a finite number, got {value!r}.")
    return value


def _unit_open(name: str, value: object, fix: str) -> float:
    """A share in (0, 1)."""
    value = _real(name, value)
    if not 0.0 < value < 1.0:
        hint = " Give a fraction: 0.8 for 80%." if 1.0 < value <= 100.0 else ""
        raise InvalidValueError(
            f"{name} must lie strictly between 0 and 1, got {value!r}.{hint} {fix}"
        )
    return value


def _unit_half_open(name: str, value: object, what: str) -> float:
    """A share in [0, 1): an ICC or an R-squared."""
    value = _real(name, value)
    if not 0.0 <= value < 1.0:
        if value == 1.0:
            fix = (
                f"{name} = 1 would mean {what} is entirely explained, leaving nothing to "
                "estimate; use a value below 1 (e.g. 0.5 for prior attainment)."
            )
        elif 1.0 < value <= 100.0:
            fix = "Give a fraction: 0.15 for 15%."
        else:
            fix = "Use a value in [0, 1)."
        raise InvalidValueError(f"{name} must lie in [0, 1), got {value!r}. {fix}")
    return value


def _count(name: str, value: object, minimum: float, why: str) -> float:
    value = _real(name, value)
    if value < minimum:
        raise DesignError(
            f"{name} = {value:g} is too few: at least {minimum:g} are needed ({why}). "
            f"Increase {name}."
        )
    return value


def _canonical_design(design: object) -> str:
    if not isinstance(design, str):
        raise InvalidValueError(
            f"design must be a string such as 'cra2', got {design!r}. Choose one of "
            f"{', '.join(map(repr, DESIGNS))}."
        )
    key = design.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DESIGNS:
        raise InvalidValueError(
            f"Unknown design {design!r}. Choose one of {', '.join(map(repr, DESIGNS))} "
            f"(or an alias: {', '.join(map(repr, _ALIASES))})."
        )
    return key


def _gather(design: str, given: Mapping[str, object]) -> dict[str, object]:
    """Map PowerUp! names to ours, fill defaults, reject unknown or missing parameters."""
    params: dict[str, object] = {}
    allowed = _PARAMETERS[design]
    for key, value in given.items():
        name = key
        if key == "K":
            name = "blocks" if design == "bcra3f2" else "areas"
        elif key in _POWERUP_ALIASES and key not in allowed:
            name = _POWERUP_ALIASES[key]
        if name in params:
            raise InvalidValueError(
                f"{name} was given twice (as {key!r} and under another name); give it once."
            )
        params[name] = value
    if design in ("did", "cits") and (
        "schools_treated" in params or "schools_comparison" in params
    ):
        treated = params.pop("schools_treated", None)
        comparison = params.pop("schools_comparison", None)
        if treated is None or comparison is None or "schools" in params:
            raise InvalidValueError(
                "Give either schools (with treated_share) or both schools_treated and "
                "schools_comparison, not a mixture."
            )
        if "treated_share" in params:
            raise InvalidValueError(
                "treated_share is implied by schools_treated and schools_comparison; drop it."
            )
        treated = _count("schools_treated", treated, 1, "a difference needs treated schools")
        comparison = _count(
            "schools_comparison", comparison, 1, "a difference needs comparison schools"
        )
        params["schools"] = treated + comparison
        params["treated_share"] = treated / (treated + comparison)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidValueError(
            f"Unknown parameter(s) {', '.join(map(repr, unknown))} for design {design!r}; it "
            f"takes {', '.join(map(repr, allowed))}."
        )
    out = {}
    for name, default in allowed.items():
        if name in params:
            out[name] = params[name]
        elif default is _REQUIRED:
            raise InvalidValueError(
                f"Design {design!r} needs {name} ({POWERUP_NAMES.get(name, name)})."
            )
        else:
            out[name] = default
    return out


def _check(design: str, p: dict[str, object]) -> dict[str, Any]:
    """Validate and convert every parameter; return plain floats (and the panel options)."""
    q: dict[str, Any] = dict(p)
    q["treated_share"] = _unit_open(
        "treated_share",
        p["treated_share"],
        "It is the share of units in the programme group (P); 0.5 is most efficient.",
    )
    q["covariates"] = _real("covariates", p["covariates"])
    if q["covariates"] < 0 or not float(q["covariates"]).is_integer():
        raise InvalidValueError(
            f"covariates must be a whole number of covariates (0, 1, 2...), got "
            f"{p['covariates']!r}."
        )
    for name, what in (
        ("r2_pupil", "the pupil-level variance"),
        ("r2_school", "the school-level variance"),
        ("r2_area", "the area-level variance"),
        ("r2_effect", "the variation of effects between schools"),
    ):
        if name in p:
            q[name] = _unit_half_open(name, p[name], what)
    if "icc" in p:
        q["icc"] = _unit_half_open("icc", p["icc"], "the pupil variance (all between schools)")
    if "icc_area" in p:
        q["icc_area"] = _unit_half_open("icc_area", p["icc_area"], "the pupil variance")
        if q["icc"] + q["icc_area"] >= 1.0:
            raise InvalidValueError(
                f"icc + icc_area must be below 1 (they are shares of one total variance), got "
                f"{q['icc']:g} + {q['icc_area']:g}. Lower one of them."
            )
    if "effect_heterogeneity" in p:
        q["effect_heterogeneity"] = _real("effect_heterogeneity", p["effect_heterogeneity"])
        if q["effect_heterogeneity"] < 0:
            raise InvalidValueError(
                f"effect_heterogeneity (omega2) is a ratio of variances and cannot be "
                f"negative, got {q['effect_heterogeneity']:g}. Use 0 for the same effect in "
                "every school."
            )
    q["pupils"] = _count("pupils", p["pupils"], 1, "each unit needs at least one pupil")
    if design == "ira":
        q["pupils"] = _count("pupils", p["pupils"], 3, "a trial needs pupils in both groups")
    if design in ("cra2", "bira2"):
        q["schools"] = _count("schools", p["schools"], 3, "fewer than 3 clusters cannot vary")
    if design == "cra3":
        q["areas"] = _count("areas", p["areas"], 3, "fewer than 3 clusters cannot vary")
        q["schools"] = _count("schools", p["schools"], 1, "each area needs a school")
    if design == "bcra3f2":
        q["blocks"] = _count("blocks", p["blocks"], 1, "a blocked design needs a block")
        q["schools"] = _count(
            "schools", p["schools"], 2, "each block needs a programme and a control school"
        )
    if design in ("did", "cits"):
        q["schools"] = _count("schools", p["schools"], 3, "fewer than 3 clusters cannot vary")
        share = q["treated_share"]
        if share * q["schools"] < 1 - 1e-9 or (1 - share) * q["schools"] < 1 - 1e-9:
            raise DesignError(
                f"With {q['schools']:g} schools and treated_share {share:g} one group has "
                "fewer than one school; add schools or move treated_share towards 0.5."
            )
        q["years_before"] = _count(
            "years_before",
            p["years_before"],
            3 if design == "cits" else 1,
            "a CITS projects a baseline trend, which needs at least 3 years before"
            if design == "cits"
            else "a difference needs a year before the programme",
        )
        q["years_after"] = _count(
            "years_after", p["years_after"], 1, "an effect needs a year after the start"
        )
        for name in ("years_before", "years_after"):
            if not float(q[name]).is_integer():
                raise InvalidValueError(f"{name} must be a whole number of years, got {p[name]!r}.")
            q[name] = int(q[name])
        if p["correlation"] not in ("ar1", "constant"):
            raise InvalidValueError(
                f"correlation must be 'ar1' (correlation decays as autocorrelation ** lag) or "
                f"'constant' (the same at every lag), got {p['correlation']!r}."
            )
        q["autocorrelation"] = _autocorrelations(
            p["autocorrelation"], q["years_before"] + q["years_after"], p["correlation"]
        )
        if p["df"] is not None:
            q["df"] = _real("df", p["df"])
            if q["df"] <= 0:
                raise DesignError(f"df must be positive, got {q['df']:g}.")
    return q


def _autocorrelations(value: object, years: int, structure: str) -> tuple[float, ...]:
    """Correlations of a school's effect at lags 1 .. years - 1."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        lags = tuple(_real(f"autocorrelation[{i}]", v) for i, v in enumerate(value))
        if len(lags) < years - 1:
            raise InvalidValueError(
                f"autocorrelation lists {len(lags)} lag correlations but the panel spans "
                f"{years} years: give the correlation at lags 1 to {years - 1}."
            )
        lags = lags[: years - 1]
    else:
        rho = _real("autocorrelation", value)
        if not -1.0 < rho <= 1.0:
            raise InvalidValueError(
                f"autocorrelation must lie in (-1, 1], got {rho!r}. It is the correlation of "
                "a school's effect (mean attainment net of the national trend) between one year "
                "and the next; estimate it from past results, or try a pessimistic and an optimistic value."
            )
        if structure == "ar1":
            lags = tuple(rho**k for k in range(1, years))
        else:
            lags = tuple(rho for _ in range(1, years))
    if any(not -1.0 <= r <= 1.0 for r in lags):
        raise InvalidValueError(f"autocorrelations must lie in [-1, 1], got {lags}.")
    matrix = _toeplitz(lags, years)
    if np.linalg.eigvalsh(matrix).min() < -1e-10:
        raise InvalidValueError(
            f"The autocorrelations {tuple(round(r, 4) for r in lags)} do not form a valid "
            "correlation matrix (it has a negative eigenvalue); check them."
        )
    return lags


def _toeplitz(lags: Sequence[float], years: int) -> np.ndarray:
    r = np.concatenate([[1.0], np.asarray(lags, dtype=float)])
    index = np.abs(np.subtract.outer(np.arange(years), np.arange(years)))
    return r[index]


# --- formulas -----------------------------------------------------------------------------


def _panel_contrast(design: str, before: int, after: int) -> np.ndarray:
    """Weights that turn a school's yearly means into its contribution to the estimate."""
    c = np.empty(before + after)
    c[before:] = 1.0 / after
    if design == "did":
        c[:before] = -1.0 / before
    else:  # CITS: post mean minus the baseline trend projected to the post years
        t = np.arange(before, dtype=float)
        centred = t - t.mean()
        gap = np.arange(before, before + after, dtype=float).mean() - t.mean()
        c[:before] = -1.0 / before - gap * centred / np.sum(centred**2)
    return c


def _variance_df(design: str, q: Mapping[str, Any]) -> tuple[float, float]:
    """Sampling variance of the standardised impact estimate and its degrees of freedom."""
    p = q["treated_share"]
    pq = p * (1.0 - p)
    n = q["pupils"]
    g = q["covariates"]
    r1 = 1.0 - q.get("r2_pupil", 0.0)
    if design == "ira":
        return r1 / (pq * n), n - g - 2
    rho2 = q["icc"]
    J = q["schools"]
    if design == "cra2":
        var = rho2 * (1 - q["r2_school"]) / (pq * J) + (1 - rho2) * r1 / (pq * J * n)
        return var, J - g - 2
    if design == "cra3":
        K = q["areas"]
        rho3 = q["icc_area"]
        var = (
            rho3 * (1 - q["r2_area"]) / (pq * K)
            + rho2 * (1 - q["r2_school"]) / (pq * J * K)
            + (1 - rho2 - rho3) * r1 / (pq * J * K * n)
        )
        return var, K - g - 2
    if design == "bira2":
        omega = q["effect_heterogeneity"]
        var = rho2 * omega * (1 - q["r2_effect"]) / J + (1 - rho2) * r1 / (pq * J * n)
        return var, J - g - 1
    if design == "bcra3f2":
        K = q["blocks"]
        var = rho2 * (1 - q["r2_school"]) / (pq * J * K) + (1 - rho2) * r1 / (pq * J * K * n)
        return var, K * (J - 2) - g
    # DiD and CITS: one school's contrast c'y over its yearly means, then two groups of schools.
    before, after = q["years_before"], q["years_after"]
    c = _panel_contrast(design, before, after)
    corr = _toeplitz(q["autocorrelation"], before + after)
    school = rho2 * (1 - q["r2_school"]) * float(c @ corr @ c)
    pupils = (1 - rho2) * r1 / n * float(c @ c)
    var = (school + pupils) / (pq * J)
    df = q["df"] if q.get("df") is not None else J - g - 2
    return var, df


def _critical(alpha: float, df: float, two_tailed: bool) -> float:
    return float(stats.t.ppf(1 - alpha / 2 if two_tailed else 1 - alpha, df))


def _multiplier(alpha: float, power: float, df: float, two_tailed: bool) -> float:
    return _critical(alpha, df, two_tailed) + float(stats.t.ppf(power, df))


def _power_at(es: float, se: float, alpha: float, df: float, two_tailed: bool) -> float:
    ncp = es / se
    crit = _critical(alpha, df, two_tailed)
    if two_tailed:
        return float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))
    return float(stats.nct.sf(crit, df, ncp))


def _settings(alpha: object, power: object, two_tailed: object) -> tuple[float, float, bool]:
    alpha = _unit_open("alpha", alpha, "It is the significance level (0.05 for 5%).")
    power = _unit_open("power", power, "It is the chance of detecting the effect (0.80).")
    if not isinstance(two_tailed, bool | np.bool_):
        raise InvalidValueError(
            f"two_tailed must be True or False, got {two_tailed!r}. Use False for a "
            "one-tailed test (only when a negative effect is of no interest)."
        )
    return alpha, power, bool(two_tailed)


def _evaluate(design: str, q: Mapping[str, Any], alpha: float, power: float, two_tailed: bool):
    var, df = _variance_df(design, q)
    if not df > 0:
        raise DesignError(
            f"The design leaves {df:g} degrees of freedom (design {design!r}, "
            f"{_df_rule(design)}); add {_WORDS[_DEFAULT_SOLVE[design]]} or use fewer "
            "covariates."
        )
    if not var > 0:
        raise DesignError(
            "The impact estimate has no sampling variance under these inputs (for example "
            "icc = 0 with autocorrelation 1); check them."
        )
    se = math.sqrt(var)
    m = _multiplier(alpha, power, df, two_tailed)
    return se, float(df), m, _critical(alpha, df, two_tailed)


def _df_rule(design: str) -> str:
    return {
        "ira": "df = pupils - covariates - 2",
        "cra2": "df = schools - covariates - 2",
        "cra3": "df = areas - covariates - 2",
        "bira2": "df = schools - covariates - 1",
        "bcra3f2": "df = blocks * (schools - 2) - covariates",
        "did": "df = schools - covariates - 2",
        "cits": "df = schools - covariates - 2",
    }[design]


# --- result -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerAnalysis(ResultFaces):
    """A closed-form power analysis of one design: MDES, its interval and, when asked, the
    power to detect a given effect or the sample size needed for a target MDES.

    Attributes
    ----------
    design : str
        Design code (a key of :data:`DESIGNS`).
    mdes : float
        Minimum detectable effect size, in pupil-level standard deviations, at
        :attr:`target_power`: ``multiplier * std_error``.
    ci_lower, ci_upper : float
        The MDES interval as PowerUpR reports it, ``mdes -/+ t_crit * std_error`` (``t_crit``
        the test's critical value): where the estimate would fall, with probability
        ``1 - alpha`` for a two-tailed test, if the true effect were exactly the MDES.
    std_error : float
        Standard error of the standardised impact estimate.
    df : float
        Degrees of freedom of the t reference distribution.
    multiplier : float
        ``t_crit + t_power`` on ``df`` (Bloom 1995); about 2.8 with many clusters.
    alpha, target_power : float
        Significance level and the power the MDES is computed for.
    two_tailed : bool
        Two-tailed test (the default) or one-tailed.
    inputs : tuple of (str, object)
        The design parameters used, in the evaluator's names (see :data:`POWERUP_NAMES`).
    effect, power : float or None
        From :func:`power`: the effect size asked about and the power to detect it.
    target_mdes : float or None
        From :func:`sample_size`: the MDES aimed at.
    solved_for : str or None
        From :func:`sample_size`: which parameter was solved for.
    exact : float or None
        From :func:`sample_size`: the real-valued solution at which the MDES equals the target;
        the design's ``inputs`` hold it rounded up, and all other fields are evaluated there.
    notes : tuple of str
        Caveats printed under the summary (the DiD/CITS assumptions).
    """

    design: str
    mdes: float
    ci_lower: float
    ci_upper: float
    std_error: float
    df: float
    multiplier: float
    alpha: float
    target_power: float
    two_tailed: bool
    inputs: tuple[tuple[str, object], ...]
    effect: float | None = None
    power: float | None = None
    target_mdes: float | None = None
    solved_for: str | None = None
    exact: float | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def parameters(self) -> dict[str, object]:
        """The design parameters as a dictionary (a copy)."""
        return dict(self.inputs)

    @property
    def required(self) -> float | None:
        """From :func:`sample_size`: the whole number of units needed (``None`` otherwise)."""
        return None if self.solved_for is None else self.parameters[self.solved_for]

    @property
    def months(self) -> int:
        """The MDES as months of additional progress (EEF Toolkit)."""
        from ..effects import months_of_progress

        return int(months_of_progress(self.mdes))

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """The MDES interval ``mdes -/+ t_crit * std_error`` (PowerUpR's); ``alpha`` defaults
        to the analysis' own significance level.

        One row indexed by term (``"mdes"``), columns ``ci_lower, ci_upper``, as every result's
        ``conf_int``: ``lower, upper = analysis.conf_int().iloc[0]``.
        """
        a = self.alpha if alpha is None else _unit_open("alpha", alpha, "")
        crit = _critical(a, self.df, self.two_tailed)
        return pd.DataFrame(
            {
                "ci_lower": [self.mdes - crit * self.std_error],
                "ci_upper": [self.mdes + crit * self.std_error],
            },
            index=pd.Index(["mdes"], name="term"),
        )

    _RESULT_FIELDS = (
        "design",
        "mdes",
        "ci_lower",
        "ci_upper",
        "std_error",
        "df",
        "multiplier",
        "alpha",
        "target_power",
        "two_tailed",
        "effect",
        "power",
        "target_mdes",
        "solved_for",
        "exact",
    )

    def to_frame(self) -> pd.DataFrame:
        """One row: ``design, mdes, ci_lower, ci_upper, std_error, df, multiplier, alpha,
        target_power, two_tailed, effect, power``, the solved size, then every input."""
        row = {name: getattr(self, name) for name in self._RESULT_FIELDS}
        for name, value in self.inputs:
            row[name] = _plain(value)
        return pd.DataFrame([row])

    def to_dict(self) -> dict[str, object]:
        """Plain, JSON-safe dictionary of every field, plus ``months``; ``inputs`` becomes a
        dictionary."""
        out = {name: getattr(self, name) for name in self._RESULT_FIELDS}
        out["design_label"] = DESIGNS[self.design]
        return out | {
            "months": self.months,
            "inputs": {name: _plain(value) for name, value in self.inputs},
            "notes": list(self.notes),
        }

    def summary(self) -> Summary:
        """Printable summary in plain words, then the figures."""
        tails = "two-sided" if self.two_tailed else "one-sided"
        test = f"{tails} test at the {100 * self.alpha:g}% level"
        facts: list[tuple[str, str]] = [("Design", DESIGNS[self.design])]
        facts.append(("In plain words", self.plain_words()))
        facts += [
            ("MDES", f"{self.mdes:.3f} SD ({self.months:+d} months of progress)"),
            (
                "MDES interval",
                f"[{self.ci_lower:.3f}, {self.ci_upper:.3f}] (MDES -/+ critical value x SE)",
            ),
            ("Standard error", f"{self.std_error:.4f}"),
            ("Degrees of freedom", f"{self.df:g} ({_df_rule(self.design)})"),
            ("Multiplier", f"{self.multiplier:.3f}"),
            ("Test", f"{test}, power {100 * self.target_power:g}%"),
        ]
        if self.effect is not None:
            facts.append(("Power", f"{self.power:.3f} to detect an effect of {self.effect:g} SD"))
        if self.solved_for is not None:
            facts.append(
                (
                    f"{self.solved_for.capitalize()} needed",
                    f"{self.required:g} (exactly {self.exact:.2f} for MDES {self.target_mdes:g})",
                )
            )
        facts += [(name, _fact(value)) for name, value in self.inputs if value is not None]
        return Summary(
            title=f"Power analysis: {self.design.upper()}",
            facts=tuple(facts),
            notes=self.notes,
        )

    def plain_words(self) -> str:
        """One paragraph a charity can publish."""
        p = self.parameters
        tails = "two-sided" if self.two_tailed else "one-sided"
        size = _describe(self.design, p)
        text = (
            f"With {size}, the smallest effect this evaluation would detect with "
            f"{100 * self.target_power:g}% probability ({tails} test at the "
            f"{100 * self.alpha:g}% level) is {self.mdes:.2f} standard deviations of pupil "
            f"attainment, about {self.months} months' progress."
        )
        if self.effect is not None:
            text += (
                f" An effect of {self.effect:g} SD would be detected with probability "
                f"{self.power:.0%}."
            )
        if self.solved_for is not None:
            text += (
                f" To detect {self.target_mdes:g} SD it needs {self.required:g} "
                f"{_solve_words(self.design, self.solved_for)}."
            )
        return text

    def __str__(self) -> str:
        return (
            f"{self.design.upper()}: MDES {self.mdes:.3f} [{self.ci_lower:.3f}, "
            f"{self.ci_upper:.3f}], df {self.df:g}, SE {self.std_error:.4f}"
        )

    def curve(self, values: Sequence[float] | None = None, *, vary: str | None = None):
        """MDES over a range of sample sizes, the other inputs held fixed.

        Parameters
        ----------
        values : sequence of float, optional
            Sizes to evaluate; by default from the smallest allowed to about twice the
            current one.
        vary : str, optional
            Which size to vary (``"schools"``, ``"pupils"``, ``"areas"`` or ``"blocks"``);
            the design's main size by default (schools for school designs).

        Returns
        -------
        pandas.DataFrame
            Columns ``<vary>, mdes, ci_lower, ci_upper, df``.
        """
        return mdes_curve(
            self.design,
            values=values,
            vary=vary,
            alpha=self.alpha,
            power=self.target_power,
            two_tailed=self.two_tailed,
            **self.parameters,
        )

    def plot(self, *, ax=None, vary: str | None = None, values=None):
        """MDES against the number of schools (or ``vary``), marking this design.

        Returns
        -------
        matplotlib.axes.Axes
        """
        vary = vary or _DEFAULT_SOLVE[self.design]
        target = self.target_mdes if self.target_mdes is not None else self.effect
        return _plot(
            self.curve(values, vary=vary),
            vary=vary,
            design=self.design,
            current=(self.parameters[vary], self.mdes),
            target=target,
            ax=ax,
        )


def _plain(value: object) -> object:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _fact(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ", ".join(f"{v:.3g}" for v in value)
    return str(value)


def _solve_words(design: str, name: str) -> str:
    if design == "cra3" and name == "schools":
        return "schools per area"
    if design == "bcra3f2" and name == "schools":
        return "schools per block"
    if name == "pupils" and design != "ira":
        return "pupils per school" + (" per year" if design in ("did", "cits") else "")
    return _WORDS[name]


def _describe(design: str, p: Mapping[str, object]) -> str:
    share = p["treated_share"]
    n = f"{p['pupils']:g}"
    if design == "ira":
        return f"{n} pupils ({share:.0%} in the programme)"
    if design == "cra2":
        return f"{p['schools']:g} schools ({share:.0%} in the programme) and {n} pupils in each"
    if design == "cra3":
        return (
            f"{p['areas']:g} areas ({share:.0%} in the programme), {p['schools']:g} schools "
            f"in each and {n} pupils per school"
        )
    if design == "bira2":
        return (
            f"{p['schools']:g} schools, each randomising {n} pupils ({share:.0%} to the programme)"
        )
    if design == "bcra3f2":
        return (
            f"{p['blocks']:g} blocks of {p['schools']:g} schools ({share:.0%} in the programme)"
            f" and {n} pupils per school"
        )
    treated = share * p["schools"]
    return (
        f"{treated:g} programme schools and {p['schools'] - treated:g} comparison schools, "
        f"{n} pupils tested per school each year, {p['years_before']} years before and "
        f"{p['years_after']} after the start"
    )


# --- public functions ---------------------------------------------------------------------


def _analyse(design, alpha, power_level, two_tailed, params, *, notes=()):
    design = _canonical_design(design)
    alpha, power_level, two_tailed = _settings(alpha, power_level, two_tailed)
    gathered = _gather(design, params)
    q = _check(design, gathered)
    se, df, m, crit = _evaluate(design, q, alpha, power_level, two_tailed)
    value = m * se
    inputs = tuple((name, _input(name, gathered, q)) for name in gathered)
    return (
        design,
        q,
        dict(
            design=design,
            mdes=value,
            ci_lower=value - crit * se,
            ci_upper=value + crit * se,
            std_error=se,
            df=df,
            multiplier=m,
            alpha=alpha,
            target_power=power_level,
            two_tailed=two_tailed,
            inputs=inputs,
            notes=tuple(notes) + _design_notes(design, q),
        ),
    )


def _input(name: str, gathered: Mapping[str, object], q: Mapping[str, Any]) -> object:
    """The value recorded for an input: validated, whole numbers as int, lists as tuples."""
    if name == "autocorrelation":
        value = gathered[name]
        if isinstance(value, Sequence) and not isinstance(value, str):
            return tuple(float(v) for v in value)
        return float(value)
    value = _plain(q[name])
    if (
        isinstance(value, float)
        and value.is_integer()
        and name
        in _COUNTS
        + (
            "covariates",
            "years_before",
            "years_after",
        )
    ):
        return int(value)
    return value


def _design_notes(design: str, q: Mapping[str, Any]) -> tuple[str, ...]:
    if design in ("did", "cits"):
        return (
            "DiD/CITS variance: Schochet (2022), one start year, repeated cross-sections of "
            "pupils; degrees of freedom as for a two-group comparison of schools. It assumes "
            "parallel trends (DiD) or parallel deviations from trend (CITS): power is no "
            "protection against bias.",
        )
    return ()


def mdes(
    design: str,
    *,
    alpha: float = 0.05,
    power: float = 0.80,
    two_tailed: bool = True,
    **params,
) -> PowerAnalysis:
    r"""Minimum detectable effect size (MDES) of a design.

    Parameters
    ----------
    design : str
        One of :data:`DESIGNS`: ``"ira"`` (pupils randomised), ``"cra2"`` (schools
        randomised), ``"cra3"`` (areas randomised, schools within areas), ``"bira2"`` (pupils
        randomised within schools, random school effects), ``"bcra3f2"`` (schools randomised
        within fixed blocks), ``"did"`` or ``"cits"`` (schools joining a programme compared
        with schools that do not, on yearly tested cohorts).
    alpha : float, default 0.05
        Significance level.
    power : float, default 0.80
        Chance of detecting an effect as large as the MDES.
    two_tailed : bool, default True
        ``False`` for a one-tailed test.
    **params
        The design's parameters, in the evaluator's names or PowerUp!'s (in brackets):

        - ``pupils`` (n): pupils per school (per school per year in DiD/CITS; in all in IRA);
        - ``schools`` (J): schools (per area in CRA3, per block in BCRA3f2; in all in DiD/CITS);
        - ``areas`` (K, CRA3) or ``blocks`` (K, BCRA3f2);
        - ``icc`` (rho2): share of pupil-level variance between schools;
        - ``icc_area`` (rho3, CRA3): share between areas;
        - ``effect_heterogeneity`` (omega2, BIRA2): variance of the programme's effect across
          schools relative to the between-school variance;
        - ``r2_pupil`` (R1^2), ``r2_school`` (R2^2), ``r2_area`` (R3^2), ``r2_effect`` (R2T^2):
          variance explained by covariates (prior attainment explains about half); default 0;
        - ``covariates`` (g1/g2/g3): covariates at the level of assignment (each costs a
          degree of freedom); default 0;
        - ``treated_share`` (P): share assigned to the programme; default 0.5;
        - DiD/CITS only: ``years_before``, ``years_after``, ``autocorrelation`` (correlation of
          a school's effect from one year to the next, or a list of correlations at lags 1,
          2, ...), ``correlation`` (``"ar1"``: decays as autocorrelation ** lag, the default;
          ``"constant"``: the same at every lag), ``schools_treated`` and
          ``schools_comparison`` (instead of ``schools`` and ``treated_share``) and ``df``
          (to override the degrees of freedom).

    Returns
    -------
    PowerAnalysis

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        An ICC or R-squared outside [0, 1), a share or level outside (0, 1), an unknown design
        or parameter, a missing parameter.
    cpdimpact.errors.DesignError
        Fewer than 3 clusters, or no degrees of freedom left.

    Notes
    -----
    ``MDES = M * SE`` with ``M = t(1 - alpha/2, df) + t(power, df)`` (``t(1 - alpha, df)``
    one-tailed; Bloom 1995, 2005) and, with ``P`` the treated share,

    - IRA: :math:`SE^2 = (1-R_1^2)/(P(1-P)n)`, df = n - g1 - 2;
    - CRA2: :math:`SE^2 = \rho_2(1-R_2^2)/(P(1-P)J) + (1-\rho_2)(1-R_1^2)/(P(1-P)Jn)`,
      df = J - g2 - 2;
    - CRA3: :math:`SE^2 = \rho_3(1-R_3^2)/(P(1-P)K) + \rho_2(1-R_2^2)/(P(1-P)JK) +
      (1-\rho_2-\rho_3)(1-R_1^2)/(P(1-P)JKn)`, df = K - g3 - 2;
    - BIRA2: :math:`SE^2 = \rho_2\omega_2(1-R_{2T}^2)/J + (1-\rho_2)(1-R_1^2)/(P(1-P)Jn)`,
      df = J - g2 - 1;
    - BCRA3f2: :math:`SE^2 = \rho_2(1-R_2^2)/(P(1-P)JK) + (1-\rho_2)(1-R_1^2)/(P(1-P)JKn)`,
      df = K(J - 2) - g2;

    (Dong & Maynard 2013, as implemented in PowerUpR). For DiD and CITS on yearly cohorts
    (different pupils each year) each school contributes a contrast :math:`c'\bar y_j` of its
    yearly means: DiD takes the mean after minus the mean before
    (:math:`c_t = 1/a` after, :math:`-1/b` before); CITS takes the mean after minus the
    baseline trend projected into the post years (Bloom 2003), so the pre-years' weights are
    :math:`-1/b - D(t - \bar t_{pre}) / \sum (t - \bar t_{pre})^2`, D the gap between the
    post and pre mean years. With school effects correlated over years as R (AR(1):
    :math:`R_{st} = \phi^{|s-t|}`),

    .. math:: SE^2 = \frac{\rho_2 (1-R_2^2)\, c'Rc + (1-\rho_2)(1-R_1^2)\, c'c / n}{P(1-P)J},

    Schochet's (2022) cross-sectional DiD and CITS variances for one timing group (his
    ``theta`` and ``e`` terms), with separate R-squared for the two levels. Degrees of freedom
    are J - g - 2 by default (a two-group comparison of schools, which is what cluster-robust
    inference delivers; Schochet's dashboard uses the larger regression df).

    References
    ----------
    Bloom, H. S. (1995). Minimum detectable effects. *Evaluation Review* 19(5), 547-556.
    Bloom, H. S. (2003). Using "short" interrupted time-series analysis to measure the impacts
    of whole-school reforms. *Evaluation Review* 27(1), 3-49.
    Bloom, H. S. (2005). Randomizing groups to evaluate place-based programs. In *Learning More
    from Social Experiments*. Russell Sage.
    Dong, N., & Maynard, R. (2013). PowerUp!: A tool for calculating minimum detectable effect
    sizes and minimum required sample sizes. *J. Research on Educational Effectiveness* 6(1).
    Schochet, P. Z. (2022). Statistical power for estimating treatment effects using
    difference-in-differences and comparative interrupted time series estimators with
    variation in treatment timing. *J. Educational and Behavioral Statistics* 47(4), 367-405.

    Examples
    --------
    >>> from cpdimpact.planning import mdes
    >>> result = mdes("cra2", schools=20, pupils=15, icc=0.17)
    >>> round(result.mdes, 3), round(result.ci_lower, 3), round(result.ci_upper, 3), result.df
    (0.629, 0.183, 1.075, 18.0)
    >>> round(mdes("cra2", J=20, n=15, rho2=0.17).mdes, 3)  # PowerUp! names work too
    0.629
    """
    _, _, fields = _analyse(design, alpha, power, two_tailed, params)
    return PowerAnalysis(**fields)


def power(
    design: str,
    *,
    es: float,
    alpha: float = 0.05,
    two_tailed: bool = True,
    target_power: float = 0.80,
    **params,
) -> PowerAnalysis:
    """Power to detect an effect of ``es`` standard deviations.

    Parameters
    ----------
    design, alpha, two_tailed, **params
        As for :func:`mdes`.
    es : float
        The effect size, in pupil-level standard deviations.
    target_power : float, default 0.80
        The power at which the result's MDES is also reported.

    Returns
    -------
    PowerAnalysis
        With ``effect`` and ``power`` set.

    Notes
    -----
    Power is read from the noncentral t distribution on the design's degrees of freedom with
    noncentrality ``es / SE``, summing both rejection regions when two-tailed (as PowerUpR).

    Examples
    --------
    >>> from cpdimpact.planning import power
    >>> round(power("cra2", es=0.4, schools=20, pupils=15, icc=0.17).power, 3)
    0.43
    """
    es = _real("es", es)
    _, _, fields = _analyse(design, alpha, target_power, two_tailed, params)
    fields["effect"] = es
    fields["power"] = _power_at(
        es, fields["std_error"], fields["alpha"], fields["df"], fields["two_tailed"]
    )
    return PowerAnalysis(**fields)


def sample_size(
    design: str,
    *,
    mdes: float,
    solve_for: str | None = None,
    alpha: float = 0.05,
    power: float = 0.80,
    two_tailed: bool = True,
    **params,
) -> PowerAnalysis:
    """The number of schools (or pupils, areas, blocks) needed to reach a target MDES.

    Parameters
    ----------
    design, alpha, power, two_tailed, **params
        As for :func:`mdes`, without the size being solved for.
    mdes : float
        The MDES to reach, in pupil-level standard deviations (e.g. 0.2).
    solve_for : {"schools", "pupils", "areas", "blocks"}, optional
        Which size to solve for. Default: pupils for IRA, areas for CRA3, schools otherwise
        (schools per block in BCRA3f2, as PowerUpR).

    Returns
    -------
    PowerAnalysis
        Evaluated at the whole number needed (:attr:`PowerAnalysis.required`, rounded up so
        that the MDES is at most the target); :attr:`PowerAnalysis.exact` holds the real-valued
        solution.

    Raises
    ------
    cpdimpact.errors.DesignError
        When no size reaches the target (for example more pupils per school cannot overcome
        too few schools); the message gives the best MDES possible.

    Notes
    -----
    The MDES falls as the size grows; the exact size is the root of ``MDES(x) = target`` in
    real ``x`` (degrees of freedom moving with ``x``), found by Brent's method. PowerUpR's
    ``mrss.*`` iterates towards the same root and rounds to the nearest whole number, so it
    can return one fewer than here.

    Examples
    --------
    >>> from cpdimpact.planning import sample_size
    >>> result = sample_size("cra2", mdes=0.2, pupils=60, icc=0.15, r2_pupil=0.5, r2_school=0.5)
    >>> result.required, round(result.exact, 2), round(result.mdes, 3)
    (67, 66.43, 0.199)
    """
    design = _canonical_design(design)
    target = _real("mdes", mdes)
    if not target > 0:
        raise InvalidValueError(f"mdes must be positive (e.g. 0.2), got {target!r}.")
    solve_for = _DEFAULT_SOLVE[design] if solve_for is None else solve_for
    params = dict(params)
    if design in ("did", "cits") and "schools_treated" in params and solve_for == "schools":
        treated = _real("schools_treated", params.pop("schools_treated"))
        comparison = _real("schools_comparison", params.pop("schools_comparison", 0.0))
        if comparison <= 0 or treated <= 0:
            raise InvalidValueError("schools_treated and schools_comparison must be positive.")
        params["treated_share"] = treated / (treated + comparison)
    allowed = _PARAMETERS[design]
    if solve_for not in _COUNTS or solve_for not in allowed:
        options = [c for c in _COUNTS if c in allowed]
        raise InvalidValueError(
            f"solve_for must be one of {', '.join(map(repr, options))} for design {design!r}, "
            f"got {solve_for!r}."
        )
    aliases = [k for k, v in _POWERUP_ALIASES.items() if v == solve_for]
    if solve_for in params or any(a in params for a in aliases):
        raise InvalidValueError(
            f"{solve_for} is what sample_size solves for; leave it out of the parameters."
        )
    if design in ("cra3", "bcra3f2") and "K" in params and solve_for in ("areas", "blocks"):
        raise InvalidValueError(f"{solve_for} is what sample_size solves for; leave out K.")

    def gap(x: float) -> float:
        return (
            _analyse(design, alpha, power, two_tailed, {**params, solve_for: x})[2]["mdes"] - target
        )

    low = _lowest(design, solve_for, params, alpha, power, two_tailed)
    if gap(low) <= 0:
        exact = low
    else:
        high = max(2.0 * low, 10.0)
        while gap(high) > 0:
            if high > 1e8:
                best = gap(1e12) + target
                raise DesignError(
                    f"No number of {_solve_words(design, solve_for)} reaches an MDES of "
                    f"{target:g}: even with a practically unlimited number the MDES stays at "
                    f"{best:.3f}. Add units at a higher level (usually schools) or aim for a "
                    "larger effect."
                )
            high *= 4.0
        exact = optimize.brentq(gap, low, high, xtol=1e-10, rtol=1e-12)
    required = math.ceil(exact - 1e-9)
    while gap(required) > 1e-12:  # guard against rounding at the root
        required += 1
    _, _, fields = _analyse(design, alpha, power, two_tailed, {**params, solve_for: required})
    fields.update(target_mdes=target, solved_for=solve_for, exact=float(exact))
    return PowerAnalysis(**fields)


def _lowest(design, solve_for, params, alpha, power_level, two_tailed) -> float:
    """Smallest real size allowed: the structural minimum, then at least 1 degree of freedom."""
    minimum = {
        ("ira", "pupils"): 3.0,
        ("cra3", "schools"): 1.0,
        ("bcra3f2", "blocks"): 1.0,
        ("bcra3f2", "schools"): 2.0,
    }.get((design, solve_for), 3.0 if solve_for != "pupils" else 1.0)
    if design in ("did", "cits") and solve_for == "schools":
        share = _unit_open("treated_share", params.get("treated_share", 0.5), "")
        minimum = max(minimum, 1.0 / min(share, 1.0 - share))
    probe = dict(params)
    x = minimum
    for _ in range(200):
        probe[solve_for] = x
        try:
            _analyse(design, alpha, power_level, two_tailed, probe)
            break
        except DesignError as error:
            if "degrees of freedom" not in str(error):
                raise
        x += 1.0
    else:  # pragma: no cover - df grows with every size solved for
        raise DesignError(f"No {solve_for} gives this design positive degrees of freedom.")
    # refine: the df bound is usually at a fraction between x - 1 and x
    if x > minimum:
        lo, hi = x - 1.0, x

        def ok(v: float) -> bool:
            try:
                _analyse(design, alpha, power_level, two_tailed, {**params, solve_for: v})
                return True
            except DesignError:
                return False

        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if ok(mid) else (mid, hi)
        x = hi
    return x


def schools_needed(design: str, *, mdes: float, **params) -> PowerAnalysis:
    """The number of schools needed for a target MDES: :func:`sample_size` solving for its
    default size (schools; areas in CRA3; pupils in IRA).

    Examples
    --------
    >>> from cpdimpact.planning import schools_needed
    >>> schools_needed("cra2", mdes=0.4, pupils=15, icc=0.17).required
    47
    """
    return sample_size(design, mdes=mdes, **params)


def mdes_curve(
    design: str,
    *,
    values: Sequence[float] | None = None,
    vary: str | None = None,
    alpha: float = 0.05,
    power: float = 0.80,
    two_tailed: bool = True,
    **params,
) -> pd.DataFrame:
    """MDES over a range of sizes (schools by default), everything else fixed.

    Parameters
    ----------
    design, alpha, power, two_tailed, **params
        As for :func:`mdes`; the parameter named by ``vary`` may be left out.
    values : sequence of float, optional
        Sizes to evaluate. Default: the smallest allowed size up to about twice the given one
        (or 100 when none is given).
    vary : str, optional
        ``"schools"`` (default; ``"areas"`` for CRA3, ``"pupils"`` for IRA), ``"pupils"``,
        ``"areas"`` or ``"blocks"``.

    Returns
    -------
    pandas.DataFrame
        Columns ``<vary>, mdes, ci_lower, ci_upper, df``.
    """
    design = _canonical_design(design)
    vary = _DEFAULT_SOLVE[design] if vary is None else vary
    if vary not in _COUNTS or vary not in _PARAMETERS[design]:
        raise InvalidValueError(f"vary must name a size of design {design!r}, got {vary!r}.")
    params = dict(params)
    current = params.pop(vary, None)
    if values is None:
        low = math.ceil(_lowest(design, vary, params, alpha, power, two_tailed) - 1e-9)
        top = max(2 * float(current) if current is not None else 100.0, low + 10.0)
        values = np.unique(np.round(np.linspace(low, top, 60)).astype(int))
    rows = []
    for v in values:
        r = mdes(design, alpha=alpha, power=power, two_tailed=two_tailed, **{**params, vary: v})
        rows.append((v, r.mdes, r.ci_lower, r.ci_upper, r.df))
    return pd.DataFrame(rows, columns=[vary, "mdes", "ci_lower", "ci_upper", "df"])


def plot_mdes_curve(
    design: str,
    *,
    values: Sequence[float] | None = None,
    vary: str | None = None,
    target: float | None = None,
    ax=None,
    alpha: float = 0.05,
    power: float = 0.80,
    two_tailed: bool = True,
    **params,
):
    """Plot the MDES against the number of schools (or ``vary``).

    Parameters
    ----------
    design, values, vary, alpha, power, two_tailed, **params
        As for :func:`mdes_curve`; when the varied size is also given, it is marked.
    target : float, optional
        Draw a horizontal line at this effect size (e.g. the effect hoped for).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from cpdimpact.planning import plot_mdes_curve
    >>> ax = plot_mdes_curve("cra2", pupils=60, icc=0.15, r2_pupil=0.5, target=0.2)
    >>> ax.get_xlabel()
    'Number of schools'
    """
    design = _canonical_design(design)
    vary = _DEFAULT_SOLVE[design] if vary is None else vary
    frame = mdes_curve(
        design,
        values=values,
        vary=vary,
        alpha=alpha,
        power=power,
        two_tailed=two_tailed,
        **params,
    )
    current = None
    if vary in params:
        current = (
            params[vary],
            mdes(design, alpha=alpha, power=power, two_tailed=two_tailed, **params).mdes,
        )
    return _plot(frame, vary=vary, design=design, current=current, target=target, ax=ax)


def _plot(frame, *, vary, design, current, target, ax):
    import matplotlib.pyplot as plt  # lazily: importing cpdimpact stays cheap

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    x = frame[vary].to_numpy(dtype=float)
    ax.fill_between(
        x, frame["ci_lower"], frame["ci_upper"], color="C0", alpha=0.15, label="MDES interval"
    )
    ax.plot(x, frame["mdes"], color="C0", label="MDES")
    if target is not None:
        ax.axhline(target, color="C3", linestyle="--", linewidth=1, label=f"target {target:g} SD")
    if current is not None:
        ax.plot([current[0]], [current[1]], "o", color="C1", label=f"this design ({current[0]:g})")
    words = _solve_words(design, vary)
    ax.set_xlabel(f"Number of {words}")
    ax.set_ylabel("Minimum detectable effect (pupil SD)")
    # the first few sizes have huge MDES (1 or 2 degrees of freedom): keep the useful range
    anchors = [float(frame["mdes"].median())]
    anchors += [v for v in (target, None if current is None else current[1]) if v is not None]
    ax.set_ylim(0, 1.05 * min(float(frame["ci_upper"].max()), 3.0 * max(anchors)))
    ax.set_title(f"MDES by number of {words} ({design.upper()})", fontsize="medium")
    ax.legend(fontsize="small", frameon=False)
    return ax
