"""Validation campaign: each dynamic device model against an ngspice behavioural netlist."""

from __future__ import annotations

import pytest

from conftest import load_module


@pytest.mark.ngspice
def test_models_match_ngspice(needs_ngspice, tmp_path):
    campaign = load_module("validation/device_ngspice.py")
    report = campaign.run(tmp_path, quick=True)
    names = [c["name"].split(":")[0] for c in report["checks"]]
    assert names == ["linear_ion_drift", "vteam", "team", "yakopcic", "stanford_pku"]
    for check in report["checks"]:
        assert check["value"] <= check["tolerance"], check
        assert check["state_swing"] > 0.1  # the state really moves: the test is not of a resistor
    assert report["passed"]
