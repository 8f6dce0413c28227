"""The Shichman-Hodges (SPICE level-1) n-channel MOSFET law as Numba kernels, ngspice's MOS1.

The law of :class:`~cimphys.devices.mosfet.Level1Mosfet` (its parameters, equations and
references are there): drain current and its partial derivatives at the nominal temperature,
source and drain swapping roles when ``v_d < v_s``.  The 1T1R cell
(:mod:`cimphys.devices.access`) inlines :func:`mos1` in its own kernels.
"""

from __future__ import annotations

import math

from ..._numba import jit

__all__ = ["mos1", "mos1_array"]


@jit
def _mos1_forward(vgs, vds, vbs, vto, beta, lam, gamma, phi):
    """Drain current for ``vds >= 0`` and its derivatives (gm, gds, gmbs), ngspice MOS1."""
    sphi = math.sqrt(phi)
    if vbs <= 0.0:
        sarg = math.sqrt(phi - vbs)
        arg = gamma / (sarg + sarg)  # -dV_th/dv_bs
    else:
        sarg = max(0.0, sphi - vbs / (sphi + sphi))
        arg = gamma / (sphi + sphi) if sarg > 0.0 else 0.0
    vgst = vgs - (vto - gamma * sphi + gamma * sarg)
    if vgst <= 0.0:
        return 0.0, 0.0, 0.0, 0.0
    betap = beta * (1.0 + lam * vds)
    if vgst <= vds:
        cdrain = betap * vgst * vgst * 0.5
        gm = betap * vgst
        gds = lam * beta * vgst * vgst * 0.5
    else:
        cdrain = betap * vds * (vgst - 0.5 * vds)
        gm = betap * vds
        gds = betap * (vgst - vds) + lam * beta * vds * (vgst - 0.5 * vds)
    # gmbs is the exact derivative; ngspice's gamma/(2 sarg) for v_bs > 0 is only a Jacobian.
    return cdrain, gm, gds, gm * arg


@jit
def mos1(vd, vg, vs, vb, vto, beta, lam, gamma, phi):
    """Current into the drain terminal (A) and d/dv_d, d/dv_g, d/dv_s, d/dv_b (S)."""
    if vd >= vs:
        i, gm, gds, gmb = _mos1_forward(vg - vs, vd - vs, vb - vs, vto, beta, lam, gamma, phi)
        return i, gds, gm, -(gm + gds + gmb), gmb
    i, gm, gds, gmb = _mos1_forward(vg - vd, vs - vd, vb - vd, vto, beta, lam, gamma, phi)
    return -i, gm + gds + gmb, -gm, -gds, -gmb


@jit
def mos1_array(vd, vg, vs, vb, p, out):
    """Vectorised :func:`mos1` over flat arrays; ``p`` = (vto, beta, lambda, gamma, phi)."""
    for c in range(vd.size):
        i, gd, gg, gs, gb = mos1(vd[c], vg[c], vs[c], vb[c], p[0], p[1], p[2], p[3], p[4])
        out[0, c] = i
        out[1, c] = gd
        out[2, c] = gg
        out[3, c] = gs
        out[4, c] = gb
