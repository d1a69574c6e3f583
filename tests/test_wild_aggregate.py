"""Bootstrap inference for the staggered DiD aggregates.

Part 1: the multiplier-bootstrap engine of ``StaggeredDiD`` (``cpdimpact.did._multiplier``):
Mammen weights, exact products against a naive float64 product with the same weights,
aggregates' replicates by projection equal to direct ones, independence of thread counts.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpdimpact.did import StaggeredDiD
from cpdimpact.did import _multiplier as mult

KINDS = ("simple", "dynamic", "group", "calendar")


def staggered_panel(n_units=400, n_periods=7, n_areas=None, seed=0) -> pd.DataFrame:
    """Balanced panel, cohorts first treated in 3, 4, 5 and never, effects growing with
    exposure; ``area`` groups units (area shocks) when ``n_areas`` is given."""
    rng = np.random.default_rng(seed)
    first = rng.choice([0, 3, 4, 5], n_units, p=[0.4, 0.2, 0.2, 0.2])
    unit = np.repeat(np.arange(n_units), n_periods)
    t = np.tile(np.arange(1, n_periods + 1), n_units)
    g = np.repeat(first, n_periods)
    y = np.repeat(rng.normal(size=n_units), n_periods) + 0.1 * t + rng.normal(size=len(t))
    y += np.where((g > 0) & (t >= g), 0.5 + 0.2 * (t - g), 0.0)
    frame = pd.DataFrame({"unit": unit, "year": t, "first_treated": g, "outcome": y})
    if n_areas:
        frame["area"] = frame["unit"] % n_areas
        frame["outcome"] += rng.normal(size=(n_areas, n_periods))[frame["area"], t - 1]
    return frame


def aggregate_influence(res, kind):
    agg = res.aggregate(kind)
    columns = [agg.influence]
    if agg.piece_influence is not None:
        columns.append(agg.piece_influence)
    return np.column_stack(columns)


# ---------------------------------------------------------------------- weights and products
def test_mammen_weights_two_points_with_the_right_probability():
    n, draws = 300, 4000
    boot = mult._Bootstrap(draws, 11, None, n)
    weights = boot._replicates(np.eye(n), mult._Layout.of(None, n)) * np.sqrt(n)
    low, high = mult._MAMMEN
    is_low = np.abs(weights - low) < 1e-12
    assert (is_low | (np.abs(weights - high) < 1e-12)).all()
    p = (np.sqrt(5) + 1) / (2 * np.sqrt(5))
    assert mult._THRESHOLD / 2**32 == pytest.approx(p, abs=2**-33)
    share = is_low.mean()
    assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / weights.size)  # 4 Monte Carlo SEs
    assert abs(weights.mean()) < 4 / np.sqrt(weights.size)
    assert weights.var() == pytest.approx(1.0, abs=4 * np.sqrt(2 / weights.size) * 1.5)
    # Weights are independent across units: the correlation of neighbours is noise.
    assert abs(np.corrcoef(weights[:, :-1].ravel(), weights[:, 1:].ravel())[0, 1]) < 0.01


@pytest.mark.parametrize("cluster", [None, "area"])
def test_replicates_equal_a_naive_float64_product_with_the_same_weights(cluster):
    data = staggered_panel(n_units=240, n_areas=12)
    res = StaggeredDiD(n_bootstrap=257, seed=4, cluster=cluster).fit(data)
    boot = res.bootstrap
    layout = boot._cache["layout"]
    g = layout.size
    # The weight of every unit (or cluster) under the fit's layout, one row per draw.
    weights = boot._replicates(np.eye(g), layout) * np.sqrt(g)
    units = boot._units(res.influence)
    naive = weights @ units / np.sqrt(g)
    fast = boot.draws(res.influence)
    np.testing.assert_allclose(fast, naive, rtol=0, atol=1e-10 * np.abs(naive).max())
    # The cells' standard errors are the IQR-based SEs of those replicates.
    se, _ = mult._inference(res.influence, boot, 0.05)
    np.testing.assert_allclose(se, res.group_time["std_error"], rtol=1e-12)


@pytest.mark.parametrize("control_group", ["never_treated", "not_yet_treated"])
@pytest.mark.parametrize("cluster", [None, "area"])
def test_aggregates_by_projection_equal_direct_replicates(control_group, cluster):
    data = staggered_panel(n_units=300, n_areas=15, seed=1)
    spec = StaggeredDiD(n_bootstrap=199, seed=9, control_group=control_group, cluster=cluster)
    res = spec.fit(data)
    boot = res.bootstrap
    basis, layout = boot._cache["basis"], boot._cache["layout"]
    assert basis.n_blocks == 4  # three cohorts and the never treated
    for kind in KINDS:
        psi = aggregate_influence(res, kind)
        assert basis.coefficients(psi) is not None, kind  # in the span: no second pass
        direct = boot._replicates(boot._units(psi), layout)
        np.testing.assert_allclose(
            boot.draws(psi), direct, rtol=0, atol=1e-9 * np.abs(direct).max(), err_msg=kind
        )


def test_influence_outside_the_span_is_bootstrapped_with_the_same_weights():
    data = staggered_panel(n_units=200)
    res = StaggeredDiD(n_bootstrap=99, seed=2).fit(data)
    boot = res.bootstrap
    other = np.random.default_rng(0).normal(size=(res.n_units, 2))
    assert boot._cache["basis"].coefficients(other) is None
    layout = boot._cache["layout"]
    weights = boot._replicates(np.eye(res.n_units), layout) * np.sqrt(res.n_units)
    np.testing.assert_allclose(
        boot.draws(other), weights @ other / np.sqrt(res.n_units), rtol=0, atol=1e-12
    )


def test_aggregate_results_do_not_depend_on_the_order_of_calls():
    data = staggered_panel(n_units=200)
    spec = StaggeredDiD(n_bootstrap=199, seed=3)
    first, second = spec.fit(data), spec.fit(data)
    ahead = {kind: first.aggregate(kind).to_frame() for kind in KINDS}
    for kind in reversed(KINDS):
        pd.testing.assert_frame_equal(second.aggregate(kind).to_frame(), ahead[kind])


def test_pickled_result_drops_the_cache_and_reproduces_the_aggregates():
    data = staggered_panel(n_units=200)
    res = StaggeredDiD(n_bootstrap=199, seed=3).fit(data)
    dynamic = res.aggregate("dynamic").to_frame()
    again = pickle.loads(pickle.dumps(res))
    assert set(again.bootstrap._cache) == {"layout"}
    pd.testing.assert_frame_equal(again.group_time, res.group_time)
    # Without the basis the aggregate is bootstrapped directly: same weights, same SEs.
    np.testing.assert_allclose(
        again.aggregate("dynamic").to_frame()["std_error"], dynamic["std_error"], rtol=1e-9
    )


_HASH_SCRIPT = """
import hashlib, sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_wild_aggregate import staggered_panel
from cpdimpact.did import StaggeredDiD
res = StaggeredDiD(n_bootstrap=199, seed=5).fit(staggered_panel(n_units=3000))
parts = [res.group_time[["std_error", "band_lower"]].to_numpy()]
for kind in ("simple", "dynamic"):
    parts.append(res.aggregate(kind).to_frame()["std_error"].to_numpy())
print(hashlib.sha1(b"".join(np.ascontiguousarray(p).tobytes() for p in parts)).hexdigest())
"""


def test_bit_identical_with_one_blas_thread_and_the_default():
    script = _HASH_SCRIPT.format(tests=str(Path(__file__).parent))
    single = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
        ).stdout.strip()
        for env in (single, dict(os.environ))
    }
    assert len(digests) == 1
