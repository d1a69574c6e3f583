"""One contract over every public result class: the faces, their signatures, alpha honoured.

The classes are found by walking the public modules' ``__all__`` for subclasses of
:class:`cpdimpact._results.ResultFaces`; a class without a fixture here fails
``test_every_public_result_class_has_a_fixture``, so a new result cannot escape the contract.
The event-study section checks that every event-study result feeds ``sensitivity()`` and the
one event-study plot.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import pkgutil
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import cpdimpact
from cpdimpact._results import (
    EstimateResult,
    EventStudyEstimates,
    ResultFaces,
    Summary,
    plot_event_study,
)
from cpdimpact.errors import CpdImpactWarning, DesignError


# --------------------------------------------------------------------------- discovery
def _public_result_classes() -> dict[str, type]:
    found = {}
    modules = [cpdimpact] + [
        importlib.import_module(m.name)
        for m in pkgutil.walk_packages(cpdimpact.__path__, "cpdimpact.")
        if not any(part.startswith("_") for part in m.name.split(".")[1:])
    ]
    for module in modules:
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if (
                inspect.isclass(obj)
                and issubclass(obj, ResultFaces)
                and not inspect.isabstract(obj)
            ):
                found[obj.__qualname__] = obj
    return found


CLASSES = _public_result_classes()


# --------------------------------------------------------------------------- data
def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


@functools.cache
def _panel() -> pd.DataFrame:
    """60 units in 30 schools and 3 areas, 2014-2021; cohorts start in 2017 and 2019."""
    rng = np.random.default_rng(7)
    units = np.arange(60)
    first = np.select([units < 20, units < 40], [2017, 2019], 0)
    rows = [(u, y) for u in units for y in range(2014, 2022)]
    frame = pd.DataFrame(rows, columns=["unit", "year"])
    frame["first_treated"] = first[frame["unit"]]
    frame["school"] = frame["unit"] // 2
    frame["area"] = frame["unit"] % 12
    exposed = (frame["first_treated"] > 0) & (frame["year"] >= frame["first_treated"])
    frame["exposed"] = exposed.astype(int)
    frame["treated"] = (frame["first_treated"] > 0).astype(int)
    frame["outcome"] = (
        0.3 * frame["unit"] % 5
        + 0.1 * (frame["year"] - 2014)
        + 0.5 * exposed
        + rng.normal(0, 1, len(frame))
    )
    return frame


@functools.cache
def _records():
    from cpdimpact.datasets import city_partnership

    return city_partnership(seed=3, scale=0.12)


@functools.cache
def _evaluation_result():
    return _quiet(cpdimpact.Evaluation(prior_bands=0).run, _records())


@functools.cache
def _cohort():
    return _evaluation_result().cohort


@functools.cache
def _staggered():
    from cpdimpact.did import StaggeredDiD

    return _quiet(StaggeredDiD(n_bootstrap=0, base_period="universal").fit, _panel())


@functools.cache
def _staggered_clustered():
    from cpdimpact.did import StaggeredDiD

    return _quiet(StaggeredDiD(n_bootstrap=0, cluster="area").fit, _panel())


@functools.cache
def _event_study():
    from cpdimpact.did import EventStudy

    return _quiet(EventStudy().fit, _panel())


@functools.cache
def _sun_abraham():
    from cpdimpact.did import SunAbraham

    return _quiet(SunAbraham(cluster="school").fit, _panel())


@functools.cache
def _imputation():
    from cpdimpact.did import ImputationDiD

    return _quiet(ImputationDiD(pretrend_leads=2).fit, _panel())


def _trial_data() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    n = 120
    t = np.repeat([0, 1], n // 2)
    return pd.DataFrame({"y": 0.3 * t + rng.normal(size=n), "t": t, "x": rng.normal(size=n)})


def _binary_trial_data() -> pd.DataFrame:
    """A pass/fail outcome in 20 schools randomised in pairs."""
    rng = np.random.default_rng(5)
    school = np.repeat(np.arange(20), 15)
    t = (school % 2).astype(float)
    x = rng.normal(size=school.size)
    eta = -0.2 + 0.5 * t + 0.7 * x + rng.normal(0, 0.5, 20)[school]
    passed = (rng.random(school.size) < 1 / (1 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"passed": passed, "t": t, "x": x, "school": school})


def _schools() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 40
    treated = np.r_[np.ones(10), np.zeros(n - 10)].astype(int)
    return pd.DataFrame(
        {
            "school": [f"s{i}" for i in range(n)],
            "treated": treated,
            "prior": rng.normal(size=n) + 0.3 * treated,
            "fsm": rng.uniform(0, 0.5, n),
        }
    )


def _areas() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n_areas, n_years = 8, 8
    y = 50 + rng.normal(size=(n_areas, 1)) * 3 + rng.normal(size=(n_areas, n_years)).cumsum(1)
    frame = pd.DataFrame(
        {
            "area": np.repeat([f"a{i}" for i in range(n_areas)], n_years),
            "year": np.tile(np.arange(2010, 2010 + n_years), n_areas),
            "outcome": y.ravel(),
        }
    )
    frame["treated"] = ((frame["area"] == "a0") & (frame["year"] >= 2015)).astype(int)
    return frame


def _spells() -> pd.DataFrame:
    """400 teachers' spells in 40 schools: whole years in post (at most 5), leaving or not."""
    rng = np.random.default_rng(8)
    n = 400
    treated = rng.integers(0, 2, n)
    years = rng.geometric(np.where(treated == 1, 0.12, 0.2))
    return pd.DataFrame(
        {
            "duration": np.minimum(years, 5),
            "event": (years <= 5).astype(int),
            "treated": treated,
            "school": rng.integers(0, 40, n),
        }
    )


def _survival(cls, **options):
    return _quiet(cls(**options).fit, _spells())


def _fixtures():
    from cpdimpact import did, effects, multilevel, planning, survival
    from cpdimpact.comparison import NearestMatching, compare_synthetic

    panel = _panel
    from conftest import TINY as tiny

    return {
        "TwfeFit": lambda: _quiet(did.DiD().fit, panel()),
        "DiDResult": lambda: _quiet(did.DiD().fit, panel()),
        "EventStudyResult": _event_study,
        "StaggeredResult": _staggered,
        "Aggregate": lambda: _staggered().aggregate("group"),
        "DynamicAggregate": lambda: _staggered().aggregate("dynamic"),
        "SunAbrahamResult": _sun_abraham,
        "ImputationResult": _imputation,
        "BaconDecomposition": lambda: _quiet(did.bacon_decomposition, panel()),
        "WildBootstrapResult": lambda: _quiet(
            did.wild_cluster_bootstrap, panel(), cluster="area", n_bootstrap=199, seed=1
        ),
        "WildAggregateResult": lambda: _quiet(
            _staggered_clustered().wild_bootstrap, "simple", n_bootstrap=199, seed=1
        ),
        "SensitivityResult": lambda: _quiet(
            did.sensitivity, _event_study(), bounds=[0.5, 1.0], breakdown=False
        ),
        "MultilevelResult": lambda: _quiet(
            multilevel.MultilevelModel(
                outcome="outcome", covariates=("prior",), groups=("school",)
            ).fit,
            _cohort().pupils,
        ),
        "MultilevelDiDResult": lambda: _quiet(multilevel.MultilevelDiD().fit, _cohort().pupils),
        "TrialResult": lambda: _quiet(
            multilevel.SimpleTrial(outcome="y", treatment="t", covariates=("x",)).fit,
            _trial_data(),
        ),
        "TrialResult[binomial]": lambda: _quiet(
            multilevel.ClusterTrial(
                outcome="passed",
                treatment="t",
                covariates=("x",),
                cluster="school",
                family="binomial",
            ).fit,
            _binary_trial_data(),
        ),
        "MultilevelDiDResult[binomial]": lambda: _quiet(
            multilevel.MultilevelDiD(covariates=("prior",), family="binomial").fit,
            _cohort().pupils.assign(
                outcome=lambda d: (d["outcome"] > d["outcome"].median()).astype(float)
            ),
        ),
        "ComparisonWeights": lambda: _quiet(
            NearestMatching(covariates=("prior", "fsm")).fit, _schools()
        ),
        "SyntheticResult": lambda: _quiet(compare_synthetic, _areas(), methods=("sdid",))["sdid"],
        "SyntheticComparison": lambda: _quiet(compare_synthetic, _areas(), methods=("sc", "did")),
        "EffectSize": lambda: effects.hedges_g(1.0, 0.5, 5.0, df=30),
        "BinaryEffectSize": lambda: effects.proportions_effect_size(
            0.65, 0.58, n_treatment=400, n_comparison=500
        ),
        "AttritionRates": lambda: effects.attrition_rates(randomised=(100, 90), analysed=(90, 80)),
        "ClusteringCorrection": lambda: effects.wwc_clustering_correction(
            0.3, n_treatment=200, n_control=200, n_clusters=20, icc=0.2
        ),
        "StudyRating": lambda: effects.wwc_study_rating(design="randomised", attrition="low"),
        "CostEstimate": lambda: effects.eef_cost(pupils=100, total=20_000),
        "PadlockAssessment": lambda: effects.propose_padlocks(
            design="randomised", mdes=0.2, attrition=0.1
        ),
        "PowerAnalysis": lambda: planning.mdes("cra2", icc=0.17, pupils=15, schools=20),
        "DiagnosisResult": lambda: _quiet(
            planning.diagnose,
            tiny,
            {"TWFE": did.DiD()},
            2,
            seed=1,
            executor="serial",
            progress=False,
        ),
        "Cohort": _cohort,
        "FlowLog": lambda: _cohort().flow,
        "DipCheck": lambda: _quiet(
            cpdimpact.cohort.check_pre_period_dip,
            cpdimpact.CohortSpec().build(
                __import__("cpdimpact.datasets", fromlist=["x"]).support_after_dip(
                    seed=0, scale=0.3
                )
            ),
        ),
        "EvaluationResult": _evaluation_result,
        "KaplanMeierResult": lambda: _survival(survival.KaplanMeier, cluster="school"),
        "CoxResult": lambda: _survival(survival.CoxModel, cluster="school"),
        "DiscreteHazardResult": lambda: _survival(survival.DiscreteTimeHazard, cluster="school"),
    }


FIXTURES = _fixtures()


@functools.cache
def _result(name: str):
    return FIXTURES[name]()


# --------------------------------------------------------------------------- the contract
def test_every_public_result_class_has_a_fixture():
    missing = sorted(set(CLASSES) - set(FIXTURES))
    assert not missing, f"public result classes without a contract fixture: {missing}"
    # the walk finds the classes the issue lists (a broken walk cannot pass vacuously)
    assert {"DiDResult", "SunAbrahamResult", "PowerAnalysis", "Cohort", "EvaluationResult"} <= set(
        CLASSES
    )


#: Other forms of a class whose faces differ (a logistic model's trial and DiD), checked too.
KINDS = {
    **CLASSES,
    **{name: CLASSES[name.partition("[")[0]] for name in FIXTURES if "[" in name},
}
NAMES = sorted(KINDS)
ESTIMATES = [n for n in NAMES if issubclass(KINDS[n], EstimateResult)]
WITH_CONF_INT = [n for n in NAMES if callable(getattr(KINDS[n], "conf_int", None))]


@pytest.mark.parametrize("name", NAMES)
def test_faces_exist_with_the_documented_signatures(name):
    cls = KINDS[name]
    res = _result(name)
    assert isinstance(res, cls)
    for face in ("summary", "to_frame", "to_dict", "plot", "_repr_html_"):
        assert callable(getattr(res, face)), face
    plot = inspect.signature(cls.plot).parameters
    assert "ax" in plot and plot["ax"].kind is inspect.Parameter.KEYWORD_ONLY
    assert plot["ax"].default is None
    for face in ("summary", "to_frame", "to_dict"):  # callable with no argument
        params = list(inspect.signature(getattr(cls, face)).parameters.values())[1:]
        assert all(p.default is not inspect.Parameter.empty for p in params), face
    if name in WITH_CONF_INT:
        alpha = inspect.signature(cls.conf_int).parameters["alpha"]
        assert alpha.default in (0.05, None)


@pytest.mark.parametrize("name", NAMES)
def test_summary_prints_and_html_and_dict_are_derived(name):
    res = _result(name)
    summary = res.summary()
    assert isinstance(summary, Summary)
    text = str(summary)
    assert text.strip() and text.splitlines()[0] == summary.title
    html = res._repr_html_()
    assert isinstance(html, str) and "<" in html
    frame = res.to_frame()
    assert isinstance(frame, pd.DataFrame)
    json.dumps(res.to_dict(), allow_nan=False)  # JSON-serialisable, no NaN or Infinity


@pytest.mark.parametrize("name", WITH_CONF_INT)
def test_conf_int_is_a_frame_by_term_that_narrows_as_alpha_grows(name):
    res = _result(name)
    if name == "BaconDecomposition":  # an exact accounting identity: it says so
        with pytest.raises(NotImplementedError, match="no confidence intervals"):
            res.conf_int(0.05)
        return
    wide, narrow = res.conf_int(0.01), res.conf_int(0.2)
    for ci in (wide, narrow):
        assert isinstance(ci, pd.DataFrame)
        assert list(ci.columns) == ["ci_lower", "ci_upper"]
        assert ci.index.name == "term" and len(ci) >= 1
        assert all(isinstance(t, str) for t in ci.index)
    pd.testing.assert_index_equal(wide.index, narrow.index)
    ok = np.isfinite(wide.to_numpy()).all(axis=1) & np.isfinite(narrow.to_numpy()).all(axis=1)
    assert ok.any()
    width_wide = (wide["ci_upper"] - wide["ci_lower"])[ok]
    width_narrow = (narrow["ci_upper"] - narrow["ci_lower"])[ok]
    assert (width_narrow <= width_wide).all() and (width_narrow < width_wide).any()


@pytest.mark.parametrize("name", ESTIMATES)
def test_to_frame_honours_alpha(name):
    res = _result(name)
    default, wide = res.to_frame(), res.to_frame(alpha=0.01)
    assert {"ci_lower", "ci_upper"} <= set(wide.columns)
    width = lambda f: (f["ci_upper"] - f["ci_lower"]).to_numpy(dtype=float)  # noqa: E731
    ok = np.isfinite(width(default)) & np.isfinite(width(wide))
    assert ok.any() and (width(wide)[ok] >= width(default)[ok]).all()
    assert (width(wide)[ok] > width(default)[ok]).any()
    if "term" in wide.columns:  # the tidy table: conf_int agrees with it
        ci = res.conf_int(0.01)
        np.testing.assert_allclose(ci["ci_lower"].to_numpy(), wide["ci_lower"].to_numpy())


NO_HEADLINE = {"EventStudyResult", "MultilevelResult", "SyntheticComparison"}


@pytest.mark.parametrize("name", ESTIMATES)
def test_headline_accessors(name):
    res = _result(name)
    if name in NO_HEADLINE:  # several estimates and none the headline: no silent pick
        assert not hasattr(res, "estimate") and not hasattr(res, "ci_lower")
        with pytest.raises(AttributeError, match="no single headline"):
            res.estimate  # noqa: B018
        return
    assert np.isfinite(res.estimate) and (np.isnan(res.std_error) or res.std_error >= 0)
    for face in ("statistic", "p_value", "ci_lower", "ci_upper"):
        assert isinstance(getattr(res, face), float), face
    if np.isfinite(res.ci_lower):
        assert res.ci_lower <= res.estimate <= res.ci_upper


@pytest.mark.parametrize("name", NAMES)
def test_plot_returns_axes_or_says_there_is_no_figure(name):
    res = _result(name)
    try:
        ax = res.plot()
    except NotImplementedError as error:
        assert "has no figure" in str(error)
        assert type(res).plot is ResultFaces.plot
    else:
        assert hasattr(ax, "get_figure")
    finally:
        plt.close("all")


# --------------------------------------------------------------------------- event studies
EVENT_STUDIES = [n for n in NAMES if issubclass(KINDS[n], EventStudyEstimates)]


def test_the_event_study_results_are_the_four_the_issue_names():
    assert set(EVENT_STUDIES) == {
        "DynamicAggregate",
        "EventStudyResult",
        "ImputationResult",
        "SunAbrahamResult",
    }


@pytest.mark.parametrize("name", EVENT_STUDIES)
def test_event_time_frame_and_covariance(name):
    res = _result(name)
    frame = res.event_time_frame()
    assert frame.index.is_monotonic_increasing
    assert {"estimate", "std_error", "ci_lower", "ci_upper", "reference", "binned"} <= set(frame)
    cov = res.event_time_cov()
    estimated = frame.loc[~frame["reference"].to_numpy(bool)]
    if "separate_test" in frame:
        estimated = estimated.loc[~estimated["separate_test"].to_numpy(bool)]
    # the covariance's diagonal is the standard errors' square, event time by event time
    np.testing.assert_allclose(
        np.sqrt(np.diag(cov.loc[estimated.index, estimated.index])),
        estimated["std_error"].to_numpy(),
        rtol=1e-10,
    )
    wide = res.event_time_frame(0.01)
    assert ((wide["ci_upper"] - wide["ci_lower"]) >= (frame["ci_upper"] - frame["ci_lower"])).all()
    ax = plot_event_study(res)
    assert ax.get_xlabel().startswith("event time")
    plt.close("all")


def test_the_event_study_line_breaks_across_a_gap():
    res = _event_study()
    frame = res.event_time_frame().drop(index=1)  # a gap at event time 1

    class Gapped(type(res)):
        def event_time_frame(self, alpha=None):
            return frame

    gapped = object.__new__(Gapped)
    gapped.__dict__.update(res.__dict__)
    ax = plot_event_study(gapped)
    times = set(frame.index.astype(float))
    lines = [  # lines through estimates (not the error bars' markers, not the axis rules)
        line
        for line in ax.get_lines()
        if len(line.get_xdata()) > 1
        and line.get_linestyle() not in ("None", "", " ")
        and set(np.asarray(line.get_xdata(), dtype=float)) <= times
    ]
    for line in lines:  # no drawn segment joins event times 0 and 2 across the gap
        x = np.asarray(line.get_xdata(), dtype=float)
        assert not np.any((x[:-1] == 0) & (x[1:] == 2))
    assert len(lines) == 2
    plt.close("all")


def _by_hand(beta, sigma, times, **options):
    from cpdimpact.did import sensitivity_from_estimates

    return sensitivity_from_estimates(beta, sigma, event_times=times, **options)


OPTIONS = {"bounds": [0.5, 1.0], "breakdown": False}


def test_sensitivity_of_an_event_study_equals_its_inputs_by_hand():
    from cpdimpact.did import sensitivity

    res = _event_study()
    coef = res.coefficients.loc[~res.coefficients["reference"]]
    beta = res.params[coef["term"]].to_numpy()
    sigma = res.cov.loc[coef["term"], coef["term"]].to_numpy()
    got = _quiet(sensitivity, res, **OPTIONS)
    want = _by_hand(beta, sigma, coef.index.to_numpy(), **OPTIONS)
    pd.testing.assert_frame_equal(got.table, want.table)


def test_sensitivity_accepts_a_sun_abraham_result():
    from cpdimpact.did import sensitivity

    res = _sun_abraham()
    es = res.event_study.loc[~res.event_study["reference"]]
    times = es["event_time"].to_numpy()
    sigma = res.event_study_cov.loc[times, times].to_numpy()
    got = _quiet(sensitivity, res, **OPTIONS)
    want = _by_hand(es["estimate"].to_numpy(), sigma, times, **OPTIONS)
    pd.testing.assert_frame_equal(got.table, want.table)
    assert got.reference == res.reference
    assert got.pre_event_times == tuple(int(t) for t in times[times < res.reference])


def test_sensitivity_of_a_dynamic_aggregate_uses_its_event_time_covariance():
    from cpdimpact.did import sensitivity

    agg = _staggered().aggregate("dynamic")
    assert agg.reference_event_time == -1
    cov = agg.event_time_cov()
    pieces = agg.pieces.set_index("event_time").drop(index=-1, errors="ignore")
    got = _quiet(sensitivity, agg, **OPTIONS)
    want = _by_hand(pieces["estimate"].to_numpy(), cov.to_numpy(), pieces.index, **OPTIONS)
    pd.testing.assert_frame_equal(got.table, want.table)
    via_fit = _quiet(sensitivity, _staggered(), **OPTIONS)
    pd.testing.assert_frame_equal(via_fit.table, want.table)


def test_sensitivity_of_an_imputation_result_uses_its_placebo_event_study():
    from cpdimpact.did import sensitivity

    res = _imputation()
    placebo = res.placebo.estimates
    times = placebo.index.to_numpy()
    got = _quiet(sensitivity, res, **OPTIONS)
    want = _by_hand(
        placebo["estimate"].to_numpy(),
        res.placebo.cov.loc[times, times].to_numpy(),
        times,
        **OPTIONS,
    )
    pd.testing.assert_frame_equal(got.table, want.table)
    assert got.reference == res.placebo.reference == -1
    # without a placebo event study (pretrend_leads < 2) the refusal says how to get one
    from cpdimpact.did import ImputationDiD

    with pytest.raises(DesignError, match="pretrend_leads"):
        sensitivity(_quiet(ImputationDiD().fit, _panel()), **OPTIONS)


def test_plot_event_study_refuses_other_results():
    from cpdimpact.errors import ArgumentTypeError

    with pytest.raises(ArgumentTypeError, match="event-study result"):
        plot_event_study(_staggered().aggregate("group"))
