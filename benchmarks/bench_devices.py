"""Dynamic device models: I-V evaluation and pulse-train integration against NumPy peers.

1. I-V (current and dI/dV) of 10 million cells at random voltages and states, cimphys's
   checked entry point against the equivalent vectorised NumPy expression (no checks), for the
   Stanford-PKU (exp/sinh) and VTEAM (linear read law) models.  Target >= 1x.
2. A pulse train sampled on 1000 time steps (10 pulses, 100 steps per period), applied to
   65,536 VTEAM cells with per-cell rate constants.  Primary figure, like for like: our
   fixed-step forward Euler (``integrate(method="euler", record="final")``, threads from
   ``PARALLEL_MIN_CELLS`` cells on) against a NumPy forward-Euler loop over the same 1000 steps
   (in-place array updates, the voltage factor computed once per step): the same algorithm,
   so the notes give the largest relative difference of the two answers.  Target >= 20x.
   Secondary figures: the same on one thread; fixed-step RK4 on the same steps against the
   NumPy loop refined (steps doubled) to RK4's accuracy; the adaptive embedded RK path
   (error control, threshold crossings located) against the loop on the same steps and at
   the adaptive path's accuracy.  Timings are interleaved best-of-3 in one process; the load
   average of the machine is in the notes (shared machines).
3. Peak memory of the fixed-step integration (tracemalloc, state only) over the bytes of one
   state array.  Target <= 3x.  The notes give RK4, the adaptive path, and the peak when
   current and conductance are returned.

The fixed-step integrator (:mod:`cimphys.devices.fixed_step`), as measured when it was written: Measured CPU time per cell and Euler step (one
thread, 65,536 cells): VTEAM with a Biolek window (2p = 20) 0.4 ns (0.35 ns with FMA and 4096-cell blocks), no window 0.25 ns,
Kvatinsky window 6 ns; Yakopcic 1.3 ns; the full rate law 14 ns (VTEAM) to 60 ns (Stanford-PKU,
three libm calls); a NumPy step loop 4.4 ns (VTEAM, Biolek).
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


def _cpu_best(fn, repeat: int = 3) -> float:
    """Best CPU time (s) of this process over ``repeat`` calls of ``fn`` (one-thread figures on a
    shared machine: time spent waiting for a core does not count)."""
    import time

    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def _refined_euler(k_off, x0, wave, exact, target, steps):
    """The NumPy Euler loop with its steps doubled until its error is below ``target`` D (at
    most 64 x ``steps``); return ``(time, steps, error)``."""
    n, err = steps, float("inf")
    while n <= 64 * steps:
        tt = np.linspace(0.0, wave.t[-1], n + 1)
        vv = wave(tt)
        x = numpy_euler(k_off, x0, tt, vv)
        err = float(np.max(np.abs(x - exact)) / 3e-9)
        if err <= target:
            return best_of(lambda: numpy_euler(k_off, x0, tt, vv), repeat=1), n, err
        n *= 2
    return best_of(lambda: numpy_euler(k_off, x0, tt, vv), repeat=1), n // 2, err


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
    fixed = dict(record="final", quantities=("state",))
    adaptive = dict(record="final", rtol=1e-6, atol=1e-9)
    small = VTEAM(**VTEAM_PARAMS)  # same kernels: compile them outside the timing
    for par in (False, True):
        integrate(small, wave, x0[:64], parallel=par, **adaptive)
        for method in ("euler", "rk4"):
            integrate(small, wave, x0[:64], parallel=par, method=method, **fixed)

    # 1. like for like: our forward Euler on the same 1000 steps, interleaved with the loop
    euler = lambda par=None: integrate(model, wave, x0, method="euler", parallel=par, **fixed)  # noqa: E731
    loop = lambda: numpy_euler(k_off, x0, t, v)  # noqa: E731
    ours, ours_serial, peer = [], [], []
    for _ in range(10):  # ours takes ~7 ms: a short run needs more rounds to see a quiet moment
        ours.append(best_of(euler, repeat=1))
        ours_serial.append(best_of(lambda: euler(False), repeat=1))
        peer.append(best_of(loop, repeat=1))
    ours, ours_serial, peer = min(ours), min(ours_serial), min(peer)
    cpu_ratio = _cpu_best(loop) / _cpu_best(lambda: euler(False))  # robust to other load
    ours_x = euler().state.values[0]
    peer_x = loop()
    same = float(np.max(np.abs(ours_x - peer_x) / np.abs(peer_x)))
    exact = integrate(model, wave, x0, record="final", rtol=1e-11, atol=1e-14).state.values[0]
    err_euler = float(np.max(np.abs(peer_x - exact)) / 3e-9)
    moved = float(np.mean(exact - x0) / 3e-9)
    context = f"{numba_threads()} Numba threads; load average {load_average()}"
    records = [
        Record(f"pulse train, {cells:,} cells x {steps} steps, fixed-step Euler", ours,
               "NumPy forward-Euler loop, same steps", peer, "s", 20.0,
               notes=f"same algorithm: max relative difference {same:.1e}; error of both vs a tight "
                     f"run {err_euler:.1e} D; mean swing {moved:.2f} D; one thread, CPU time: "
                     f"{cpu_ratio:.1f}x; {context}"),
        Record(f"pulse train, {cells:,} cells x {steps} steps, fixed-step Euler (parallel=False)", ours_serial,
               "NumPy forward-Euler loop, same steps", peer, "s", 20.0, notes="secondary figure: one thread"),
    ]

    # 2. fixed-step RK4 on the same steps against the loop refined to the same accuracy
    rk4 = lambda: integrate(model, wave, x0, method="rk4", **fixed)  # noqa: E731
    t_rk4 = best_of(rk4, repeat=3)
    err_rk4 = float(np.max(np.abs(rk4().state.values[0] - exact)) / 3e-9)
    t_fine, n_fine, err_fine = _refined_euler(k_off, x0, wave, exact, err_rk4, steps)
    records.append(Record(f"pulse train, {cells:,} cells, fixed-step RK4 vs Euler at its accuracy", t_rk4,
                          f"NumPy forward-Euler loop, {n_fine} steps", t_fine, "s", 20.0,
                          notes=f"secondary figure; error RK4 ({steps} steps) {err_rk4:.1e} D, Euler "
                                f"({n_fine} steps) {err_fine:.1e} D (knots inside steps limit both)"))

    # 3. the adaptive embedded RK path (error control, thresholds located) on the same train
    ds = integrate(model, wave, x0, **adaptive)
    t_adapt = best_of(lambda: integrate(model, wave, x0, **adaptive), repeat=3)
    err_adapt = float(np.max(np.abs(ds.state.values[0] - exact)) / 3e-9)
    t_fine, n_fine, err_fine = _refined_euler(k_off, x0, wave, exact, max(err_adapt, 1e-5), steps)
    records.append(Record(f"pulse train, {cells:,} cells, adaptive rk45 (rtol 1e-6)", t_adapt,
                          "NumPy forward-Euler loop, same steps", peer, "s", 20.0,
                          notes=f"secondary figure; error {err_adapt:.1e} D, "
                                f"{ds.attrs['steps_total'] / cells:.1f} RK steps per cell"))
    records.append(Record(f"pulse train, {cells:,} cells, adaptive rk45 vs Euler at its accuracy", t_adapt,
                          f"NumPy forward-Euler loop, {n_fine} steps", t_fine, "s", 20.0,
                          notes=f"secondary figure; Euler error at {n_fine} steps: {err_fine:.1e} D"))

    # 4. memory of the fixed-step path (the result array; the kernels' per-thread block buffers
    # are a few blocks of 1024 cells, allocated by Numba, outside tracemalloc)
    state_bytes = x0.nbytes
    peak = peak_python_bytes(euler)
    peak_rk4 = peak_python_bytes(rk4)
    peak_adapt = peak_python_bytes(lambda: integrate(model, wave, x0, quantities=("state",), **adaptive))
    full = peak_python_bytes(lambda: integrate(model, wave, x0, method="euler", record="final"))
    records.append(Record("pulse-train peak memory (fixed-step Euler, record=final, state)", peak / state_bytes,
                          "one state array", 1.0, "x state bytes", 3.0, lower_is_better=True,
                          notes=f"RK4 {peak_rk4 / state_bytes:.2f}x, adaptive {peak_adapt / state_bytes:.2f}x; "
                                f"with current+conductance returned: {full / state_bytes:.2f}x"))
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
