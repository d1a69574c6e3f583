"""Reference prediction intervals from scpi-pkg (Cattaneo, Feng, Palomba & Titiunik).

Run in a scratch environment, never in the project's:

    python3.11 -m venv /tmp/peer-scpi && /tmp/peer-scpi/bin/pip install scpi-pkg
    /tmp/peer-scpi/bin/python tests/reference/scpi/scpi_reference.py [SIMS]

Writes, for each example, ``scpi_<name>_weights.csv`` (donor weights) and
``scpi_<name>_bounds.csv`` (per post-period year: the synthetic outcome, the in-sample bounds and
the in+out-of-sample bounds for e_method gaussian, ls and qreg) and ``scpi_<name>.json`` (the
settings and the tuning quantities scpi chose: rho, the number of simulations, versions).

Settings: simplex weights on the outcome path only (features = outcome, no covariates,
constant=False, cointegrated_data=False), V = identity, u_missp=True, u_order=1, u_lags=0,
u_sigma="HC1", e_order=1, e_lags=0, rho="type-2" (scpi's default), rho_max=0.2,
u_alpha = e_alpha = 0.05, one core.
"""

import json
import sys
from importlib.metadata import version
from pathlib import Path
from warnings import filterwarnings

import numpy
import pandas
from scpi_pkg.scdata import scdata
from scpi_pkg.scest import scest
from scpi_pkg.scpi import scpi

filterwarnings("ignore")
HERE = Path(__file__).resolve().parent
SIMS = int(sys.argv[1]) if len(sys.argv) > 1 else 5000


def run(name, frame, *, unit, time, outcome, treated, pre, post, seed):
    donors = sorted(u for u in frame[unit].unique() if u != treated)
    prep = scdata(
        df=frame,
        id_var=unit,
        time_var=time,
        outcome_var=outcome,
        period_pre=pre,
        period_post=post,
        unit_tr=treated,
        unit_co=donors,
        features=None,
        cov_adj=None,
        cointegrated_data=False,
        constant=False,
    )
    est = scest(prep, w_constr={"name": "simplex"})
    numpy.random.seed(seed)  # noqa: NPY002 - scpi draws from numpy's global stream
    pi = scpi(
        prep,
        w_constr={"name": "simplex"},
        sims=SIMS,
        u_missp=True,
        u_order=1,
        u_lags=0,
        u_sigma="HC1",
        e_method="all",
        e_order=1,
        e_lags=0,
        u_alpha=0.05,
        e_alpha=0.05,
        cores=1,
        verbose=False,
    )
    w = pi.w.iloc[:, 0]
    weights = pandas.DataFrame({"donor": [str(i[-1]) for i in w.index], "weight": w.to_numpy()})
    weights.to_csv(HERE / f"scpi_{name}_weights.csv", index=False)
    years = [int(t) for t in pi.Y_post_fit.index.get_level_values(-1)]
    out = pandas.DataFrame(
        {
            "year": years,
            "treated": prep.Y_post.to_numpy().ravel(),
            "synthetic": pi.Y_post_fit.to_numpy().ravel(),
            "in_lower": pi.CI_in_sample["Lower"].to_numpy(),
            "in_upper": pi.CI_in_sample["Upper"].to_numpy(),
        }
    )
    for label, ci in (
        ("gaussian", pi.CI_all_gaussian),
        ("ls", pi.CI_all_ls),
        ("qreg", pi.CI_all_qreg),
    ):
        out[f"{label}_lower"] = ci["Lower"].to_numpy()
        out[f"{label}_upper"] = ci["Upper"].to_numpy()
    out.to_csv(HERE / f"scpi_{name}_bounds.csv", index=False, float_format="%.10g")
    est_w = est.w.iloc[:, 0].to_numpy()
    meta = {
        "scpi_pkg": version("scpi_pkg"),
        "numpy": numpy.__version__,
        "sims": SIMS,
        "seed": seed,
        "treated": treated,
        "pre_years": [int(t) for t in pre],
        "post_years": [int(t) for t in post],
        "rho": float(list(pi.rho.values())[0]) if isinstance(pi.rho, dict) else float(pi.rho),
        "failed_sims_percent": pi.failed_sims.to_numpy().tolist(),
        "scest_equals_scpi_weights": bool(numpy.allclose(est_w, w.to_numpy())),
    }
    (HERE / f"scpi_{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(name, "done", meta["rho"])


germany = pandas.read_csv(HERE / "scpi_germany.csv")
run(
    "germany",
    germany,
    unit="country",
    time="year",
    outcome="gdp",
    treated="West Germany",
    pre=numpy.arange(1960, 1991),
    post=numpy.arange(1991, 2004),
    seed=8894,
)
prop99 = pandas.read_csv(HERE.parent / "synthetic" / "california_prop99.csv", sep=";")
run(
    "prop99",
    prop99,
    unit="State",
    time="Year",
    outcome="PacksPerCapita",
    treated="California",
    pre=numpy.arange(1970, 1989),
    post=numpy.arange(1989, 2001),
    seed=8895,
)
# Few pre-years: Prop 99 with only 1986-1988 before the start (3 pre-years, 38 donors).
run(
    "prop99_3pre",
    prop99[prop99["Year"] >= 1986],
    unit="State",
    time="Year",
    outcome="PacksPerCapita",
    treated="California",
    pre=numpy.arange(1986, 1989),
    post=numpy.arange(1989, 2001),
    seed=8896,
)
