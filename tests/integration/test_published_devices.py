"""Device cards against their sources' stated results (validation/published_devices.py): the
Stanford RRAM release's shipped benchmark outputs, Strukov et al. 2008's M(q) and Kvatinsky et
al. 2013's TEAM fit (its stated parameters and Fig. 10(b)'s 0.5 mA effective threshold)."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.results import open as open_result
from conftest import load_module

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def campaign():
    return load_module("validation/published_devices.py")


@pytest.fixture(scope="module")
def result(campaign, tmp_path_factory):
    return campaign.run(tmp_path_factory.mktemp("devices"), quick=True)


def test_contract_and_every_check_passes(result):
    assert result["campaign"] == "published_devices"
    failed = [c for c in result["checks"] if not c["passed"]]
    assert not failed and result["passed"], failed
    names = " ".join(c["name"] for c in result["checks"])
    assert names.count("Stanford DC RESET") == 3 and names.count("Stanford SET pulse") == 3 and "Strukov" in names
    assert names.count("TEAM card") == 2 and "Pickett eq. 11" in names


def test_checks_carry_the_printed_benchmark_values(campaign, result):
    # the references are the release's printed numbers, not something the model produced
    refs = sorted(c["reference"] for c in result["checks"] if c["name"].startswith("Stanford"))
    assert refs == sorted([*campaign.DC_I.tolist(), *campaign.PULSE_I.tolist()])
    # the tightest points: the 6-digit DC point and the SET current at gap_min
    for start in ("Stanford DC RESET |I| at -1.50025", "Stanford SET pulse I at 23.2"):
        (check,) = [c for c in result["checks"] if c["name"].startswith(start)]
        assert check["value"] < 1e-4


def test_wrong_card_value_fails_the_checklist(campaign):
    # a 5 % change of the current prefactor I0 moves every DC point by 5 %: the check catches it
    from cimphys.cards import load_device

    params = dict(load_device("guan2012_stanford_pku").parameters)
    params["i0"] *= 1.05
    rel = np.abs(campaign.stanford_dc(params) / campaign.DC_I - 1.0)
    assert (rel > campaign.RTOL_DC).all()


def test_strukov_curve_file_and_eq2_span(result):
    ds = open_result(result["files"][0])
    assert ds.charge.attrs["units"] == "C" and ds.memristance_model.attrs["units"] == "ohm"
    # the half sine (flux 1/pi V s) moves the state to 0.22 D: M falls from R_off = 16 kohm by ~22 %
    assert ds.memristance_eq2.values.max() == pytest.approx(16000.0, rel=1e-3)
    assert 0.74 < ds.memristance_eq2.values.min() / 16000.0 < 0.80


def test_team_checks_carry_the_papers_numbers(campaign, result):
    # Kvatinsky et al. 2013, Fig. 10(a): k in nm/s; Fig. 8: a_off = 1.2 nm, a_on = 1.8 nm
    assert campaign.TEAM_STATED["k_off"] == pytest.approx(1.46e-9 * 1e-9, rel=1e-12)
    assert campaign.TEAM_STATED["a_off"] < campaign.TEAM_STATED["a_on"]
    (params,) = [c for c in result["checks"] if c["name"].startswith("TEAM card vs")]
    assert params["value"] <= 1e-12
    (team,) = [c for c in result["checks"] if c["name"].startswith("TEAM card: current")]
    (pick,) = [c for c in result["checks"] if c["name"].startswith("Pickett")]
    assert team["reference"] == pick["reference"] == 0.5e-3
    # measured: the card's eq. 14 at 0.465 mA, the paper's eq. 11 at 0.456 mA
    assert team["measured"] == pytest.approx(0.465e-3, rel=2e-3)
    assert pick["measured"] == pytest.approx(0.456e-3, rel=2e-3)


@pytest.mark.parametrize(("key", "value"), [
    ("k_off", 1.46e-9),  # the number read as m/s (the card before its correction): 1e9 too fast
    ("alpha_off", 8.0),
    ("i_off", 100e-6),
])
def test_wrong_team_card_value_fails(campaign, key, value):
    from cimphys.cards import load_device

    params = {**load_device("kvatinsky2013_team").parameters, key: value}
    name, dev = campaign.team_parameter_deviation(params)
    assert name == key and dev > campaign.RTOL_TEAM_PARAMS
    rel = abs(campaign.team_effective_threshold(params) / campaign.TEAM_THRESHOLD - 1.0)
    assert rel > campaign.RTOL_TEAM_THRESHOLD  # the computed threshold moves out too


def test_swapped_team_window_fails_the_parameter_check(campaign):
    from cimphys.cards import load_device

    params = {**load_device("kvatinsky2013_team").parameters, "a_on": 1.2e-9, "a_off": 1.8e-9}
    name, dev = campaign.team_parameter_deviation(params)
    assert name in ("a_on", "a_off") and dev > 0.3
