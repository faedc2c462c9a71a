"""Sphinx configuration of bnnkit's documentation: `make docs` builds it into build/docs.

Markdown pages (MyST), API pages from the docstrings (autodoc + napoleon), and two pages
generated at build time from the code itself so they cannot fall behind it: the CLI
reference (from the argparse parser) and the converter's support table (from its handler
table). Warnings are errors (`make docs` passes -W).
"""

from __future__ import annotations

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _generate  # noqa: E402

project = "bnnkit"
author = "the bnnkit developers"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
html_theme = "alabaster"
suppress_warnings = ["myst.xref_missing"]  # links to repository files outside docs/

_generate.write_all(HERE / "_generated")
