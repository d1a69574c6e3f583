"""Read the lme4::glmer / glmmTMB reference fits stored in ``tests/reference/glmer/``.

The layout of ``reference.json``, the cases and the intended tolerances are described in
``tests/reference/glmer/README.md``. Tests import this module (``from glmer_reference import
load_case``); it needs neither R nor the network.

Examples
--------
>>> case = load_case("star")
>>> case.family, case.weights, len(case.data), case.n_groups
('binomial', None, 5854, {'school': 79})
>>> sorted(case.fits)
['agq25', 'agq5', 'glmmTMB', 'laplace']
>>> case.fixef("laplace")["small"] > 0
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

REFERENCE_DIR = Path(__file__).resolve().parent / "reference" / "glmer"


@cache
def _reference() -> dict[str, Any]:
    return json.loads((REFERENCE_DIR / "reference.json").read_text(encoding="utf-8"))


def case_names() -> list[str]:
    """Names of all reference cases, in the order of ``reference.json``."""
    return list(_reference())


@dataclass(frozen=True, kw_only=True)
class GlmerCase:
    """One reference case: its data, model and the stored fits (R's names throughout)."""

    name: str
    formula: str
    family: str
    weights: str | None
    purpose: str
    n_obs: int
    n_groups: dict[str, int]
    fits: dict[str, dict[str, Any]]
    data: pd.DataFrame

    def fixef(self, fit: str = "laplace") -> dict[str, float]:
        """Fixed effects of one fit (``"laplace"``, ``"agq5"``, ``"agq25"``, ``"glmmTMB"``)."""
        return dict(self.fits[fit]["fixef"])

    def deviance(self, fit: str = "laplace") -> float:
        """-2 log-likelihood of one fit, saturated part included for every fit."""
        return float(self.fits[fit]["deviance"])

    def varcomp(self, fit: str = "laplace") -> dict[str, float]:
        """Variance components keyed by lme4's group names (``"school"``, ``"class:school"``)."""
        return dict(self.fits[fit]["varcomp"])


def load_case(name: str) -> GlmerCase:
    """The reference case ``name`` with its data read from the stored CSV."""
    raw = _reference()[name]
    return GlmerCase(
        name=name,
        formula=raw["formula"],
        family=raw["family"],
        weights=raw["weights"],
        purpose=raw["purpose"],
        n_obs=raw["n_obs"],
        n_groups=dict(raw["n_groups"]),
        fits=raw["fits"],
        data=pd.read_csv(REFERENCE_DIR / raw["data"]),
    )
