"""The linear nodal solver against a dense twin, in limits, and on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.circuits.nodal import BlockFactor, Network, network_residual, solve_linear, transfer_matrix
from cimphys.errors import InputError
from dense_nodal import dense_twin

# Dense numpy.linalg.solve of the same equations: both are exact to rounding, so they agree
# to ~1e2 * machine epsilon times the condition number of these small networks (< 1e4).
RTOL_TWIN = 1e-10
# Zero resistance vs a tiny one (1e-7 ohm): the solution moves by O(r * sum G) ~ 1e-8 relative;
# the dense twin of the tiny-r network loses ~1e-8 to its conditioning (1e7 S wires vs 1e-4 S cells).
RTOL_EPS_LIMIT = 1e-6


def rel(x, y):
    return np.abs(np.asarray(x) - y).max() / max(np.abs(y).max(), 1e-300)


OPTIONS = [
    {},
    {"wl_drive": "both"},
    {"sense_at": "first"},
    {"v_bl_end": 0.25},
    {"wl_floating": np.array([False, True, False, False, False]), "bl_floating": np.array([False, False, True, False])},
    {"wl_drive": "both", "sense_at": "first", "v_bl_end": -0.1},
]


def random_network(rng, shape, **options):
    m, n = shape
    return Network.build(
        shape,
        r_wl=rng.uniform(0.1, 20, (m, n)),
        r_bl=rng.uniform(0.1, 20, (m, n)),
        r_driver=rng.uniform(0.1, 50, m),
        r_sense=rng.uniform(0.1, 50, n),
        **options,
    )


@pytest.mark.parametrize("method", ["direct", "iterative", "block"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "reference")
def test_matches_dense_twin(rng, method, options):
    net = random_network(rng, (5, 4), **options)
    a = rng.uniform(1e-5, 1e-2, (5, 4))
    b = a * rng.uniform(0.5, 1.5, (5, 4))  # non-symmetric stamp, as for a 1T1R cell
    c = rng.uniform(-1e-3, 1e-3, (2, 5, 4))
    v = rng.uniform(-1, 1, (2, 5))
    v_wl, v_bl, i_out = solve_linear(net, a, b, c, v, method=method)
    for k in range(2):
        tw = dense_twin(net, a, b, c[k], v[k])
        assert rel(v_wl[k], tw[0]) < RTOL_TWIN
        assert rel(v_bl[k], tw[1]) < RTOL_TWIN
        assert rel(i_out[k], tw[2]) < RTOL_TWIN


@pytest.mark.parametrize("method", ["direct", "iterative", "block"])
def test_single_vector_shapes_and_residual(rng, method):
    net = random_network(rng, (3, 7))
    g = rng.uniform(1e-5, 1e-3, (3, 7))
    v = rng.uniform(0, 1, 3)
    v_wl, v_bl, i_out = solve_linear(net, g, g, np.zeros((3, 7)), v, method=method)
    assert v_wl.shape == v_bl.shape == (3, 7) and i_out.shape == (7,)
    assert network_residual(net, g, g, np.zeros((3, 7)), v, v_wl, v_bl) < 1e-12


def zero_r_cases(rng, m=6, n=5):
    """Networks with zero resistances mixed in, and their tiny-resistance twins."""
    holes = lambda shape, p: np.where(rng.random(shape) < p, 0.0, rng.uniform(0.5, 5, shape))  # noqa: E731
    r_wl, r_bl = holes((m, n), 0.4), holes((m, n), 0.4)
    r_drv, r_sen = holes(m, 0.5), holes(n, 0.5)
    for options in ({}, {"wl_drive": "both"}, {"sense_at": "first"}):
        exact = Network.build((m, n), r_wl, r_bl, r_drv, r_sen, **options)
        eps = lambda r: np.where(r == 0, 1e-7, r)  # noqa: E731
        near = Network.build((m, n), eps(r_wl), eps(r_bl), eps(r_drv), eps(r_sen), **options)
        yield exact, near


def test_zero_resistances_are_the_limit_of_small_ones(rng):
    g = rng.uniform(1e-4, 1e-2, (6, 5))
    v = rng.uniform(-1, 1, (3, 6))
    for exact, near in zero_r_cases(rng):
        ref = dense_twin(near, g, g, np.zeros((6, 5)), v[0])
        for method in ("direct", "iterative"):
            v_wl, v_bl, i_out = solve_linear(exact, g, g, np.zeros((6, 5)), v, method=method)
            assert rel(i_out[0], ref[2]) < RTOL_EPS_LIMIT
            assert rel(v_wl[0], ref[0]) < RTOL_EPS_LIMIT
            assert rel(v_bl[0], ref[1]) < RTOL_EPS_LIMIT


def test_direct_and_iterative_merge_zero_segments_alike(rng):
    g = rng.uniform(1e-4, 1e-2, (6, 5))
    c = rng.uniform(-1e-3, 1e-3, (6, 5))
    v = rng.uniform(-1, 1, (2, 6))
    for exact, _ in zero_r_cases(rng):
        d = solve_linear(exact, g, 0.8 * g, c, v, method="direct")
        it = solve_linear(exact, g, 0.8 * g, c, v, method="iterative")
        for x, y in zip(d, it):
            assert rel(x, y) < RTOL_TWIN


@pytest.mark.parametrize("method", ["direct", "iterative"])
def test_all_resistances_zero_is_the_ideal_product(rng, method):
    g = rng.uniform(1e-6, 1e-4, (7, 9))
    v = rng.uniform(-0.5, 0.5, (4, 7))
    net = Network.build(g.shape, 0.0, 0.0, 0.0, 0.0)
    v_wl, v_bl, i_out = solve_linear(net, g, g, np.zeros_like(g), v, method=method)
    assert np.array_equal(v_wl, np.broadcast_to(v[:, :, None], v_wl.shape))
    assert np.array_equal(v_bl, np.zeros_like(v_bl))
    np.testing.assert_allclose(i_out, v @ g, rtol=1e-14, atol=0)


def test_large_array_uses_iterative_path_and_agrees(rng):
    g = rng.uniform(1e-6, 1e-4, (70, 64))
    v = rng.uniform(0, 0.5, (2, 70))
    net = Network.build(g.shape, 1.0, 1.0, 10.0, 5.0)
    auto = solve_linear(net, g, g, np.zeros_like(g), v)
    direct = solve_linear(net, g, g, np.zeros_like(g), v, method="direct")
    for x, y in zip(auto, direct):
        assert rel(x, y) < RTOL_TWIN


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"r_wl": -1.0}, "r_wl"),
        ({"r_bl": np.nan}, "r_bl"),
        ({"r_driver": np.inf}, "r_driver"),
        ({"r_sense": np.ones(3)}, "r_sense"),
        ({"r_wl": np.ones((4, 4))}, "r_wl"),
        ({"wl_drive": "far"}, "wl_drive"),
        ({"sense_at": "middle"}, "sense_at"),
        ({"wl_floating": 1}, "wl_floating"),
        ({"v_bl_end": np.nan}, "v_bl_end"),
        ({"wl_drive": "both", "r_driver": 0.0, "r_wl": 0.0}, "drivers"),
    ],
)
def test_network_rejects_bad_input(kwargs, match):
    with pytest.raises(InputError, match=match):
        Network.build((3, 4), **{"r_wl": 1.0, **kwargs})


def test_solve_rejects_bad_stamp_and_inputs():
    net = Network.build((3, 4))
    g = np.full((3, 4), 1e-5)
    z = np.zeros((3, 4))
    with pytest.raises(InputError, match="a:"):
        solve_linear(net, g[:2], g, z, np.ones(3))
    with pytest.raises(InputError, match="v_in"):
        solve_linear(net, g, g, z, np.ones(4))
    with pytest.raises(InputError, match="v_in"):
        solve_linear(net, g, g, z, np.array([1.0, np.nan, 0.0]))
    with pytest.raises(InputError, match="batch"):
        solve_linear(net, g, g, np.zeros((2, 3, 4)), np.ones((3, 3)))
    with pytest.raises(InputError, match="method"):
        solve_linear(net, g, g, z, np.ones(3), method="magic")
    with pytest.raises(InputError, match="tol"):
        solve_linear(net, g, g, z, np.ones(3), tol=0.0)


@pytest.mark.parametrize("method", ["direct", "iterative"])
def test_floating_island_is_reported_not_returned(method):
    # WL 1 floats and its cells are open: its nodes have no path anywhere.
    net = Network.build((3, 4), wl_floating=np.array([False, True, False]))
    g = np.full((3, 4), 1e-5)
    g[1] = 0.0
    with pytest.raises(InputError, match="singular"):
        solve_linear(net, g, g, np.zeros((3, 4)), np.ones(3), method=method)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "reference")
def test_block_transfer_matrix_matches_unit_solves(rng, options):
    net = random_network(rng, (5, 4), **options)
    a = rng.uniform(1e-5, 1e-2, (5, 4))
    b = a * rng.uniform(0.5, 1.5, (5, 4))
    t_block = BlockFactor(net, a, b).transfer()
    t_iter = transfer_matrix(net, a, b, method="iterative")
    assert t_block.shape == (4, 5)
    assert rel(t_block, t_iter) < RTOL_TWIN


def test_block_path_refuses_merged_bit_lines():
    net = Network.build((3, 4), r_bl=0.0)
    with pytest.raises(InputError, match="block"):
        solve_linear(net, np.ones((3, 4)), np.ones((3, 4)), np.zeros((3, 4)), np.ones(3), method="block")
    # ... while transfer_matrix falls back to unit solves
    t = transfer_matrix(net, np.full((3, 4), 1e-3), np.full((3, 4), 1e-3))
    assert t.shape == (4, 3) and np.isfinite(t).all()


def chain_twin(d, s, rseg, rlo, ulo, rhi, uhi):
    """Dense twin of one chain: KCL summed over each zero-resistance run, plus equalities."""
    n = d.size
    runs, start = [], 0
    for t in range(1, n + 1):
        if t == n or rseg[t - 1] > 0:
            runs.append(list(range(start, t)))
            start = t
    k, f = np.zeros((n, n)), np.zeros(n)
    row = 0
    for run in runs:
        fixed = (run[0] == 0 and rlo == 0) or (run[-1] == n - 1 and rhi == 0)
        if fixed:
            k[row, run[0]] = 1.0
            f[row] = ulo if (run[0] == 0 and rlo == 0) else uhi
        else:
            for t in run:
                k[row, t] += d[t]
                f[row] += s[t]
                for nb, r in ((t - 1, rseg[t - 1] if t > 0 else 0), (t + 1, rseg[t] if t < n - 1 else 0)):
                    if r > 0:
                        k[row, t] += 1 / r
                        k[row, nb] -= 1 / r
            if run[0] == 0 and np.isfinite(rlo):
                k[row, 0] += 1 / rlo
                f[row] += ulo / rlo
            if run[-1] == n - 1 and np.isfinite(rhi):
                k[row, n - 1] += 1 / rhi
                f[row] += uhi / rhi
        row += 1
        for t in run[1:]:
            k[row, t - 1], k[row, t] = 1.0, -1.0
            row += 1
    return np.linalg.solve(k, f)


@pytest.mark.parametrize("ends", [(np.inf, 2.0), (0.0, np.inf), (3.0, 0.0), (0.0, 0.0), (1.0, 4.0)])
def test_chain_kernels_match_their_twin(rng, ends):
    from cimphys.circuits.lines import _chain_apply, _chain_factor

    n = 9
    d, s = rng.uniform(0, 1e-2, n), rng.uniform(-1e-3, 1e-3, n)
    rseg = np.where(rng.random(n - 1) < 0.4, 0.0, rng.uniform(0.5, 5, n - 1))
    rseg[0] = 1.0  # keep both ends apart when both are fixed
    rlo, rhi = ends
    gid, low, cp, ipiv, z = (np.empty(n, np.int64), np.empty(n), np.empty(n), np.empty(n), np.empty(n))
    _chain_factor(d, rseg, rlo, rhi, gid, low, cp, ipiv)
    _chain_apply(s, gid, low, cp, ipiv, rlo, 0.3, rhi, -0.2, z)
    x = z[gid]
    assert rel(x, chain_twin(d, s, rseg, rlo, 0.3, rhi, -0.2)) < RTOL_TWIN


# ---------------------------------------------------------------------------------------------
# Symmetric stamps: CG on the bit-line Schur complement (cimphys.circuits.schur)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "reference")
def test_symmetric_cg_matches_dense_twin(rng, options):
    from cimphys.circuits import schur
    from cimphys.circuits.nodal import check_stamp

    net = random_network(rng, (5, 4), **options)
    a = rng.uniform(1e-5, 1e-2, (5, 4))
    c = rng.uniform(-1e-3, 1e-3, (5, 5, 4))
    v = rng.uniform(-1, 1, (5, 5))  # 5 members: one full chunk of 4 and a partial one
    assert schur.eligible(net, a, a)
    a2, _, c3, v2, _ = check_stamp(net, a, a, c, v)
    found = schur.solve_symmetric(net, a2, c3, v2, 1e-12)
    assert found is not None and found[3] <= 1e-12
    for k in range(5):
        tw = dense_twin(net, a, a, c[k], v[k])
        assert rel(found[0][k], tw[0]) < RTOL_TWIN
        assert rel(found[1][k], tw[1]) < RTOL_TWIN


def test_symmetric_cg_on_the_reference_crossbar_agrees_with_direct(rng):
    from cimphys.circuits import schur

    net = Network.build((48, 40))
    g = rng.uniform(1e-6, 1e-4, (48, 40))
    v = rng.uniform(0, 0.5, (6, 48))
    assert schur.eligible(net, g, g)
    auto = solve_linear(net, g, g, np.zeros_like(g), v)  # >= AUTO_ITERATIVE_CELLS: the CG path
    direct = solve_linear(net, g, g, np.zeros_like(g), v, method="direct")
    for x, y in zip(auto, direct):
        assert rel(x, y) < RTOL_TWIN


# A looser tol stops CG earlier; its answer is then off by about tol times the voltage scale
# over the sense-end voltages (~V * G * M * r / V), here bounded by 1e3 * tol.
LOOSE_TOL = 1e-6


def test_symmetric_cg_honours_a_loose_tolerance(rng):
    from cimphys.circuits import schur
    from cimphys.circuits.nodal import check_stamp

    net = Network.build((32, 32), r_wl=2.0, r_bl=2.0)
    g = rng.uniform(1e-5, 1e-3, (32, 32))
    v = rng.uniform(0, 0.5, (4, 32))
    a, _, c3, v2, _ = check_stamp(net, g, g, np.zeros_like(g), v)
    loose = schur.solve_symmetric(net, a, c3, v2, LOOSE_TOL)
    tight = schur.solve_symmetric(net, a, c3, v2, 1e-13)
    assert loose[3] <= LOOSE_TOL and tight[3] <= 1e-13
    assert loose[2] < tight[2]
    assert rel(loose[1], tight[1]) < 1e3 * LOOSE_TOL
    assert rel(loose[1], tight[1]) > 0.0  # it did stop early


def test_symmetric_cg_eligibility():
    from cimphys.circuits import schur

    g = np.full((3, 4), 1e-5)
    net = Network.build((3, 4))
    assert schur.eligible(net, g, g)
    assert not schur.eligible(net, g, 0.9 * g)  # non-symmetric stamp
    assert not schur.eligible(net, -g, -g)  # negative differential conductance: not SPD
    r = np.ones((3, 4))
    r[1, 2] = 0.0
    assert not schur.eligible(Network.build((3, 4), r_wl=r), g, g)  # merged WL nodes
    assert not schur.eligible(Network.build((3, 4), r_bl=r), g, g)  # merged BL nodes
    assert not schur.eligible(Network.build((3, 4), r_wl=0.0, r_driver=0.0), g, g)  # fixed WL node


def test_symmetric_cg_reports_a_singular_network_as_no_answer():
    from cimphys.circuits import schur
    from cimphys.circuits.nodal import check_stamp

    net = Network.build((3, 4), wl_floating=np.array([False, True, False]))
    g = np.full((3, 4), 1e-5)
    g[1] = 0.0  # WL 1 has no path anywhere
    a, _, c3, v2, _ = check_stamp(net, g, g, np.zeros_like(g), np.ones(3))
    assert schur.solve_symmetric(net, a, c3, v2, 1e-12) is None


# The block kernels themselves (Cholesky recursion, its LU twin, the one-pass transfer) are
# tested in test_transfer.py, next to cimphys.circuits.transfer.


def test_block_path_reports_a_singular_symmetric_network():
    # BL 1 floats and its cells are open: the Cholesky fails, the LU fallback finds it singular.
    net = Network.build((3, 4), bl_floating=np.array([False, True, False, False]))
    g = np.full((3, 4), 1e-5)
    g[:, 1] = 0.0
    with pytest.raises(InputError, match="singular"):
        BlockFactor(net, g, g)
