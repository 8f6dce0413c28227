"""Device cards against their sources' own stated results, computed by the package's models.

* **Stanford-PKU RRAM release v1.0.0** (Z. Jiang, H.-S. P. Wong, doi:10.4231/D37H1DN48; Jiang et
  al., SISPAD 2014, doi:10.1109/SISPAD.2014.6931558): the release's shipped benchmark outputs,
  ``Benchmarks/sample_input_and_output.pdf`` tables 1 and 2 (HSPICE H-2013.03 on its
  ``DCSweep.sp`` and ``pulseSweep.sp``), reproduced from ``devices/guan2012_stanford_pku.toml`` by
  :func:`cimphys.devices.integrate`:

  - DC RESET from the low-resistance state (gap 0.2 nm), 0 -> -2 V in 4 ms after 1 us:
    ``|I|`` = 1.63 mA at -0.50025 V, 12.27 mA at -1.00025 V, 0.224888 mA at -1.50025 V.
    Tolerance: half a unit of the last printed digit where the table prints 3-4 digits (0.5 %,
    0.1 %), 1e-4 at the 6-digit point;
  - SET pulse from the high-resistance state (gap 1.9 nm), 1.8 V after 10 ps with 10 ps edges:
    I = 0.784389 mA at 13.2 ns and 300.922 mA at 23.2 ns (0.2 % and 1e-4: the exact solution of
    the release's equations; HSPICE's own step error is below that at these two points).  At
    18.2 ns HSPICE takes ~1 ns steps through the accelerating SET with the release's one-step lag
    of gamma; forward Euler on a 1 ns grid (the same lag) is held to 10 % of the printed 1.31103 mA.

* **HP TiO2 memristor** (D. B. Strukov et al., Nature 453, 80 (2008), eq. 2): for ``R_on << R_off``
  the memristance is a function of the charge alone,
  ``M(q) = R_off (1 - mu_v R_on q / D**2)``.  The card ``devices/strukov2008_hp.toml`` (the
  paper's Fig. 2 set) is integrated under a positive half sine and ``v/i`` compared with eq. 2 at
  the charge the model itself passed (trapezoid of its current).  Tolerance 1 %: eq. 2 drops
  ``R_on`` against ``R_off`` in the slope, an error of at most ``R_on w / D`` against
  ``M >= R_off / 2`` while the state stays below ``D / 2``: ``R_on / R_off = 0.63 %``.

* **TEAM** (S. Kvatinsky, E. G. Friedman, A. Kolodny, U. C. Weiser, IEEE TCAS-I 60, 211 (2013);
  read in its preprint, Technion CCIT Report #804, January 2012, the text the published paper's
  copies carry): ``devices/kvatinsky2013_team.toml`` against what the paper states.

  - the card's parameters equal the stated fit: Fig. 10(a) ``k_off = 1.46e-9 nm/s``,
    ``k_on = -4.68e-13 nm/s``, ``alpha_off = alpha_on = 10``, ``i_off = 115 uA``, ``i_on = 8.9 uA``
    (negative in eq. 14); Figs. 12-13 ``R_ON = 50 ohm``, ``R_OFF = 1 kohm``; eqs. 18-19 with Fig. 8's
    parameters (Pickett's): ``a_off = 1.2 nm``, ``a_on = 1.8 nm``, ``w_c = 107 pm``; Sec. IV-D: the
    bounds ``x_on = a_off``, ``x_off = a_on``.  Exact (1e-12): these are printed numbers;
  - the effective OFF threshold, Fig. 10(b): with the operating range 0.1 uA - 1 mA and a state
    derivative below 1e-4 nm/s neglected, "a reasonable current threshold is 0.5 mA".  The card's
    eq. 14 (window 1, at Fig. 9's x = 1.5 nm) reaches 1e-4 nm/s at 0.465 mA; the reference, eq. 11
    (Pickett's Simmons-barrier state equation as the paper restates it, Fig. 8 parameters,
    written here from the equation), at 0.456 mA.  Tolerance 10 %: the paper prints one digit.

  Not checked: the paper's stated accuracy, "a mean error of 0.2 %" (max 12.77 %) in the state
  variable against the Simmons model (Sec. V, Fig. 14), is for another fit (Fig. 14: ``R_ON = 1
  kohm``, ``R_OFF = 100 kohm``, ``k = 4.13e-33 nm/s``, ``alpha = 25``), under a stimulus the text
  does not state (it is drawn in Fig. 14 only); the card does not hold that fit.

Not checked here, and why: the VTEAM (Kvatinsky et al., TCAS-II 2015) card is a fit to Pickett's
Simmons-barrier model (J. Appl. Phys. 106, 074508 (2009)); its stated result is that agreement
(relative rms error below 1.5 %, abstract), which needs Pickett's model run under the paper's own
stimulus with the paper's error definition; the VTEAM paper's text was not found in the stored
copies searched.  The Yakopcic 2011 card's stated result is a figure of the Oblea device's measured
I-V loop (the paper states the fitted parameters, which the card holds, and no scalar error); the
measured loops were not available offline.  The IBM PCM card's published statistics (Nandakumar et
al. 2019, Joshi et al. 2020, as aihwkit's documentation states them) are held by
``validation/pcm_statistics.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from cimphys.cards import load_device
from scipy.optimize import brentq

from cimphys.devices import TEAM, LinearIonDrift, StanfordPKU, integrate, pwl, sinusoid
from cimphys.results import save, variable

# Stanford release benchmark checklist (sample_input_and_output.pdf, tables 1 and 2)
DC_V = np.array([-0.50025, -1.00025, -1.50025])  # V
DC_I = np.array([1.63e-3, 1.227e-2, 2.24888e-4])  # A, |I|
RTOL_DC = np.array([5e-3, 1e-3, 1e-4])  # half a unit of the last printed digit (3, 4, 6 digits)
PULSE_T = np.array([13.2e-9, 18.2e-9, 23.2e-9])  # s
PULSE_I = np.array([7.84389e-4, 1.31103e-3, 0.300922])  # A
RTOL_PULSE = np.array([2e-3, 0.10, 1e-4])  # exact solution at 13.2 and 23.2 ns; Euler with HSPICE's lag at 18.2 ns
EULER_STEP = 1e-9  # s: HSPICE's step through the SET (227 time points over 205 ns)

# Strukov 2008 eq. 2
RTOL_STRUKOV = 0.01  # eq. 2 neglects R_on against R_off: <= R_on/R_off = 0.63 % below w = D/2
HP_FREQUENCY = 1.0  # Hz: a 1 V half sine (flux 1/pi V s) moves w to 0.22 D, within D/2
HP_W0 = 0.0  # m: undoped (R = R_off), the state eq. 2 starts from

# Kvatinsky et al. 2013 (TEAM), the stated fit in SI units (nm/s -> m/s)
TEAM_STATED = {
    "k_off": 1.46e-18, "k_on": -4.68e-22,  # Fig. 10(a): 1.46e-9 and -4.68e-13 nm/s
    "alpha_off": 10.0, "alpha_on": 10.0, "i_off": 115e-6, "i_on": -8.9e-6,  # Fig. 10(a)
    "r_on": 50.0, "r_off": 1000.0,  # Figs. 12 and 13
    "a_off": 1.2e-9, "a_on": 1.8e-9, "w_c": 107e-12,  # Fig. 8 (Pickett's), in eqs. 18-19 for Fig. 13
    "x_on": 1.2e-9, "x_off": 1.8e-9,  # Sec. IV-D: x_on = a_off, x_off = a_on
}
RTOL_TEAM_PARAMS = 1e-12  # printed numbers: equal up to rounding
# eq. 11 with Fig. 8's parameters: Pickett's Simmons-barrier state equation as the TEAM paper states it
PICKETT_FIG8 = {"c_off": 3.5e-6, "i_off": 115e-6, "a_off": 1.2e-9, "b": 500e-6, "w_c": 107e-12}  # m/s, A, m
TEAM_X = 1.5e-9  # m: Fig. 9's "x ~ 1.5 nm", where Fig. 10 fits the current dependence
TEAM_NEGLECTED_RATE = 1e-13  # m/s: Fig. 10(b), a state derivative below 1e-4 nm/s is neglected
TEAM_THRESHOLD = 0.5e-3  # A: Fig. 10(b), "a reasonable current threshold is 0.5 mA"
RTOL_TEAM_THRESHOLD = 0.10  # one printed digit: 0.45-0.55 mA


def team_parameter_deviation(params) -> tuple[str, float]:
    """The card parameter furthest from the paper's stated value, and its relative deviation."""
    dev = {k: abs(float(params[k]) / v - 1.0) for k, v in TEAM_STATED.items()}
    worst = max(dev, key=dev.get)
    return worst, dev[worst]


def team_effective_threshold(params) -> float:
    """Current (A) at which the card's OFF rate (eq. 14, window 1, x = 1.5 nm) reaches 1e-4 nm/s."""
    model = TEAM(**{**params, "window": "none"})
    r = 1.0 / float(np.asarray(model.conductance(0.0, TEAM_X)).ravel()[0])

    def excess(i):
        return float(np.asarray(model.rate(i * r, TEAM_X)).ravel()[0]) - TEAM_NEGLECTED_RATE

    return brentq(excess, params["i_off"] * (1.0 + 1e-9), 1e-2, rtol=1e-12)


def pickett_effective_threshold() -> float:
    """Current (A) at which eq. 11 (i > 0) at x = 1.5 nm reaches 1e-4 nm/s:
    ``dx/dt = c_off sinh(i/i_off) exp(-exp((x - a_off)/w_c - i/b) - x/w_c)``."""
    p = PICKETT_FIG8

    def excess(i):
        return (p["c_off"] * np.sinh(i / p["i_off"])
                * np.exp(-np.exp((TEAM_X - p["a_off"]) / p["w_c"] - i / p["b"]) - TEAM_X / p["w_c"])
                - TEAM_NEGLECTED_RATE)

    return brentq(excess, 1e-7, 1e-2, rtol=1e-12)


def stanford_dc(params) -> np.ndarray:
    """|I| (A) of the release's DC RESET sweep at the checklist voltages."""
    t = np.concatenate([[0.0], 1e-6 - DC_V / 2.0 * 4e-3])
    ds = integrate(StanfordPKU(**params), pwl([0, 1e-6, 4.001e-3], [0, 0, -2.0], samples=t), 2e-10,
                   rtol=1e-6, atol=1e-9, max_steps=10**7)
    return -ds.current.values[1:, 0]


def _set_pulse(samples):
    return pwl([0, 10e-12, 20e-12, 100.02e-9, 100.03e-9, 205e-9], [0, 0, 1.8, 1.8, 0, 0], samples=samples)


def stanford_pulse(params) -> np.ndarray:
    """I (A) of the release's SET pulse at the checklist times: the error-controlled solution at
    13.2 and 23.2 ns, forward Euler on HSPICE's 1 ns grid at 18.2 ns."""
    model = StanfordPKU(**params)
    exact = integrate(model, _set_pulse(np.concatenate([[0.0], PULSE_T])), 1.9e-9, rtol=1e-9, atol=1e-12)
    grid = np.unique(np.concatenate([np.arange(0, 30e-9, EULER_STEP), [10e-12, 20e-12], PULSE_T]))
    euler = integrate(model, _set_pulse(grid), 1.9e-9, method="euler")
    at = int(np.argmin(np.abs(euler.time.values - PULSE_T[1])))
    current = exact.current.values[1:, 0].copy()
    current[1] = euler.current.values[at, 0]
    return current


def strukov_memristance(points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Charge q (C), the model's v/i (ohm) and eq. 2's M(q) (ohm) under a 1 V positive half sine."""
    card = load_device("strukov2008_hp")
    p = card.parameters
    wave = sinusoid(1.0, HP_FREQUENCY, cycles=0.5, points_per_cycle=2 * points)
    ds = integrate(LinearIonDrift.from_card(card), wave, HP_W0, rtol=1e-10, atol=1e-13)
    t, v, i = ds.time.values, ds.voltage.values, ds.current.values[:, 0]
    q = np.concatenate([[0.0], np.cumsum(0.5 * (i[1:] + i[:-1]) * np.diff(t))])
    keep = np.abs(v) > 1e-3  # v/i is defined away from the zero crossings
    m_paper = p["r_off"] * (1.0 - p["mu_v"] * p["r_on"] * q / p["d"] ** 2)
    return q[keep], v[keep] / i[keep], m_paper[keep]


def _rel_check(name, value, reference, tolerance, unit):
    rel = abs(float(value) / float(reference) - 1.0)
    return {"name": name, "value": rel, "tolerance": float(tolerance), "unit": "1", "passed": bool(rel <= tolerance),
            "measured": float(value), "reference": float(reference), "measured_unit": unit}


def run(out_dir: Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    params = dict(load_device("guan2012_stanford_pku").parameters)
    checks = [_rel_check(f"Stanford DC RESET |I| at {v:.5f} V", i, ref, tol, "A")
              for v, i, ref, tol in zip(DC_V, stanford_dc(params), DC_I, RTOL_DC)]
    checks += [_rel_check(f"Stanford SET pulse I at {t * 1e9:.1f} ns", i, ref, tol, "A")
               for t, i, ref, tol in zip(PULSE_T, stanford_pulse(params), PULSE_I, RTOL_PULSE)]
    q, m_model, m_paper = strukov_memristance(200 if quick else 2000)
    worst = int(np.argmax(np.abs(m_model / m_paper - 1.0)))
    checks.append(_rel_check("Strukov 2008 eq. 2: v/i vs M(q) (worst point)", m_model[worst], m_paper[worst],
                             RTOL_STRUKOV, "ohm"))
    team = dict(load_device("kvatinsky2013_team").parameters)
    name, dev = team_parameter_deviation(team)
    checks.append({"name": f"TEAM card vs Kvatinsky 2013 stated fit (worst: {name})", "value": dev,
                   "tolerance": RTOL_TEAM_PARAMS, "unit": "1", "passed": bool(dev <= RTOL_TEAM_PARAMS),
                   "measured": float(team[name]), "reference": float(TEAM_STATED[name]), "measured_unit": "SI"})
    checks.append(_rel_check("TEAM card: current at dx/dt = 1e-4 nm/s (Fig. 10b: 0.5 mA)",
                             team_effective_threshold(team), TEAM_THRESHOLD, RTOL_TEAM_THRESHOLD, "A"))
    checks.append(_rel_check("Pickett eq. 11 (Fig. 8): current at dx/dt = 1e-4 nm/s (Fig. 10b: 0.5 mA)",
                             pickett_effective_threshold(), TEAM_THRESHOLD, RTOL_TEAM_THRESHOLD, "A"))
    data = xr.Dataset({"memristance_model": variable("charge", m_model, "ohm", "v/i of the card's model"),
                       "memristance_eq2": variable("charge", m_paper, "ohm", "Strukov et al. 2008, eq. 2")},
                      coords={"charge": ("charge", q, {"units": "C", "long_name": "charge passed"})})
    files = [str(save(data, out_dir / "strukov_memristance.nc"))]
    return {
        "campaign": "published_devices",
        "reference": "Stanford RRAM release v1.0.0 benchmark outputs (sample_input_and_output.pdf, tables 1-2); "
                     "Strukov et al., Nature 453, 80 (2008), eq. 2; "
                     "Kvatinsky et al., IEEE TCAS-I 60, 211 (2013), Figs. 8, 10, 12-13 and eqs. 11, 14",
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
        "files": files,
    }


if __name__ == "__main__":  # pragma: no cover
    import sys
    import tempfile

    result = run(Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()), quick="--quick" in sys.argv)
    for c in result["checks"]:
        print(f"{'ok ' if c['passed'] else 'BAD'} {c['name']:50s} {c['measured']:.6g} vs {c['reference']:.6g} "
              f"({c['value']:.2e} <= {c['tolerance']:g})")
    print("passed" if result["passed"] else "FAILED")
