"""Dynamic device models: I-V evaluation and pulse-train integration against NumPy peers.

1. I-V (current and dI/dV) of 10 million cells at random voltages and states, cimphys's
   checked entry point against the equivalent vectorised NumPy expression (no checks), for the
   Stanford-PKU (exp/sinh) and VTEAM (linear read law) models.  Target >= 1x.
2. A pulse train sampled on 1000 time steps (10 pulses, 100 steps per period), applied to
   65,536 VTEAM cells with per-cell rate constants: ``integrate(record="final")`` against a
   NumPy forward-Euler loop over the same 1000 steps (in-place array updates, the voltage
   factor computed once per step).  Target >= 20x, judged on the first record: our default
   call (threads from ``PARALLEL_MIN_CELLS`` cells on) against the loop over the 1000 steps.
   The two do not reach the same accuracy, so the notes give each one's error against a
   tight-tolerance run; a second record times our serial kernel, and a third the Euler loop
   refined (steps doubled) until its error is below 1e-5 of the state range: the comparison
   at matched accuracy.  The load average of the machine is in the notes (shared machines).
3. Peak memory of that integration (tracemalloc, state only) over the bytes of one state array.
   Target <= 3x.  The notes also give the peak when current and conductance are returned.
"""

from __future__ import annotations

import numpy as np

try:
    from benchmarks._common import Record, best_of, main, peak_python_bytes
except ImportError:  # run as a script from inside benchmarks/
    from _common import Record, best_of, main, peak_python_bytes

VTEAM_PARAMS = dict(r_on=1e3, r_off=3e5, x_on=0.0, x_off=3e-9, k_on=-216.2, k_off=0.091, alpha_on=4.0,
                    alpha_off=4.0, v_on=-1.5, v_off=0.3, window="biolek", p=10.0)


def _iv_records(n: int, rng) -> list[Record]:
    from cimphys.cards import load_device
    from cimphys.devices import VTEAM, StanfordPKU

    out = []
    pku = dict(load_device("guan2012_stanford_pku").parameters)
    model = StanfordPKU(**pku)
    v = rng.uniform(-1.0, 1.0, n)
    g = rng.uniform(pku["g_min"], pku["g_max"], n)

    def numpy_pku():
        pre = pku["i0"] * np.exp(-g / pku["g0"])
        return pre * np.sinh(v / pku["v0"]), pre * np.cosh(v / pku["v0"]) / pku["v0"]

    model.current_and_conductance(v[:10], g[:10])  # compile outside the timing
    ours = best_of(lambda: model.current_and_conductance(v, g), repeat=3)
    peer = best_of(numpy_pku, repeat=3)
    out.append(Record(f"I-V Stanford-PKU, {n:,} cells", ours, "NumPy exp/sinh/cosh expression", peer, "s", 1.0,
                      notes=f"load average {load_average()}"))

    vt = VTEAM(**VTEAM_PARAMS)
    x = rng.uniform(0.0, 3e-9, n)

    def numpy_vteam():
        r = VTEAM_PARAMS["r_on"] + (VTEAM_PARAMS["r_off"] - VTEAM_PARAMS["r_on"]) * (x / 3e-9)
        return v / r, 1.0 / r

    ours = best_of(lambda: vt.current_and_conductance(v, x), repeat=3)
    peer = best_of(numpy_vteam, repeat=3)
    out.append(Record(f"I-V VTEAM (linear), {n:,} cells", ours, "NumPy expression", peer, "s", 1.0))
    return out


def numpy_euler(k_off, x0, t, v):
    """Forward Euler over the steps of ``t`` for VTEAM with a Biolek window (p = 10)."""
    p = VTEAM_PARAMS
    d = p["x_off"] - p["x_on"]
    x = x0.copy()
    u = np.empty_like(x)
    r = np.empty_like(x)
    for n in range(t.size - 1):
        vn = v[n]
        dt = t[n + 1] - t[n]
        if vn > p["v_off"]:
            k, fac, s = k_off, (vn / p["v_off"] - 1.0) ** p["alpha_off"], 0.0
        elif vn < p["v_on"]:
            k, fac, s = p["k_on"], (vn / p["v_on"] - 1.0) ** p["alpha_on"], 1.0
        else:
            continue
        np.subtract(x, p["x_on"], out=u)
        u /= d
        u -= s
        np.abs(u, out=u)
        np.power(u, 2 * p["p"], out=u)
        np.subtract(1.0, u, out=r)
        r *= k
        r *= fac * dt
        x += r
        np.clip(x, p["x_on"], p["x_off"], out=x)
    return x


def _pulse_records(cells: int, rng) -> list[Record]:
    from cimphys.devices import VTEAM, integrate, pulse_train

    steps = 1000
    period = 2e-6
    wave = pulse_train(0.35, 0.9e-6, 10, period=period, rise=0.05e-6, fall=0.05e-6, delay=0.05e-6)
    t = np.linspace(0.0, wave.t[-1], steps + 1)
    wave = wave.with_times(t)
    v = wave(t)
    k_off = rng.uniform(0.08, 0.1, cells)
    x0 = rng.uniform(0.0, 0.3e-9, cells)
    model = VTEAM(**{**VTEAM_PARAMS, "k_off": k_off})
    kw = dict(record="final", rtol=1e-6, atol=1e-9)
    small = VTEAM(**VTEAM_PARAMS)  # same kernels: compile them outside the timing
    integrate(small, wave, x0[:64], parallel=False, **kw)
    integrate(small, wave, x0[:64], parallel=True, **kw)
    ours = best_of(lambda: integrate(model, wave, x0, **kw), repeat=3)
    ours_serial = best_of(lambda: integrate(model, wave, x0, parallel=False, **kw), repeat=3)
    peer = best_of(lambda: numpy_euler(k_off, x0, t, v), repeat=3)
    exact = integrate(model, wave, x0, record="final", rtol=1e-11, atol=1e-14).state.values[0]
    ds = integrate(model, wave, x0, **kw)
    ours_x = ds.state.values[0]
    peer_x = numpy_euler(k_off, x0, t, v)
    moved = float(np.mean(exact - x0) / 3e-9)
    err_ours = float(np.max(np.abs(ours_x - exact)) / 3e-9)
    err_peer = float(np.max(np.abs(peer_x - exact)) / 3e-9)
    notes = (f"max state error / D: ours {err_ours:.1e}, Euler {err_peer:.1e}; mean swing {moved:.2f} D; "
             f"{steps} steps, 10 pulses; ours {ds.attrs['steps_total'] / cells:.1f} RK steps per cell, "
             f"{numba_threads()} Numba threads; load average {load_average()}")
    records = [Record(f"pulse train, {cells:,} cells x {steps} steps (default: threads)", ours,
                      "NumPy forward-Euler loop, same steps", peer, "s", 20.0, notes=notes),
               Record(f"pulse train, {cells:,} cells x {steps} steps (parallel=False)", ours_serial,
                      "NumPy forward-Euler loop, same steps", peer, "s", 20.0, notes="secondary figure")]

    # The same Euler loop refined until its error is below 1e-5 D: time at matched accuracy.
    n_fine, t_fine, err_fine = steps, peer, err_peer
    while err_fine > 1e-5 and n_fine < 64 * steps:
        n_fine *= 2
        tt = np.linspace(0.0, wave.t[-1], n_fine + 1)
        vv = wave(tt)
        t_fine = best_of(lambda: numpy_euler(k_off, x0, tt, vv), repeat=1)
        err_fine = float(np.max(np.abs(numpy_euler(k_off, x0, tt, vv) - exact)) / 3e-9)
    records.append(Record(f"pulse train, {cells:,} cells, Euler refined to 1e-5 D", ours,
                          f"NumPy forward-Euler loop, {n_fine} steps", t_fine, "s", 20.0,
                          notes=f"secondary figure; Euler error at {n_fine} steps: {err_fine:.1e} D "
                                f"(ours {err_ours:.1e} D)"))

    state_bytes = x0.nbytes
    peak = peak_python_bytes(lambda: integrate(model, wave, x0, quantities=("state",), **kw))
    full = peak_python_bytes(lambda: integrate(model, wave, x0, **kw))
    records.append(Record("pulse-train peak memory (record=final, state)", peak / state_bytes, "one state array",
                          1.0, "x state bytes", 3.0, lower_is_better=True,
                          notes=f"with current+conductance returned: {full / state_bytes:.2f}x"))
    return records


def load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def numba_threads() -> int:
    import numba

    return numba.get_num_threads()


def run(quick: bool = False) -> list[Record]:
    rng = np.random.default_rng(20261125)
    n_iv = 200_000 if quick else 10_000_000
    cells = 4096 if quick else 65_536
    return _iv_records(n_iv, rng) + _pulse_records(cells, rng)


if __name__ == "__main__":
    main(run)
