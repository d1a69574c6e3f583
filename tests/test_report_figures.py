"""Figures fit for print (issue 16 item 5): the flow diagram's lines meet their boxes at the
report's 8 pt text, whatever the layout does after drawing; the event study says what its
axes and its start line are."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Annotation

from cpdimpact.report._figures import plot_flow_diagram

STAGES = pd.DataFrame(
    {
        "stage": ["available", "eligible", "assigned", "analysed", "analysed", "analysed"],
        "arm": ["all", "all", "all", "all", "treated", "comparison"],
        "schools": [40, 38, 38, 38, 18, 20],
        "teachers": [0] * 6,
        "pupils": [4000, 3900, 3900, 3900, 1800, 2100],
    }
)
EXCLUSIONS = pd.DataFrame(
    {
        "stage": ["eligible", "eligible"],
        "reason": [
            "outcome missing",
            "outcome missing: SUPP (suppressed: small cohort (disclosure control))",
        ],
        "schools": [0, 0],
        "teachers": [0, 0],
        "pupils": [50, 50],
    }
)


def _distance_to_edge(point: np.ndarray, box) -> float:
    """Pixels from ``point`` to the nearest point of ``box``'s outline."""
    x, y = point
    dx = max(box.x0 - x, 0.0, x - box.x1)
    dy = max(box.y0 - y, 0.0, y - box.y1)
    outside = np.hypot(dx, dy)
    inside = min(x - box.x0, box.x1 - x, y - box.y0, box.y1 - y)
    return float(outside) if outside > 0 else float(inside)


@pytest.mark.parametrize("size", [(7.5, 8.0), (5.0, 6.0), (9.0, 11.0)])
def test_flow_diagram_lines_meet_their_boxes(size):
    fig, ax = plt.subplots(figsize=size)
    plot_flow_diagram(STAGES, EXCLUSIONS, ax=ax)
    ax.set_title("Flow diagram")
    fig.tight_layout()  # after drawing, as the report does: the lines must follow the boxes
    fig.canvas.draw()
    boxes = [
        t.get_bbox_patch().get_window_extent() for t in ax.texts if not isinstance(t, Annotation)
    ]
    main_x = np.mean([(b.x0 + b.x1) / 2 for b in boxes[:1]])
    # "meet": within the connector's own width (1 pt) and one pixel of antialiasing
    tolerance = fig.dpi / 72 + 1
    connectors = [t for t in ax.texts if isinstance(t, Annotation)]
    assert len(connectors) == 3 + 2 + 2  # stage to stage, two side boxes, two arms
    for connector in connectors:
        points = connector.arrow_patch.get_path().vertices
        start, rest = points[0], points[1:]
        on_box = min(_distance_to_edge(start, b) for b in boxes) < tolerance
        on_column = abs(start[0] - main_x) < tolerance
        assert on_box or on_column, f"a line starts away from any box: {start}"
        # its far end touches a box's outline (the arrow head's tip, or the line's end)
        reach = min(_distance_to_edge(p, b) for p in rest for b in boxes)
        assert reach < tolerance, f"a line ends {reach:.1f} px from the nearest box"
    plt.close(fig)


def test_event_study_axes_name_the_outcome_its_units_and_the_start():
    import warnings
    from pathlib import Path

    from cpdimpact import Evaluation, Records
    from cpdimpact.errors import CpdImpactWarning
    from cpdimpact.report import Figure

    folder = Path(__file__).resolve().parents[1] / "examples" / "data"
    records = Records.from_csv(
        pupils=folder / "pupils.csv",
        participation=folder / "participation.csv",
        columns={
            "pupil": "UPN",
            "school": "URN",
            "year": "ACADEMIC_YEAR",
            "outcome": "KS2_MATHS_SCORE",
            "start_year": "START_DATE",
        },
        format="dfe",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        result = Evaluation(subgroups=(), gaps=(), prior_bands=0, seed=1).run(records)
    (figure,) = [
        b for b in result.report().blocks if isinstance(b, Figure) and b.name == "event_study"
    ]
    ax = figure.figure.axes[0]
    assert ax.get_ylabel() == "effect on KS2_MATHS_SCORE (outcome points)"
    assert ax.get_xlabel().startswith("years since the start")
    assert "start" in [t.get_text() for t in ax.texts]


@pytest.fixture(scope="module")
def city_report():
    import warnings

    from cpdimpact import Evaluation
    from cpdimpact.datasets import city_partnership
    from cpdimpact.errors import CpdImpactWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        result = Evaluation(seed=3).run(city_partnership(seed=3, scale=0.2))
    return result, result.report()


def _alt(document, name: str) -> str:
    from cpdimpact.report import Figure

    (figure,) = [b for b in document.blocks if isinstance(b, Figure) and b.name == name]
    return figure.alt


def test_alt_text_states_what_each_figure_shows(city_report):
    """WCAG 1.1.1: the text alternative carries the chart's numbers, checked against numbers
    computed here from the result and the cohort's records."""
    result, document = city_report
    head = result.subgroup_effects
    forest = _alt(document, "subgroups")
    for _, row in head.iterrows():
        assert f"{row['group']} {row['effect_size']:.2f} ({row['ci_lower']:.2f} to" in forest
    study = _alt(document, "event_study")
    frame = result.event_study.coefficients.reset_index()
    post = frame[(frame["event_time"] >= 0)]
    for _, row in post.iterrows():
        assert f"{row['estimate']:.2f} in year {int(row['event_time'])}" in study
    pupils = result.cohort.pupils
    first = int(pupils["year"].min())
    mean = pupils.loc[pupils["treated"] & (pupils["year"] == first), "outcome"].mean()
    assert f"intervention: {mean:.1f} in {first}" in _alt(document, "trends")
    flow = _alt(document, "flow")
    analysed = len(pupils)
    assert f"{analysed:,} analysed" in flow


def test_flow_alt_text_suppresses_small_counts():
    from cpdimpact.report._alt import flow_alt

    text = flow_alt(
        STAGES.assign(pupils=[4000, 3900, 3900, 3900, 3895, 5]), EXCLUSIONS, 10, "pupil record"
    )
    assert "<10 comparison" in text and " 5 " not in text
