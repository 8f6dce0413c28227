"""A dense twin of the crossbar's nodal equations, for the tests: plain KCL over all 2 M N
nodes assembled element by element and solved by numpy.linalg.solve (no node merging: every
resistance must be > 0).  Written independently of cimphys.circuits; :func:`solve_stamps_reference`
alone calls its direct (SuperLU) path, the twin of the batched Newton stamps."""

from __future__ import annotations

import numpy as np

from cimphys.circuits.linear import solve_linear


def wire_matrix(net, v_in):
    """Conductance matrix ``k`` (2MN x 2MN) of the wires, drivers and sense ends, the source
    currents ``f`` for WL sources ``v_in`` (M,), and the WL and BL node index functions."""
    m, n = net.shape
    size = 2 * m * n
    wl = lambda i, j: i * n + j  # noqa: E731
    bl = lambda i, j: m * n + i * n + j  # noqa: E731
    k = np.zeros((size, size))
    f = np.zeros(size)

    def wire(p, q, r):
        k[p, p] += 1 / r
        k[q, q] += 1 / r
        k[p, q] -= 1 / r
        k[q, p] -= 1 / r

    def source(p, r, u):
        k[p, p] += 1 / r
        f[p] += u / r

    for i in range(m):
        if not net.wl_floating[i]:
            source(wl(i, 0), net.r_driver[i] + net.r_wl[i, 0], v_in[i])
            if net.wl_drive == "both":
                source(wl(i, n - 1), net.r_driver[i], v_in[i])
        for j in range(1, n):
            wire(wl(i, j - 1), wl(i, j), net.r_wl[i, j])
    for j in range(n):
        end = m - 1 if net.sense_at == "last" else 0
        r_end = net.r_bl[end, j] + net.r_sense[j]
        if not net.bl_floating[j]:
            source(bl(end, j), r_end, net.v_bl_end[j])
        for i in range(1, m):
            r = net.r_bl[i - 1, j] if net.sense_at == "last" else net.r_bl[i, j]
            wire(bl(i - 1, j), bl(i, j), r)
    return k, f, wl, bl


def dense_twin(net, a, b, c, v_in):
    """Node voltages and sense currents of the linear stamp ``I = a v_wl - b v_bl + c``."""
    m, n = net.shape
    k, f, wl, bl = wire_matrix(net, v_in)
    for i in range(m):
        for j in range(n):
            p, q = wl(i, j), bl(i, j)
            k[p, p] += a[i, j]
            k[p, q] -= b[i, j]
            k[q, p] -= a[i, j]
            k[q, q] += b[i, j]
            f[p] -= c[i, j]
            f[q] += c[i, j]
    x = np.linalg.solve(k, f)
    v_wl, v_bl = x[: m * n].reshape(m, n), x[m * n :].reshape(m, n)
    end = m - 1 if net.sense_at == "last" else 0
    r_end = net.r_bl[end] + net.r_sense
    i_out = np.where(net.bl_floating, 0.0, (v_bl[end] - net.v_bl_end) / r_end)
    return v_wl, v_bl, i_out


def solve_stamps_reference(network, d, c, v_in):
    """The plain twin of :func:`cimphys.circuits.newton_batch.solve_stamps`: SuperLU on the
    assembled nodal matrix, vector by vector (:func:`cimphys.circuits.linear.solve_linear` with
    ``method="direct"``)."""
    out = [solve_linear(network, d[b], d[b], c[b], v_in[b], method="direct") for b in range(d.shape[0])]
    return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])
