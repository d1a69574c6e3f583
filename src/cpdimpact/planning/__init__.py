"""Plan before you evaluate: power and minimum detectable effect sizes, and design diagnosis.

Closed-form power calculations (PowerUp!, Dong & Maynard 2013) for trials and for
difference-in-differences designs, and simulation-based diagnosis of whole designs (bias, RMSE,
power, coverage) on any :class:`concurrent.futures.Executor`, Dask included.
"""

from ._diagnose import DIAGNOSANDS, DiagnosisResult, diagnose
from ._diagnose_wild import WildClusterDiD
from ._formulas import (
    DESIGNS,
    POWERUP_NAMES,
    PowerAnalysis,
    mdes,
    mdes_curve,
    plot_mdes_curve,
    power,
    sample_size,
    schools_needed,
)

__all__: list[str] = [
    "DIAGNOSANDS",
    "DiagnosisResult",
    "WildClusterDiD",
    "diagnose",
    "DESIGNS",
    "POWERUP_NAMES",
    "PowerAnalysis",
    "mdes",
    "mdes_curve",
    "plot_mdes_curve",
    "power",
    "sample_size",
    "schools_needed",
]
