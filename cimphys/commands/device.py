"""Run a device card under a voltage sweep or a pulse train; write NetCDF and a plot.

A sweep (``--sweep VMIN:VMAX:FREQ``) is a triangle 0 -> VMAX -> VMIN -> 0 repeated ``--cycles``
times and gives the I-V loop.  Pulses (``--pulses AMP:WIDTH:COUNT``, repeatable: e.g. a
potentiation group then a depression group of the same width) give the conductance read at
0 V after each pulse.  Files: ``<card>_<sweep|pulses>.nc`` and ``.png`` in ``-o``.
Write a negative value with ``=``: ``--sweep=-2:1:1e3``, ``--pulses=-1.5:1e-6:10``.
``--method euler|heun|rk4`` integrates with fixed steps on the report times (``--substeps``
steps per interval) instead of the adaptive ``rk45`` (see :func:`cimphys.devices.integrate`).
"""

from __future__ import annotations

import argparse


def _triple(text: str, what: str) -> tuple[float, float, float]:
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{what}: expected three numbers A:B:C, got {text!r}")
    try:
        return tuple(float(p) for p in parts)  # type: ignore[return-value]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: expected numbers, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("card", help="device card name or path (a model with state dynamics)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--sweep", type=lambda s: _triple(s, "--sweep"), metavar="VMIN:VMAX:FREQ",
                      help="triangle sweep between VMIN and VMAX (V) at FREQ (Hz); --sweep=-1:1:1e3")
    mode.add_argument("--pulses", type=lambda s: _triple(s, "--pulses"), action="append",
                      metavar="AMP:WIDTH:COUNT", help="COUNT pulses of AMP (V) lasting WIDTH (s); repeatable")
    parser.add_argument("--cycles", type=int, default=1, help="sweep periods (default 1)")
    parser.add_argument("--points", type=int, default=400, help="report points per sweep period (default 400)")
    parser.add_argument("--period", type=float, help="pulse period in s (default 2 x (width + edges))")
    parser.add_argument("--state0", type=float, help="initial state in the model's unit (default: mid-range)")
    parser.add_argument("--rtol", type=float, default=1e-6, help="integration tolerance (default 1e-6)")
    parser.add_argument("--method", default="rk45", choices=("rk45", "rk23", "euler", "heun", "rk4"),
                        help="adaptive pair (rk45, rk23; default rk45) or fixed steps on the report "
                             "times (euler, heun, rk4)")
    parser.add_argument("--substeps", type=int, default=1,
                        help="fixed-step methods: equal steps per report interval (default 1)")
    parser.add_argument("-o", "--out", default=".", help="output folder (default: current folder)")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from ..cards import load_device
    from ..devices.dynamics import integrate, model_from_card
    from ..devices.waveforms import pulse_train, triangle
    from ..errors import InputError
    from ..results import save

    card = load_device(args.card)
    model = model_from_card(card)
    lo, hi = model.state_bounds
    x0 = float(np.mean(lo) + np.mean(hi)) / 2 if args.state0 is None else args.state0
    out = Path(args.out)
    if args.sweep:
        v_min, v_max, freq = args.sweep
        wave = triangle(v_min, v_max, freq, cycles=args.cycles, points_per_cycle=args.points)
        kind = "sweep"
    else:
        widths = {w for _, w, _ in args.pulses}
        if len(widths) > 1:
            raise InputError(f"--pulses: every group must have the same WIDTH, got {sorted(widths)}")
        counts = [int(c) for _, _, c in args.pulses]
        if any(c < 1 or c != n for c, (_, _, n) in zip(counts, args.pulses)):
            raise InputError("--pulses: COUNT must be a positive integer")
        amps = np.concatenate([np.full(c, a) for (a, _, _), c in zip(args.pulses, counts)])
        wave = pulse_train(amps, widths.pop(), amps.size, period=args.period)
        kind = "pulses"
    ds = integrate(model, wave, x0, rtol=args.rtol, method=args.method, substeps=args.substeps)
    ds.attrs.update(card=card.name, source=str(card.provenance["source"]), drive=kind)
    stem = out / f"{card.name}_{kind}"
    nc = save(ds, stem.with_suffix(".nc"))
    png = _plot(ds, model, wave, kind, stem.with_suffix(".png"), card.name)
    for path in (nc, png):
        print(path)
    return 0


def _plot(ds, model, wave, kind, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5.5, 4))
    if kind == "sweep":
        ax.plot(ds.voltage.values, ds.current.values[:, 0])
        ax.set_xlabel("voltage (V)")
        ax.set_ylabel("current (A)")
        ax.set_title(f"{title}: I-V loop")
    else:
        t = ds.time.values
        ends = np.concatenate([[t[0]], wave.knots_t[4::4][: len(wave.knots_t[4::4])]])
        rows = np.unique(np.clip(np.searchsorted(t, ends), 0, t.size - 1))
        g0 = model.conductance(0.0, ds.state.values[rows, 0])
        ax.plot(np.arange(rows.size), g0, "o-")
        ax.set_xlabel("pulse number")
        ax.set_ylabel("read conductance dI/dV at 0 V (S)")
        ax.set_title(f"{title}: conductance after each pulse")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..results import replacing

    with replacing(path) as tmp:  # never a half-written PNG under the final name
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
