"""Reference values for cpdimpact.did.bacon from pybacondecomp (a Python port of Stata bacondecomp).

pybacondecomp computes every 2x2 by regression (pyfixest ``feols`` with unit and period fixed
effects on each dyad's subsample) and every weight as (subsample share)^2 x (variance of the
residualised treatment in the subsample): an implementation independent of the closed-form
expressions in cpdimpact. Run in a scratch virtual environment, never a project dependency:

    python -m venv /tmp/bacon-venv
    /tmp/bacon-venv/bin/pip install pybacondecomp
    /tmp/bacon-venv/bin/python tests/reference/bacon/make_reference.py

Writes, next to this script:
  panel_never.csv, panel_always.csv   the simulated panels (inputs of the test)
  pybacondecomp_never.csv             ddetail=True: earlier/later split, never-treated units
  pybacondecomp_always.csv            ddetail=False: timing pairs pooled, always- and never-
                                      treated units (pybacondecomp's ddetail branch skips
                                      always-treated comparisons, so it is not used there)
  pybacondecomp_twfe.csv              the overall TWFE coefficient of each panel
  versions.txt
"""

from __future__ import annotations

import importlib.metadata as md
import platform
from pathlib import Path

import numpy as np
import pandas as pd
from pybacondecomp import bacondecomp

HERE = Path(__file__).resolve().parent


def simulate(seed: int, cohorts, sizes, n_never: int, n_always: int) -> pd.DataFrame:
    """Balanced panel 2010-2019; effects that grow with time since treatment, by cohort."""
    rng = np.random.default_rng(seed)
    first = np.concatenate(
        [np.repeat(cohorts, sizes), np.zeros(n_never, int), np.full(n_always, 2008)]
    )
    rows = []
    for u, g in enumerate(first):
        alpha = rng.normal(0, 2)
        slope = 0.2 + 0.1 * (g % 3)
        for t in range(2010, 2020):
            treated = g > 0 and t >= g
            effect = slope * (t - g + 1) if treated else 0.0
            y = 50 + alpha + 0.5 * (t - 2010) + effect + rng.normal()
            rows.append((u + 1, t, int(g), int(treated), y))
    return pd.DataFrame(rows, columns=["unit", "year", "first_treated", "exposed", "outcome"])


def run(panel: pd.DataFrame, ddetail: bool):
    res = bacondecomp(
        panel, "outcome", "exposed", "unit", "year", ddetail=ddetail, n_jobs=1, verbose=False
    )
    return res.dd_estimate, res.two_by_two


def main() -> None:
    never = simulate(1, [2012, 2014, 2017], [6, 11, 4], n_never=8, n_always=0)
    always = simulate(2, [2013, 2016], [7, 5], n_never=6, n_always=4)
    never.to_csv(HERE / "panel_never.csv", index=False)
    always.to_csv(HERE / "panel_always.csv", index=False)
    twfe = []
    for name, ddetail in (("never", True), ("always", False)):
        # read back the stored CSV, so the reference is computed on exactly the test's input
        est, table = run(pd.read_csv(HERE / f"panel_{name}.csv"), ddetail)
        table.to_csv(HERE / f"pybacondecomp_{name}.csv", index=False, float_format="%.15g")
        twfe.append((name, est))
    pd.DataFrame(twfe, columns=["panel", "twfe"]).to_csv(
        HERE / "pybacondecomp_twfe.csv", index=False, float_format="%.15g"
    )
    versions = [f"python {platform.python_version()}"] + [
        f"{p} {md.version(p)}" for p in ("pybacondecomp", "pyfixest", "numpy", "pandas")
    ]
    (HERE / "versions.txt").write_text("\n".join(versions) + "\n")


if __name__ == "__main__":
    main()
