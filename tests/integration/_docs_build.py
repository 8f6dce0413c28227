"""``docs/build.py`` imported once under one name, so that the notebook tests and the docs test share
its cache of executed notebooks (each notebook runs once per pytest session)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

NAME = "cimphys_docs_build"
PATH = Path(__file__).resolve().parents[2] / "docs" / "build.py"


def load():
    """The ``docs/build.py`` module (skips, saying how to install them, without the docs tools)."""
    for tool in ("jupytext", "nbclient", "ipykernel", "nbformat"):
        pytest.importorskip(tool, reason=f"{tool} missing: pip install -e '.[docs]'")
    if NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(NAME, PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[NAME]
