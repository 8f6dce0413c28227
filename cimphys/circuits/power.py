"""Power accounting of a solved network: source currents and the power in every element.

From the node voltages and cell currents of a solve, :func:`wl_end_currents` gives the current
each word-line source delivers through its near and far driver (Ohm's law on the driver side,
KCL on a group of merged nodes where a resistance is zero), and :func:`dissipation` the power in
every cell, wire segment, driver and sense resistor, with the power the sources deliver and the
biased sense nodes absorb; the two sides balance (Tellegen's theorem [1]_).

References
----------
.. [1] C. Ho, J. Vlach, *Computer Methods for Circuit Analysis and Design*, 2nd ed., ch. 2,
   Springer (1994).
"""

from __future__ import annotations

import numpy as np

from .network import Network

__all__ = ["dissipation", "wl_end_currents"]

def _ohm(dv: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``dv / r`` where ``0 < r < inf``, else 0 (no division by zero)."""
    ok = (r > 0) & np.isfinite(r)
    return np.where(ok, dv / np.where(ok, r, 1.0), 0.0)


def _group_current(v, i_cell, r_seg, from_lo: bool):
    """Current entering an end group through its source, by KCL on that group, ``(B, L)``.

    The end group is the run of nodes joined by zero segments; what enters through the source
    leaves through the group's cells and its first non-zero segment.  Returns that current and
    whether the group has such a segment.
    """
    if not from_lo:
        v, i_cell, r_seg = v[..., ::-1], i_cell[..., ::-1], r_seg[:, ::-1]
    has = (r_seg > 0).any(axis=1)
    k = np.argmax(r_seg > 0, axis=1)  # index of the first non-zero segment
    n = v.shape[-1]
    in_group = np.arange(n)[None, :] <= np.where(has, k, n - 1)[:, None]
    rows = np.arange(v.shape[1])
    kk = np.minimum(k + 1, n - 1)
    wire = _ohm(v[:, rows, k] - v[:, rows, kk], np.where(has, r_seg[rows, k] if r_seg.size else 1.0, np.inf))
    return (i_cell * in_group).sum(axis=-1) + wire, has


def wl_end_currents(network: Network, *, v_in, v_wl, v_bl, i_out, i_cell):
    """Currents delivered through the near and far WL drivers, ``(B, M)`` A each."""
    ch = network.wl_chains()
    near = _ohm(v_in - v_wl[:, :, 0], ch.r_lo)
    far = _ohm(v_in - v_wl[:, :, -1], ch.r_hi)
    total = i_cell.sum(axis=-1)  # what enters a WL leaves through its cells
    g_lo, has_lo = _group_current(v_wl, i_cell, ch.r_seg, True)
    g_hi, has_hi = _group_current(v_wl, i_cell, ch.r_seg, False)
    lo0, hi0 = ch.r_lo == 0, ch.r_hi == 0
    near = np.where(lo0, np.where(has_lo | hi0, g_lo, total - far), near)
    far = np.where(hi0, np.where(has_hi | lo0, g_hi, total - near), far)
    return near, far


def dissipation(network: Network, *, v_in, v_wl, v_bl, i_out, i_cell, i_near, i_far) -> dict:
    """Power in every element of the network, W, each with a leading batch axis.

    Keys: ``cell`` (B, M, N); ``wl`` and ``bl`` (B, M, N) per wire segment (indexed like
    ``r_wl``/``r_bl``); ``driver`` (B, M); ``sense`` (B, N) in ``r_sense``; ``source`` (B, M)
    delivered by the WL sources; ``sink`` (B, N) absorbed by the sense-node sources
    (``v_bl_end * i_out``).  Energy balance: ``source.sum() == cell + wl + bl + driver +
    sense + sink`` summed.
    """
    p_cell = i_cell * (v_wl - v_bl)
    r_wl, r_bl = network.r_wl, network.r_bl
    p_wl = np.empty_like(v_wl)
    dv = v_wl[:, :, :-1] - v_wl[:, :, 1:]
    p_wl[:, :, 1:] = dv * _ohm(dv, r_wl[:, 1:])
    p_wl[:, :, 0] = i_near**2 * r_wl[:, 0]
    p_bl = np.empty_like(v_bl)
    dv = v_bl[:, :-1, :] - v_bl[:, 1:, :]
    if network.sense_at == "last":
        p_bl[:, :-1, :] = dv * _ohm(dv, r_bl[:-1])
        p_bl[:, -1, :] = i_out**2 * r_bl[-1]
    else:
        p_bl[:, 1:, :] = dv * _ohm(dv, r_bl[1:])
        p_bl[:, 0, :] = i_out**2 * r_bl[0]
    far_r = network.r_driver if network.wl_drive == "both" else 0.0
    return {
        "cell": p_cell,
        "wl": p_wl,
        "bl": p_bl,
        "driver": i_near**2 * network.r_driver + i_far**2 * far_r,
        "sense": i_out**2 * network.r_sense,
        "source": v_in * (i_near + i_far),
        "sink": network.v_bl_end * i_out,
    }
