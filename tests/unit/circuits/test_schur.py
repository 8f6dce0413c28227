"""Symmetric CG kernel (:mod:`cimphys.circuits.schur`): threads, chunks and the answer's accuracy.

Chunks of ``CHUNK`` inputs go to threads from ``PARALLEL_MIN_WORK`` node-inputs on; every
chunk runs the same arithmetic whichever thread runs it, so the threaded and the
serial kernel must agree bit for bit, and an input must get the same answer alone as in any
batch.  Both are checked against SuperLU on the same nodal matrix (the direct path).
"""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.circuits import schur
from cimphys.circuits.nodal import Network, check_stamp, solve_linear

# The kernel's tol bounds the fixed-point residual; at 1e-12 the node voltages agree with
# SuperLU's to ~1e-12 of the voltage scale (both are exact to rounding).
RTOL_DIRECT = 1e-10


def rel(x, y):
    return np.abs(np.asarray(x) - y).max() / max(np.abs(y).max(), 1e-300)


def _problem(rng, m=24, n=20, batch=2 * schur.CHUNK + 1):
    """A reference-geometry array with per-segment wires and a batch ending in a partial chunk."""
    net = Network.build((m, n), r_wl=rng.uniform(0.5, 3.0, (m, n)), r_bl=rng.uniform(0.5, 3.0, (m, n)),
                        r_driver=2.0, r_sense=5.0)
    g = rng.uniform(1e-6, 1e-3, (m, n))
    c = rng.uniform(-1e-5, 1e-5, (batch, m, n))
    v = rng.uniform(-0.5, 0.5, (batch, m))
    return net, g, c, v


def _solve(net, g, c, v, monkeypatch, min_work):
    monkeypatch.setattr(schur, "PARALLEL_MIN_WORK", min_work)
    a, _, c3, v2, _ = check_stamp(net, g, g, c, v)
    found = schur.solve_symmetric(net, a, c3, v2, 1e-12)
    assert found is not None
    return found


def test_threaded_kernel_is_bit_identical_to_serial(rng, monkeypatch):
    """Threads (the default from 2**20 node-inputs) run whole chunks: the serial numbers exactly."""
    net, g, c, v = _problem(rng)
    serial = _solve(net, g, c, v, monkeypatch, 2**62)
    threaded = _solve(net, g, c, v, monkeypatch, 1)
    np.testing.assert_array_equal(threaded[0], serial[0])
    np.testing.assert_array_equal(threaded[1], serial[1])
    assert threaded[2:] == serial[2:]
    direct = solve_linear(net, g, g, c, v, method="direct")
    assert rel(threaded[0], direct[0]) < RTOL_DIRECT
    assert rel(threaded[1], direct[1]) < RTOL_DIRECT


@pytest.mark.parametrize("m", [24, 23], ids=["lines-in-pairs", "odd-last-line"])
def test_an_input_gets_the_same_answer_alone_as_in_a_batch(rng, monkeypatch, m):
    """A full chunk takes the two-lines word-line solve, a lone input the loops: same numbers."""
    net, g, c, v = _problem(rng, m=m)
    batch = _solve(net, g, c, v, monkeypatch, 2**62)
    for k in (0, schur.CHUNK - 1, len(v) - 1):  # first and last of a full chunk, the partial one
        alone = _solve(net, g, c[k], v[k][None], monkeypatch, 2**62)
        np.testing.assert_array_equal(alone[0][0], batch[0][k])
        np.testing.assert_array_equal(alone[1][0], batch[1][k])


def test_unbatched_offset_is_broadcast_not_copied(rng, monkeypatch):
    """``c`` without a batch axis reaches the kernel once and gives the answer of ``B`` copies."""
    net, g, c, v = _problem(rng)
    a, _, c3, v2, _ = check_stamp(net, g, g, c[0], v)
    assert c3.shape == (1, *g.shape)
    shared = _solve(net, g, c[0], v, monkeypatch, 2**62)
    tiled = _solve(net, g, np.broadcast_to(c[0], c.shape).copy(), v, monkeypatch, 2**62)
    np.testing.assert_array_equal(shared[1], tiled[1])


def test_every_answer_passes_the_independent_residual_check(rng, monkeypatch):
    """At any tol, the answer also passes the Python line solver's check (the block path's)."""
    from cimphys.circuits.lines import fixed_point_residual

    net, g, c, v = _problem(rng)
    monkeypatch.setattr(schur, "PARALLEL_MIN_WORK", 2**62)
    a, _, c3, v2, _ = check_stamp(net, g, g, c, v)
    for tol in (1e-6, 1e-10, 1e-12):
        v_wl, v_bl, _, res = schur.solve_symmetric(net, a, c3, v2, tol)
        assert res <= tol
        assert fixed_point_residual(net, a, a, c3, v2, v_wl, v_bl) <= tol
