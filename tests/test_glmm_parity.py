"""Parity of MultilevelModel(family="binomial" | "poisson") with lme4::glmer (Laplace and
nAGQ = 5, 25) and glmmTMB, on the cases in tests/reference/glmer/ (data, the R script that
fitted them and its session info are stored there; see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpdimpact.multilevel import MultilevelModel

HERE = Path(__file__).parent / "reference" / "glmer"
REFERENCE = json.loads((HERE / "reference.json").read_text())
CASES = {k: v for k, v in REFERENCE.items() if isinstance(v, dict) and "fits" in v}
FITS = {"laplace": 1, "agq5": 5, "agq25": 25}


def _name(term: str) -> str:
    return "Intercept" if term == "(Intercept)" else term


def _component(key: str, model: MultilevelModel) -> str:
    """lme4's group names ("class:school", "school:(Intercept):treat") as ours."""
    head = key.split(":")[0]
    if head in model.groups[1:]:
        return head
    return key.replace("(Intercept)", "Intercept")


_fitted: dict = {}


def _fit(case: str, n_agq: int):
    if (case, n_agq) not in _fitted:
        spec = CASES[case]
        data = pd.read_csv(HERE / spec["data"])
        model = MultilevelModel.from_formula(
            spec["formula"], family=spec["family"], trials=spec["weights"], n_agq=n_agq
        )
        _fitted[case, n_agq] = model.fit(data)
    return _fitted[case, n_agq]


PAIRS = [(case, fit) for case, spec in CASES.items() for fit in FITS if fit in spec["fits"]]


@pytest.mark.parametrize(("case", "which"), PAIRS)
def test_fixed_effects_and_deviance(case, which):
    ref = CASES[case]["fits"][which]
    fit = _fit(case, FITS[which])
    ours = fit.params
    expected = pd.Series({_name(k): v for k, v in ref["fixef"].items()})
    # 1e-6 relative, and 1e-6 absolute on the log-odds (log-rate) scale for coefficients
    # near zero: the deviance is so flat at its optimum that 1e-9 of deviance moves a
    # coefficient by ~1e-6 (the references are converged to about that, see their README).
    assert np.allclose(ours[expected.index], expected, rtol=1e-6, atol=1e-6), (
        ours[expected.index] - expected
    )
    assert fit.deviance == pytest.approx(ref["deviance"], rel=1e-6)
    assert fit.singular == ref["singular"]


@pytest.mark.parametrize(("case", "which"), PAIRS)
def test_variance_components_and_standard_errors(case, which):
    ref = CASES[case]["fits"][which]
    fit = _fit(case, FITS[which])
    expected = pd.Series({_component(k, fit.model): v for k, v in ref["varcomp"].items()})
    ours = fit.variance_components[expected.index]
    assert np.allclose(ours, expected, rtol=1e-4, atol=1e-8), ours - expected
    # glmer's standard errors come from its own finite-difference Hessian (use.hessian, lme4's
    # deriv12 with steps of 1e-4), accurate to ~1e-3; ours from the exact beta-gradient's
    # differences, stable to 1e-7 across step sizes (tests/test_glmm.py).
    se = pd.Series({_name(k): v for k, v in ref["se"].items()})
    assert np.allclose(fit.std_errors[se.index], se, rtol=2e-3), fit.std_errors[se.index] - se


@pytest.mark.parametrize("case", [c for c, s in CASES.items() if "ranef" in s["fits"]["laplace"]])
def test_conditional_modes(case):
    ref = CASES[case]["fits"]["laplace"]
    fit = _fit(case, 1)
    for key, values in ref["ranef"].items():
        group = _component(key, fit.model)
        if group not in fit.random_effects:
            continue
        frame = fit.random_effects[group]
        # lme4 labels nested groups "class:school"; ours carries both id columns.
        columns = list(fit.model.groups[: list(fit.model.groups).index(group) + 1])
        labels = frame[list(reversed(columns))].astype(str).agg(":".join, axis=1)
        ours = pd.Series(frame["estimate"].to_numpy(), index=[labels, frame["term"]])
        expected = pd.Series(
            {
                (label, _name(term)): value
                for label, entry in values.items()
                for term, value in (entry.items() if isinstance(entry, dict) else [("1", entry)])
            }
        )
        if (expected.index.get_level_values(1) == "1").all():  # one term: the intercept
            expected.index = [expected.index.get_level_values(0), ["Intercept"] * len(expected)]
        assert np.allclose(ours[expected.index], expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("case", [c for c, s in CASES.items() if "glmmTMB" in s["fits"]])
def test_glmmtmb(case):
    ref = CASES[case]["fits"]["glmmTMB"]
    fit = _fit(case, 1)
    expected = pd.Series({_name(k): v for k, v in ref["fixef"].items()})
    assert np.allclose(fit.params[expected.index], expected, rtol=1e-5, atol=1e-7)
    assert fit.deviance == pytest.approx(ref["deviance"], rel=1e-6)
