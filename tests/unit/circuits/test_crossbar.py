"""``Crossbar``: ngspice reference solutions, physical limits, reciprocity, power, results."""

from __future__ import annotations

import re

import numpy as np
import pytest

import cimphys
from cimphys.circuits import Crossbar, CrossbarSolution
from cimphys.errors import InputError

# ngspice 39 solved the reference cases with reltol 1e-9 (README of the reference data), so
# agreement is limited by ngspice, not by us (our residual is 1e-12).
RTOL_NGSPICE = 1e-9
# Exact identities evaluated in float64 by different summation orders.
RTOL_EXACT = 1e-12
# Power in vs power dissipated: both sides are sums of ~MN terms of one sign per element.
RTOL_POWER = 1e-10


def rel(x, y):
    return np.abs(np.asarray(x) - y).max() / max(np.abs(y).max(), 1e-300)


def linear_cases(reference_dir):
    files = sorted(reference_dir.glob("lin_*.npz"))
    assert files, "no linear reference cases"
    return files


@pytest.mark.parametrize("method", ["direct", "iterative", "block"])
def test_matches_ngspice_reference_cases(reference_dir, method):
    for path in linear_cases(reference_dir):
        d = np.load(path)
        xb = Crossbar(d["G"], d["r_wl"], d["r_bl"], d["r_driver"], d["r_sense"], method=method)
        sol = xb.solve(d["v_in"])
        assert rel(sol.i_out, d["i_out"]) < RTOL_NGSPICE, path.name
        assert rel(sol.v_wl, d["v_wl"]) < RTOL_NGSPICE, path.name
        assert rel(sol.v_bl, d["v_bl"]) < RTOL_NGSPICE, path.name
        assert rel(xb.apply(d["v_in"]), d["i_out"]) < RTOL_NGSPICE, path.name


def test_zero_wire_resistance_is_the_ideal_product(rng):
    g = rng.uniform(1e-6, 1e-4, (8, 6))
    v = rng.uniform(0, 0.3, (5, 8))
    xb = cimphys.Crossbar(g, r_wl=0, r_bl=0, r_driver=0, r_sense=0)
    np.testing.assert_allclose(xb.solve(v).i_out, v @ g, rtol=1e-14)
    np.testing.assert_allclose(xb.transfer_matrix(), g.T, rtol=1e-14)


def test_one_cell_obeys_ohms_law_with_series_resistances():
    g, r_wl, r_bl, r_drv, r_sen, v = 2e-3, 3.0, 7.0, 11.0, 13.0, 0.4
    sol = Crossbar([[g]], r_wl, r_bl, r_drv, r_sen).solve([v])
    i = v / (1 / g + r_wl + r_bl + r_drv + r_sen)
    assert abs(sol.i_out[0] - i) < RTOL_EXACT * i
    assert abs(sol.v_wl[0, 0] - (v - i * (r_drv + r_wl))) < RTOL_EXACT * v
    assert abs(sol.v_bl[0, 0] - i * (r_bl + r_sen)) < RTOL_EXACT * v


def test_open_column_carries_no_current(rng):
    g = rng.uniform(1e-5, 1e-3, (6, 5))
    g[:, 2] = 0.0
    sol = Crossbar(g, 2.0, 2.0, 5.0, 5.0).solve(rng.uniform(0, 1, 6))
    assert sol.i_out[2] == 0.0
    np.testing.assert_array_equal(sol.i_cell[:, 2], 0.0)


def test_reciprocity_bias_at_the_sense_node(rng):
    """Y-parameters of a resistive network are symmetric.

    T[j, i] is the current out of the array into sense node j with 1 V at WL source i and all
    other ports at 0 V, i.e. minus the current *into* the network at port j.  Holding sense
    node j at 1 V (``v_bl_end = e_j``) with every WL source at 0 V, the current into the
    network at WL port i is then ``-i_source[i]``, which must equal that same Y_ij.
    """
    m, n = 5, 4
    g = rng.uniform(1e-4, 1e-2, (m, n))
    kw = dict(
        r_wl=rng.uniform(0.5, 9, (m, n)),
        r_bl=rng.uniform(0.5, 9, (m, n)),
        r_driver=rng.uniform(1, 9, m),
        r_sense=rng.uniform(1, 9, n),
    )
    t = Crossbar(g, **kw).transfer_matrix()
    for j in range(n):
        sol = Crossbar(g, v_bl_end=np.eye(n)[j], **kw).solve(np.zeros(m))
        i_source = sol.to_xarray()["i_source"].values
        assert rel(-i_source, t[j]) < RTOL_EXACT


def test_reciprocity_of_the_mirrored_transposed_array(rng):
    """Swap the roles of WLs and BLs: ``G' = G[::-1, ::-1].T`` with the wire and port resistances
    swapped is the same circuit seen from the other ports, so ``T' = T[::-1, ::-1].T``."""
    g = rng.uniform(1e-4, 1e-2, (6, 4))
    t = Crossbar(g, r_wl=1.3, r_bl=2.9, r_driver=4.0, r_sense=7.0).transfer_matrix()
    t2 = Crossbar(g[::-1, ::-1].T, r_wl=2.9, r_bl=1.3, r_driver=7.0, r_sense=4.0).transfer_matrix()
    assert rel(t2, t[::-1, ::-1].T) < RTOL_EXACT


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"r_driver": 20.0, "r_sense": 30.0},
        {"wl_drive": "both", "r_driver": 5.0},
        {"sense_at": "first", "v_bl_end": 0.3},
        {"r_wl": 0.0, "r_driver": 0.0},
        {"wl_drive": "both", "r_driver": 0.0, "r_wl": np.array([[0, 1.0, 0, 2.0]] * 5)},
    ],
    ids=lambda o: "-".join(o) or "reference",
)
def test_power_in_equals_power_dissipated(rng, options):
    g = rng.uniform(1e-4, 1e-2, (5, 4))
    xb = Crossbar(g, **{"r_wl": 1.5, "r_bl": 2.5, **options})
    p = xb.solve(rng.uniform(-1, 1, (3, 5))).power()
    dissipated = sum(p[k].sum() for k in ("cell", "wl", "bl", "driver", "sense", "sink"))
    assert abs(p["source"].sum() - dissipated) < RTOL_POWER * abs(p["source"].sum())
    assert (p["cell"] >= 0).all() and (p["wl"] >= 0).all() and (p["bl"] >= 0).all()


def test_transfer_matrix_is_cached_and_matches_solve(rng):
    g = rng.uniform(1e-6, 1e-4, (7, 5))
    xb = Crossbar(g, r_wl=2.0, r_bl=2.0, v_bl_end=0.05)
    t = xb.transfer_matrix()
    assert t.shape == (5, 7) and xb.transfer_matrix() is t
    v = rng.uniform(0, 1, (4, 7))
    assert rel(xb.apply(v), xb.solve(v).i_out) < RTOL_EXACT


def test_transfer_matrix_cache_is_per_instance(rng):
    """Computing one array's transfer matrix does not wait for another's (no class-wide lock)."""
    import threading

    xb1, xb2 = (Crossbar(rng.uniform(1e-6, 1e-4, (6, 5))) for _ in range(2))
    done = []
    with xb1._transfer_lock:  # as if another thread were computing xb1's matrix
        worker = threading.Thread(target=lambda: done.append(xb2.transfer_matrix()))
        worker.start()
        worker.join(timeout=60)
    assert done and done[0] is xb2.transfer_matrix()


# A loose tol stops the solver early: the fixed-point residual is then at most tol (the
# solver's own final check), and the output currents are off by about tol times the voltage
# scale over the sense-end voltages, here well inside 1e3 * tol.
LOOSE_TOL = 1e-7


def test_solve_honours_the_requested_tolerance(rng):
    from cimphys.circuits.lines import fixed_point_residual
    from cimphys.circuits.network import check_stamp

    g = rng.uniform(1e-6, 1e-4, (64, 64))  # 4096 cells: the symmetric CG path
    v = rng.uniform(0, 0.5, (5, 64))
    xb = Crossbar(g, r_wl=2.0, r_bl=2.0)
    loose, exact = xb.solve(v, tol=LOOSE_TOL), xb.solve(v)
    direct = Crossbar(g, r_wl=2.0, r_bl=2.0, method="direct").solve(v)
    a, _, c3, v2, _ = check_stamp(xb.network, g, g, np.zeros_like(g), v)
    assert fixed_point_residual(xb.network, a, a, c3, v2, loose.v_wl, loose.v_bl) <= LOOSE_TOL
    assert 0.0 < rel(loose.i_out, direct.i_out) < 1e3 * LOOSE_TOL  # stopped early, still close
    assert rel(exact.i_out, direct.i_out) < RTOL_EXACT * 1e3
    np.testing.assert_array_equal(loose.i_cell, g * loose.v_wl - g * loose.v_bl)  # computed on access
    for bad in (0.0, -1e-9, np.nan):
        with pytest.raises(InputError, match="tol"):
            xb.solve(v, tol=bad)


def test_differential_pairs(rng):
    g = rng.uniform(1e-6, 1e-4, (4, 6))
    sol = Crossbar(g, differential=True).solve(rng.uniform(0, 1, 4))
    np.testing.assert_array_equal(sol.i_diff, sol.i_out[0::2] - sol.i_out[1::2])
    assert "i_diff" in sol.to_xarray()
    with pytest.raises(InputError, match="differential"):
        Crossbar(np.ones((2, 3)) * 1e-6, differential=True)
    with pytest.raises(InputError, match="differential"):
        _ = Crossbar(g).solve(np.ones(4)).i_diff


def test_to_xarray_labels_every_variable(rng, tmp_path):
    sol = Crossbar(rng.uniform(1e-6, 1e-4, (3, 4))).solve(rng.uniform(0, 1, (2, 3)))
    assert isinstance(sol, CrossbarSolution)
    ds = sol.to_xarray()
    assert ds["v_wl"].dims == ("batch", "row", "col") and ds["i_out"].dims == ("batch", "col")
    for name, var in ds.data_vars.items():
        assert var.attrs["units"] and var.attrs["long_name"], name
    back = cimphys.open(cimphys.save(ds, tmp_path / "x.nc"))
    np.testing.assert_array_equal(back["i_out"].values, sol.i_out)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((np.array([[1e-5, -1e-6]]),), {}, "G"),
        ((np.array([[1e-5, np.nan]]),), {}, "G"),
        ((np.ones(3),), {}, "G"),
        ((None,), {}, "G"),
        ((np.ones((2, 2)),), {"r_wl": -1.0}, "r_wl"),
        ((np.ones((2, 2)),), {"r_bl": np.ones((3, 2))}, "r_bl"),
    ],
)
def test_rejects_bad_arguments(args, kwargs, match):
    with pytest.raises(InputError, match=match):
        Crossbar(*args, **kwargs)


def test_rejects_bad_input_vector():
    xb = Crossbar(np.full((3, 2), 1e-5))
    for bad in (np.ones(2), np.array([0.1, np.inf, 0.0]), np.ones((2, 2, 3))):
        with pytest.raises(InputError, match="v_in"):
            xb.solve(bad)
    with pytest.raises(InputError, match="v_in"):
        xb.apply(np.ones(4))


def test_cli_writes_netcdf_and_heat_map(rng, tmp_path, capsys):
    from cimphys.cli import main

    g, v = rng.uniform(1e-6, 1e-4, (6, 5)), rng.uniform(0, 0.5, (2, 6))
    np.savez(tmp_path / "in.npz", G=g, v_in=v, r_wl=2.0)
    assert main(["crossbar", str(tmp_path / "in.npz"), "--r-bl", "3", "-o", str(tmp_path / "out")]) == 0
    printed = [line.split(" ", 1)[1] for line in capsys.readouterr().out.splitlines() if line.startswith("wrote ")]
    assert printed == [str(tmp_path / "out" / "crossbar.nc"), str(tmp_path / "out" / "crossbar.png")]
    ds = cimphys.open(printed[0])
    expected = Crossbar(g, r_wl=2.0, r_bl=3.0).solve(v)
    np.testing.assert_allclose(ds["i_out"].values, expected.i_out, rtol=RTOL_EXACT)
    np.testing.assert_allclose(ds["i_ideal"].values, v @ g, rtol=RTOL_EXACT)
    assert (ds["ir_drop_loss"].values > 0).all() and ds["ir_drop_loss"].attrs["units"] == "1"
    assert (tmp_path / "out" / "crossbar.png").stat().st_size > 1000


def test_cli_ideal_wires_lose_nothing_and_bad_input_fails(rng, tmp_path, capsys):
    from cimphys.cli import main

    np.savez(tmp_path / "in.npz", G=rng.uniform(1e-6, 1e-4, (4, 3)), v_in=rng.uniform(0.1, 0.5, 4))
    args = ["crossbar", str(tmp_path / "in.npz"), "--r-wl", "0", "--r-bl", "0", "-o", str(tmp_path)]
    assert main(args) == 0
    assert np.abs(cimphys.open(tmp_path / "crossbar.nc")["ir_drop_loss"].values).max() < RTOL_EXACT
    np.savez(tmp_path / "bad.npz", G=-np.ones((2, 2)), v_in=np.ones(2))
    capsys.readouterr()
    assert main(["crossbar", str(tmp_path / "bad.npz"), "-o", str(tmp_path)]) == 1
    assert "G" in capsys.readouterr().err


def test_cell_model_goes_through_the_nonlinear_hook(reference_dir):
    """``cell=`` hands the network to Newton (cimphys.circuits.newton); checked on ngspice's sinh case."""
    from cimphys.devices import SinhCell

    d = np.load(reference_dir / "sinh_16x12_r2.npz")
    xb = Crossbar(None, d["r_wl"], d["r_bl"], d["r_driver"], d["r_sense"], cell=SinhCell(k=d["k"], a=d["a"]))
    sol = xb.solve(d["v_in"])
    # Newton stops at 1e-11 of the largest cell current; ngspice at reltol 1e-9.
    assert rel(sol.i_out, d["i_out"]) < 1e-8
    with pytest.raises(InputError, match="linear"):
        xb.transfer_matrix()


# -- issue 18: impossible answers, silently coerced or ignored input, memory guards --------------
@pytest.mark.parametrize("method", ["direct", "block", "auto"])
@pytest.mark.parametrize(("n", "batch"), [(8, 1), (64, 8)])
def test_no_node_outside_the_sources_range(method, n, batch):
    """Regression (issue 18.9): G = 1e20 S with 1 ohm wires passed the residual check with
    v_bl ~ 1e3 V from a 0.2 V source on the direct and block paths (checked failing before:
    direct gave 546 V, block 1339 V).  A passive network's nodes lie within its sources' range
    (maximum principle), so such an answer is refused by the solver (a ConvergenceError naming
    why); the Crossbar refuses such G earlier still (see the next test)."""
    from cimphys.circuits.nodal import Network, solve_linear

    g = np.random.default_rng(0).uniform(0.5, 1.0, (n, n)) * 1e20
    net = Network.build((n, n), 1.0, 1.0)
    try:
        v_wl, v_bl, _ = solve_linear(net, g, g, np.zeros_like(g), np.full((batch, n), 0.2), method=method)
    except cimphys.errors.ConvergenceError as exc:
        assert "maximum principle" in str(exc)
        return
    for v in (v_wl, v_bl):
        assert v.min() >= -1e-9 * 0.2 and v.max() <= 0.2 * (1 + 1e-9)


@pytest.mark.parametrize("g_r", [1e7, 1e12, 1e20])
def test_ill_conditioned_arrays_are_refused(g_r):
    """Regression (issue 18.9): at G*r = 1e12 the iterative path answered 0.168 V where SuperLU
    answered 0.197 V, and at 1e20 0 V everywhere, each passing its residual check (checked
    failing before: no error).  No float64 solve is trustworthy there; Crossbar says so."""
    g = np.random.default_rng(0).uniform(0.5, 1.0, (8, 8)) * g_r
    with pytest.raises(InputError, match=r"G\*r = .*GR_MAX.*check the units of G"):
        Crossbar(g, r_wl=1.0, r_bl=1.0, method="iterative")


def test_maximum_principle_holds_on_sound_arrays(rng):
    """The check never refuses a physical array (the answers it passes are the usual ones)."""
    g = rng.uniform(1e-6, 1e-4, (32, 24))
    v = rng.uniform(-0.2, 0.3, (4, 32))
    for method in ("direct", "iterative", "block"):
        sol = Crossbar(g, r_wl=2.0, r_bl=2.0, r_driver=10.0, r_sense=5.0, method=method).solve(v)
        assert sol.v_bl.min() >= v.min() and sol.v_wl.max() <= v.max()


def test_caller_array_stays_writable_and_private(rng):
    """Regression (issue 18.10): Crossbar(G) made the caller's G read-only."""
    g = rng.uniform(1e-6, 1e-4, (3, 2))
    xb = Crossbar(g)
    assert g.flags.writeable
    g[0, 0] = 5e-5  # the crossbar keeps its own copy
    assert xb.G[0, 0] != 5e-5 and not xb.G.flags.writeable


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"G": np.full((2, 2), 1e-5 + 0j)}, "real conductances"),
        ({"G": np.ones((2, 2), dtype=bool)}, "real conductances"),
        ({"G": np.full((2, 2), 1e-5), "cell": cimphys.devices.SinhCell(k=1e-6, a=2.0)}, "G, cell: give one"),
        ({"G": np.full((2, 2), 1e-5), "shape": (3, 3)}, "does not match G"),
        ({"G": None, "cell": cimphys.devices.SinhCell(k=np.full((2, 3), 1e-6), a=2.0), "shape": (3, 3)},
         "does not match the cell"),
    ],
)
def test_conflicting_or_coerced_inputs_are_refused(kwargs, match):
    """Regression (issue 18.10): complex and boolean G were coerced, G with cell= and a shape
    contradicting the cell parameters were ignored (checked failing before: no error)."""
    with pytest.raises(InputError, match=match):
        Crossbar(**kwargs)


def test_explicit_methods_check_their_memory_before_allocating():
    """Regression (issue 18.10): method="block" skipped the memory guard (a 1024 x 1024 array grew
    past 3.2 GB) and method="direct" above the node limit failed with a made-up "missed tol
    after 1000 iterations, residual nan"."""
    g = np.broadcast_to(1e-5, (1024, 1024))
    with pytest.raises(InputError, match=r"method='block'.*GiB.*MAX_BLOCK_BYTES"):
        Crossbar(g, method="block")
    big = np.broadcast_to(1e-5, (1024, 1024))
    with pytest.raises(InputError, match=r"method='direct'.*MAX_DIRECT_NODES"):
        Crossbar(big, method="direct")
    from cimphys.circuits.nodal import Network, solve_linear

    net = Network.build((1024, 1024), 1.0, 1.0)
    with pytest.raises(InputError, match="method='direct'"):
        solve_linear(net, big, big, np.zeros((1024, 1024)), np.zeros(1024), method="direct")


def _npy_renamed(path):
    with path.open("wb") as handle:
        np.save(handle, np.ones((2, 2)))


def _truncated(path):
    np.savez(path, G=np.full((8, 8), 1e-5), v_in=np.ones(8))
    path.write_bytes(path.read_bytes()[:300])


def _text(path):
    path.write_text("G = 1e-5\n")


def _objects(path):
    np.savez(path, G=np.array([{"G": 1}], dtype=object), v_in=np.ones(1))


@pytest.mark.parametrize(
    ("make", "args", "match"),
    [
        (_npy_renamed, [], r"bad\.npz: not an \.npz archive \(a \.npy array"),
        (_truncated, [], r"bad\.npz: damaged \.npz"),
        (_text, [], r"bad\.npz: not an \.npz archive \(not a zip archive"),
        (_objects, [], r"bad\.npz: holds arrays of Python objects, which are refused"),
        (None, ["--batch", "0"], r"--batch: expected at least 1 input vector, got 0"),
        (None, ["--t-read", "-1"], r"--t-read: expected a positive read time"),
    ],
)
def test_cli_bad_input_files_get_one_clear_line(tmp_path, capsys, make, args, match):
    """Regression (issue 18.10): a .npy renamed .npz, a truncated .npz and a text file gave raw
    tracebacks (the text one suggesting allow_pickle), --batch 0 a raw error from deep inside
    (checked failing before: exit through an uncaught exception or the wrong message)."""
    from cimphys.cli import main

    path = tmp_path / "bad.npz"
    if make is not None:
        make(path)
    else:
        np.savez(path, G=np.full((2, 2), 1e-5), v_in=np.ones(2))
    assert main(["crossbar", str(path), *args, "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert "Traceback" not in err and "allow_pickle" not in err
