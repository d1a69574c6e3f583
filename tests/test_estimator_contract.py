"""Every public estimator keeps the contract of :mod:`cpdimpact.estimator`.

It satisfies the :class:`~cpdimpact.estimator.Estimator` protocol with ``data_level`` and
``effect_scale`` as class variables, describes itself in plain words, accepts every old spelling
of an option with one warning and the same spec, and refuses an inference option its family
does not take with an error naming the estimator and its choices.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from cpdimpact.comparison import SyntheticControl, SyntheticDiD
from cpdimpact.did import DiD, EventStudy, ImputationDiD, StaggeredDiD, SunAbraham
from cpdimpact.errors import CpdImpactWarning, DeprecatedOptionWarning, InvalidArgumentError
from cpdimpact.estimator import (
    DATA_LEVELS,
    EFFECT_SCALES,
    INFERENCE,
    ClusterRobust,
    Estimator,
    ModelBased,
    MultiplierBootstrap,
    WildBootstrap,
)
from cpdimpact.multilevel import (
    ClusterTrial,
    MultilevelDiD,
    MultilevelModel,
    MultisiteTrial,
    SimpleTrial,
)
from cpdimpact.survival import CoxModel, DiscreteTimeHazard, KaplanMeier

TRIAL = {"outcome": "y", "treatment": "t"}

#: One spec of every public estimator, with the options it needs.
SPECS = {
    DiD: {},
    EventStudy: {},
    StaggeredDiD: {},
    SunAbraham: {},
    ImputationDiD: {},
    MultilevelModel: {},
    MultilevelDiD: {},
    SimpleTrial: TRIAL,
    ClusterTrial: {**TRIAL, "cluster": "school"},
    MultisiteTrial: {**TRIAL, "cluster": "school"},
    SyntheticControl: {},
    SyntheticDiD: {},
    KaplanMeier: {},
    CoxModel: {},
    DiscreteTimeHazard: {},
}

#: Richer specs, so that describe() is read with covariates, weights and other inference too.
VARIANTS = [
    DiD(covariates=("prior",), weights="n_pupils", inference=ClusterRobust("CR2")),
    DiD(cluster="area", inference=WildBootstrap(n_bootstrap=199, restricted=False)),
    EventStudy(reference=-2, inference=ClusterRobust("auto")),
    StaggeredDiD(n_bootstrap=0, covariates=("prior",), cluster="school", panel=False),
    SunAbraham(control_group="last_treated"),
    MultilevelModel(groups=("school", "teacher"), slopes={"school": ("x",)}, method="ml"),
    MultilevelDiD(inference=ModelBased("between_within")),
    SimpleTrial(**TRIAL, n_bootstrap=99, n_permutations=99),
    ClusterTrial(**TRIAL, cluster="school", inference=ModelBased("profile")),
    SyntheticDiD(method="sc", placebo=False),
    SyntheticControl(predictors=("fsm",)),
    KaplanMeier(cluster="school", weights="weight", conf_type="log-log"),
    CoxModel(covariates=("experience",), cluster="school", ties="breslow"),
    DiscreteTimeHazard(covariates=("experience",), cluster="school", pool_from=4),
]

#: An old spelling's value and what it becomes under the new name.
ALIAS_VALUES = {
    "cov_type": ("CR2", ClusterRobust("CR2")),
    "df_method": ("normal", ModelBased("normal")),
    "ci_method": ("profile", ModelBased("profile")),
    "control": ("last_treated", "last_treated"),
    "area": ("la", "la"),
    "year": ("period", "period"),
    "treated": ("d", "d"),
    "replications": (50, 50),
}

ALIASES = [
    pytest.param(cls, old, new, id=f"{cls.__name__}-{old}")
    for cls in SPECS
    for old, new in getattr(cls, "deprecated_options", {}).items()
]


def test_every_public_estimator_is_here():
    assert sorted(c.__name__ for c in SPECS) == sorted(INFERENCE)


@pytest.mark.parametrize("cls", list(SPECS), ids=lambda c: c.__name__)
def test_protocol_and_class_variables(cls):
    spec = cls(**SPECS[cls])
    assert isinstance(spec, Estimator)
    for name, allowed in (("data_level", DATA_LEVELS), ("effect_scale", EFFECT_SCALES)):
        # a class variable, read from the class, not a property of the instance
        assert not isinstance(inspect.getattr_static(cls, name), property), name
        assert getattr(cls, name) in allowed
        assert name not in {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize(
    "spec",
    [cls(**kwargs) for cls, kwargs in SPECS.items()] + VARIANTS,
    ids=lambda s: type(s).__name__,
)
def test_describe_is_plain_words(spec):
    text = spec.describe()
    assert isinstance(text, str) and len(text.split()) >= 6, text
    # a sentence: the estimator, then its inference
    assert text[0].isupper() and text.count("; ") == 1, text
    assert "`" not in text and "=" not in text, text
    # parentheses hold words or a citation, never code (no underscores, quoted values, calls)
    for inside in re.findall(r"\(([^()]*)\)", text):
        assert not re.search(r"[_\"\[\]{}]|\w\(|(^|\W)'|'(\W|$)", inside), (inside, text)
    assert not re.search(r"\b\w+_\w+\b", text.replace("n_pupils", "")), text
    assert "None" not in text and "True" not in text and "False" not in text, text


@pytest.mark.parametrize(("cls", "old", "new"), ALIASES)
def test_every_old_spelling_warns_once_and_gives_the_same_spec(cls, old, new):
    value, converted = ALIAS_VALUES[old]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = cls(**SPECS[cls], **{old: value})
    deprecations = [w for w in caught if issubclass(w.category, DeprecatedOptionWarning)]
    assert len(deprecations) == 1, [str(w.message) for w in caught]
    message = str(deprecations[0].message)
    assert f"{old}=" in message and f"{new}=" in message and cls.__name__ in message
    assert spec == cls(**SPECS[cls], **{new: converted})
    assert issubclass(DeprecatedOptionWarning, FutureWarning)
    with pytest.raises(InvalidArgumentError, match=rf"both {old}=.*{new}="):
        cls(**SPECS[cls], **{old: value, new: converted})


def _panel() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = [(s, y) for s in range(12) for y in range(2016, 2021)]
    df = pd.DataFrame(rows, columns=["school", "year"]).assign(unit=lambda d: d["school"])
    df["area"] = df["school"] // 2
    df["exposed"] = ((df["school"] < 6) & (df["year"] >= 2018)).astype(float)
    df["outcome"] = df["school"] * 0.3 + 1.5 * df["exposed"] + rng.normal(0, 1, len(df))
    return df


def test_an_old_spelling_fits_exactly_as_the_new_one():
    data = _panel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        old = DiD(cov_type="CR2").fit(data)
        new = DiD(inference=ClusterRobust("CR2")).fit(data)
    pd.testing.assert_frame_equal(old.to_frame(), new.to_frame())


def _options():
    return [ClusterRobust("CR2"), WildBootstrap(), MultiplierBootstrap(), ModelBased("normal")]


REFUSED = [
    pytest.param(cls, option, id=f"{cls.__name__}-{type(option).__name__}")
    for cls in SPECS
    if "inference" in {f.name for f in dataclasses.fields(cls)}
    for option in _options()
    if not isinstance(option, INFERENCE[cls.__name__].options)
]


def test_some_inference_is_refused():
    assert len(REFUSED) >= 10


@pytest.mark.parametrize(("cls", "option"), REFUSED)
def test_an_inference_option_outside_the_family_names_the_estimator_and_choices(cls, option):
    with pytest.raises(InvalidArgumentError) as info:
        cls(**SPECS[cls], inference=option)
    message = str(info.value)
    assert cls.__name__ in message and type(option).__name__ in message
    for allowed in INFERENCE[cls.__name__].options:
        assert allowed.__name__ in message


@pytest.mark.parametrize("cls", [MultilevelModel, MultilevelDiD])
def test_a_df_method_outside_the_family_is_refused(cls):
    with pytest.raises(InvalidArgumentError, match=rf"{cls.__name__}.*'profile'"):
        cls(inference=ModelBased("profile"))


def test_the_wild_bootstrap_option_is_the_wild_bootstrap():
    from cpdimpact.did import wild_cluster_bootstrap

    data = _panel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        spec = DiD(cluster="area", inference=WildBootstrap(n_bootstrap=99, seed=5))
        via_spec = spec.fit(data)
        direct = wild_cluster_bootstrap(data, cluster="area", n_bootstrap=99, seed=5)
    assert via_spec.p_value == direct.p_value and via_spec.ci_lower == direct.ci_lower
    # the CR1 coefficient, by the same algebra up to rounding (partialled out, not absorbed)
    assert via_spec.estimate == pytest.approx(DiD(cluster="area").fit(data).estimate, rel=1e-12)


def test_a_seed_reaches_the_spec_or_its_inference_option():
    from cpdimpact.estimator import with_seed

    wild = DiD(inference=WildBootstrap())
    assert with_seed(wild, 7).inference.seed == 7
    own = DiD(inference=WildBootstrap(seed=1))
    assert with_seed(own, 7) is own  # a seed of its own stays
    assert with_seed(own, 7, keep_own=False).inference.seed == 7
    assert with_seed(StaggeredDiD(), 7).seed == 7
    plain = DiD()
    assert with_seed(plain, 7) is plain  # draws nothing


def test_an_evaluation_hands_its_seed_to_a_wild_bootstrap():
    from cpdimpact.evaluation import Evaluation, stage_seed
    from cpdimpact.evaluation.stages import configure

    evaluation = Evaluation(estimator=DiD(inference=WildBootstrap()), seed=11)
    staged = configure(evaluation, evaluation.estimator, "estimator")
    assert staged.inference.seed == stage_seed(11, "estimator")
    own = DiD(inference=WildBootstrap(seed=5))  # a seed of its own is kept
    assert configure(evaluation, own, "estimator").inference.seed == 5


def test_rows_an_evaluation_gives_each_level():
    from cpdimpact.estimator import fitted_rows

    assert fitted_rows(DiD(), "pupil") == "pupil" and fitted_rows(DiD(), "unit_year") == "unit_year"
    assert fitted_rows(MultilevelDiD(), "unit_year") == "pupil"
    assert fitted_rows(StaggeredDiD(), "pupil") == "unit_year"
    assert fitted_rows(StaggeredDiD(panel=False), "pupil") == "pupil"


def test_a_spec_file_names_its_inference():
    from cpdimpact.spec_file import SpecError, load_spec_text

    text = '[data]\nsimulate = "hub_rollout"\n[estimator]\nkind = "did"\ninference = {}\n'
    spec = load_spec_text(text.format('{ type = "ClusterRobust", kind = "CR2" }'))
    assert spec.evaluation.estimator.inference == ClusterRobust("CR2")
    wild = load_spec_text(text.format('{ type = "WildBootstrap", n_bootstrap = 99, seed = 3 }'))
    assert wild.evaluation.estimator.inference == WildBootstrap(n_bootstrap=99, seed=3)
    with pytest.raises(SpecError, match="inference"):
        load_spec_text(text.format('"CR2"'))
    with pytest.raises(SpecError, match="inference"):
        load_spec_text(text.format('{ type = "ModelBased", df = "normal" }'))
    with pytest.warns(DeprecatedOptionWarning, match="cov_type"):
        old = load_spec_text(text.replace("inference = {}", 'cov_type = "CR2"'))
    assert old.evaluation.estimator.inference == ClusterRobust("CR2")
