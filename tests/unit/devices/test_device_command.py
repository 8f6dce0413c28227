"""``cimphys device``: sweep and pulse runs from a card write labelled NetCDF and a plot."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys import results
from cimphys.cli import main


def test_sweep_writes_netcdf_and_png(tmp_path, capsys):
    assert main(["device", "kvatinsky2015_vteam_pickett", "--sweep=-2:1:1e3", "--points", "80", "-o", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert [p.rsplit(".", 1)[1] for p in printed] == ["nc", "png"]
    ds = results.open(printed[0])
    assert ds.current.attrs["units"] == "A" and ds.state.attrs["units"] == "m"
    assert ds.attrs["card"] == "kvatinsky2015_vteam_pickett"
    x = ds.state.values[:, 0]
    assert x.min() == 0.0 and x.max() == 3e-9  # a -2 V / +1 V sweep switches the Pickett fit fully


def test_pulses_potentiate_then_depress(tmp_path, capsys):
    # 1.6 V: above the release's minimum field (F_min t_ox / gamma ~ 1.2 V at 1.4 nm); 0.8 V would not move it
    args = ["device", "guan2012_stanford_pku", "--pulses", "1.6:20e-6:4", "--pulses=-1.6:20e-6:4",
            "--state0", "1.4e-9", "-o", str(tmp_path)]
    assert main(args) == 0
    ds = results.open(capsys.readouterr().out.split()[0])
    gap = ds.state.values[:, 0]
    half = np.searchsorted(ds.time.values, ds.time.values[-1] / 2)
    assert gap[half] < 1.4e-9 < gap[-1]  # SET pulses shrink the gap, RESET pulses grow it


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["device", "nandakumar2019_pcm", "--sweep=-1:1:1"], "no state dynamics"),
     (["device", "strukov2008_hp", "--pulses", "1:1e-3:2.5"], "COUNT"),
     (["device", "strukov2008_hp", "--sweep=1:-1:1"], "v_min"),
     # regression (issue 18.10): --substeps was silently ignored with the adaptive methods
     (["device", "strukov2008_hp", "--sweep=-1:1:1", "--substeps", "4"], "substeps: only the fixed-step methods")],
)
def test_errors_are_one_line(argv, message, tmp_path, capsys):
    assert main([*argv, "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
