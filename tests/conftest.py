"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# The naive twins every kernel is held against (dense nodal solves, scalar loops), in one folder.
sys.path.insert(0, str(ROOT / "tests" / "naive"))

# A valid device card (model "sinh") that the card, CLI and property tests alter one key at a time.
SINH_CARD = """\
[model]
name = "sinh"
description = "a selector-like read nonlinearity"

[parameters]
k = 1e-6
a = 2.5

[provenance]
source = "Guan, Yu, Wong, IEEE EDL 33, 1405 (2012)"
doi = "10.1109/LED.2012.2210856"
fitted = "k and a"
method = "least squares on the read branch"
residual = 0.01
"""
# Reference solutions the tests compare against, committed with the script that made them
# (tests/data/crossbar/make_reference.py, ngspice).  A missing file is a failure, not a skip.
REFERENCE = ROOT / "tests" / "data"


def load_module(relative_path: str):
    """Import a script from the repository (validation/ or benchmarks/) by path."""
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


@pytest.fixture
def needs_ngspice() -> str:
    path = shutil.which("ngspice")
    if path is None:
        pytest.skip("ngspice not on PATH (.ci/run installs it with apt-get)")
    return path


@pytest.fixture
def reference_dir() -> Path:
    folder = REFERENCE / "crossbar"
    if not any(folder.glob("*.npz")):
        pytest.fail(f"reference data missing from {folder}: it is part of the repository "
                    "(regenerate with tests/data/crossbar/make_reference.py)")
    return folder


# Hypothesis: in CI, the same examples every run (no flaky draws), reproducible failures.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")
