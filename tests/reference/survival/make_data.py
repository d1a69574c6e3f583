"""Write spells.csv: the teacher spells every survival reference is computed on.

Run from this folder with any Python that has numpy and pandas:
``python make_data.py``. The data are fixed by the seed; the outputs beside them come from
``survival_reference.R`` (R survival), ``lifelines_reference.py`` and
``statsmodels_reference.py`` (see README.md).
"""

import numpy as np
import pandas as pd

rng = np.random.default_rng(20261207)
n_schools, n = 60, 720
school = rng.integers(1, n_schools + 1, n)
school_effect = rng.normal(0, 0.35, n_schools + 1)[school]
experience = rng.integers(0, 25, n)
senior = (rng.random(n) < 0.2 + 0.01 * experience).astype(int)
# participation more likely in some schools and for less experienced teachers
p = 1 / (1 + np.exp(-(-0.3 + 0.4 * (school % 3 == 0) - 0.05 * (experience - 12))))
treated = (rng.random(n) < p).astype(int)
rate = 0.18 * np.exp(-0.35 * treated + 0.02 * experience - 0.3 * senior + school_effect)
exact = rng.exponential(1 / rate)
follow = rng.uniform(0.5, 7.0, n)  # administrative censoring
years_exact = np.round(np.minimum(exact, follow), 6)
assert np.unique(years_exact).size == n  # no ties: lifelines' robust variance ignores them
left = (exact <= follow).astype(int)
years = np.maximum(np.ceil(years_exact), 1).astype(int)  # census years in post
weight = np.where(treated == 1, 1.0, np.round(rng.uniform(0.2, 2.5, n), 3))
frame = pd.DataFrame(
    {
        "teacher": np.arange(1, n + 1),
        "school": school,
        "treated": treated,
        "experience": experience,
        "senior": senior,
        "years": years,
        "years_exact": years_exact,
        "left": left,
        "weight": weight,
        "count": rng.integers(1, 4, n),
    }
)
frame.to_csv("spells.csv", index=False)
