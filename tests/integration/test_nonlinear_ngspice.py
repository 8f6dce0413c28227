"""Campaign validation/nonlinear_ngspice.py: Newton with sinh and 1T1R cells against ngspice."""

from __future__ import annotations

import pytest

from conftest import load_module


@pytest.mark.ngspice
def test_nonlinear_campaign_quick(tmp_path, needs_ngspice):
    campaign = load_module("validation/nonlinear_ngspice.py")
    report = campaign.run(tmp_path, quick=True)
    assert report["campaign"] == "nonlinear_ngspice"
    assert len(report["checks"]) == 12  # four cases x (i_out, v_wl, v_bl)
    for check in report["checks"]:
        assert check["tolerance"] == campaign.RTOL == 1e-7
        assert check["value"] <= check["tolerance"], check
    assert report["passed"]
