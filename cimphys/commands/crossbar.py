"""Solve a crossbar with wire resistance from a circuit card or a .npz, and report energy per MVM.

INPUT is either a ``.npz`` holding ``G`` (M, N) in S and ``v_in`` (M,) or (batch, M) in V (and
optionally ``r_wl``, ``r_bl``, ``r_driver``, ``r_sense`` in ohm; options on the command line win),
or a tile circuit card (name or path, see ``cimphys cards``): then conductances are drawn
uniformly in the card's window and a batch of random digital inputs runs through the whole tile
(DACs, array, sense amplifiers, ADCs), seeded.  Prints the read energy (and, for a card, the
energy and latency of one matrix-vector product by component).  Writes ``crossbar.nc`` (node
voltages, currents, power, ideal currents, IR-drop loss, energy) and ``crossbar.png``
(node-voltage heat maps and the IR-drop loss per column) to the output folder.  ``--spice
out.cir`` also writes the solved array as an ngspice netlist (``Crossbar.to_spice``; the first input
vector of a .npz, the full-scale read of a card) to check the case in one's own SPICE; with
``--spice-pulse WIDTH:RISE`` (s) the netlist runs ``.tran`` of one read pulse of that plateau and
edge time on every driven word line instead of ``.op``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

_DEFAULT_R = {"r_wl": 1.0, "r_bl": 1.0, "r_driver": 0.0, "r_sense": 0.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="tile card name/path, or .npz with G (M, N) in S and v_in (M,) or (batch, M) in V")
    for name, default in _DEFAULT_R.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=float, dest=name, help=f"ohm (default: from the .npz, else {default:g})")
    parser.add_argument("--t-read", type=float, default=1e-8, help="read time for the .npz energy, s (default 1e-8)")
    parser.add_argument("--batch", type=int, default=16, help="random input vectors for a card (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of conductances, inputs and noise (default 0)")
    parser.add_argument("-o", "--out-dir", type=Path, default=Path("."), help="output folder (default: .)")
    parser.add_argument("--spice", type=Path, metavar="OUT.cir",
                        help="also write the array as an ngspice .op netlist (first input vector; a card: full-scale read)")
    parser.add_argument("--spice-pulse", metavar="WIDTH:RISE",
                        help="with --spice: a .tran netlist of one read pulse, plateau WIDTH and edges RISE in s "
                             "(e.g. 20e-9:1e-9), instead of .op")


def main(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..results import save

    import numpy as np

    if args.batch < 1:
        raise InputError(f"--batch: expected at least 1 input vector, got {args.batch}")
    if not (args.t_read > 0 and np.isfinite(args.t_read)):
        raise InputError(f"--t-read: expected a positive read time in s, got {args.t_read!r}")
    pulse = _pulse(args.spice_pulse) if getattr(args, "spice_pulse", None) is not None else None
    if pulse is not None and args.spice is None:
        raise InputError(f"--spice-pulse: {args.spice_pulse!r} given without --spice OUT.cir to write it to")
    if args.input.endswith(".npz"):
        ds, lines, xb, v_first = _solve_npz(args)
    else:
        ds, lines, xb, v_first = _solve_card(args)
    ds.attrs["input"] = str(args.input)
    for line in lines:
        print(line)
    out = Path(args.out_dir)
    paths = [save(ds, out / "crossbar.nc"), _plot(ds, out / "crossbar.png")]
    if args.spice is not None:
        paths.append(xb.to_spice(args.spice, v_first, title=f"cimphys crossbar {Path(args.input).name}", pulse=pulse))
    for path in paths:
        print(f"wrote {path}")
    return 0


def _pulse(text: str):
    """``WIDTH:RISE`` (s) as a :class:`cimphys.circuits.spice.Pulse`; one clear error otherwise."""
    from ..circuits.spice import Pulse
    from ..errors import InputError

    parts = text.split(":")
    try:
        width, rise = (float(x) for x in parts)
    except ValueError:
        raise InputError(f"--spice-pulse: expected WIDTH:RISE in s (e.g. 20e-9:1e-9), got {text!r}") from None
    try:
        return Pulse(width=width, rise=rise)
    except InputError as exc:
        raise InputError(f"--spice-pulse {text!r}: {exc}") from None


def _solve_npz(args):
    import numpy as np

    from ..circuits import Crossbar
    from ..circuits.energy import read_record
    from ..errors import InputError

    data = _load(Path(args.input))
    resist = {k: (getattr(args, k) if getattr(args, k) is not None else data.get(k, d)) for k, d in _DEFAULT_R.items()}
    if "G" not in data or "v_in" not in data:
        raise InputError(f"{args.input}: expected arrays 'G' and 'v_in', found {sorted(data)}")
    xb = Crossbar(data["G"], **resist)
    sol = xb.solve(data["v_in"])
    ds = _with_ir_drop(sol.to_xarray(), xb.G, sol).merge(read_record(sol, args.t_read))
    ds.attrs.update({k: float(np.max(v)) for k, v in resist.items()})
    e = np.atleast_1d(ds["energy_source"].values)
    lines = [f"array {xb.G.shape[0]}x{xb.G.shape[1]}, {e.size} input vector(s)",
             f"worst IR-drop loss {float(np.max(ds['ir_drop_loss'])):.3%}",
             f"read energy per vector {e.mean():.4g} J over {args.t_read:g} s"]
    return ds, lines, xb, np.atleast_2d(data["v_in"])[0]


def _solve_card(args):
    """Run a tile card: random conductances in its window, random digital inputs, one MVM each."""
    import numpy as np

    from ..cards import load_circuit
    from ..circuits.tile import Tile

    card = load_circuit(args.input)
    p = card.parameters
    rng = np.random.default_rng(args.seed)
    g = rng.uniform(p["g_min_s"], p["g_max_s"], size=(p["rows"], p["cols"]))
    tile = Tile(card, g, seed=args.seed)
    for name in ("r_wl", "r_bl", "r_driver", "r_sense"):
        if getattr(args, name) is not None:
            raise ValueError(f"--{name.replace('_', '-')}: a card sets its own resistances; edit the card instead")
    bits = p["input_bits"]
    x = rng.integers(0, 2**bits, size=(args.batch, p["rows"]))
    codes, record = tile.mvm(x, input_bits=bits, rng=rng)
    v_full = np.full((1, p["rows"]), p["v_read_v"])
    sol = tile.crossbar.solve(v_full)
    ds = _with_ir_drop(sol.to_xarray(), g, sol)
    ds = ds.merge(record.rename({"batch": "mvm"}).mean("mvm", keep_attrs=True))
    components = [k for k in record.data_vars if k.startswith("energy_") and k != "energy_total"]
    lines = [f"tile {card.name}: {p['rows']}x{p['cols']}, {bits}-bit inputs, "
             f"{tile.adc.bits}-bit {tile.adc.kind} ADC, {p['r_wire_per_cell_ohm']:g} ohm per cell",
             f"worst IR-drop loss at full-scale input {float(np.max(ds['ir_drop_loss'])):.3%}",
             f"energy per MVM {float(record.energy_total.mean()):.4g} J ("
             + ", ".join(f"{k[7:]} {float(record[k].mean()):.3g}" for k in components) + ")",
             f"latency per MVM {float(record.latency):.4g} s"]
    return ds, lines, tile.crossbar, v_full[0]


def _load(path: Path) -> dict:
    import numpy as np

    from ..errors import InputError

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        kind = "a .npy array" if magic == b"\x93NUM" else "not a zip archive"
        raise InputError(f"{path}: not an .npz archive ({kind}; save G and v_in with numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001 - zipfile, zlib and numpy each raise their own types
        if "allow_pickle" in str(exc):
            raise InputError(f"{path}: holds arrays of Python objects, which are refused (unpickling runs "
                             "code); expected numeric arrays G and v_in") from None
        raise InputError(f"{path}: damaged .npz ({type(exc).__name__}: {exc})") from None
    return data


def _with_ir_drop(ds, g, sol):
    """Add the ideal currents ``G.T @ v_in`` and the relative IR-drop loss per column."""
    import numpy as np

    from ..results import variable

    ideal = sol.v_in @ g
    safe = np.where(ideal != 0, ideal, 1.0)
    loss = np.where(ideal != 0, (ideal - sol.i_out) / np.abs(safe), 0.0)
    dims = ds["i_out"].dims
    ds["i_ideal"] = variable(dims, ideal, "A", "ideal output current G.T @ v_in (no wire resistance)")
    ds["ir_drop_loss"] = variable(dims, loss, "1", "relative output loss to IR drop, (ideal - actual) / |ideal|")
    return ds


def _plot(ds, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = ds.isel(batch=0) if "batch" in ds.dims else ds
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    for ax, name in zip(axes, ("v_wl", "v_bl")):
        im = ax.imshow(first[name].values, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set(title=first[name].attrs["long_name"], xlabel="column (bit line)", ylabel="row (word line)")
        fig.colorbar(im, ax=ax, label=first[name].attrs["units"])
    loss = ds["ir_drop_loss"].values.reshape(-1, ds.sizes["col"])
    axes[2].plot(100 * loss.T, color="tab:red", alpha=max(0.1, 1 / len(loss)))
    axes[2].set(title="IR-drop loss per column", xlabel="column (bit line)", ylabel="loss (%)")
    from ..results import replacing

    with replacing(path) as tmp:  # never a half-written PNG under the final name
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
