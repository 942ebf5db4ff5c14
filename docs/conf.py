"""Sphinx configuration of the SARA callbacks documentation: ``tox -e docs`` builds it with warnings as errors.

Everything is local: no intersphinx, no download. The extension in ``_ext/sara_docs.py`` generates the pages' code-made
parts (the hook order, command outputs, the built-in callbacks, the API pages) from the installed package.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import altametris.sara.core as sara  # noqa: E402 - after the path of the local extension

project = "SARA callbacks"
author = "Altametris"
copyright = "Altametris"
version = release = sara.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sara_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
nitpicky = False

# Pages that other parts of the project write: listed and linked once they exist (see sara_docs.optional_pages).
sara_optional_pages = ["reliability"]

html_theme = "furo"
html_title = f"SARA callbacks {release}"
html_static_path = ["_static"]
html_css_files = ["sara.css"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True

myst_heading_anchors = 3
