"""The comparison-group stage of an evaluation: match or weight schools, then build the cohort.

The stage sits between the records and the cohort. The cohort is first built on every record,
so that the arms and the pre-period are exactly the evaluation's; the schools' pre-period
characteristics (:func:`~cpdimpact.comparison.school_characteristics`) are matched or weighted
by the evaluation's comparison spec; the cohort is then rebuilt on the schools used, and its
flow log states how many schools, teachers and pupil records the comparison design left out.
Every pupil record carries its school's weight in ``comparison_weight``.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from .errors import DesignError

__all__ = ["WEIGHT", "WEIGHT_X_PUPILS", "apply_comparison", "with_weights"]

#: Pupil-record column holding the school's matching or balancing weight.
WEIGHT = "comparison_weight"
#: Unit-year column: the weight times the unit-year's number of pupils.
WEIGHT_X_PUPILS = "comparison_weight_x_pupils"


def apply_comparison(spec, records, cohort):
    """Fit ``spec`` to the schools of ``cohort``; return the rebuilt cohort and the weights.

    Raises
    ------
    DesignError
        If the cohort's comparison arm is not made of schools that never take part (matching
        needs two fixed groups of schools).
    """
    from .cohort import unit_year_means
    from .comparison import school_characteristics

    resolved = cohort.spec  # the cohort's spec, comparison="auto" resolved on these records
    if resolved.comparison != "never_treated":
        raise DesignError(
            f"a comparison design (matching or weighting) needs a comparison arm of schools "
            f"that never take part; the cohort uses comparison={resolved.comparison!r}. "
            f"Use CohortSpec(comparison='never_treated'), or no comparison design."
        )
    treated = cohort.pupils.groupby("school")["treated"].any()
    characteristics = school_characteristics(records)
    characteristics = characteristics[characteristics["school"].isin(treated.index)].copy()
    characteristics[spec.treatment] = (
        characteristics["school"].map(treated).astype(bool).astype(int).to_numpy()
    )
    weights = spec.fit(characteristics.reset_index(drop=True))
    used = weights.weights.index[weights.weights.to_numpy() > 0]

    rebuilt = resolved.build(records.subset(used))  # markers kept: exclusions by reason

    # The flow log starts from every record again, the schools left out logged as excluded.
    full, part = cohort.flow.stages, rebuilt.flow.stages
    first = full.iloc[0]
    removed = {
        "schools": int(first["schools"] - part.iloc[0]["schools"]),
        "teachers": int(first["teachers"] - part.iloc[0]["teachers"]),
        "pupils": int(first["pupils"] - part.iloc[0]["pupils"]),
    }
    counts = weights.counts
    reason = (
        f"school not used by the comparison design ({weights.method}): "
        f"{int(counts.loc['control', 'dropped'])} comparison and "
        f"{int(counts.loc['treated', 'dropped'])} intervention schools"
    )
    stages = part.copy()
    stages.iloc[0, stages.columns.get_indexer(["schools", "teachers", "pupils"])] = [
        first["schools"],
        first["teachers"],
        first["pupils"],
    ]
    exclusion = pd.DataFrame([{"stage": "eligible", "reason": reason, **removed}])
    exclusions = (
        pd.concat([exclusion, rebuilt.flow.exclusions], ignore_index=True)
        if any(removed.values())
        else rebuilt.flow.exclusions
    )
    flow = dataclasses.replace(rebuilt.flow, stages=stages, exclusions=exclusions)

    school_weight = weights.weights
    pupils_out = rebuilt.pupils.assign(
        **{WEIGHT: rebuilt.pupils["school"].map(school_weight).to_numpy(dtype=float)}
    )
    rebuilt = dataclasses.replace(
        rebuilt, pupils=pupils_out, unit_years=with_weights(unit_year_means(pupils_out), pupils_out)
    )
    return dataclasses.replace(rebuilt, flow=flow), weights


def with_weights(frame: pd.DataFrame, pupils: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (pupil or unit-year rows) with the comparison weight columns, if it lacks
    them and the pupils carry weights."""
    if WEIGHT not in pupils.columns or WEIGHT in frame.columns and WEIGHT_X_PUPILS in frame:
        return frame
    by_school = pupils.groupby("school")[WEIGHT].first()
    out = frame.assign(**{WEIGHT: frame["school"].map(by_school).to_numpy(dtype=float)})
    if "n_pupils" in out.columns:
        out[WEIGHT_X_PUPILS] = out[WEIGHT] * out["n_pupils"]
    return out
