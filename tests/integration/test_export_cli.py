"""`cimphys export CARD --to crosssim|aihwkit|netcdf`: the files are written and named."""

from __future__ import annotations

import json

import pytest

import cimphys
from cimphys.cli import main

SMALL = ["--rows", "8", "--cols", "4", "--tiles", "1", "--batch", "4", "--adc-bits", "4", "6"]


def test_export_writes_and_names_every_file(tmp_path, capsys):
    assert main(["export", "nandakumar2019_pcm", *SMALL, "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    names = ("crosssim.json", "crosssim.notes.json", "aihwkit.json", "error_model.nc")
    for name in names:
        assert f"wrote {tmp_path / name}" in out and (tmp_path / name).is_file()
    assert "at 6-bit ADC" in out  # the single-setting files use the last --adc-bits
    assert json.loads((tmp_path / "crosssim.json").read_text())["xbar"]["adc"]["mvm"]["bits"] == 6
    assert json.loads((tmp_path / "aihwkit.json").read_text())["cimphys"]["adc_bits"] == 6
    lut = cimphys.open(tmp_path / "error_model.nc")
    assert list(lut.adc_bits.values) == [4, 6] and lut.error_std.attrs["units"] == "1"


def test_export_one_target(tmp_path, capsys):
    assert main(["export", "nandakumar2019_pcm", *SMALL, "--to", "crosssim", "-o", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crosssim.json", "crosssim.notes.json"]
    simulator = pytest.importorskip(
        "simulator", reason="CrossSim 3.2.0 not installed: pip install /work/shared/peers/crosssim-3.2.0-py3-none-any.whl")
    params = simulator.CrossSimParameters.from_json(tmp_path / "crosssim.json")
    assert params.core.rows_max == 8


def test_export_refuses_a_card_without_programming_model(tmp_path, capsys):
    assert main(["export", "level1_access_nmos", *SMALL, "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no programming model" in err
