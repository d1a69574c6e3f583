"""Sphinx configuration for the cpdimpact documentation.

Build with ``make docs`` (warnings are errors). The pages are Markdown (MyST); the API reference
comes from the numpydoc docstrings; the examples gallery is generated at build time from the
``examples/`` folder by ``_ext/cpdimpact_docs.py``, which runs each example and shows the
figures it draws (``CPDIMPACT_DOCS_RUN_EXAMPLES=0`` skips running them).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import cpdimpact  # noqa: E402

project = "cpdimpact"
author = "cpdimpact contributors"
copyright = "cpdimpact contributors"
release = cpdimpact.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "cpdimpact_docs",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# MyST: keep the pages Markdown; $...$ and $$...$$ are maths; headings get anchors so that
# links such as [flow log](cohort.md#flow-log) resolve.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "smartquotes"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# autodoc + numpydoc. Members follow each module's __all__; class members are documented by
# autodoc itself, so numpydoc's member tables (which would need autosummary stubs) are off.
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"
autodoc_preserve_defaults = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# Structural numpydoc checks only: unknown sections and parameters documented but not in the
# signature are real errors; missing docstrings on private helpers are not checked.
numpydoc_validation_checks = {"GL06", "GL07", "PR02", "PR10"}

# No network: no intersphinx, and unresolved cross-references stay plain text.
nitpicky = False

html_theme = "alabaster"
html_title = f"cpdimpact {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Impact evaluation of teacher professional development",
    "fixed_sidebar": True,
    "show_relbars": True,
}
html_show_sourcelink = False
