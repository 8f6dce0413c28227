"""The linear dispatcher's report: which path answered, iterations, residual, fallback, time.

Each path is forced by the network and batch that select it (:func:`choose_path`), and the
report is checked against what that path must have done: a factorisation reports one
iteration, a Krylov path more; every residual is below the tolerance the solve was held to; a
path that declines leaves the answer to SuperLU and says so.
"""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.circuits import Crossbar, linear
from cimphys.circuits.linear import PATHS, SolveReport, choose_path, solve_with_report
from cimphys.circuits.network import Network

# The tolerance every solve is held to (linear.RTOL_SOLVE); a report's residual must not exceed it.
TOL = linear.RTOL_SOLVE


def _g(rng, m, n):
    return rng.uniform(1e-6, 1e-4, (m, n))


def _check(report: SolveReport, path: str, fell_back: bool = False) -> None:
    assert report.path == path
    assert report.fell_back is fell_back
    assert 0.0 <= report.residual <= TOL
    assert report.time > 0.0
    assert report.iterations >= 1


def test_small_array_with_merged_nodes_reports_the_direct_path(rng):
    # Ideal wires merge every line's nodes: no symmetric CG and no block factor (rows merge), and
    # the array is too small for the iterative paths.
    sol = Crossbar(_g(rng, 6, 5), r_wl=0.0, r_bl=0.0).solve(rng.uniform(0, 0.2, 6))
    _check(sol.report, "direct")
    assert sol.report.iterations == 1  # one factorisation


def test_small_symmetric_array_reports_cg(rng):
    # The 48 x 64 array the issue timed: the symmetric CG was the fastest path there
    # (benchmarks/bench_solver_choice.py), so auto takes it at any size.
    sol = Crossbar(_g(rng, 48, 64)).solve(rng.uniform(0, 0.2, (64, 48)))
    _check(sol.report, "symmetric_cg")


@pytest.mark.parametrize("path", PATHS)
def test_a_forced_path_answers_and_agrees_with_superlu(rng, path):
    net = Network.build((12, 10))
    g, v = _g(rng, 12, 10), rng.uniform(0, 0.2, (3, 12))
    *_, i_ref, ref = solve_with_report(net, g, g, np.zeros((12, 10)), v, method="direct")
    *_, i_out, report = solve_with_report(net, g, g, np.zeros((12, 10)), v, path=path)
    _check(report, path)
    # Both answers meet a KCL residual of 1e-12 relative to the largest branch current; on this
    # well-conditioned array (G r <= 1e-4) the outputs then agree to a few times that.
    np.testing.assert_allclose(i_out, i_ref, rtol=1e-10, atol=0)


def test_large_symmetric_array_reports_cg_with_its_iterations(rng):
    sol = Crossbar(_g(rng, 64, 64)).solve(rng.uniform(0, 0.2, (3, 64)))
    _check(sol.report, "symmetric_cg")
    assert sol.report.iterations > 1  # a Krylov method on wires of 1 ohm needs several


def test_iterative_path_on_merged_nodes(rng):
    # A zero WL segment merges nodes: the symmetric CG declines the network, BiCGSTAB takes it.
    r_wl = np.ones((64, 64))
    r_wl[:, 5] = 0.0
    xb = Crossbar(_g(rng, 64, 64), r_wl=r_wl, method="iterative")
    assert choose_path(xb.network, xb.G, xb.G, 1, "iterative") == "iterative"
    _check(xb.solve(rng.uniform(0, 0.2, 64)).report, "iterative")


def test_block_path_reports_a_factorisation(rng):
    xb = Crossbar(_g(rng, 16, 12), method="block")
    sol = xb.solve(rng.uniform(0, 0.2, (4, 16)))
    _check(sol.report, "block")
    assert sol.report.iterations == 1


def test_declined_path_falls_back_to_direct_and_says_so(rng, monkeypatch):
    net = Network.build((64, 64), r_wl=1.0, r_bl=1.0, r_driver=0.0, r_sense=0.0)
    g = _g(rng, 64, 64)
    g[:, 3] = 0.0  # still eligible; the decline is forced below
    monkeypatch.setattr(linear.schur, "solve_symmetric", lambda *args, **kw: None)
    monkeypatch.setattr(linear, "solve_iterative", lambda *args, **kw: None)
    v = rng.uniform(0, 0.2, 64)
    v_wl, v_bl, i_out, report = solve_with_report(net, g, g, np.zeros((64, 64)), v)
    _check(report, "direct", fell_back=True)
    expect = solve_with_report(net, g, g, np.zeros((64, 64)), v, method="direct")
    assert expect[3].fell_back is False
    np.testing.assert_array_equal(i_out, expect[2])  # the same SuperLU answer


def test_report_reaches_the_dataset_attributes(rng):
    sol = Crossbar(_g(rng, 4, 3)).solve(rng.uniform(0, 0.2, 4))
    assert sol.report.path == "block"  # three columns: auto factorises
    attrs = sol.to_xarray().attrs
    assert attrs["solver_path"] == sol.report.path
    assert attrs["solver_iterations"] == sol.report.iterations
    assert attrs["solver_residual"] == sol.report.residual
    assert attrs["solver_fell_back"] == 0
    assert attrs["solver_time"] == sol.report.time and attrs["solver_time_units"] == "s"


@pytest.mark.parametrize("method", linear.METHODS)
def test_choice_is_a_known_path(rng, method):
    net = Network.build((8, 8))
    assert choose_path(net, _g(rng, 8, 8), _g(rng, 8, 8), 1, method) in PATHS
