"""Simulate the small CSV inputs of the DiD reference cases (fixed seed; run from any folder).

    python tests/reference/did/make_data.py

Writes pupils_single.csv, school_years.csv, pupils_staggered.csv and pupils_unbalanced.csv next
to this script. make_reference.R reads them and writes reference.json; tests/test_did.py reads
both and never needs R.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SEED = 20240917


def pupils(rng, n_schools, years, first_treated, effect, n_areas=12, mean_pupils=14):
    """Pupil rows: different children each year (repeated cross-section within schools)."""
    school_fx = rng.normal(0, 2, n_schools)
    year_fx = dict(zip(years, np.cumsum(rng.normal(0.3, 0.5, len(years))), strict=True))
    area = rng.integers(0, n_areas, n_schools)
    rows = []
    for s in range(n_schools):
        g = first_treated[s]
        for y in years:
            n = int(rng.integers(mean_pupils - 6, mean_pupils + 7))
            prior = rng.normal(0.2 * school_fx[s], 1, n)
            e = y - g if g > 0 else None
            tau = effect(e) if e is not None and e >= 0 else 0.0
            out = 100 + school_fx[s] + year_fx[y] + tau + 2.5 * prior + rng.normal(0, 5, n)
            for p, o in zip(prior, out, strict=True):
                rows.append(
                    (
                        f"S{s:03d}",
                        f"A{area[s]:02d}",
                        y,
                        g,
                        int(e is not None and e >= 0),
                        round(p, 4),
                        round(o, 4),
                    )
                )
    return pd.DataFrame(
        rows, columns=["school", "area", "year", "first_treated", "exposed", "prior", "outcome"]
    )


def main() -> None:
    rng = np.random.default_rng(SEED)

    # 1. One start year (2019), half the schools treated, covariate prior.
    years = list(range(2016, 2022))
    ft = np.where(np.arange(44) < 22, 2019, 0)
    single = pupils(rng, 44, years, ft, lambda e: 1.5)
    single.to_csv(HERE / "pupils_single.csv", index=False)

    # 2. School-year means of case 1, to be weighted by n_pupils.
    means = single.groupby(["school", "area", "year"], as_index=False).agg(
        n_pupils=("outcome", "size"),
        outcome=("outcome", "mean"),
        prior=("prior", "mean"),
        exposed=("exposed", "first"),
        first_treated=("first_treated", "first"),
    )
    means.to_csv(HERE / "school_years.csv", index=False, float_format="%.10f")

    # 3. Staggered starts (2017, 2019) plus never treated, dynamic effects.
    years = list(range(2014, 2022))
    ft = rng.permutation(np.repeat([0, 2017, 2019], [16, 17, 17]))
    stag = pupils(rng, 50, years, ft, lambda e: 0.5 + 0.4 * e, mean_pupils=12)
    stag.to_csv(HERE / "pupils_staggered.csv", index=False)

    # 4. Unbalanced: schools miss some years (about 15% of school-years dropped, keeping at
    #    least two years per school).
    years = list(range(2016, 2022))
    ft = np.where(np.arange(46) < 20, 2019, 0)
    unb = pupils(rng, 46, years, ft, lambda e: 1.0 + 0.5 * e)
    cells = unb[["school", "year"]].drop_duplicates()
    drop = cells.sample(frac=0.15, random_state=np.random.RandomState(SEED % 2**31))
    kept = cells.merge(drop, how="left", indicator=True).query("_merge == 'left_only'")
    ok = kept.groupby("school")["year"].transform("size") >= 2
    kept = kept.loc[ok, ["school", "year"]]
    unb = unb.merge(kept, on=["school", "year"], how="inner")
    unb.to_csv(HERE / "pupils_unbalanced.csv", index=False)


if __name__ == "__main__":
    main()
