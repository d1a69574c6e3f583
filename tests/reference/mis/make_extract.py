"""Write a pupil-level extract the way DfE and school MIS write it, and its clean twin.

Run from the repository root: ``python tests/reference/mis/make_extract.py``. The data are
simulated (``cpdimpact.datasets.city_partnership(seed=1, scale=0.05)``: 8 schools, 2017-2023,
programme from 2020/21); the script is deterministic and the files it writes are committed.

``extract/`` holds the four tables as an evaluator receives them:

- ``pupils.csv`` (cp1252, CRLF, as Excel saves "CSV" on English Windows): academic years
  (``2018/19``), KS2 scores with ``SUPP`` (one school's 2019 results suppressed), ``A``
  (absent) and empty cells, KS1 prior attainment with ``NA`` (not applicable), ``Y``/``N``,
  ``TRUE``/``FALSE`` and ``1``/``0`` flags, school names with accents and an en dash;
- ``participation.csv`` (UTF-8 with a byte-order mark, CRLF): the enrolment spreadsheet, with
  day-first start dates (``01/09/2020``);
- ``schools.csv`` (UTF-8, LF): free-school-meal shares as percentages (``33.1%``);
- ``teachers.csv`` (cp1252, LF).

``clean/`` holds the same tables, same columns, written by pandas with the values an evaluator
would otherwise clean by hand: test years (2019), 1/0 flags, the first affected test year (2021)
as the start, shares as proportions, and every marked or empty cell missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cpdimpact.datasets import city_partnership

HERE = Path(__file__).resolve().parent
NAMES = [
    "St Mary's C of E (Aided) – Café",
    "Ysgol Gymraeg Bro Dinefwr",
    "Oakfield Primary School",
    "Sainte-Thérèse Catholic Primary",
    "Lime Tree Academy",
    "Brontë Community Primary",
    "Greenway Junior School",
    "Æthelstan Infants' School",
]
#: Start dates by strand: every one in academic year 2020/21 before 1 April (first affected
#: tests: summer 2021, the simulated start_year).
STARTS = {"whole_school": "01/09/2020", "teacher_educator": "05/10/2020", "headship": "15/01/2021"}
COLUMNS = {
    "pupil": "UPN",
    "school": "URN",
    "teacher": "TEACHER_ID",
    "year": "ACADEMIC_YEAR",
    "outcome": "KS2_MATHS_SCORE",
    "prior": "KS1_PRIOR",
    "fsm": "FSM_ELIGIBLE",
    "sen": "SEN",
    "eal": "EAL",
    "sex": "GENDER",
    "strand": "STRAND",
    "start_year": "START_DATE",
    "dose_hours": "HOURS",
    "area": "LA",
    "phase": "PHASE",
    "size": "NOR",
    "fsm_share": "FSM_PCT",
    "years_service": "YEARS_SERVICE",
}


def tables() -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(extract, clean): the four tables as text cells, and as clean values."""
    records = city_partnership(seed=1, scale=0.05)
    if set(records.participation["start_year"]) != {2021}:
        raise RuntimeError("the start dates below assume every start_year is 2021")
    rng = np.random.default_rng(20190901)
    names = dict(zip(records.schools["school"], NAMES, strict=True))

    pupils = records.pupils
    n = len(pupils)
    suppressed = (pupils["school"] == records.schools["school"].iloc[1]) & (pupils["year"] == 2019)
    absent = ~suppressed & (rng.random(n) < 0.03)
    empty = ~suppressed & ~absent & (rng.random(n) < 0.005)
    not_applicable = rng.random(n) < 0.01
    score = pupils["outcome"].map(repr)
    score = score.mask(suppressed, "SUPP").mask(absent, "A").mask(empty, "")
    prior = pupils["prior"].map(repr).mask(not_applicable, "NA")
    yes_no = {1: "Y", 0: "N"}
    true_false = {1: "TRUE", 0: "FALSE"}
    extract_pupils = pd.DataFrame(
        {
            "UPN": pupils["pupil"],
            "URN": pupils["school"],
            "SCHOOL_NAME": pupils["school"].map(names),
            "TEACHER_ID": pupils["teacher"],
            "ACADEMIC_YEAR": [f"{y - 1}/{str(y)[2:]}" for y in pupils["year"]],
            "KS2_MATHS_SCORE": score,
            "KS1_PRIOR": prior,
            "FSM_ELIGIBLE": pupils["fsm"].map(yes_no),
            "SEN": pupils["sen"].map(true_false),
            "EAL": pupils["eal"],
            "GENDER": pupils["sex"],
        }
    )
    clean_pupils = extract_pupils.assign(
        ACADEMIC_YEAR=pupils["year"],
        KS2_MATHS_SCORE=pupils["outcome"].mask(suppressed | absent | empty),
        KS1_PRIOR=pupils["prior"].mask(not_applicable),
        FSM_ELIGIBLE=pupils["fsm"],
        SEN=pupils["sen"],
    )

    part = records.participation
    extract_part = pd.DataFrame(
        {
            "URN": part["school"],
            "SCHOOL_NAME": part["school"].map(names),
            "TEACHER_ID": part["teacher"],
            "STRAND": part["strand"],
            "START_DATE": part["strand"].map(STARTS),
            "HOURS": part["dose_hours"],
        }
    )
    clean_part = extract_part.assign(START_DATE=part["start_year"])

    schools = records.schools
    extract_schools = pd.DataFrame(
        {
            "URN": schools["school"],
            "SCHOOL_NAME": schools["school"].map(names),
            "LA": schools["area"],
            "PHASE": schools["phase"],
            "NOR": schools["size"],
            "FSM_PCT": [f"{100 * v:.1f}%" for v in schools["fsm_share"]],
        }
    )
    clean_schools = extract_schools.assign(FSM_PCT=schools["fsm_share"])

    teachers = records.teachers.rename(
        columns={"teacher": "TEACHER_ID", "school": "URN", "years_service": "YEARS_SERVICE"}
    )
    extract = {
        "pupils": extract_pupils,
        "participation": extract_part,
        "schools": extract_schools,
        "teachers": teachers,
    }
    clean = {
        "pupils": clean_pupils,
        "participation": clean_part,
        "schools": clean_schools,
        "teachers": teachers,
    }
    return extract, clean


#: How each extract file is written: (encoding, line end).
WRITTEN = {
    "pupils": ("cp1252", "\r\n"),
    "participation": ("utf-8-sig", "\r\n"),
    "schools": ("utf-8", "\n"),
    "teachers": ("cp1252", "\n"),
}


def main() -> None:
    extract, clean = tables()
    for folder in ("extract", "clean"):
        (HERE / folder).mkdir(exist_ok=True)
    for name, frame in extract.items():
        encoding, end = WRITTEN[name]
        text = frame.to_csv(index=False, lineterminator=end)
        (HERE / "extract" / f"{name}.csv").write_bytes(text.encode(encoding))
    for name, frame in clean.items():
        frame.to_csv(HERE / "clean" / f"{name}.csv", index=False, lineterminator="\n")


if __name__ == "__main__":
    main()
