"""Simulate the small CSV panels of the CR2 reference cases (fixed seed; run from any folder).

    python tests/reference/cr2/make_data.py

Writes school_years.csv, school_years_unbalanced.csv, pupils.csv, singular.csv,
near_singular.csv and near_singular_weighted.csv next to this script. make_reference.R reads them and writes reference.json; tests/test_cr2.py reads both and
never needs R.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SEED = 20250211

#: Schools per area: few, unequal clusters (the setting CR2 is for).
AREA_SIZES = (1, 1, 2, 2, 3, 3, 4, 6, 8)


def school_years(rng, years, first_by_area, effect):
    """One row per school-year; area-year shocks make errors correlated within areas."""
    area = np.repeat(np.arange(len(AREA_SIZES)), AREA_SIZES)
    n_schools = area.size
    school_fx = rng.normal(0, 2, n_schools)
    year_fx = dict(zip(years, np.cumsum(rng.normal(0.3, 0.5, len(years))), strict=True))
    area_year = rng.normal(0, 0.8, (len(AREA_SIZES), len(years)))
    rows = []
    for s in range(n_schools):
        g = first_by_area[area[s]]
        for j, y in enumerate(years):
            e = y - g if g > 0 else None
            tau = effect(e) if e is not None and e >= 0 else 0.0
            x = rng.normal(0.1 * school_fx[s], 1)
            n_pupils = int(rng.integers(8, 40))
            out = (
                100
                + school_fx[s]
                + year_fx[y]
                + tau
                + 0.8 * x
                + area_year[area[s], j]
                + rng.normal(0, 3 / np.sqrt(n_pupils))
            )
            rows.append(
                (
                    f"S{s:02d}",
                    f"A{area[s]}",
                    y,
                    g,
                    int(e is not None and e >= 0),
                    round(x, 6),
                    n_pupils,
                    round(out, 6),
                )
            )
    columns = ["school", "area", "year", "first_treated", "exposed", "x", "n_pupils", "outcome"]
    return pd.DataFrame(rows, columns=columns)


def pupils(rng, years, first_by_area, sizes, effect):
    """Pupil rows, different children each year (repeated cross-section within schools)."""
    area = np.repeat(np.arange(len(sizes)), sizes)
    n_schools = area.size
    school_fx = rng.normal(0, 2, n_schools)
    year_fx = dict(zip(years, np.cumsum(rng.normal(0.3, 0.5, len(years))), strict=True))
    area_year = rng.normal(0, 1.0, (len(sizes), len(years)))
    rows = []
    for s in range(n_schools):
        g = first_by_area[area[s]]
        for j, y in enumerate(years):
            n = int(rng.integers(3, 13))
            prior = rng.normal(0.2 * school_fx[s], 1, n)
            weight = rng.uniform(0.5, 2.0, n)
            e = y - g if g > 0 else None
            tau = effect(e) if e is not None and e >= 0 else 0.0
            out = (
                100
                + school_fx[s]
                + year_fx[y]
                + tau
                + 2.5 * prior
                + area_year[area[s], j]
                + rng.normal(0, 4, n)
            )
            for p, w, o in zip(prior, weight, out, strict=True):
                rows.append(
                    (
                        f"S{s:02d}",
                        f"A{area[s]}",
                        y,
                        g,
                        int(e is not None and e >= 0),
                        round(p, 6),
                        round(w, 6),
                        round(o, 6),
                    )
                )
    columns = ["school", "area", "year", "first_treated", "exposed", "prior", "w", "outcome"]
    return pd.DataFrame(rows, columns=columns)


# Two tiny designs found by a search over random designs: a cluster whose G_g is singular in
# some directions and *nearly* singular (eigenvalue ~1e-6) in another, so A_g inflates that
# direction ~1000-fold and the Satterthwaite sums cancel heavily. Written literally.
NEAR_SINGULAR = """\
school,area,year,exposed,x,outcome
U0,C0,2016,0,0.10316,1.430332
U0,C0,2016,0,-1.961971,-0.28772
U0,C0,2017,0,-0.474632,0.610977
U0,C0,2017,0,0.242869,0.750928
U0,C0,2018,1,0.121586,0.547653
U0,C0,2018,1,-0.885605,0.727095
U0,C0,2019,1,0.280664,2.10033
U0,C0,2020,1,-1.541776,-1.604288
U0,C0,2020,1,1.121969,-0.229971
U1,C0,2016,0,-0.384853,-1.06177
U1,C0,2016,0,-0.058819,0.837287
U1,C0,2018,1,-0.56292,0.635009
U1,C0,2019,1,0.352203,-1.051253
U1,C0,2020,1,-0.247255,-1.321841
U1,C0,2020,1,-0.216845,0.955465
U2,C0,2016,0,0.270738,-0.011441
U2,C0,2016,0,-2.899964,-0.148407
U2,C0,2017,0,0.033881,-2.732084
U2,C0,2017,0,0.021116,-1.730912
U2,C0,2018,0,0.259721,0.239584
U2,C0,2018,0,0.627395,-1.149429
U2,C0,2019,0,1.896222,-0.389251
U2,C0,2020,0,-1.37418,0.377699
U2,C0,2020,0,-0.327807,0.434873
U3,C1,2016,0,0.611806,-0.834302
U3,C1,2018,0,-0.747211,-0.721081
U3,C1,2018,0,-0.739342,2.019163
U3,C1,2019,0,0.290497,-1.597323
U3,C1,2020,0,0.637142,-0.00615
"""

NEAR_SINGULAR_WEIGHTED = """\
school,area,year,exposed,x,outcome,w
U0,C0,2016,0,-0.534714,0.893364,2.088925
U0,C0,2017,1,0.114845,0.306595,2.088925
U0,C0,2017,1,0.047414,-0.431776,2.088925
U0,C0,2018,1,1.020884,0.036781,2.088925
U1,C1,2016,0,1.089928,0.824389,1.963383
U1,C1,2016,0,-1.547119,2.114691,1.963383
U1,C1,2017,0,0.756996,0.573884,1.963383
U1,C1,2017,0,2.168174,0.423036,1.963383
U1,C1,2018,0,-1.140236,0.498937,1.963383
U1,C1,2018,0,-0.445862,-0.761774,1.963383
U2,C1,2016,0,-0.513993,1.272605,1.989074
U2,C1,2017,0,0.410562,-0.370606,1.989074
U2,C1,2018,0,0.727224,0.942725,1.989074
U2,C1,2018,0,-1.260123,0.385651,1.989074
"""


def main() -> None:
    rng = np.random.default_rng(SEED)

    # 1. School-year panel: 30 schools in 9 unequal areas, 2015-2021, four areas from 2018.
    years = list(range(2015, 2022))
    first = {0: 2018, 1: 0, 2: 0, 3: 2018, 4: 0, 5: 2018, 6: 0, 7: 0, 8: 2018}
    panel = school_years(rng, years, first, lambda e: 1.0 + 0.3 * e)
    panel.to_csv(HERE / "school_years.csv", index=False)

    # 2. The same design with about 15% of school-years missing (each school kept >= 2 years).
    unb = school_years(rng, years, first, lambda e: 1.0 + 0.3 * e)
    keep = rng.random(len(unb)) > 0.15
    unb = unb.loc[keep]
    unb = unb.loc[unb.groupby("school")["year"].transform("size") >= 2]
    unb.to_csv(HERE / "school_years_unbalanced.csv", index=False)

    # 3. Pupil rows: 24 schools in 7 areas (sizes 1-8), 2017-2021, pupil weights.
    sizes = (1, 2, 2, 3, 4, 4, 8)
    first = {0: 2019, 1: 0, 2: 2019, 3: 0, 4: 0, 5: 2019, 6: 0}
    pup = pupils(rng, list(range(2017, 2022)), first, sizes, lambda e: 1.5)
    pup.to_csv(HERE / "pupils.csv", index=False)

    # 4. Staggered starts: area A0 alone starts in 2016, so only its schools reach event time 5
    #    and I - H_gg is singular for that cluster beyond its fixed effects.
    first = {0: 2016, 1: 0, 2: 2019, 3: 0, 4: 2019, 5: 0, 6: 2019, 7: 0, 8: 0}
    sing = school_years(rng, years, first, lambda e: 0.5 + 0.2 * e)
    sing.to_csv(HERE / "singular.csv", index=False)

    (HERE / "near_singular.csv").write_text(NEAR_SINGULAR)
    (HERE / "near_singular_weighted.csv").write_text(NEAR_SINGULAR_WEIGHTED)


if __name__ == "__main__":
    main()
