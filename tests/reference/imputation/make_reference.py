"""Reference values for cpdimpact.did.imputation from ``diff_diff.ImputationDiD``.

Run with the scratch environment that has diff-diff (never a cpdimpact dependency):

    /tmp/did-peers/bin/python tests/reference/imputation/make_reference.py

It writes the simulated panels (``<name>.csv``), ``reference.json`` and ``versions.txt`` next to
this script; ``mpdta`` is read from ``tests/reference/mpdta/mpdta.csv``.

What is stored per case: diff_diff's overall ATT and its analytic (Theorem 3, no leave-out)
standard error, the event study by horizon (estimate, SE, number of treated rows) and, where
asked, the BJS Test 1 lead regression. diff_diff's public ``pretrend_test(n_leads)`` drops the
lead just before treatment (it treats it as a reference period) and keeps the next ``n_leads``,
whereas BJS Test 1 and Stata's ``did_imputation, pretrends(K)`` test leads 1..K. The script
therefore calls diff_diff's own lead regression (``_compute_lead_coefficients``, the function
behind ``pretrend_test``) with event times ``-delta-K .. -delta-1`` and forms the Wald F exactly
as ``pretrend_test`` does (``F = b'V^{-1}b / K`` against ``F(K, G-1)``).

Weighted case: diff_diff takes weights only as survey ``pweight``s (constant within units); with
``cluster=`` the clusters become the survey PSUs and its variance is
``G/(G-1) * sum_c (psi_c - mean psi)^2`` over the same per-cluster sums ``psi_c`` that cpdimpact
squares and adds; the tests apply that transform to cpdimpact's ``influence``.
"""

from __future__ import annotations

import json
import platform
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from diff_diff import ImputationDiD, SurveyDesign
from scipy import stats

HERE = Path(__file__).parent
MPDTA = HERE.parent / "mpdta" / "mpdta.csv"
SEED = 20260611


# ---------------------------------------------------------------------- data
def staggered(rng: np.random.Generator, *, never: bool) -> pd.DataFrame:
    """300 units in 30 states, 2010-2019, cohorts 2013/2015/2017 (+ never-treated).

    Effects grow with event time at cohort-specific rates (heterogeneous and dynamic, so TWFE
    is biased); a time-varying covariate ``x`` correlated with cohort trends; about 6% of rows
    removed at random (an unbalanced panel); unit-constant weights ``w`` (school size).
    """
    n_units, years = 300, np.arange(2010, 2020)
    cohorts = [0, 2013, 2015, 2017] if never else [2013, 2015, 2017]
    first = rng.choice(cohorts, size=n_units)
    unit = np.repeat(np.arange(n_units), years.size)
    year = np.tile(years, n_units)
    g = first[unit]
    e = year - g
    slope = {2013: 0.25, 2015: 0.15, 2017: 0.05, 0: 0.0}
    effect = np.where((g > 0) & (e >= 0), 0.5 + (e + 1) * np.vectorize(slope.get)(g), 0.0)
    x = 0.2 * (year - 2010) * (g > 0) + rng.normal(0, 1, unit.size)
    y = (
        rng.normal(0, 1, n_units)[unit]
        + 0.1 * (year - 2010)
        + 0.4 * x
        + effect
        + rng.normal(0, 1, unit.size)
    )
    df = pd.DataFrame(
        {
            "unit": unit,
            "state": unit % 30,
            "year": year,
            "first_treated": g,
            "x": np.round(x, 6),
            "w": np.round(rng.uniform(0.5, 2.0, n_units), 4)[unit],
            "outcome": np.round(y, 6),
        }
    )
    keep = rng.random(len(df)) > 0.06
    return df[keep].reset_index(drop=True)


def pupils(rng: np.random.Generator) -> pd.DataFrame:
    """Pupil rows: 60 schools, 2015-2021, 3-12 new pupils per school-year (repeated
    cross-section within schools); cohorts 2018 and 2020 and never; school-year shocks."""
    rows = []
    first = rng.choice([0, 2018, 2020], size=60)
    school_effect = rng.normal(0, 1, 60)
    for s in range(60):
        for year in range(2015, 2022):
            shock = rng.normal(0, 0.3)
            for _ in range(int(rng.integers(3, 13))):
                g = first[s]
                e = year - g
                effect = 0.3 + 0.2 * e if g and e >= 0 else 0.0
                y = school_effect[s] + 0.05 * (year - 2015) + shock + effect + rng.normal(0, 1)
                rows.append((s, year, g, round(y, 6)))
    return pd.DataFrame(rows, columns=["school", "year", "first_treated", "outcome"])


# ---------------------------------------------------------------------- peer
def run(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    first: str,
    covariates=None,
    cluster=None,
    anticipation=0,
    leads=0,
    survey_weights=None,
) -> dict:
    est = ImputationDiD(cluster=cluster, anticipation=anticipation)
    survey = SurveyDesign(weights=survey_weights) if survey_weights else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = est.fit(
            data,
            outcome=outcome,
            unit=unit,
            time=time,
            first_treat=first,
            covariates=covariates,
            survey_design=survey,
        )
        es = res.aggregate("event_study")
    # diff_diff keeps treated rows it cannot impute with a missing effect and counts them in
    # ``n``; ``n_finite`` counts the rows with an imputed effect (those cpdimpact keeps).
    effects = res.treatment_effects
    finite = effects["tau_hat"].notna()
    n_finite = effects[finite].groupby("rel_time").size()
    horizons = [
        {
            "event_time": int(h),
            "estimate": float(b),
            "std_error": float(s),
            "n_obs": int(n),
            "n_finite": int(n_finite.get(h, 0)),
        }
        for h, b, s, n, ref in zip(es.event_time, es.att, es.se, es.n, es.is_reference, strict=True)
        if not ref
    ]
    out = {
        "options": {
            "outcome": outcome,
            "unit": unit,
            "time": time,
            "first_treated": first,
            "covariates": covariates or [],
            "cluster": cluster,
            "anticipation": anticipation,
            "weights": survey_weights,
        },
        "overall": {"estimate": float(res.overall_att), "std_error": float(res.overall_se)},
        "n_treated_obs": int(res.n_treated_obs),
        "n_treated_finite": int(finite.sum()),
        "n_untreated_obs": int(res.n_untreated_obs),
        "event_study": horizons,
        "peer_warnings": sorted({str(w.message)[:160] for w in caught}),
    }
    if leads:
        fd = est._fit_data
        df0 = fd["df"].loc[fd["omega_0_mask"]].copy()
        rel = list(range(-anticipation - leads, -anticipation))
        _, gamma, v = est._compute_lead_coefficients(
            df0, outcome, unit, time, first, covariates, fd["cluster_var"], rel
        )
        f_stat = float(gamma @ np.linalg.solve(v, gamma) / leads)
        g_clusters = int(df0[fd["cluster_var"]].nunique())
        out["pretrend"] = {
            "leads": leads,
            "event_times": rel[::-1],  # lead 1, 2, ..., K
            "estimate": gamma[::-1].tolist(),
            "std_error": np.sqrt(np.diag(v))[::-1].tolist(),
            "statistic": f_stat,
            "df": leads,
            "df_denom": g_clusters - 1,
            "p_value": float(stats.f.sf(f_stat, leads, g_clusters - 1)),
        }
    return out


def main() -> None:
    rng = np.random.default_rng(SEED)
    never = staggered(rng, never=True)
    notyet = staggered(rng, never=False)
    pupil = pupils(rng)
    for name, frame in (
        ("staggered_never", never),
        ("staggered_notyet", notyet),
        ("pupils", pupil),
    ):
        frame.to_csv(HERE / f"{name}.csv", index=False)
    # Read back what the tests read, so both sides see identical numbers.
    never = pd.read_csv(HERE / "staggered_never.csv")
    notyet = pd.read_csv(HERE / "staggered_notyet.csv")
    pupil = pd.read_csv(HERE / "pupils.csv")
    mpdta = pd.read_csv(MPDTA)
    m = {"outcome": "lemp", "unit": "countyreal", "time": "year", "first": "first_treat"}
    s = {"outcome": "outcome", "unit": "unit", "time": "year", "first": "first_treated"}
    cases = {
        "mpdta": ("mpdta", run(mpdta, **m, leads=3)),
        "mpdta_anticipation": ("mpdta", run(mpdta, **m, anticipation=1, leads=2)),
        "never": ("staggered_never", run(never, **s, leads=2)),
        "never_covariate": ("staggered_never", run(never, **s, covariates=["x"], leads=3)),
        "never_state_clusters": (
            "staggered_never",
            run(never, **s, covariates=["x"], cluster="state", leads=2),
        ),
        "never_weighted": (
            "staggered_never",
            run(never, **s, covariates=["x"], cluster="unit", survey_weights="w"),
        ),
        "notyet": ("staggered_notyet", run(notyet, **s, leads=2)),
        "pupils": (
            "pupils",
            run(
                pupil, outcome="outcome", unit="school", time="year", first="first_treated", leads=2
            ),
        ),
    }
    versions = {
        "python": platform.python_version(),
        **{p: version(p) for p in ("diff-diff", "numpy", "pandas", "scipy")},
    }
    reference = {
        "generator": "tests/reference/imputation/make_reference.py",
        "seed": SEED,
        "versions": versions,
        "cases": {name: {"data": data, **values} for name, (data, values) in cases.items()},
    }
    (HERE / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    (HERE / "versions.txt").write_text("".join(f"{k} {v}\n" for k, v in versions.items()))


if __name__ == "__main__":
    main()
