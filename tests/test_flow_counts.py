"""The flow log's distinct counts (integer codes, for speed at national scale) equal pandas'
own count of distinct schools and (school, teacher) pairs under any mask."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from cpdimpact.cohort._flow import FlowRecorder

ids = st.one_of(st.none(), st.integers(0, 4), st.sampled_from(["a", "b", "07"]))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(ids, ids), min_size=1, max_size=40),
    mask=st.lists(st.booleans(), min_size=40, max_size=40),
)
def test_counts_equal_pandas_distinct_counts(rows, mask):
    pupils = pd.DataFrame(rows, columns=["school", "teacher"], dtype=object)
    keep = np.array(mask[: len(rows)])
    flow = FlowRecorder(pupils, n_schools=0, n_teachers=0)
    chosen = pupils.loc[keep]
    expected = (
        chosen["school"].nunique(),
        len(chosen[["school", "teacher"]].dropna().drop_duplicates()),
        int(keep.sum()),
    )
    assert flow._counts(keep) == expected
    # without a teacher column only schools and records are counted
    alone = FlowRecorder(pupils[["school"]], n_schools=0, n_teachers=0)
    assert alone._counts(keep) == (expected[0], 0, expected[2])
