"""Batched Newton on a crossbar of sinh cells against a plain scipy Newton and against ngspice.

128 x 128 cells ``I = k sinh(a V)`` (k uniform in [2, 20] uA, a = 4 /V), r_wl = r_bl = 1 ohm,
64 input vectors uniform in [0.1, 0.4] V.

* Ours: :func:`cimphys.circuits.newton.solve_nonlinear` on the whole batch (warm, best of 3).
* Peer 1, written here: a straightforward scipy Newton, one vector at a time -- the stamps
  vectorised in NumPy, the Jacobian assembled as a sparse matrix and factorised by ``splu``
  every iteration, stopped on the same update test (1e-10 relative + 1e-12 V).  Target >= 150x.
* Peer 2: ``ngspice -b`` on the netlist of :mod:`cimphys.circuits.spice` for the first vector
  (``.op``, reltol 1e-9; process start and netlist parse included, as a user would run it);
  compared per vector with ours (batch time / 64).  Target >= 10,000x.  ngspice's answer also
  checks ours: the output currents must agree to 1e-7 relative, and scipy's to 1e-9.

``quick=True``: 32 x 32, 16 inputs, smoke targets (10x scipy, 100x ngspice per vector).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Record, best_of, main  # noqa: E402

RTOL_AGREE = 1e-7  # the validation campaign's tolerance against ngspice
RTOL_SCIPY = 1e-9  # both Newton solves converge to ~1e-11 of the largest cell current


def scipy_newton(k, a, v_in, r_wl, r_bl, rtol_v=1e-10, vntol=1e-12, max_iter=60):
    """Newton on the reference crossbar (r_driver = r_sense = 0) for one input vector.

    Unknowns: the M N word-line then the M N bit-line node voltages.  Returns the bit-line
    voltages ``(M, N)`` and the output currents ``(N,)`` (A).
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu

    m, n = k.shape
    nw = m * n
    wl = np.arange(nw).reshape(m, n)
    bl = nw + wl
    rows, cols, vals = [], [], []

    def branch(p, q, g):
        rows.extend([p, q, p, q])
        cols.extend([p, q, q, p])
        vals.extend([g, g, -g, -g])

    branch(wl[:, :-1].ravel(), wl[:, 1:].ravel(), np.full(m * (n - 1), 1.0 / r_wl))
    branch(bl[:-1].ravel(), bl[1:].ravel(), np.full((m - 1) * n, 1.0 / r_bl))
    rows += [wl[:, 0], bl[-1]]
    cols += [wl[:, 0], bl[-1]]
    vals += [np.full(m, 1.0 / r_wl), np.full(n, 1.0 / r_bl)]  # to the source / the sense node
    wires = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), (2 * nw, 2 * nw))
    wires = wires.tocsc()
    p, q = wl.ravel(), bl.ravel()
    cell_rows, cell_cols = np.concatenate([p, p, q, q]), np.concatenate([p, q, p, q])
    source = np.zeros(2 * nw)
    source[wl[:, 0]] = v_in / r_wl
    x = np.concatenate([np.repeat(v_in[:, None], n, 1).ravel(), np.zeros(nw)])
    kf = k.ravel()
    for _ in range(max_iter):
        v = x[p] - x[q]
        i, g = kf * np.sinh(a * v), kf * a * np.cosh(a * v)
        f = wires @ x - source
        np.add.at(f, p, i)
        np.add.at(f, q, -i)
        jac = wires + sp.coo_matrix((np.concatenate([g, -g, -g, g]), (cell_rows, cell_cols)), (2 * nw, 2 * nw))
        dx = splu(jac.tocsc()).solve(-f)
        x = x + dx
        if np.abs(dx).max() <= vntol + rtol_v * np.abs(x).max():
            v_bl = x[nw:].reshape(m, n)
            return v_bl, v_bl[-1] / r_bl
    raise RuntimeError("scipy Newton did not converge")


def run(quick: bool = False) -> list[Record]:
    from cimphys.circuits import spice
    from cimphys.circuits.newton import solve_nonlinear
    from cimphys.circuits.nodal import Network
    from cimphys.devices import SinhCell

    n, nb = (32, 16) if quick else (128, 64)
    rng = np.random.default_rng(128)
    k, a, v_in = rng.uniform(2e-6, 2e-5, (n, n)), 4.0, rng.uniform(0.1, 0.4, (nb, n))
    net, cell = Network.build((n, n), r_wl=1.0, r_bl=1.0), SinhCell(k=k, a=a)
    sol = solve_nonlinear(net, cell, v_in)  # compile and warm up
    ours = best_of(lambda: solve_nonlinear(net, cell, v_in), repeat=3)
    solve_nonlinear(net, cell, v_in[0])  # compile the per-vector path
    serial = best_of(lambda: [solve_nonlinear(net, cell, v_in[j]) for j in range(8)], repeat=1) * nb / 8

    start = time.perf_counter()
    i_scipy = np.stack([scipy_newton(k, a, v_in[j], 1.0, 1.0)[1] for j in range(nb)])
    peer_scipy = time.perf_counter() - start
    err_scipy = float(np.max(np.abs(sol.i_out - i_scipy)) / np.max(np.abs(i_scipy)))
    if err_scipy > RTOL_SCIPY:
        raise AssertionError(f"batched Newton and scipy Newton disagree: {err_scipy:.2e} relative on i_out")

    with tempfile.TemporaryDirectory() as tmp:
        path = spice.write_netlist(Path(tmp) / "sinh.cir", net, v_in[0], spice.sinh_cells(k, a))
        start = time.perf_counter()
        values = spice.run_ngspice(path, timeout=3600)
        peer_spice = time.perf_counter() - start
    i_ref = spice.crossbar_from_values(values, net)[2]
    err = float(np.max(np.abs(sol.i_out[0] - i_ref)) / np.max(np.abs(i_ref)))
    if err > RTOL_AGREE:
        raise AssertionError(f"Newton and ngspice disagree: {err:.2e} relative on i_out")
    iters = f"{int(sol.iterations.min())}-{int(sol.iterations.max())} Newton iterations"
    return [
        Record(
            name=f"sinh cells {n}x{n}, {nb} inputs, batched Newton",
            ours=ours,
            peer_name="scipy Newton, splu per iteration, one vector at a time",
            peer=peer_scipy,
            unit="s",
            target=10.0 if quick else 150.0,
            notes=f"{iters}; i_out vs scipy {err_scipy:.1e}; per-vector loop of ours {serial:.3g} s "
                  f"({peer_scipy / serial:.0f}x scipy)",
        ),
        Record(
            name=f"sinh cells {n}x{n}, per input vector",
            ours=ours / nb,
            peer_name="ngspice -b .op (B-sources), one vector",
            peer=peer_spice,
            unit="s",
            target=100.0 if quick else 10_000.0,
            notes=f"i_out vs ngspice {err:.1e}",
        ),
    ]


if __name__ == "__main__":
    main(run)
