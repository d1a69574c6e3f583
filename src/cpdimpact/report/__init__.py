"""Publishable reports: documents of headings, paragraphs, tables and figures.

A :class:`Document` renders to GitHub-flavoured Markdown, to one self-contained HTML file
(inline CSS, figures embedded, no scripts or external links), to a Word document (real headings
and tables, figures embedded) and to JSON-safe data; the same blocks always give byte-identical
output. The layer is generic: it knows nothing about
difference-in-differences or any estimator.

Reports must never contain pupil-level rows: :class:`Table` refuses pupil identifiers and
very long frames, and :func:`suppress_small_counts` hides small counts before publication.
"""

from ._blocks import MAX_TABLE_ROWS, PUPIL_ID_COLUMNS, Figure, Heading, Paragraph, Table
from ._document import Document
from ._format import NA_REP
from ._privacy import suppress_small_counts
from ._teachers import (
    TeacherCost,
    cost_per_teacher_retained,
    school_turnover_section,
    teachers_section,
)

__all__ = [
    "MAX_TABLE_ROWS",
    "NA_REP",
    "PUPIL_ID_COLUMNS",
    "Document",
    "Figure",
    "Heading",
    "Paragraph",
    "Table",
    "TeacherCost",
    "cost_per_teacher_retained",
    "school_turnover_section",
    "suppress_small_counts",
    "teachers_section",
]
