"""Level-1 NMOS: against a plain-Python twin of ngspice's MOS1 equations, closed forms,
source/drain symmetry and finite-difference Jacobians."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cimphys
from cimphys.devices import Level1Mosfet
from cimphys.errors import InputError

RTOL_TWIN = 1e-13  # same equations, different operation order: a few ulps
RTOL_CLOSED = 1e-14  # closed forms of single branches
# Central differences with h = 1e-6 V on quadratics: truncation is exactly zero for the
# quadratic branches; round-off ~ eps*I/h ~ 1e-10 relative.  Points closer than 10 h to a
# region boundary are skipped.
RTOL_FD = 1e-7
H_FD = 1e-6

PARAMS = dict(vto=0.43, kp=115e-6, lambda_=0.06, gamma=0.4, phi=0.6, w=0.5e-6, l=0.25e-6)


def naive_ids(vd, vg, vs, vb, vto, kp, lambda_, gamma, phi, w, l):
    """Drain current written straight from the Shichman-Hodges equations, one point."""
    if vd < vs:
        return -naive_ids(vs, vg, vd, vb, vto, kp, lambda_, gamma, phi, w, l)
    beta = kp * w / l
    vbs = vb - vs
    if vbs <= 0:
        vth = vto + gamma * (math.sqrt(phi - vbs) - math.sqrt(phi))
    else:  # ngspice's linearised continuation for forward body bias
        vth = vto + gamma * (max(0.0, math.sqrt(phi) - vbs / (2 * math.sqrt(phi))) - math.sqrt(phi))
    vov, vds = vg - vs - vth, vd - vs
    if vov <= 0:
        return 0.0
    if vds >= vov:
        return 0.5 * beta * vov**2 * (1 + lambda_ * vds)
    return beta * (vov * vds - 0.5 * vds**2) * (1 + lambda_ * vds)


def test_matches_naive_twin(rng):
    m = Level1Mosfet(**PARAMS)
    v = rng.uniform(-1.5, 2.0, size=(4, 500))
    got = m.currents(*v).i_d
    want = np.array([naive_ids(*col, **PARAMS) for col in v.T])
    np.testing.assert_allclose(got, want, rtol=RTOL_TWIN, atol=1e-25)


def test_closed_forms_without_body_effect():
    m = Level1Mosfet(vto=0.5, kp=2e-4, w=1e-6, l=1e-6, lambda_=0.1)
    beta = 2e-4
    sat = m.currents(vd=1.2, vg=1.3, vs=0.0).i_d
    assert sat == pytest.approx(0.5 * beta * 0.8**2 * (1 + 0.1 * 1.2), rel=RTOL_CLOSED)
    lin = m.currents(vd=0.3, vg=1.3, vs=0.0).i_d
    assert lin == pytest.approx(beta * (0.8 * 0.3 - 0.045) * (1 + 0.03), rel=RTOL_CLOSED)
    assert m.currents(vd=1.0, vg=0.5, vs=0.0).i_d == 0.0  # exactly at threshold: cut off


def test_body_effect_raises_threshold():
    m = Level1Mosfet(vto=0.5, kp=2e-4, w=1e-6, l=1e-6, gamma=0.5, phi=0.7)
    vs = 0.3  # v_sb = 0.3 V
    vth = 0.5 + 0.5 * (math.sqrt(1.0) - math.sqrt(0.7))
    got = m.currents(vd=2.0, vg=vs + vth + 0.4, vs=vs).i_d
    assert got == pytest.approx(0.5 * 2e-4 * 0.4**2, rel=1e-12)


def test_source_drain_symmetry(rng):
    m = Level1Mosfet(**PARAMS)
    vd, vg, vs = rng.uniform(0.0, 1.5, size=(3, 200))
    fwd = m.currents(vd, vg, vs).i_d
    rev = m.currents(vs, vg, vd).i_d
    np.testing.assert_allclose(fwd, -rev, rtol=RTOL_TWIN, atol=1e-25)


def test_continuous_at_saturation_edge():
    m = Level1Mosfet(**PARAMS)
    vov = 1.2 - 0.43
    below = m.currents(vd=vov * (1 - 1e-12), vg=1.2, vs=0.0)
    above = m.currents(vd=vov * (1 + 1e-12), vg=1.2, vs=0.0)
    assert below.i_d == pytest.approx(above.i_d, rel=1e-10)
    assert below.di_dvd == pytest.approx(above.di_dvd, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("which", ["vd", "vg", "vs", "vb"])
def test_jacobian_against_central_differences(rng, which):
    m = Level1Mosfet(**PARAMS)
    pts = dict(zip(("vd", "vg", "vs", "vb"), rng.uniform(-0.4, 1.8, size=(4, 400))))
    pts["vb"] = np.minimum(pts["vb"], np.minimum(pts["vd"], pts["vs"]) - 0.05)  # junctions reverse
    cur = m.currents(**pts)
    # keep points well inside one region: away from cut-off, the saturation edge and v_ds = 0
    lo = np.minimum(pts["vd"], pts["vs"])
    vth = 0.43 + 0.4 * (np.sqrt(0.6 - (pts["vb"] - lo)) - np.sqrt(0.6))
    vov = pts["vg"] - lo - vth
    vds = np.abs(pts["vd"] - pts["vs"])
    ok = (vov > 1e-4) & (np.abs(vov - vds) > 1e-4) & (vds > 1e-4)
    assert ok.sum() > 50
    up = dict(pts, **{which: pts[which] + H_FD})
    dn = dict(pts, **{which: pts[which] - H_FD})
    fd = (m.currents(**up).i_d - m.currents(**dn).i_d) / (2 * H_FD)
    analytic = getattr(cur, f"di_d{which}")
    scale = np.abs(cur.di_dvd) + np.abs(cur.di_dvg) + np.abs(cur.di_dvs) + 1e-12
    np.testing.assert_array_less(np.abs(fd - analytic)[ok] / scale[ok], RTOL_FD)


def test_kcl_of_the_device(rng):
    """The four partials sum to zero: shifting every terminal together changes nothing."""
    m = Level1Mosfet(**PARAMS)
    v = rng.uniform(-0.5, 1.5, size=(4, 100))
    c = m.currents(*v)
    total = c.di_dvd + c.di_dvg + c.di_dvs + c.di_dvb
    np.testing.assert_allclose(total, 0.0, atol=1e-18)


def test_card_and_spice_model_line():
    m = Level1Mosfet.from_card(cimphys.load_device("level1_access_nmos"))
    assert m.beta == pytest.approx(115e-6 * 2)
    line = m.spice_model("nacc")
    assert line.startswith(".model nacc nmos level=1 vto=0.43 kp=0.000115")


def test_rejects_bad_inputs():
    with pytest.raises(InputError, match="kp"):
        Level1Mosfet(vto=0.4, kp=-1.0, w=1e-6, l=1e-6)
    with pytest.raises(InputError, match="phi"):
        Level1Mosfet(vto=0.4, kp=1e-4, w=1e-6, l=1e-6, phi=0.0)
    m = Level1Mosfet(**PARAMS)
    with pytest.raises(InputError, match="vg"):
        m.currents(1.0, np.nan, 0.0)
    with pytest.raises(InputError, match="broadcast"):
        m.currents(np.zeros(3), np.zeros(4), 0.0)
