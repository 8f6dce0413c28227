"""Linear ion drift under sinusoidal voltage against its closed-form solution.

Without a window, the voltage-driven Strukov model has an exact solution.  With
``R(w) = R_off - dR w/D`` (``dR = R_off - R_on``) the state equation
``dw/dt = mu_v R_on/D * V/R(w)`` gives ``R(w) dw = mu_v R_on/D * V dt``, so

    F(w(t)) = F(w0) + mu_v R_on/D * phi(t),     F(w) = R_off w - dR w^2/(2D),

with the flux ``phi(t) = integral_0^t V dt = V0/omega (1 - cos omega t)`` for
``V = V0 sin(omega t)``.  The root of the quadratic inside ``[0, D]`` is

    w(t) = D/dR * (R_off - sqrt(R_off^2 - 2 dR F(w(t))/D)),    I = V / R(w)

(Strukov et al., Nature 453, 80 (2008), eqs. 1-2 and the flux-charge relation of its Fig. 2;
doi:10.1038/nature06932).  Checks: the integrated state and current against this solution
(relative error <= 1e-6), the pinch (I = 0 wherever V = 0) and the hysteresis lobe area,
which must shrink as the frequency grows and match the area of the exact loop.
"""

from __future__ import annotations

import pathlib

import numpy as np

RTOL_CLOSED_FORM = 1e-6  # the campaign's contract; the integrator runs at rtol = 1e-10
RTOL_PINCH = 1e-12  # |I| at V = 0 relative to the peak current: only rounding remains
RTOL_AREA = 1e-5  # loop area by the trapezoid rule on the same samples for both curves
AREA_SHRINK = 0.5  # each doubling of the frequency must at least halve the lobe area here
CARD = "strukov2008_hp"
V0 = 1.0  # V
W0 = 1e-9  # m


def closed_form(params, t, v0, omega, w0):
    """State w (m) and current I (A) of the windowless linear drift model under v0 sin(wt)."""
    r_on, r_off, d, mu = params["r_on"], params["r_off"], params["d"], params["mu_v"]
    dr = r_off - r_on
    f0 = r_off * w0 - dr * w0**2 / (2 * d)
    phi = v0 / omega * (1 - np.cos(omega * t))
    f = f0 + mu * r_on / d * phi
    w = d / dr * (r_off - np.sqrt(r_off**2 - 2 * dr * f / d))
    v = v0 * np.sin(omega * t)
    return w, v / (r_off - dr * w / d)


def _loop_area(v, i):
    """Signed area enclosed by the I-V loop over the samples (trapezoid rule of I dV)."""
    return float(np.sum(0.5 * (i[1:] + i[:-1]) * np.diff(v)))


def run(out_dir: pathlib.Path, quick: bool = False) -> dict:
    from cimphys.cards import load_device
    from cimphys.devices import LinearIonDrift, integrate, sinusoid
    from cimphys.results import save

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    card = load_device(CARD)
    params = dict(card.parameters)
    model = LinearIonDrift.from_card(card)
    freqs = [1.0, 2.0, 4.0] if quick else [0.5, 1.0, 2.0, 4.0, 8.0]
    points = 400 if quick else 2000
    err_w = err_i = pinch = err_area = 0.0
    areas = []
    files = []
    for f in freqs:
        wave = sinusoid(V0, f, cycles=2, points_per_cycle=points)
        ds = integrate(model, wave, W0, rtol=1e-10, atol=1e-13)
        t = ds.time.values
        w_ref, i_ref = closed_form(params, t, V0, 2 * np.pi * f, W0)
        w = ds.state.values[:, 0]
        i = ds.current.values[:, 0]
        err_w = max(err_w, float(np.max(np.abs(w - w_ref)) / np.max(np.abs(w_ref))))
        err_i = max(err_i, float(np.max(np.abs(i - i_ref)) / np.max(np.abs(i_ref))))
        zero = np.isclose(np.mod(t * f * 2, 1.0), 0.0, atol=1e-9) | np.isclose(np.mod(t * f * 2, 1.0), 1.0)
        pinch = max(pinch, float(np.max(np.abs(i[zero])) / np.max(np.abs(i))))
        # the positive lobe of the second cycle (the two lobes circulate in opposite senses,
        # so the area is taken over the half period with V >= 0)
        start = t[-1] - 1.0 / f
        last = (t >= start - 1e-12) & (t <= start + 0.5 / f + 1e-12)
        v = ds.voltage.values
        area = abs(_loop_area(v[last], i[last]))
        area_ref = abs(_loop_area(v[last], i_ref[last]))
        err_area = max(err_area, abs(area - area_ref) / area_ref)
        areas.append(area)
        if f == freqs[-1] or f == freqs[0]:
            path = out_dir / f"drift_sine_{f:g}Hz.nc"
            save(ds, path)
            files.append(str(path))
    ratios = [a2 / a1 for a1, a2 in zip(areas[:-1], areas[1:])]
    checks = [
        {"name": "state vs closed form (max rel. error)", "value": err_w, "tolerance": RTOL_CLOSED_FORM, "unit": "1"},
        {"name": "current vs closed form (max rel. error)", "value": err_i, "tolerance": RTOL_CLOSED_FORM, "unit": "1"},
        {"name": "pinch: |I| at V = 0 / max |I|", "value": pinch, "tolerance": RTOL_PINCH, "unit": "1"},
        {"name": "lobe area vs closed-form loop (rel. error)", "value": err_area, "tolerance": RTOL_AREA, "unit": "1"},
        {"name": "lobe area ratio per frequency doubling (max)", "value": max(ratios), "tolerance": AREA_SHRINK, "unit": "1"},
    ]
    for c in checks:
        c["passed"] = bool(c["value"] <= c["tolerance"])
    files += _plot(out_dir, model, freqs, params)
    return {
        "campaign": "drift_closed_form",
        "reference": "closed-form solution of the windowless linear ion drift model (Strukov et al., Nature 453, 80 (2008))",
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
        "files": files,
        "areas": dict(zip(freqs, areas)),
    }


def _plot(out_dir, model, freqs, params) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plotting is optional for the campaign's verdict
        return []
    fig, ax = plt.subplots(figsize=(5, 4))
    for f in freqs:
        t = np.linspace(0, 1 / f, 400)
        w, i = closed_form(params, t + 1 / f, V0, 2 * np.pi * f, W0)
        ax.plot(V0 * np.sin(2 * np.pi * f * t), i * 1e3, label=f"{f:g} Hz")
    ax.set_xlabel("voltage (V)")
    ax.set_ylabel("current (mA)")
    ax.set_title("Linear ion drift: pinched loops shrink with frequency")
    ax.legend()
    path = out_dir / "drift_loops.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [str(path)]


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    report = run(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "validation_out"))
    print(json.dumps(report, indent=2))
