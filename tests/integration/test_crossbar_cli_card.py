"""`cimphys crossbar CARD`: a whole tile from a circuit card, with energy and latency per MVM."""

from __future__ import annotations

import numpy as np

import cimphys
from cimphys.cli import main


def test_card_run_reports_energy_that_adds_up(tmp_path, capsys):
    assert main(["crossbar", "isaac_128x128", "--batch", "2", "--seed", "3", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "energy per MVM" in out and "latency per MVM" in out
    ds = cimphys.open(tmp_path / "crossbar.nc")
    parts = sum(float(ds[k]) for k in ("energy_array", "energy_dac", "energy_sense", "energy_adc", "energy_digital"))
    assert np.isclose(float(ds.energy_total), parts, rtol=1e-12)
    assert ds.energy_total.attrs["units"] == "J" and ds.latency.attrs["units"] == "s"
    # the array solve at full-scale input loses current to the wires, never gains it
    assert float(ds.ir_drop_loss.min()) > 0 and float(ds.ir_drop_loss.max()) < 1
    assert (tmp_path / "crossbar.png").is_file()


def test_card_run_is_seeded(tmp_path, capsys):
    for name in ("a", "b"):
        assert main(["crossbar", "isaac_128x128", "--batch", "1", "--seed", "5", "-o", str(tmp_path / name)]) == 0
    a, b = (cimphys.open(tmp_path / n / "crossbar.nc") for n in ("a", "b"))
    assert float(a.energy_total) == float(b.energy_total)
    np.testing.assert_array_equal(a.i_out.values, b.i_out.values)


def test_card_run_refuses_resistance_overrides(tmp_path, capsys):
    assert main(["crossbar", "isaac_128x128", "--r-wl", "3", "-o", str(tmp_path)]) == 1
    assert "a card sets its own resistances" in capsys.readouterr().err

