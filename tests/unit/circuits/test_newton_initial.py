"""A warm start for :func:`cimphys.circuits.newton.solve_nonlinear` (``initial=``): the same
answer as from scratch (same convergence tests and full-network KCL check), fewer iterations."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.circuits.newton import solve_nonlinear
from cimphys.circuits.nodal import Network
from cimphys.devices import SinhCell
from cimphys.errors import InputError

# Both answers pass the same KCL test (1e-11 of the largest cell current) and update test
# (1e-10 relative): they agree to a few times that, not bit for bit.
RTOL_START = 1e-9


@pytest.mark.parametrize("wires", [dict(r_wl=2.0, r_bl=2.0), dict(r_wl=0.0, r_bl=1.0)])
def test_warm_start_reaches_the_same_point_in_fewer_iterations(wires):
    rng = np.random.default_rng(5)
    m, n = 6, 5
    cell = SinhCell(k=rng.uniform(1e-5, 1e-4, (m, n)), a=8.0)  # ~10 mA per cell: ~0.1 V IR drop
    net = Network.build((m, n), **wires)
    v = rng.uniform(0.5, 0.8, m)
    cold = solve_nonlinear(net, cell, v)
    near = solve_nonlinear(net, cell, v * 1.01)  # the previous step's answer, 1 % off
    warm = solve_nonlinear(net, cell, v, initial=(near.v_wl, near.v_bl))
    np.testing.assert_allclose(warm.i_out, cold.i_out, rtol=RTOL_START)
    np.testing.assert_allclose(warm.v_bl, cold.v_bl, rtol=RTOL_START, atol=RTOL_START * 0.4)
    assert warm.iterations[0] < cold.iterations[0]
    batch = solve_nonlinear(net, cell, np.stack([v, v]), initial=(np.stack([near.v_wl] * 2), np.stack([near.v_bl] * 2)))
    np.testing.assert_allclose(batch.i_out[1], cold.i_out, rtol=RTOL_START)


def test_a_bad_start_is_one_clear_error():
    net = Network.build((2, 2))
    cell = SinhCell(k=1e-6, a=2.0)
    with pytest.raises(InputError, match="initial v_wl"):
        solve_nonlinear(net, cell, [0.1, 0.2], initial=(np.zeros((3, 2)), np.zeros((2, 2))))
    with pytest.raises(InputError, match="initial v_bl"):
        solve_nonlinear(net, cell, [0.1, 0.2], initial=(np.zeros((2, 2)), np.full((2, 2), np.nan)))
    with pytest.raises(InputError, match="initial"):
        solve_nonlinear(net, cell, [0.1, 0.2], initial=np.zeros((2, 2)))
