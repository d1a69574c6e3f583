"""Write ``ehec_eventstudy.csv``: the HonestDiD README's TWFE event study, by cpdimpact.

Run with the project's venv, from the repository root:

    .venv/bin/python tests/reference/honest/make_inputs.py

As the README: years before 2016, the 2015 cohort dropped, D = 1 for the 2014 cohort,
``dins ~ i(year, D, ref = 2013) | stfips + year`` clustered by state (fixest's small-sample
factor, which cpdimpact's EventStudy uses).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from cpdimpact.did import EventStudy

HERE = Path(__file__).parent


def ehec_event_study():
    data = pd.read_csv(HERE / "ehec.csv")
    data = data[(data["year"] < 2016) & (data["yexp2"].isna() | (data["yexp2"] != 2015))].copy()
    data["first_treated"] = np.where(data["yexp2"] == 2014, 2014, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few treated clusters: known, as in the README
        return EventStudy(outcome="dins", unit="stfips", time="year", cluster="stfips").fit(data)


def main():
    res = ehec_event_study()
    coef = res.coefficients[~res.coefficients["reference"]]
    terms = coef["term"].tolist()
    sigma = res.cov.loc[terms, terms].to_numpy()
    frame = pd.DataFrame(sigma, columns=[f"sigma_{i + 1}" for i in range(len(terms))])
    frame.insert(0, "betahat", res.params.loc[terms].to_numpy())
    frame.insert(0, "event_time", coef.index.to_numpy())
    frame.to_csv(HERE / "ehec_eventstudy.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
