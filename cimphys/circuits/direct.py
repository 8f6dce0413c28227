"""The direct path: the merged nodal matrix of the network, SuperLU, and the KCL residual.

Zero-resistance segments merge nodes into groups and a zero end resistance fixes a group at its
source; :func:`assemble` numbers the groups of both families of lines and stamps the wires, the
end resistances and the cells ``I_cell = a * v_wl - b * v_bl + c`` into one sparse matrix [1]_.
:func:`solve_direct` factorises it by SuperLU [2]_ (any stamp, any option: the reference path
and the fallback of every other); :func:`network_residual` is the KCL residual every answer is
checked against.

References
----------
.. [1] C. Ho, J. Vlach, *Computer Methods for Circuit Analysis and Design*, 2nd ed., ch. 2
   (nodal formulation), Springer (1994).
.. [2] X. S. Li, "An overview of SuperLU", ACM Trans. Math. Softw. 31, 302 (2005),
   doi:10.1145/1089014.1089017.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .network import Chains, Network, check_stamp

__all__ = ["MAX_DIRECT_NODES", "assemble", "network_residual", "solve_direct"]

#: Largest system (nodes) the SuperLU path is allowed to factorise.
MAX_DIRECT_NODES = 2_000_000

class _Numbering:
    """Global numbering of the merged nodes (groups) of both families of chains."""

    def __init__(self, network: Network):
        self.wl, self.bl = network.wl_chains(), network.bl_chains()
        gw, gb = self.wl.groups, self.bl.groups
        nw, nbl = gw[:, -1] + 1, gb[:, -1] + 1
        off_w = np.concatenate([[0], np.cumsum(nw)[:-1]])
        off_b = np.concatenate([[0], np.cumsum(nbl)[:-1]]) + nw.sum()
        self.wl_gid = gw + off_w[:, None]  # (M, N)
        self.bl_gid = gb + off_b[:, None]  # (N, M)
        self.size = int(nw.sum() + nbl.sum())
        # Fixed groups: the end group of a chain whose end resistance is zero.
        self.fixed = np.zeros(self.size, bool)
        for ch, gid in ((self.wl, self.wl_gid), (self.bl, self.bl_gid)):
            self.fixed[gid[ch.r_lo == 0, 0]] = True
            self.fixed[gid[ch.r_hi == 0, -1]] = True

    def fixed_values(self, network: Network, v2: np.ndarray) -> np.ndarray:
        """Voltages of every group, filled at the fixed groups, ``(batch, size)``."""
        vals = np.zeros((v2.shape[0], self.size))
        lo, hi = self.wl.r_lo == 0, self.wl.r_hi == 0
        vals[:, self.wl_gid[hi, -1]] = v2[:, hi]
        vals[:, self.wl_gid[lo, 0]] = v2[:, lo]
        lo, hi = self.bl.r_lo == 0, self.bl.r_hi == 0
        vals[:, self.bl_gid[lo, 0]] = network.v_bl_end[lo]
        vals[:, self.bl_gid[hi, -1]] = network.v_bl_end[hi]
        return vals


def _chain_stamps(ch: Chains, gid: np.ndarray, u_lo: np.ndarray, u_hi: np.ndarray, rows, cols, vals, rhs):
    """Append the wire and end stamps of a family of chains (rhs is ``(batch, size)``)."""
    seg = ch.r_seg > 0
    p, q = gid[:, :-1][seg], gid[:, 1:][seg]
    g = 1.0 / ch.r_seg[seg]
    rows += [p, q, p, q]
    cols += [p, q, q, p]
    vals += [g, g, -g, -g]
    for r_end, node, u in ((ch.r_lo, gid[:, 0], u_lo), (ch.r_hi, gid[:, -1], u_hi)):
        ok = (r_end > 0) & np.isfinite(r_end)
        g_end = 1.0 / r_end[ok]
        rows.append(node[ok])
        cols.append(node[ok])
        vals.append(g_end)
        np.add.at(rhs, (slice(None), node[ok]), u[:, ok] * g_end)


def assemble(network: Network, a: np.ndarray, b: np.ndarray, c3: np.ndarray, v2: np.ndarray):
    """Merged nodal matrix ``K`` (scipy CSC, all groups) and right-hand sides ``(batch, size)``."""
    import scipy.sparse as sp

    num = _Numbering(network)
    rows, cols, vals = [], [], []
    rhs = np.zeros((v2.shape[0], num.size))
    bl_end = np.broadcast_to(network.v_bl_end, v2.shape[:1] + network.v_bl_end.shape)
    _chain_stamps(num.wl, num.wl_gid, v2, v2, rows, cols, vals, rhs)
    _chain_stamps(num.bl, num.bl_gid, bl_end, bl_end, rows, cols, vals, rhs)
    p, q = num.wl_gid.ravel(), num.bl_gid.T.ravel()
    rows += [p, p, q, q]
    cols += [p, q, p, q]
    vals += [a.ravel(), -b.ravel(), -a.ravel(), b.ravel()]
    np.add.at(rhs, (slice(None), p), -c3.reshape(c3.shape[0], -1))
    np.add.at(rhs, (slice(None), q), c3.reshape(c3.shape[0], -1))
    k = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(num.size, num.size)
    ).tocsc()
    return k, rhs, num


def solve_direct(network: Network, a, b, c3, v2):
    """Node voltages ``v_wl, v_bl (B, M, N)`` V by SuperLU on the merged nodal matrix.

    ``a, b, c3, v2`` as :func:`~cimphys.circuits.network.check_stamp` returns them.  Raises
    :class:`~cimphys.errors.InputError` when the matrix is exactly singular; the caller checks
    the residual.
    """
    from scipy.sparse.linalg import splu

    k, rhs, num = assemble(network, a, b, c3, v2)
    volts = num.fixed_values(network, v2)
    free = ~num.fixed
    if free.any():
        rhs_u = rhs[:, free] - (k[:, num.fixed][free] @ volts[:, num.fixed].T).T
        try:
            lu = splu(k[free][:, free].tocsc())
        except RuntimeError as exc:  # exactly singular
            raise InputError(
                "network: the nodal matrix is singular (a floating group of lines with no path to a source?)"
            ) from exc
        volts[:, free] = lu.solve(np.ascontiguousarray(rhs_u.T)).T
    return volts[:, num.wl_gid], volts[:, num.bl_gid].transpose(0, 2, 1)


def network_residual(network: Network, a, b, c, v_in, v_wl, v_bl) -> float:
    """Largest KCL residual over the merged nodes, relative to the largest branch current."""
    a, b, c3, v2, _ = check_stamp(network, a, b, c, v_in)
    k, rhs, num = assemble(network, a, b, c3, v2)
    m, n = network.shape
    volts = num.fixed_values(network, v2)
    v_wl = np.asarray(v_wl).reshape(-1, m, n)
    v_bl = np.asarray(v_bl).reshape(-1, m, n)
    volts[:, num.wl_gid] = v_wl
    volts[:, num.bl_gid] = v_bl.transpose(0, 2, 1)
    res = (k @ volts.T).T - rhs
    free = ~num.fixed
    scale = np.abs(k).max() * np.abs(volts).max() + np.abs(rhs).max()
    return float(np.abs(res[:, free]).max() / scale) if free.any() and scale > 0 else 0.0
