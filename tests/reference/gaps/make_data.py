"""Write panel.csv: a school panel for 2017-2024 with no data in 2020 and 2021.

Run with any Python that has numpy and pandas (no cpdimpact needed):
    python tests/reference/gaps/make_data.py

Cohorts (first treated year): 2019 (reference 2018 observed), 2020 and 2021 (starts in the
gap: first observed post-start year 2022), 2022 (year before the start, 2021, in the gap:
reference 2019), 2023, and never treated (0). Effects grow with years of exposure and differ
by cohort; trends are parallel; one row per school-year.
"""

from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(20200)
n_units = 180
cohorts = rng.choice(
    [0, 2019, 2020, 2021, 2022, 2023], size=n_units, p=[0.3, 0.14, 0.14, 0.14, 0.14, 0.14]
)
level = rng.normal(0, 1, n_units)
slope = {2019: 0.15, 2020: 0.25, 2021: 0.2, 2022: 0.3, 2023: 0.1}
rows = []
for year in [2017, 2018, 2019, 2022, 2023, 2024]:
    shock = rng.normal(0, 0.3)
    for unit in range(n_units):
        g = int(cohorts[unit])
        effect = slope[g] * (year - g + 1) if g and year >= g else 0.0
        y = level[unit] + 0.08 * (year - 2017) + shock + effect + rng.normal(0, 0.5)
        rows.append((unit + 1, year, g, round(y, 6)))
frame = pd.DataFrame(rows, columns=["unit", "year", "first_treated", "y"])
frame.to_csv(Path(__file__).with_name("panel.csv"), index=False)
