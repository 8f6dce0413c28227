"""Sphinx configuration of the cimphys documentation (built offline: ``python docs/build.py``).

``docs/build.py`` stages these sources with the executed example notebooks (``examples/*.ipynb``)
and runs Sphinx with ``-W --keep-going``; myst-nb renders the notebooks as executed there and
never runs them itself (``nb_execution_mode = "off"``).
"""

from __future__ import annotations

import cimphys

project = "cimphys"
author = "The cimphys developers"
copyright = "the cimphys developers, BSD-3-Clause"  # noqa: A001 - Sphinx's name
release = version = cimphys.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_nb",
]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "examples/README.md"]
root_doc = "index"

# --- notebooks: rendered as executed by docs/build.py ---
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

# --- API reference from the NumPy-style docstrings ---
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True  # Attributes as fields: no second description of dataclass fields
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the docstrings carry types and units
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_mock_imports = ["torch", "aihwkit"]

# numpydoc's References section lists the sources of a model; they need not be cited in the text.
suppress_warnings = ["ref.footnote"]

html_theme = "alabaster"
html_static_path: list[str] = []
html_theme_options = {"description": "Device-to-circuit physics of compute-in-memory hardware for LLM inference"}
