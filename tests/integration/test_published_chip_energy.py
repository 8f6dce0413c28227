"""The circuit cards' energy and timing against the chips they are named after
(validation/published_chip_energy.py): HERMES (Le Gallo et al. 2023; its core, Khaddam-Aljameh
et al. 2022) and ISAAC (Shafiee et al. 2016, Table I).  The campaign fails today, honestly: the checks that fail are held here at the
gap they measure, so that a change of the energy model or of a card that moves them shows."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from cimphys.results import open as open_result
from conftest import load_module

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def campaign():
    return load_module("validation/published_chip_energy.py")


@pytest.fixture(scope="module")
def result(campaign, tmp_path_factory):
    return campaign.run(tmp_path_factory.mktemp("chip_energy"), quick=True)


def _check(result, start):
    (check,) = [c for c in result["checks"] if c["name"].startswith(start)]
    return check


def test_contract(result):
    assert result["campaign"] == "published_chip_energy"
    assert result["passed"] == all(c["passed"] for c in result["checks"])
    assert "Le Gallo" in result["reference"] and "Shafiee" in result["reference"]
    ds = open_result(result["files"][0])
    assert ds["tops_per_w"].attrs["units"] == "TOPS/W"
    assert set(ds.card.values) == {"hermes_256x256", "isaac_128x128", "neurram_256x256"}


def test_operation_count_is_two_per_mac(result):
    # 1 MAC = 2 ops: HERMES 256 rows x 256 column pairs, ISAAC 128 x 128, NeuRRAM 256 x 128 pairs
    assert result["info"]["hermes_256x256"]["ops_per_mvm"] == 2 * 256 * 256
    assert result["info"]["isaac_128x128"]["ops_per_mvm"] == 2 * 128 * 128
    assert result["info"]["neurram_256x256"]["ops_per_mvm"] == 2 * 256 * 128


def test_energy_is_the_tile_records_sum(campaign, result):
    # TOPS/W comes from the tile's own energy record, every component counted once
    for info in result["info"].values():
        assert sum(info["parts_j"].values()) == pytest.approx(info["energy_per_mvm_j"], rel=1e-12)
        assert info["tops_per_w"] == pytest.approx(info["ops_per_mvm"] / info["energy_per_mvm_j"] / 1e12)


def test_hermes_period_matches_the_chip_throughput(result):
    # two 65 ns PWM phases (positive, negative inputs) pipelined behind one 8-bit conversion per
    # phase: 130 ns, the 133 ns per core of 63.1 TOPS over 64 cores to 2.2 %
    check = _check(result, "HERMES core MVM period")
    assert check["passed"] and check["measured"] == pytest.approx(130e-9, rel=1e-9)
    assert check["reference"] == pytest.approx(2 * 256**2 / (63.1e12 / 64))


def test_hermes_efficiency_gap_is_the_one_reported(result):
    # The card's core (array + PWM drivers + integrators + 256 8-bit ADCs at an assumed Walden FOM
    # of 50 fJ/step) gives ~1.7x the chip's 9.76 TOPS/W, which counts the whole chip (digital
    # units, network).  The check fails at its 50 % tolerance; held at the measured gap (1.70x).
    check = _check(result, "HERMES TOPS/W")
    assert not check["passed"]
    assert check["reference"] == 9.76
    assert 1.5 < check["measured"] / 9.76 < 1.9
    # ADC conversions dominate: 2 phases x 256 channels x 50 fJ x 2**8
    parts = result["info"]["hermes_256x256"]["parts_j"]
    assert parts["adc"] == pytest.approx(2 * 256 * 50e-15 * 2**8, rel=1e-12)


def test_hermes_core_gap_is_the_one_reported(result):
    # Like for like: one core against HERMES-Core's measured 10.5 TOPS/W (JSSC 2022).  The card
    # still gives ~1.6x: its 7.9 nJ per 8-bit MVM lacks ~4.6 nJ (37 %) of the 12.5 nJ measured,
    # the local digital processing unit and 1 GHz clocking that the card does not model and no
    # stated figure splits out.  Fails at 50 %, held at the measured gap.
    check = _check(result, "HERMES-Core TOPS/W")
    assert not check["passed"] and check["reference"] == 10.5
    assert 1.45 < check["measured"] / 10.5 < 1.75
    gap = result["info"]["hermes_256x256"]["gap"]
    assert gap["measured_energy_per_mvm_j"] == pytest.approx(2 * 256**2 / 10.5e12)
    assert 0.30 < gap["missing_fraction_of_measured"] < 0.45
    assert gap["adc_fraction_of_model"] > 0.8


def test_isaac_cycle_and_array_power(result):
    # 128 columns share one 1.28 GS/s ADC: the pipelined cycle is ISAAC's 100 ns, exactly
    assert _check(result, "ISAAC pipelined read cycle")["passed"]
    # The card's assumed 1-10 uS window at 0.2 V dissipates ~5x Table I's 0.3 mW per array
    # (64 of 128 rows on, mean 5.5 uS: 64 * 128 * 5.5 uS * 0.04 V**2 = 1.8 mW less the IR drop)
    array = _check(result, "ISAAC array read power")
    assert not array["passed"]
    assert 4.0 < array["measured"] / 0.3e-3 < 6.5
    crossbar = _check(result, "ISAAC crossbar + ADC")
    assert not crossbar["passed"] and 1.3 < crossbar["measured"] / 2.801e-3 < 1.6
    # the periphery is Table I's: with the array at Table I's 0.3 mW the crossbar is 2.80 mW to
    # 1 % (shift-and-add is not in the sum; the TIA's reference column reads with the others),
    # so the check fails by the array alone; Table I's array power means ~1.05 uS per cell at
    # the card's 0.2 V, against the card's assumed 1-10 uS window (mean 5.5 uS)
    gap = result["info"]["isaac_128x128"]["gap"]
    assert gap["crossbar_with_table_array_w"] == pytest.approx(2.801e-3, rel=0.01)
    assert 0.9e-6 < gap["implied_mean_conductance_s"] < 1.2e-6


def test_isaac_sense_is_table_one_sample_and_hold(result):
    # [sense] power_w = 10 uW / (8 x 128): the crossbar's 128 columns draw Table I's 1.25 uW
    sense = result["info"]["isaac_128x128"]["parts_j"]["sense"]
    assert sense / (16 * 100e-9) == pytest.approx(10e-6 / 8, rel=0.01)


def test_neurram_is_reported_not_checked(result):
    assert not any("NeuRRAM" in c["name"] for c in result["checks"])
    info = result["info"]["neurram_256x256"]
    assert np.isfinite(info["tops_per_w"]) and info["tops_per_w"] > 0


def test_tile_energy_depends_on_the_inputs(campaign):
    # the array component is physics (sources' power), not a constant: all-zero inputs draw none
    rec, tile, _ = campaign.tile_energy("isaac_128x128", 4, signed=False)
    assert float(rec.energy_array.mean()) > 0
    _, zero = tile.mvm(np.zeros((2, 128), dtype=np.int64), input_bits=16)
    assert isinstance(zero, xr.Dataset) and float(zero.energy_array.max()) == 0.0


def test_isaac_cycle_check_fails_at_table_one_nameplate_rate(campaign):
    # Table I prints the ADC at 1.2 GSps, the text at 1.28 GSps (the card's): only the text's rate
    # converts 128 columns in ISAAC's 100 ns cycle; at 1.2 GSps the cycle is 106.7 ns and the
    # check fails -- it tests the card, not a constant
    from cimphys.cards import load_circuit

    card = load_circuit("isaac_128x128").with_section("adc", sample_rate_hz=1.2e9)
    rec, tile, _ = campaign.tile_energy(card, 2, signed=False)
    reads = int(rec.reads)
    cycle = campaign.mvm_period(tile, reads) / reads
    assert cycle == pytest.approx(128 / 1.2e9, rel=1e-9)
    assert abs(cycle / campaign.ISAAC_T_READ_S - 1.0) > campaign.RTOL_ISAAC_CYCLE
