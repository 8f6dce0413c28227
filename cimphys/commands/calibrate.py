"""Fit a device model to measured I-V sweeps and write the fitted card with a plot.

DATA is a measurement file (CSV/TSV with voltage, current and optional time columns, units in the
header such as ``V``/``mA``/``ms``; headerless two-column files; Keysight B1500 exports; several
sweeps per file: see :mod:`cimphys.devices.measurements`).  ``--model`` picks the law:

* ``sinh`` (``I = k sinh(a V)``) and ``sinh_selector`` (``I = i_0 sinh(V / v_0)``): static I-V
  curves; every point of every sweep is fitted;
* ``vteam``, ``yakopcic``, ``stanford_pku``, ``drift`` (linear ion drift): state dynamics; the
  file needs a time column; each sweep is integrated from ``--state0`` under its own measured
  voltage (piecewise linear between samples) and its current fitted.

The starting values are those of ``--card`` (default: the shipped card of that model; for
``sinh``, which ships none, a first guess from the data).  The fit
(:func:`cimphys.devices.calibration.calibrate`: bounded least squares, 95 % confidence intervals
from the Jacobian) writes ``<out>/<card>_fitted.toml`` with a ``[provenance]`` naming the data
file and its SHA-256, the fitted keys, the method and the residual, and ``<out>/calibration.png``
(data against fit, and the residuals).  ``pcm`` (``pcm_statistical``) is fitted to conductance
statistics of many devices over time, not to I-V sweeps, and is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: model -> (shipped card, keys fitted by default)
MODELS = {
    "sinh": (None, ("k", "a")),
    "sinh_selector": ("sinh_selector_nl1000", ("i_0", "v_0")),
    "vteam": ("kvatinsky2015_vteam_pickett", ("r_on", "r_off", "k_off", "k_on")),
    "yakopcic": ("yakopcic2011_oblea", ("a1", "a2", "b", "ap", "an")),
    "stanford_pku": ("guan2012_stanford_pku", ("i0", "g0", "v0")),
    "drift": ("strukov2008_hp", ("r_on", "r_off")),
    "pcm": ("nandakumar2019_pcm", ()),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="measurement file (CSV/TSV, two columns, or Keysight B1500 export)")
    parser.add_argument("--model", required=True, choices=sorted(MODELS), help="device law to fit")
    parser.add_argument("--card", help="starting card, name or path (default: the shipped card of the model)")
    parser.add_argument("--fit", help="comma-separated keys to fit (default depends on the model)")
    parser.add_argument("--state0", type=float, help="initial state of dynamic models (default: middle of its range)")
    parser.add_argument("-o", "--out", type=Path, default=Path("calibration"), help="output folder (default: calibration)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG plot")


def main(args: argparse.Namespace) -> int:
    from ..devices.calibration import calibrate
    from ..devices.measurements import file_hash, read_sweeps
    from ..errors import InputError

    if args.model == "pcm":
        raise InputError("--model pcm: pcm_statistical is fitted to programming and drift statistics of many "
                         "devices (conductance against time), not to I-V sweeps; calibrate fits I-V laws")
    sweeps = read_sweeps(args.data)
    card = _start_card(args, sweeps)
    names = tuple(k.strip() for k in args.fit.split(",")) if args.fit else MODELS[args.model][1]
    forward, x, y = _problem(args, card, sweeps)
    digest = file_hash(args.data)
    data = f"{args.data.name} (sha256 {digest}; {len(sweeps)} sweep(s), {y.size} points)"
    fitted, result = calibrate(card, forward, x, y, names, data=data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{card.name}_fitted.toml"
    path.write_text(fitted.to_toml())
    print(f"{args.model}: {len(sweeps)} sweep(s), {y.size} points from {args.data}")
    for k in result.names:
        lo, hi = result.ci[k]
        print(f"  {k} = {result.values[k]:.6g}  (95 % CI {lo:.6g} .. {hi:.6g})")
    print(f"  residual rms {result.residual_rms:.4g} (of the rms current), {result.nfev} model evaluations")
    print(f"wrote {path}")
    if not args.no_plot:
        print(f"wrote {_plot(sweeps, forward(fitted, x), x, y, out / 'calibration.png', args.model)}")
    return 0


def _start_card(args, sweeps):
    import numpy as np

    from ..cards import card_from_mapping, load_device
    from ..errors import InputError

    if args.card:
        card = load_device(args.card)
    elif MODELS[args.model][0]:
        card = load_device(MODELS[args.model][0])
    else:  # sinh: k sinh(a V) through the largest |V| point with a = 3 / max|V| as a first guess
        v = np.concatenate([s.voltage for s in sweeps])
        i = np.concatenate([s.current for s in sweeps])
        top = int(np.argmax(np.abs(v)))
        if v[top] == 0 or i[top] == 0:
            raise InputError(f"{args.data}: every voltage or current is zero; nothing to fit")
        a = 3.0 / abs(v[top])
        k = max(abs(i[top] / np.sinh(a * v[top])), 1e-30)
        card = card_from_mapping({"model": {"name": "sinh"}, "parameters": {"k": k, "a": a},
                                  "provenance": {"source": f"first guess from {args.data.name}",
                                                 "url": args.data.resolve().as_uri(), "fitted": "none",
                                                 "method": "k sinh(a V) through the largest |V| point, a = 3/max|V|",
                                                 "residual": "not applicable"}},
                                 "device", str(args.data), f"sinh_{args.data.stem}")
    expected = {"drift": "linear_ion_drift"}.get(args.model, args.model)
    if card.model != expected:
        raise InputError(f"--card: {card.name!r} is a {card.model!r} card, --model {args.model} needs {expected!r}")
    return card


def _problem(args, card, sweeps):
    """(forward(card, x) -> current, x, measured current) for the model of ``card``."""
    import numpy as np

    from ..errors import InputError

    v = np.concatenate([s.voltage for s in sweeps])
    y = np.concatenate([s.current for s in sweeps])
    if args.model in ("sinh", "sinh_selector"):
        from ..devices import SinhCell, SinhSelector

        law = SinhCell if args.model == "sinh" else SinhSelector
        return (lambda c, volts: law.from_card(c).current(volts)), v, y
    missing = [f"lines {s.lines[0]}-{s.lines[1]}" for s in sweeps if s.time is None]
    if missing:
        raise InputError(f"{args.data}: --model {args.model} integrates the device state in time, but the sweep(s) "
                         f"at {', '.join(missing)} have no time column (name one 'Time (s)', 't [ms]', ...)")
    for s in sweeps:
        if np.any(np.diff(s.time) <= 0):
            raise InputError(f"{args.data}, lines {s.lines[0]}-{s.lines[1]}: times must increase within a sweep")
    from ..devices.dynamics import integrate, model_from_card
    from ..devices.waveforms import pwl

    def forward(c, _x):
        model = model_from_card(c)
        lo, hi = (float(np.min(b)) for b in model.state_bounds)
        state0 = 0.5 * (lo + hi) if args.state0 is None else args.state0
        parts = [integrate(model, pwl(s.time, s.voltage), state0).current.values[:, 0] for s in sweeps]
        return np.concatenate(parts)

    return forward, v, y


def _plot(sweeps, model_current, v, y, path: Path, name: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, res) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    start = 0
    for k, s in enumerate(sweeps):
        stop = start + s.voltage.size
        ax.plot(s.voltage, 1e3 * s.current, ".", ms=3, color=f"C{k % 10}", label="data" if k == 0 else None)
        ax.plot(s.voltage, 1e3 * model_current[start:stop], "-", color="k", lw=1, label="fit" if k == 0 else None)
        start = stop
    ax.set(xlabel="voltage (V)", ylabel="current (mA)", title=f"{name}: data and fit")
    ax.legend()
    res.plot(v, 1e3 * (model_current - y), ".", ms=3)
    res.set(xlabel="voltage (V)", ylabel="fit - data (mA)", title="residuals")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
