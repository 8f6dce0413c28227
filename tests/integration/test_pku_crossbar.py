"""Stanford-PKU read path at fixed gaps as the cell of a crossbar solve."""

from __future__ import annotations

import numpy as np

import cimphys
from cimphys.cards import load_device
from cimphys.devices import SinhCell, StanfordPKU, integrate, pulse_train

RTOL_SOLVER = 1e-10  # same nodal equations, cells equal to rounding: only the Newton tolerance


def test_pku_cells_after_programming_in_a_crossbar(rng):
    params = dict(load_device("guan2012_stanford_pku").parameters)
    model = StanfordPKU(**params)
    # program a 6 x 4 array with per-cell pulse amplitudes, then read it in a crossbar
    amps = rng.uniform(1.2, 1.4, 24)  # 1.2-1.4 V: across the minimum-field threshold at 1.5 nm (~1.26 V)
    ds = integrate(model, pulse_train(1.0, 20e-6, 1), np.full(24, 1.5e-9), v_scale=amps, record="final",
                   quantities=("state",))
    gap = ds.state.values[0].reshape(6, 4)
    assert np.ptp(gap) > 1e-10  # the amplitudes spread the gaps
    v_in = rng.uniform(0.0, 0.3, 6)
    sol = cimphys.Crossbar(None, r_wl=2.0, r_bl=2.0, cell=model.read_cell(gap)).solve(v_in)
    k = params["i0"] * np.exp(-np.clip(gap, params["g_min"], params["g_max"]) / params["g0"])  # the release clips
    ref = cimphys.Crossbar(None, r_wl=2.0, r_bl=2.0, cell=SinhCell(k=k, a=1 / params["v0"])).solve(v_in)
    np.testing.assert_allclose(sol.i_out, ref.i_out, rtol=RTOL_SOLVER)
