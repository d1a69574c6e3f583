"""Standardised effect sizes, months of progress and the sector's evidence standards.

A model estimate in outcome units (a difference-in-differences ATT in scaled-score points, a
trial coefficient) becomes an :class:`EffectSize` by dividing by a **pupil-level** standard
deviation (:func:`hedges_g`); :func:`months_of_progress` converts effect sizes to the EEF
Teaching and Learning Toolkit's months of additional progress.

Pass/fail (0/1) outcomes: a log odds ratio becomes a :class:`BinaryEffectSize` by the Cox
(ln OR / 1.65) or Hasselblad-Hedges (ln OR x sqrt(3)/pi) conversion
(:func:`odds_ratio_effect_size`, :func:`proportions_effect_size`); a linear-probability
estimate in percentage points converts through the odds ratio it implies
(:func:`difference_to_odds_ratio`, :func:`difference_effect_size`); :func:`binary_months`
applies the EEF months rule; :func:`marginal_difference` gives a logistic (mixed) model's
effect in percentage points.

Two-group effect sizes come from raw data or summary statistics (Cohen's d, Hedges' g,
Glass's delta); cluster-randomised designs have Hedges' (2007) d_W and d_T and the
three-level versions (Hedges 2011). The standards helpers cover What Works Clearinghouse
attrition, baseline equivalence, the clustering correction and study ratings, the EEF cost
rating and a security (padlock) assistant.
"""

from ._binary import (
    COX_SCALE,
    EEF_BINARY_MONTHS_RULE,
    LOGISTIC_SD,
    BinaryEffectSize,
    OddsRatioConversion,
    binary_months,
    difference_effect_size,
    difference_to_odds_ratio,
    odds_ratio_effect_size,
    odds_ratio_to_difference,
    percentages_odds_ratio,
    proportions_effect_size,
)
from ._cluster import (
    cluster_d_total,
    cluster_d_total_from_data,
    cluster_d_within,
    cluster_d_within_from_data,
    three_level_d_total,
    three_level_d_within,
)
from ._hedges import EffectSize, hedges_correction, hedges_g
from ._marginal import MarginalDifference, marginal_difference
from ._months import EEF_MONTHS, months_band, months_of_progress
from ._security import (
    EEF_ATTRITION_THRESHOLDS,
    EEF_DESIGN_PADLOCKS,
    EEF_MDES_THRESHOLDS,
    EEF_THREATS,
    PadlockAssessment,
    Threat,
    propose_padlocks,
)
from ._standardised import (
    cohens_d_from_data,
    cohens_d_from_summary,
    glass_delta_from_data,
    glass_delta_from_summary,
    hedges_g_from_data,
    hedges_g_from_summary,
    improvement_index,
)
from ._standards import (
    EEF_COST_THRESHOLDS,
    WWC_ATTRITION,
    AttritionRates,
    ClusteringCorrection,
    CostEstimate,
    StudyRating,
    attrition_rates,
    baseline_equivalence,
    baseline_equivalence_table,
    cox_index,
    eef_cost,
    eef_cost_rating,
    wwc_attrition,
    wwc_attrition_limit,
    wwc_clustering_correction,
    wwc_study_rating,
)

__all__ = [
    "BinaryEffectSize",
    "binary_months",
    "COX_SCALE",
    "difference_effect_size",
    "difference_to_odds_ratio",
    "EEF_BINARY_MONTHS_RULE",
    "LOGISTIC_SD",
    "MarginalDifference",
    "marginal_difference",
    "OddsRatioConversion",
    "odds_ratio_effect_size",
    "odds_ratio_to_difference",
    "percentages_odds_ratio",
    "proportions_effect_size",
    "EEF_ATTRITION_THRESHOLDS",
    "EEF_COST_THRESHOLDS",
    "EEF_DESIGN_PADLOCKS",
    "EEF_MDES_THRESHOLDS",
    "EEF_MONTHS",
    "EEF_THREATS",
    "WWC_ATTRITION",
    "attrition_rates",
    "AttritionRates",
    "baseline_equivalence",
    "baseline_equivalence_table",
    "cluster_d_total",
    "cluster_d_total_from_data",
    "cluster_d_within",
    "cluster_d_within_from_data",
    "ClusteringCorrection",
    "cohens_d_from_data",
    "cohens_d_from_summary",
    "CostEstimate",
    "cox_index",
    "eef_cost",
    "eef_cost_rating",
    "EffectSize",
    "glass_delta_from_data",
    "glass_delta_from_summary",
    "hedges_correction",
    "hedges_g",
    "hedges_g_from_data",
    "hedges_g_from_summary",
    "improvement_index",
    "months_band",
    "months_of_progress",
    "PadlockAssessment",
    "propose_padlocks",
    "StudyRating",
    "Threat",
    "three_level_d_total",
    "three_level_d_within",
    "wwc_attrition",
    "wwc_attrition_limit",
    "wwc_clustering_correction",
    "wwc_study_rating",
]
