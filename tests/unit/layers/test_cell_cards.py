"""A weight matrix on a tile card with a ``[cell]`` table (1T1R Stanford-PKU cells with state):
exact Newton reads against the chord surrogate, and the surrogate's measured error."""

from __future__ import annotations

import numpy as np
import pytest

from test_analog import product_error
from small_cards import config

# 1T1R cells of the Stanford-PKU RRAM (its card) behind the level-1 NMOS at 2.5 V gate, in the
# cells' own read window (where the device card's write-verify programs them); a near-ideal virtual ground (TIA gain 1e12) so that, without wires,
# every driven cell sees v_read itself
CELLS = {"parameters": {"g_min_s": 6e-6, "g_max_s": 3e-5}, "sense": {"gain": 1e12, "r_f_ohm": 1e4},
         "cell": {"kind": "1T1R", "access": "level1_access_nmos", "v_gate_v": 2.5, "check_reads": 4}}


@pytest.mark.slow
def test_newton_reads_of_cells_with_state_match_the_chord_surrogate_without_wires(rng):
    """1-bit DACs, no wires: a driven cell sees v_read, where its chord current is its own, and
    an undriven one 0 V: exact Newton reads of the cells at their inverted states give the
    chord (linear) product to the Newton tolerance, and the run's surrogate check says so."""
    w, x = rng.standard_normal((12, 6)), rng.standard_normal((3, 12))
    cfg = config(8, 8, adc_bits=12, n_slices=1, cell_bits=6, device="guan2012_stanford_pku", sections=CELLS)
    chord, _, _, am = product_error(cfg, w, x)
    assert am.cell_surrogate is not None and am.cell_surrogate["max"] < 1e-8 and am.cell_surrogate["reads"] == 4
    newton_cfg = config(8, 8, adc_bits=12, n_slices=1, cell_bits=6, device="guan2012_stanford_pku",
                        sections={**CELLS, "cell": {**CELLS["cell"], "read": "newton"}})
    exact, _, _, am_n = product_error(newton_cfg, w, x)
    assert am_n.cell_surrogate is None and not am_n.stacks[0].linear
    np.testing.assert_allclose(exact, chord, rtol=1e-6, atol=1e-9 * np.abs(chord).max())


@pytest.mark.slow
def test_the_surrogate_error_grows_with_the_wires(rng):
    """With wire resistance the driven cells see less than v_read, where the HfOx cell passes
    less than its chord current: the measured surrogate error grows with the wires."""
    w, x = rng.standard_normal((12, 6)), rng.standard_normal((3, 12))
    errs = []
    for r in (1.0, 20.0):
        cfg = config(8, 8, r_wire=r, adc_bits=12, n_slices=1, cell_bits=6, device="guan2012_stanford_pku",
                     sections=CELLS)
        errs.append(product_error(cfg, w, x)[3].cell_surrogate["max"])
    assert 1e-7 < errs[0] < errs[1] < 0.05, errs
